// The worker pool over shared memory: a 2-thread GEMM equals the 1-thread one, traps surface as WorkerError.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { matrix } from "../../src/core/matrix.js";
import { ParallelGemm } from "../../src/core/parallel-gemm.js";
import { InvalidArgumentError, WorkerError } from "../../src/errors.js";
import { WorkerPool } from "../../src/runtime/pool.js";
import { randomArray, seededRandom } from "../helpers.js";

describe("worker pool", () => {
  let kernels: Kernels;
  let pool: WorkerPool;

  // Every test here runs on worker threads: a hung worker fails the test instead of the whole run.
  const workers = { timeout: 60_000 };

  before(async () => {
    kernels = await Kernels.load({ shared: true });
    pool = await WorkerPool.start(kernels.core, { threads: 2 });
  }, workers);
  after(async () => {
    await pool?.close();
  }, workers);

  test("2-thread GEMM matches 1-thread GEMM bit for bit, every transpose, uneven rows", workers, async () => {
    const parallel = new ParallelGemm(pool, kernels.arena);
    const random = seededRandom(11);
    for (const [m, n, k] of [[1, 9, 17], [33, 31, 7], [257, 64, 100], [100, 257, 33]] as const) {
      for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        const a = kernels.arena.alloc(m * k).set(randomArray(random, m * k));
        const b = kernels.arena.alloc(k * n).set(randomArray(random, k * n));
        const bias = kernels.arena.alloc(n).set(randomArray(random, n));
        const c1 = kernels.arena.alloc(m * n).set(randomArray(random, m * n));
        const c2 = kernels.arena.alloc(m * n).set(c1.toArray());
        const A = transA ? matrix(a, k, m) : matrix(a, m, k);
        const B = transB ? matrix(b, n, k) : matrix(b, k, n);
        const options = { transA, transB, alpha: 0.5, beta: 0.25, bias };
        kernels.gemm(matrix(c1, m, n), A, B, options);
        await parallel.run(matrix(c2, m, n), A, B, options);
        assert.deepEqual(c2.toArray(), c1.toArray(), `m=${m} n=${n} k=${k} transA=${transA} transB=${transB}`);
        parallel.runSync(matrix(c2, m, n), A, B, { ...options, beta: 0 });
        kernels.gemm(matrix(c1, m, n), A, B, { ...options, beta: 0 });
        assert.deepEqual(c2.toArray(), c1.toArray(), "runSync");
        for (const s of [a, b, bias, c1, c2]) kernels.arena.release(s);
      }
    }
  });

  test("run refuses calls that are not an array of { kernel, args }", workers, async () => {
    const refused = (pattern: RegExp) => (e: unknown) => e instanceof InvalidArgumentError && pattern.test((e as Error).message);
    await assert.rejects(pool.run("f32_fill" as never), refused(/^run: calls must be an array of \{ kernel, args \}.*got the string "f32_fill"$/));
    assert.throws(() => pool.runSync([{ kernel: "f32_fill", args: 3 as never }]), refused(/^run: each call must be \{ kernel, args: number\[\] \}, got an object with args the number 3$/));
    await pool.run([{ kernel: "f32_fill", args: [kernels.arena.alloc(1).ptr, 1, 2] }]); // still usable
  });

  test("runs queue in order and each call sees the previous one's result", workers, async () => {
    const c = kernels.arena.alloc(1);
    const one = kernels.arena.alloc(1).set([1]);
    const ws = kernels.arena.alloc(4096);
    // C(1x1) = 1 * 1 + 1 * C, ten runs posted at once: a lost or overlapping run shows in the count.
    const call = { kernel: "f32_gemm" as const, args: [c.ptr, 1, one.ptr, 1, one.ptr, 1, 1, 1, 1, 0, 0, 1, 1, 0, ws.ptr] };
    await Promise.all(Array.from({ length: 10 }, (_, i) => pool.run(i % 2 ? [call] : [undefined, call])));
    assert.equal(c.f32()[0], 10);
    for (const s of [c, one, ws]) kernels.arena.release(s);
  });

  test("a trapping kernel rejects with WorkerError naming the worker and kernel; the pool stays usable", workers, async () => {
    const huge = 0x7ffffff0;
    await assert.rejects(
      pool.run([{ kernel: "f32_gemm", args: [huge, 8, huge, 8, huge, 8, 8, 8, 8, 0, 0, 1, 0, 0, huge] }]),
      (e: Error) => e instanceof WorkerError && /worker 0 failed in f32_gemm/.test(e.message) && /out of bounds|RuntimeError/i.test(e.message),
    );
    await assert.rejects(pool.run([{ kernel: "no_such_kernel" as "f32_gemm", args: [] }]), /no kernel named no_such_kernel/);
    const c = kernels.arena.alloc(1);
    const one = kernels.arena.alloc(1).set([3]);
    const ws = kernels.arena.alloc(4096);
    await pool.run([undefined, { kernel: "f32_gemm", args: [c.ptr, 1, one.ptr, 1, one.ptr, 1, 1, 1, 1, 0, 0, 1, 0, 0, ws.ptr] }]);
    assert.equal(c.f32()[0], 9);
  });
});
