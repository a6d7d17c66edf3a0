// Bun adapter: reads core builds with Bun.file and runs Web Workers, or node:worker_threads when a library has
// replaced the global Worker with worker_threads' (Emscripten's Node glue does: `global.Worker = require(...)`).
import { coreReader } from "../build-dir.js";
import type * as NodeThreads from "node:worker_threads";
import type { Platform, PlatformOptions, WorkerFactory, WorkerHandle } from "../platform.js";
import { spawnThreadWorker } from "./node.js";
import { spawnWebWorker } from "./web-worker.js";

declare const Bun: { file(url: URL): { arrayBuffer(): Promise<ArrayBuffer> } };

/** The Bun adapter; `options` say where the core builds are (default: the package's build/ folder). */
export function bunPlatform(options: PlatformOptions = {}): Platform {
  return {
    name: "bun",
    readCore: coreReader(options, async (url) => new Uint8Array(await Bun.file(url).arrayBuffer())),
    hardwareConcurrency: () => navigator.hardwareConcurrency,
    spawnWorker: spawnBunWorker,
  };
}

/** A Web Worker while the global Worker is one; else (replaced by worker_threads' class) a worker_threads thread. */
function spawnBunWorker(url: URL, create?: WorkerFactory): WorkerHandle {
  const global = (globalThis as { Worker?: { prototype?: { addEventListener?: unknown } } }).Worker;
  if (typeof global?.prototype?.addEventListener === "function") return spawnWebWorker(url, create);
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  return spawnThreadWorker(getBuiltin!("node:worker_threads") as typeof NodeThreads, url);
}
