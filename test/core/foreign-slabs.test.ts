// Slabs of one Kernels instance passed to another are refused by name (each core has its own memory: the same
// byte offset there is another slab), by every kernel wrapper, ParallelGemm and Arena.release.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { matrix, type Matrix } from "../../src/core/matrix.js";
import { planGemm } from "../../src/core/gemm.js";
import { ParallelGemm } from "../../src/core/parallel-gemm.js";
import { InvalidArgumentError } from "../../src/errors.js";
import type { Slab } from "../../src/runtime/arena.js";
import { WorkerPool } from "../../src/runtime/pool.js";
import { randomArray, seededRandom } from "../helpers.js";

const N = 4;

/** InvalidArgumentError naming the kernel, the argument and its slab, saying it belongs to another core. */
function foreign(kernel: string, argument: string, slab: string): (e: unknown) => boolean {
  return (e) =>
    e instanceof InvalidArgumentError && e.message.startsWith(`${kernel}: ${argument}`) && e.message.includes(`(slab ${slab}) belongs to another core`);
}

describe("slabs of another core", () => {
  test("every kernel refuses them by name and the other core's memory is unchanged", async () => {
    const [one, two] = [await Kernels.load(), await Kernels.load()];
    const random = seededRandom(9);
    const own = (name: string): Slab => two.arena.alloc(N * N, name).set(randomArray(random, N * N, 0.1, 0.9));
    const x0 = one.arena.alloc(N * N, "x0").set(randomArray(random, N * N, 0.1, 0.9));
    const [y, t, w, g, v] = ["y", "t", "w", "g", "v"].map(own) as [Slab, Slab, Slab, Slab, Slab];
    const X: Matrix = matrix(x0, N, N);
    const M = (s: Slab): Matrix => matrix(s, N, N);
    const snapshot = () => [y, t, w, g, v].map((s) => s.toArray());
    const before = snapshot();
    const cases: Array<[string, string, () => unknown]> = [
      ["gemm", "a's slab", () => two.gemm(M(y), X, M(t))],
      ["gemm", "c's slab", () => two.gemm(X, M(y), M(t))],
      ["gemm", "bias", () => two.gemm(M(y), M(t), M(w), { bias: x0 })],
      ["sigmoid", "x (input)'s slab", () => two.sigmoid(M(y), X)],
      ["relu", "y (output)'s slab", () => two.activation("relu", X, M(y))],
      ["tanhBackward", "dy (output gradient)'s slab", () => two.tanhBackward(M(g), X, M(y))],
      ["softmax", "x (input)'s slab", () => two.softmax(M(y), X)],
      ["softmaxBackward", "y (forward output)'s slab", () => two.softmaxBackward(M(g), M(t), X)],
      ["squaredError", "t (targets)'s slab", () => two.squaredError(M(g), M(y), X)],
      ["binaryCrossEntropy", "y (probabilities)'s slab", () => two.binaryCrossEntropy(undefined, X, M(t))],
      ["sigmoidCrossEntropy", "dz (gradient)'s slab", () => two.sigmoidCrossEntropy(X, M(y), M(w), M(t))],
      ["softmaxCrossEntropy", "z (logits)'s slab", () => two.softmaxCrossEntropy(M(g), M(y), X, M(t))],
      ["colSum", "x's slab", () => two.colSum(two.arena.alloc(N), X)],
      ["sgdUpdate", "g", () => two.sgdUpdate(w, v, x0, { momentum: 0.9 })],
      ["adagradUpdate", "h", () => two.adagradUpdate(w, x0, g)],
      ["adamUpdate", "w", () => two.adamUpdate(x0, v, t, g, { step: 1 })],
      ["fill", "y", () => two.fill(x0, 1)],
      ["copy", "x", () => two.copy(y, x0)],
      ["axpy", "y", () => two.axpy(x0, y, 1)],
      ["scale", "y", () => two.scale(x0, 2)],
    ];
    for (const [kernel, argument, call] of cases) assert.throws(call, foreign(kernel, argument, "x0"), `${kernel} ${argument}`);
    assert.deepEqual(snapshot(), before, "a refused call changed the other core's memory");
  });

  test("planGemm without a core refuses arguments from a core other than C's", async () => {
    const [one, two] = [await Kernels.load(), await Kernels.load()];
    const c = matrix(one.arena.alloc(N * N, "c0"), N, N);
    const b = matrix(two.arena.alloc(N * N, "b9"), N, N);
    assert.throws(() => planGemm(c, c, b), foreign("gemm", "b's slab", "b9"));
  });

  test("ParallelGemm refuses an arena over another core than its pool's", { timeout: 60_000 }, async () => {
    const [one, two] = [await Kernels.load({ shared: true }), await Kernels.load()];
    const pool = await WorkerPool.start(one.core, { threads: 1 });
    try {
      assert.throws(() => new ParallelGemm(pool, two.arena), (e: unknown) => e instanceof InvalidArgumentError && /arena must be over the pool's core/.test((e as Error).message));
    } finally {
      await pool.close();
    }
  });

  test("Arena.release refuses a slab of another arena", async () => {
    const [one, two] = [await Kernels.load(), await Kernels.load()];
    const slab = one.arena.alloc(4, "z0");
    const theirs = two.arena.alloc(4);
    assert.equal(theirs.ptr, slab.ptr, "the test needs the same offset in both arenas");
    assert.throws(() => two.arena.release(slab), (e: unknown) => e instanceof InvalidArgumentError && /slab z0 belongs to another arena/.test((e as Error).message));
    assert.equal(theirs.released, false);
    theirs.f32()[0] = 3;
    assert.equal(theirs.toArray()[0], 3, "the other arena's slab is still live");
  });
});
