// Training hyper-parameters with their documented defaults, and their validation (errors name the field).
import { DownpourError } from "../errors.js";

export const OPTIMIZERS = ["sgd", "adagrad", "adam"] as const;
export type OptimizerKind = (typeof OPTIMIZERS)[number];

/** How worker threads combine their work. */
export type TrainMode = "sync" | "async";

/** Options of local training. Every field is optional. */
export interface TrainOptions {
  /** Update rule. Default "sgd". */
  optimizer?: OptimizerKind;
  /** Step size. Default 0.1 for sgd, 0.05 for adagrad, 0.001 for adam. */
  learningRate?: number;
  /** Multiplies the learning rate after every epoch (counted over all fit() calls). Default 1 (constant). */
  learningRateDecay?: number;
  /** SGD momentum. Default 0.9 (0 disables it). */
  momentum?: number;
  /** L2 regularization (weight decay) on weights, not biases. Default 0. */
  l2?: number;
  /** Adam's decay rates. Default 0.9 and 0.999. */
  beta1?: number;
  beta2?: number;
  /** Adagrad/Adam denominator guard. Default 1e-8. */
  epsilon?: number;
  /** Samples per mini-batch (per update in sync mode). Default 64. */
  batchSize?: number;
  /** Passes over the training data. Default 10. */
  epochs?: number;
  /** Stop after this many mini-batches in all (Hama's max iteration). Default: no limit. */
  maxIterations?: number;
  /** Worker threads; 0 trains on the calling thread. Default: the hardware concurrency. */
  threads?: number;
  /** "sync": portions' gradients are combined, then applied once per mini-batch (deterministic).
   *  "async": each worker applies its portion's gradient as soon as it has it, lock-free. Default "sync". */
  mode?: TrainMode;
  /** Rows per work portion handed out from the queue; much smaller than batchSize / threads. Default 8. */
  portion?: number;
  /** Reshuffle the training data every epoch. Default true. */
  shuffle?: boolean;
  /** Seed of shuffling and dropout. Default 1. */
  seed?: number;
  /** Stop when the mean loss of the last `window` mini-batches is not below that of the window before by
   *  `minImprovement` (relative), checked every `window` batches, as Hama's convergence check. Default off. */
  convergence?: { window: number; minImprovement?: number };
}

/** Options with every default applied. */
export type ResolvedTrainOptions = Required<Omit<TrainOptions, "convergence" | "maxIterations">> & {
  maxIterations: number;
  convergence: { window: number; minImprovement: number } | undefined;
};

export class TrainOptionsError extends DownpourError {}

/** The one source of every training default (the CLI's help text is derived from it). */
export const TRAIN_DEFAULTS = {
  optimizer: "sgd",
  learningRate: { sgd: 0.1, adagrad: 0.05, adam: 0.001 },
  learningRateDecay: 1,
  momentum: 0.9,
  l2: 0,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  batchSize: 64,
  epochs: 10,
  mode: "sync",
  portion: 8,
  shuffle: true,
  seed: 1,
} as const satisfies Omit<Required<TrainOptions>, "learningRate" | "threads" | "maxIterations" | "convergence"> & {
  learningRate: Record<OptimizerKind, number>;
};

const D = TRAIN_DEFAULTS;

function check(field: string, value: number, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== "number" || !ok(value)) throw new TrainOptionsError(`${field} must be ${expected}, got ${JSON.stringify(value)}`);
  return value;
}

const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;
const finitePositive = (v: number) => Number.isFinite(v) && v > 0;
const unit = (v: number) => Number.isFinite(v) && v >= 0 && v < 1;

/** Applies defaults and validates; `cores` is the default thread count. */
export function resolveTrainOptions(options: TrainOptions, cores: number): ResolvedTrainOptions {
  const optimizer = options.optimizer ?? D.optimizer;
  if (!OPTIMIZERS.includes(optimizer)) throw new TrainOptionsError(`optimizer must be one of ${OPTIMIZERS.join(", ")}, got ${JSON.stringify(optimizer)}`);
  const mode = options.mode ?? D.mode;
  if (mode !== "sync" && mode !== "async") throw new TrainOptionsError(`mode must be "sync" or "async", got ${JSON.stringify(mode)}`);
  const convergence = options.convergence
    ? {
        window: check("convergence.window", options.convergence.window, positiveInt, "a positive integer"),
        minImprovement: check("convergence.minImprovement", options.convergence.minImprovement ?? 0, (v) => Number.isFinite(v) && v >= 0, "a number >= 0"),
      }
    : undefined;
  return {
    optimizer,
    mode,
    learningRate: check("learningRate", options.learningRate ?? D.learningRate[optimizer], finitePositive, "a positive number"),
    learningRateDecay: check("learningRateDecay", options.learningRateDecay ?? D.learningRateDecay, (v) => Number.isFinite(v) && v > 0 && v <= 1, "in (0, 1]"),
    momentum: check("momentum", options.momentum ?? D.momentum, unit, "in [0, 1)"),
    l2: check("l2", options.l2 ?? D.l2, (v) => Number.isFinite(v) && v >= 0, "a number >= 0"),
    beta1: check("beta1", options.beta1 ?? D.beta1, unit, "in [0, 1)"),
    beta2: check("beta2", options.beta2 ?? D.beta2, unit, "in [0, 1)"),
    epsilon: check("epsilon", options.epsilon ?? D.epsilon, finitePositive, "a positive number"),
    batchSize: check("batchSize", options.batchSize ?? D.batchSize, positiveInt, "a positive integer"),
    epochs: check("epochs", options.epochs ?? D.epochs, positiveInt, "a positive integer"),
    maxIterations: check("maxIterations", options.maxIterations ?? Number.POSITIVE_INFINITY, (v) => v === Number.POSITIVE_INFINITY || positiveInt(v), "a positive integer"),
    threads: check("threads", options.threads ?? cores, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0"),
    portion: check("portion", options.portion ?? D.portion, positiveInt, "a positive integer"),
    shuffle: options.shuffle ?? D.shuffle,
    seed: check("seed", options.seed ?? D.seed, Number.isInteger, "an integer"),
    convergence,
  };
}
