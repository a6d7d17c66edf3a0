// Resolving a --data argument (the presets mnist, digits and synthetic, or a data file) and reading it as a Dataset.
// One function, dataFormat, decides how a file is read (csv, libsvm or idx) for train, eval and predict alike.
import { basename, resolve } from "node:path";
import { defaultCacheDir } from "../data/cache.js";
import { readCsv, type CsvOptions } from "../data/csv.js";
import { sliceRows, type Dataset } from "../data/dataset.js";
import { loadDigits } from "../data/digits.js";
import { DataError, DataSizeError } from "../data/errors.js";
import { readLines } from "../data/files.js";
import { readIdxRows } from "../data/idx.js";
import { readLibsvm, readLibsvmSparse } from "../data/libsvm.js";
import { findMnist, loadMnist } from "../data/mnist.js";
import type { SparseDataset } from "../data/sparse.js";
import { syntheticClassification } from "../data/synthetic.js";
import { CliError } from "./errors.js";
import { readablePath } from "./io.js";

export const FILE_FORMATS = ["csv", "libsvm", "idx"] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export const PRESETS = ["mnist", "digits", "synthetic"] as const;
export type Preset = (typeof PRESETS)[number];

/** A data file named by a --data (or --input) argument, and how its format was chosen (for messages). */
export interface FileSource {
  readonly kind: "file";
  readonly format: FileFormat;
  /** "--format libsvm", "its .csv extension", "its content (.txt)". */
  readonly how: string;
  readonly name: string;
  readonly path: string;
}

/** What a --data argument names: a preset or a file. */
export type DataSource = { readonly kind: Preset; readonly name: string } | FileSource;

export function isFile(source: DataSource): source is FileSource {
  return source.kind === "file";
}

/** How to read a data file's columns (libsvm uses classes and features only; idx none). */
export interface ReadOptions {
  readonly labelColumn?: number | string;
  /** No label column: every column may be a feature (models without labels: the auto-encoder). */
  readonly noLabel?: boolean;
  readonly header?: boolean;
  readonly classes?: number;
  /** libsvm: the feature count (so a test file matches its training file). */
  readonly features?: number;
  /** CSV: the 0-based feature columns. */
  readonly featureColumns?: readonly number[];
  readonly delimiter?: string;
  readonly comment?: string;
  /** The most bytes the data read in may take (--memory-limit); default DEFAULT_MEMORY_LIMIT_BYTES. */
  readonly maxBytes?: number;
  /** The flag that sets maxBytes, named when data is too big ("--memory-limit"); none: the command has no such flag. */
  readonly maxBytesFlag?: string;
  /** The flags (or config keys) that set these, for messages. */
  readonly names?: CsvOptions["optionNames"];
}


/** The synthetic preset: Gaussian blobs shaped like MNIST (784 features, 10 classes) that train in seconds. */
export const SYNTHETIC = { size: 20000, features: 784, classes: 10, seed: 7 } as const;

/** The rows of the synthetic preset that training holds out by default (the last tenth), for `eval`. */
export const SYNTHETIC_TEST_ROWS = SYNTHETIC.size / 10;

const EXTENSIONS: Record<string, FileFormat> = { csv: "csv", tsv: "csv", libsvm: "libsvm", svm: "libsvm", idx: "idx" };
const FILE_PATTERN = /(?:\.(csv|tsv|libsvm|svm|txt|idx)|[.-](idx\d-ubyte|ubyte))(?:\.gz)?$/i;

/** The preset, or the file with its format: `format` (from --format) when given, else its extension, else (.txt) its content. */
export async function dataSource(arg: string, cwd: string, flag = "--data", format?: FileFormat): Promise<DataSource> {
  if ((PRESETS as readonly string[]).includes(arg) && format === undefined) return { kind: arg as Preset, name: arg };
  const path = readablePath(cwd, arg);
  if (format === undefined && !FILE_PATTERN.test(arg)) {
    throw new CliError(
      `${flag} ${arg}: expected mnist, digits, synthetic, or a data file ending in .csv, .tsv, .libsvm, .svm, .txt or .idx (optionally .gz); ` +
        "give --format csv|libsvm|idx to read another name",
    );
  }
  return fileSource(arg, path, format);
}

/** A file to read, named by `arg`, at `path`: its format from `format`, its name or its content. */
export async function fileSource(arg: string, path: string, format?: FileFormat): Promise<FileSource> {
  const found = await dataFormat(path, format);
  return { kind: "file", ...found, name: basename(arg), path };
}

/**
 * How a data file is read, for train, eval and predict alike: `explicit` (--format) wins; then the extension
 * (.csv/.tsv csv, .libsvm/.svm libsvm, .idx/-ubyte idx, each optionally .gz); any other name (.txt) by its first
 * data line: libsvm when a token after the first is index:value, else csv.
 */
export async function dataFormat(path: string, explicit?: FileFormat): Promise<{ format: FileFormat; how: string }> {
  if (explicit) return { format: explicit, how: `--format ${explicit}` };
  const match = FILE_PATTERN.exec(path);
  const extension = (match?.[1] ?? match?.[2])?.toLowerCase();
  if (extension && extension !== "txt") {
    const format = EXTENSIONS[extension] ?? "idx";
    return { format, how: `its ${extension.includes("ubyte") ? `-${extension}` : `.${extension}`} extension` };
  }
  return { format: await sniffFormat(path), how: `its content${extension ? ` (.${extension})` : ""}` };
}

/** libsvm when the first data line (not blank, not a # comment) has index:value tokens after its label, else csv. */
async function sniffFormat(path: string): Promise<FileFormat> {
  for await (const { text } of readLines(path)) {
    const trimmed = text.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const tokens = trimmed.split(/\s+/);
    return tokens.length >= 2 && tokens.slice(1).some((t) => /^(\d+|qid):\S+$/.test(t)) ? "libsvm" : "csv";
  }
  return "csv";
}

/**
 * A data file as a Dataset named after the file; a parse error says which format was assumed and how to choose,
 * and data too big for the memory limit says how to raise it.
 */
export async function readDataFile(source: FileSource, options: ReadOptions): Promise<Dataset> {
  return withReadHints(source, options, () => readAs(source, options));
}

/**
 * A libsvm file as a SparseDataset (nothing made dense: 2^20 features cost only the pairs present), for models with
 * sparse inputs; `flag` names what asked for it ("--sparse", or the model file). Another format is refused by name.
 */
export async function readSparseDataFile(source: FileSource, options: ReadOptions, flag = "--sparse"): Promise<SparseDataset> {
  if (source.format !== "libsvm") {
    throw new CliError(
      `${source.name}: ${flag} reads libsvm files (index:value pairs), but this one is read as ${source.format} (chosen by ${source.how}); ` +
        "give a .libsvm or .svm file, or --format libsvm",
    );
  }
  return withReadHints(source, options, () =>
    readLibsvmSparse(source.path, { classes: options.classes, features: options.features, maxBytes: options.maxBytes, optionNames: options.names }),
  );
}

/** Runs a read of `source`, adding to its errors how the format was chosen and how to raise the memory limit. */
async function withReadHints<T>(source: FileSource, options: ReadOptions, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof DataSizeError && options.maxBytesFlag !== undefined) {
      throw new DataSizeError(`${error.message} (raise it with ${options.maxBytesFlag})`, error, error, { cause: error });
    }
    if (!(error instanceof DataError) || error.line === undefined || NOT_A_FORMAT_PROBLEM.test(error.message)) throw error;
    const hint = ` (read as ${source.format}, chosen by ${source.how}; choose another with --format csv|libsvm|idx)`;
    throw new DataError(`${error.message}${hint}`, error, { cause: error });
  }
}

/** Parse errors that another --format would not cure: a number out of range, not a token of the wrong shape. */
const NOT_A_FORMAT_PROBLEM = /expected a (value that is a )?finite number|beyond the 32-bit float range/;

async function readAs(source: FileSource, options: ReadOptions): Promise<Dataset> {
  switch (source.format) {
    case "csv":
      return readCsv(source.path, {
        labelColumn: options.noLabel && options.labelColumn === undefined ? null : options.labelColumn,
        header: options.header ?? "auto", classes: options.classes, featureColumns: options.featureColumns,
        delimiter: options.delimiter ?? (/\.tsv(\.gz)?$/i.test(source.path) ? "\t" : undefined), comment: options.comment, optionNames: options.names,
        maxBytes: options.maxBytes,
      });
    case "libsvm":
      return readLibsvm(source.path, { classes: options.classes, features: options.features, maxBytes: options.maxBytes, optionNames: options.names });
    case "idx":
      if (options.classes !== undefined) {
        throw new CliError(`${source.name}: an IDX file holds no labels (read as idx, chosen by ${source.how}), so --classes cannot apply; train an autoencoder on it, or predict its rows`);
      }
      return readIdxRows(source.path, { maxBytes: options.maxBytes });
  }
}

export function syntheticData(): Dataset {
  return syntheticClassification(SYNTHETIC);
}

/** The synthetic preset's default test rows. */
export function syntheticTestData(): Dataset {
  const all = syntheticData();
  return sliceRows(all, all.size - SYNTHETIC_TEST_ROWS, all.size, `${all.name} test`);
}

/** The bundled UCI 8x8 digits: a fixed seeded random fifth held out as the test set. */
export async function digitsSets(): Promise<{ train: Dataset; test: Dataset }> {
  return loadDigits();
}

/** MNIST's train and test sets from the cache or $DOWNPOUR_DATA/mnist, or undefined when absent. */
export async function findMnistSets(env: Readonly<Record<string, string | undefined>>): Promise<{ train: Dataset; test: Dataset } | undefined> {
  const dir = findMnist(env);
  return dir === undefined ? undefined : loadMnist(dir);
}

/** Where MNIST was looked for, for messages. */
export function mnistPlaces(env: Readonly<Record<string, string | undefined>>): string {
  const cache = resolve(defaultCacheDir(env), "mnist");
  return env.DOWNPOUR_DATA ? `${cache} or ${resolve(env.DOWNPOUR_DATA, "mnist")}` : `${cache} (nor is $DOWNPOUR_DATA set)`;
}
