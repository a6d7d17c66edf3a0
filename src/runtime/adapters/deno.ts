// Deno adapter: reads core builds with Deno.readFile and runs Web Workers.
import { coreReader } from "../build-dir.js";
import type { Platform, PlatformOptions } from "../platform.js";
import { spawnWebWorker } from "./web-worker.js";

declare const Deno: { readFile(url: URL): Promise<Uint8Array> };

/** The Deno adapter; `options` say where the core builds are (default: the package's build/ folder). */
export function denoPlatform(options: PlatformOptions = {}): Platform {
  return {
    name: "deno",
    readCore: coreReader(options, (url) => Deno.readFile(url)),
    hardwareConcurrency: () => navigator.hardwareConcurrency,
    spawnWorker: spawnWebWorker,
  };
}
