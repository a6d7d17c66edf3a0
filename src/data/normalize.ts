// Per-column feature scaling (min-max, z-score) whose stats come from training data and are reused on test data.
import type { Dataset } from "./dataset.js";
import { DataError } from "./errors.js";

/** Column minima and maxima; constant columns map to 0. */
export interface MinMaxStats {
  readonly kind: "min-max";
  readonly min: readonly number[];
  readonly max: readonly number[];
}

/** Column means and population standard deviations; constant columns map to 0. */
export interface ZScoreStats {
  readonly kind: "z-score";
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** A dataset with scaled x, and the stats that scaled it. */
export interface Normalized<S> {
  readonly dataset: Dataset;
  readonly stats: S;
}

/** Maps each column of x to (v - min) / (max - min): training columns land in [0, 1], 0 and 1 exactly at the extremes. */
export function minMaxNormalize(ds: Dataset, stats: MinMaxStats = minMaxStats(ds)): Normalized<MinMaxStats> {
  checkColumns(ds, stats.min.length, "min-max");
  const range = stats.min.map((lo, j) => stats.max[j]! - lo);
  return { dataset: scaleColumns(ds, stats.min, range, "min-max"), stats };
}

/** Maps each column of x to (v - mean) / std: mean 0 and standard deviation 1 on the data the stats came from. */
export function zScoreNormalize(ds: Dataset, stats: ZScoreStats = zScoreStats(ds)): Normalized<ZScoreStats> {
  checkColumns(ds, stats.mean.length, "z-score");
  return { dataset: scaleColumns(ds, stats.mean, stats.std, "z-score"), stats };
}

/** Min and max of every column of x. */
export function minMaxStats(ds: Dataset): MinMaxStats {
  const min = new Array<number>(ds.features).fill(Infinity);
  const max = new Array<number>(ds.features).fill(-Infinity);
  forEachValue(ds, (v, j) => {
    if (v < min[j]!) min[j] = v;
    if (v > max[j]!) max[j] = v;
  });
  return { kind: "min-max", min, max };
}

/** Mean and population standard deviation of every column of x (two passes, in f64). */
export function zScoreStats(ds: Dataset): ZScoreStats {
  const n = Math.max(ds.size, 1);
  const mean = new Array<number>(ds.features).fill(0);
  forEachValue(ds, (v, j) => (mean[j]! += v));
  for (let j = 0; j < ds.features; j++) mean[j]! /= n;
  const variance = new Array<number>(ds.features).fill(0);
  forEachValue(ds, (v, j) => (variance[j]! += (v - mean[j]!) ** 2));
  return { kind: "z-score", mean, std: variance.map((s) => Math.sqrt(s / n)) };
}

function forEachValue(ds: Dataset, visit: (value: number, column: number) => void): void {
  const { x, features } = ds;
  for (let i = 0; i < x.length; i += features) {
    for (let j = 0; j < features; j++) visit(x[i + j]!, j);
  }
}

/**
 * (v - offset) / divisor per column, in f64 (a division, so max maps to exactly 1); a divisor of 0 (a constant
 * column) gives 0. A result beyond the float32 range (a value far outside a tiny training range) is a DataError
 * naming the row, not an Infinity.
 */
function scaleColumns(ds: Dataset, offset: readonly number[], divisor: readonly number[], kind: string): Dataset {
  const { x, features } = ds;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += features) {
    for (let j = 0; j < features; j++) {
      const d = divisor[j]!;
      out[i + j] = d > 0 ? (x[i + j]! - offset[j]!) / d : 0;
      if (!Number.isFinite(out[i + j]!)) throw scaledOutOfRange(ds, i / features, j, kind, d);
    }
  }
  return { ...ds, x: out };
}

function scaledOutOfRange(ds: Dataset, row: number, column: number, kind: string, divisor: number): DataError {
  const line = ds.lines?.[row];
  const where = `${ds.name ?? "dataset"}: row ${row}${line !== undefined ? ` (line ${line})` : ""}, feature ${column} (0-based)`;
  return new DataError(
    `${where}: ${ds.x[row * ds.features + column]} scaled by the ${kind} statistics (dividing by ${divisor}) is beyond the 32-bit float range`,
    { ...(line !== undefined ? { line } : {}), column: column + 1, row },
  );
}

function checkColumns(ds: Dataset, columns: number, kind: string): void {
  if (columns !== ds.features) {
    throw new DataError(`${ds.name ?? "dataset"}: ${kind} stats have ${columns} columns, the dataset has ${ds.features} features`);
  }
}
