// Training hyper-parameters with their documented defaults, and their validation (errors name the field; an
// unknown field is refused with the nearest known name).
import { DownpourError } from "../errors.js";
import { didYouMean } from "./suggest.js";

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
  /** What a NaN or infinite mini-batch loss does: "error" stops training with a TrainingError (reason "diverged")
   *  naming the epoch and mini-batch; "continue" trains on (the reports' loss is then NaN). Default "error". */
  nonFiniteLoss?: NonFiniteLoss;
  /** Early stopping: stop once the validation loss has not improved for this many epochs in a row (the report
   *  of the last epoch says stop "early-stopped"). Needs a validation set. Default off. */
  patience?: number;
}

/** Choices of TrainOptions.nonFiniteLoss. */
export const NON_FINITE_LOSS = ["error", "continue"] as const;
export type NonFiniteLoss = (typeof NON_FINITE_LOSS)[number];

/** Options with every default applied. */
export type ResolvedTrainOptions = Required<Omit<TrainOptions, "convergence" | "maxIterations" | "patience">> & {
  maxIterations: number;
  convergence: { window: number; minImprovement: number } | undefined;
  patience: number | undefined;
};

/** A training option (or hook) that is unknown, of the wrong type or out of range; `option` names it. */
export class TrainOptionsError extends DownpourError {
  /** The option at fault ("learningRate", "convergence.window"), when one is. */
  readonly option: string | undefined;

  constructor(message: string, options: { cause?: unknown; option?: string } = {}) {
    super(message, options);
    this.option = options.option;
  }
}

/** Every field of TrainOptions (a Record, so a field added to TrainOptions fails the build until it is listed). */
const TRAIN_OPTION_FIELDS: Record<keyof TrainOptions, true> = {
  optimizer: true,
  learningRate: true,
  learningRateDecay: true,
  momentum: true,
  l2: true,
  beta1: true,
  beta2: true,
  epsilon: true,
  batchSize: true,
  epochs: true,
  maxIterations: true,
  threads: true,
  mode: true,
  portion: true,
  shuffle: true,
  seed: true,
  convergence: true,
  nonFiniteLoss: true,
  patience: true,
};

/** The names of the TrainOptions fields, in their documented order. */
export const TRAIN_OPTION_NAMES = Object.keys(TRAIN_OPTION_FIELDS) as readonly (keyof TrainOptions)[];

/**
 * Throws TrainOptionsError unless `options` is an object whose every key is a training option or one of `hooks`
 * (the other names the caller accepts beside them, listed apart in the message): `unknown training option "lr"
 * (did you mean "learningRate"?); the options are ...`.
 */
export function checkOptionNames(options: unknown, hooks: readonly string[] = [], what = "training options"): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TrainOptionsError(`${what} must be an object, got ${describe(options)}`);
  }
  const known = [...TRAIN_OPTION_NAMES, ...hooks];
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const hookList = hooks.length ? `; the hooks are ${hooks.join(", ")}` : "";
    throw new TrainOptionsError(
      `unknown training option "${key}"${didYouMean(key, known)}; the options are ${TRAIN_OPTION_NAMES.join(", ")}${hookList}`,
      { option: key },
    );
  }
}

function describe(value: unknown): string {
  if (value === undefined || typeof value === "number") return String(value);
  if (typeof value === "function") return "a function";
  return JSON.stringify(value) ?? String(value);
}

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
  nonFiniteLoss: "error",
} as const satisfies Omit<Required<TrainOptions>, "learningRate" | "threads" | "maxIterations" | "convergence" | "patience"> & {
  learningRate: Record<OptimizerKind, number>;
};

const D = TRAIN_DEFAULTS;

function check(field: string, value: number, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== "number" || !ok(value))
    throw new TrainOptionsError(`${field} must be ${expected}, got ${describe(value)}`, { option: field });
  return value;
}

function choice<T extends string>(field: string, value: T, choices: readonly T[]): T {
  if (!choices.includes(value))
    throw new TrainOptionsError(`${field} must be ${choices.map((c) => `"${c}"`).join(" or ")}, got ${describe(value)}`, { option: field });
  return value;
}

function flag(field: string, value: boolean): boolean {
  if (typeof value !== "boolean") throw new TrainOptionsError(`${field} must be true or false, got ${describe(value)}`, { option: field });
  return value;
}

function resolveConvergence(convergence: TrainOptions["convergence"]): ResolvedTrainOptions["convergence"] {
  if (convergence === undefined) return undefined;
  if (typeof convergence !== "object" || convergence === null) {
    throw new TrainOptionsError(`convergence must be an object { window, minImprovement? }, got ${describe(convergence)}`, {
      option: "convergence",
    });
  }
  for (const key of Object.keys(convergence)) {
    if (key !== "window" && key !== "minImprovement") {
      throw new TrainOptionsError(
        `unknown option "convergence.${key}"${didYouMean(key, ["window", "minImprovement"])}; convergence holds window and minImprovement`,
        { option: `convergence.${key}` },
      );
    }
  }
  return {
    window: check("convergence.window", convergence.window, positiveInt, "a positive integer"),
    minImprovement: check(
      "convergence.minImprovement",
      convergence.minImprovement ?? 0,
      (v) => Number.isFinite(v) && v >= 0,
      "a number >= 0",
    ),
  };
}

const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;
const finitePositive = (v: number) => Number.isFinite(v) && v > 0;
const unit = (v: number) => Number.isFinite(v) && v >= 0 && v < 1;

/** Applies defaults and validates (unknown fields and wrong types are TrainOptionsErrors naming the field);
 *  `cores` is the default thread count. Does not change `options`. */
export function resolveTrainOptions(options: TrainOptions, cores: number): ResolvedTrainOptions {
  checkOptionNames(options);
  const optimizer = options.optimizer ?? D.optimizer;
  if (!OPTIMIZERS.includes(optimizer))
    throw new TrainOptionsError(`optimizer must be one of ${OPTIMIZERS.join(", ")}, got ${describe(optimizer)}`, { option: "optimizer" });
  const mode = choice("mode", options.mode ?? D.mode, ["sync", "async"]);
  const convergence = resolveConvergence(options.convergence);
  return {
    optimizer,
    mode,
    learningRate: check("learningRate", options.learningRate ?? D.learningRate[optimizer], finitePositive, "a positive number"),
    learningRateDecay: check(
      "learningRateDecay",
      options.learningRateDecay ?? D.learningRateDecay,
      (v) => Number.isFinite(v) && v > 0 && v <= 1,
      "in (0, 1]",
    ),
    momentum: check("momentum", options.momentum ?? D.momentum, unit, "in [0, 1)"),
    l2: check("l2", options.l2 ?? D.l2, (v) => Number.isFinite(v) && v >= 0, "a number >= 0"),
    beta1: check("beta1", options.beta1 ?? D.beta1, unit, "in [0, 1)"),
    beta2: check("beta2", options.beta2 ?? D.beta2, unit, "in [0, 1)"),
    epsilon: check("epsilon", options.epsilon ?? D.epsilon, finitePositive, "a positive number"),
    batchSize: check("batchSize", options.batchSize ?? D.batchSize, positiveInt, "a positive integer"),
    epochs: check("epochs", options.epochs ?? D.epochs, positiveInt, "a positive integer"),
    maxIterations: check(
      "maxIterations",
      options.maxIterations ?? Number.POSITIVE_INFINITY,
      (v) => v === Number.POSITIVE_INFINITY || positiveInt(v),
      "a positive integer",
    ),
    threads: check("threads", options.threads ?? cores, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0"),
    portion: check("portion", options.portion ?? D.portion, positiveInt, "a positive integer"),
    shuffle: flag("shuffle", options.shuffle ?? D.shuffle),
    seed: check("seed", options.seed ?? D.seed, Number.isInteger, "an integer"),
    convergence,
    nonFiniteLoss: choice("nonFiniteLoss", options.nonFiniteLoss ?? D.nonFiniteLoss, NON_FINITE_LOSS),
    patience: options.patience === undefined ? undefined : check("patience", options.patience, positiveInt, "a positive integer"),
  };
}
