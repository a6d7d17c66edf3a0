// Where the CLI's commands write and what they read from their surroundings, injectable so tests need no process.
import { isAbsolute, resolve } from "node:path";
import { cwd } from "node:process";

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
  };
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
