// Bun adapter: reads core builds with Bun.file and runs Web Workers.
import { coreReader } from "../build-dir.js";
import type { Platform, PlatformOptions } from "../platform.js";
import { spawnWebWorker } from "./web-worker.js";

declare const Bun: { file(url: URL): { arrayBuffer(): Promise<ArrayBuffer> } };

/** The Bun adapter; `options` say where the core builds are (default: the package's build/ folder). */
export function bunPlatform(options: PlatformOptions = {}): Platform {
  return {
    name: "bun",
    readCore: coreReader(options, async (url) => new Uint8Array(await Bun.file(url).arrayBuffer())),
    hardwareConcurrency: () => navigator.hardwareConcurrency,
    spawnWorker: spawnWebWorker,
  };
}
