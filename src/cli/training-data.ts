// The training and test sets of a train run: the --data preset or file (MNIST downloaded when not cached; the
// default's failed download falls back to the bundled digits), a separate --test-data file or a seeded holdout,
// and scaling fitted on the training rows only; their size checked against --memory-limit, and their targets
// against what the model's output layer and cost can produce. With --sparse: a libsvm file's rows kept sparse (CSR),
// held out by the same seeded pick, never scaled; with --hash-features a CSV's columns hashed into sparse rows; with
// --stream the training file read chunk by chunk on each pass (checked and counted by one pass first).
import { realpathSync } from "node:fs";
import { getHeapStatistics } from "node:v8";
import { defaultCacheDir } from "../data/cache.js";
import { holdOut, selectRows, type Dataset } from "../data/dataset.js";
import { DataError, DataSizeError } from "../data/errors.js";
import { DEFAULT_MEMORY_LIMIT_BYTES, VALUE_BYTES } from "../data/limits.js";
import { downloadMnist, loadMnist, mnistBaseUrls } from "../data/mnist.js";
import { seededPermutation } from "../data/random.js";
import { readCsvHashed, readHashedLayout, streamCsvHashed, type HashedCsvOptions } from "../data/hash-features.js";
import { LIBSVM_STREAM_DEFAULTS, scanLibsvm, streamLibsvmSparse } from "../data/libsvm-stream.js";
import { createSparseDataset, isSparse, sparseRows, type SparseDataset } from "../data/sparse.js";
import type { ResolvedSpec } from "../model/spec.js";
import { targetProblem, type TargetProblem } from "../model/targets-check.js";
import type { Sources } from "./config.js";
import {
  dataSource, digitsSets, findMnistSets, isFile, mnistPlaces, readDataFile, readSparseDataFile, syntheticData, type DataSource, type FileSource,
  type ReadOptions,
} from "./datasets.js";
import { CliError } from "./errors.js";
import type { CliIO } from "./io.js";
import { downloadProgress } from "./progress.js";
import { applyScaling, fitScaling, type Scaling } from "./scaling.js";
import { hashedInputsOf, type HashedInputs } from "./model-file.js";
import { isHashWidth } from "./parse.js";
import { flagName, type Normalization, type TrainSettings } from "./settings.js";
import { formatBytes } from "../util/bytes.js";

/** Held out of non-preset data unless --holdout or --test-data says otherwise. */
export const DEFAULT_HOLDOUT = 0.1;

export interface TrainingData {
  readonly train: Dataset;
  readonly test?: Dataset;
  /** What was trained on: "mnist", "digits" (also after the fallback), "synthetic" or the file. */
  readonly source: DataSource;
  readonly scaling?: Scaling;
}

/** Reads --data (and --test-data), splits off the test set, and scales both with the training rows' stats. With
 *  --sparse (which only `downpour train` reads, see loadSparseTrainingData) a CliError naming it. */
export async function loadTrainingData(settings: TrainSettings, sources: Sources, io: CliIO): Promise<TrainingData> {
  const sparseKey = (["sparse", "hashFeatures", "stream"] as const).find((key) => settings[key] !== undefined && settings[key] !== false);
  if (sparseKey) {
    throw new CliError(
      `${sources[sparseKey] ?? flagName(sparseKey)}: sparse inputs train in one process (downpour train --sparse); the BSP and parameter-server ` +
        "jobs of downpour peer, ps and cluster take dense rows only",
    );
  }
  const requested = await dataSource(settings.data, io.cwd, sources.data, settings.format);
  const { source, train: all, test: builtinTest } = await readTrainingSource(requested, fileOptions(settings, sources), sources, settings, io);
  const method = settings.normalize ?? (isFile(source) ? "minmax" : "none");
  checkPreparationSize(all, source, method, settings, sources);
  const { train, test } = await chooseTestSet(all, builtinTest, source, settings, sources, io);
  const { dataset, scaling } = fitScaling(method, train);
  return { train: dataset, test: test && applyScaling(test, scaling), source, scaling };
}

/** The --sparse data of `downpour train`: libsvm rows kept sparse, never scaled. */
export interface SparseTrainingData {
  readonly sparse: true;
  readonly train: SparseDataset;
  readonly test?: SparseDataset;
  readonly source: FileSource;
  readonly scaling?: undefined;
  /** --hash-features: how the training file's columns were hashed, for the model file. */
  readonly hashing?: HashedInputs;
}

/**
 * Reads the --sparse --data file (libsvm, or with --hash-features a CSV hashed; a preset or another format is a
 * CliError naming the flags) as sparse rows, and its test set: --test-data read sparse with the training file's
 * feature count, else --holdout's rows (default DEFAULT_HOLDOUT) picked at random (seeded with --seed), as for
 * dense files.
 */
export async function loadSparseTrainingData(settings: TrainSettings, sources: Sources, io: CliIO, replay?: HashedCsvOptions): Promise<SparseTrainingData> {
  const source = await sparseSource(settings, sources, io);
  const options = fileOptions(settings, sources);
  const hashed = hashedRead(source, options, settings, sources, replay);
  const all = await readSparseFile(source, options, sources, hashed);
  const hashing = hashed && hashedInputsOf(hashed, await readHashedLayout(source.path, hashed));
  checkSparseCopySize(all, source, settings);
  const testHashed = hashed && hashing && asTrainingLayout(hashed, hashing, source);
  const { train, test } = await chooseSparseTestSet(all, source, options, settings, sources, io, testHashed);
  return { sparse: true, train, ...(test ? { test } : {}), source, ...(hashing ? { hashing } : {}) };
}

/** The --data file of a sparse run; a preset is a CliError naming --sparse (or --hash-features). */
async function sparseSource(settings: TrainSettings, sources: Sources, io: CliIO): Promise<FileSource> {
  const flag = sources.sparse ?? "--sparse";
  const source = await dataSource(settings.data, io.cwd, sources.data, settings.format);
  if (isFile(source)) return source;
  const wants = settings.hashFeatures === undefined ? "a libsvm file: give --data FILE.svm" : "a CSV file: give --data FILE.csv";
  throw new CliError(`${flag}: ${sources.data ?? "--data"} ${settings.data} is a preset, which is read dense; ${flag} reads ${wants}`);
}

/** The log2 of --hash-features (checked: a power of two in [2, 2^31], named by its flag or config key); undefined without it. */
export function hashBits(settings: Pick<TrainSettings, "hashFeatures">, sources: Sources): number | undefined {
  const width = settings.hashFeatures;
  if (width === undefined) return undefined;
  if (!isHashWidth(width)) throw new CliError(`${sources.hashFeatures ?? "--hash-features"} must be a power of two in [2, 2^31], like 2^20 or 1048576; got ${width}`);
  return Math.log2(width);
}

/**
 * The column settings of a hashed read of `source` (a .tsv is tab-separated unless --delimiter says otherwise), or
 * undefined without --hash-features. Resuming, `replay` (the model file's recorded hashing) gives the seed, the
 * label and hashed columns and the layout to check, and the syntax settings not given.
 */
function hashedRead(source: FileSource, options: ReadOptions, settings: TrainSettings, sources: Sources, replay?: HashedCsvOptions): HashedCsvOptions | undefined {
  const bits = hashBits(settings, sources);
  if (bits === undefined) return undefined;
  const base: HashedCsvOptions = {
    bits, labelColumn: options.labelColumn, header: options.header ?? "auto", classes: options.classes, featureColumns: options.featureColumns,
    delimiter: options.delimiter ?? (/\.tsv(\.gz)?$/i.test(source.path) ? "\t" : ","), comment: options.comment, maxBytes: options.maxBytes,
    optionNames: { bits: "--hash-features", labelColumn: options.names?.labelColumn, featureColumns: options.names?.featureColumns, classes: options.names?.classes },
  };
  if (!replay) return base;
  return {
    ...base, seed: replay.seed, labelColumn: replay.labelColumn, featureColumns: replay.featureColumns, layout: replay.layout,
    header: options.header ?? replay.header, delimiter: options.delimiter ?? replay.delimiter, comment: options.comment ?? replay.comment, classes: options.classes ?? replay.classes,
  };
}

/** The hashed read of a test file: the training file's settings, its field count and header checked. */
function asTrainingLayout(hashed: HashedCsvOptions, hashing: HashedInputs, source: FileSource): HashedCsvOptions {
  const layout = hashed.layout ?? { fields: hashing.fields, ...(hashing.headerNames ? { header: hashing.headerNames } : {}), from: `as in the training file ${source.name}` };
  return { ...hashed, layout };
}

/** Refuses --hash-features with a file not read as CSV, naming both (a libsvm file is sparse already). */
function requireCsv(source: FileSource, flag: string, sources: Sources, which = sources.data ?? "--data"): void {
  if (source.format === "csv") return;
  const already = source.format === "libsvm" ? `; libsvm rows are sparse already: drop ${flag}` : "; give a .csv or .tsv file, or --format csv";
  throw new CliError(`${flag} hashes the columns of a CSV file, but ${which} ${source.name} is read as ${source.format} (chosen by ${source.how})${already}`);
}

/** One sparse file read whole: libsvm rows, or with `hashed` (--hash-features) a CSV's columns hashed; `features` for a test file. */
async function readSparseFile(source: FileSource, options: ReadOptions, sources: Sources, hashed: HashedCsvOptions | undefined, features?: number, which?: string): Promise<SparseDataset> {
  if (hashed === undefined) return readSparseDataFile(source, features === undefined ? options : { ...options, features }, sources.sparse ?? "--sparse");
  requireCsv(source, sources.hashFeatures ?? "--hash-features", sources, which);
  return readCsvHashed(source.path, hashed);
}

/** The --stream data of `downpour train --sparse`: the training file as passes of chunks, and the test set read whole. */
export interface StreamTrainingData {
  readonly sparse: true;
  readonly stream: true;
  readonly source: FileSource;
  /** The training file's data rows, features (libsvm: its largest index; hashed: the width) and outputs. */
  readonly rows: number;
  readonly features: number;
  readonly outputs: number;
  readonly chunkRows: number;
  /** One pass over the training file: its rows in chunks of chunkRows, read as they are asked for. */
  readonly chunks: () => AsyncIterable<SparseDataset>;
  readonly test?: SparseDataset;
  readonly scaling?: undefined;
  /** --hash-features: how the training file's columns were hashed, for the model file. */
  readonly hashing?: HashedInputs;
}

/** Settings --stream cannot honour (it keeps no rows to hold out, and trains pass by pass in fits of one chunk), refused by name. */
export function checkStreamSettings(settings: TrainSettings, sources: Sources): void {
  if (!settings.stream) {
    if (settings.chunkRows !== undefined) throw new CliError(`${sources.chunkRows ?? "--chunk-rows"} sizes the chunks of --stream; give --stream too, or drop it`);
    return;
  }
  const flag = sources.stream ?? "--stream";
  if (!settings.sparse && settings.hashFeatures === undefined) {
    throw new CliError(`${flag} reads sparse rows chunk by chunk: give --sparse (a libsvm file) or --hash-features (a CSV file) too`);
  }
  if (settings.holdout !== undefined) {
    throw new CliError(`${sources.holdout ?? "--holdout"} is not available with ${flag}: a stream keeps no rows aside to hold out; give the test set with --test-data`);
  }
  const chunkRows = settings.chunkRows;
  if (chunkRows !== undefined && !(Number.isInteger(chunkRows) && chunkRows >= 1)) {
    throw new CliError(`${sources.chunkRows ?? "--chunk-rows"} must be a positive number of rows, got ${chunkRows}`);
  }
  const unsupported = (["resume", "checkpointEvery", "saveBest", "patience", "maxIterations", "convergenceWindow"] as const).filter(
    (key) => settings[key] !== undefined && settings[key] !== false,
  );
  if (unsupported.length > 0) {
    const names = unsupported.map((key) => sources[key] ?? flagName(key)).join(", ");
    throw new CliError(`${names} ${unsupported.length === 1 ? "is" : "are"} not available with ${flag}, which trains pass by pass on chunks of the file; train without ${flag} to use ${unsupported.length === 1 ? "it" : "them"}`);
  }
}

/**
 * The --stream training file (libsvm, or with --hash-features a CSV) checked and counted by one pass that holds
 * a few thousand rows at a time (its feature count: libsvm's largest index, else the hashed width), then read
 * again chunk by chunk on each pass of training; the test set is --test-data read whole, or none.
 */
export async function loadStreamTrainingData(settings: TrainSettings, sources: Sources, io: CliIO): Promise<StreamTrainingData> {
  checkStreamSettings(settings, sources);
  const source = await sparseSource(settings, sources, io);
  const options = fileOptions(settings, sources);
  const chunkRows = settings.chunkRows ?? LIBSVM_STREAM_DEFAULTS.chunkRows;
  const outputs = settings.classes ?? 1;
  const hashed = hashedRead(source, options, settings, sources);
  const pass = hashed === undefined ? await libsvmPasses(source, options, chunkRows, sources) : await hashedPasses(source, hashed, chunkRows, sources);
  const testHashed = hashed && pass.hashing && asTrainingLayout(hashed, pass.hashing, source);
  const test = settings.testData === undefined ? undefined : await readStreamTestSet(source, pass.features, outputs, options, settings, sources, io, testHashed);
  return { sparse: true, stream: true, source, ...pass, outputs, chunkRows, ...(test ? { test } : {}) };
}

type Passes = Pick<StreamTrainingData, "rows" | "features" | "chunks" | "hashing">;

async function libsvmPasses(source: FileSource, options: ReadOptions, chunkRows: number, sources: Sources): Promise<Passes> {
  if (source.format !== "libsvm") await readSparseDataFile(source, options, sources.sparse ?? "--sparse"); // refuses it by name
  const { rows, maxIndex } = await scanLibsvm(source.path, { classes: options.classes });
  if (maxIndex === 0) throw new DataError(`${source.path}: no feature values in any row`, { file: source.path });
  return { rows, features: maxIndex, chunks: () => streamLibsvmSparse(source.path, { features: maxIndex, classes: options.classes, chunkRows }) };
}

async function hashedPasses(source: FileSource, options: HashedCsvOptions, chunkRows: number, sources: Sources): Promise<Passes> {
  requireCsv(source, sources.hashFeatures ?? "--hash-features", sources);
  const hashed = { ...options, chunkRows };
  let rows = 0;
  for await (const chunk of streamCsvHashed(source.path, { ...hashed, chunkRows: Math.min(chunkRows, 4096) })) rows += chunk.size;
  const hashing = hashedInputsOf(options, await readHashedLayout(source.path, options));
  return { rows, features: 2 ** options.bits, chunks: () => streamCsvHashed(source.path, hashed), hashing };
}

/** --test-data read whole as sparse rows of `features` columns, its outputs those of the training file. */
async function readStreamTestSet(
  source: FileSource, features: number, outputs: number, options: ReadOptions, settings: TrainSettings, sources: Sources, io: CliIO, hashed?: HashedCsvOptions,
): Promise<SparseDataset> {
  const label = `${sources.testData} ${settings.testData}`;
  const testSource = await dataSource(settings.testData!, io.cwd, sources.testData, settings.format);
  if (!isFile(testSource)) throw new CliError(`${label}: expected a data file, not a preset`);
  const test = await readSparseFile(testSource, options, sources, hashed, features, sources.testData);
  if (test.outputs !== outputs) {
    throw new CliError(`${label}: its rows give ${test.outputs} outputs, but ${sources.data ?? "--data"} ${settings.data} gives ${outputs}; the test file needs the training file's labels`);
  }
  if (sameFile(source.path, testSource.path)) {
    io.stderr(`downpour: warning: ${label} is the training file: the test figures will show how well the model fits its training rows, not how it does on new ones\n`);
  }
  return test;
}

/** Bytes a sparse set's arrays take: a pair 8, a target value 4, a row's offset, label and line 12. */
function sparseBytes(ds: SparseDataset): number {
  return 8 * (ds.rowPtr[ds.size]! - ds.rowPtr[0]!) + 4 * ds.y.length + 12 * ds.size;
}

/** Refuses (DataSizeError) sparse rows whose shuffled copy for the random holdout would exceed the memory limit. */
function checkSparseCopySize(all: SparseDataset, source: FileSource, settings: TrainSettings): void {
  const holdout = settings.holdout ?? DEFAULT_HOLDOUT;
  const holdsOut = settings.testData === undefined && (holdout < 1 ? Math.round(all.size * holdout) : holdout) > 0;
  const limitBytes = settings.memoryLimit ?? DEFAULT_MEMORY_LIMIT_BYTES;
  const neededBytes = sparseBytes(all) * (holdsOut ? 2 : 1);
  if (neededBytes <= limitBytes) return;
  throw new DataSizeError(
    `${source.name}: ${all.size} sparse rows with their copy for the random holdout would need ${formatBytes(neededBytes)}, ` +
      `more than the memory limit of ${formatBytes(limitBytes)} (raise it with --memory-limit, or give the test set with --test-data)`,
    { file: source.path },
    { neededBytes, limitBytes },
  );
}

/** --test-data (read sparse), else the holdout of --holdout or the default, of sparse rows. */
async function chooseSparseTestSet(
  all: SparseDataset, source: FileSource, options: ReadOptions, settings: TrainSettings, sources: Sources, io: CliIO, hashed?: HashedCsvOptions,
): Promise<{ train: SparseDataset; test?: SparseDataset }> {
  if (settings.testData === undefined) return splitOffSparse(all, settings.holdout ?? DEFAULT_HOLDOUT, settings.seed ?? 1, sources.holdout);
  if (sources.holdout) throw new CliError(`${sources.testData} and ${sources.holdout} both choose the test set; give one of them`);
  const label = `${sources.testData} ${settings.testData}`;
  const testSource = await dataSource(settings.testData, io.cwd, sources.testData, settings.format);
  if (!isFile(testSource)) throw new CliError(`${label}: expected a data file, not a preset`);
  const test = await readSparseFile(testSource, options, sources, hashed, all.features, sources.testData);
  if (test.outputs !== all.outputs) {
    throw new CliError(`${label}: its rows give ${test.outputs} outputs, but ${sources.data ?? "--data"} ${settings.data} gives ${all.outputs}; the test file needs the training file's labels`);
  }
  if (sameFile(source.path, testSource.path)) {
    io.stderr(`downpour: warning: ${label} is the training file: the test figures will show how well the model fits its training rows, not how it does on new ones\n`);
  }
  return { train: all, test };
}

/** Holds out a count or fraction of the sparse rows, picked at random (seeded) as splitOff does for dense files. */
function splitOffSparse(all: SparseDataset, holdout: number, seed: number, source = "--holdout"): { train: SparseDataset; test?: SparseDataset } {
  const count = holdout < 1 ? Math.round(all.size * holdout) : holdout;
  if (count === 0) return { train: all };
  if (count >= all.size) throw new CliError(`${source} ${holdout} keeps ${count} of the ${all.size} rows for testing, leaving none to train on`);
  const rows = selectSparseRows(all, seededPermutation(all.size, seed));
  const cut = all.size - count;
  const named = (ds: SparseDataset, suffix: string) => (all.name === undefined ? ds : { ...ds, name: `${all.name} ${suffix}` });
  return { train: named(sparseRows(rows, 0, cut), "train"), test: named(sparseRows(rows, cut, all.size), "test") };
}

/** The rows of `ds` in `order`, copied into new CSR arrays (with their targets, labels and lines). */
export function selectSparseRows(ds: SparseDataset, order: Int32Array): SparseDataset {
  const { rowPtr, outputs } = ds;
  const newPtr = new Int32Array(order.length + 1);
  for (let i = 0; i < order.length; i++) newPtr[i + 1] = newPtr[i]! + rowPtr[order[i]! + 1]! - rowPtr[order[i]!]!;
  const indices = new Int32Array(newPtr[order.length]!);
  const values = new Float32Array(indices.length);
  const y = new Float32Array(order.length * outputs);
  for (let i = 0; i < order.length; i++) {
    const r = order[i]!;
    indices.set(ds.indices.subarray(rowPtr[r]!, rowPtr[r + 1]!), newPtr[i]!);
    values.set(ds.values.subarray(rowPtr[r]!, rowPtr[r + 1]!), newPtr[i]!);
    y.set(ds.y.subarray(r * outputs, (r + 1) * outputs), i * outputs);
  }
  const { labels } = ds;
  return createSparseDataset({
    features: ds.features, outputs, rowPtr: newPtr, indices, values, y, ...(labels ? { labels: Int32Array.from(order, (r) => labels[r]!) } : {}),
    ...(ds.lines ? { lines: Int32Array.from(order, (r) => ds.lines![r]!) } : {}), ...(ds.name === undefined ? {} : { name: ds.name }),
  });
}

/** JavaScript-heap bytes the scaling statistics take per feature: three arrays of doubles while fitting, and the
 *  numbers as JSON text in the model file (about 20 characters each, two per feature). */
const STATS_BYTES_PER_FEATURE = 3 * 8 + 2 * 20;

/** The JavaScript heap's limit (typed arrays live outside it; the scaling statistics inside); Infinity when unknown. */
function heapLimitBytes(): number {
  try {
    return getHeapStatistics().heap_size_limit || Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Refuses (DataSizeError) --data rows whose copies for the random holdout and the scaling, beside the rows read,
 * would take more than the memory limit: "big.libsvm: 3 rows of 100000000 features (x 4 bytes) ...".
 */
function checkPreparationSize(all: Dataset, source: DataSource, method: Normalization, settings: TrainSettings, sources: Sources): void {
  if (!isFile(source)) return;
  const limitBytes = settings.memoryLimit ?? DEFAULT_MEMORY_LIMIT_BYTES;
  const rowsBytes = all.size * (all.features + all.outputs) * VALUE_BYTES;
  const holdout = settings.holdout ?? DEFAULT_HOLDOUT;
  const holdsOut = settings.testData === undefined && (holdout < 1 ? Math.round(all.size * holdout) : holdout) > 0;
  const scales = method !== "none";
  const statsBytes = scales ? all.features * STATS_BYTES_PER_FEATURE : 0;
  const heapBytes = heapLimitBytes() / 2;
  if (statsBytes > heapBytes) {
    throw new DataSizeError(
      `${source.name}: the ${method} statistics of ${all.features} features would need ${formatBytes(statsBytes)} of JavaScript memory, more than the ` +
        `${formatBytes(heapBytes)} it can spare (use fewer features, or no scaling: --normalize none)`,
      { file: source.path },
      { neededBytes: statsBytes, limitBytes: heapBytes },
    );
  }
  const neededBytes = rowsBytes * (holdsOut ? 2 : 1) + (scales ? all.size * all.features * VALUE_BYTES + statsBytes : 0);
  if (neededBytes <= limitBytes) return;
  const copies = [holdsOut ? "the random holdout" : "", scales ? `the ${method} scaling` : ""].filter((step) => step !== "").join(" and ");
  const shape = `${all.size} rows of ${all.features} features and ${all.outputs} output${all.outputs === 1 ? "" : "s"}`;
  const skip = scales && sources.normalize === undefined ? ", or skip the scaling with --normalize none" : "";
  throw new DataSizeError(
    `${source.name}: ${shape}${copies === "" ? "" : ` with their copies for ${copies}`} would need ${formatBytes(neededBytes)}, ` +
      `more than the memory limit of ${formatBytes(limitBytes)} (raise it with --memory-limit${skip})`,
    { file: source.path },
    { neededBytes, limitBytes },
  );
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
    const test = await readDataFile(testSource, { ...fileOptions(settings, sources), features: all.features });
    requireSameColumns(test, all, `${sources.testData} ${settings.testData}`, `${sources.data ?? "--data"} ${settings.data}`);
    if (isFile(source) && sameFile(source.path, testSource.path)) {
      io.stderr(`downpour: warning: ${sources.testData} ${settings.testData} is the training file: the test figures will show how well the model fits its training rows, not how it does on new ones\n`);
    }
    return { train: all, test };
  }
  if (builtinTest && settings.holdout === undefined) return { train: all, test: builtinTest };
  return splitOff(all, settings.holdout ?? DEFAULT_HOLDOUT, isFile(source), settings.seed ?? 1, sources.holdout);
}

/** Whether two paths name one file (after symlinks); false when either cannot be resolved. */
function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Refuses a test set whose rows do not have the training rows' features and outputs, naming both files. */
function requireSameColumns(test: Dataset, train: Dataset, testLabel: string, trainLabel: string): void {
  if (test.features === train.features && test.outputs === train.outputs) return;
  const shape = (d: Dataset) => `${d.features} feature${d.features === 1 ? "" : "s"} and ${d.outputs} output${d.outputs === 1 ? "" : "s"}`;
  throw new CliError(`${testLabel}: its rows give ${shape(test)}, but ${trainLabel} gives ${shape(train)}; the test file needs the training file's columns`);
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
  settings: Pick<TrainSettings, "labelColumn" | "header" | "classes" | "features" | "delimiter" | "comment" | "model" | "memoryLimit">,
  sources: Sources = {},
): ReadOptions {
  return {
    labelColumn: settings.labelColumn, noLabel: settings.model === "autoencoder", header: settings.header, classes: settings.classes,
    featureColumns: settings.features, delimiter: settings.delimiter, comment: settings.comment,
    maxBytes: settings.memoryLimit ?? DEFAULT_MEMORY_LIMIT_BYTES, maxBytesFlag: "--memory-limit",
    names: {
      labelColumn: sources.labelColumn ?? "--label-column", featureColumns: sources.features ?? "--features",
      delimiter: sources.delimiter ?? "--delimiter", comment: sources.comment ?? "--comment", classes: sources.classes ?? "--classes",
    },
  };
}

/**
 * Throws a DataError at the first target (of the training rows, then the test rows) that the model's output layer
 * and cost cannot produce, naming the file and line (or the row) and, for integer labels of several classes, the
 * --classes to give: "3class.csv line 5: label 2 is outside [0, 1], ... (the labels look like 3 classes: use --classes 3)".
 */
export function checkTrainingTargets(spec: ResolvedSpec, data: TrainingData | SparseTrainingData, settings: Pick<TrainSettings, "model" | "spec" | "testData">, sources: Sources = {}): void {
  const hint = classesHint(settings, sources);
  const train = { source: data.source, name: data.source.name };
  if (settings.testData !== undefined || !data.test) {
    checkTargets(spec, data.train, train, hint);
    if (data.test) checkTargets(spec, data.test, { source: data.source, name: data.test.name ?? "the test data" }, hint);
    return;
  }
  // Held out of the same file: the problem on the earliest line of either part.
  const found = [firstProblem(spec, data.train), firstProblem(spec, data.test)].filter((f) => f !== undefined);
  const first = found.sort((a, b) => (a.line ?? a.problem.row) - (b.line ?? b.problem.row))[0];
  if (first) throw targetError(first, train, hint);
}

/** Throws a DataError at the first target of `ds` that `spec` cannot produce (eval's data, or one set of a train run). */
export function checkTargets(spec: ResolvedSpec, ds: Dataset | SparseDataset, from: { source: DataSource; name: string }, hint = classesHint({ model: "mlp" })): void {
  const found = firstProblem(spec, ds);
  if (found) throw targetError(found, from, hint);
}

/** targetProblem's problem on the earliest source line (rows may be shuffled; sparse rows: the first row's), and that line. */
function firstProblem(spec: ResolvedSpec, ds: Dataset | SparseDataset): { problem: TargetProblem; line?: number } | undefined {
  const problem = targetProblem(spec, ds);
  if (!problem || !ds.lines) return problem && { problem };
  if (isSparse(ds)) return { problem, line: ds.lines[problem.row]! };
  const lines = ds.lines;
  const order = Int32Array.from(lines.keys()).sort((a, b) => lines[a]! - lines[b]!);
  const inOrder = targetProblem(spec, selectRows(ds, order))!;
  return { problem: { ...inOrder, row: order[inOrder.row]! }, line: lines[order[inOrder.row]!]! };
}

function targetError(found: { problem: TargetProblem; line?: number }, from: { source: DataSource; name: string }, hint: (classes: number) => string): DataError {
  const { problem, line } = found;
  const unit = from.source.kind === "file" && from.source.format === "idx" ? "record" : "row";
  const where = line !== undefined ? `${from.name} line ${line}` : `${from.name} ${unit} ${problem.row}`;
  const suggestion = problem.classes === undefined ? "" : ` (the labels look like ${problem.classes} classes: ${hint(problem.classes)})`;
  return new DataError(`${where}: ${problem.message}${suggestion}`, {
    ...(isFile(from.source) ? { file: from.source.path } : {}),
    ...(line !== undefined ? { line } : {}),
    row: problem.row,
  });
}

/** "use --classes 3", with what else the model settings need for 3 one-hot outputs. */
function classesHint(settings: Pick<TrainSettings, "model" | "spec">, sources: Sources = {}): (classes: number) => string {
  const flag = sources.classes ?? "--classes";
  return (classes) => {
    if (settings.model === "logistic" || settings.model === "linear") return `use ${flag} ${classes} and --model mlp`;
    if (settings.spec) return `use ${flag} ${classes} and a spec whose output layer has ${classes} softmax units`;
    return `use ${flag} ${classes}`;
  };
}
