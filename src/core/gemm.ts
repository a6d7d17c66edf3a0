// Typed GEMM over arena matrices: checks shapes and scalars, then calls the core's f32_gemm (one thread).
import { ShapeError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { requireMatrices, requireMatrix, requireOptions, requireSlab } from "./checks.js";
import { address, describe, requireFinite, type Matrix } from "./matrix.js";

/** Options of gemm. */
export interface GemmOptions {
  /** Use A^T in place of A. Default false. */
  transA?: boolean;
  /** Use B^T in place of B. Default false. */
  transB?: boolean;
  /** Scale of the product. Default 1. */
  alpha?: number;
  /** Scale of C's old contents; 0 means C is not read. Default 0. */
  beta?: number;
  /** n values added to every row of C (not scaled by alpha). Default none. */
  bias?: Slab;
}

/** The raw f32_gemm arguments of one product, after every check. */
export interface GemmPlan {
  m: number;
  n: number;
  k: number;
  args: (ws: number) => number[];
}

function opShape(x: Matrix, trans: boolean): [number, number] {
  return trans ? [x.cols, x.rows] : [x.rows, x.cols];
}

/**
 * Validates C = alpha * op(A) op(B) + beta * C + bias and returns the raw call. Throws ShapeError/NonFiniteError,
 * InvalidArgumentError for an argument that is not a Matrix (or a bias that is not a Slab) or whose slab belongs to
 * a core other than `core` (when given), InvalidStateError for a released slab.
 */
export function planGemm(c: Matrix, a: Matrix, b: Matrix, options: GemmOptions = {}, core?: Core): GemmPlan {
  requireOptions("gemm", options);
  requireMatrix("gemm", "c", c, core);
  const own = core ?? c.slab.core; // without a core, every argument must share C's
  requireMatrices("gemm", own, [["a", a], ["b", b]]);
  if (options.bias !== undefined) requireSlab("gemm", "bias", options.bias, own);
  const { transA = false, transB = false, alpha = 1, beta = 0, bias } = options;
  requireFinite("gemm", "alpha", alpha);
  requireFinite("gemm", "beta", beta);
  const [m, k] = opShape(a, transA);
  const [kb, n] = opShape(b, transB);
  const shapes = `C ${describe(c)}, op(A) ${m}x${k} (A ${describe(a)}${transA ? ", transposed" : ""}), op(B) ${kb}x${n} (B ${describe(b)}${transB ? ", transposed" : ""})`;
  if (k !== kb) throw new ShapeError(`gemm: inner dimensions differ, op(A) has ${k} columns but op(B) has ${kb} rows; ${shapes}`);
  if (c.rows !== m || c.cols !== n) throw new ShapeError(`gemm: C must be ${m}x${n}; ${shapes}`);
  if (bias && bias.length < n) throw new ShapeError(`gemm: bias has ${bias.length} values, C has ${n} columns`);
  const ptrs = [address(c), c.ld, address(a), a.ld, address(b), b.ld];
  return {
    m, n, k,
    args: (ws) => [...ptrs, m, n, k, transA ? 1 : 0, transB ? 1 : 0, alpha, beta, bias ? bias.ptr : 0, ws],
  };
}

/** Runs a checked product on this thread (`core` is the one planGemm was given) with a workspace of at least f32_gemm_workspace_bytes(m, n, k). */
export function runGemm(core: Core, plan: GemmPlan, workspace: Slab): void {
  const [c, ldc, a, lda, b, ldb, m, n, k, ta, tb, alpha, beta, bias, ws] = plan.args(workspace.ptr) as [
    number, number, number, number, number, number, number, number, number, number, number, number, number, number, number,
  ];
  core.exports.f32_gemm(c, ldc, a, lda, b, ldb, m, n, k, ta, tb, alpha, beta, bias, ws);
}
