// Node-only: saving and loading models as downpour model files by path (atomic write; see ./model-bytes.ts for
// the runtime-free bytes form). Exported from the `downpour/node` entry.
import { readModelFile, writeModelFile } from "../model/file/io.js";
import type { Model } from "./models.js";
import { modelContents, modelFromContents, type DecodeModelOptions } from "./model-bytes.js";

/** Writes `model` to `path` atomically (a temp file renamed over the target). */
export async function saveModel(model: Model, path: string): Promise<void> {
  await writeModelFile(path, modelContents(model));
}

/** Reads a model file; the result is of the class that saved it. Throws ModelFileError naming the file. */
export async function loadModel(path: string, options: DecodeModelOptions = {}): Promise<Model> {
  return modelFromContents(await readModelFile(path), path, options);
}
