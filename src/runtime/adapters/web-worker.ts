// A WorkerHandle over the standard Web Worker API, used by the Bun, Deno and browser adapters.
import type { WorkerHandle } from "../platform.js";

/** Starts `url` as an ES-module Web Worker. */
export function spawnWebWorker(url: URL): WorkerHandle {
  const worker = new Worker(url, { type: "module" });
  return {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (listener) => worker.addEventListener("message", (event) => listener((event as MessageEvent).data)),
    onError: (listener) =>
      worker.addEventListener("error", (event) => {
        (event as Event).preventDefault?.();
        listener(new Error((event as ErrorEvent).message ?? "worker error"));
      }),
    terminate: async () => worker.terminate(),
  };
}
