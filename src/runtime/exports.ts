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
  f32_gemm_packed_b_bytes(n: number, k: number): number;
  f32_gemm_pack_b(packed: number, b: number, ldb: number, transB: number, n: number, k: number, p0: number, p1: number, j0: number, j1: number): void;
  f32_gemm_prepacked(
    c: number, ldc: number, a: number, lda: number, packed: number,
    m: number, n: number, k: number, transA: number, alpha: number, beta: number, bias: number, ws: number,
  ): void;
  /** Small-m C = A B + bias (no transposes, alpha 1, beta 0: C is not read), A and B read in place, no workspace. */
  f32_gemm_nopack(c: number, ldc: number, a: number, lda: number, b: number, ldb: number, m: number, n: number, k: number, bias: number): void;
  f32_dropout_mask(mask: number, n: number, keep: number, seed: number, offset: number): void;
  f32_mul(y: number, x: number, n: number): void;

  // Activations (assembly/activations.ts): elementwise over n values; backward passes take the forward output y.
  f32_identity_forward(y: number, x: number, n: number): void;
  f32_sigmoid_forward(y: number, x: number, n: number): void;
  f32_sigmoid_backward(dx: number, dy: number, y: number, n: number): void;
  f32_tanh_forward(y: number, x: number, n: number): void;
  f32_tanh_backward(dx: number, dy: number, y: number, n: number): void;
  f32_relu_forward(y: number, x: number, n: number): void;
  f32_relu_backward(dx: number, dy: number, y: number, n: number): void;
  f32_softmax_forward(y: number, x: number, rows: number, cols: number): void;
  f32_softmax_backward(dx: number, dy: number, y: number, rows: number, cols: number): void;

  // Losses (assembly/losses.ts): return the mean loss over rows; a gradient pointer of 0 skips the gradient.
  f32_squared_error(dy: number, y: number, t: number, rows: number, cols: number): number;
  f32_binary_cross_entropy(dy: number, y: number, t: number, rows: number, cols: number): number;
  f32_sigmoid_cross_entropy(dz: number, y: number, z: number, t: number, rows: number, cols: number): number;
  f32_softmax_cross_entropy(dz: number, y: number, z: number, t: number, rows: number, cols: number): number;

  // Optimizer updates (assembly/optim.ts), in place over n values; v == 0 is SGD without momentum.
  f32_sgd_update(w: number, v: number, g: number, n: number, lr: number, momentum: number, weight_decay: number): void;
  f32_adagrad_update(w: number, h: number, g: number, n: number, lr: number, eps: number, weight_decay: number): void;
  f32_adam_update(
    w: number, m: number, v: number, g: number, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weight_decay: number, step: number,
  ): void;

  // Vector helpers and reductions (assembly/vector.ts).
  f32_fill(y: number, n: number, value: number): void;
  f32_copy(y: number, x: number, n: number): void;
  f32_axpy(y: number, x: number, n: number, alpha: number): void;
  f32_scale(y: number, n: number, alpha: number): void;
  f32_col_sum(out: number, x: number, rows: number, cols: number, beta: number): void;

  // f16 conversion (assembly/convert.ts) over n values; f16 pointers address 2-byte values (any even byte offset).
  f32_to_f16(dst: number, src: number, n: number): void;
  f16_to_f32(dst: number, src: number, n: number): void;

  // Sparse kernels (assembly/sparse.ts): CSR rows r span [rowPtr[r], rowPtr[r+1]) of colIdx (i32) and values (f32);
  // index arrays are i32. Each returns -1, or (having written nothing) the first position whose index is outside the
  // rows of the indexed matrix (fanIn, srcRows, dstRows).
  f32_csr_gemm(
    y: number, ldy: number, rowPtr: number, colIdx: number, values: number, w: number, ldw: number, fanIn: number,
    rows: number, n: number, bias: number, beta: number,
  ): number;
  f32_csr_scatter_add(
    dw: number, lddw: number, fanIn: number, rowPtr: number, colIdx: number, values: number, d: number, ldd: number,
    rows: number, n: number, alpha: number,
  ): number;
  f32_rows_gather(out: number, ldout: number, src: number, ldsrc: number, srcRows: number, idx: number, count: number, n: number): number;
  f32_rows_scatter_add(
    dst: number, lddst: number, dstRows: number, idx: number, count: number, src: number, ldsrc: number, n: number, alpha: number,
  ): number;
}

/** Name of a kernel the worker pool can run. */
export type KernelName = Exclude<
  { [K in keyof CoreExports]: CoreExports[K] extends (...args: number[]) => unknown ? K : never }[keyof CoreExports],
  undefined
>;
