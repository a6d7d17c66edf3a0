// Finite-difference gradient checks: every activation backward and every loss gradient of the WASM core against
// central differences (in f64) of the reference forward, plus one check of each loss on the WASM forward itself.
import { describe, test } from "node:test";
import type { Activation } from "../../src/core/activations.js";
import type { Kernels } from "../../src/core/kernels.js";
import { matrix, type Matrix } from "../../src/core/matrix.js";
import * as act from "../../src/core/reference/activations.js";
import * as loss from "../../src/core/reference/losses.js";
import type { Slab } from "../../src/runtime/arena.js";
import { numericGradient, targetDistributions, withSlabs } from "../gradcheck.js";
import { assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

// The analytic gradients are f32; the numeric ones f64 with error ~h^2 (h = 1e-5 gives ~1e-10).
const TOL = { atol: 2e-6, rtol: 1e-4 };
const SHAPES = [[1, 1], [3, 5], [4, 8], [2, 17]] as const;

/** An activation with its f64 reference forward over rows x cols values. */
const ACTIVATIONS: { name: Activation | "softmax"; forward: (y: Float64Array, x: Float64Array, rows: number, cols: number) => void }[] = [
  { name: "identity", forward: (y, x, r, c) => act.identityForwardReference(y, x, r * c) },
  { name: "sigmoid", forward: (y, x, r, c) => act.sigmoidForwardReference(y, x, r * c) },
  { name: "tanh", forward: (y, x, r, c) => act.tanhForwardReference(y, x, r * c) },
  { name: "relu", forward: (y, x, r, c) => act.reluForwardReference(y, x, r * c) },
  { name: "softmax", forward: act.softmaxForwardReference },
];

function runActivation(k: Kernels, name: Activation | "softmax", y: Matrix, x: Matrix): void {
  if (name === "softmax") k.softmax(y, x);
  else k.activation(name, y, x);
}

function runBackward(k: Kernels, name: Activation | "softmax", dx: Matrix, dy: Matrix, y: Matrix): void {
  if (name === "softmax") k.softmaxBackward(dx, dy, y);
  else k.activationBackward(name, dx, dy, y);
}

/** A loss with its f64 reference (of the prediction or logits p) and the WASM kernel writing the gradient. */
interface LossCase {
  name: string;
  prediction(random: () => number, n: number): Float32Array;
  targets(random: () => number, rows: number, cols: number): Float32Array;
  reference(p: ArrayLike<number>, t: Float32Array, rows: number, cols: number): number;
  kernel(k: Kernels, grad: Matrix | undefined, y: Matrix, p: Matrix, t: Matrix): number;
}

const binaryTargets = (random: () => number, rows: number, cols: number) =>
  Float32Array.from({ length: rows * cols }, (_, i) => (i % 4 === 3 ? random() : random() < 0.5 ? 0 : 1));

const LOSSES: LossCase[] = [
  {
    name: "squaredError",
    prediction: (random, n) => randomArray(random, n, -2, 2),
    targets: (random, rows, cols) => randomArray(random, rows * cols),
    reference: (p, t, rows, cols) => loss.squaredErrorReference(undefined, p, t, rows, cols),
    kernel: (k, g, _y, p, t) => k.squaredError(g, p, t),
  },
  {
    name: "binaryCrossEntropy",
    // Inside the clamp, where the clamped formula is the true derivative.
    prediction: (random, n) => randomArray(random, n, 0.05, 0.95),
    targets: binaryTargets,
    reference: (p, t, rows, cols) => loss.binaryCrossEntropyReference(undefined, p, t, rows, cols),
    kernel: (k, g, _y, p, t) => k.binaryCrossEntropy(g, p, t),
  },
  {
    name: "sigmoidCrossEntropy",
    prediction: (random, n) => randomArray(random, n, -5, 5),
    targets: binaryTargets,
    reference: (p, t, rows, cols) => loss.sigmoidCrossEntropyReference(undefined, new Float64Array(rows * cols), p, t, rows, cols),
    kernel: (k, g, y, p, t) => k.sigmoidCrossEntropy(g, y, p, t),
  },
  {
    name: "softmaxCrossEntropy (one-hot targets)",
    prediction: (random, n) => randomArray(random, n, -5, 5),
    targets: (random, rows, cols) => targetDistributions(random, rows, cols, true),
    reference: (p, t, rows, cols) => loss.softmaxCrossEntropyReference(undefined, new Float64Array(rows * cols), p, t, rows, cols),
    kernel: (k, g, y, p, t) => k.softmaxCrossEntropy(g, y, p, t),
  },
  {
    name: "softmaxCrossEntropy (soft targets)",
    prediction: (random, n) => randomArray(random, n, -5, 5),
    targets: (random, rows, cols) => targetDistributions(random, rows, cols, false),
    reference: (p, t, rows, cols) => loss.softmaxCrossEntropyReference(undefined, new Float64Array(rows * cols), p, t, rows, cols),
    kernel: (k, g, y, p, t) => k.softmaxCrossEntropy(g, y, p, t),
  },
];

for (const variant of variantsToTest()) {
  describe(`gradient checks (${variant} build)`, () => {
    for (const { name, forward } of ACTIVATIONS) {
      test(`${name}Backward equals the central difference of L = sum(w * ${name}(x))`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(1300 + ACTIVATIONS.findIndex((a) => a.name === name));
        for (const [rows, cols] of SHAPES) {
          const n = rows * cols;
          withSlabs(kernels, [n, n, n, n], ([sx, sy, sw, sdx]) => {
            const x = randomArray(random, n, -3, 3);
            // Keep relu's inputs away from its kink, so that x +- h stays on one side.
            if (name === "relu") x.forEach((v, i) => {
              x[i] = Math.abs(v) < 0.05 ? v + 0.1 : v;
            });
            const w = randomArray(random, n);
            sx!.set(x);
            sw!.set(w);
            const m = (s: Slab | undefined) => matrix(s!, rows, cols);
            runActivation(kernels, name, m(sy), m(sx));
            runBackward(kernels, name, m(sdx), m(sw), m(sy));
            const y = new Float64Array(n);
            const expected = numericGradient((xp) => {
              forward(y, xp, rows, cols);
              return y.reduce((sum, v, i) => sum + w[i]! * v, 0);
            }, x);
            assertClose(sdx!.toArray(), expected, TOL, `${name}Backward ${rows}x${cols}`);
          });
        }
      });
    }

    for (const c of LOSSES) {
      test(`${c.name}: the gradient equals the central difference of the reference loss`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(1400 + LOSSES.indexOf(c));
        for (const [rows, cols] of SHAPES) {
          const n = rows * cols;
          withSlabs(kernels, [n, n, n, n], ([sp, st, sy, sg]) => {
            const p = c.prediction(random, n);
            const t = c.targets(random, rows, cols);
            sp!.set(p);
            st!.set(t);
            const m = (s: Slab | undefined) => matrix(s!, rows, cols);
            c.kernel(kernels, m(sg), m(sy), m(sp), m(st));
            const expected = numericGradient((pp) => c.reference(pp, t, rows, cols), p);
            assertClose(sg!.toArray(), expected, TOL, `${c.name} ${rows}x${cols}`);
          });
        }
      });

      test(`${c.name}: the gradient equals the central difference of the WASM loss (h = 1e-2)`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(1500 + LOSSES.indexOf(c));
        const [rows, cols] = [3, 6];
        const n = rows * cols;
        withSlabs(kernels, [n, n, n, n], ([sp, st, sy, sg]) => {
          const p = c.prediction(random, n);
          const t = c.targets(random, rows, cols);
          sp!.set(p);
          st!.set(t);
          const m = (s: Slab | undefined) => matrix(s!, rows, cols);
          c.kernel(kernels, m(sg), m(sy), m(sp), m(st));
          const expected = numericGradient((pp) => {
            sp!.set(pp);
            return c.kernel(kernels, undefined, m(sy), m(sp), m(st));
          }, p, 1e-2);
          // f32 losses (error ~1e-7) over a step of 1e-2, and the h^2 term of the curvature.
          assertClose(sg!.toArray(), expected, { atol: 1e-4, rtol: 2e-2 }, `${c.name} ${rows}x${cols} on the WASM loss`);
        });
      });
    }
  });
}
