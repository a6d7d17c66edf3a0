// Node-only: saving and loading models as downpour model files by path (atomic write; see ./model-bytes.ts for
// the runtime-free bytes form). Exported from the `downpour/node` entry.
import { readModelFile, writeModelFile } from "../model/file/io.js";
import type { Model } from "./models.js";
import { InvalidArgumentError } from "../errors.js";
import { describeValue } from "../util/describe.js";
import { modelContents, modelFromContents, type DecodeModelOptions } from "./model-bytes.js";

// Throws InvalidArgumentError unless `path` is a non-empty string.
function requirePath(use: string, path: unknown): asserts path is string {
  if (typeof path !== "string" || path === "") {
    throw new InvalidArgumentError(`${use}: path must be a non-empty string (a file path), got ${describeValue(path)}`);
  }
}

/**
 * Writes `model` to `path` atomically (a temp file renamed over the target). Rejects with InvalidArgumentError
 * for a model that is not a Model or a path that is not a non-empty string, InvalidStateError for a disposed model.
 */
export async function saveModel(model: Model, path: string): Promise<void> {
  requirePath("saveModel", path);
  await writeModelFile(path, modelContents(model, "saveModel"));
}

/**
 * Reads a model file; the result is of the class that saved it. Rejects with ModelFileError naming the file,
 * InvalidArgumentError for a path that is not a non-empty string or bad options.
 */
export async function loadModel(path: string, options: DecodeModelOptions = {}): Promise<Model> {
  requirePath("loadModel", path);
  return modelFromContents(await readModelFile(path), path, options);
}
