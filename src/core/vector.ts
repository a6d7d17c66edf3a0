// Typed vector helpers over arena slabs (combining worker gradients, resetting buffers) and the column sum.
import { ShapeError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { describeSlab, requireMatrix, requireSameLength, requireScalar, requireSlab } from "./checks.js";
import { address, describe, requireDense, type Matrix } from "./matrix.js";

/** y = value in every element. */
export function fill(core: Core, y: Slab, value: number): void {
  requireSlab("fill", "y", y, core);
  requireScalar("fill", "value", value);
  core.exports.f32_fill(y.ptr, y.length, value);
}

/** y = x; the slabs must have the same length (y may be x). */
export function copy(core: Core, y: Slab, x: Slab): void {
  requireSameLength("copy", [["y", y], ["x", x]], core);
  core.exports.f32_copy(y.ptr, x.ptr, y.length);
}

/** y += alpha * x; the slabs must have the same length. */
export function axpy(core: Core, y: Slab, x: Slab, alpha: number): void {
  requireScalar("axpy", "alpha", alpha);
  requireSameLength("axpy", [["y", y], ["x", x]], core);
  core.exports.f32_axpy(y.ptr, x.ptr, y.length, alpha);
}

/** y *= alpha. */
export function scale(core: Core, y: Slab, alpha: number): void {
  requireSlab("scale", "y", y, core);
  requireScalar("scale", "alpha", alpha);
  core.exports.f32_scale(y.ptr, y.length, alpha);
}

/**
 * Column sums of a dense matrix, as for a bias gradient: out[j] = beta * out[j] + sum_i x[i][j].
 * out must have exactly x.cols values; beta == 0 (the default) means out is not read.
 */
export function colSum(core: Core, out: Slab, x: Matrix, beta = 0): void {
  requireSlab("colSum", "out", out, core);
  requireMatrix("colSum", "x", x, core);
  requireScalar("colSum", "beta", beta);
  requireDense("colSum", "x", x);
  if (out.length !== x.cols) {
    throw new ShapeError(`colSum: ${describeSlab("out", out)} must have one value per column of x (${describe(x)}), i.e. ${x.cols}`);
  }
  core.exports.f32_col_sum(out.ptr, address(x), x.rows, x.cols, beta);
}
