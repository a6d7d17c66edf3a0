// The training and test sets of a train run: the --data preset or file (MNIST downloaded when not cached; the
// default's failed download falls back to the bundled digits), a separate --test-data file or a seeded holdout,
// and scaling fitted on the training rows only.
import { defaultCacheDir } from "../data/cache.js";
import { holdOut, selectRows, type Dataset } from "../data/dataset.js";
import { downloadMnist, loadMnist, mnistBaseUrls } from "../data/mnist.js";
import { seededPermutation } from "../data/random.js";
import type { Sources } from "./config.js";
import {
  dataSource, digitsSets, findMnistSets, isFile, mnistPlaces, readDataFile, syntheticData, type DataSource, type ReadOptions,
} from "./datasets.js";
import { CliError } from "./errors.js";
import type { CliIO } from "./io.js";
import { downloadProgress } from "./progress.js";
import { applyScaling, fitScaling, type Scaling } from "./scaling.js";
import type { TrainSettings } from "./settings.js";

/** Held out of non-preset data unless --holdout or --test-data says otherwise. */
export const DEFAULT_HOLDOUT = 0.1;

export interface TrainingData {
  readonly train: Dataset;
  readonly test?: Dataset;
  /** What was trained on: "mnist", "digits" (also after the fallback), "synthetic" or the file. */
  readonly source: DataSource;
  readonly scaling?: Scaling;
}

/** Reads --data (and --test-data), splits off the test set, and scales both with the training rows' stats. */
export async function loadTrainingData(settings: TrainSettings, sources: Sources, io: CliIO): Promise<TrainingData> {
  const requested = await dataSource(settings.data, io.cwd, sources.data, settings.format);
  const { source, train: all, test: builtinTest } = await readTrainingSource(requested, fileOptions(settings, sources), sources, settings, io);
  const { train, test } = await chooseTestSet(all, builtinTest, source, settings, sources, io);
  const method = settings.normalize ?? (isFile(source) ? "minmax" : "none");
  const { dataset, scaling } = fitScaling(method, train);
  return { train: dataset, test: test && applyScaling(test, scaling), source, scaling };
}

/** The --data rows, and a preset's own test set. */
async function readTrainingSource(
  source: DataSource, options: ReadOptions, sources: Sources, settings: TrainSettings, io: CliIO,
): Promise<{ source: DataSource; train: Dataset; test?: Dataset }> {
  switch (source.kind) {
    case "mnist":
      return mnistOrDigits(sources.data, settings.quiet, io);
    case "digits":
      return { source, ...(await digitsSets()) };
    case "synthetic":
      return { source, train: syntheticData() };
    case "file":
      return { source, train: await readDataFile(source, options) };
  }
}

/**
 * MNIST from the cache (or $DOWNPOUR_DATA), else downloaded into the cache with progress. When that fails, `--data
 * mnist` given (`flag`) is an error; the default falls back to the bundled digits, saying so on stderr.
 */
async function mnistOrDigits(flag: string | undefined, quiet: boolean, io: CliIO): Promise<{ source: DataSource; train: Dataset; test?: Dataset }> {
  const mnist = { kind: "mnist", name: "mnist" } as const;
  const cached = await findMnistSets(io.env);
  if (cached) return { source: mnist, ...cached };
  const cacheDir = defaultCacheDir(io.env);
  io.stderr(`downpour: MNIST is not in ${mnistPlaces(io.env)}; downloading it into ${cacheDir}/mnist\n`);
  const progress = downloadProgress(io, quiet);
  try {
    const { dir } = await downloadMnist({ cacheDir, baseUrls: mnistBaseUrls(io.env), onProgress: progress.onProgress });
    progress.stop();
    return { source: mnist, ...(await loadMnist(dir)) };
  } catch (error) {
    progress.stop();
    const reason = (error as Error).message;
    if (flag !== undefined) {
      throw new CliError(`${flag} mnist: MNIST is not cached and the download failed: ${reason}\n(get it with: downpour data mnist, or train on the bundled --data digits)`, { cause: error });
    }
    io.stderr(`downpour: the MNIST download failed: ${reason}\n`);
    io.stderr("downpour: training on the bundled UCI 8x8 handwritten digits instead (--data digits); get MNIST with: downpour data mnist\n");
    return { source: { kind: "digits", name: "digits" }, ...(await digitsSets()) };
  }
}

/** --test-data, else an explicit --holdout, else the preset's test set, else the default holdout. */
async function chooseTestSet(
  all: Dataset, builtinTest: Dataset | undefined, source: DataSource, settings: TrainSettings, sources: Sources, io: CliIO,
): Promise<{ train: Dataset; test?: Dataset }> {
  if (settings.testData !== undefined) {
    if (sources.holdout) throw new CliError(`${sources.testData} and ${sources.holdout} both choose the test set; give one of them`);
    const testSource = await dataSource(settings.testData, io.cwd, sources.testData, settings.format);
    if (!isFile(testSource)) throw new CliError(`${sources.testData} ${settings.testData}: expected a data file, not a preset`);
    return { train: all, test: await readDataFile(testSource, { ...fileOptions(settings, sources), features: all.features }) };
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

/** The column settings of --data files; models without labels (the autoencoder) read every column unless told. */
export function fileOptions(
  settings: Pick<TrainSettings, "labelColumn" | "header" | "classes" | "features" | "delimiter" | "comment" | "model">,
  sources: Sources = {},
): ReadOptions {
  return {
    labelColumn: settings.labelColumn, noLabel: settings.model === "autoencoder", header: settings.header, classes: settings.classes,
    featureColumns: settings.features, delimiter: settings.delimiter, comment: settings.comment,
    names: {
      labelColumn: sources.labelColumn ?? "--label-column", featureColumns: sources.features ?? "--features",
      delimiter: sources.delimiter ?? "--delimiter", comment: sources.comment ?? "--comment",
    },
  };
}
