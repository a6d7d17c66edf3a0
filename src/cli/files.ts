// Output files of the CLI written atomically (src/node/files.ts), with failures as CliErrors naming the file.
import { AtomicFile as NodeAtomicFile, writeFileAtomic as nodeWriteFileAtomic } from "../node/files.js";
import { CliError } from "./errors.js";

function cannotWrite(path: string, error: unknown): CliError {
  return new CliError(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
}

/** A file being written: chunks go to a temp file; commit() renames it over the target, abort() removes it. */
export class AtomicFile {
  private constructor(private readonly file: NodeAtomicFile) {}

  get path(): string {
    return this.file.path;
  }

  static async create(path: string): Promise<AtomicFile> {
    return new AtomicFile(await NodeAtomicFile.create(path).catch((error: unknown) => Promise.reject(cannotWrite(path, error))));
  }

  async write(text: string): Promise<void> {
    await this.file.write(text);
  }

  async commit(): Promise<void> {
    await this.file.commit().catch((error: unknown) => Promise.reject(cannotWrite(this.path, error)));
  }

  async abort(): Promise<void> {
    await this.file.abort();
  }
}

/** Writes `text` to `path` whole or not at all. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await nodeWriteFileAtomic(path, text).catch((error: unknown) => Promise.reject(cannotWrite(path, error)));
}
