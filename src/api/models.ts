// Apache Hama's ANN family on one layered network: LayeredANN (any structure), MultiLayerPerceptron,
// Perceptron, LinearRegression, LogisticRegression and AutoEncoder; training and inference (the API layer above
// src/train; model bytes in ./model-bytes.ts, files in ./persist.ts).
import type { Kernels } from "../core/kernels.js";
import { createDataset, type Dataset } from "../data/dataset.js";
import { isSparse, type SparseDataset } from "../data/sparse.js";
import { applyScaling, scaleRows, type Scaling } from "../data/scaling.js";
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import { Network } from "../model/network.js";
import { loadNeuronTypes } from "../model/neurons/registry.js";
import { resolveSpec, type Activation, type Cost, type Init, type LayerSpec, type NetworkSpec } from "../model/spec.js";
import { CrossOriginIsolationError, sharedMemoryAvailable } from "../runtime/isolation.js";
import { type Evaluation, evaluate, predictSparse } from "../train/evaluate.js";
import { computeGradients, type GradientOptions, type Gradients } from "../train/gradients.js";
import { checkOptionNames, type TrainOptions, TrainOptionsError } from "../train/options.js";
import { OptimizerState } from "../train/state.js";
import { type EpochReport, LocalTrainer, requireDataset, type TrainerHooks } from "../train/trainer.js";
import { defaultKernels } from "./default-kernels.js";

/** Names of the model classes, as stored in model files. */
export type ModelKind = "LayeredANN" | "MultiLayerPerceptron" | "Perceptron" | "LinearRegression" | "LogisticRegression" | "AutoEncoder";

/** Where a model lives and how it trains by default. */
export interface ModelOptions {
  /** Core and arena. Default: the process-wide shared core (defaultKernels()). */
  kernels?: Kernels;
  /** Defaults for fit(); fit's own options override them. */
  train?: TrainOptions;
}

/** Options of fit: hyper-parameters plus progress, per-epoch and validation hooks (see TrainerHooks). */
export type FitOptions = TrainOptions &
  Omit<TrainerHooks, "state"> & {
    /** Called as each epoch ends (reports are also returned, and kept in history). When it returns a promise, the
     *  next epoch starts once it resolves (write checkpoints here); when it throws or rejects, fit() rejects with
     *  that error, after stopping the workers. */
    onEpoch?: (report: EpochReport) => void | Promise<void>;
  };

/** Every field of FitOptions beside the TrainOptions (a Record, so a hook added to FitOptions fails the build until it is listed). */
const FIT_HOOK_FIELDS: Record<Exclude<keyof FitOptions, keyof TrainOptions>, true> = {
  validation: true,
  onProgress: true,
  onEpoch: true,
  platform: true,
  signal: true,
  exchange: true,
  parameters: true,
  stall: true,
};

/** The names fit() accepts beside the TrainOptions. */
export const FIT_HOOK_NAMES = Object.keys(FIT_HOOK_FIELDS) as readonly string[];

/** What a running fit() shares with dispose(). */
interface RunningFit {
  trainer?: LocalTrainer;
}

/** What every model class shares: a layered network, training, inference and its optimizer state. */
export class Model {
  /** Epoch reports of every fit() so far. */
  readonly history: EpochReport[] = [];
  /** Optimizer state carried between fit() calls and saved with the model. */
  state: OptimizerState | undefined;
  /**
   * How raw inputs are scaled before the network sees them: min-max or z-score stats, one entry per input. When
   * set, fit, predict, evaluate, gradients and encode apply it to every input they are given (copies), so a model
   * answers raw rows as it was trained on them. Saved with the model (meta.inputScaling) and restored by
   * loadModel/decodeModel, which also read the scaling the CLI records (meta.preprocess.scaling). Default: none.
   */
  inputScaling: Scaling | undefined;
  #disposed = false;
  /** The fit() in progress, if any. */
  #fitting: RunningFit | undefined;

  constructor(
    readonly kind: ModelKind,
    readonly network: Network,
    public trainDefaults: TrainOptions = {},
  ) {}

  /** Whether dispose() was called: the model can then no longer be used. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Throws InvalidStateError once the model is disposed: `${what}: the model was disposed; create or load a new
   *  one`. Every method calls it first; so does code that reads `network` for the model (saving, encoding). */
  requireUsable(what: string): void {
    if (this.#disposed) throw new InvalidStateError(`${what}: the model was disposed; create or load a new one`);
  }

  /**
   * Trains on `data` (mini-batch, on all cores by default); resolves with this call's epoch reports once the last
   * epoch (and its onEpoch) is done and the workers have stopped. Unknown option names and bad values are
   * TrainOptionsErrors. With `signal`: aborted during an epoch, fit resolves with the reports so far, the last
   * (partial) one saying stop "aborted"; aborted before fit starts, it resolves with [] without training.
   * Rejects with InvalidStateError when another fit() runs on this model (the running one goes on) or the model
   * is disposed, before or during the call.
   */
  async fit(data: Dataset | SparseDataset, options: FitOptions = {}): Promise<EpochReport[]> {
    this.requireUsable("fit()");
    if (this.#fitting) throw new InvalidStateError("fit() is already running on this model; await it first");
    requireDataset(data, "fit(): the training data");
    checkOptionNames(options, FIT_HOOK_NAMES);
    if (options.validation !== undefined) requireDataset(options.validation, "fit(): validation");
    if (options.onEpoch !== undefined && typeof options.onEpoch !== "function") {
      throw new TrainOptionsError(`onEpoch must be a function, got ${typeof options.onEpoch}`, { option: "onEpoch" });
    }
    if (options.signal?.aborted) return [];
    const fitting: RunningFit = {};
    this.#fitting = fitting;
    try {
      return await this.train(data, options, fitting);
    } finally {
      this.#fitting = undefined;
      if (this.#disposed) this.release();
    }
  }

  private async train(data: Dataset | SparseDataset, options: FitOptions, fitting: RunningFit): Promise<EpochReport[]> {
    const { validation, onProgress, onEpoch, platform, signal, exchange, parameters, stall, ...hyper } = options;
    const merged: TrainOptions = { ...this.trainDefaults, ...hyper };
    if (!this.network.kernels.core.shared) {
      // A private-memory core trains on the calling thread; threads asked for where memory cannot be shared fail.
      if ((merged.threads ?? 0) > 0 && !sharedMemoryAvailable()) {
        throw new CrossOriginIsolationError(`training on ${merged.threads} worker threads`);
      }
      merged.threads = 0;
    }
    const state = this.stateFor(merged);
    const hooks: TrainerHooks = {
      validation: validation && this.prepared(validation),
      onProgress,
      platform,
      signal,
      state,
      exchange,
      parameters,
      stall,
    };
    const trainer = await LocalTrainer.create(this.network, this.prepared(data), merged, hooks);
    fitting.trainer = trainer;
    const reports: EpochReport[] = [];
    try {
      if (this.#disposed) throw disposedDuringFit();
      for await (const report of trainer.epochs()) {
        reports.push(report);
        this.history.push(report);
        await onEpoch?.(report);
        if (this.#disposed) break;
      }
    } finally {
      await trainer.close();
    }
    if (this.#disposed) throw disposedDuringFit();
    return reports;
  }

  /** What fit() and evaluate() pass on: trainingData(scaled(data)); sparse data as it is (no scaling applies to it). */
  private prepared(data: Dataset | SparseDataset): Dataset | SparseDataset {
    if (!isSparse(data)) return this.trainingData(this.scaled(data));
    if (this.inputScaling) throw new InvalidArgumentError(`${this.kind}: input scaling does not apply to sparse inputs; this model has inputScaling set`);
    if (this.trainingData !== Model.prototype.trainingData) throw new InvalidArgumentError(`${this.kind} does not train on sparse inputs`);
    return data;
  }

  /** `data` with inputScaling applied (itself when there is none). */
  protected scaled(data: Dataset): Dataset {
    if (!this.inputScaling) return data;
    requireDataset(data, "the dataset");
    return applyScaling(data, this.inputScaling);
  }

  /** Rows of inputs with inputScaling applied (a copy; `x` itself when there is none). */
  protected scaledRows(x: Float32Array | readonly number[], what: string): Float32Array | readonly number[] {
    if (!this.inputScaling) return x;
    const inputs = this.network.inputs;
    if (!(x instanceof Float32Array) && !Array.isArray(x)) throw new InvalidArgumentError(`${what}: x must be a Float32Array of rows × ${inputs} inputs (or an array of numbers)`);
    return scaleRows(x instanceof Float32Array ? x : Float32Array.from(x), inputs, this.inputScaling);
  }

  /** The dataset fit() trains on (an auto-encoder trains on its inputs). */
  protected trainingData(data: Dataset): Dataset {
    return data;
  }

  private stateFor(options: TrainOptions): OptimizerState {
    const kind = options.optimizer ?? "sgd";
    const slots = kind === "sgd" && options.momentum === 0 ? 0 : undefined;
    if (this.state && this.state.kind === kind && (slots === undefined || this.state.slots === slots)) return this.state;
    this.state?.dispose();
    this.state = OptimizerState.create(this.network, kind, options.momentum ?? 0.9);
    return this.state;
  }

  /** Outputs for rows of inputs (row-major; copies), the inputs scaled by inputScaling when it is set. */
  predict(x: Float32Array, rows?: number): Float32Array {
    this.requireUsable("predict()");
    return this.network.predict(this.scaledRows(x, "predict()") as Float32Array, rows);
  }

  /** Outputs for every row of a SparseDataset (a model with sparse inputs; a copy, rows x outputs). */
  predictSparse(data: SparseDataset): Float32Array {
    this.requireUsable("predictSparse()");
    return predictSparse(this.network, data);
  }

  /** Mean loss and accuracy (classifiers) on a dataset. */
  evaluate(data: Dataset | SparseDataset): Evaluation {
    this.requireUsable("evaluate()");
    return evaluate(this.network, this.prepared(data));
  }

  /** The mean loss over every sample of `data` and its gradient per parameter tensor (w0, b0, ...; copies), as
   *  training computes it, without changing the model. Compare with `network.tensors()` for the parameters. */
  gradients(data: Dataset, options?: GradientOptions): Gradients {
    this.requireUsable("gradients()");
    return computeGradients(this.network, this.trainingData(this.scaled(data)), options);
  }

  /**
   * Releases the model's memory; afterwards every method throws InvalidStateError. Calling it again does nothing.
   * During a fit(), it stops the training at the next mini-batch boundary and the memory is released once the
   * workers have stopped; that fit() rejects with InvalidStateError.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#fitting) {
      this.#fitting.trainer?.close().catch(() => undefined); // fit() releases the memory once the workers are gone
      return;
    }
    this.release();
  }

  private release(): void {
    this.state?.dispose();
    this.state = undefined;
    this.network.dispose();
  }
}

function disposedDuringFit(): InvalidStateError {
  return new InvalidStateError("the model was disposed during fit(); its memory was released once the workers had stopped");
}

/** A layered ANN whose structure the user sets, layer by layer. */
export class LayeredANN extends Model {
  /** A network of the given structure, initialized from spec.seed. */
  static async create(spec: NetworkSpec, options: ModelOptions = {}): Promise<LayeredANN> {
    return new LayeredANN("LayeredANN", await networkFor(spec, options), options.train);
  }
}

/** Shape of a multi-layer perceptron. */
export interface MlpConfig {
  inputs: number;
  /** Units of each hidden layer. Default none. */
  hidden?: number[];
  outputs: number;
  /** Default "relu". */
  hiddenActivation?: Activation;
  /** Default "softmax" for several outputs, "sigmoid" for one. */
  outputActivation?: Activation;
  cost?: Cost;
  /** Dropout of every hidden layer. Default 0. */
  dropout?: number;
  /** Inputs are sparse (SparseDatasets; see NetworkSpec.sparseInputs). Default false. */
  sparseInputs?: boolean;
  /** A user neuron type for every hidden layer (see LayerSpec.neuron). Default: the built-in hiddenActivation. */
  hiddenNeuron?: LayerSpec["neuron"];
  init?: Init;
  seed?: number;
}

// A network for `spec` in the options' kernels (or the default ones), after loading its user neuron types.
async function networkFor(spec: NetworkSpec, options: ModelOptions): Promise<Network> {
  const resolved = resolveSpec(spec);
  await loadNeuronTypes(resolved);
  return Network.create(options.kernels ?? (await defaultKernels()), resolved);
}

export class MultiLayerPerceptron extends Model {
  static mlpSpec(config: MlpConfig): NetworkSpec {
    const hidden = (config.hidden ?? []).map((units) => ({
      units,
      activation: config.hiddenActivation ?? "relu",
      dropout: config.dropout ?? 0,
      ...(config.hiddenNeuron === undefined ? {} : { neuron: config.hiddenNeuron }),
    }));
    const output = { units: config.outputs, activation: config.outputActivation ?? (config.outputs > 1 ? "softmax" : "sigmoid") } as const;
    return { inputs: config.inputs, layers: [...hidden, output], cost: config.cost, init: config.init, seed: config.seed, ...(config.sparseInputs ? { sparseInputs: true } : {}) };
  }

  static async create(config: MlpConfig | NetworkSpec, options: ModelOptions = {}): Promise<MultiLayerPerceptron> {
    const spec = "layers" in config ? config : MultiLayerPerceptron.mlpSpec(config);
    return new MultiLayerPerceptron(
      "MultiLayerPerceptron",
      await networkFor(spec, options),
      options.train,
    );
  }
}

/** One layer of sigmoid units trained on squared error: Rosenblatt's perceptron with a smooth step. */
export class Perceptron extends Model {
  static async create(config: { inputs: number; outputs?: number; seed?: number }, options: ModelOptions = {}): Promise<Perceptron> {
    const spec: NetworkSpec = {
      inputs: config.inputs,
      layers: [{ units: config.outputs ?? 1, activation: "sigmoid" }],
      cost: "squared-error",
      seed: config.seed,
    };
    return new Perceptron("Perceptron", await networkFor(spec, options), options.train);
  }
}

/** y = w.x + b, fitted on squared error. */
export class LinearRegression extends Model {
  static async create(config: { inputs: number; seed?: number }, options: ModelOptions = {}): Promise<LinearRegression> {
    const spec: NetworkSpec = {
      inputs: config.inputs,
      layers: [{ units: 1, activation: "identity" }],
      cost: "squared-error",
      seed: config.seed,
    };
    return new LinearRegression("LinearRegression", await networkFor(spec, options), options.train);
  }
}

/** p = sigmoid(w.x + b), fitted on cross-entropy. */
export class LogisticRegression extends Model {
  /** `sparseInputs`: fit on SparseDatasets (see NetworkSpec.sparseInputs). */
  static async create(config: { inputs: number; seed?: number; sparseInputs?: boolean }, options: ModelOptions = {}): Promise<LogisticRegression> {
    const spec: NetworkSpec = {
      inputs: config.inputs,
      layers: [{ units: 1, activation: "sigmoid" }],
      cost: "cross-entropy",
      seed: config.seed,
      ...(config.sparseInputs ? { sparseInputs: true } : {}),
    };
    return new LogisticRegression("LogisticRegression", await networkFor(spec, options), options.train);
  }
}

/** Learns to reproduce its inputs through a narrower hidden code (unsupervised). */
export class AutoEncoder extends Model {
  static async create(
    config: { inputs: number; hidden: number; activation?: Activation; seed?: number },
    options: ModelOptions = {},
  ): Promise<AutoEncoder> {
    const activation = config.activation ?? "sigmoid";
    const spec: NetworkSpec = {
      inputs: config.inputs,
      layers: [
        { units: config.hidden, activation },
        { units: config.inputs, activation },
      ],
      cost: "squared-error",
      seed: config.seed,
    };
    return new AutoEncoder("AutoEncoder", await networkFor(spec, options), options.train);
  }

  protected override trainingData(data: Dataset): Dataset {
    return createDataset({ features: data.features, outputs: data.features, x: data.x, y: data.x, name: data.name });
  }

  /** Hidden codes of rows of inputs (copies), the inputs scaled by inputScaling when it is set. */
  encode(x: Float32Array, rows?: number): Float32Array {
    this.requireUsable("encode()");
    return this.network.forwardRange(this.scaledRows(x, "encode()") as Float32Array, 0, 0, rows);
  }

  /** Reconstructions from rows of hidden codes (copies); with inputScaling they are scaled inputs, as trained. */
  decode(code: Float32Array, rows?: number): Float32Array {
    this.requireUsable("decode()");
    return this.network.forwardRange(code, 1, 1, rows);
  }
}

/** Constructors by kind, for loading model files. */
export const MODEL_CLASSES: Record<ModelKind, new (kind: ModelKind, network: Network, train?: TrainOptions) => Model> = {
  LayeredANN,
  MultiLayerPerceptron,
  Perceptron,
  LinearRegression,
  LogisticRegression,
  AutoEncoder,
};
