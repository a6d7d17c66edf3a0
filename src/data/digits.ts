// The UCI 8x8 handwritten digits (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0) shipped in assets/: 1797 rows of
// 64 pixel counts 0..16 and the digit, read as a Dataset scaled to [0, 1] and split with a fixed seed.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readCsv } from "./csv.js";
import { createDataset, holdOut, selectRows, type Dataset } from "./dataset.js";
import { seededPermutation } from "./random.js";

/** The bundled file, assets/digits.csv.gz at the package root (this module is <out>/src/data/digits.js, or src/data/digits.ts when run from sources). */
export const DIGITS_FILE = ["../../../assets/digits.csv.gz", "../../assets/digits.csv.gz"]
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((path) => existsSync(path)) ?? fileURLToPath(new URL("../../../assets/digits.csv.gz", import.meta.url));

/** Shape of the set, the divisor of its pixel counts, and the fixed split: a seeded random fifth held out. */
export const DIGITS = { rows: 1797, features: 64, classes: 10, maxPixel: 16, testFraction: 0.2, splitSeed: 7 } as const;

/** Every row: x = pixel count / 16 (in [0, 1]), y one-hot over the 10 digits, labels. */
export async function loadDigitsAll(path: string = DIGITS_FILE): Promise<Dataset> {
  const raw = await readCsv(path, { header: false, labelColumn: -1, classes: DIGITS.classes });
  const x = raw.x.map((v) => v / DIGITS.maxPixel);
  return createDataset({ features: raw.features, outputs: raw.outputs, x, y: raw.y, labels: raw.labels, name: "digits" });
}

/** The train and test sets: the rows in a fixed seeded random order, the last fifth (360 rows) for testing. */
export async function loadDigits(path: string = DIGITS_FILE): Promise<{ train: Dataset; test: Dataset }> {
  const all = await loadDigitsAll(path);
  const mixed = selectRows(all, seededPermutation(all.size, DIGITS.splitSeed), "digits");
  return holdOut(mixed, Math.round(all.size * DIGITS.testFraction));
}
