// Public entry of the compute core: loading, memory arena, worker pool and the typed kernels.
export * from "../errors.js";
export { Arena, Layout, Slab, type ArenaOptions, type LayoutEntry } from "./arena.js";
export { Core, instantiateCore, loadCore, PAGE_BYTES, type CoreOptions, type CoreSource } from "./core.js";
export type { CoreExports, KernelName } from "./exports.js";
export { detectPlatform, runtimeName, type Platform, type WorkerHandle } from "./platform.js";
export { WorkerPool, type KernelCall, type PoolOptions } from "./pool.js";
export { coreFileName, engineHasRelaxedSimd, engineHasSimd, pickVariant, type CoreVariant } from "./variants.js";
export { Kernels, type KernelsOptions } from "../core/kernels.js";
export { ParallelGemm } from "../core/parallel-gemm.js";
export { planGemm, type GemmOptions } from "../core/gemm.js";
export { matrix, describe, type Matrix } from "../core/matrix.js";
export type { AdagradOptions, AdamOptions, SgdOptions } from "../core/optimizers.js";
