// Model files written by the CLI: the library's model file plus, in its meta, how the inputs were prepared
// (the scaling stats and column settings), so that eval and predict treat new inputs as training did.
import { rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ModelFileError, readModelFile, writeModelFile } from "../model/file/index.js";
import type { Model } from "../api/models.js";
import { loadModel, saveModel } from "../api/persist.js";
import { asScaling, type Scaling } from "./scaling.js";

/** How training read and scaled its data. */
export interface Preprocess {
  /** "mnist", "digits", "synthetic" or the training file's name. */
  readonly data: string;
  readonly scaling?: Scaling;
  /** How the training file was read (absent for the presets). */
  readonly format?: "csv" | "libsvm" | "idx";
  readonly labelColumn?: number | string;
  readonly featureColumns?: readonly number[];
  readonly delimiter?: string;
  readonly comment?: string;
  readonly classes?: number;
}

const META_KEY = "preprocess";

/** Saves `model` atomically with `preprocess` in its meta. */
export async function saveTrainedModel(model: Model, path: string, preprocess: Preprocess): Promise<void> {
  const draft = join(dirname(path), `.${basename(path)}.${process.pid}.draft`);
  try {
    await saveModel(model, draft);
    const contents = await readModelFile(draft);
    await writeModelFile(path, { ...contents, meta: { ...contents.meta, [META_KEY]: JSON.parse(JSON.stringify(preprocess)) } });
  } finally {
    await rm(draft, { force: true });
  }
}

/** A model file's model and preprocessing (none recorded: no scaling). */
export async function loadTrainedModel(path: string): Promise<{ model: Model; preprocess: Partial<Preprocess> }> {
  const model = await loadModel(path);
  try {
    const { meta } = await readModelFile(path);
    return { model, preprocess: checkPreprocess(meta[META_KEY], path, model.network.inputs) };
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
