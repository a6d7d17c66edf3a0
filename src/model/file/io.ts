// Reading and atomically writing model files: write a temp file beside the target, fsync, rename over the target.
import { open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pid } from "node:process";
import { decodeModel } from "./decode.js";
import { encodeModel } from "./encode.js";
import { ModelFileError } from "./errors.js";
import type { ModelFileContents } from "./format.js";

/** A fresh temp path in the target's directory: ".<name>.<pid>.<random hex>.tmp". */
function tempPathFor(path: string): string {
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
  return join(dirname(path), `.${basename(path)}.${pid}.${suffix}.tmp`);
}

/** Creates `temp` (failing if it exists), writes `bytes` and fsyncs it. */
async function writeSynced(temp: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(temp, "wx");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Best effort: makes the rename durable where directories can be fsynced (not on Windows). */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The file itself is already synced and renamed; a directory that cannot be synced is not an error.
  }
}

/**
 * Writes `contents` to `path` atomically: readers see the old file or the new one, never a partial write.
 * Contents are validated before anything touches the disk; on any failure the temp file is removed and an existing
 * file at `path` is left as it was. Rejects with ModelFileError.
 */
export async function writeModelFile(path: string, contents: ModelFileContents): Promise<void> {
  const bytes = encodeModel(contents, path);
  const temp = tempPathFor(path);
  try {
    await writeSynced(temp, bytes);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new ModelFileError(path, `cannot write model file ${path}: ${(error as Error).message}`, { cause: error });
  }
  await syncDirectory(dirname(path));
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
