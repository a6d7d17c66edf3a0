// GEMM across a worker pool: the rows of C (and of op(A)) are cut into one band per worker, each worker with
// its own packing workspace, all over the same shared memory.
import { InvalidArgumentError } from "../errors.js";
import { Arena, type Slab } from "../runtime/arena.js";
import { type KernelCall, WorkerPool } from "../runtime/pool.js";
import { describeValue } from "../util/describe.js";
import { planGemm, type GemmOptions } from "./gemm.js";
import type { Matrix } from "./matrix.js";

/** Splits products by rows over a pool. Allocates one workspace per worker from `arena`, kept for reuse. */
export class ParallelGemm {
  private workspaces: Slab[] = [];

  /** Throws InvalidArgumentError unless `arena` is over the pool's core (the memory its workers share). */
  constructor(
    readonly pool: WorkerPool,
    readonly arena: Arena,
  ) {
    if (!(pool instanceof WorkerPool)) throw new InvalidArgumentError(`ParallelGemm: pool must be a WorkerPool (WorkerPool.start()), got ${describeValue(pool)}`);
    if (!(arena instanceof Arena)) throw new InvalidArgumentError(`ParallelGemm: arena must be an Arena (kernels.arena), got ${describeValue(arena)}`);
    if (arena.core !== pool.core) throw new InvalidArgumentError("ParallelGemm: the arena must be over the pool's core (kernels.arena of the Kernels whose core started the pool)");
  }

  /** Resolves when every band is done; C is written in place. Same semantics and errors as Kernels.gemm. */
  run(c: Matrix, a: Matrix, b: Matrix, options: GemmOptions = {}): Promise<void> {
    return this.pool.run(this.calls(c, a, b, options));
  }

  /** Like run, blocking this thread until done (not on a browser main thread). */
  runSync(c: Matrix, a: Matrix, b: Matrix, options: GemmOptions = {}): void {
    this.pool.runSync(this.calls(c, a, b, options));
  }

  private calls(c: Matrix, a: Matrix, b: Matrix, options: GemmOptions): KernelCall[] {
    const plan = planGemm(c, a, b, options, this.pool.core);
    const core = this.pool.core;
    const tile = core.gemmTileRows;
    const bands = Math.max(1, Math.min(this.pool.size, Math.ceil(plan.m / tile)));
    const rowsPerBand = Math.ceil(plan.m / bands / tile) * tile;
    this.ensureWorkspaces(bands, core.exports.f32_gemm_workspace_bytes(rowsPerBand, plan.n, plan.k));
    const calls: KernelCall[] = [];
    for (let band = 0, r0 = 0; r0 < plan.m; band++, r0 += rowsPerBand) {
      const rows = Math.min(rowsPerBand, plan.m - r0);
      const args = plan.args(this.workspaces[band]!.ptr);
      args[0]! += 4 * r0 * c.ld; // C
      args[2]! += 4 * r0 * (options.transA ? 1 : a.ld); // A
      args[6] = rows; // m
      calls.push({ kernel: "f32_gemm", args });
    }
    return calls;
  }

  private ensureWorkspaces(count: number, bytes: number): void {
    for (let i = 0; i < count; i++) {
      const ws = this.workspaces[i];
      if (ws && ws.length * 4 >= bytes) continue;
      if (ws) this.arena.release(ws);
      this.workspaces[i] = this.arena.alloc(Math.ceil(bytes / 4), `gemm workspace ${i}`, `the scratch space of worker ${i}'s matrix product`);
    }
  }
}
