// Input scaling stored with a model: the min-max or z-score stats fitted on training data, applied to datasets and
// to rows of inputs, and checked when read back from a model file (runtime-free).
import { createDataset, type Dataset } from "./dataset.js";
import { minMaxNormalize, zScoreNormalize, type MinMaxStats, type ZScoreStats } from "./normalize.js";

/** The stats a model's inputs are scaled with (one entry per input). */
export type Scaling = MinMaxStats | ZScoreStats;

/** `ds` scaled with stats fitted elsewhere (the training data's); `ds` itself without stats (no copy). */
export function applyScaling(ds: Dataset, scaling: Scaling | undefined): Dataset {
  if (!scaling) return ds;
  return scaling.kind === "min-max" ? minMaxNormalize(ds, scaling).dataset : zScoreNormalize(ds, scaling).dataset;
}

/** Rows of features (row-major) scaled with `scaling` (a copy); `x` itself without stats. */
export function scaleRows(x: Float32Array, features: number, scaling: Scaling | undefined): Float32Array {
  if (!scaling) return x;
  const rows = x.length / features;
  return applyScaling(createDataset({ features, outputs: 1, x, y: new Float32Array(rows) }), scaling).x;
}

/** `value` as Scaling for `features` columns, or a description of what is wrong with it. */
export function asScaling(value: unknown, features: number): Scaling | string {
  const v = value as Record<string, unknown> | null;
  const [a, b] = v?.kind === "min-max" ? ["min", "max"] : v?.kind === "z-score" ? ["mean", "std"] : [];
  if (!a || !b) return `expected { "kind": "min-max" | "z-score", ... }, got ${JSON.stringify(value)?.slice(0, 80)}`;
  for (const key of [a, b]) {
    const column = v![key];
    if (!Array.isArray(column) || column.length !== features || !column.every((n) => typeof n === "number" && Number.isFinite(n))) {
      return `${key} must be ${features} finite numbers, one per input`;
    }
  }
  return v as unknown as Scaling;
}
