// The unpacked small-m GEMM (f32_gemm_nopack) against the TypeScript reference: m 1..9 x n, k in edge sizes, with
// and without bias, padded strides; larger m; C not read, k = 0, the typed wrapper's errors, and Network.predict on
// either side of NOPACK_MAX_ROWS (the unpacked kernel, then f32_gemm) agreeing with the reference.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NOPACK_MAX_ROWS } from "../../src/core/gemm-nopack.js";
import { matrix } from "../../src/core/matrix.js";
import { gemmNopackReference, gemmReference } from "../../src/core/reference/gemm.js";
import { InvalidArgumentError, ShapeError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import { assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

const ROWS = [1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
const SIZES = [1, 3, 7, 8, 9, 17, 31, 257] as const;
const MAX = 257 + 3;
/** The tolerance test/core/gemm.test.ts allows f32_gemm against the same reference. */
const tolerance = (k: number) => ({ atol: 5e-7 * (k + 4), rtol: 1e-5 });

for (const variant of variantsToTest()) {
  describe(`gemm nopack (${variant} build)`, () => {
    test(`every m in 1..9, n and k in ${SIZES.join(",")}, padded strides, bias and none`, async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1300);
      const slabA = kernels.arena.alloc(9 * MAX);
      const slabB = kernels.arena.alloc(MAX * MAX);
      const slabC = kernels.arena.alloc(9 * MAX);
      const slabBias = kernels.arena.alloc(MAX);
      let caseNo = 0;
      try {
        for (const m of ROWS) for (const n of SIZES) for (const k of SIZES) {
          const withBias = caseNo % 2 === 0;
          // Paddings of C, A and B cycle independently, so each stride is sometimes wider than its width alone.
          const [padC, padA, padB] = [caseNo % 3, (caseNo >> 1) % 3, (caseNo >> 2) % 2 ? 3 : 0];
          caseNo++;
          const [ldc, lda, ldb] = [n + padC, k + padA, n + padB];
          const a = randomArray(random, m * lda);
          const b = randomArray(random, k * ldb);
          const c = randomArray(random, m * ldc);
          const bias = randomArray(random, n);
          slabA.set(a);
          slabB.set(b);
          slabC.set(c);
          slabBias.set(bias);
          const expected = c.slice();
          gemmNopackReference(expected, ldc, a, lda, b, ldb, m, n, k, withBias ? bias : undefined);
          kernels.gemmNopack(
            matrix(slabC, m, n, { ld: ldc }),
            matrix(slabA, m, k, { ld: lda }),
            matrix(slabB, k, n, { ld: ldb }),
            { bias: withBias ? slabBias : undefined },
          );
          // Padding between C's rows (and past its last row) is left as it was.
          const label = `m=${m} n=${n} k=${k} ldc=${ldc} lda=${lda} ldb=${ldb} bias=${withBias}`;
          assertClose(slabC.f32().subarray(0, m * ldc), expected, tolerance(k), label);
        }
      } finally {
        for (const slab of [slabA, slabB, slabC, slabBias]) kernels.arena.release(slab);
      }
    });

    test("larger m (10..40) and wide n agree with the reference too", async () => {
      const kernels = await kernelsFor(variant);
      const core = kernels.core.exports;
      const random = seededRandom(1301);
      for (const [m, n, k] of [[10, 64, 33], [13, 130, 7], [40, 31, 100], [11, 257, 1]] as const) {
        const a = randomArray(random, m * k);
        const b = randomArray(random, k * n);
        const bias = randomArray(random, n);
        const [slabA, slabB, slabC, slabBias] = [a, b, new Float32Array(m * n), bias].map((v) => kernels.arena.alloc(v.length).set(v));
        const expected = new Float32Array(m * n);
        gemmNopackReference(expected, n, a, k, b, n, m, n, k, bias);
        core.f32_gemm_nopack(slabC!.ptr, n, slabA!.ptr, k, slabB!.ptr, n, m, n, k, slabBias!.ptr);
        assertClose(slabC!.toArray(), expected, tolerance(k), `m=${m} n=${n} k=${k}`);
        for (const s of [slabA, slabB, slabC, slabBias]) kernels.arena.release(s!);
      }
    });

    test("C is not read (NaN in C does not leak); k = 0 gives the bias, or 0; m or n = 0 writes nothing", async () => {
      const kernels = await kernelsFor(variant);
      const core = kernels.core.exports;
      const random = seededRandom(1302);
      const [a, b, c, bias] = [kernels.arena.alloc(5 * 9), kernels.arena.alloc(9 * 7), kernels.arena.alloc(5 * 7), kernels.arena.alloc(7)];
      try {
        a.set(randomArray(random, 45));
        b.set(randomArray(random, 63));
        bias.set(randomArray(random, 7));
        c.f32().fill(Number.NaN);
        kernels.gemmNopack(matrix(c, 5, 7), matrix(a, 5, 9), matrix(b, 9, 7));
        assert.ok(c.f32().every(Number.isFinite), "C has NaN after a product that must not read it");
        c.f32().fill(Number.NaN);
        kernels.gemmNopack(matrix(c, 5, 7), matrix(a, 5, 0, { ld: 9 }), matrix(b, 0, 7), { bias });
        assertClose(c.f32(), Array.from({ length: 35 }, (_, i) => bias.f32()[i % 7]!), { atol: 0, rtol: 0 }, "k = 0 with bias");
        kernels.gemmNopack(matrix(c, 5, 7), matrix(a, 5, 0, { ld: 9 }), matrix(b, 0, 7));
        assert.ok(c.f32().every((v) => v === 0), "k = 0 without bias gives zeros");
        c.f32().fill(3);
        core.f32_gemm_nopack(c.ptr, 7, a.ptr, 9, b.ptr, 7, 0, 7, 9, bias.ptr);
        core.f32_gemm_nopack(c.ptr, 7, a.ptr, 9, b.ptr, 7, 5, 0, 9, bias.ptr);
        assert.ok(c.f32().every((v) => v === 3), "m = 0 or n = 0 wrote to C");
      } finally {
        for (const s of [a, b, c, bias]) kernels.arena.release(s);
      }
    });

    test("errors name the shapes and the argument", async () => {
      const kernels = await kernelsFor(variant);
      const s = kernels.arena.alloc(100);
      try {
        assert.throws(() => kernels.gemmNopack(matrix(s, 3, 2), matrix(s, 3, 4), matrix(s, 5, 2)), (e: Error) =>
          e instanceof ShapeError && /A has 4 columns but B has 5 rows/.test(e.message) && /A 3x4/.test(e.message) && /gemmNopack/.test(e.message));
        assert.throws(() => kernels.gemmNopack(matrix(s, 3, 3), matrix(s, 3, 4), matrix(s, 4, 2)), (e: Error) =>
          e instanceof ShapeError && /C must be 3x2/.test(e.message));
        const short = kernels.arena.alloc(1);
        assert.throws(() => kernels.gemmNopack(matrix(s, 3, 2), matrix(s, 3, 4), matrix(s, 4, 2), { bias: short }), (e: Error) =>
          e instanceof ShapeError && /bias \(1 values/.test(e.message) && /2 columns/.test(e.message));
        kernels.arena.release(short);
        assert.throws(() => kernels.gemmNopack(matrix(s, 3, 2), "a" as never, matrix(s, 4, 2)), (e: Error) =>
          e instanceof InvalidArgumentError && /gemmNopack: a must be a Matrix/.test(e.message));
      } finally {
        kernels.arena.release(s);
      }
    });

    test(`Network.predict on either side of NOPACK_MAX_ROWS (${NOPACK_MAX_ROWS}) agrees with the reference and with a larger batch`, async () => {
      const kernels = await kernelsFor(variant);
      const network = Network.create(kernels, { inputs: 37, layers: [{ units: 21, activation: "relu" }, { units: 5, activation: "softmax" }], seed: 13 });
      const random = seededRandom(1303);
      try {
        const x = randomArray(random, 20 * 37);
        const whole = network.predict(x); // 20 rows: the packed GEMM
        for (const rows of [1, 2, 3, 4, 5, NOPACK_MAX_ROWS, NOPACK_MAX_ROWS + 1, 20]) {
          const part = x.subarray(0, rows * 37);
          const got = network.predict(part);
          assertClose(got, referenceForward(network, part, rows), { atol: 1e-6, rtol: 1e-5 }, `rows=${rows} against the reference`);
          assertClose(got, whole.subarray(0, rows * 5), { atol: 1e-6, rtol: 1e-5 }, `rows=${rows} against the same rows of 20`);
        }
      } finally {
        network.dispose();
      }
    });
  });
}

// The network's forward pass computed by the reference GEMM, then relu and softmax in f64 (the spec above).
function referenceForward(network: Network, x: Float32Array, rows: number): Float32Array {
  const [w0, b0, w1, b1] = [network.weights(0).toArray(), network.bias(0).toArray(), network.weights(1).toArray(), network.bias(1).toArray()];
  const h = new Float64Array(rows * 21);
  gemmReference(h, 21, x, 37, w0, 21, rows, 21, 37, false, false, 1, 0, b0);
  for (let i = 0; i < h.length; i++) h[i] = Math.max(0, h[i]!);
  const z = new Float64Array(rows * 5);
  gemmReference(z, 5, h, 21, w1, 5, rows, 5, 21, false, false, 1, 0, b1);
  const out = new Float32Array(rows * 5);
  for (let r = 0; r < rows; r++) {
    const row = z.subarray(r * 5, r * 5 + 5);
    const top = Math.max(...row);
    const sum = row.reduce((s, v) => s + Math.exp(v - top), 0);
    for (let j = 0; j < 5; j++) out[r * 5 + j] = Math.exp(row[j]! - top) / sum;
  }
  return out;
}
