// Feature scaling of the CLI: fitted on training data, applied to test and prediction inputs, checked when read back.
import { createDataset, type Dataset } from "../data/dataset.js";
import { minMaxNormalize, zScoreNormalize, type MinMaxStats, type ZScoreStats } from "../data/normalize.js";
import type { Normalization } from "./settings.js";

/** The stats a dataset was scaled with (stored in the model file). */
export type Scaling = MinMaxStats | ZScoreStats;

/** `ds` scaled by `method` with stats from `ds` itself; no stats for "none". */
export function fitScaling(method: Normalization, ds: Dataset): { dataset: Dataset; scaling?: Scaling } {
  if (method === "minmax") return scaled(minMaxNormalize(ds));
  if (method === "zscore") return scaled(zScoreNormalize(ds));
  return { dataset: ds };
}

function scaled(result: { dataset: Dataset; stats: Scaling }): { dataset: Dataset; scaling: Scaling } {
  return { dataset: result.dataset, scaling: result.stats };
}

/** `ds` scaled with stats fitted elsewhere (the training data's); unchanged without stats. */
export function applyScaling(ds: Dataset, scaling: Scaling | undefined): Dataset {
  if (!scaling) return ds;
  return scaling.kind === "min-max" ? minMaxNormalize(ds, scaling).dataset : zScoreNormalize(ds, scaling).dataset;
}

/** Rows of features (row-major) scaled with `scaling`. */
export function scaleRows(x: Float32Array, features: number, scaling: Scaling | undefined): Float32Array {
  if (!scaling) return x;
  const rows = x.length / features;
  return applyScaling(createDataset({ features, outputs: 1, x, y: new Float32Array(rows) }), scaling).x;
}

/** `value` as Scaling for `features` columns, or a description of what is wrong with it. */
export function asScaling(value: unknown, features: number): Scaling | string {
  const v = value as Record<string, unknown> | null;
  const [a, b] = v?.kind === "min-max" ? ["min", "max"] : v?.kind === "z-score" ? ["mean", "std"] : [];
  if (!a || !b) return `expected { "kind": "min-max" | "z-score", ... }, got ${JSON.stringify(value)}`;
  for (const key of [a, b]) {
    const column = v![key];
    if (!Array.isArray(column) || column.length !== features || !column.every((n) => typeof n === "number")) {
      return `${key} must be ${features} numbers, one per input`;
    }
  }
  return v as unknown as Scaling;
}
