// The settings of `downpour train`: one table gives each its config-file key, flag, value type, help and default.
import { ACTIVATIONS, COSTS, INITS, type Activation, type Cost, type Init, type NetworkSpec } from "../model/spec.js";
import { OPTIMIZERS, TRAIN_DEFAULTS as D, type OptimizerKind, type TrainMode, type TrainOptions } from "../train/options.js";
import { DEFAULT_MEMORY_LIMIT_BYTES } from "../data/limits.js";
import { LIBSVM_STREAM_DEFAULTS } from "../data/libsvm-stream.js";
import { DEFAULT_ARENA_BYTES, MAX_ARENA_BYTES } from "../runtime/arena.js";
import { formatBytes } from "../util/bytes.js";
import { CONNECTION_SETTINGS, JOB_SETTINGS, type ClusterSettings } from "./cluster-settings.js";

export const MODEL_NAMES = ["mlp", "perceptron", "linear", "logistic", "autoencoder"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export const NORMALIZATIONS = ["minmax", "zscore", "none"] as const;
export type Normalization = (typeof NORMALIZATIONS)[number];

export const MODES = ["sync", "async"] as const;

/** The data file formats --format chooses between (as src/cli/datasets.ts reads them). */
export const FORMATS = ["csv", "libsvm", "idx"] as const;
export type Format = (typeof FORMATS)[number];

/** How many epochs the summary table shows: auto (all on a terminal, else first, best and last), all, or short. */
export const SUMMARIES = ["auto", "all", "short"] as const;
export type Summary = (typeof SUMMARIES)[number];

/** Everything `train` runs with, after defaults, the config file and the flags are merged. */
export interface TrainSettings extends ClusterSettings {
  data: string;
  testData?: string;
  holdout?: number;
  normalize?: Normalization;
  /** Read the libsvm data as sparse rows and give the model (mlp or logistic) a sparse first layer (spec.sparseInputs). */
  sparse?: boolean;
  /** Hash the CSV --data and --test-data columns into this many sparse features (a power of two; implies sparse). */
  hashFeatures?: number;
  /** Read the sparse training file as a stream: one pass per epoch, chunkRows rows in memory at a time. */
  stream?: boolean;
  /** Rows per chunk of --stream (default LIBSVM_STREAM_DEFAULTS.chunkRows, src/data/libsvm-stream.ts). */
  chunkRows?: number;
  format?: Format;
  labelColumn?: number | string;
  features?: number[];
  delimiter?: string;
  comment?: string;
  header?: boolean;
  classes?: number;
  model: ModelName;
  hidden: number[];
  activation?: Activation;
  /**
   * The user neuron type of every hidden layer (mlp): "MODULE#EXPORT", its module an absolute URL once the settings
   * are resolved (src/cli/config.ts), so child processes and the model file import the same module; or a built-in
   * type's name, which acts as `activation`.
   */
  neuron?: string;
  outputActivation?: Activation;
  cost?: Cost;
  dropout?: number;
  init?: Init;
  seed?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  learningRateDecay?: number;
  momentum?: number;
  l2?: number;
  optimizer?: OptimizerKind;
  threads?: number;
  /** Allow more threads than cores (else --threads is capped to the core count, with a warning). */
  oversubscribe?: boolean;
  mode?: TrainMode;
  portion?: number;
  maxIterations?: number;
  convergenceWindow?: number;
  /** Early stopping: epochs without a lower test loss before training stops (TrainOptions.patience). */
  patience?: number;
  /** Most bytes the data read into memory may take (default DEFAULT_MEMORY_LIMIT_BYTES), and the model's memory (default: the core's). */
  memoryLimit?: number;
  /** A full network structure (config file only); replaces model, hidden, activation, outputActivation, dropout. */
  spec?: Partial<NetworkSpec>;
  /** Any TrainOptions (config file only); the flat keys above override its fields. */
  train?: TrainOptions;
  /** Model file, or false not to save. */
  save: string | false;
  /** Curves SVG, false not to write, undefined for beside the model. */
  curves?: string | false;
  json: boolean;
  quiet: boolean;
  summary?: Summary;
  /** Write a checkpoint after every this many epochs (to `checkpoint`). */
  checkpointEvery?: number;
  /** Checkpoint file; undefined for the default beside the model (see src/cli/checkpoints.ts). */
  checkpoint?: string;
  /** A model file with training state (a checkpoint) to continue training from. */
  resume?: string;
  /** Save the epoch with the lowest test loss instead of the last. */
  saveBest?: boolean;
}

export type SettingKey = keyof TrainSettings;

/** How a setting's value is spelled and checked. */
export type ValueType =
  | "string" | "integer" | "number" | "boolean" | "integers" | "holdout" | "column" | "columns" | "delimiter" | "choice" | "file-or-off" | "object"
  | "bytes" | "neuron";

export interface SettingDef {
  readonly key: SettingKey;
  /** Commander's flag syntax; absent for the config-file-only keys. */
  readonly flag?: string;
  /** Help of --no-<name>, which sets false; only for settings that have one. */
  readonly off?: string;
  readonly type: ValueType;
  readonly choices?: readonly string[];
  readonly help: string;
  /** The default as --help shows it. */
  readonly shown?: string;
  readonly group: "Data" | "Model" | "Training" | "Output" | "Cluster" | "Config file only";
  /** "cluster": taken by `downpour peer` and `downpour cluster` only (train refuses it); absent: every training command. */
  readonly scope?: "cluster";
}

/** Defaults of the CLI's own settings; training defaults are the library's (TrainOptions), so a config's "train" object can set them. */
export const DEFAULT_SETTINGS: TrainSettings = {
  data: "mnist",
  model: "mlp",
  hidden: [128],
  save: "downpour-model.dpnn",
  json: false,
  quiet: false,
};

/** The model's memory without --memory-limit: the default core's arena limit (1 GiB). */
export const DEFAULT_MODEL_MEMORY_BYTES = DEFAULT_ARENA_BYTES;

/** The most a model's memory can hold: a WebAssembly (wasm32) memory, 4 GiB. */
export const MAX_MODEL_MEMORY_BYTES = MAX_ARENA_BYTES;

const EXTENSIONS = ".csv, .tsv, .libsvm, .svm, .txt or .idx file (optionally .gz)";

export const SETTINGS: readonly SettingDef[] = [
  { key: "data", flag: "--data <preset|path>", type: "string", group: "Data", shown: "mnist",
    help: `mnist (downloaded when not cached; when left at the default and the download fails, the bundled digits), digits (UCI 8x8 handwritten digits, bundled), synthetic, or a ${EXTENSIONS}` },
  { key: "format", flag: "--format <format>", type: "choice", choices: FORMATS, group: "Data", shown: "by extension; .txt by content (index:value tokens: libsvm, else csv)",
    help: "how --data and --test-data files are read" },
  { key: "testData", flag: "--test-data <path>", type: "string", group: "Data", shown: "none",
    help: "a separate evaluation set, in the format and columns of --data" },
  { key: "holdout", flag: "--holdout <n|fraction>", type: "holdout", group: "Data", shown: "MNIST's own 10k test set, a fixed fifth of digits; 0.1 of other data",
    help: "rows of the training data kept for evaluation (seeded random pick): a count or a fraction; 0 for none" },
  { key: "normalize", flag: "--normalize <method>", type: "choice", choices: NORMALIZATIONS, group: "Data", shown: "minmax for files, none for the presets",
    help: "feature scaling fitted on the training data, applied to test data and stored in the model" },
  { key: "sparse", flag: "--sparse", type: "boolean", group: "Data", shown: "off: dense rows",
    help: "read the libsvm --data and --test-data as sparse rows (index:value pairs, nothing made dense) and train a model with a sparse first layer (mlp or logistic; no --normalize), for inputs like 2^20 hashed features; the model file records it" },
  { key: "hashFeatures", flag: "--hash-features <2^k>", type: "integer", group: "Data", shown: "off",
    help: "hash the CSV --data and --test-data columns into 2^k sparse features (the hashing trick: a number v of column c is feature hash(c) with value v, any other field is feature hash(c, field) with value 1); a power of two in [2, 2^31], like 2^20 or 1048576; implies --sparse" },
  { key: "stream", flag: "--stream", type: "boolean", group: "Data", shown: "off: the whole file in memory",
    help: "with --sparse: read the training file as a stream, one pass per epoch with --chunk-rows rows in memory at a time, so a file larger than memory trains (checked and counted in one pass first); the test set is --test-data (no --holdout)" },
  { key: "chunkRows", flag: "--chunk-rows <n>", type: "integer", group: "Data", shown: String(LIBSVM_STREAM_DEFAULTS.chunkRows),
    help: "rows of the --stream training file trained on at a time (one fit of the model each)" },
  { key: "labelColumn", flag: "--label-column <index|name>", type: "column", group: "Data", shown: "-1, the last",
    help: "the CSV label column: 0-based index (negative counts from the end) or header name (autoencoder: no label unless given)" },
  { key: "features", flag: "--features <columns>", type: "columns", group: "Data", shown: "every column but the label",
    help: "the CSV's input columns, 0-based: ranges and lists like 0-7 or 1,2,5" },
  { key: "delimiter", flag: "--delimiter <char>", type: "delimiter", group: "Data", shown: ", (.tsv: tab)",
    help: "the CSV field separator, one character; \\t for tab" },
  { key: "comment", flag: "--comment <prefix>", type: "string", group: "Data", shown: "none",
    help: "skip CSV lines starting with this, like '#'" },
  { key: "header", flag: "--header", off: "the CSV's first line is data", type: "boolean", group: "Data", shown: "auto-detected",
    help: "the CSV's first line is a header" },
  { key: "classes", flag: "--classes <n>", type: "integer", group: "Data", shown: "none: the label is one output",
    help: "labels are class indices in [0, n), one-hot encoded (CSV, libsvm)" },
  { key: "model", flag: "--model <kind>", type: "choice", choices: MODEL_NAMES, group: "Model", shown: "mlp", help: "what to train" },
  { key: "hidden", flag: "--hidden <units>", type: "integers", group: "Model", shown: "128",
    help: "hidden layer sizes, comma-separated (autoencoder: the code size)" },
  { key: "activation", flag: "--activation <fn>", type: "choice", choices: ACTIVATIONS, group: "Model", shown: "relu; autoencoder: sigmoid",
    help: "activation of the hidden layers" },
  { key: "neuron", flag: "--neuron <module#export>", type: "neuron", group: "Model", shown: "none: the built-in type of --activation",
    help: "a user neuron type for the hidden layers (mlp): the export of a JavaScript module, like ./neurons.js#Swish (the module relative to the working directory; in a config file, to its folder), or a built-in name; --activation is then a per-neuron type's squashing function" },
  { key: "outputActivation", flag: "--output-activation <fn>", type: "choice", choices: ACTIVATIONS, group: "Model",
    shown: "softmax for several outputs, sigmoid for one", help: "activation of the output layer (mlp)" },
  { key: "cost", flag: "--cost <fn>", type: "choice", choices: COSTS, group: "Model", shown: "from the output activation", help: "loss function (mlp)" },
  { key: "dropout", flag: "--dropout <p>", type: "number", group: "Model", shown: "0", help: "dropout of each hidden layer (mlp)" },
  { key: "init", flag: "--init <scheme>", type: "choice", choices: INITS, group: "Model", shown: "auto: he before relu, else xavier",
    help: "weight initialization (mlp)" },
  { key: "seed", flag: "--seed <n>", type: "integer", group: "Model", shown: String(D.seed),
    help: "seed of the initial weights, shuffling, dropout and the holdout pick" },
  { key: "epochs", flag: "--epochs <n>", type: "integer", group: "Training", shown: String(D.epochs), help: "passes over the training data" },
  { key: "batchSize", flag: "--batch-size <n>", type: "integer", group: "Training", shown: String(D.batchSize), help: "samples per mini-batch" },
  { key: "learningRate", flag: "--learning-rate <rate>", type: "number", group: "Training", shown: Object.entries(D.learningRate).map(([k, v]) => `${v} ${k}`).join(", "),
    help: "step size" },
  { key: "learningRateDecay", flag: "--learning-rate-decay <factor>", type: "number", group: "Training", shown: D.learningRateDecay === 1 ? "1, constant" : String(D.learningRateDecay),
    help: "multiply the learning rate by this after every epoch" },
  { key: "momentum", flag: "--momentum <m>", type: "number", group: "Training", shown: String(D.momentum), help: "SGD momentum (0 disables it)" },
  { key: "l2", flag: "--l2 <lambda>", type: "number", group: "Training", shown: String(D.l2), help: "L2 weight decay" },
  { key: "optimizer", flag: "--optimizer <name>", type: "choice", choices: OPTIMIZERS, group: "Training", shown: D.optimizer, help: "update rule" },
  { key: "threads", flag: "--threads <n>", type: "integer", group: "Training", shown: "all cores",
    help: "worker threads (0: train on the main thread); more than the cores are capped to the core count" },
  { key: "oversubscribe", flag: "--oversubscribe", type: "boolean", group: "Training", shown: "off", help: "allow --threads above the core count" },
  { key: "mode", flag: "--mode <mode>", type: "choice", choices: MODES, group: "Training", shown: D.mode,
    help: "sync: combine the threads' gradients per mini-batch (deterministic); async: lock-free updates" },
  { key: "portion", flag: "--portion <rows>", type: "integer", group: "Training", shown: String(D.portion), help: "rows per work portion handed to a thread" },
  { key: "maxIterations", flag: "--max-iterations <n>", type: "integer", group: "Training", shown: "no limit", help: "stop after this many mini-batches" },
  { key: "convergenceWindow", flag: "--convergence-window <batches>", type: "integer", group: "Training", shown: "off",
    help: "stop when the mean loss of this many mini-batches stops falling" },
  { key: "patience", flag: "--patience <epochs>", type: "integer", group: "Training", shown: "off",
    help: "stop early when the test loss has not improved for this many epochs (needs a test set)" },
  { key: "memoryLimit", flag: "--memory-limit <size>", type: "bytes", group: "Training",
    shown: `${formatBytes(DEFAULT_MEMORY_LIMIT_BYTES)} for the data; the model's memory ${formatBytes(DEFAULT_MODEL_MEMORY_BYTES)}`,
    help: `most memory the data read in, and the model, may take: 512M, 8G, 1.5GB (1024-based); the model's WebAssembly memory holds at most ${formatBytes(MAX_MODEL_MEMORY_BYTES)}, so above that the model's part stays at ${formatBytes(MAX_MODEL_MEMORY_BYTES)}` },
  { key: "save", flag: "--save <file>", off: "do not save the model", type: "file-or-off", group: "Output", shown: "downpour-model.dpnn",
    help: "model file to write" },
  { key: "curves", flag: "--curves <file>", off: "do not write the curves", type: "file-or-off", group: "Output", shown: "downpour-curves.svg beside the model",
    help: "SVG chart of loss and accuracy per epoch" },
  { key: "json", flag: "--json", type: "boolean", group: "Output", shown: "off", help: "print the epoch reports as JSON on stdout" },
  { key: "quiet", flag: "--quiet", type: "boolean", group: "Output", shown: "off", help: "no progress bar: one line per epoch" },
  { key: "summary", flag: "--summary <rows>", type: "choice", choices: SUMMARIES, group: "Output", shown: "auto: every epoch on a terminal, else (or with --quiet) the first, best and last",
    help: "epochs in the summary table: all, or short (the first, best and last)" },
  { key: "checkpointEvery", flag: "--checkpoint-every <epochs>", type: "integer", group: "Output", shown: "off (Ctrl-C still writes one)",
    help: "write a checkpoint (the model with its optimizer state) after every this many epochs, replacing the previous one" },
  { key: "checkpoint", flag: "--checkpoint <file>", type: "string", group: "Output", shown: "beside the model: <model>.checkpoint.dpnn",
    help: "checkpoint file of --checkpoint-every and Ctrl-C" },
  { key: "resume", flag: "--resume <file>", type: "string", group: "Training", shown: "none",
    help: "continue training a checkpoint or model file: its model, scaling, weights and optimizer state; --epochs counts the epochs it already trained" },
  { key: "saveBest", flag: "--save-best", type: "boolean", group: "Output", shown: "off: the last epoch",
    help: "save the model of the epoch with the lowest test loss (needs a test set)" },
  { key: "spec", type: "object", group: "Config file only", help: "a full NetworkSpec { inputs?, layers, cost?, init?, seed? }" },
  { key: "train", type: "object", group: "Config file only", help: "any TrainOptions; the flat keys override its fields" },
  ...CONNECTION_SETTINGS,
  ...JOB_SETTINGS,
];

/** Every field of TrainOptions (a Record, so a field added to TrainOptions fails the build until it is listed). */
const TRAIN_OPTION_FIELDS: Record<keyof TrainOptions, true> = {
  optimizer: true, learningRate: true, learningRateDecay: true, momentum: true, l2: true, beta1: true, beta2: true, epsilon: true,
  batchSize: true, epochs: true, maxIterations: true, threads: true, mode: true, portion: true, shuffle: true, seed: true, convergence: true,
  nonFiniteLoss: true, patience: true,
};

/** The keys a config file's "train" object may hold. */
export const TRAIN_OPTION_KEYS = Object.keys(TRAIN_OPTION_FIELDS) as readonly (keyof TrainOptions)[];

/** The settings that are also TrainOptions fields, under the same name. */
export const FLAT_TRAIN_KEYS = [
  "optimizer", "learningRate", "learningRateDecay", "momentum", "l2", "batchSize", "epochs", "maxIterations", "threads", "mode", "portion", "seed", "patience",
] as const satisfies readonly (SettingKey & keyof TrainOptions)[];

/** "--batch-size" for batchSize (what the user typed to set it). */
export function flagName(key: SettingKey): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function settingDef(key: string): SettingDef | undefined {
  return SETTINGS.find((s) => s.key === key);
}
