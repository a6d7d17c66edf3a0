// Helpers of the CLI tests: an io that captures stdout and stderr, temp dirs, the shared Pima CSV, the built binary.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CliIO } from "../../src/cli/io.js";
import { sharedDataDir } from "../data/paths.js";

export { tempDir, writeTemp } from "../data/temp.js";

/** A CliIO writing into strings, running in `cwd` with only `env` (no terminal: progress prints lines). */
export function captureIO(cwd: string, env: Record<string, string | undefined> = {}): CliIO & { out(): string; err(): string } {
  let out = "";
  let err = "";
  return {
    stdout: (text) => void (out += text),
    stderr: (text) => void (err += text),
    env,
    cwd,
    out: () => out,
    err: () => err,
  };
}

/** The shared Pima Indians Diabetes CSV (768 rows, 8 features, 0/1 label, no header), or undefined when absent. */
export function pimaCsv(): string | undefined {
  const path = join(sharedDataDir(), "pima-diabetes.csv");
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

/** The built CLI entry point of the same build as this file (this is <out>/test/cli/helpers.js; it is <out>/src/cli/main.js). */
export function cliMain(): string {
  return fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
}

/** The rows of a CSV text (blank lines dropped), each split into fields. */
export function csvRows(text: string): string[][] {
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => line.split(","));
}
