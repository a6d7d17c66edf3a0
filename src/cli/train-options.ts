// The TrainOptions a train run uses (a config's "train" object overridden by the flat settings), checked early by
// the library's own rules; errors gain the source of the bad value (the flag or the config file). Also the
// warnings for settings the chosen optimizer ignores, the thread cap, and divergence advice naming the flag.
import { DownpourError } from "../errors.js";
import { resolveTrainOptions, type OptimizerKind, type ResolvedTrainOptions, type TrainOptions } from "../train/options.js";
import { TrainingError } from "../train/trainer.js";
import type { Sources } from "./config.js";
import { CliError } from "./errors.js";
import { FLAT_TRAIN_KEYS, type TrainSettings } from "./settings.js";

/** settings.train, then each flat training setting that is set; --convergence-window keeps train.convergence's minImprovement. */
export function trainOptionsOf(settings: TrainSettings): TrainOptions {
  const options: TrainOptions = { ...settings.train };
  for (const key of FLAT_TRAIN_KEYS) {
    if (settings[key] !== undefined) (options as Record<string, unknown>)[key] = settings[key];
  }
  if (settings.convergenceWindow !== undefined) {
    options.convergence = { ...settings.train?.convergence, window: settings.convergenceWindow };
  }
  return options;
}

/** The options with defaults applied (threads default to `cores`); a TrainOptionsError names the field and its source. */
export function checkTrainOptions(options: TrainOptions, sources: Sources, cores: number): ResolvedTrainOptions {
  try {
    return resolveTrainOptions(options, cores);
  } catch (error) {
    const field = /^([\w.]+) must/.exec((error as Error).message)?.[1];
    const alias = field === "convergence.window" ? "convergenceWindow" : field;
    throw withSource(error, alias && (sources[alias] ?? sources[`train.${field?.split(".")[0]}`]));
  }
}

/**
 * The same error (class and fields kept), its message saying where the offending value was set: "--epochs must be
 * a positive integer, got 0" when the message starts with the option's own name (TrainOptionsError.option), else
 * "--dropout: layers[0].dropout must be ...".
 */
export function withSource(error: unknown, source: string | undefined): unknown {
  if (!source || !(error instanceof DownpourError)) return error;
  const option = (error as { option?: unknown }).option;
  const named = typeof option === "string" && error.message.startsWith(`${option} `);
  error.message = named ? `${source}${error.message.slice(option.length)}` : `${source}: ${error.message}`;
  return error;
}

/** The optimizer fields each update rule uses; a field given for another rule is ignored by the library. */
const OPTIMIZER_FIELDS = { momentum: ["sgd"], beta1: ["adam"], beta2: ["adam"], epsilon: ["adagrad", "adam"] } as const satisfies Record<
  string,
  readonly OptimizerKind[]
>;

/** Where a training option was set: its flag or flat config key, else the config's "train" object; undefined when defaulted. */
export function trainSource(sources: Sources, field: string): string | undefined {
  return sources[field] ?? sources[`train.${field}`];
}

/** Warnings for optimizer settings the chosen update rule ignores ("--optimizer adam does not use --momentum ..."). */
export function ignoredOptimizerSettings(resolved: Pick<ResolvedTrainOptions, "optimizer">, sources: Sources): string[] {
  const optimizerSource = trainSource(sources, "optimizer");
  const optimizer = !optimizerSource
    ? `the default optimizer ${resolved.optimizer}`
    : optimizerSource.startsWith("--")
      ? `${optimizerSource} ${resolved.optimizer}`
      : `optimizer ${resolved.optimizer} (${optimizerSource})`;
  return Object.entries(OPTIMIZER_FIELDS).flatMap(([field, users]) => {
    const source = trainSource(sources, field);
    if (!source || (users as readonly string[]).includes(resolved.optimizer)) return [];
    return [`${optimizer} does not use ${source} (only ${users.join(" and ")} ${users.length === 1 ? "does" : "do"}); it is ignored`];
  });
}

/**
 * More threads than `cores` run many times slower: unless `oversubscribe`, the thread count is capped to `cores`
 * and `warning` says so. Returns the options to train with (a copy when capped) and their resolved form.
 */
export function capThreads(
  options: TrainOptions, resolved: ResolvedTrainOptions, cores: number, oversubscribe: boolean, sources: Sources,
): { options: TrainOptions; resolved: ResolvedTrainOptions; warning?: string } {
  if (oversubscribe || resolved.threads <= cores) return { options, resolved };
  const source = trainSource(sources, "threads") ?? "--threads";
  const warning = `${source} ${resolved.threads} is more than the ${cores} core${cores === 1 ? "" : "s"} here, which slows training down; using ${cores} (--oversubscribe keeps ${resolved.threads})`;
  return { options: { ...options, threads: cores }, resolved: { ...resolved, threads: cores }, warning };
}

/**
 * A training run that diverged (the library's TrainingError with reason "diverged") as a CliError whose advice
 * names the setting to change ("try a smaller --learning-rate"); any other error is returned as it is.
 */
export function asCliTrainingError(error: unknown, sources: Sources): unknown {
  if (!(error instanceof TrainingError) || (error as { reason?: string }).reason !== "diverged") return error;
  const flag = trainSource(sources, "learningRate") ?? "--learning-rate";
  return new CliError(error.message.replace(/\blearning rate\b/g, flag), { cause: error });
}
