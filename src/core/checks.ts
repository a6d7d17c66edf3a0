// Argument checks shared by the typed kernel wrappers: each slab and matrix is a live one of the kernels' own core
// (released slabs and slabs of another core are refused by name), f32 scalars, ranges, options and lengths.
import { DownpourError, InvalidArgumentError, InvalidStateError, NonFiniteError, ShapeError } from "../errors.js";
import { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { describeValue } from "../util/describe.js";
import { matrixProblem, requireFinite, type Matrix } from "./matrix.js";

/** "w (12 values)" or "w (12 values, slab params)". */
export function describeSlab(name: string, slab: Slab): string {
  return `${name} (${slab.length} values${slab.name ? `, slab ${slab.name}` : ""})`;
}

/**
 * Throws unless `slab` is a live Slab of `core` (any core when omitted): InvalidArgumentError when it is not a
 * Slab or belongs to another core (another Kernels instance), InvalidStateError when it was released. The one check
 * every wrapper makes on each slab it is given: a few property reads per call, nothing per element.
 */
export function requireSlab(kernel: string, name: string, slab: unknown, core?: Core): asserts slab is Slab {
  if (!(slab instanceof Slab)) {
    throw new InvalidArgumentError(`${kernel}: ${name} must be a Slab (from kernels.arena.alloc), got ${describeValue(slab)}`);
  }
  if (slab.released) {
    throw new InvalidStateError(`${kernel}: ${name} (slab ${slab.label}) was released; its memory may now hold other data`);
  }
  if (core !== undefined && slab.core !== core) {
    throw new InvalidArgumentError(
      `${kernel}: ${name} (slab ${slab.label}) belongs to another core; pass slabs allocated from the arena of the Kernels you call`,
    );
  }
}

/**
 * Throws unless `m` is a Matrix (as matrix(slab, rows, cols) makes) over a live slab of `core`, whose shape fits
 * its slab: InvalidArgumentError for what is not a Matrix or belongs to another core, ShapeError for a shape that
 * does not fit, InvalidStateError for a released slab.
 */
export function requireMatrix(kernel: string, name: string, m: unknown, core?: Core): asserts m is Matrix {
  if (typeof m !== "object" || m === null || !(m as Partial<Matrix>).slab) {
    throw new InvalidArgumentError(`${kernel}: ${name} must be a Matrix (from matrix(slab, rows, cols)), got ${describeValue(m)}`);
  }
  const matrix = m as Matrix;
  requireSlab(kernel, `${name}'s slab`, matrix.slab, core);
  const problem = matrixProblem(matrix);
  if (problem) throw new ShapeError(`${kernel}: ${name} is not a valid Matrix: ${problem}`);
}

/** requireMatrix on each [name, matrix] pair. */
export function requireMatrices(kernel: string, core: Core, matrices: ReadonlyArray<readonly [string, unknown]>): void {
  for (const [name, m] of matrices) requireMatrix(kernel, name, m, core);
}

/** Throws InvalidArgumentError unless `options` is undefined or an object (an options bag). */
export function requireOptions(kernel: string, options: unknown, required = false): void {
  if (options === undefined && !required) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${kernel}: options must be an object${required ? "" : " or undefined"}, got ${describeValue(options)}`);
  }
}

/** Throws NonFiniteError unless `value` is finite both as a number and once rounded to the kernel's f32. */
export function requireScalar(kernel: string, name: string, value: number): void {
  requireFinite(kernel, name, value);
  if (!Number.isFinite(Math.fround(value))) throw new NonFiniteError(`${kernel}: ${name} must fit in a 32-bit float, got ${value}`);
}

/** Throws DownpourError unless lo <= value < hi (hi inclusive when `closed`). The value must be finite already. */
export function requireRange(kernel: string, name: string, value: number, lo: number, hi: number, closed = false): void {
  if (value < lo || value > hi || (!closed && value === hi)) {
    throw new DownpourError(`${kernel}: ${name} must be in [${lo}, ${hi}${closed ? "]" : ")"}, got ${value}`);
  }
}

/**
 * Throws unless every slab is a live slab of `core` (see requireSlab) with the length of the first (ShapeError
 * naming each slab and its length).
 */
export function requireSameLength(kernel: string, slabs: ReadonlyArray<readonly [string, Slab]>, core?: Core): void {
  for (const [name, slab] of slabs) requireSlab(kernel, name, slab, core);
  const [firstName, first] = slabs[0]!;
  for (const [name, slab] of slabs.slice(1)) {
    if (slab.length !== first.length) {
      throw new ShapeError(
        `${kernel}: ${describeSlab(name, slab)} and ${describeSlab(firstName, first)} differ in length; they must have the same length`,
      );
    }
  }
}
