// Model files written by the CLI: the library's model file plus, in its meta, how the inputs were prepared
// (the scaling stats and column settings), so that eval and predict treat new inputs as training did.
import { resolve } from "node:path";
import { ModelFileError, readModelFile, writeModelFile, type ModelFileContents } from "../model/file/index.js";
import { modelContents, modelFromContents } from "../api/model-bytes.js";
import type { Model } from "../api/models.js";
import { isFile, type DataSource } from "./datasets.js";
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
}

/** What a model file records of how `source` was read under `settings` and scaled with `scaling` (relative paths
 *  resolved against `cwd`); settings left at their defaults are not recorded. */
export function preprocessOf(source: DataSource, scaling: Scaling | undefined, settings: TrainSettings, cwd: string): Preprocess {
  const file = isFile(source)
    ? {
        path: resolve(cwd, source.path), format: source.format, labelColumn: settings.labelColumn, featureColumns: settings.features,
        delimiter: settings.delimiter, comment: settings.comment, header: settings.header, classes: settings.classes,
      }
    : {};
  const testData = settings.testData === undefined ? undefined : resolve(cwd, settings.testData);
  return { data: source.name, scaling, ...file, holdout: settings.holdout, testData };
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
    const preprocess = checkPreprocess(meta[META_KEY], path, model.network.inputs);
    model.inputScaling = undefined; // the CLI scales what it reads itself, with preprocess.scaling (predict streams rows)
    return { model, preprocess };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

function checkPreprocess(value: unknown, path: string, inputs: number): Partial<Preprocess> {
  if (value === undefined) return {};
  const fail = (problem: string) => new ModelFileError(path, `model file ${path}: meta.${META_KEY}${problem}`);
  if (typeof value !== "object" || value === null) throw fail(` must be an object, got ${JSON.stringify(value)}`);
  const preprocess = value as Partial<Preprocess>;
  if (preprocess.scaling === undefined) return preprocess;
  const scaling = asScaling(preprocess.scaling, inputs);
  if (typeof scaling === "string") throw fail(`.scaling: ${scaling}`);
  return { ...preprocess, scaling };
}
