// Node adapter: reads core builds with node:fs and runs workers on node:worker_threads.
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { buildDir, type Platform } from "../platform.js";

export const nodePlatform: Platform = {
  name: "node",
  readCore: async (fileName) => new Uint8Array(await readFile(new URL(fileName, buildDir))),
  hardwareConcurrency: () => availableParallelism(),
  spawnWorker(url) {
    const worker = new Worker(url, { workerData: { downpourPort: "node" } });
    return {
      postMessage: (message) => worker.postMessage(message),
      onMessage: (listener) => worker.on("message", listener),
      onError: (listener) => worker.on("error", listener),
      onExit: (listener) => worker.on("exit", listener),
      removeListeners: () => worker.removeAllListeners(),
      terminate: async () => {
        await worker.terminate();
      },
    };
  },
};
