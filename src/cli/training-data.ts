// The training and test sets of a train run: the --data preset or file (MNIST falling back to synthetic data when
// absent), a separate --test-data file or a seeded holdout, and scaling fitted on the training rows only.
import { holdOut, selectRows, seededPermutation, type Dataset } from "../data/index.js";
import type { Sources } from "./config.js";
import { dataSource, findMnistSets, isFile, mnistPlaces, readDataFile, syntheticData, type DataSource, type ReadOptions } from "./datasets.js";
import { CliError } from "./errors.js";
import type { CliIO } from "./io.js";
import { applyScaling, fitScaling, type Scaling } from "./scaling.js";
import type { TrainSettings } from "./settings.js";

/** Held out of non-MNIST data unless --holdout or --test-data says otherwise. */
export const DEFAULT_HOLDOUT = 0.1;

export interface TrainingData {
  readonly train: Dataset;
  readonly test?: Dataset;
  /** What was trained on: "mnist", "synthetic" (also after the MNIST fallback) or the file name. */
  readonly source: DataSource;
  readonly scaling?: Scaling;
}

/** Reads --data (and --test-data), splits off the test set, and scales both with the training rows' stats. */
export async function loadTrainingData(settings: TrainSettings, sources: Sources, io: CliIO): Promise<TrainingData> {
  const requested = dataSource(settings.data, io.cwd, sources.data);
  const { source, train: all, test: builtinTest } = await readTrainingSource(requested, fileOptions(settings), io);
  const { train, test } = await chooseTestSet(all, builtinTest, source, settings, sources, io);
  const method = settings.normalize ?? (isFile(source) ? "minmax" : "none");
  const { dataset, scaling } = fitScaling(method, train);
  return { train: dataset, test: test && applyScaling(test, scaling), source, scaling };
}

/** The --data rows, and MNIST's own test set; MNIST that is absent becomes synthetic data, with one line saying so. */
async function readTrainingSource(source: DataSource, options: ReadOptions, io: CliIO): Promise<{ source: DataSource; train: Dataset; test?: Dataset }> {
  if (source.kind === "mnist") {
    const sets = await findMnistSets(io.env);
    if (sets) return { source, ...sets };
    io.stderr(`downpour: MNIST is not in ${mnistPlaces(io.env)}; training on synthetic data instead (get MNIST with: downpour data mnist)\n`);
    return { source: { kind: "synthetic", name: "synthetic" }, train: syntheticData() };
  }
  if (!isFile(source)) return { source, train: syntheticData() };
  return { source, train: await readDataFile(source, options) };
}

/** --test-data, else an explicit --holdout, else MNIST's test set, else the default holdout. */
async function chooseTestSet(
  all: Dataset, builtinTest: Dataset | undefined, source: DataSource, settings: TrainSettings, sources: Sources, io: CliIO,
): Promise<{ train: Dataset; test?: Dataset }> {
  if (settings.testData !== undefined) {
    if (sources.holdout) throw new CliError(`${sources.testData} and ${sources.holdout} both choose the test set; give one of them`);
    const testSource = dataSource(settings.testData, io.cwd, sources.testData);
    if (!isFile(testSource)) throw new CliError(`${sources.testData} ${settings.testData}: expected a data file, not a preset`);
    return { train: all, test: await readDataFile(testSource, { ...fileOptions(settings), features: all.features }) };
  }
  if (builtinTest && settings.holdout === undefined) return { train: all, test: builtinTest };
  return splitOff(all, settings.holdout ?? DEFAULT_HOLDOUT, isFile(source), settings.seed ?? 1, sources.holdout);
}

/** Holds out a count or fraction of the rows, picked at random (seeded) when `pick` (files may be sorted by label). */
function splitOff(all: Dataset, holdout: number, pick: boolean, seed: number, source = "--holdout"): { train: Dataset; test?: Dataset } {
  const count = holdout < 1 ? Math.round(all.size * holdout) : holdout;
  if (count === 0) return { train: all };
  if (count >= all.size) throw new CliError(`${source} ${holdout} keeps ${count} of the ${all.size} rows for testing, leaving none to train on`);
  const rows = pick ? selectRows(all, seededPermutation(all.size, seed)) : all;
  return holdOut(rows, count);
}

/** The column settings of --data files. */
export function fileOptions(settings: Pick<TrainSettings, "labelColumn" | "header" | "classes">): ReadOptions {
  return { labelColumn: settings.labelColumn, header: settings.header, classes: settings.classes };
}
