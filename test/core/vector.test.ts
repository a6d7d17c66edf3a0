// Vector helpers and column sums against the TypeScript references: every n (and cols) in EDGE_SIZES, unaligned
// slabs from a layout, beta == 0 not reading the output, and the errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { matrix } from "../../src/core/matrix.js";
import * as ref from "../../src/core/reference/vector.js";
import { NonFiniteError, ShapeError } from "../../src/errors.js";
import { withSlabs } from "../gradcheck.js";
import { EDGE_SIZES, assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

const COL_SUM_ROWS = [1, 2, 3, 8, 33, 100] as const;

for (const variant of variantsToTest()) {
  describe(`vector helpers (${variant} build)`, () => {
    test("fill, copy, axpy and scale match the reference for every n in EDGE_SIZES and leave neighbours alone", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1100);
      for (const n of EDGE_SIZES) {
        // Odd-length neighbours in one block put x and y at addresses that are not 16-byte aligned.
        const layout = kernels.arena.layout([{ name: "before", length: 1 }, { name: "y", length: n }, { name: "x", length: n }, { name: "after", length: 3 }]);
        try {
          const [y, x, after] = [layout.get("y"), layout.get("x"), layout.get("after")];
          after.f32().fill(99);
          const xv = randomArray(random, n);
          const yv = randomArray(random, n);
          x.set(xv);
          y.set(yv);
          const expected = yv.slice();
          kernels.axpy(y, x, -0.75);
          ref.axpyReference(expected, xv, n, -0.75);
          assertClose(y.toArray(), expected, { atol: 1e-7, rtol: 1e-6 }, `axpy n=${n}`);
          kernels.scale(y, 3.5);
          ref.scaleReference(expected, n, 3.5);
          assertClose(y.toArray(), expected, { atol: 1e-7, rtol: 1e-6 }, `scale n=${n}`);
          kernels.copy(y, x);
          ref.copyReference(expected, xv, n);
          assert.deepEqual(y.toArray(), expected, `copy n=${n}`);
          kernels.fill(y, 0.1);
          ref.fillReference(expected, n, 0.1);
          assert.deepEqual(y.toArray(), expected, `fill n=${n}`);
          kernels.copy(y, y);
          assert.deepEqual(y.toArray(), expected, `copy onto itself n=${n}`);
          assert.ok(after.f32().every((v) => v === 99), `n=${n}: a neighbouring slab was written`);
        } finally {
          kernels.arena.release(layout.block);
        }
      }
    });

    test("colSum matches the reference for rows x cols over EDGE_SIZES, with beta 0 (out not read) and beta != 0", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(1200);
      for (const rows of [0, ...COL_SUM_ROWS]) {
        for (const cols of EDGE_SIZES) {
          withSlabs(kernels, [Math.max(rows * cols, 1), cols], ([sx, out]) => {
            const x = randomArray(random, rows * cols);
            sx!.set(x);
            for (const beta of [0, 0.5, -2]) {
              const old = beta === 0 ? new Float32Array(cols).fill(Number.NaN) : randomArray(random, cols);
              out!.set(old);
              kernels.colSum(out!, matrix(sx!, rows, cols), beta);
              const expected = old.slice();
              ref.colSumReference(expected, x, rows, cols, beta);
              assertClose(out!.toArray(), expected, { atol: 1e-6 * (rows + 1), rtol: 1e-5 }, `colSum ${rows}x${cols} beta=${beta}`);
            }
          });
        }
      }
    });

    test("errors name the kernel, the argument and the lengths or shapes", async () => {
      const kernels = await kernelsFor(variant);
      withSlabs(kernels, [12, 11, 4], ([a, b, c]) => {
        a!.f32().fill(3);
        assert.throws(() => kernels.axpy(a!, b!, 1), (e: Error) =>
          e instanceof ShapeError && e.message === "axpy: x (11 values) and y (12 values) differ in length; they must have the same length");
        assert.throws(() => kernels.copy(a!, b!), (e: Error) => e instanceof ShapeError && /^copy: x \(11 values\)/.test(e.message));
        assert.throws(() => kernels.scale(a!, Number.NaN), (e: Error) => e instanceof NonFiniteError && e.message === "scale: alpha must be a finite number, got NaN");
        assert.throws(() => kernels.fill(a!, -Infinity), (e: Error) => e instanceof NonFiniteError && /fill: value/.test(e.message));
        assert.throws(() => kernels.axpy(a!, a!, Number.NaN), NonFiniteError);
        assert.throws(() => kernels.colSum(c!, matrix(a!, 2, 6)), (e: Error) =>
          e instanceof ShapeError && /colSum: out \(4 values\) must have one value per column of x \(2x6\), i\.e\. 6/.test(e.message));
        assert.throws(() => kernels.colSum(c!, matrix(a!, 2, 4, { ld: 5 })), (e: Error) => e instanceof ShapeError && /colSum: x is 2x4 \(ld 5\)/.test(e.message));
        assert.throws(() => kernels.colSum(c!, matrix(a!, 3, 4), Number.NaN), (e: Error) => e instanceof NonFiniteError && /colSum: beta/.test(e.message));
        assert.ok(a!.f32().every((v) => v === 3), "a failed call wrote to its output");
      });
    });
  });
}
