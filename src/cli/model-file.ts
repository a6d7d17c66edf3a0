// Model files written by the CLI: the library's model file plus, in its meta, how the inputs were prepared
// (the scaling stats and column settings; for --hash-features the whole hashing of the CSV columns), so that eval,
// predict and --resume treat new inputs as training did.
import { basename, resolve } from "node:path";
import type { HashedCsvOptions, HashedLayout } from "../data/hash-features.js";
import { ModelFileError, readModelFile, writeModelFile, type ModelFileContents } from "../model/file/index.js";
import { modelContents, modelFromContents } from "../api/model-bytes.js";
import type { Model } from "../api/models.js";
import { isFile, type DataSource } from "./datasets.js";
import { CliError } from "./errors.js";
import { asScaling, type Scaling } from "./scaling.js";
import type { TrainSettings } from "./settings.js";

/** How training read and scaled its data. */
export interface Preprocess {
  /** "mnist", "digits", "synthetic" or the training file's name. */
  readonly data: string;
  readonly scaling?: Scaling;
  /** The training file's absolute path (absent for the presets), so --resume finds it. */
  readonly path?: string;
  /** How the training file was read (absent for the presets). */
  readonly format?: "csv" | "libsvm" | "idx";
  readonly labelColumn?: number | string;
  readonly featureColumns?: readonly number[];
  readonly delimiter?: string;
  readonly comment?: string;
  readonly header?: boolean;
  readonly classes?: number;
  /** How the test set was chosen, when a setting chose it: --holdout, or the --test-data file's absolute path. */
  readonly holdout?: number;
  readonly testData?: string;
  /** --hash-features: the width (2^k), and how the training file's columns were hashed. */
  readonly hashFeatures?: number;
  readonly hashing?: HashedInputs;
}

/** How a --hash-features run hashed its CSV: all that hashing another file the same way takes. */
export interface HashedInputs {
  /** 2^bits features. */
  readonly width: number;
  /** The hashes' seed. */
  readonly seed: number;
  /** The training file's fields per line, its label column and the columns hashed (0-based; a column's position
   *  is its hash key, so other files must have the same columns in the same order). */
  readonly fields: number;
  readonly labelColumn: number;
  readonly featureColumns: readonly number[];
  /** Whether a first line is a header: true, false, or "auto" (detected as training detected it). */
  readonly header: boolean | "auto";
  /** The training file's header, when it had one: another file's header must name the same columns. */
  readonly headerNames?: readonly string[];
  readonly delimiter: string;
  readonly comment?: string;
  readonly classes?: number;
}

/** What a model file records of a hashed read of `path` with `options` whose first line settled `layout`. */
export function hashedInputsOf(options: HashedCsvOptions, layout: HashedLayout): HashedInputs {
  return {
    width: 2 ** options.bits, seed: (options.seed ?? 0) >>> 0, fields: layout.fields, labelColumn: layout.labelColumn, featureColumns: [...layout.featureColumns],
    header: options.header ?? "auto", ...(layout.header ? { headerNames: [...layout.header] } : {}), delimiter: options.delimiter ?? ",",
    ...(options.comment !== undefined ? { comment: options.comment } : {}), ...(options.classes !== undefined ? { classes: options.classes } : {}),
  };
}

/** The file's syntax settings eval and predict may give over the recorded ones (a column's position stays its key). */
export interface HashedOverrides {
  readonly header?: boolean;
  readonly delimiter?: string;
  readonly comment?: string;
  readonly classes?: number;
}

/** --features and --label-column cannot choose other columns for a hashed model: their positions are its hash keys. */
export function refuseColumnFlags(flags: { features?: readonly number[]; labelColumn?: number | string }, what: string): void {
  const given = [flags.labelColumn !== undefined ? "--label-column" : "", flags.features !== undefined ? "--features" : ""].filter((flag) => flag !== "");
  if (given.length === 0) return;
  throw new CliError(`${given.join(", ")}: ${what} hashes the columns its training hashed, by their positions (recorded in the model file); drop ${given.join(" and ")}`);
}

/**
 * The readCsvHashed options that hash a file as the training run of `model` (a model file, named in messages)
 * hashed its own: the recorded width, seed, columns, header handling and delimiter, and the training file's field
 * count and header to check. A model file written before the layout was recorded (only hashFeatures) gets its
 * column settings, and no layout check. Undefined for a model that was not trained on hashed features.
 */
export function hashedReadOptions(preprocess: Partial<Preprocess>, model: string, overrides: HashedOverrides = {}): HashedCsvOptions | undefined {
  const h = preprocess.hashing;
  const given = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)) as HashedOverrides;
  if (h) {
    const trainedOn = preprocess.path === undefined ? preprocess.data ?? "the training file" : basename(preprocess.path);
    return {
      bits: Math.log2(h.width), seed: h.seed, labelColumn: h.labelColumn, featureColumns: h.featureColumns, header: h.header, delimiter: h.delimiter,
      ...(h.comment !== undefined ? { comment: h.comment } : {}), ...(h.classes !== undefined ? { classes: h.classes } : {}), ...given,
      layout: { fields: h.fields, ...(h.headerNames ? { header: h.headerNames } : {}), from: `as in ${trainedOn}, the training file of ${model}` },
    };
  }
  if (preprocess.hashFeatures === undefined) return undefined;
  const tsv = preprocess.path !== undefined && /\.tsv(\.gz)?$/i.test(preprocess.path);
  return {
    bits: Math.log2(preprocess.hashFeatures), labelColumn: preprocess.labelColumn, featureColumns: preprocess.featureColumns, header: preprocess.header ?? "auto",
    delimiter: preprocess.delimiter ?? (tsv ? "\t" : ","), comment: preprocess.comment, classes: preprocess.classes, ...given,
  };
}

/** What a model file records of how `source` was read under `settings` and scaled with `scaling` (relative paths
 *  resolved against `cwd`); settings left at their defaults are not recorded. */
export function preprocessOf(source: DataSource, scaling: Scaling | undefined, settings: TrainSettings, cwd: string, hashing?: HashedInputs): Preprocess {
  const file = isFile(source)
    ? {
        path: resolve(cwd, source.path), format: source.format, labelColumn: settings.labelColumn, featureColumns: settings.features,
        delimiter: settings.delimiter, comment: settings.comment, header: settings.header, classes: settings.classes,
      }
    : {};
  const testData = settings.testData === undefined ? undefined : resolve(cwd, settings.testData);
  const hashed = hashing ? { hashFeatures: hashing.width, hashing } : {};
  return { data: source.name, scaling, ...file, holdout: settings.holdout, testData, ...hashed };
}

const META_KEY = "preprocess";

/** What a CLI model file holds for `model` now: the library's contents (copies of the parameters and optimizer
 *  state) with `preprocess` in the meta; later training does not change it. */
export function trainedModelContents(model: Model, preprocess: Preprocess): ModelFileContents {
  const contents = modelContents(model);
  return { ...contents, meta: { ...contents.meta, [META_KEY]: JSON.parse(JSON.stringify(preprocess)) } };
}

/** Saves `model` with `preprocess` in its meta: encoded in memory, then one atomic write (temp file renamed over
 *  `path`; no other file is created). Rejects with ModelFileError. */
export async function saveTrainedModel(model: Model, path: string, preprocess: Preprocess): Promise<void> {
  await writeModelFile(path, trainedModelContents(model, preprocess));
}

/** A model file's model and preprocessing (none recorded: no scaling). */
export async function loadTrainedModel(path: string): Promise<{ model: Model; preprocess: Partial<Preprocess> }> {
  const contents = await readModelFile(path);
  const model = await modelFromContents(contents, path);
  try {
    const { meta } = contents;
    const preprocess = checkPreprocess(meta[META_KEY], path, model.network.inputs, model);
    // A file saved by the library (saveModel, downpour import) keeps its scaling as the model's own inputScaling.
    const scaling = preprocess.scaling ?? model.inputScaling;
    model.inputScaling = undefined; // the CLI scales what it reads itself, with preprocess.scaling (predict streams rows)
    return { model, preprocess: scaling ? { ...preprocess, scaling } : preprocess };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

function checkPreprocess(value: unknown, path: string, inputs: number, model: Model): Partial<Preprocess> {
  if (value === undefined) return {};
  const fail = (problem: string) => new ModelFileError(path, `model file ${path}: meta.${META_KEY}${problem}`);
  if (typeof value !== "object" || value === null) throw fail(` must be an object, got ${JSON.stringify(value)}`);
  const preprocess = value as Partial<Preprocess>;
  const hashing = checkHashing(preprocess, inputs, model);
  if (hashing) throw fail(hashing);
  if (preprocess.scaling === undefined) return preprocess;
  const scaling = asScaling(preprocess.scaling, inputs);
  if (typeof scaling === "string") throw fail(`.scaling: ${scaling}`);
  return { ...preprocess, scaling };
}

/** What is wrong with the recorded hashing (".hashing.fields: ..."), or undefined when it is sound (or absent). */
function checkHashing(preprocess: Partial<Preprocess>, inputs: number, model: Model): string | undefined {
  const width = preprocess.hashing?.width ?? preprocess.hashFeatures;
  if (width === undefined) return undefined;
  if (!isPowerOfTwo(width) || width !== inputs) return `${preprocess.hashing ? ".hashing.width" : ".hashFeatures"} is ${JSON.stringify(width)}, expected the model's ${inputs} inputs (a power of two)`;
  if (model.network.spec.sparseInputs !== true) return ".hashing: hashed features need a model with sparse inputs, but this one takes dense inputs";
  const h = preprocess.hashing as unknown as Record<string, unknown> | undefined;
  if (h === undefined) return undefined;
  const isIndex = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  const fields = h.fields as number;
  const problems: [string, boolean, string][] = [
    ["seed", Number.isInteger(h.seed) && (h.seed as number) >= 0, "an integer >= 0"],
    ["fields", isIndex(fields) && fields >= 2, "an integer >= 2"],
    ["labelColumn", isIndex(h.labelColumn) && (h.labelColumn as number) < fields, `a column index below fields (${fields})`],
    ["featureColumns", Array.isArray(h.featureColumns) && h.featureColumns.length > 0 && h.featureColumns.every((j) => isIndex(j) && j < fields), `a non-empty list of column indices below fields (${fields})`],
    ["header", h.header === true || h.header === false || h.header === "auto", 'true, false or "auto"'],
    ["headerNames", h.headerNames === undefined || (Array.isArray(h.headerNames) && h.headerNames.length === fields && h.headerNames.every((n) => typeof n === "string")), `absent or ${fields} strings`],
    ["delimiter", typeof h.delimiter === "string" && h.delimiter.length === 1, "one character"],
    ["comment", h.comment === undefined || typeof h.comment === "string", "absent or a string"],
    ["classes", h.classes === undefined || (Number.isInteger(h.classes) && (h.classes as number) >= 1), "absent or an integer >= 1"],
  ];
  const bad = problems.find(([, ok]) => !ok);
  return bad && `.hashing.${bad[0]} is ${JSON.stringify(h[bad[0]])}, expected ${bad[2]}`;
}

function isPowerOfTwo(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 2 && Number.isInteger(Math.log2(value));
}
