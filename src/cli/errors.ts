// Errors of the command line (bad settings, config files, inputs) and how any error becomes a message and exit code.
import { DownpourError } from "../errors.js";

/** A setting, flag combination or input file the command cannot use; the message names it. */
export class CliError extends DownpourError {}

/** A config file that cannot be read, is not JSON, or holds an unknown key or a value of the wrong type. */
export class ConfigError extends CliError {}

/** A command stopped by Ctrl-C after saving what it could; the message says what was kept. Exits 130. */
export class InterruptedError extends CliError {
  /** The checkpoint written before stopping, if any. */
  readonly checkpoint: string | undefined;

  constructor(message: string, options: { cause?: unknown; checkpoint?: string } = {}) {
    super(message, options);
    this.checkpoint = options.checkpoint;
  }
}

/** Exit status of a run that failed on an error (usage errors, 2, are commander's and handled in program.ts). */
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** `downpour: <message>`, then the stack and causes when DOWNPOUR_DEBUG=1. */
export function describeError(error: unknown, debug: boolean): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!debug) return `downpour: ${message}\n`;
  const lines = [`downpour: ${message}`];
  for (let e: unknown = error; e instanceof Error; e = e.cause) lines.push(e.stack ?? String(e));
  return `${lines.join("\n")}\n`;
}
