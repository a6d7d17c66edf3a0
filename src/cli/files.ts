// Writing output files atomically: a temp file beside the target, renamed over it once complete.
import { randomBytes } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CliError } from "./errors.js";

/** ".<name>.<pid>.<hex>.tmp" in the target's directory, so the rename stays on one file system. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/** A file being written: chunks go to a temp file; commit() renames it over the target, abort() removes it. */
export class AtomicFile {
  private constructor(
    readonly path: string,
    private readonly temp: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<AtomicFile> {
    const temp = tempPathFor(path);
    const handle = await open(temp, "wx").catch((error: Error) => {
      throw new CliError(`cannot write ${path}: ${error.message}`, { cause: error });
    });
    return new AtomicFile(path, temp, handle);
  }

  async write(text: string): Promise<void> {
    await this.handle.write(text);
  }

  async commit(): Promise<void> {
    try {
      await this.handle.close();
      await rename(this.temp, this.path);
    } catch (error) {
      await rm(this.temp, { force: true });
      throw new CliError(`cannot write ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => {});
    await rm(this.temp, { force: true });
  }
}

/** Writes `text` to `path` whole or not at all. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const file = await AtomicFile.create(path);
  try {
    await file.write(text);
  } catch (error) {
    await file.abort();
    throw new CliError(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
  await file.commit();
}
