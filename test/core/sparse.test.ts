// Sparse kernels against the TypeScript references on both builds: csrGemm (X_csr W + b) and csrScatterAdd
// (dW += alpha X^T D) over output widths from 1 to 257 and CSR shapes with empty rows, an all-empty matrix, one
// feature, repeated indices, rows of thousands of entries, rowPtr starting at an offset, strides and unaligned
// matrices, beta 0 / 1 / other, bias or none, several alphas; the row gather and scatter-add; agreement with dense
// gemm; and the errors: an index out of range names its position, row and bound, as the reference does, and
// nothing is written (neither by the typed API nor by the raw kernel).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Kernels } from "../../src/core/kernels.js";
import { matrix } from "../../src/core/matrix.js";
import * as ref from "../../src/core/reference/sparse.js";
import { csr, int32View, type CsrMatrix } from "../../src/core/sparse.js";
import { InvalidArgumentError, InvalidStateError, NonFiniteError, ShapeError } from "../../src/errors.js";
import type { Slab } from "../../src/runtime/arena.js";
import { withSlabs } from "../gradcheck.js";
import { EDGE_SIZES, assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

/** Output widths: the edge sizes plus each block boundary of the kernels (32, 16, 8, 4 and the scalar tail). */
const WIDTHS = [...new Set([...EDGE_SIZES, 32, 63, 128])].sort((a, b) => a - b);
const SCALARS = [
  { beta: 0, bias: false, alpha: 1 },
  { beta: 1, bias: true, alpha: -0.25 },
  { beta: -0.5, bias: false, alpha: 2 },
  { beta: 0.75, bias: true, alpha: 0 },
] as const;
const TIMEOUT = { timeout: 120_000 };
const SENTINEL = 12345.5;

/** A CSR in host arrays; positions before rowPtr[0] hold junk (an out-of-range index, NaN) that must not be read. */
interface HostCsr {
  rows: number;
  fanIn: number;
  rowPtr: Int32Array;
  colIdx: Int32Array;
  values: Float32Array;
}

/** The CSR shapes every width is swept over. */
interface CsrCase {
  name: string;
  rows: number;
  fanIn: number;
  nnz: (r: number, random: () => number) => number;
  /** rowPtr[0]: junk entries before the first row. */
  start: number;
  /** rowOffset within the rowPtr slab. */
  rowOffset: number;
}

const CASES: readonly CsrCase[] = [
  { name: "mixed rows (some empty)", rows: 13, fanIn: 50, nnz: (r, random) => (r % 4 === 1 ? 0 : Math.floor(random() * 9)), start: 5, rowOffset: 2 },
  { name: "all-empty matrix", rows: 4, fanIn: 20, nnz: () => 0, start: 3, rowOffset: 0 },
  { name: "one feature", rows: 5, fanIn: 1, nnz: (r) => r, start: 0, rowOffset: 1 },
  { name: "repeated indices (fan-in 3, 10 per row)", rows: 6, fanIn: 3, nnz: () => 10, start: 1, rowOffset: 0 },
  { name: "rows of thousands of entries", rows: 3, fanIn: 10_000, nnz: (r) => 1500 + 1000 * r, start: 17, rowOffset: 3 },
  { name: "one row", rows: 1, fanIn: 7, nnz: () => 4, start: 0, rowOffset: 0 },
  { name: "no rows", rows: 0, fanIn: 9, nnz: () => 0, start: 2, rowOffset: 1 },
];

function randomCsr(random: () => number, c: CsrCase): HostCsr {
  const counts = Array.from({ length: c.rows }, (_, r) => c.nnz(r, random));
  const total = counts.reduce((a, b) => a + b, 0);
  const rowPtr = new Int32Array(c.rows + 1);
  rowPtr[0] = c.start;
  for (let r = 0; r < c.rows; r++) rowPtr[r + 1] = rowPtr[r]! + counts[r]!;
  const colIdx = new Int32Array(c.start + total).fill(-7);
  const values = new Float32Array(c.start + total).fill(Number.NaN);
  for (let k = c.start; k < colIdx.length; k++) {
    colIdx[k] = Math.floor(random() * c.fanIn);
    values[k] = 2 * random() - 1;
  }
  return { rows: c.rows, fanIn: c.fanIn, rowPtr, colIdx, values };
}

/** The most entries of any one row, and of any one feature (for tolerances). */
function maxCounts(h: HostCsr): { row: number; feature: number } {
  let row = 0;
  const perFeature = new Map<number, number>();
  for (let r = 0; r < h.rows; r++) {
    row = Math.max(row, h.rowPtr[r + 1]! - h.rowPtr[r]!);
    for (let k = h.rowPtr[r]!; k < h.rowPtr[r + 1]!; k++) perFeature.set(h.colIdx[k]!, (perFeature.get(h.colIdx[k]!) ?? 0) + 1);
  }
  return { row, feature: Math.max(0, ...perFeature.values()) };
}

/** Copies a host CSR into three slabs (rowPtr at rowOffset, junk around it) and runs body on its CsrMatrix. */
function withCsr<R>(kernels: Kernels, h: HostCsr, rowOffset: number, body: (x: CsrMatrix) => R): R {
  return withSlabs(kernels, [rowOffset + h.rows + 3, Math.max(1, h.colIdx.length + 2), Math.max(1, h.values.length + 2)], ([p, c, v]) => {
    int32View(p!).fill(-99);
    int32View(p!, rowOffset, h.rows + 1).set(h.rowPtr);
    int32View(c!).fill(-5);
    int32View(c!).set(h.colIdx);
    v!.f32().fill(Number.NaN);
    v!.set(h.values);
    return body(csr(p!, c!, v!, h.rows, h.fanIn, { rowOffset }));
  });
}

/** A slab holding a rows x cols matrix at element `offset` with leading dimension `ld`, the rest SENTINEL. */
function sentinelSlabLength(rows: number, cols: number, ld: number, offset: number): number {
  return offset + Math.max(0, rows - 1) * ld + cols + 3;
}

for (const variant of variantsToTest()) {
  describe(`sparse kernels (${variant} build)`, () => {
    test(`csrGemm matches the reference for n in ${WIDTHS.join(",")} over every CSR case, strided, beta and bias`, TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1201);
      let caseNo = 0;
      for (const n of WIDTHS) {
        for (const c of CASES) {
          const h = randomCsr(random, c);
          const tol = { atol: 5e-7 * (maxCounts(h).row + 4), rtol: 1e-5 };
          const [ldy, ldw, offY, offW] = [n + (caseNo % 3), n + ((caseNo + 1) % 4), caseNo % 2, (caseNo + 1) % 3];
          caseNo++;
          const w = randomArray(random, offW + c.fanIn * ldw);
          const bias = randomArray(random, n);
          withCsr(kernels, h, c.rowOffset, (x) => {
            withSlabs(kernels, [sentinelSlabLength(c.rows, n, ldy, offY), w.length, n], ([sy, sw, sb]) => {
              sw!.set(w);
              sb!.set(bias);
              for (const s of SCALARS) {
                const y0 = new Float32Array(sy!.length).fill(SENTINEL);
                for (let r = 0; r < c.rows; r++) {
                  for (let j = 0; j < n; j++) y0[offY + r * ldy + j] = s.beta === 0 ? Number.NaN : 2 * random() - 1;
                }
                sy!.set(y0);
                const expected = Float64Array.from(y0);
                ref.csrGemmReference(expected.subarray(offY), ldy, h.rowPtr, h.colIdx, h.values, w.subarray(offW), ldw, c.fanIn, c.rows, n, s.bias ? bias : undefined, s.beta);
                kernels.csrGemm(matrix(sy!, c.rows, n, { ld: ldy, offset: offY }), x, matrix(sw!, c.fanIn, n, { ld: ldw, offset: offW }), {
                  beta: s.beta,
                  bias: s.bias ? sb! : undefined,
                });
                assertClose(sy!.f32(), expected, tol, `${c.name} n=${n} ldy=${ldy} ldw=${ldw} ${JSON.stringify(s)}`);
              }
            });
          });
        }
      }
    });

    test(`csrScatterAdd matches the reference for n in ${WIDTHS.join(",")} over every CSR case, strided, with alphas`, TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1301);
      let caseNo = 0;
      for (const n of WIDTHS) {
        for (const c of CASES) {
          const h = randomCsr(random, c);
          const tol = { atol: 5e-7 * (maxCounts(h).feature + 4), rtol: 1e-5 };
          const [lddw, ldd, offW, offD] = [n + (caseNo % 4), n + ((caseNo + 2) % 3), (caseNo + 1) % 2, caseNo % 3];
          caseNo++;
          const d = randomArray(random, offD + Math.max(1, c.rows) * ldd);
          withCsr(kernels, h, c.rowOffset, (x) => {
            withSlabs(kernels, [sentinelSlabLength(c.fanIn, n, lddw, offW), d.length], ([sw, sd]) => {
              sd!.set(d);
              for (const s of SCALARS) {
                const w0 = new Float32Array(sw!.length).fill(SENTINEL);
                for (let r = 0; r < c.fanIn; r++) for (let j = 0; j < n; j++) w0[offW + r * lddw + j] = 2 * random() - 1;
                sw!.set(w0);
                const expected = Float64Array.from(w0);
                ref.csrScatterAddReference(expected.subarray(offW), lddw, c.fanIn, h.rowPtr, h.colIdx, h.values, d.subarray(offD), ldd, c.rows, n, s.alpha);
                kernels.csrScatterAdd(matrix(sw!, c.fanIn, n, { ld: lddw, offset: offW }), x, matrix(sd!, c.rows, n, { ld: ldd, offset: offD }), { alpha: s.alpha });
                assertClose(sw!.f32(), expected, tol, `${c.name} n=${n} lddw=${lddw} ldd=${ldd} alpha=${s.alpha}`);
              }
            });
          });
        }
      }
    });

    test("gatherRows and scatterAddRows match the reference (repeated indices, strides, an index offset, alphas)", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1401);
      let caseNo = 0;
      for (const n of WIDTHS) {
        for (const [count, srcRows] of [[0, 4], [1, 1], [5, 3], [40, 100], [300, 50]] as const) {
          const [ldBig, ldSmall, off, indexOffset] = [n + (caseNo % 3), n + ((caseNo + 1) % 2), caseNo % 2, caseNo % 3];
          caseNo++;
          const idx = Int32Array.from({ length: count }, () => Math.floor(random() * srcRows));
          const big = randomArray(random, off + srcRows * ldBig);
          withSlabs(kernels, [big.length + 3, sentinelSlabLength(count, n, ldSmall, off), indexOffset + count + 1], ([sBig, sSmall, sIdx]) => {
            int32View(sIdx!).fill(-1);
            int32View(sIdx!, indexOffset, count).set(idx);
            const bigM = matrix(sBig!, srcRows, n, { ld: ldBig, offset: off });
            const smallM = matrix(sSmall!, count, n, { ld: ldSmall, offset: off });
            // Gather.
            sBig!.f32().fill(SENTINEL);
            sBig!.set(big);
            sSmall!.f32().fill(SENTINEL);
            const gathered = Float64Array.from(sSmall!.f32());
            ref.rowsGatherReference(gathered.subarray(off), ldSmall, big.subarray(off), ldBig, srcRows, idx, count, n);
            kernels.gatherRows(smallM, bigM, sIdx!, { indexOffset });
            assert.deepEqual(Array.from(sSmall!.f32()), Array.from(gathered, Math.fround), `gather n=${n} count=${count}`);
            // Scatter-add back, several alphas.
            for (const alpha of [1, -0.5, 3]) {
              const expected = Float64Array.from(sBig!.f32());
              const src = sSmall!.toArray();
              ref.rowsScatterAddReference(expected.subarray(off), ldBig, srcRows, idx, count, src.subarray(off), ldSmall, n, alpha);
              kernels.scatterAddRows(bigM, smallM, sIdx!, { indexOffset, alpha });
              const perRow = Math.max(1, ...Array.from(new Set(idx), (i) => idx.filter((v) => v === i).length));
              assertClose(sBig!.f32(), expected, { atol: 5e-7 * (perRow + 4), rtol: 1e-5 }, `scatter n=${n} count=${count} alpha=${alpha}`);
            }
          });
        }
      }
    });

    test("a slice of rows (rowOffset) gives those rows of the whole product; csrGemm and csrScatterAdd agree with dense gemm", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1501);
      const c: CsrCase = { name: "batch", rows: 10, fanIn: 40, nnz: (_, rnd) => Math.floor(rnd() * 12), start: 0, rowOffset: 0 };
      const h = randomCsr(random, c);
      const n = 19;
      const dense = new Float32Array(c.rows * c.fanIn);
      for (let r = 0; r < c.rows; r++) for (let k = h.rowPtr[r]!; k < h.rowPtr[r + 1]!; k++) dense[r * c.fanIn + h.colIdx[k]!]! += h.values[k]!;
      withCsr(kernels, h, 0, (whole) => {
        withSlabs(kernels, [c.fanIn * n, c.rows * n, c.rows * n, c.rows * c.fanIn, c.fanIn * n, c.fanIn * n, c.rows * n], ([sw, sy, sDense, sx, sdw, sdwDense, sd]) => {
          sw!.set(randomArray(random, c.fanIn * n));
          sx!.set(dense);
          sd!.set(randomArray(random, c.rows * n));
          const W = matrix(sw!, c.fanIn, n);
          kernels.csrGemm(matrix(sy!, c.rows, n), whole, W);
          kernels.gemm(matrix(sDense!, c.rows, n), matrix(sx!, c.rows, c.fanIn), W);
          assertClose(sy!.f32(), sDense!.f32(), { atol: 1e-5, rtol: 1e-5 }, "csrGemm vs gemm");
          // Rows [3, 8) as a CsrMatrix over the same slabs: rowPtr from element 3, its first offset > 0.
          const part = csr(whole.rowPtr, whole.colIdx, whole.values, 5, c.fanIn, { rowOffset: 3 });
          const partY = matrix(sy!, 5, n);
          kernels.csrGemm(partY, part, W);
          assertClose(sy!.f32().subarray(0, 5 * n), sDense!.f32().subarray(3 * n, 8 * n), { atol: 1e-5, rtol: 1e-5 }, "rows 3..8");
          // dW = X^T D both ways.
          sdw!.f32().fill(0);
          kernels.csrScatterAdd(matrix(sdw!, c.fanIn, n), whole, matrix(sd!, c.rows, n), { alpha: 0.5 });
          kernels.gemm(matrix(sdwDense!, c.fanIn, n), matrix(sx!, c.rows, c.fanIn), matrix(sd!, c.rows, n), { transA: true, alpha: 0.5 });
          assertClose(sdw!.f32(), sdwDense!.f32(), { atol: 1e-5, rtol: 1e-5 }, "csrScatterAdd vs gemm(transA)");
        });
      });
    });

    test("an index out of range: InvalidArgumentError naming position, row and bound (as the reference), nothing written", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1601);
      const c: CsrCase = { name: "bad", rows: 6, fanIn: 30, nnz: () => 7, start: 4, rowOffset: 1 };
      for (const [badRow, badAt, badIndex] of [[0, 0, 30], [3, 2, -1], [5, 6, 2 ** 31 - 1], [2, 4, -(2 ** 31)]] as const) {
        for (const n of [1, 5, 64]) {
          const h = randomCsr(random, c);
          const position = h.rowPtr[badRow]! + badAt;
          h.colIdx[position] = badIndex;
          const phrase = ref.badIndexText("column index", badIndex, position, badRow, c.fanIn);
          assert.throws(
            () => ref.csrGemmReference(new Float64Array(c.rows * n), n, h.rowPtr, h.colIdx, h.values, new Float32Array(c.fanIn * n), n, c.fanIn, c.rows, n, undefined, 0),
            (e: Error) => e instanceof InvalidArgumentError && e.message === `csrGemmReference: ${phrase}`,
          );
          assert.throws(
            () => ref.csrScatterAddReference(new Float64Array(c.fanIn * n), n, c.fanIn, h.rowPtr, h.colIdx, h.values, new Float32Array(c.rows * n), n, c.rows, n, 1),
            (e: Error) => e instanceof InvalidArgumentError && e.message === `csrScatterAddReference: ${phrase}`,
          );
          withCsr(kernels, h, c.rowOffset, (x) => {
            withSlabs(kernels, [c.rows * n, c.fanIn * n], ([sy, sw]) => {
              sy!.set(randomArray(random, c.rows * n));
              sw!.set(randomArray(random, c.fanIn * n));
              const [y0, w0] = [sy!.toArray(), sw!.toArray()];
              const [Y, W] = [matrix(sy!, c.rows, n), matrix(sw!, c.fanIn, n)];
              assert.throws(() => kernels.csrGemm(Y, x, W, { beta: 1 }), (e: Error) =>
                e instanceof InvalidArgumentError && e.message === `csrGemm: x's ${phrase}, the rows of W (${c.fanIn}x${n})`);
              assert.throws(() => kernels.csrScatterAdd(W, x, Y), (e: Error) =>
                e instanceof InvalidArgumentError && e.message === `csrScatterAdd: x's ${phrase}, the rows of dW (${c.fanIn}x${n})`);
              assert.deepEqual(sy!.toArray(), y0, "Y was written");
              assert.deepEqual(sw!.toArray(), w0, "W was written");
              // The raw kernels check too: the same position, nothing written.
              const e = kernels.core.exports;
              const rowPtr = x.rowPtr.at(x.rowOffset);
              assert.equal(e.f32_csr_gemm(sy!.ptr, n, rowPtr, x.colIdx.ptr, x.values.ptr, sw!.ptr, n, c.fanIn, c.rows, n, 0, 0), position);
              assert.equal(e.f32_csr_scatter_add(sw!.ptr, n, c.fanIn, rowPtr, x.colIdx.ptr, x.values.ptr, sy!.ptr, n, c.rows, n, 1), position);
              assert.deepEqual(sy!.toArray(), y0, "Y was written by the raw kernel");
              assert.deepEqual(sw!.toArray(), w0, "W was written by the raw kernel");
              // A smaller fanIn makes in-range indices bad: the raw kernel reports the first, at any width.
              let first = -1;
              for (let k = h.rowPtr[0]!; k < h.rowPtr[c.rows]! && first < 0; k++) if (!(h.colIdx[k]! >= 0 && h.colIdx[k]! < 10)) first = k;
              assert.equal(e.f32_csr_scatter_add(sw!.ptr, n, 10, rowPtr, x.colIdx.ptr, x.values.ptr, sy!.ptr, n, c.rows, n, 1), first);
              assert.deepEqual(sw!.toArray(), w0, "W was written with a smaller fanIn");
              // No index is in range of a fan-in <= 0: the first entry is reported.
              for (const bound of [0, -1, -(2 ** 31)]) {
                assert.equal(e.f32_csr_gemm(sy!.ptr, n, rowPtr, x.colIdx.ptr, x.values.ptr, sw!.ptr, n, bound, c.rows, n, 0, 0), c.start, `fanIn ${bound}`);
              }
              assert.deepEqual(sy!.toArray(), y0, "Y was written with a fanIn <= 0");
            });
          });
        }
      }
      // Row indices of the gather / scatter-add.
      withSlabs(kernels, [4 * 3, 5 * 3, 8], ([sBig, sSmall, sIdx]) => {
        sBig!.set(randomArray(random, 12));
        sSmall!.set(randomArray(random, 15));
        const [big0, small0] = [sBig!.toArray(), sSmall!.toArray()];
        const idx = Int32Array.from([0, 3, 1, 4, 2]);
        int32View(sIdx!).set([9, 9, ...idx]);
        const phrase = ref.badIndexText("row index", 4, 3, 3, 4);
        assert.throws(() => ref.rowsGatherReference(new Float64Array(15), 3, big0, 3, 4, idx, 5, 3), (e: Error) =>
          e instanceof InvalidArgumentError && e.message === `rowsGatherReference: ${phrase}`);
        assert.throws(() => ref.rowsScatterAddReference(new Float64Array(12), 3, 4, idx, 5, small0, 3, 3, 1), (e: Error) =>
          e instanceof InvalidArgumentError && e.message === `rowsScatterAddReference: ${phrase}`);
        const shifted = ref.badIndexText("row index", 4, 5, 3, 4);
        assert.throws(() => kernels.gatherRows(matrix(sSmall!, 5, 3), matrix(sBig!, 4, 3), sIdx!, { indexOffset: 2 }), (e: Error) =>
          e instanceof InvalidArgumentError && e.message === `gatherRows: idx's ${shifted}, the rows of src (4x3)`);
        assert.throws(() => kernels.scatterAddRows(matrix(sBig!, 4, 3), matrix(sSmall!, 5, 3), sIdx!, { indexOffset: 2 }), (e: Error) =>
          e instanceof InvalidArgumentError && e.message === `scatterAddRows: idx's ${shifted}, the rows of dst (4x3)`);
        const e = kernels.core.exports;
        assert.equal(e.f32_rows_gather(sSmall!.ptr, 3, sBig!.ptr, 3, 0, sIdx!.at(2), 5, 3), 0, "gather from 0 rows");
        assert.equal(e.f32_rows_scatter_add(sBig!.ptr, 3, -4, sIdx!.at(2), 5, sSmall!.ptr, 3, 3, 1), 0, "scatter into -4 rows");
        assert.equal(e.f32_rows_gather(sSmall!.ptr, 3, sBig!.ptr, 3, 4, sIdx!.at(2), 0, 3), -1, "gather of 0 rows");
        assert.deepEqual(sBig!.toArray(), big0);
        assert.deepEqual(sSmall!.toArray(), small0);
      });
    });

    test("shape, offset and scalar errors name the kernel, the argument and the shapes", async () => {
      const kernels = await kernelsFor(variant);
      withSlabs(kernels, [8, 20, 20, 10 * 4, 3 * 4, 3], ([p, ci, v, sw, sy, short]) => {
        int32View(p!).set([0, 2, 5, 9]);
        int32View(ci!).set(Int32Array.from({ length: 20 }, (_, i) => i % 10));
        const x = csr(p!, ci!, v!, 3, 10);
        const W = matrix(sw!, 10, 4);
        const Y = matrix(sy!, 3, 4);
        kernels.csrGemm(Y, x, W);
        assert.throws(() => csr(p!, ci!, v!, 8, 10), (e: Error) =>
          e instanceof ShapeError && e.message === "csr: x (8x10 CSR) needs 9 row offsets from element 0; its rowPtr (8 values) is too short");
        assert.throws(() => csr(p!, ci!, v!, 3, 10, { rowOffset: 5 }), ShapeError);
        assert.throws(() => csr(p!, ci!, v!, -1, 10), (e: Error) => e instanceof InvalidArgumentError && /csr: x's rows must be an integer >= 0/.test(e.message));
        assert.throws(() => kernels.csrGemm(Y, x, matrix(sw!, 9, 4)), (e: Error) =>
          e instanceof ShapeError && e.message === "csrGemm: W must have one row per column of X (10); Y 3x4, X 3x10 CSR, W 9x4");
        assert.throws(() => kernels.csrGemm(matrix(sy!, 3, 3), x, W), (e: Error) => e instanceof ShapeError && /csrGemm: Y must be 3x4/.test(e.message));
        assert.throws(() => kernels.csrGemm(Y, x, W, { bias: short! }), (e: Error) =>
          e instanceof ShapeError && e.message === "csrGemm: bias (3 values) is too short, Y has 4 columns");
        assert.throws(() => kernels.csrGemm(Y, x, W, { beta: Number.NaN }), NonFiniteError);
        assert.throws(() => kernels.csrScatterAdd(W, x, Y, { alpha: Infinity }), NonFiniteError);
        assert.throws(() => kernels.csrScatterAdd(W, x, matrix(sy!, 2, 4)), (e: Error) => e instanceof ShapeError && /csrScatterAdd: D must be 3x4/.test(e.message));
        assert.throws(() => kernels.csrScatterAdd(matrix(sw!, 9, 4), x, Y), (e: Error) => e instanceof ShapeError && /csrScatterAdd: dW must have one row per column/.test(e.message));
        // Row offsets are checked at each call: decreasing, negative, or past the end of colIdx / values.
        int32View(p!).set([0, 6, 5, 9]);
        assert.throws(() => kernels.csrGemm(Y, x, W), (e: Error) =>
          e instanceof InvalidArgumentError && e.message === "csrGemm: x's row 1 ends at 5 (rowPtr[2]) before it starts at 6; row offsets must not decrease");
        int32View(p!).set([-1, 2, 5, 9]);
        assert.throws(() => kernels.csrScatterAdd(W, x, Y), (e: Error) => e instanceof InvalidArgumentError && /row 0's start\) is -1/.test(e.message));
        int32View(p!).set([0, 2, 5, 21]);
        assert.throws(() => kernels.csrGemm(Y, x, W), (e: Error) =>
          e instanceof ShapeError && e.message === "csrGemm: x's rows end at position 21, past the end of its colIdx (20 values)");
        int32View(p!).set([0, 2, 5, 9]);
        // Rows: columns differ, the index offset runs past idx.
        assert.throws(() => kernels.gatherRows(matrix(sy!, 3, 4), matrix(sw!, 10, 3), short!), (e: Error) => e instanceof ShapeError && /same columns/.test(e.message));
        assert.throws(() => kernels.gatherRows(matrix(sy!, 3, 4), W, short!, { indexOffset: 1 }), (e: Error) =>
          e instanceof ShapeError && e.message === "gatherRows: idx (3 values) is too short for 3 row indices from element 1");
        assert.throws(() => kernels.scatterAddRows(W, Y, short!, { alpha: Number.NaN }), NonFiniteError);
        assert.throws(() => kernels.csrGemm(Y, { ...x, rowPtr: "no" } as unknown as CsrMatrix, W), InvalidArgumentError);
      });
      const released = kernels.arena.alloc(4);
      const [ci, v] = [kernels.arena.alloc(4), kernels.arena.alloc(4)];
      const x = csr(released, ci, v, 1, 4);
      kernels.arena.release(released);
      const sy = kernels.arena.alloc(4);
      const sw = kernels.arena.alloc(16);
      assert.throws(() => kernels.csrGemm(matrix(sy, 1, 4), x, matrix(sw, 4, 4)), InvalidStateError);
      for (const s of [ci, v, sy, sw] as Slab[]) kernels.arena.release(s);
    });
  });
}
