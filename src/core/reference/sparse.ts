// Reference sparse kernels in plain TypeScript (f64 math), mirroring assembly/sparse.ts, for tests: the CSR-by-dense
// product, its transposed scatter-add, and the row gather / scatter-add. Like the kernels, each checks every index it
// will follow before writing anything, and throws InvalidArgumentError naming the position, the row and the bound.
import { InvalidArgumentError } from "../../errors.js";
import type { Values } from "./vector.js";

/**
 * The text both the references and the typed API use for an index outside [0, bound):
 * "column index 12 at position 7 (row 2) is outside [0, 10)".
 */
export function badIndexText(what: string, index: number, position: number, row: number, bound: number): string {
  return `${what} ${index} at position ${position} (row ${row}) is outside [0, ${bound})`;
}

/** Throws InvalidArgumentError for the first colIdx[k] of any row's range [rowPtr[r], rowPtr[r+1]) outside [0, fanIn). */
export function requireCsrColumnsReference(kernel: string, rowPtr: ArrayLike<number>, colIdx: ArrayLike<number>, rows: number, fanIn: number): void {
  for (let r = 0; r < rows; r++) {
    for (let k = rowPtr[r]!; k < rowPtr[r + 1]!; k++) {
      const c = colIdx[k]!;
      if (!(c >= 0 && c < fanIn)) throw new InvalidArgumentError(`${kernel}: ${badIndexText("column index", c, k, r, fanIn)}`);
    }
  }
}

/** Throws InvalidArgumentError for the first idx[i] (i < count) outside [0, bound); row i is the i-th moved row. */
export function requireRowIndicesReference(kernel: string, idx: ArrayLike<number>, count: number, bound: number): void {
  for (let i = 0; i < count; i++) {
    const c = idx[i]!;
    if (!(c >= 0 && c < bound)) throw new InvalidArgumentError(`${kernel}: ${badIndexText("row index", c, i, i, bound)}`);
  }
}

/**
 * Y[r, 0..n) = beta * Y[r] + sum over k in [rowPtr[r], rowPtr[r+1]) of values[k] * W[colIdx[k], 0..n) + bias, for
 * r < rows, like f32_csr_gemm: beta == 0 means Y is not read; only the rows x n elements of Y are written.
 */
export function csrGemmReference(
  y: Values, ldy: number, rowPtr: ArrayLike<number>, colIdx: ArrayLike<number>, values: ArrayLike<number>,
  w: ArrayLike<number>, ldw: number, fanIn: number, rows: number, n: number, bias: ArrayLike<number> | undefined, beta: number,
): void {
  requireCsrColumnsReference("csrGemmReference", rowPtr, colIdx, rows, fanIn);
  const b = Math.fround(beta);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let k = rowPtr[r]!; k < rowPtr[r + 1]!; k++) v += values[k]! * w[colIdx[k]! * ldw + j]!;
      if (b !== 0) v += b * y[r * ldy + j]!;
      if (bias) v += bias[j]!;
      y[r * ldy + j] = v;
    }
  }
}

/**
 * dW[colIdx[k], 0..n) += alpha * values[k] * D[r, 0..n) for each row r < rows and k in [rowPtr[r], rowPtr[r+1]),
 * like f32_csr_scatter_add (pass a Float64Array dw to accumulate in f64).
 */
export function csrScatterAddReference(
  dw: Values, lddw: number, fanIn: number, rowPtr: ArrayLike<number>, colIdx: ArrayLike<number>, values: ArrayLike<number>,
  d: ArrayLike<number>, ldd: number, rows: number, n: number, alpha: number,
): void {
  requireCsrColumnsReference("csrScatterAddReference", rowPtr, colIdx, rows, fanIn);
  const a = Math.fround(alpha);
  for (let r = 0; r < rows; r++) {
    for (let k = rowPtr[r]!; k < rowPtr[r + 1]!; k++) {
      const s = a * values[k]!;
      const row = colIdx[k]! * lddw;
      for (let j = 0; j < n; j++) dw[row + j] = dw[row + j]! + s * d[r * ldd + j]!;
    }
  }
}

/** out[i, 0..n) = src[idx[i], 0..n) for i < count, like f32_rows_gather. */
export function rowsGatherReference(
  out: Values, ldout: number, src: ArrayLike<number>, ldsrc: number, srcRows: number, idx: ArrayLike<number>, count: number, n: number,
): void {
  requireRowIndicesReference("rowsGatherReference", idx, count, srcRows);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < n; j++) out[i * ldout + j] = src[idx[i]! * ldsrc + j]!;
  }
}

/** dst[idx[i], 0..n) += alpha * src[i, 0..n) for i < count, in order, like f32_rows_scatter_add. */
export function rowsScatterAddReference(
  dst: Values, lddst: number, dstRows: number, idx: ArrayLike<number>, count: number, src: ArrayLike<number>, ldsrc: number,
  n: number, alpha: number,
): void {
  requireRowIndicesReference("rowsScatterAddReference", idx, count, dstRows);
  const a = Math.fround(alpha);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < n; j++) dst[idx[i]! * lddst + j] = dst[idx[i]! * lddst + j]! + a * src[i * ldsrc + j]!;
  }
}
