// A WorkerHandle over the standard Web Worker API, used by the Bun, Deno and browser adapters.
import type { WorkerFactory, WorkerHandle } from "../platform.js";

/** Bun's extension of the Web Worker: whether the thread keeps the process alive. */
interface Lifetime {
  ref(): void;
  unref(): void;
}

/**
 * Starts `url` as an ES-module Web Worker, or calls `create` when given (the caller's literal
 * `new Worker(new URL(...), { type: "module" })`, which bundlers see). Web Workers have no exit event: onExit
 * fires only on terminate(). ref/unref call the Worker's own where it has them (Bun), else do nothing.
 */
export function spawnWebWorker(url: URL, create?: WorkerFactory): WorkerHandle {
  const worker = create ? create() : new Worker(url, { type: "module" });
  const lifetime = worker as Partial<Lifetime>;
  const removers: Array<() => void> = [];
  const exits: Array<(code: number) => void> = [];
  let exited = false;
  const listen = (type: string, listener: (event: Event) => void): void => {
    worker.addEventListener(type, listener);
    removers.push(() => worker.removeEventListener(type, listener));
  };
  return {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (listener) => listen("message", (event) => listener((event as MessageEvent).data)),
    onError: (listener) =>
      listen("error", (event) => {
        event.preventDefault?.();
        listener(new Error((event as ErrorEvent).message ?? "worker error"));
      }),
    onExit: (listener) => {
      exits.push(listener);
    },
    removeListeners: () => {
      for (const remove of removers.splice(0)) remove();
      exits.length = 0;
    },
    terminate: async () => {
      worker.terminate();
      if (exited) return;
      exited = true;
      for (const listener of exits.splice(0)) listener(1);
    },
    ref: () => lifetime.ref?.(),
    unref: () => lifetime.unref?.(),
  };
}
