// The raw exports of the WASM core: plain functions over byte pointers into linear memory and shape integers.
// Outputs come first, gradients are prefixed `d`; every pointer is a byte offset, every length a count of f32.

/** Functions exported by every build of the core (see assembly/). */
export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  core_heap_base(): number;
  core_relaxed_simd(): number;
  f32_gemm_mr(): number;
  f32_gemm_workspace_bytes(m: number, n: number, k: number): number;
  f32_gemm(
    c: number, ldc: number, a: number, lda: number, b: number, ldb: number,
    m: number, n: number, k: number, transA: number, transB: number,
    alpha: number, beta: number, bias: number, ws: number,
  ): void;
}

/** Name of a kernel the worker pool can run. */
export type KernelName = Exclude<
  { [K in keyof CoreExports]: CoreExports[K] extends (...args: number[]) => unknown ? K : never }[keyof CoreExports],
  undefined
>;
