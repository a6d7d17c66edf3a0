// A seeded, learnable classification dataset: Gaussian blobs around random class centroids.
import { createDataset, oneHot, type Dataset } from "./dataset.js";
import { DataError } from "./errors.js";
import { gaussian, mulberry32, seededPermutation } from "./random.js";

/** How many samples, features and classes to make, from which seed. */
export interface SyntheticClassificationOptions {
  readonly size: number;
  readonly features: number;
  readonly classes: number;
  readonly seed: number;
  /** Standard deviation of each blob around its centroid (centroids are uniform in [-1, 1]); default 0.25. */
  readonly spread?: number;
}

/** Balanced classes in shuffled order, x drawn around one centroid per class, y one-hot, with labels. */
export function syntheticClassification(options: SyntheticClassificationOptions): Dataset {
  const { size, features, classes, seed, spread = 0.25 } = options;
  for (const [what, value, min] of [["size", size, 0], ["features", features, 1], ["classes", classes, 2]] as const) {
    if (!Number.isInteger(value) || value < min) {
      throw new DataError(`syntheticClassification: ${what} is ${value}, expected an integer >= ${min}`);
    }
  }
  const uniform = mulberry32(seed);
  const normal = gaussian(uniform);
  const centroids = Array.from({ length: classes }, () => Array.from({ length: features }, () => 2 * uniform() - 1));
  const order = seededPermutation(size, seed ^ 0x5eed);
  const labels = new Int32Array(size);
  const x = new Float32Array(size * features);
  for (let i = 0; i < size; i++) {
    const label = order[i]! % classes;
    labels[i] = label;
    for (let j = 0; j < features; j++) x[i * features + j] = centroids[label]![j]! + spread * normal();
  }
  return createDataset({ features, outputs: classes, x, y: oneHot(labels, classes), labels, name: `synthetic-${classes}-class` });
}
