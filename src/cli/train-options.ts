// The TrainOptions a train run uses (a config's "train" object overridden by the flat settings), checked early by
// the library's own rules; errors gain the source of the bad value (the flag or the config file).
import { DownpourError } from "../errors.js";
import { resolveTrainOptions, type ResolvedTrainOptions, type TrainOptions } from "../train/options.js";
import type { Sources } from "./config.js";
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

/** The same error, its message prefixed with where the offending value was set ("--epochs: ..."). */
export function withSource(error: unknown, source: string | undefined): unknown {
  if (!source || !(error instanceof DownpourError)) return error;
  const Class = error.constructor as new (message: string, options?: { cause?: unknown }) => DownpourError;
  return new Class(`${source}: ${error.message}`, { cause: error });
}
