// Typed small-m GEMM for inference: checks shapes, then calls the core's f32_gemm_nopack (C = A B + bias, no
// transposes, no workspace), and says up to how many rows that kernel beats f32_gemm (NOPACK_MAX_ROWS).
import { ShapeError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { describeSlab, requireMatrices, requireOptions, requireSlab } from "./checks.js";
import { address, describe, type Matrix } from "./matrix.js";

/**
 * Rows up to which inference (Network.forwardRaw) multiplies with f32_gemm_nopack rather than f32_gemm. Measured
 * on a 784-128-10 MLP (Node 20/24, both builds): the unpacked kernel is 5-6x faster at 1 row, 1.4-1.6x at 8,
 * 1.1-1.4x at 16, even or slower at 32; past 8 rows it reads a large B more than twice, so 8 keeps a margin.
 */
export const NOPACK_MAX_ROWS = 8;

/** Options of gemmNopack. */
export interface GemmNopackOptions {
  /** n values added to every row of C. Default none (GEMM_NOPACK_DEFAULTS.bias). */
  bias?: Slab;
}

/** Defaults of GemmNopackOptions. */
export const GEMM_NOPACK_DEFAULTS: Readonly<GemmNopackOptions> = { bias: undefined };

/**
 * C = A B + bias (C m x n, A m x k, B k x n, any leading dimensions), on this thread; C is not read. Throws
 * ShapeError naming the shapes, InvalidArgumentError for what is not a Matrix/Slab or belongs to another core,
 * InvalidStateError for a released slab, before touching memory. Any m works; it pays off up to NOPACK_MAX_ROWS.
 */
export function gemmNopack(core: Core, c: Matrix, a: Matrix, b: Matrix, options: GemmNopackOptions = {}): void {
  const kernel = "gemmNopack";
  requireOptions(kernel, options);
  requireMatrices(kernel, core, [["c", c], ["a", a], ["b", b]]);
  const { bias = GEMM_NOPACK_DEFAULTS.bias } = options;
  if (bias !== undefined) requireSlab(kernel, "bias", bias, core);
  const [m, k, n] = [a.rows, a.cols, b.cols];
  const shapes = (): string => `C ${describe(c)}, A ${describe(a)}, B ${describe(b)}`;
  if (b.rows !== k) throw new ShapeError(`${kernel}: inner dimensions differ, A has ${k} columns but B has ${b.rows} rows; ${shapes()}`);
  if (c.rows !== m || c.cols !== n) throw new ShapeError(`${kernel}: C must be ${m}x${n}; ${shapes()}`);
  if (bias && bias.length < n) throw new ShapeError(`${kernel}: ${describeSlab("bias", bias)} is too short, C has ${n} columns`);
  core.exports.f32_gemm_nopack(address(c), c.ld, address(a), a.ld, address(b), b.ld, m, n, k, bias ? bias.ptr : 0);
}
