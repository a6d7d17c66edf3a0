// Reference GEMM in plain TypeScript (f64 accumulation), mirroring f32_gemm's semantics, for tests.
import type { Values } from "./vector.js";

/**
 * C[m x n] = alpha * op(A) * op(B) + beta * C + bias, row-major with leading dimensions in elements, like f32_gemm.
 * beta == 0 means C is not read; k <= 0 or alpha == 0 means A and B are not read; bias (n values) is not scaled.
 * Only the m x n elements of C are written (padding between rows is left alone).
 */
export function gemmReference(
  c: Values, ldc: number, a: ArrayLike<number>, lda: number, b: ArrayLike<number>, ldb: number,
  m: number, n: number, k: number, transA: boolean | number, transB: boolean | number,
  alpha: number, beta: number, bias?: ArrayLike<number>,
): void {
  if (m <= 0 || n <= 0) return;
  const product = k > 0 && alpha !== 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      if (product) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const av = transA ? a[p * lda + i]! : a[i * lda + p]!;
          const bv = transB ? b[j * ldb + p]! : b[p * ldb + j]!;
          sum += av * bv;
        }
        v = alpha * sum;
      }
      if (beta !== 0) v += beta * c[i * ldc + j]!;
      if (bias) v += bias[j]!;
      c[i * ldc + j] = v;
    }
  }
}

/**
 * C[m x n] = A[m x k] * B[k x n] + bias, like f32_gemm_nopack: no transposes, alpha 1, beta 0 (C is not read);
 * k <= 0 gives C = bias (or 0).
 */
export function gemmNopackReference(
  c: Values, ldc: number, a: ArrayLike<number>, lda: number, b: ArrayLike<number>, ldb: number,
  m: number, n: number, k: number, bias?: ArrayLike<number>,
): void {
  gemmReference(c, ldc, a, lda, b, ldb, m, n, k, false, false, 1, 0, bias);
}
