// Helpers of the CLI tests: an io that captures stdout and stderr, temp dirs, the shared Pima CSV, the built binary.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { CliIO } from "../../src/cli/io.js";
import { sharedData } from "../support/paths.js";

export { tempDir, writeTemp } from "../data/temp.js";

/** A CliIO writing into strings, running in `cwd` with only `env` (no terminal: progress prints lines). */
export function captureIO(cwd: string, env: Record<string, string | undefined> = {}): CliIO & { out(): string; err(): string } {
  let out = "";
  let err = "";
  return {
    stdout: (text) => {
      out += text;
    },
    stderr: (text) => {
      err += text;
    },
    env,
    cwd,
    out: () => out,
    err: () => err,
  };
}

/**
 * The shared Pima Indians Diabetes CSV (768 rows, 8 features, 0/1 label, no header). Call it inside a test or hook:
 * when the file is absent it throws sharedData()'s MissingSharedDataError, so the tests fail saying what is missing.
 */
export function pimaCsv(): string {
  return readFileSync(sharedData("pima-diabetes.csv"), "utf8");
}

/** The built CLI entry point of the same build as this file (this is <out>/test/cli/helpers.js; it is <out>/src/cli/main.js). */
export function cliMain(): string {
  return fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
}

/** The rows of a CSV text (blank lines dropped), each split into fields. */
export function csvRows(text: string): string[][] {
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => line.split(","));
}
