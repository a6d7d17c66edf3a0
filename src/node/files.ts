// Node-only atomic file writing: a temp file beside the target, optionally fsynced, renamed over it once complete,
// so the target is whole or absent. The one implementation the CLI, the downloads and the model files share; the
// temp files being written are listed so that a signal handler (the CLI's) can remove them before the process exits.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** How to write: `fsync` flushes the data (and the directory entry) to disk before the rename reports success. */
export interface AtomicWriteOptions {
  readonly fsync?: boolean;
}

/** ".<name>.<pid>.<hex>.tmp" in the target's directory, so the rename stays on one file system. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/** Temp files created and not yet renamed or removed, in this process. */
const liveTempFiles = new Set<string>();

/** The temp files of this process's atomic writes still in progress (a copy). */
export function liveTempPaths(): string[] {
  return [...liveTempFiles];
}

/**
 * Removes every temp file of the atomic writes in progress, synchronously, so that a process about to exit on a
 * signal leaves no partial file behind (the targets keep their old contents). Installs no handler itself: the
 * application calls it from its own SIGINT/SIGTERM handler. Errors (a file already gone) are ignored.
 */
export function removeLiveTempFiles(): void {
  for (const temp of liveTempFiles) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // best effort while exiting
    }
  }
  liveTempFiles.clear();
}

/** A file being written: chunks go to a temp file; commit() renames it over the target, abort() removes it. */
export class AtomicFile {
  private constructor(
    readonly path: string,
    private readonly temp: string,
    private readonly handle: FileHandle,
    private readonly options: AtomicWriteOptions,
  ) {}

  /** Opens the temp file (exclusively); fails with the system's error when the directory is not writable. */
  static async create(path: string, options: AtomicWriteOptions = {}): Promise<AtomicFile> {
    const temp = tempPathFor(path);
    liveTempFiles.add(temp);
    try {
      return new AtomicFile(path, temp, await open(temp, "wx"), options);
    } catch (error) {
      liveTempFiles.delete(temp);
      throw error;
    }
  }

  async write(data: string | Uint8Array): Promise<void> {
    if (typeof data === "string") await this.handle.write(data);
    else await this.handle.write(data);
  }

  /** Closes (after fsync when asked) and renames over the target; on failure the temp file is removed. */
  async commit(): Promise<void> {
    try {
      if (this.options.fsync) await this.handle.sync();
      await this.handle.close();
      await rename(this.temp, this.path);
      liveTempFiles.delete(this.temp);
      if (this.options.fsync) await syncDirectory(dirname(this.path));
    } catch (error) {
      await this.handle.close().catch(() => {});
      await this.removeTemp();
      throw error;
    }
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => {});
    await this.removeTemp();
  }

  private async removeTemp(): Promise<void> {
    await rm(this.temp, { force: true });
    liveTempFiles.delete(this.temp);
  }
}

/** Writes `data` to `path` whole or not at all (the system's error is thrown as is). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const file = await AtomicFile.create(path, options);
  try {
    await file.write(data);
  } catch (error) {
    await file.abort();
    throw error;
  }
  await file.commit();
}

/** fsync of a directory, so a rename in it survives a crash; skipped where directories cannot be opened (Windows). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // not supported on this platform or file system: the rename itself is still atomic
  } finally {
    await handle?.close().catch(() => {});
  }
}
