// `downpour data synth-ctr --rows N --features 2^k --out FILE`: writes synthetic click-log rows with a known sparse
// logistic teacher (src/data/synth-ctr.ts) as libsvm, with FILE.teacher.json beside it, and optionally a held-out file
// of the rows after them (--test-rows M --test-out FILE2); prints what it wrote and the best log-loss any model can
// reach on it. Every file is written through a temp file and renamed, and all outputs are checked before any work.
import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { SYNTH_CTR_FILE_DEFAULTS, type SynthCtrTeacherFile, teacherPathFor, writeSynthCtrLibsvm } from "../../data/synth-ctr-file.js";
import { SYNTH_CTR_DEFAULTS, SYNTH_CTR_MAX_FEATURES, SynthCtr } from "../../data/synth-ctr.js";
import { formatBytes } from "../../util/bytes.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { checkOutputs, namedFile, type NamedFile } from "../outputs.js";
import { parseFilePath } from "../parse.js";

/** The flags of `data synth-ctr`; unset ones take SYNTH_CTR_DEFAULTS (src/data/synth-ctr.ts). */
export interface SynthCtrFlags {
  rows: number;
  out: string;
  features?: number;
  perExample?: number;
  noise?: number;
  seed?: number;
  clickRate?: number;
  zipf?: number;
  teacherDensity?: number;
  teacherScale?: number;
  /** Values in (0, 1] instead of 1. */
  realValues?: boolean;
  /** Held-out rows (the rows after --rows), written to testOut. */
  testRows?: number;
  testOut?: string;
  json?: boolean;
}

/** A file written: its absolute path, its sidecar's, and the sidecar's contents. */
export type SynthCtrWritten = SynthCtrTeacherFile & { path: string; teacherPath: string };

export interface SynthCtrResult {
  train: SynthCtrWritten;
  test?: SynthCtrWritten;
}

/** "2^20" or "1048576": a feature count in [1, 2^30]. */
export function parseFeatureCount(text: string): number {
  const trimmed = text.trim();
  const power = /^2\s*(?:\^|\*\*)\s*(\d+)$/.exec(trimmed);
  const value = power ? 2 ** Number(power[1]) : /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!(value >= 1 && value <= SYNTH_CTR_MAX_FEATURES)) throw new InvalidArgumentError("expected a feature count like 2^20 or 1048576, from 1 to 2^30.");
  return value;
}

/** A parser of integers in [min, max]. */
function integerIn(min: number, max: number, what: string): (text: string) => number {
  return (text) => {
    const value = /^\s*[+-]?\d+\s*$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) throw new InvalidArgumentError(`expected ${what}.`);
    return value;
  };
}

/** A parser of numbers in a range; `low`/`high` say whether each end is included. */
function numberIn(min: number, max: number, what: string, low: "[" | "(" = "[", high: "]" | ")" = "]"): (text: string) => number {
  return (text) => {
    const value = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : NaN;
    const ok = (low === "[" ? value >= min : value > min) && (high === "]" ? value <= max : value < max);
    if (!ok) throw new InvalidArgumentError(`expected ${what}.`);
    return value;
  };
}

/** Refuses flag combinations the parsers cannot see: a held-out count without its file (or the reverse), a click rate the noise cannot give. */
function checkCombinations(flags: SynthCtrFlags): void {
  if (flags.rows === undefined || flags.out === undefined) throw new CliError("data synth-ctr needs --rows <n> and --out <file>");
  if ((flags.testRows === undefined) !== (flags.testOut === undefined)) {
    throw new CliError(flags.testRows === undefined ? "--test-out needs --test-rows <n>: how many held-out rows to write" : "--test-rows needs --test-out <file>: where to write the held-out rows");
  }
  const noise = flags.noise ?? SYNTH_CTR_DEFAULTS.noise;
  const clickRate = flags.clickRate ?? SYNTH_CTR_DEFAULTS.clickRate;
  if (!(clickRate > noise && clickRate < 1 - noise)) {
    const rate = flags.clickRate === undefined ? `the default --click-rate ${clickRate}` : `--click-rate ${clickRate}`;
    throw new CliError(`${rate} cannot be reached with --noise ${noise}: labels flipped with probability ${noise} click at a rate in (${noise}, ${1 - noise})`);
  }
}

/** The data files and their sidecars, as checkOutputs names them. */
function outputFiles(flags: SynthCtrFlags, cwd: string): NamedFile[] {
  const files = [["--out", flags.out] as const, ...(flags.testOut === undefined ? [] : [["--test-out", flags.testOut] as const])];
  return files.flatMap(([flag, typed]) => {
    const path = resolve(cwd, typed);
    const sidecar = { label: `the teacher sidecar of ${flag} ${typed} (${teacherPathFor(typed)})`, typed: teacherPathFor(typed), path: teacherPathFor(path) };
    return [namedFile(flag, flag, typed, path), sidecar];
  });
}

/** Writes the training file (rows 0..rows-1) and the held-out one (the next testRows rows), then prints them. */
export async function runSynthCtr(flags: SynthCtrFlags, io: CliIO): Promise<SynthCtrResult> {
  checkCombinations(flags);
  await checkOutputs(outputFiles(flags, io.cwd), []);
  const generator = new SynthCtr({
    seed: flags.seed,
    features: flags.features,
    perExample: flags.perExample,
    noise: flags.noise,
    clickRate: flags.clickRate,
    zipfExponent: flags.zipf,
    teacherDensity: flags.teacherDensity,
    teacherScale: flags.teacherScale,
    values: flags.realValues ? "real" : "binary",
  });
  const write = async (typed: string, start: number, rows: number): Promise<SynthCtrWritten> => {
    const path = resolve(io.cwd, typed);
    const teacher = await writeSynthCtrLibsvm(path, generator, { rows, start, chunkRows: SYNTH_CTR_FILE_DEFAULTS.chunkRows });
    return { path, teacherPath: teacherPathFor(path), ...teacher };
  };
  const train = await write(flags.out, 0, flags.rows);
  const test = flags.testOut === undefined ? undefined : await write(flags.testOut, flags.rows, flags.testRows!);
  const result: SynthCtrResult = { train, ...(test ? { test } : {}) };
  io.stdout(flags.json ? `${JSON.stringify(result, null, 2)}\n` : describe(train, flags.out) + (test ? describe(test, flags.testOut!) : ""));
  return result;
}

/** "2^20" for powers of two, else the number. */
function featuresText(features: number): string {
  const k = Math.log2(features);
  return Number.isInteger(k) ? `2^${k}` : String(features);
}

/** What was written to `typed` (the path as given), in three lines. */
function describe(w: SynthCtrWritten, typed: string): string {
  return [
    `wrote ${typed}: rows ${w.start}..${w.start + w.rows - 1} (${w.rows}), ${featuresText(w.features)} features, ${w.meanActive.toFixed(1)} active per row, ${formatBytes(w.bytes)}`,
    `  click rate ${w.clickRate.toFixed(4)}; bestLogLoss ${w.bestLogLoss.toFixed(5)} (the teacher's on these labels ${w.teacherLogLoss.toFixed(5)}, a constant's ${w.constantLogLoss.toFixed(5)})`,
    `  teacher: ${teacherPathFor(typed)}`,
    "",
  ].join("\n");
}

const SYNTH_CTR_HELP = `
Rows are a pure function of (--seed, row index): the same flags write the same bytes, and --test-out holds the rows
after the training rows (same teacher, unseen examples). libsvm indices are 1-based (feature id + 1), labels 0/1.
FILE.teacher.json records the settings, the teacher's bias, the measured click rate and bestLogLoss: the mean binary
entropy of each row's true label probability, the lowest log-loss any model can expect on the file.

Examples:
  downpour data synth-ctr --rows 1000000 --features 2^20 --out train.svm --test-rows 100000 --test-out test.svm
  downpour data synth-ctr --rows 5000 --features 2^8 --per-example 10 --out small.svm --json`;

/** Adds `data synth-ctr` to the `data` command. */
export function registerSynthCtr(data: Command, io: CliIO): void {
  const d = SYNTH_CTR_DEFAULTS;
  data
    .command("synth-ctr")
    .description("write synthetic click-log data (libsvm) from a known sparse logistic teacher, and the best log-loss reachable on it")
    .requiredOption("--rows <n>", "training rows to write", integerIn(1, 2 ** 40, "a row count, an integer >= 1"))
    .requiredOption("--out <file>", "the libsvm file to write (FILE.teacher.json goes beside it)", parseFilePath)
    .option("--features <n>", `feature count, 2^k or a number up to 2^30 (default 2^${Math.log2(d.features)})`, parseFeatureCount)
    .option("--per-example <n>", `distinct active features per row (default ${d.perExample})`, integerIn(1, 100_000, "an integer from 1 to 100000"))
    .option("--noise <p>", `probability that a label is flipped (default ${d.noise})`, numberIn(0, 0.5, "a probability in [0, 0.5)", "[", ")"))
    .option("--click-rate <r>", `fraction of 1-labels the teacher's bias is set for (default ${d.clickRate})`, numberIn(0, 1, "a fraction in (0, 1)", "(", ")"))
    .option("--seed <n>", `seed of the features, the teacher and every row (default ${d.seed})`, integerIn(0, 2 ** 32 - 1, "an integer from 0 to 4294967295"))
    .option("--zipf <s>", `power-law exponent of feature frequencies (default ${d.zipfExponent})`, numberIn(0, 10, "an exponent in (0, 10]", "(", "]"))
    .option("--teacher-density <f>", `fraction of features with a nonzero teacher weight (default ${d.teacherDensity})`, numberIn(0, 1, "a fraction in [0, 1]"))
    .option("--teacher-scale <s>", `standard deviation of the nonzero teacher weights (default ${d.teacherScale})`, numberIn(0, 1000, "a number in [0, 1000]"))
    .option("--real-values", "feature values in (0, 1] instead of 1")
    .option("--test-rows <n>", "held-out rows to write to --test-out (the rows after the training rows)", integerIn(1, 2 ** 40, "a row count, an integer >= 1"))
    .option("--test-out <file>", "the held-out libsvm file", parseFilePath)
    .option("--json", "print the two sidecars' contents (with paths) as JSON")
    .addHelpText("after", SYNTH_CTR_HELP)
    .action(async (flags: SynthCtrFlags) => {
      await runSynthCtr(flags, io);
    });
}
