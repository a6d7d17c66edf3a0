// Optimizer updates against the TypeScript references: several steps over every n in EDGE_SIZES with f32 state,
// with and without momentum and weight decay, and the scalar, range and length errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Kernels } from "../../src/core/kernels.js";
import * as ref from "../../src/core/reference/optimizers.js";
import { DownpourError, NonFiniteError, ShapeError } from "../../src/errors.js";
import type { Slab } from "../../src/runtime/arena.js";
import { withSlabs } from "../gradcheck.js";
import { EDGE_SIZES, assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

const STEPS = 3;
const TOL = { atol: 1e-6, rtol: 1e-5 };

/** One optimizer configuration: `state` slabs besides w and g, the kernel call and the reference call. */
interface OptimizerCase {
  label: string;
  state: number;
  /** Range of the initial state values (AdaGrad's h and Adam's v must be non-negative). */
  stateRange: [number, number];
  kernel(k: Kernels, w: Slab, state: Slab[], g: Slab, step: number): void;
  reference(w: Float32Array, state: Float32Array[], g: Float32Array, n: number, step: number): void;
}

const CASES: OptimizerCase[] = [
  {
    label: "sgd without momentum",
    state: 0,
    stateRange: [0, 0],
    kernel: (k, w, _s, g) => k.sgdUpdate(w, undefined, g, { lr: 0.1 }),
    reference: (w, _s, g, n) => ref.sgdUpdateReference(w, undefined, g, n, 0.1, 0, 0),
  },
  {
    label: "sgd with weight decay",
    state: 0,
    stateRange: [0, 0],
    kernel: (k, w, _s, g) => k.sgdUpdate(w, undefined, g, { lr: 0.05, weightDecay: 0.01 }),
    reference: (w, _s, g, n) => ref.sgdUpdateReference(w, undefined, g, n, 0.05, 0, 0.01),
  },
  {
    label: "sgd with momentum and weight decay",
    state: 1,
    stateRange: [-0.5, 0.5],
    kernel: (k, w, [v], g) => k.sgdUpdate(w, v, g, { lr: 0.03, momentum: 0.9, weightDecay: 1e-3 }),
    reference: (w, [v], g, n) => ref.sgdUpdateReference(w, v, g, n, 0.03, 0.9, 1e-3),
  },
  {
    label: "adagrad",
    state: 1,
    stateRange: [0, 1],
    kernel: (k, w, [h], g) => k.adagradUpdate(w, h!, g, { lr: 0.1, eps: 1e-6, weightDecay: 0.02 }),
    reference: (w, [h], g, n) => ref.adagradUpdateReference(w, h!, g, n, 0.1, 1e-6, 0.02),
  },
  {
    label: "adam (defaults)",
    state: 2,
    stateRange: [0, 0],
    kernel: (k, w, [m, v], g, step) => k.adamUpdate(w, m!, v!, g, { step }),
    reference: (w, [m, v], g, n, step) => ref.adamUpdateReference(w, m!, v!, g, n, 0.001, 0.9, 0.999, 1e-8, 0, step),
  },
  {
    label: "adam with weight decay, warm state",
    state: 2,
    stateRange: [0, 0.1],
    kernel: (k, w, [m, v], g, step) => k.adamUpdate(w, m!, v!, g, { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05, step: step + 10 }),
    reference: (w, [m, v], g, n, step) => ref.adamUpdateReference(w, m!, v!, g, n, 0.01, 0.8, 0.99, 1e-6, 0.05, step + 10),
  },
];

for (const variant of variantsToTest()) {
  describe(`optimizers (${variant} build)`, () => {
    for (const c of CASES) {
      test(`${c.label}: ${STEPS} steps match the reference for every n in EDGE_SIZES`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(900 + CASES.indexOf(c));
        for (const n of EDGE_SIZES) {
          withSlabs(kernels, Array(2 + c.state).fill(n), ([sw, sg, ...state]) => {
            const w = randomArray(random, n);
            const refState = state.map((s) => {
              const values = randomArray(random, n, ...c.stateRange);
              s.set(values);
              return values;
            });
            sw!.set(w);
            for (let step = 1; step <= STEPS; step++) {
              const g = randomArray(random, n);
              sg!.set(g);
              c.kernel(kernels, sw!, state, sg!, step);
              c.reference(w, refState, g, n, step);
              assertClose(sw!.toArray(), w, TOL, `${c.label} n=${n} step ${step}: w`);
              for (const [i, s] of state.entries()) assertClose(s.toArray(), refState[i]!, TOL, `${c.label} n=${n} step ${step}: state ${i}`);
              assert.deepEqual(sg!.toArray(), g, `${c.label}: the gradient was modified`);
            }
          });
        }
      });
    }

    test("adam's first step moves every weight by about lr against the sign of its gradient", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(950);
      const n = 33;
      withSlabs(kernels, [n, n, n, n], ([w, m, v, g]) => {
        const w0 = randomArray(random, n);
        const g0 = randomArray(random, n).map((x) => x + Math.sign(x) * 0.1);
        w!.set(w0);
        g!.set(g0);
        kernels.adamUpdate(w!, m!, v!, g!, { lr: 0.01, step: 1 });
        const expected = w0.map((x, i) => x - 0.01 * Math.sign(g0[i]!));
        assertClose(w!.toArray(), expected, { atol: 1e-7, rtol: 1e-5 }, "adam step 1");
      });
    });

    test("errors: NaN learning rate, out-of-range hyper-parameters, bad step, lengths, momentum without velocity", async () => {
      const kernels = await kernelsFor(variant);
      withSlabs(kernels, [10, 10, 10, 10, 9], ([w, m, v, g, short]) => {
        w!.f32().fill(1);
        assert.throws(() => kernels.sgdUpdate(w!, undefined, g!, { lr: Number.NaN }), (e: Error) =>
          e instanceof NonFiniteError && e.message === "sgdUpdate: lr must be a finite number, got NaN");
        assert.throws(() => kernels.adagradUpdate(w!, m!, g!, { lr: Infinity }), (e: Error) => e instanceof NonFiniteError && /adagradUpdate: lr/.test(e.message));
        assert.throws(() => kernels.adamUpdate(w!, m!, v!, g!, { lr: 1e39, step: 1 }), (e: Error) =>
          e instanceof NonFiniteError && /adamUpdate: lr must fit in a 32-bit float/.test(e.message));
        assert.throws(() => kernels.adamUpdate(w!, m!, v!, g!, { eps: Number.NaN, step: 1 }), (e: Error) => e instanceof NonFiniteError && /eps/.test(e.message));
        assert.throws(() => kernels.adamUpdate(w!, m!, v!, g!, { beta1: 1, step: 1 }), (e: Error) =>
          e instanceof DownpourError && /adamUpdate: beta1 must be in \[0, 1\), got 1/.test(e.message));
        assert.throws(() => kernels.adamUpdate(w!, m!, v!, g!, { step: 0 }), (e: Error) => e instanceof DownpourError && /step must be an integer from 1/.test(e.message));
        assert.throws(() => kernels.adamUpdate(w!, m!, v!, g!, { step: 1.5 }), (e: Error) => e instanceof DownpourError && /got 1.5/.test(e.message));
        assert.throws(() => kernels.sgdUpdate(w!, undefined, g!, { momentum: 0.9 }), (e: Error) =>
          e instanceof DownpourError && /momentum 0.9 needs a velocity slab/.test(e.message));
        assert.throws(() => kernels.sgdUpdate(w!, v!, short!, { momentum: 0.9 }), (e: Error) =>
          e instanceof ShapeError && e.message === "sgdUpdate: g (9 values) and w (10 values) differ in length; they must have the same length");
        assert.throws(() => kernels.adamUpdate(w!, m!, short!, g!, { step: 1 }), (e: Error) => e instanceof ShapeError && /v \(9 values\) and w \(10 values\)/.test(e.message));
        assert.ok(w!.f32().every((x) => x === 1), "a failed update changed the weights");
      });
    });
  });
}
