// Where the CLI's commands write and what they read from their surroundings, injectable so tests need no process.
import { cwd } from "node:process";

/** The outputs, environment and working directory a command runs with. */
export interface CliIO {
  /** Results: tables, JSON, predictions. */
  readonly stdout: (text: string) => void;
  /** Diagnostics: notes, warnings, per-epoch lines, errors. */
  readonly stderr: (text: string) => void;
  /** stderr as a terminal when it is one (progress bars draw on it); undefined otherwise. */
  readonly terminal?: NodeJS.WriteStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths resolve against this directory. */
  readonly cwd: string;
}

/** The real process's streams, environment and working directory. */
export function processIO(): CliIO {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    terminal: process.stderr.isTTY ? process.stderr : undefined,
    env: process.env,
    cwd: cwd(),
  };
}
