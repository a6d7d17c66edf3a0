// Typed sparse kernels over arena slabs, for the sparse input layer: a CSR batch times a dense weight matrix
// (forward), the transposed scatter-add (its weight gradient, touching only the rows of features present), and
// gathering / scatter-adding a set of weight rows (what a parameter-server client pulls and pushes). Checks every
// shape and the CSR's row offsets here; the core checks each column / row index (one compare per index) and writes
// nothing when one is out of range, which this module reports as an InvalidArgumentError naming it.
import { InvalidArgumentError, ShapeError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { describeValue } from "../util/describe.js";
import { describeSlab, requireMatrices, requireOptions, requireScalar, requireSlab } from "./checks.js";
import { address, describe, type Matrix } from "./matrix.js";
import { badIndexText } from "./reference/sparse.js";

/**
 * A rows x cols sparse matrix in compressed sparse row form over three slabs: row r holds the entries at positions
 * [rowPtr[rowOffset + r], rowPtr[rowOffset + r + 1]) of colIdx (column indices, i32 in [0, cols)) and values (f32).
 * rowPtr and colIdx hold i32 bit patterns in their f32 slots (write them through int32View). The first offset may
 * be > 0, so a slice of rows of a larger CSR (a portion of a batch) is a CsrMatrix over the same slabs.
 */
export interface CsrMatrix {
  /** rows + 1 non-decreasing i32 offsets into colIdx and values, from element rowOffset. */
  readonly rowPtr: Slab;
  /** Column index of each entry (i32). */
  readonly colIdx: Slab;
  /** Value of each entry (f32). */
  readonly values: Slab;
  readonly rows: number;
  /** Columns: the fan-in, the rows of the dense matrix it multiplies. */
  readonly cols: number;
  /** First element of rowPtr that belongs to this matrix. */
  readonly rowOffset: number;
}

/** Options of csr(). */
export interface CsrOptions {
  /** First element of rowPtr used. Default 0. */
  rowOffset?: number;
}

/** Options of csrGemm. */
export interface CsrGemmOptions {
  /** Scale of Y's old contents; 0 means Y is not read. Default 0. */
  beta?: number;
  /** n values added to every row of Y. Default none. */
  bias?: Slab;
}

/** Options of csrScatterAdd. */
export interface CsrScatterAddOptions {
  /** Scale of the added product. Default 1. */
  alpha?: number;
}

/** Options of gatherRows. */
export interface GatherRowsOptions {
  /** First element of idx used. Default 0. */
  indexOffset?: number;
}

/** Options of scatterAddRows. */
export interface ScatterAddRowsOptions {
  /** First element of idx used. Default 0. */
  indexOffset?: number;
  /** Scale of the added rows. Default 1. */
  alpha?: number;
}

/** The defaults of every option above. */
export const SPARSE_DEFAULTS = { rowOffset: 0, beta: 0, alpha: 1, indexOffset: 0 } as const;

function requireCount(kernel: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${kernel}: ${name} must be an integer >= 0, got ${describeValue(value)}`);
  }
}

/**
 * A live Int32Array of `count` i32 values over `slab` from element `offset` (no copy: writes reach the slab; take a
 * new view after any allocation that may grow memory). Defaults: offset 0, count the rest of the slab.
 */
export function int32View(slab: Slab, offset = 0, count?: number): Int32Array {
  requireSlab("int32View", "slab", slab);
  requireCount("int32View", "offset", offset);
  const n = count ?? Math.max(0, slab.length - offset);
  requireCount("int32View", "count", n);
  if (offset + n > slab.length) throw new ShapeError(`int32View: ${describeSlab("slab", slab)} is too short for ${n} values from offset ${offset}`);
  return new Int32Array(slab.core.memory.buffer, slab.ptr + 4 * offset, n);
}

/**
 * A CSR view (no copy) of rows x cols over rowPtr, colIdx and values. Throws InvalidArgumentError for what is not a
 * slab or a count, ShapeError when rowPtr has fewer than rowOffset + rows + 1 elements, InvalidStateError for a
 * released slab. The offsets and indices themselves are checked by each kernel call (they may change in between).
 */
export function csr(rowPtr: Slab, colIdx: Slab, values: Slab, rows: number, cols: number, options: CsrOptions = {}): CsrMatrix {
  requireOptions("csr", options);
  const m: CsrMatrix = { rowPtr, colIdx, values, rows, cols, rowOffset: options.rowOffset ?? SPARSE_DEFAULTS.rowOffset };
  requireCsrShape("csr", "x", m);
  return m;
}

/** "4x100 CSR". */
export function describeCsr(m: Pick<CsrMatrix, "rows" | "cols">): string {
  return `${m.rows}x${m.cols} CSR`;
}

// The CSR's slabs (live, of `core` when given), counts, and rowPtr's length.
function requireCsrShape(kernel: string, name: string, m: CsrMatrix, core?: Core): void {
  if (typeof m !== "object" || m === null) throw new InvalidArgumentError(`${kernel}: ${name} must be a CsrMatrix (from csr()), got ${describeValue(m)}`);
  requireSlab(kernel, `${name}'s rowPtr`, m.rowPtr, core);
  requireSlab(kernel, `${name}'s colIdx`, m.colIdx, core);
  requireSlab(kernel, `${name}'s values`, m.values, core);
  requireCount(kernel, `${name}'s rows`, m.rows);
  requireCount(kernel, `${name}'s cols`, m.cols);
  requireCount(kernel, `${name}'s rowOffset`, m.rowOffset);
  if (m.cols > 0x7fffffff) throw new InvalidArgumentError(`${kernel}: ${name}'s cols must be at most 2^31 - 1 (i32 indices), got ${m.cols}`);
  if (m.rowOffset + m.rows + 1 > m.rowPtr.length) {
    throw new ShapeError(
      `${kernel}: ${name} (${describeCsr(m)}) needs ${m.rows + 1} row offsets from element ${m.rowOffset}; its ${describeSlab("rowPtr", m.rowPtr)} is too short`,
    );
  }
}

/**
 * Checks a CSR argument and its row offsets: first >= 0, non-decreasing, the last within colIdx and values
 * (InvalidArgumentError / ShapeError naming the row). Returns the offsets view.
 */
function requireCsr(kernel: string, name: string, m: CsrMatrix, core: Core): Int32Array {
  requireCsrShape(kernel, name, m, core);
  const ptr = int32View(m.rowPtr, m.rowOffset, m.rows + 1);
  if (ptr[0]! < 0) throw new InvalidArgumentError(`${kernel}: ${name}'s rowPtr[${m.rowOffset}] (row 0's start) is ${ptr[0]}; offsets must be >= 0`);
  for (let r = 0; r < m.rows; r++) {
    if (ptr[r + 1]! < ptr[r]!) {
      throw new InvalidArgumentError(
        `${kernel}: ${name}'s row ${r} ends at ${ptr[r + 1]} (rowPtr[${m.rowOffset + r + 1}]) before it starts at ${ptr[r]}; row offsets must not decrease`,
      );
    }
  }
  const end = ptr[m.rows]!;
  for (const [part, slab] of [["colIdx", m.colIdx], ["values", m.values]] as const) {
    if (end > slab.length) {
      throw new ShapeError(`${kernel}: ${name}'s rows end at position ${end}, past the end of ${describeSlab(`its ${part}`, slab)}`);
    }
  }
  return ptr;
}

// The row of the first range [ptr[r], ptr[r+1]) that holds position k.
function rowOf(ptr: Int32Array, k: number): number {
  let r = 0;
  while (r + 1 < ptr.length - 1 && !(ptr[r]! <= k && k < ptr[r + 1]!)) r++;
  return r;
}

function requireIndexOffset(kernel: string, idx: Slab, offset: number, count: number): void {
  requireCount(kernel, "indexOffset", offset);
  if (offset + count > idx.length) {
    throw new ShapeError(`${kernel}: ${describeSlab("idx", idx)} is too short for ${count} row indices from element ${offset}`);
  }
}

/**
 * Y = beta * Y + X W (+ bias per row): X a rows x fanIn CSR, W fanIn x n, Y rows x n (strided matrices allowed).
 * Throws before touching memory: ShapeError for shapes that do not fit, NonFiniteError for beta, InvalidArgumentError
 * for bad row offsets or a column index outside [0, fanIn) (naming its position, row and the bound).
 */
export function csrGemm(core: Core, y: Matrix, x: CsrMatrix, w: Matrix, options: CsrGemmOptions = {}): void {
  const kernel = "csrGemm";
  requireOptions(kernel, options);
  requireMatrices(kernel, core, [["y", y], ["w", w]]);
  const { beta = SPARSE_DEFAULTS.beta, bias } = options;
  requireScalar(kernel, "beta", beta);
  if (bias !== undefined) requireSlab(kernel, "bias", bias, core);
  const ptr = requireCsr(kernel, "x", x, core);
  const shapes = (): string => `Y ${describe(y)}, X ${describeCsr(x)}, W ${describe(w)}`;
  if (w.rows !== x.cols) throw new ShapeError(`${kernel}: W must have one row per column of X (${x.cols}); ${shapes()}`);
  if (y.rows !== x.rows || y.cols !== w.cols) throw new ShapeError(`${kernel}: Y must be ${x.rows}x${w.cols}; ${shapes()}`);
  if (bias && bias.length < y.cols) throw new ShapeError(`${kernel}: ${describeSlab("bias", bias)} is too short, Y has ${y.cols} columns`);
  const bad = core.exports.f32_csr_gemm(
    address(y), y.ld, x.rowPtr.at(x.rowOffset), x.colIdx.ptr, x.values.ptr, address(w), w.ld, x.cols, x.rows, y.cols, bias ? bias.ptr : 0, beta,
  );
  if (bad >= 0) throw badColumn(kernel, x, ptr, bad, `the rows of W (${describe(w)})`);
}

/**
 * dW += alpha * X^T D: for each entry (r, c, v) of the rows x fanIn CSR X, dW[c] += alpha * v * D[r]; dW fanIn x n,
 * D rows x n. Only the rows of features present are touched; repeated indices add up. Throws as csrGemm does.
 */
export function csrScatterAdd(core: Core, dw: Matrix, x: CsrMatrix, d: Matrix, options: CsrScatterAddOptions = {}): void {
  const kernel = "csrScatterAdd";
  requireOptions(kernel, options);
  requireMatrices(kernel, core, [["dw", dw], ["d", d]]);
  const { alpha = SPARSE_DEFAULTS.alpha } = options;
  requireScalar(kernel, "alpha", alpha);
  const ptr = requireCsr(kernel, "x", x, core);
  const shapes = (): string => `dW ${describe(dw)}, X ${describeCsr(x)}, D ${describe(d)}`;
  if (dw.rows !== x.cols) throw new ShapeError(`${kernel}: dW must have one row per column of X (${x.cols}); ${shapes()}`);
  if (d.rows !== x.rows || d.cols !== dw.cols) throw new ShapeError(`${kernel}: D must be ${x.rows}x${dw.cols}; ${shapes()}`);
  const bad = core.exports.f32_csr_scatter_add(
    address(dw), dw.ld, x.cols, x.rowPtr.at(x.rowOffset), x.colIdx.ptr, x.values.ptr, address(d), d.ld, x.rows, d.cols, alpha,
  );
  if (bad >= 0) throw badColumn(kernel, x, ptr, bad, `the rows of dW (${describe(dw)})`);
}

function badColumn(kernel: string, x: CsrMatrix, ptr: Int32Array, position: number, bound: string): InvalidArgumentError {
  const index = int32View(x.colIdx, position, 1)[0]!;
  return new InvalidArgumentError(`${kernel}: x's ${badIndexText("column index", index, position, rowOf(ptr, position), x.cols)}, ${bound}`);
}

/**
 * out[i] = src[idx[indexOffset + i]] for each of out's rows (out and src have the same number of columns).
 * Throws before touching memory: ShapeError for shapes that do not fit, InvalidArgumentError for an index outside
 * [0, src.rows) (naming its position in idx, the row of out and the bound).
 */
export function gatherRows(core: Core, out: Matrix, src: Matrix, idx: Slab, options: GatherRowsOptions = {}): void {
  const kernel = "gatherRows";
  requireOptions(kernel, options);
  requireMatrices(kernel, core, [["out", out], ["src", src]]);
  requireSlab(kernel, "idx", idx, core);
  const { indexOffset = SPARSE_DEFAULTS.indexOffset } = options;
  requireIndexOffset(kernel, idx, indexOffset, out.rows);
  if (out.cols !== src.cols) throw new ShapeError(`${kernel}: out is ${describe(out)} but src is ${describe(src)}; they must have the same columns`);
  const bad = core.exports.f32_rows_gather(address(out), out.ld, address(src), src.ld, src.rows, idx.at(indexOffset), out.rows, out.cols);
  if (bad >= 0) throw badRow(kernel, idx, indexOffset, bad, src.rows, `the rows of src (${describe(src)})`);
}

/**
 * dst[idx[indexOffset + i]] += alpha * src[i] for each of src's rows, in order (repeated indices add up).
 * Throws as gatherRows does, for an index outside [0, dst.rows).
 */
export function scatterAddRows(core: Core, dst: Matrix, src: Matrix, idx: Slab, options: ScatterAddRowsOptions = {}): void {
  const kernel = "scatterAddRows";
  requireOptions(kernel, options);
  requireMatrices(kernel, core, [["dst", dst], ["src", src]]);
  requireSlab(kernel, "idx", idx, core);
  const { indexOffset = SPARSE_DEFAULTS.indexOffset, alpha = SPARSE_DEFAULTS.alpha } = options;
  requireScalar(kernel, "alpha", alpha);
  requireIndexOffset(kernel, idx, indexOffset, src.rows);
  if (dst.cols !== src.cols) throw new ShapeError(`${kernel}: dst is ${describe(dst)} but src is ${describe(src)}; they must have the same columns`);
  const bad = core.exports.f32_rows_scatter_add(address(dst), dst.ld, dst.rows, idx.at(indexOffset), src.rows, address(src), src.ld, src.cols, alpha);
  if (bad >= 0) throw badRow(kernel, idx, indexOffset, bad, dst.rows, `the rows of dst (${describe(dst)})`);
}

function badRow(kernel: string, idx: Slab, offset: number, i: number, bound: number, what: string): InvalidArgumentError {
  const index = int32View(idx, offset + i, 1)[0]!;
  return new InvalidArgumentError(`${kernel}: idx's ${badIndexText("row index", index, offset + i, i, bound)}, ${what}`);
}
