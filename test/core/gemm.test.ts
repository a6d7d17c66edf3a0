// GEMM against the TypeScript reference: every M, N, K edge size, all four transposes, alpha/beta/bias, strides.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ShapeError, NonFiniteError } from "../../src/errors.js";
import { matrix } from "../../src/core/matrix.js";
import { gemmReference } from "../../src/core/reference/gemm.js";
import { EDGE_SIZES, assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

const MAX = EDGE_SIZES[EDGE_SIZES.length - 1]! + 3;
const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;
// alpha, beta and bias cycle with the case number so every combination meets every shape class.
const SCALARS = [
  { alpha: 1, beta: 0, bias: false },
  { alpha: 0.5, beta: 0.75, bias: true },
  { alpha: -1.25, beta: 1, bias: false },
  { alpha: 2, beta: 0, bias: true },
  { alpha: 1, beta: -0.5, bias: false },
] as const;

for (const variant of variantsToTest()) {
  describe(`gemm (${variant} build)`, () => {
    for (const [transA, transB] of TRANSPOSES) {
      const op = `${transA ? "T" : "N"}${transB ? "T" : "N"}`;
      test(`${op}: every M, N, K in ${EDGE_SIZES.join(",")} with strides`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(1000 + TRANSPOSES.findIndex(([a, b]) => a === transA && b === transB));
        const slabA = kernels.arena.alloc(MAX * MAX);
        const slabB = kernels.arena.alloc(MAX * MAX);
        const slabC = kernels.arena.alloc(MAX * MAX);
        const slabBias = kernels.arena.alloc(MAX);
        let caseNo = 0;
        try {
          for (const m of EDGE_SIZES) for (const n of EDGE_SIZES) for (const k of EDGE_SIZES) {
            const s = SCALARS[caseNo % SCALARS.length]!;
            const pad = [0, 1, 3][caseNo++ % 3]!;
            const [aRows, aCols] = transA ? [k, m] : [m, k];
            const [bRows, bCols] = transB ? [n, k] : [k, n];
            const a = randomArray(random, aRows * (aCols + pad));
            const b = randomArray(random, bRows * (bCols + pad));
            const c = randomArray(random, m * (n + pad));
            const bias = randomArray(random, n);
            slabA.set(a);
            slabB.set(b);
            slabC.set(c);
            slabBias.set(bias);
            const expected = c.slice();
            gemmReference(expected, n + pad, a, aCols + pad, b, bCols + pad, m, n, k, transA, transB, s.alpha, s.beta, s.bias ? bias : undefined);
            kernels.gemm(
              matrix(slabC, m, n, { ld: n + pad }),
              matrix(slabA, aRows, aCols, { ld: aCols + pad }),
              matrix(slabB, bRows, bCols, { ld: bCols + pad }),
              { transA, transB, alpha: s.alpha, beta: s.beta, bias: s.bias ? slabBias : undefined },
            );
            const got = slabC.f32().subarray(0, m * (n + pad));
            assertClose(got, expected, { atol: 5e-7 * (k + 4), rtol: 1e-5 }, `${op} m=${m} n=${n} k=${k} pad=${pad} ${JSON.stringify(s)}`);
          }
        } finally {
          for (const slab of [slabA, slabB, slabC, slabBias]) kernels.arena.release(slab);
        }
      });
    }

    test("beta = 0 does not read C (NaN in C does not leak), k = 0 gives beta*C + bias", async () => {
      const kernels = await kernelsFor(variant);
      const [a, b, c, bias] = [kernels.arena.alloc(9 * 5), kernels.arena.alloc(5 * 7), kernels.arena.alloc(9 * 7), kernels.arena.alloc(7)];
      const random = seededRandom(7);
      a.set(randomArray(random, 45));
      b.set(randomArray(random, 35));
      bias.set(randomArray(random, 7));
      c.f32().fill(Number.NaN);
      kernels.gemm(matrix(c, 9, 7), matrix(a, 9, 5), matrix(b, 5, 7), { beta: 0 });
      assert.ok(c.f32().every(Number.isFinite), "C has NaN after beta = 0");
      const old = c.toArray();
      kernels.gemm(matrix(c, 9, 0 + 7), matrix(a, 9, 0, { ld: 5 }), matrix(b, 0, 7), { beta: 0.5, bias });
      const expected = old.map((v, i) => 0.5 * v + bias.f32()[i % 7]!);
      assertClose(c.f32(), expected, {}, "k = 0");
      for (const s of [a, b, c, bias]) kernels.arena.release(s);
    });

    test("shape and scalar errors name the shapes and the argument", async () => {
      const kernels = await kernelsFor(variant);
      const s = kernels.arena.alloc(100);
      assert.throws(() => kernels.gemm(matrix(s, 3, 2), matrix(s, 3, 4), matrix(s, 5, 2)), (e: Error) =>
        e instanceof ShapeError && /op\(A\) has 4 columns but op\(B\) has 5 rows/.test(e.message) && /A 3x4/.test(e.message));
      assert.throws(() => kernels.gemm(matrix(s, 3, 3), matrix(s, 3, 4), matrix(s, 4, 2)), (e: Error) =>
        e instanceof ShapeError && /C must be 3x2/.test(e.message));
      assert.throws(() => kernels.gemm(matrix(s, 3, 2), matrix(s, 3, 4), matrix(s, 4, 2), { alpha: Number.NaN }), (e: Error) =>
        e instanceof NonFiniteError && /alpha/.test(e.message));
      assert.throws(() => matrix(s, 10, 11), (e: Error) => e instanceof ShapeError && /needs 110 elements/.test(e.message));
      assert.throws(() => matrix(s, 2, 5, { ld: 4 }), (e: Error) => e instanceof ShapeError && /leading dimension 4/.test(e.message));
      kernels.arena.release(s);
    });
  });
}
