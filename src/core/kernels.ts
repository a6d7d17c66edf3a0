// The typed kernel API: one object holding a core, its arena and a scratch workspace, with checked methods.
import { Arena, type ArenaOptions, type Slab } from "../runtime/arena.js";
import { loadCore, type Core, type CoreOptions } from "../runtime/core.js";
import { detectPlatform, type Platform } from "../runtime/platform.js";
import { planGemm, runGemm, type GemmOptions } from "./gemm.js";
import type { Matrix } from "./matrix.js";

/** Options of Kernels.load. */
export interface KernelsOptions extends CoreOptions, ArenaOptions {
  /** Runtime adapter. Default: the detected one. */
  platform?: Platform;
}

/** Checked kernels over one core. Methods run on the calling thread and return when the kernel has. */
export class Kernels {
  private scratch: Slab | undefined;

  constructor(
    readonly core: Core,
    readonly arena: Arena,
  ) {}

  /** Loads the core for this runtime (see CoreOptions) and opens an arena over its memory. */
  static async load(options: KernelsOptions = {}): Promise<Kernels> {
    const platform = options.platform ?? (await detectPlatform());
    const core = await loadCore(platform, options);
    return new Kernels(core, new Arena(core, options));
  }

  /** A scratch slab of at least `bytes` bytes, reused between calls (contents undefined). */
  workspace(bytes: number): Slab {
    if (!this.scratch || this.scratch.length * 4 < bytes) {
      if (this.scratch) this.arena.release(this.scratch);
      this.scratch = this.arena.alloc(Math.ceil(bytes / 4), "gemm workspace");
    }
    return this.scratch;
  }

  /** C = alpha * op(A) * op(B) + beta * C + bias. Throws ShapeError or NonFiniteError before touching memory. */
  gemm(c: Matrix, a: Matrix, b: Matrix, options: GemmOptions = {}): void {
    const plan = planGemm(c, a, b, options);
    runGemm(this.core, plan, this.workspace(this.core.exports.f32_gemm_workspace_bytes(plan.m, plan.n, plan.k)));
  }
}
