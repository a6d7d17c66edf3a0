// Starts a worker with the handshake every downpour worker follows: it says "alive", receives its init message,
// and answers "ready" once set up (or "failed" with the reason).
import { WorkerError } from "../errors.js";
import type { Platform, WorkerFactory, WorkerHandle } from "./platform.js";

/**
 * A worker entry module: its URL (node:worker_threads runs it) and, for Web Workers, a factory written as the
 * literal `() => new Worker(new URL("./worker.js", import.meta.url), { type: "module" })` so that bundlers emit
 * the entry. Deno (--unstable-sloppy-imports) and Bun resolve "./worker.js" to worker.ts when running sources.
 */
export interface WorkerEntry {
  url: URL;
  create?: WorkerFactory;
}

function waitForMessage(handle: WorkerHandle, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    handle.onError((error) => reject(new WorkerError(`worker failed to start: ${error.message}`, { cause: error })));
    handle.onMessage((message) => {
      const m = message as { type?: string; message?: string };
      if (m?.type === type) resolve();
      if (m?.type === "failed") reject(new WorkerError(`worker failed to start: ${m.message}`));
    });
  });
}

// Posts the init message; where the runtime cannot clone a WebAssembly.Module, sends it without (the worker then
// compiles the bytes it also carries).
function postInit(handle: WorkerHandle, init: unknown): void {
  try {
    handle.postMessage(init);
  } catch (error) {
    const { module, ...rest } = init as { module?: unknown };
    if (module === undefined) throw error;
    handle.postMessage(rest);
  }
}

/** Spawns `entry`, posts `init` once it is alive, and resolves when it is ready. The init message is cloned. */
export async function startWorker(platform: Platform, entry: URL | WorkerEntry, init: unknown): Promise<WorkerHandle> {
  const { url, create } = entry instanceof URL ? { url: entry, create: undefined } : entry;
  const handle = platform.spawnWorker(url, create);
  try {
    await waitForMessage(handle, "alive");
    const ready = waitForMessage(handle, "ready");
    postInit(handle, init);
    await ready;
    handle.removeListeners(); // the start-up listeners; the caller adds its own
  } catch (error) {
    await handle.terminate();
    throw error;
  }
  return handle;
}
