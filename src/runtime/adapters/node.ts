// Node adapter: reads core builds with node:fs and runs workers on node:worker_threads. The built-ins come through
// process.getBuiltinModule (see ../builtin.ts), so nothing here is a static `node:` import.
import type * as NodeFs from "node:fs/promises";
import type * as NodeOs from "node:os";
import type * as NodeThreads from "node:worker_threads";
import { coreReader } from "../build-dir.js";
import { nodeBuiltin } from "../builtin.js";
import type { Platform, PlatformOptions, WorkerHandle } from "../platform.js";

/** The Node adapter; `options` say where the core builds are (default: the package's build/ folder). */
export async function nodePlatform(options: PlatformOptions = {}): Promise<Platform> {
  const [fs, os, threads] = await Promise.all([
    nodeBuiltin<typeof NodeFs>("node:fs/promises"),
    nodeBuiltin<typeof NodeOs>("node:os"),
    nodeBuiltin<typeof NodeThreads>("node:worker_threads"),
  ]);
  return {
    name: "node",
    readCore: coreReader(options, async (url) => new Uint8Array(await fs.readFile(url))),
    hardwareConcurrency: () => os.availableParallelism(),
    spawnWorker: (url) => spawnThreadWorker(threads, url),
  };
}

/** Starts `url` on node:worker_threads (the worker answers on its parentPort: workerData.downpourPort "node"). */
export function spawnThreadWorker(threads: typeof NodeThreads, url: URL): WorkerHandle {
  const worker = new threads.Worker(url, { workerData: { downpourPort: "node" } });
  // Our own listeners only: removeAllListeners() would also drop the hooks with which a Worker starts its port.
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  type Listener = (...args: any[]) => void;
  const added: Array<[string, Listener]> = [];
  const listen = (event: string, listener: Listener): void => {
    worker.on(event, listener);
    added.push([event, listener]);
  };
  return {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (listener) => listen("message", listener),
    onError: (listener) => listen("error", listener),
    onExit: (listener) => listen("exit", listener),
    removeListeners: () => {
      for (const [event, listener] of added.splice(0)) worker.off(event, listener);
    },
    terminate: async () => {
      await worker.terminate();
    },
    ref: () => worker.ref(),
    unref: () => worker.unref(),
  };
}
