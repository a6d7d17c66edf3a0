// Where the CLI's commands write and what they read from their surroundings, injectable so tests need no process;
// and the process's Ctrl-C handling (a command may catch the first one to stop cleanly; temp files never stay).
import { isAbsolute, resolve } from "node:path";
import { cwd } from "node:process";
import { removeLiveTempFiles } from "../node/files.js";

/** Exit status after Ctrl-C (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;
/** Exit status after SIGTERM (128 + 15). */
export const EXIT_TERMINATED = 143;

/** Ctrl-C (SIGINT) as a command sees it. */
export interface Interrupts {
  /**
   * Until the returned function is called, the next Ctrl-C calls `onInterrupt` instead of ending the process (once:
   * a second Ctrl-C ends it at once). Without a caught interrupt, Ctrl-C ends the process at once; either way the
   * temp files of unfinished atomic writes are removed first.
   */
  catchNext(onInterrupt: () => void): () => void;
}

/** The outputs, environment and working directory a command runs with. */
export interface CliIO {
  /** Results: tables, JSON, predictions. */
  readonly stdout: (text: string) => void;
  /** Diagnostics: notes, warnings, per-epoch lines, errors. */
  readonly stderr: (text: string) => void;
  /** stderr as a terminal when it is one (progress bars draw on it); undefined otherwise. */
  readonly terminal?: NodeJS.WriteStream;
  /** True when stdout is a terminal (the summary then shows every epoch). */
  readonly stdoutIsTerminal?: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths resolve against this directory. */
  readonly cwd: string;
  /** Ctrl-C of the real process; absent in tests that run commands in-process (nothing then interrupts them). */
  readonly interrupts?: Interrupts;
}

/** A path to read: as typed when `dir` is the process's own directory (so messages echo the user's spelling), else resolved against it. */
export function readablePath(dir: string, path: string): string {
  return isAbsolute(path) || dir === cwd() ? path : resolve(dir, path);
}

export function inputPath(io: CliIO, path: string): string {
  return readablePath(io.cwd, path);
}

/** The real process's streams, environment and working directory; a closed pipe on either stream ends it quietly. */
export function processIO(): CliIO {
  exitQuietlyOnEpipe(process.stdout);
  exitQuietlyOnEpipe(process.stderr);
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    terminal: process.stderr.isTTY ? process.stderr : undefined,
    stdoutIsTerminal: process.stdout.isTTY === true,
    env: process.env,
    cwd: cwd(),
    interrupts: processInterrupts(),
  };
}

/**
 * Installs the process's SIGINT and SIGTERM handlers (once per call; the CLI calls it once, from processIO). SIGINT
 * calls the caught handler if one is set, else exits with EXIT_INTERRUPTED; SIGTERM exits with EXIT_TERMINATED.
 * Before exiting, the temp files of atomic writes in progress are removed, so no partial hidden file stays.
 */
export function processInterrupts(): Interrupts {
  let caught: (() => void) | undefined;
  process.on("SIGINT", () => {
    const handler = caught;
    caught = undefined;
    if (handler) handler();
    else exitAtOnce(EXIT_INTERRUPTED, "interrupted");
  });
  process.on("SIGTERM", () => exitAtOnce(EXIT_TERMINATED, "terminated"));
  return {
    catchNext(onInterrupt) {
      caught = onInterrupt;
      return () => {
        if (caught === onInterrupt) caught = undefined;
      };
    },
  };
}

function exitAtOnce(code: number, what: string): never {
  removeLiveTempFiles();
  process.stderr.write(`${process.stderr.isTTY ? "\n" : ""}downpour: ${what}\n`);
  process.exit(code);
}

/**
 * When the reader of `stream` goes away (`downpour --help | head`), writes fail with EPIPE: exit at once, with the
 * exit code set so far, instead of an unhandled 'error' event's stack trace. Other errors are rethrown.
 */
export function exitQuietlyOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
  });
}
