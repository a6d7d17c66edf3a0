// How a worker gets the core: the main thread's compiled WebAssembly.Module where the runtime can post one
// (V8 then shares its optimized code between threads, so a new worker starts fast), else the bytes to compile.
import type { CoreExports } from "./exports.js";

/** The core as sent to a worker. */
export interface CoreTransfer {
  coreBytes: Uint8Array;
  module?: WebAssembly.Module;
}

/** Instantiates the core in a worker over the shared memory it was given. */
export async function instantiateInWorker(transfer: CoreTransfer, memory: WebAssembly.Memory): Promise<{ module: WebAssembly.Module; exports: CoreExports }> {
  const module = transfer.module instanceof WebAssembly.Module ? transfer.module : await WebAssembly.compile(transfer.coreBytes as BufferSource);
  const abort = (): never => {
    throw new Error("the WASM core aborted");
  };
  const instance = await WebAssembly.instantiate(module, { env: { memory, abort } });
  return { module, exports: instance.exports as unknown as CoreExports };
}
