// Public entry `downpour/core`: the runtime (loading, arena, worker pool, adapters) and the typed, checked kernels.
export * from "../runtime/index.js";
export { Kernels, type KernelsOptions } from "./kernels.js";
export { ParallelGemm } from "./parallel-gemm.js";
export { planGemm, type GemmOptions } from "./gemm.js";
export { GEMM_NOPACK_DEFAULTS, NOPACK_MAX_ROWS, type GemmNopackOptions } from "./gemm-nopack.js";
export { matrix, describe, type Matrix } from "./matrix.js";
export type { AdagradOptions, AdamOptions, SgdOptions } from "./optimizers.js";
export { csr, describeCsr, int32View, SPARSE_DEFAULTS, type CsrGemmOptions, type CsrMatrix, type CsrOptions, type CsrScatterAddOptions, type GatherRowsOptions, type ScatterAddRowsOptions } from "./sparse.js";
