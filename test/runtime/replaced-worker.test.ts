// The worker pool when another library has replaced the global Worker with node:worker_threads' class (the
// Emscripten Node glue of onnxruntime-web does `global.Worker = require("worker_threads").Worker`, and Bun takes it
// for Node): the Bun adapter then starts its threads on worker_threads, and a 2-thread GEMM still equals the
// 1-thread one. Node's adapter always uses worker_threads, Deno's the Web Worker, which nothing replaced there.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as threads from "node:worker_threads";
import { Kernels } from "../../src/core/kernels.js";
import { matrix } from "../../src/core/matrix.js";
import { ParallelGemm } from "../../src/core/parallel-gemm.js";
import { WorkerPool } from "../../src/runtime/pool.js";
import { randomArray, seededRandom } from "../helpers.js";

const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;

describe("a replaced global Worker", { skip: !isBun && "the Bun adapter's case: Node always uses worker_threads" }, () => {
  test("the pool starts its threads on worker_threads and computes what one thread does", { timeout: 60_000 }, async () => {
    const g = globalThis as { Worker?: unknown };
    const original = g.Worker;
    g.Worker = threads.Worker;
    let pool: WorkerPool | undefined;
    try {
      const kernels = await Kernels.load({ shared: true });
      pool = await WorkerPool.start(kernels.core, { threads: 2 });
      const random = seededRandom(5);
      const [m, n, k] = [33, 31, 17];
      const a = kernels.arena.alloc(m * k).set(randomArray(random, m * k));
      const b = kernels.arena.alloc(k * n).set(randomArray(random, k * n));
      const c1 = kernels.arena.alloc(m * n);
      const c2 = kernels.arena.alloc(m * n);
      kernels.gemm(matrix(c1, m, n), matrix(a, m, k), matrix(b, k, n));
      await new ParallelGemm(pool, kernels.arena).run(matrix(c2, m, n), matrix(a, m, k), matrix(b, k, n));
      assert.deepEqual(c2.toArray(), c1.toArray());
    } finally {
      await pool?.close();
      g.Worker = original;
    }
  });
});
