// Activations and softmax against the TypeScript references: every length in EDGE_SIZES, unaligned and strided
// views, in-place operation, large-magnitude inputs (no NaN or Infinity), and the shape errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Activation } from "../../src/core/activations.js";
import { matrix } from "../../src/core/matrix.js";
import * as ref from "../../src/core/reference/activations.js";
import { ShapeError } from "../../src/errors.js";
import { assertFinite, withLargeValues, withSlabs } from "../gradcheck.js";
import { EDGE_SIZES, assertClose, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

type Forward = (y: Float32Array, x: Float32Array, n: number) => void;
type Backward = (dx: Float32Array, dy: Float32Array, y: Float32Array, n: number) => void;

const CASES: { activation: Activation; forward: Forward; backward: Backward; tol: { atol: number; rtol: number } }[] = [
  { activation: "identity", forward: ref.identityForwardReference, backward: (dx, dy, _y, n) => ref.identityForwardReference(dx, dy, n), tol: { atol: 0, rtol: 0 } },
  { activation: "sigmoid", forward: ref.sigmoidForwardReference, backward: ref.sigmoidBackwardReference, tol: { atol: 2e-7, rtol: 2e-6 } },
  { activation: "tanh", forward: ref.tanhForwardReference, backward: ref.tanhBackwardReference, tol: { atol: 2e-7, rtol: 2e-6 } },
  { activation: "relu", forward: ref.reluForwardReference, backward: ref.reluBackwardReference, tol: { atol: 0, rtol: 0 } },
];
// Backward passes are a product of two or three f32 values: a couple of roundings.
const BACKWARD_TOL = { atol: 1e-7, rtol: 1e-6 };
const SOFTMAX_ROWS = [1, 2, 5, 16, 33] as const;
const SOFTMAX_TOL = { atol: 1e-7, rtol: 5e-6 };
const SOFTMAX_BACKWARD_TOL = { atol: 1e-6, rtol: 1e-5 };

for (const variant of variantsToTest()) {
  describe(`activations (${variant} build)`, () => {
    for (const { activation, forward, backward, tol } of CASES) {
      test(`${activation}: forward and backward match the reference for every n in EDGE_SIZES, at unaligned offsets`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(100 + CASES.findIndex((c) => c.activation === activation));
        for (const n of EDGE_SIZES) {
          const offset = n % 4; // 0..3 floats past the 64-byte aligned slab start
          withSlabs(kernels, [n + 3, n + 3, n + 3, n + 3], ([sx, sy, sdy, sdx]) => {
            const x = randomArray(random, n, -6, 6);
            if (n > 2) withLargeValues(x, random);
            const dy = randomArray(random, n);
            sx!.set(x, offset);
            sdy!.set(dy, offset);
            const [mx, my, mdy, mdx] = [sx!, sy!, sdy!, sdx!].map((s) => matrix(s, 1, n, { offset }));
            kernels.activation(activation, my!, mx!);
            const y = sy!.f32().slice(offset, offset + n);
            const expected = new Float32Array(n);
            forward(expected, x, n);
            assertClose(y, expected, tol, `${activation} forward n=${n}`);
            assertFinite(y, `${activation} forward n=${n}`);
            kernels.activationBackward(activation, mdx!, mdy!, my!);
            const expectedDx = new Float32Array(n);
            backward(expectedDx, dy, y, n);
            assertClose(sdx!.f32().slice(offset, offset + n), expectedDx, activation === "relu" || activation === "identity" ? { atol: 0, rtol: 0 } : BACKWARD_TOL, `${activation} backward n=${n}`);
          });
        }
      });

      test(`${activation}: in place (y = x, dx = dy) gives the out-of-place results bit for bit`, async () => {
        const kernels = await kernelsFor(variant);
        const random = seededRandom(200);
        const n = 257;
        withSlabs(kernels, [n, n, n, n, n], ([sx, sy, sdy, sdx, sio]) => {
          sx!.set(withLargeValues(randomArray(random, n, -3, 3), random));
          sdy!.set(randomArray(random, n));
          const m = (s: typeof sx) => matrix(s!, 1, n);
          kernels.activation(activation, m(sy), m(sx));
          kernels.activationBackward(activation, m(sdx), m(sdy), m(sy));
          sio!.set(sx!.f32());
          kernels.activation(activation, m(sio), m(sio));
          assert.deepEqual(sio!.toArray(), sy!.toArray(), `${activation} forward in place`);
          kernels.activationBackward(activation, m(sdy), m(sdy), m(sy));
          assert.deepEqual(sdy!.toArray(), sdx!.toArray(), `${activation} backward in place`);
        });
      });
    }

    test("elementwise activations over strided matrices touch only the view", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(300);
      const [rows, cols, ld] = [7, 5, 9];
      withSlabs(kernels, [rows * ld, rows * ld], ([sx, sy]) => {
        const x = randomArray(random, rows * ld, -4, 4);
        sx!.set(x);
        sy!.f32().fill(42);
        kernels.tanh(matrix(sy!, rows, cols, { ld }), matrix(sx!, rows, cols, { ld }));
        const y = sy!.f32();
        for (let i = 0; i < rows * ld; i++) {
          const inside = i % ld < cols;
          const expected = inside ? Math.fround(Math.tanh(x[i]!)) : 42;
          assert.ok(Math.abs(y[i]! - expected) <= 2e-7 + 2e-6 * Math.abs(expected), `element ${i}: ${y[i]} != ${expected}`);
        }
      });
    });

    test("sigmoid and tanh saturate cleanly for |x| up to 1e4 and keep relative accuracy for tiny x", async () => {
      const kernels = await kernelsFor(variant);
      const x = Float32Array.from([-1e4, -100, -88.5, -87, -30, -1e-3, -1e-20, -0, 0, 1e-30, 1e-8, 1e-3, 0.6249, 0.625, 0.6251, 30, 88.5, 100, 1e4]);
      const n = x.length;
      withSlabs(kernels, [n, n], ([sx, sy]) => {
        sx!.set(x);
        for (const [activation, fn] of [["sigmoid", ref.sigmoidForwardReference], ["tanh", ref.tanhForwardReference]] as const) {
          kernels.activation(activation, matrix(sy!, 1, n), matrix(sx!, 1, n));
          const expected = new Float32Array(n);
          fn(expected, x, n);
          const y = sy!.toArray();
          assertFinite(y, activation);
          assertClose(y, expected, { atol: activation === "tanh" ? 0 : 2e-7, rtol: 2e-6 }, activation);
        }
      });
    });

    test("softmax forward and backward match the reference for rows x cols over EDGE_SIZES", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(400);
      for (const rows of SOFTMAX_ROWS) {
        for (const cols of EDGE_SIZES) {
          const n = rows * cols;
          withSlabs(kernels, [n, n, n, n], ([sx, sy, sdy, sdx]) => {
            const x = randomArray(random, n, -5, 5);
            const dy = randomArray(random, n);
            sx!.set(x);
            sdy!.set(dy);
            const m = (s: typeof sx) => matrix(s!, rows, cols);
            kernels.softmax(m(sy), m(sx));
            const expected = new Float32Array(n);
            ref.softmaxForwardReference(expected, x, rows, cols);
            const y = sy!.toArray();
            assertClose(y, expected, SOFTMAX_TOL, `softmax ${rows}x${cols}`);
            kernels.softmaxBackward(m(sdx), m(sdy), m(sy));
            const expectedDx = new Float32Array(n);
            ref.softmaxBackwardReference(expectedDx, dy, y, rows, cols);
            assertClose(sdx!.toArray(), expectedDx, SOFTMAX_BACKWARD_TOL, `softmaxBackward ${rows}x${cols}`);
          });
        }
      }
    });

    test("softmax is stable for logits up to |x| = 100 and runs in place", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(500);
      for (const [rows, cols] of [[3, 1], [4, 7], [16, 10], [5, 257]] as const) {
        const n = rows * cols;
        withSlabs(kernels, [n, n, n], ([sx, sy, sdy]) => {
          const x = randomArray(random, n, -100, 100);
          for (let j = 0; j < cols; j++) x[j] = 100; // a row of ties at the top of the range
          sx!.set(x);
          const m = (s: typeof sx) => matrix(s!, rows, cols);
          kernels.softmax(m(sy), m(sx));
          const y = sy!.toArray();
          assertFinite(y, `softmax ${rows}x${cols}`);
          const expected = new Float32Array(n);
          ref.softmaxForwardReference(expected, x, rows, cols);
          assertClose(y, expected, SOFTMAX_TOL, `softmax |x| <= 100, ${rows}x${cols}`);
          for (let r = 0; r < rows; r++) {
            const sum = y.subarray(r * cols, (r + 1) * cols).reduce((a, b) => a + b, 0);
            assert.ok(Math.abs(sum - 1) < 1e-5, `row ${r} sums to ${sum}`);
          }
          kernels.softmax(m(sx), m(sx));
          assert.deepEqual(sx!.toArray(), y, "softmax in place");
          const dy = randomArray(random, n);
          sdy!.set(dy);
          kernels.softmaxBackward(m(sdy), m(sdy), m(sy));
          const expectedDx = new Float32Array(n);
          ref.softmaxBackwardReference(expectedDx, dy, y, rows, cols);
          assertClose(sdy!.toArray(), expectedDx, SOFTMAX_BACKWARD_TOL, `softmaxBackward in place ${rows}x${cols}`);
        });
      }
    });

    test("shape errors name the kernel, the arguments and both shapes, before touching memory", async () => {
      const kernels = await kernelsFor(variant);
      withSlabs(kernels, [200, 200], ([a, b]) => {
        b!.f32().fill(7);
        assert.throws(() => kernels.sigmoid(matrix(b!, 4, 5), matrix(a!, 4, 6)), (e: Error) =>
          e instanceof ShapeError && /^sigmoid: y \(output\) is 4x5 but x \(input\) is 4x6/.test(e.message));
        assert.throws(() => kernels.reluBackward(matrix(b!, 4, 5), matrix(a!, 5, 4), matrix(a!, 4, 5)), (e: Error) =>
          e instanceof ShapeError && /reluBackward: dy \(output gradient\) is 5x4 but y \(forward output\) is 4x5/.test(e.message));
        assert.throws(() => kernels.softmax(matrix(b!, 3, 4, { ld: 6 }), matrix(a!, 3, 4)), (e: Error) =>
          e instanceof ShapeError && /softmax: y \(output\) is 3x4 \(ld 6\); this kernel needs a dense matrix/.test(e.message));
        assert.throws(() => kernels.softmaxBackward(matrix(b!, 3, 4), matrix(a!, 3, 4), matrix(a!, 4, 3)), (e: Error) =>
          e instanceof ShapeError && /softmaxBackward: .* is 3x4 but .* is 4x3/.test(e.message));
        assert.throws(() => kernels.activation("gelu" as Activation, matrix(b!, 1, 1), matrix(a!, 1, 1)), /unknown activation "gelu"/);
        assert.ok(b!.f32().every((v) => v === 7), "a failed call wrote to its output");
      });
    });
  });
}
