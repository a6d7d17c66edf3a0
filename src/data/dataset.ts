// The in-memory Dataset (row-major f32 inputs and targets) and row operations: one-hot, take, split, hold-out, shuffle.
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
  readonly name?: string;
}

/** The arrays of a Dataset before their lengths are checked. */
export interface DatasetParts {
  readonly features: number;
  readonly outputs: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly labels?: Int32Array;
  readonly name?: string;
}

/** A Dataset whose size comes from x, after checking that x, y and labels agree on it. */
export function createDataset(parts: DatasetParts): Dataset {
  const { features, outputs, x, y, labels, name } = parts;
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
  return { size, features, outputs, x, y, ...(labels ? { labels } : {}), ...(name !== undefined ? { name } : {}) };
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

/** Rows [start, end) as views sharing memory with ds. */
export function sliceRows(ds: Dataset, start: number, end: number, name = ds.name): Dataset {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > ds.size) {
    throw new DataError(`${ds.name ?? "dataset"}: rows [${start}, ${end}) are not within [0, ${ds.size})`);
  }
  return createDataset({
    features: ds.features,
    outputs: ds.outputs,
    x: ds.x.subarray(start * ds.features, end * ds.features),
    y: ds.y.subarray(start * ds.outputs, end * ds.outputs),
    ...(ds.labels ? { labels: ds.labels.subarray(start, end) } : {}),
    ...(name !== undefined ? { name } : {}),
  });
}

/** The given rows, in the given order, copied into a new Dataset. */
export function selectRows(ds: Dataset, rows: ArrayLike<number>, name = ds.name): Dataset {
  const { features, outputs } = ds;
  const x = new Float32Array(rows.length * features);
  const y = new Float32Array(rows.length * outputs);
  const labels = ds.labels ? new Int32Array(rows.length) : undefined;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (!Number.isInteger(row) || row < 0 || row >= ds.size) {
      throw new DataError(`${ds.name ?? "dataset"}: row ${row} is not within [0, ${ds.size})`);
    }
    x.set(ds.x.subarray(row * features, (row + 1) * features), i * features);
    y.set(ds.y.subarray(row * outputs, (row + 1) * outputs), i * outputs);
    if (labels) labels[i] = ds.labels![row]!;
  }
  return createDataset({ features, outputs, x, y, ...(labels ? { labels } : {}), ...(name !== undefined ? { name } : {}) });
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
