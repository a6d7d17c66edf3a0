// GEMM over a prepacked op(B) against the reference, and band-by-band packing against whole packing, over edge
// shapes and both transposes of B (the training engine packs weight bands as threads update them).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gemmReference } from "../../src/core/reference/gemm.js";
import { assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

const SIZES = [1, 3, 7, 8, 9, 17, 31, 64, 257, 300] as const;
const DEPTHS = [1, 5, 64, 257, 600] as const;

for (const variant of variantsToTest()) {
  describe(`prepacked GEMM (${variant} build)`, () => {
    for (const transB of [false, true]) {
      test(`op(B) ${transB ? "= B^T" : "= B"}: m x n x k over edge sizes, alpha/beta/bias, strided A and C`, async () => {
        const kernels = await kernelsFor(variant);
        const core = kernels.core.exports;
        const random = seededRandom(transB ? 71 : 70);
        let caseNo = 0;
        for (const n of SIZES) for (const k of DEPTHS) {
          const ldb = (transB ? k : n) + (caseNo % 2);
          const b = randomArray(random, (transB ? n : k) * ldb);
          const slabB = kernels.arena.alloc(b.length).set(b);
          const packed = kernels.arena.alloc(core.f32_gemm_packed_b_bytes(n, k) / 4);
          core.f32_gemm_pack_b(packed.ptr, slabB.ptr, ldb, transB ? 1 : 0, n, k, 0, k, 0, n);
          for (const m of [1, 4, 9, 64]) {
            const transA = caseNo % 3 === 0;
            const alpha = caseNo % 2 ? 0.5 : 1;
            const beta = caseNo % 4 === 1 ? 0.25 : 0;
            const pad = caseNo++ % 3;
            const lda = (transA ? m : k) + pad;
            const a = randomArray(random, (transA ? k : m) * lda);
            const c = randomArray(random, m * (n + pad));
            const bias = randomArray(random, n);
            const slabs = [a, c, bias].map((v) => kernels.arena.alloc(v.length).set(v));
            const [slabA, slabC, slabBias] = slabs as [typeof slabB, typeof slabB, typeof slabB];
            const ws = kernels.arena.alloc(core.f32_gemm_workspace_bytes(m, n, k) / 4);
            const expected = c.slice();
            gemmReference(expected, n + pad, a, lda, b, ldb, m, n, k, transA, transB, alpha, beta, bias);
            core.f32_gemm_prepacked(slabC.ptr, n + pad, slabA.ptr, lda, packed.ptr, m, n, k, transA ? 1 : 0, alpha, beta, slabBias.ptr, ws.ptr);
            assertClose(slabC.toArray(), expected, { atol: 5e-7 * (k + 4), rtol: 1e-5 }, `m=${m} n=${n} k=${k} transA=${transA}`);
            for (const s of [...slabs, ws]) kernels.arena.release(s);
          }
          kernels.arena.release(slabB);
          kernels.arena.release(packed);
        }
      });

      test(`op(B) ${transB ? "= B^T" : "= B"}: packing row bands and 8-aligned column bands gives the same bytes`, async () => {
        const kernels = await kernelsFor(variant);
        const core = kernels.core.exports;
        const random = seededRandom(transB ? 81 : 80);
        for (const [n, k, rowBand, colBand] of [[300, 257, 64, 64], [1100, 40, 7, 1024], [17, 600, 256, 8], [9, 3, 1, 8]] as const) {
          const ldb = transB ? k : n;
          const b = kernels.arena.alloc(n * k).set(randomArray(random, n * k));
          const bytes = core.f32_gemm_packed_b_bytes(n, k) / 4;
          const whole = kernels.arena.alloc(bytes);
          const banded = kernels.arena.alloc(bytes);
          core.f32_gemm_pack_b(whole.ptr, b.ptr, ldb, transB ? 1 : 0, n, k, 0, k, 0, n);
          for (let p = 0; p < k; p += rowBand) core.f32_gemm_pack_b(banded.ptr, b.ptr, ldb, transB ? 1 : 0, n, k, p, Math.min(k, p + rowBand), 0, n);
          assert.deepEqual(banded.toArray(), whole.toArray(), `row bands of ${rowBand}, n=${n} k=${k}`);
          banded.f32().fill(-1);
          for (let j = 0; j < n; j += colBand) core.f32_gemm_pack_b(banded.ptr, b.ptr, ldb, transB ? 1 : 0, n, k, 0, k, j, Math.min(n, j + colBand));
          assert.deepEqual(banded.toArray(), whole.toArray(), `column bands of ${colBand}, n=${n} k=${k}`);
          for (const s of [b, whole, banded]) kernels.arena.release(s);
        }
      });
    }
  });
}
