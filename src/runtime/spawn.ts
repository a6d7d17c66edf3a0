// Starts a worker with the handshake every downpour worker follows: it says "alive", receives its init message,
// and answers "ready" once set up (or "failed" with the reason).
import { WorkerError } from "../errors.js";
import type { Platform, WorkerHandle } from "./platform.js";

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

/** Spawns `url`, posts `init` once it is alive, and resolves when it is ready. The init message is cloned. */
export async function startWorker(platform: Platform, url: URL, init: unknown): Promise<WorkerHandle> {
  const handle = platform.spawnWorker(url);
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
