// Feature scaling of the CLI: fitted on training data, applied to test and prediction inputs, checked when read back.
import type { Dataset } from "../data/dataset.js";
import { minMaxNormalize, zScoreNormalize } from "../data/normalize.js";
import type { Scaling } from "../data/scaling.js";
import type { Normalization } from "./settings.js";

export { applyScaling, asScaling, scaleRows, type Scaling } from "../data/scaling.js";

/** `ds` scaled by `method` with stats from `ds` itself; no stats for "none". */
export function fitScaling(method: Normalization, ds: Dataset): { dataset: Dataset; scaling?: Scaling } {
  if (method === "minmax") return scaled(minMaxNormalize(ds));
  if (method === "zscore") return scaled(zScoreNormalize(ds));
  return { dataset: ds };
}

function scaled(result: { dataset: Dataset; stats: Scaling }): { dataset: Dataset; scaling: Scaling } {
  return { dataset: result.dataset, scaling: result.stats };
}
