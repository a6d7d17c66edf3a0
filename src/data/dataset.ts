// The in-memory Dataset (row-major f32 inputs and targets) and row operations: one-hot, take, split, hold-out, shuffle.
import { InvalidArgumentError } from "../errors.js";
import { DataError } from "./errors.js";
import { seededPermutation } from "./random.js";

export { seededPermutation } from "./random.js";

/** Samples as rows: x is size*features and y is size*outputs, both row-major. */
export interface Dataset {
  readonly size: number;
  readonly features: number;
  readonly outputs: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  /** Class index per sample, for classification. */
  readonly labels?: Int32Array;
  /** The 1-based line of the source file each row was read from (CSV, libsvm), for messages; kept by the row operations. */
  readonly lines?: Int32Array;
  readonly name?: string;
}

/** The arrays of a Dataset before they are checked; number arrays are copied into new Float32Array / Int32Array. */
export interface DatasetParts {
  readonly features: number;
  readonly outputs: number;
  readonly x: Float32Array | readonly number[];
  readonly y: Float32Array | readonly number[];
  readonly labels?: Int32Array | readonly number[];
  readonly lines?: Int32Array | readonly number[];
  readonly name?: string;
}

/** A value of x or y that is NaN or infinite, and where: 0-based row and column, and the source line when known. */
export interface NonFiniteValue {
  readonly array: "x" | "y";
  readonly row: number;
  readonly column: number;
  readonly value: number;
  readonly line?: number;
}

/**
 * A Dataset whose size comes from x, after checking the arguments: features and outputs integers >= 1, x and y
 * Float32Arrays or arrays of numbers whose lengths agree (InvalidArgumentError), labels and lines one per row, and
 * every value of x and y finite (DataError naming the row, the column and the source line when known). Typed
 * arrays are kept, not copied; number arrays are copied.
 */
export function createDataset(parts: DatasetParts): Dataset {
  if (typeof parts !== "object" || parts === null) {
    throw new InvalidArgumentError(`createDataset: expected an object { features, outputs, x, y }, got ${describeValue(parts)}`);
  }
  const what = typeof parts.name === "string" ? parts.name : "dataset";
  const ds = assembleDataset({
    features: parts.features,
    outputs: parts.outputs,
    x: floats(parts.x, `${what}: x`),
    y: floats(parts.y, `${what}: y`),
    ...(parts.labels !== undefined ? { labels: integers(parts.labels, `${what}: labels`) } : {}),
    ...(parts.lines !== undefined ? { lines: integers(parts.lines, `${what}: lines`) } : {}),
    ...(parts.name !== undefined ? { name: String(parts.name) } : {}),
  });
  const bad = findNonFinite(ds);
  if (bad) throw nonFiniteError(ds, bad);
  return ds;
}

/** The first NaN or infinite value of x, then of y, or undefined when all are finite (reads every value once). */
export function findNonFinite(ds: Dataset): NonFiniteValue | undefined {
  for (const array of ["x", "y"] as const) {
    const values = ds[array];
    const width = array === "x" ? ds.features : ds.outputs;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (value - value !== 0) {
        const row = Math.floor(i / width);
        const line = ds.lines?.[row];
        return { array, row, column: i % width, value, ...(line !== undefined ? { line } : {}) };
      }
    }
  }
  return undefined;
}

function nonFiniteError(ds: Dataset, bad: NonFiniteValue): DataError {
  const where = `${ds.name ?? "dataset"}: row ${bad.row}${bad.line !== undefined ? ` (line ${bad.line})` : ""}`;
  const part = bad.array === "x" ? `feature ${bad.column}` : `target ${bad.column}`;
  return new DataError(`${where}, ${part} (0-based) is ${bad.value}, expected a finite number`, {
    ...(bad.line !== undefined ? { line: bad.line } : {}),
    column: bad.column + 1,
    row: bad.row,
  });
}

/** A Dataset from parts already of the right types, after checking their lengths agree (no scan of the values). */
function assembleDataset(parts: {
  features: number;
  outputs: number;
  x: Float32Array;
  y: Float32Array;
  labels?: Int32Array;
  lines?: Int32Array;
  name?: string;
}): Dataset {
  const { features, outputs, x, y, labels, lines, name } = parts;
  const what = name ?? "dataset";
  requireCount(features, 1, `${what}: features`);
  requireCount(outputs, 1, `${what}: outputs`);
  if (x.length % features !== 0) {
    throw new DataError(`${what}: x has ${x.length} values, not a multiple of ${features} features`);
  }
  const size = x.length / features;
  if (y.length !== size * outputs) {
    throw new DataError(`${what}: y has ${y.length} values, expected ${size} rows x ${outputs} outputs = ${size * outputs}`);
  }
  if (labels && labels.length !== size) {
    throw new DataError(`${what}: ${labels.length} labels for ${size} rows`);
  }
  if (lines && lines.length !== size) {
    throw new DataError(`${what}: ${lines.length} lines for ${size} rows`);
  }
  return {
    size,
    features,
    outputs,
    x,
    y,
    ...(labels ? { labels } : {}),
    ...(lines ? { lines } : {}),
    ...(name !== undefined ? { name } : {}),
  };
}

function floats(value: unknown, what: string): Float32Array {
  if (value instanceof Float32Array) return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "number")) return Float32Array.from(value);
  throw new InvalidArgumentError(`${what} must be a Float32Array or an array of numbers, got ${describeValue(value)}`);
}

function integers(value: unknown, what: string): Int32Array {
  if (value instanceof Int32Array) return value;
  if (Array.isArray(value) && value.every((v) => Number.isInteger(v))) return Int32Array.from(value);
  throw new InvalidArgumentError(`${what} must be an Int32Array or an array of integers, got ${describeValue(value)}`);
}

/** "a string", "an Array of 3 items (not all numbers)", "a Float64Array": what an argument was, for messages. */
function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length} items, not all of the expected type`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === "object") return "an object";
  return typeof value === "undefined" ? "nothing" : `${/^[aeiou]/.test(typeof value) ? "an" : "a"} ${typeof value}`;
}

/** One row of `classes` floats per label: 1 at the label's index, 0 elsewhere. */
export function oneHot(labels: Int32Array, classes: number): Float32Array {
  requireCount(classes, 1, "oneHot: classes");
  const out = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label < 0 || label >= classes) {
      throw new DataError(`oneHot: label ${label} of sample ${i} is outside [0, ${classes})`);
    }
    out[i * classes + label] = 1;
  }
  return out;
}

/** Rows [start, end) as views sharing memory with ds (x, y, labels and lines). */
export function sliceRows(ds: Dataset, start: number, end: number, name = ds.name): Dataset {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > ds.size) {
    throw new DataError(`${ds.name ?? "dataset"}: rows [${start}, ${end}) are not within [0, ${ds.size})`);
  }
  return assembleDataset({
    features: ds.features,
    outputs: ds.outputs,
    x: ds.x.subarray(start * ds.features, end * ds.features),
    y: ds.y.subarray(start * ds.outputs, end * ds.outputs),
    ...(ds.labels ? { labels: ds.labels.subarray(start, end) } : {}),
    ...(ds.lines ? { lines: ds.lines.subarray(start, end) } : {}),
    ...(name !== undefined ? { name } : {}),
  });
}

/** The given rows, in the given order, copied into a new Dataset. */
export function selectRows(ds: Dataset, rows: ArrayLike<number>, name = ds.name): Dataset {
  const { features, outputs } = ds;
  const x = new Float32Array(rows.length * features);
  const y = new Float32Array(rows.length * outputs);
  const labels = ds.labels ? new Int32Array(rows.length) : undefined;
  const lines = ds.lines ? new Int32Array(rows.length) : undefined;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (!Number.isInteger(row) || row < 0 || row >= ds.size) {
      throw new DataError(`${ds.name ?? "dataset"}: row ${row} is not within [0, ${ds.size})`);
    }
    x.set(ds.x.subarray(row * features, (row + 1) * features), i * features);
    y.set(ds.y.subarray(row * outputs, (row + 1) * outputs), i * outputs);
    if (labels) labels[i] = ds.labels![row]!;
    if (lines) lines[i] = ds.lines![row]!;
  }
  return assembleDataset({ features, outputs, x, y, ...(labels ? { labels } : {}), ...(lines ? { lines } : {}), ...(name !== undefined ? { name } : {}) });
}

/** The first n rows (views sharing memory with ds). */
export function take(ds: Dataset, n: number): Dataset {
  requireCount(n, 0, "take: n", ds.size);
  return sliceRows(ds, 0, n);
}

/** The last `count` rows as test, the rest as train (views sharing memory with ds). */
export function holdOut(ds: Dataset, count: number): { train: Dataset; test: Dataset } {
  requireCount(count, 0, "holdOut: count", ds.size);
  const cut = ds.size - count;
  return {
    train: sliceRows(ds, 0, cut, withSuffix(ds.name, "train")),
    test: sliceRows(ds, cut, ds.size, withSuffix(ds.name, "test")),
  };
}

/** `parts` contiguous splits whose sizes differ by at most one, the larger first: one per BSP task. */
export function split(ds: Dataset, parts: number): Dataset[] {
  requireCount(parts, 1, "split: parts", Math.max(ds.size, 1));
  const base = Math.floor(ds.size / parts);
  const larger = ds.size % parts;
  const splits: Dataset[] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const end = start + base + (i < larger ? 1 : 0);
    splits.push(sliceRows(ds, start, end, withSuffix(ds.name, `part ${i + 1}/${parts}`)));
    start = end;
  }
  return splits;
}

/** The rows in a seeded random order (Fisher-Yates over mulberry32), copied into a new Dataset. */
export function shuffle(ds: Dataset, seed: number): Dataset {
  return selectRows(ds, seededPermutation(ds.size, seed));
}

function withSuffix(name: string | undefined, suffix: string): string | undefined {
  return name === undefined ? undefined : `${name} ${suffix}`;
}

function requireCount(value: number, min: number, what: string, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    throw new DataError(`${what} is ${value}, expected ${range}`);
  }
}
