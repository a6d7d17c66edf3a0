// The process-wide compute core that models use unless given one: shared memory where the context allows it
// (so training can use worker threads), private memory otherwise (no SharedArrayBuffer: threads: 0 training).
import { Kernels, type KernelsOptions } from "../core/kernels.js";
import { sharedMemoryAvailable } from "../runtime/isolation.js";

let current: Promise<Kernels> | undefined;

/** Loads the default core once (with `options` on that first call, e.g. `{ coreBase }`); later calls share it. */
export function defaultKernels(options: KernelsOptions = {}): Promise<Kernels> {
  current ??= sharedMemoryAvailable()
    ? Kernels.load({ ...options, shared: true }).catch(() => Kernels.load({ ...options, shared: false }))
    : Kernels.load({ ...options, shared: false });
  return current;
}

/** Makes `kernels` the default core of models created from now on (e.g. one loaded with `{ coreBase }`). */
export function setDefaultKernels(kernels: Kernels | Promise<Kernels>): void {
  current = Promise.resolve(kernels);
}
