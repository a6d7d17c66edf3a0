// Row-major matrix views over arena slabs, with the shape checks every typed kernel wrapper shares.
import { InvalidArgumentError, NonFiniteError, ShapeError } from "../errors.js";
import { Slab } from "../runtime/arena.js";
import { describeValue } from "../util/describe.js";

/** A rows x cols row-major matrix inside a slab: element (i, j) is slab[offset + i * ld + j]. */
export interface Matrix {
  readonly slab: Slab;
  readonly rows: number;
  readonly cols: number;
  /** Leading dimension (elements between rows), >= cols. */
  readonly ld: number;
  /** First element within the slab. */
  readonly offset: number;
}

/**
 * A matrix view (no copy); `ld` defaults to `cols`, `offset` to 0. Throws ShapeError if it does not fit the slab,
 * InvalidArgumentError if `slab` is not a Slab, InvalidStateError if it was released.
 */
export function matrix(slab: Slab, rows: number, cols: number, options: { ld?: number; offset?: number } = {}): Matrix {
  if (!(slab instanceof Slab)) throw new InvalidArgumentError(`matrix: slab must be a Slab (from kernels.arena.alloc), got ${describeValue(slab)}`);
  slab.requireLive("matrix()");
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`matrix: options must be an object like { ld, offset }, got ${describeValue(options)}`);
  }
  const m: Matrix = { slab, rows, cols, ld: options.ld ?? cols, offset: options.offset ?? 0 };
  const problem = matrixProblem(m);
  if (problem) throw new ShapeError(`matrix ${problem}`);
  return m;
}

/** What is wrong with a matrix's shape fields or their fit in its slab, or undefined when nothing is. */
export function matrixProblem(m: Matrix): string | undefined {
  const { rows, cols, ld, offset, slab } = m;
  for (const [name, value] of Object.entries({ rows, cols, ld, offset })) {
    if (!Number.isInteger(value) || value < 0) return `${describe(m)}: ${name} must be a non-negative integer, got ${describeValue(value)}`;
  }
  if (ld < cols) return `${describe(m)}: leading dimension ${ld} is less than its ${cols} columns`;
  if (rows > 0 && cols > 0 && offset + (rows - 1) * ld + cols > slab.length) {
    return `${describe(m)} at offset ${offset} needs ${offset + (rows - 1) * ld + cols} elements, slab${slab.name ? ` ${slab.name}` : ""} has ${slab.length}`;
  }
  return undefined;
}

/** "3x4" or "3x4 (ld 7)". */
export function describe(m: Pick<Matrix, "rows" | "cols" | "ld">): string {
  return m.ld === m.cols ? `${m.rows}x${m.cols}` : `${m.rows}x${m.cols} (ld ${m.ld})`;
}

/** Byte address of element (0, 0). */
export function address(m: Matrix): number {
  return m.slab.ptr + 4 * m.offset;
}

/** Throws NonFiniteError naming the kernel and argument unless `value` is a finite number. */
export function requireFinite(kernel: string, name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new NonFiniteError(`${kernel}: ${name} must be a finite number, got ${typeof value === "number" ? value : describeValue(value)}`);
  }
}

/** Throws ShapeError unless both matrices are rows x cols alike. */
export function requireSameShape(kernel: string, names: [string, string], a: Matrix, b: Matrix): void {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new ShapeError(`${kernel}: ${names[0]} is ${describe(a)} but ${names[1]} is ${describe(b)}; they must have the same shape`);
  }
}

/** Throws ShapeError unless the matrix is stored without padding (ld == cols), as elementwise kernels need. */
export function requireDense(kernel: string, name: string, m: Matrix): void {
  if (m.ld !== m.cols) throw new ShapeError(`${kernel}: ${name} is ${describe(m)}; this kernel needs a dense matrix (ld == cols)`);
}
