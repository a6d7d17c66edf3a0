// Resolving a --data argument (the presets mnist and synthetic, or a CSV / libsvm file) and reading it as a Dataset.
import { basename, resolve } from "node:path";
import {
  defaultCacheDir, findMnist, loadMnist, readCsv, readLibsvm, sliceRows, syntheticClassification, type Dataset,
} from "../data/index.js";
import { CliError } from "./errors.js";
import { readablePath } from "./io.js";

/** A data file named by a --data argument. */
export interface FileSource {
  readonly kind: "csv" | "libsvm";
  readonly name: string;
  readonly path: string;
}

/** What a --data argument names: a preset or a file. */
export type DataSource = { readonly kind: "mnist" | "synthetic"; readonly name: string } | FileSource;

export function isFile(source: DataSource): source is FileSource {
  return source.kind === "csv" || source.kind === "libsvm";
}

/** How to read a data file's columns (libsvm uses classes and features only). */
export interface ReadOptions {
  readonly labelColumn?: number | string;
  readonly header?: boolean;
  readonly classes?: number;
  /** libsvm: the feature count (so a test file matches its training file). */
  readonly features?: number;
}

/** The synthetic preset: Gaussian blobs shaped like MNIST (784 features, 10 classes) that train in seconds. */
export const SYNTHETIC = { size: 20000, features: 784, classes: 10, seed: 7 } as const;

/** The rows of the synthetic preset that training holds out by default (the last tenth), for `eval`. */
export const SYNTHETIC_TEST_ROWS = SYNTHETIC.size / 10;

/** mnist, synthetic, or a file by extension (.csv, .libsvm, .svm, .txt, each optionally .gz); `flag` names the setting in errors. */
export function dataSource(arg: string, cwd: string, flag = "--data"): DataSource {
  if (arg === "mnist" || arg === "synthetic") return { kind: arg, name: arg };
  const extension = /\.(csv|libsvm|svm|txt)(\.gz)?$/i.exec(arg)?.[1]?.toLowerCase();
  if (!extension) {
    throw new CliError(`${flag} ${arg}: expected mnist, synthetic, or a data file ending in .csv, .libsvm, .svm or .txt (optionally .gz)`);
  }
  return { kind: extension === "csv" ? "csv" : "libsvm", name: basename(arg), path: readablePath(cwd, arg) };
}

/** A CSV or libsvm file as a Dataset named after the file. */
export async function readDataFile(source: FileSource, options: ReadOptions): Promise<Dataset> {
  if (source.kind === "csv") {
    return readCsv(source.path, { labelColumn: options.labelColumn, header: options.header ?? "auto", classes: options.classes });
  }
  return readLibsvm(source.path, { classes: options.classes, features: options.features });
}

export function syntheticData(): Dataset {
  return syntheticClassification(SYNTHETIC);
}

/** The synthetic preset's default test rows. */
export function syntheticTestData(): Dataset {
  const all = syntheticData();
  return sliceRows(all, all.size - SYNTHETIC_TEST_ROWS, all.size, `${all.name} test`);
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
