// Reading and atomically writing model files (a temp file beside the target, fsynced, renamed over the target).
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../../node/files.js";
import { decodeModel } from "./decode.js";
import { encodeModel } from "./encode.js";
import { ModelFileError } from "./errors.js";
import type { ModelFileContents } from "./format.js";

/**
 * Writes `contents` to `path` atomically: readers see the old file or the new one, never a partial write.
 * Contents are validated before anything touches the disk; on any failure the temp file is removed and an existing
 * file at `path` is left as it was. Rejects with ModelFileError.
 */
export async function writeModelFile(path: string, contents: ModelFileContents): Promise<void> {
  const bytes = encodeModel(contents, path);
  try {
    await writeFileAtomic(path, bytes, { fsync: true });
  } catch (error) {
    throw new ModelFileError(path, `cannot write model file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Reads and decodes the model file at `path`; rejects with ModelFileError if it cannot be read or is malformed. */
export async function readModelFile(path: string): Promise<ModelFileContents> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ModelFileError(path, `cannot read model file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return decodeModel(bytes, path);
}
