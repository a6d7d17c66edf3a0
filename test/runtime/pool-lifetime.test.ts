// A worker pool never closed does not keep the process alive: its workers are unref'd while idle and ref'd while
// a run is in flight (so a run not awaited still finishes) and while close() stops them. Checked in a child process.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runChildScript } from "../support/child.js";

/** Node's and Bun's workers have unref; Deno's have none, and Deno's process.execPath runs no plain script. */
const runtime = (globalThis as { Bun?: unknown }).Bun ? "bun" : (globalThis as { Deno?: unknown }).Deno ? "deno" : "node";
const skip = runtime === "deno" && "Deno workers have no unref (the pool documents: close it there)";

const CHILD_LIMIT_MS = 30_000;

const moduleUrl = (path: string): string => new URL(`../../src/${path}`, import.meta.url).href;

// A child script over this build: loads a shared core, starts a 2-thread pool, then runs `body`.
function script(body: string): string {
  return `
import { Kernels } from ${JSON.stringify(moduleUrl("core/kernels.js"))};
import { matrix } from ${JSON.stringify(moduleUrl("core/matrix.js"))};
import { ParallelGemm } from ${JSON.stringify(moduleUrl("core/parallel-gemm.js"))};
import { WorkerPool } from ${JSON.stringify(moduleUrl("runtime/pool.js"))};
const kernels = await Kernels.load({ shared: true });
const pool = await WorkerPool.start(kernels.core, { threads: 2 });
const y = kernels.arena.alloc(1 << 20);
const fill = (value) => ({ kernel: "f32_fill", args: [y.ptr, y.length, value] });
// A product long enough (about 0.1 s) that the process would end before it unless the run keeps it alive.
const n = 640;
const ones = kernels.arena.alloc(n * n);
ones.f32().fill(1);
const c = kernels.arena.alloc(n * n);
const product = () => new ParallelGemm(pool, kernels.arena).run(matrix(c, n, n), matrix(ones, n, n), matrix(ones, n, n));
${body}
`;
}

// Runs the script with this runtime; a child that outlives the limit is killed (killed: true).
const runChild = (source: string) => runChildScript("pool-lifetime", source, CHILD_LIMIT_MS);

describe("worker pool lifetime", { skip }, () => {
  const timeout = { timeout: CHILD_LIMIT_MS + 10_000 };

  test("a pool never closed lets the process exit after its last run", timeout, async () => {
    const child = await runChild(script(`await pool.run([fill(1), fill(2)]); console.log("ran", y.f32()[0]);`));
    assert.equal(child.killed, false, `the child was still alive after ${CHILD_LIMIT_MS} ms: the idle pool kept it alive`);
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /^ran [12]$/m);
  });

  test("a run not awaited keeps the process alive until it is done", timeout, async () => {
    const child = await runChild(script(`product().then(() => console.log("ran", c.f32()[c.length - 1]));`));
    assert.equal(child.killed, false, "the child did not exit");
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /^ran 640$/m, "the process ended before the run finished");
  });

  test("code after await pool.close() runs", timeout, async () => {
    const child = await runChild(script(`await pool.run([fill(4)]); await pool.close(); console.log("closed");`));
    assert.equal(child.killed, false, "the child did not exit");
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /^closed$/m);
  });
});
