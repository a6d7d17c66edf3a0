// The process-wide compute core that models use unless given one: shared memory where the engine allows it
// (so training can use worker threads), private memory otherwise.
import { Kernels } from "../core/kernels.js";

let shared: Promise<Kernels> | undefined;

/** Loads the default core once; later calls share it. */
export function defaultKernels(): Promise<Kernels> {
  shared ??= Kernels.load({ shared: true }).catch(() => Kernels.load({ shared: false }));
  return shared;
}
