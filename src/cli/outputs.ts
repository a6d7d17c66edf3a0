// The files a command will write, checked before any work starts (each a file path in a writable folder, none an
// input or another output), and the trained model written so that a failed write never loses it.
import { constants } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { CliError } from "./errors.js";

/** A file a command reads or writes: `label` is how messages name it ("--save out/m.dpnn"), `typed` the path as
 *  given, `path` the absolute path. */
export interface NamedFile {
  readonly label: string;
  readonly typed: string;
  readonly path: string;
  /** An input read whole before any output is written, which outputs may replace (the --resume file). */
  readonly replaceable?: boolean;
}

/**
 * A file at `path` set by `source` (a flag, or a config file's key) to `typed`; when `source` is undefined the
 * value is `flag`'s default, and the label says so ("--save downpour-model.dpnn (the default)").
 */
export function namedFile(flag: string, source: string | undefined, typed: string, path: string, defaultNote = "the default"): NamedFile {
  return { label: source === undefined ? `${flag} ${typed} (${defaultNote})` : `${source} ${typed}`, typed, path };
}

/** A file as found on disk: its real path (of the file, or of its folder plus its name) and its identity when it exists. */
interface Identity {
  readonly real: string;
  readonly dev?: number;
  readonly ino?: number;
}

async function identityOf(path: string): Promise<Identity> {
  const found = await stat(path).catch(() => undefined);
  if (found) return { real: await realpath(path).catch(() => path), dev: found.dev, ino: found.ino };
  const folder = await realpath(dirname(path)).catch(() => dirname(path));
  return { real: join(folder, basename(path)) };
}

/** Same file: the same device and inode when both exist (hard links, symlinks), else the same real path. */
function sameFile(a: Identity, b: Identity): boolean {
  if (a.ino !== undefined && b.ino !== undefined) return a.dev === b.dev && a.ino === b.ino;
  return a.real === b.real;
}

/** What a path that exists but is not a regular file is, in plain words. */
function kindOf(stats: Awaited<ReturnType<typeof stat>>): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a named pipe (FIFO)";
  if (stats.isSocket()) return "a socket";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  return "not a regular file";
}

/** The output may be written: it is not a folder, device, FIFO or socket, and its folder exists and is writable. */
async function checkWritable(output: NamedFile): Promise<void> {
  if (/[/\\]$/.test(output.typed)) throw new CliError(`${output.label}: names a folder, expected a file path`);
  const existing = await stat(output.path).catch(() => undefined);
  const kind = existing && kindOf(existing);
  if (kind) throw new CliError(`${output.label}: is ${kind}, expected a file path`);
  const folder = dirname(output.path);
  const shown = folderAsTyped(output.typed, folder);
  const folderStats = await stat(folder).catch(() => undefined);
  if (!folderStats) throw new CliError(`${output.label}: the folder ${shown} does not exist`);
  if (!folderStats.isDirectory()) throw new CliError(`${output.label}: ${shown} is not a folder`);
  try {
    await access(folder, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new CliError(`${output.label}: the folder ${shown} is not writable (${(error as NodeJS.ErrnoException).code ?? "no access"})`, {
      cause: error,
    });
  }
}

/** The folder as the user typed it ("out" for "--save out/m.dpnn"), else (a bare file name) the absolute folder. */
function folderAsTyped(typed: string, folder: string): string {
  return /[/\\]/.test(typed) ? dirname(typed) : folder;
}

/**
 * Refuses, before any work starts, outputs that would destroy a file: an output that is an input (compared by real
 * path, and by device and inode when both exist, so symlinks and hard links count) or another output, or that is
 * a directory, device, FIFO or socket; and outputs whose folder is missing or not writable. Creates nothing.
 */
export async function checkOutputs(outputs: readonly NamedFile[], inputs: readonly NamedFile[]): Promise<void> {
  for (const output of outputs) await checkWritable(output);
  const outs = await Promise.all(outputs.map(async (file) => ({ file, id: await identityOf(file.path) })));
  const ins = await Promise.all(inputs.map(async (file) => ({ file, id: await identityOf(file.path) })));
  for (const [i, out] of outs.entries()) {
    const input = ins.find((candidate) => !candidate.file.replaceable && sameFile(out.id, candidate.id));
    if (input) throw new CliError(`${out.file.label}: would overwrite the input ${input.file.label}; choose another file`);
    const other = outs.slice(0, i).find((candidate) => sameFile(out.id, candidate.id));
    if (other) throw new CliError(`${out.file.label} and ${other.file.label} are the same file: give each output its own file`);
  }
}

/** The trained model could not be written where asked; it was written to `keptAt` instead (exit 1, nothing lost). */
export class ModelRescuedError extends CliError {
  constructor(
    message: string,
    readonly path: string,
    readonly keptAt: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Where a model that cannot be written to its path is kept: the OS temp folder, else the working directory. */
export function rescuePlaces(cwd: string): string[] {
  return [tmpdir(), cwd];
}

/** "downpour-rescued-2024-05-01T12-00-00-000Z-1234.dpnn": a new name, unlikely to exist. */
function rescueName(): string {
  return `downpour-rescued-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}.dpnn`;
}

/**
 * Writes the model with `write(path)`. When that fails (the folder was removed or made read-only during training),
 * writes it to a new file in the first of `places` that takes it and rejects with ModelRescuedError naming both
 * files; when no place takes it, rejects with the first error (a CliError naming `label`).
 */
export async function writeModelOrRescue(
  label: string,
  path: string,
  write: (path: string) => Promise<void>,
  places: readonly string[],
): Promise<void> {
  let failure: unknown;
  try {
    await write(path);
    return;
  } catch (error) {
    failure = error;
  }
  const reason = (failure as Error).message;
  for (const place of places) {
    const keptAt = resolve(place, rescueName());
    const kept = await write(keptAt).then(
      () => true,
      () => false,
    );
    if (kept) {
      throw new ModelRescuedError(
        `${label}: cannot write the model (${reason}); the trained model was saved to ${keptAt} instead`,
        path,
        keptAt,
        {
          cause: failure,
        },
      );
    }
  }
  throw new CliError(`${label}: cannot write the model (${reason}), nor keep it in ${places.join(" or ")}; the trained model is lost`, {
    cause: failure,
  });
}
