// Apache Hama's ANN family on one layered network: LayeredANN (any structure), MultiLayerPerceptron,
// Perceptron, LinearRegression, LogisticRegression and AutoEncoder; training and inference (the API layer above
// src/train; model bytes in ./model-bytes.ts, files in ./persist.ts).
import type { Kernels } from "../core/kernels.js";
import { createDataset, type Dataset } from "../data/dataset.js";
import { evaluate, type Evaluation } from "../train/evaluate.js";
import { computeGradients, type GradientOptions, type Gradients } from "../train/gradients.js";
import type { TrainOptions } from "../train/options.js";
import { OptimizerState } from "../train/state.js";
import { LocalTrainer, type EpochReport, type TrainerHooks } from "../train/trainer.js";
import { defaultKernels } from "./default-kernels.js";
import { Network } from "../model/network.js";
import type { Activation, Cost, Init, NetworkSpec } from "../model/spec.js";
import { CrossOriginIsolationError, sharedMemoryAvailable } from "../runtime/isolation.js";

/** Names of the model classes, as stored in model files. */
export type ModelKind = "LayeredANN" | "MultiLayerPerceptron" | "Perceptron" | "LinearRegression" | "LogisticRegression" | "AutoEncoder";

/** Where a model lives and how it trains by default. */
export interface ModelOptions {
  /** Core and arena. Default: the process-wide shared core (defaultKernels()). */
  kernels?: Kernels;
  /** Defaults for fit(); fit's own options override them. */
  train?: TrainOptions;
}

/** Options of fit: hyper-parameters plus progress, per-epoch and validation hooks. */
export type FitOptions = TrainOptions &
  Omit<TrainerHooks, "state"> & {
    /** Called as each epoch ends (reports are also returned, and kept in history). */
    onEpoch?: (report: EpochReport) => void;
  };

/** What every model class shares: a layered network, training, inference and its optimizer state. */
export class Model {
  /** Epoch reports of every fit() so far. */
  readonly history: EpochReport[] = [];
  /** Optimizer state carried between fit() calls and saved with the model. */
  state: OptimizerState | undefined;

  constructor(
    readonly kind: ModelKind,
    readonly network: Network,
    public trainDefaults: TrainOptions = {},
  ) {}

  /** Trains on `data` (mini-batch, on all cores by default); resolves with this call's epoch reports. */
  async fit(data: Dataset, options: FitOptions = {}): Promise<EpochReport[]> {
    const { validation, onProgress, onEpoch, platform, ...hyper } = options;
    const merged: TrainOptions = { ...this.trainDefaults, ...hyper };
    if (!this.network.kernels.core.shared) {
      // A private-memory core trains on the calling thread; threads asked for where memory cannot be shared fail.
      if ((merged.threads ?? 0) > 0 && !sharedMemoryAvailable()) {
        throw new CrossOriginIsolationError(`training on ${merged.threads} worker threads`);
      }
      merged.threads = 0;
    }
    const state = this.stateFor(merged);
    const trainer = await LocalTrainer.create(this.network, this.trainingData(data), merged, {
      validation: validation && this.trainingData(validation), onProgress, platform, state,
    });
    const reports: EpochReport[] = [];
    try {
      for await (const report of trainer.epochs()) {
        reports.push(report);
        this.history.push(report);
        onEpoch?.(report);
      }
    } finally {
      await trainer.close();
    }
    return reports;
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

  /** Outputs for rows of inputs (row-major; copies). */
  predict(x: Float32Array, rows?: number): Float32Array {
    return this.network.predict(x, rows);
  }

  /** Mean loss and accuracy (classifiers) on a dataset. */
  evaluate(data: Dataset): Evaluation {
    return evaluate(this.network, this.trainingData(data));
  }

  /** The mean loss over every sample of `data` and its gradient per parameter tensor (w0, b0, ...; copies), as
   *  training computes it, without changing the model. Compare with `network.tensors()` for the parameters. */
  gradients(data: Dataset, options?: GradientOptions): Gradients {
    return computeGradients(this.network, this.trainingData(data), options);
  }

  /** Releases the model's memory. */
  dispose(): void {
    this.state?.dispose();
    this.network.dispose();
  }
}

/** A layered ANN whose structure the user sets, layer by layer. */
export class LayeredANN extends Model {
  /** A network of the given structure, initialized from spec.seed. */
  static async create(spec: NetworkSpec, options: ModelOptions = {}): Promise<LayeredANN> {
    return new LayeredANN("LayeredANN", Network.create(options.kernels ?? (await defaultKernels()), spec), options.train);
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
  init?: Init;
  seed?: number;
}

export class MultiLayerPerceptron extends Model {
  static mlpSpec(config: MlpConfig): NetworkSpec {
    const hidden = (config.hidden ?? []).map((units) => ({ units, activation: config.hiddenActivation ?? "relu", dropout: config.dropout ?? 0 }));
    const output = { units: config.outputs, activation: config.outputActivation ?? (config.outputs > 1 ? "softmax" : "sigmoid") } as const;
    return { inputs: config.inputs, layers: [...hidden, output], cost: config.cost, init: config.init, seed: config.seed };
  }

  static async create(config: MlpConfig | NetworkSpec, options: ModelOptions = {}): Promise<MultiLayerPerceptron> {
    const spec = "layers" in config ? config : MultiLayerPerceptron.mlpSpec(config);
    return new MultiLayerPerceptron("MultiLayerPerceptron", Network.create(options.kernels ?? (await defaultKernels()), spec), options.train);
  }
}

/** One layer of sigmoid units trained on squared error: Rosenblatt's perceptron with a smooth step. */
export class Perceptron extends Model {
  static async create(config: { inputs: number; outputs?: number; seed?: number }, options: ModelOptions = {}): Promise<Perceptron> {
    const spec: NetworkSpec = { inputs: config.inputs, layers: [{ units: config.outputs ?? 1, activation: "sigmoid" }], cost: "squared-error", seed: config.seed };
    return new Perceptron("Perceptron", Network.create(options.kernels ?? (await defaultKernels()), spec), options.train);
  }
}

/** y = w.x + b, fitted on squared error. */
export class LinearRegression extends Model {
  static async create(config: { inputs: number; seed?: number }, options: ModelOptions = {}): Promise<LinearRegression> {
    const spec: NetworkSpec = { inputs: config.inputs, layers: [{ units: 1, activation: "identity" }], cost: "squared-error", seed: config.seed };
    return new LinearRegression("LinearRegression", Network.create(options.kernels ?? (await defaultKernels()), spec), options.train);
  }
}

/** p = sigmoid(w.x + b), fitted on cross-entropy. */
export class LogisticRegression extends Model {
  static async create(config: { inputs: number; seed?: number }, options: ModelOptions = {}): Promise<LogisticRegression> {
    const spec: NetworkSpec = { inputs: config.inputs, layers: [{ units: 1, activation: "sigmoid" }], cost: "cross-entropy", seed: config.seed };
    return new LogisticRegression("LogisticRegression", Network.create(options.kernels ?? (await defaultKernels()), spec), options.train);
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
      layers: [{ units: config.hidden, activation }, { units: config.inputs, activation }],
      cost: "squared-error",
      seed: config.seed,
    };
    return new AutoEncoder("AutoEncoder", Network.create(options.kernels ?? (await defaultKernels()), spec), options.train);
  }

  protected override trainingData(data: Dataset): Dataset {
    return createDataset({ features: data.features, outputs: data.features, x: data.x, y: data.x, name: data.name });
  }

  /** Hidden codes of rows of inputs (copies). */
  encode(x: Float32Array, rows?: number): Float32Array {
    return this.network.forwardRange(x, 0, 0, rows);
  }

  /** Reconstructions from rows of hidden codes (copies). */
  decode(code: Float32Array, rows?: number): Float32Array {
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
