// The settings every process of a `downpour sparse` job shares (the job, the shards, the model's shape and the
// shards' optimizer), as flags, turned into SparseJobOptions; and a task's rows: its share of a libsvm file (rows
// r % tasks == task), streamed chunk by chunk so a file larger than memory trains, each chunk's labels checked.
import { type Command, InvalidArgumentError, Option } from "commander";
import { SPARSE_DOWNPOUR_DEFAULTS, type SparseJobOptions, type SparseSource } from "../cluster/sparse-downpour.js";
import { SPARSE_ROW_DEFAULTS } from "../cluster/sparse-rows.js";
import { checkJobId } from "../cluster/subjects.js";
import { streamLibsvmSparse } from "../data/libsvm-stream.js";
import type { SparseDataset } from "../data/sparse.js";
import type { LayerSpec, NetworkSpec } from "../model/spec.js";
import { parseFeatureCount } from "./commands/synth-ctr.js";
import { CliError } from "./errors.js";

/** The job's flags; defaults in SPARSE_JOB_FLAG_DEFAULTS. */
export interface SparseJobFlags {
  job?: string;
  shards?: number;
  features?: number;
  model?: "mlp" | "logistic";
  hidden?: number[];
  activation?: "relu" | "tanh" | "sigmoid";
  seed?: number;
  learningRate?: number;
  initScale?: number;
  nats?: string;
}

export const SPARSE_JOB_FLAG_DEFAULTS = Object.freeze({
  job: "sparse",
  shards: 2,
  model: "mlp" as const,
  hidden: [64],
  activation: "relu" as const,
  seed: 1,
});

/** A parser of integers in [min, max]. */
export function integerIn(min: number, max: number, what: string): (text: string) => number {
  return (text) => {
    const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
    if (!(value >= min && value <= max)) throw new InvalidArgumentError(`expected ${what}.`);
    return value;
  };
}

/** A parser of positive numbers. */
export function positiveNumber(text: string): number {
  const value = /^\s*(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!(value > 0 && Number.isFinite(value))) throw new InvalidArgumentError("expected a positive number.");
  return value;
}

function hiddenUnits(text: string): number[] {
  const units = text.split(",").map((part) => (/^\s*\d+\s*$/.test(part) ? Number(part) : Number.NaN));
  if (units.length === 0 || units.some((u) => !(u >= 1 && u <= 65_536))) throw new InvalidArgumentError("expected hidden layer sizes like 64 or 64,32 (each 1 to 65536).");
  return units;
}

/** Adds the job's flags to `command`. */
export function addSparseJobFlags(command: Command, natsHelp: string): Command {
  const d = SPARSE_JOB_FLAG_DEFAULTS;
  return command
    .option("--job <id>", `the job's id, the same on every process (default ${d.job})`)
    .option("--shards <n>", `parameter-server shards (default ${d.shards})`, integerIn(1, 4096, "a shard count from 1 to 4096"))
    .requiredOption("--features <n>", "rows of the sparse layer: the libsvm feature count, 2^k or a number up to 2^30", parseFeatureCount)
    .addOption(new Option("--model <kind>", `mlp (hidden layers, then one sigmoid output) or logistic (default ${d.model})`).choices(["mlp", "logistic"]))
    .option("--hidden <units>", `mlp: hidden layer sizes, e.g. 64 or 64,32 (default ${d.hidden.join(",")}); the first is the sparse layer's width`, hiddenUnits)
    .addOption(new Option("--activation <f>", `mlp: the hidden layers' activation (default ${d.activation})`).choices(["relu", "tanh", "sigmoid"]))
    .option("--seed <n>", `seed of the initial parameters (default ${d.seed})`, integerIn(0, 2 ** 31 - 1, "an integer from 0 to 2^31 - 1"))
    .option("--learning-rate <r>", `the shards' Adagrad rate (default ${SPARSE_DOWNPOUR_DEFAULTS.learningRate})`, positiveNumber)
    .option("--init-scale <s>", `initial sparse rows are uniform in [-s, s] (default ${SPARSE_ROW_DEFAULTS.initScale})`, positiveNumber)
    .option("--nats <url>", natsHelp);
}

/** The network the flags describe: the sparse layer, then the hidden layers, then one sigmoid output. */
export function sparseSpecOf(flags: SparseJobFlags & { features: number }): NetworkSpec {
  const d = SPARSE_JOB_FLAG_DEFAULTS;
  const model = flags.model ?? d.model;
  if (model === "logistic" && flags.hidden !== undefined) throw new CliError("--hidden is for --model mlp; --model logistic has no hidden layer");
  const hidden: LayerSpec[] = model === "logistic" ? [] : (flags.hidden ?? d.hidden).map((units) => ({ units, activation: flags.activation ?? d.activation }));
  return { inputs: flags.features, sparseInputs: true, seed: flags.seed ?? d.seed, layers: [...hidden, { units: 1, activation: "sigmoid" }] };
}

/** The job's options from its flags (the job id checked). */
export function sparseJobOf(flags: SparseJobFlags): SparseJobOptions {
  if (flags.features === undefined) throw new CliError("--features is needed: the sparse layer's rows (the libsvm feature count)");
  const job = flags.job ?? SPARSE_JOB_FLAG_DEFAULTS.job;
  try {
    checkJobId(job);
  } catch (error) {
    throw new CliError(`--job ${job}: ${(error as Error).message}`, { cause: error });
  }
  return {
    job, shards: flags.shards ?? SPARSE_JOB_FLAG_DEFAULTS.shards, spec: sparseSpecOf({ ...flags, features: flags.features }),
    ...(flags.learningRate === undefined ? {} : { learningRate: flags.learningRate }),
    ...(flags.initScale === undefined ? {} : { initScale: flags.initScale }),
  };
}

/** Refuses (CliError naming the file and line) a chunk whose labels are not 0 or 1. */
function checkLabels(chunk: SparseDataset, path: string, flag: string): SparseDataset {
  for (let r = 0; r < chunk.size; r++) {
    const y = chunk.y[r]!;
    if (y !== 0 && y !== 1) throw new CliError(`${flag} ${path}: line ${chunk.lines?.[r] ?? "?"}: label ${y}, expected 0 or 1 (a click or not)`);
  }
  return chunk;
}

/** Task `task` of `tasks`'s rows of the libsvm file at `path` (rows r % tasks == task), streamed anew per epoch. */
export function taskSource(path: string, flag: string, features: number, task = 0, tasks = 1, chunkRows?: number): SparseSource {
  return {
    async *chunks() {
      const select = tasks === 1 ? undefined : (row: number) => row % tasks === task;
      for await (const chunk of streamLibsvmSparse(path, { features, ...(select ? { select } : {}), ...(chunkRows ? { chunkRows } : {}) })) yield checkLabels(chunk, path, flag);
    },
  };
}
