// Argument checks shared by the typed wrappers of the non-GEMM kernels (slab lengths, f32 scalars, ranges).
import { DownpourError, NonFiniteError, ShapeError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import { requireFinite } from "./matrix.js";

/** "w (12 values)" or "w (12 values, slab params)". */
export function describeSlab(name: string, slab: Slab): string {
  return `${name} (${slab.length} values${slab.name ? `, slab ${slab.name}` : ""})`;
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

/** Throws ShapeError unless every slab has the length of the first; names each slab and its length. */
export function requireSameLength(kernel: string, slabs: ReadonlyArray<readonly [string, Slab]>): void {
  const [firstName, first] = slabs[0]!;
  for (const [name, slab] of slabs.slice(1)) {
    if (slab.length !== first.length) {
      throw new ShapeError(
        `${kernel}: ${describeSlab(name, slab)} and ${describeSlab(firstName, first)} differ in length; they must have the same length`,
      );
    }
  }
}
