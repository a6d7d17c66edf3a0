// Losses against the TypeScript references: rows x cols over EDGE_SIZES, gradients written or skipped (pointer 0),
// in-place gradients, logits up to |z| = 100 (no NaN or Infinity), clamped probabilities, and the shape errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Kernels } from "../../src/core/kernels.js";
import { matrix, type Matrix } from "../../src/core/matrix.js";
import * as ref from "../../src/core/reference/losses.js";
import type { Values } from "../../src/core/reference/vector.js";
import { DownpourError, ShapeError } from "../../src/errors.js";
import type { Slab } from "../../src/runtime/arena.js";
import { assertFinite, targetDistributions, withLargeValues, withSlabs } from "../gradcheck.js";
import { EDGE_SIZES, assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

const ROWS = [1, 3, 4, 16, 33] as const;
const LOSS_TOL = { atol: 1e-6, rtol: 1e-5 };
const GRAD_TOL = { atol: 1e-7, rtol: 1e-5 };

/** One loss: how to make inputs, run the kernel and run the reference. `input` is y (predictions) or z (logits). */
interface LossCase {
  name: "squaredError" | "binaryCrossEntropy" | "sigmoidCrossEntropy" | "softmaxCrossEntropy";
  /** Writes probabilities y from the logits (the fused losses). */
  fused: boolean;
  inputs(random: () => number, rows: number, cols: number, large: boolean): { input: Float32Array; t: Float32Array };
  kernel(k: Kernels, grad: Matrix | undefined, y: Matrix, input: Matrix, t: Matrix): number;
  reference(grad: Values | undefined, y: Values, input: Float32Array, t: Float32Array, rows: number, cols: number): number;
}

const CASES: LossCase[] = [
  {
    name: "squaredError",
    fused: false,
    inputs: (random, rows, cols, large) => ({ input: randomArray(random, rows * cols, large ? -100 : -2, large ? 100 : 2), t: randomArray(random, rows * cols) }),
    kernel: (k, dy, _y, y, t) => k.squaredError(dy, y, t),
    reference: (dy, _y, y, t, rows, cols) => ref.squaredErrorReference(dy, y, t, rows, cols),
  },
  {
    name: "binaryCrossEntropy",
    fused: false,
    inputs: (random, rows, cols, large) => {
      const y = randomArray(random, rows * cols, 0, 1);
      // Exact 0 and 1 (and beyond) exercise the clamp; `large` makes most of them saturate.
      for (let i = 0; i < y.length; i += large ? 2 : 7) y[i] = [0, 1, -0.5, 1.5, 1e-9, 1 - 1e-8][i % 6]!;
      const t = Float32Array.from({ length: rows * cols }, (_, i) => (i % 3 === 2 ? random() : random() < 0.5 ? 0 : 1));
      return { input: y, t };
    },
    kernel: (k, dy, _y, y, t) => k.binaryCrossEntropy(dy, y, t),
    reference: (dy, _y, y, t, rows, cols) => ref.binaryCrossEntropyReference(dy, y, t, rows, cols),
  },
  {
    name: "sigmoidCrossEntropy",
    fused: true,
    inputs: (random, rows, cols, large) => {
      const z = randomArray(random, rows * cols, -6, 6);
      if (large) withLargeValues(z, random);
      const t = Float32Array.from({ length: rows * cols }, (_, i) => (i % 3 === 2 ? random() : random() < 0.5 ? 0 : 1));
      return { input: z, t };
    },
    kernel: (k, dz, y, z, t) => k.sigmoidCrossEntropy(dz, y, z, t),
    reference: (dz, y, z, t, rows, cols) => ref.sigmoidCrossEntropyReference(dz, y, z, t, rows, cols),
  },
  {
    name: "softmaxCrossEntropy",
    fused: true,
    inputs: (random, rows, cols, large) => {
      const z = randomArray(random, rows * cols, -6, 6);
      if (large) withLargeValues(z, random);
      return { input: z, t: targetDistributions(random, rows, cols, (rows + cols) % 2 === 0) };
    },
    kernel: (k, dz, y, z, t) => k.softmaxCrossEntropy(dz, y, z, t),
    reference: (dz, y, z, t, rows, cols) => ref.softmaxCrossEntropyReference(dz, y, z, t, rows, cols),
  },
];

// Runs one case on fresh slabs [input, t, y, grad] and compares loss, y and the gradient with the reference.
function checkCase(kernels: Kernels, c: LossCase, random: () => number, rows: number, cols: number, large: boolean, withGrad: boolean): void {
  const n = rows * cols;
  withSlabs(kernels, [n, n, n, n], ([sIn, sT, sY, sG]) => {
    const { input, t } = c.inputs(random, rows, cols, large);
    sIn!.set(input);
    sT!.set(t);
    sG!.f32().fill(-123);
    const m = (s: Slab | undefined) => matrix(s!, rows, cols);
    const label = `${c.name} ${rows}x${cols}${large ? " large" : ""}${withGrad ? "" : " without gradient"}`;
    const loss = c.kernel(kernels, withGrad ? m(sG) : undefined, m(sY), m(sIn), m(sT));
    const grad = new Float32Array(n);
    const y = new Float32Array(n);
    const expected = c.reference(grad, y, input, t, rows, cols);
    assert.ok(Number.isFinite(loss), `${label}: loss is ${loss}`);
    assertClose([loss], [expected], LOSS_TOL, `${label}: loss`);
    if (c.fused) {
      assertFinite(sY!.toArray(), `${label}: y`);
      assertClose(sY!.toArray(), y, { atol: 2e-7, rtol: 5e-6 }, `${label}: y`);
    }
    if (withGrad) {
      assertFinite(sG!.toArray(), `${label}: gradient`);
      assertClose(sG!.toArray(), grad, GRAD_TOL, `${label}: gradient`);
    } else {
      assert.ok(sG!.f32().every((v) => v === -123), `${label}: the gradient was written`);
    }
  });
}

for (const variant of variantsToTest()) {
  describe(`losses (${variant} build)`, () => {
    for (const c of CASES) {
      test(`${c.name}: loss${c.fused ? ", probabilities" : ""} and gradient match the reference for rows x cols over EDGE_SIZES`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(600 + CASES.indexOf(c));
        let i = 0;
        for (const rows of ROWS) for (const cols of EDGE_SIZES) checkCase(kernels, c, random, rows, cols, false, i++ % 5 !== 4);
      });

      test(`${c.name}: inputs of large magnitude give finite losses and gradients`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(700 + CASES.indexOf(c));
        for (const [rows, cols] of [[1, 1], [2, 3], [8, 10], [5, 33], [3, 257]] as const) checkCase(kernels, c, random, rows, cols, true, true);
      });

      test(`${c.name}: the gradient may overwrite the ${c.fused ? "logits" : "predictions"} or the targets`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(800 + CASES.indexOf(c));
        const [rows, cols] = [5, 10];
        const n = rows * cols;
        const { input, t } = c.inputs(random, rows, cols, false);
        const grad = new Float32Array(n);
        const y = new Float32Array(n);
        const expected = c.reference(grad, y, input, t, rows, cols);
        for (const over of ["input", "targets"] as const) {
          withSlabs(kernels, [n, n, n], ([sIn, sT, sY]) => {
            sIn!.set(input);
            sT!.set(t);
            const m = (s: Slab | undefined) => matrix(s!, rows, cols);
            const target = over === "input" ? sIn : sT;
            const loss = c.kernel(kernels, m(target), m(sY), m(sIn), m(sT));
            assertClose([loss], [expected], LOSS_TOL, `${c.name} in place over ${over}: loss`);
            assertClose(target!.toArray(), grad, GRAD_TOL, `${c.name} in place over ${over}: gradient`);
            if (c.fused) assertClose(sY!.toArray(), y, { atol: 2e-7, rtol: 5e-6 }, `${c.name} in place over ${over}: y`);
          });
        }
        if (c.fused) {
          // y over z (the logits): the probabilities replace the logits.
          withSlabs(kernels, [n, n, n], ([sZ, sT, sG]) => {
            sZ!.set(input);
            sT!.set(t);
            const m = (s: Slab | undefined) => matrix(s!, rows, cols);
            const loss = c.kernel(kernels, m(sG), m(sZ), m(sZ), m(sT));
            assertClose([loss], [expected], LOSS_TOL, `${c.name} y over z: loss`);
            assertClose(sZ!.toArray(), y, { atol: 2e-7, rtol: 5e-6 }, `${c.name} y over z: y`);
            assertClose(sG!.toArray(), grad, GRAD_TOL, `${c.name} y over z: gradient`);
          });
        }
      });
    }

    test("single-sample losses keep relative accuracy: -log(y), -log(1 - y) and softplus over the whole range", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(850);
      withSlabs(kernels, [1, 1, 1, 1], ([sp, st, sy, sg]) => {
        const m = (s: Slab | undefined) => matrix(s!, 1, 1);
        const one = (kernel: () => number, p: number, t: number) => {
          sp!.set([p]);
          st!.set([t]);
          return kernel();
        };
        for (let i = 0; i < 400; i++) {
          // Probabilities from 1e-7 to 1 - 1e-7, logits from -100 to 100, both with a dense middle.
          const p = Math.fround(i % 2 ? Math.exp(-16 * random()) : 1 - Math.exp(-16 * random()));
          const z = Math.fround((i % 2 ? 100 : 8) * (2 * random() - 1));
          for (const t of [0, 1, Math.fround(random())]) {
            const bce = one(() => kernels.binaryCrossEntropy(m(sg), m(sp), m(st)), p, t);
            assertClose([bce], [ref.binaryCrossEntropyReference(undefined, [p], [t], 1, 1)], { atol: 1e-7, rtol: 1e-6 }, `binaryCrossEntropy y=${p} t=${t}`);
            const sce = one(() => kernels.sigmoidCrossEntropy(m(sg), m(sy), m(sp), m(st)), z, t);
            const expectedY = [0];
            assertClose([sce], [ref.sigmoidCrossEntropyReference(undefined, expectedY, [z], [t], 1, 1)], { atol: 1e-30, rtol: 1e-6 }, `sigmoidCrossEntropy z=${z} t=${t}`);
            assertClose(sy!.toArray(), expectedY, { atol: 1e-37, rtol: 1e-6 }, `sigmoidCrossEntropy y, z=${z}`);
          }
        }
      });
    });

    test("an empty batch has loss 0", async () => {
      const kernels = await kernelsFor(variant);
      withSlabs(kernels, [4, 4, 4], ([a, b, c]) => {
        assert.equal(kernels.squaredError(matrix(c!, 0, 4), matrix(a!, 0, 4), matrix(b!, 0, 4)), 0);
        assert.equal(kernels.softmaxCrossEntropy(undefined, matrix(c!, 0, 4), matrix(a!, 0, 4), matrix(b!, 0, 4)), 0);
      });
    });

    test("shape errors name the kernel, the arguments and both shapes, before touching memory", async () => {
      const kernels = await kernelsFor(variant);
      withSlabs(kernels, [1000, 1000, 1000, 1000], ([z, t, y, g]) => {
        y!.f32().fill(5);
        g!.f32().fill(5);
        assert.throws(() => kernels.softmaxCrossEntropy(matrix(g!, 64, 10), matrix(y!, 64, 10), matrix(z!, 64, 10), matrix(t!, 64, 9)), (e: Error) =>
          e instanceof ShapeError && e.message === "softmaxCrossEntropy: t (targets) is 64x9 but z (logits) is 64x10; they must have the same shape");
        assert.throws(() => kernels.sigmoidCrossEntropy(undefined, matrix(y!, 8, 3), matrix(z!, 8, 2), matrix(t!, 8, 2)), (e: Error) =>
          e instanceof ShapeError && /sigmoidCrossEntropy: y \(probabilities\) is 8x3 but z \(logits\) is 8x2/.test(e.message));
        assert.throws(() => kernels.squaredError(matrix(g!, 2, 3), matrix(y!, 3, 2), matrix(t!, 3, 2)), (e: Error) =>
          e instanceof ShapeError && /squaredError: dy \(gradient\) is 2x3 but y \(predictions\) is 3x2/.test(e.message));
        assert.throws(() => kernels.binaryCrossEntropy(undefined, matrix(y!, 3, 2, { ld: 4 }), matrix(t!, 3, 2)), (e: Error) =>
          e instanceof ShapeError && /binaryCrossEntropy: y \(probabilities\) is 3x2 \(ld 4\); this kernel needs a dense matrix/.test(e.message));
        assert.throws(() => kernels.softmaxCrossEntropy(undefined, matrix(t!, 2, 2), matrix(z!, 2, 2), matrix(t!, 2, 2)), (e: Error) =>
          e instanceof DownpourError && /must not be stored over t/.test(e.message));
        assert.ok(y!.f32().every((v) => v === 5) && g!.f32().every((v) => v === 5), "a failed call wrote to an output");
      });
    });
  });
}
