// Apache Horn's configuration interface: a Job builder, inputLayer(784).addLayer(500, "sigmoid", StandardNeuron)
// ... .outputLayer(10, "softmax").cost("cross-entropy"), with its training options; it builds a LayeredANN and
// trains it with fit(). The builder only collects plain settings; the spec checks run when the network is built.
import type { Dataset } from "../data/dataset.js";
import { InvalidStateError } from "../errors.js";
import { SpecError, type Activation, type Cost, type Init, type LayerSpec, type NetworkSpec } from "../model/spec.js";
import type { EpochReport } from "../train/trainer.js";
import type { TrainOptions } from "../train/options.js";
import { type FitOptions, LayeredANN, type ModelOptions } from "./models.js";

/** What trainJob returns: the trained model and each epoch's report. */
export interface JobResult {
  model: LayeredANN;
  reports: EpochReport[];
}

/** A network and its training, set step by step as in Horn's HornJob. Each setter returns the job. */
export class Job {
  private inputs?: number;
  private readonly layers: LayerSpec[] = [];
  private output?: LayerSpec;
  private costName?: Cost;
  private initName?: Init;
  private seedValue?: number;
  private readonly training: TrainOptions = {};

  /** The number of input features. */
  inputLayer(units: number): this {
    this.inputs = units;
    return this;
  }

  /**
   * A hidden layer of `units`, squashed by `squashing` (default "sigmoid"), whose units are of `neuron`: a user
   * type ("./neurons.js#StandardNeuron", { module, export }, or a class with `static module = import.meta.url`), or
   * the built-in squashing kernel when absent. `dropout` as in LayerSpec.
   */
  addLayer(units: number, squashing: Activation = "sigmoid", neuron?: LayerSpec["neuron"], dropout?: number): this {
    if (this.output) throw new SpecError(`addLayer(${units}): the output layer is already set; add hidden layers before outputLayer()`);
    this.layers.push({ units, activation: squashing, ...(neuron === undefined ? {} : { neuron }), ...(dropout === undefined ? {} : { dropout }) });
    return this;
  }

  /**
   * The output layer. Its units always run the built-in kernel of `squashing`, fused with the cost (softmax with
   * cross-entropy), so it takes no neuron type: passing one throws SpecError.
   */
  outputLayer(units: number, squashing: Activation = "sigmoid", ...neuron: unknown[]): this {
    if (neuron.length && neuron[0] !== undefined) {
      throw new SpecError(`outputLayer(${units}, "${squashing}", …): the output layer takes no neuron type; its built-in ${squashing} kernel is fused with the cost. Use user types on hidden layers (addLayer)`);
    }
    this.output = { units, activation: squashing };
    return this;
  }

  /** The cost: "squared-error", "cross-entropy" (per output) or "softmax-cross-entropy". Default: from the output layer. */
  cost(cost: Cost): this {
    this.costName = cost;
    return this;
  }

  /** Weight initialization ("auto", "xavier", "he") and its seed. */
  init(init: Init, seed?: number): this {
    this.initName = init;
    if (seed !== undefined) this.seedValue = seed;
    return this;
  }

  learningRate(rate: number): this {
    return this.set({ learningRate: rate });
  }

  momentum(momentum: number): this {
    return this.set({ momentum });
  }

  batchSize(rows: number): this {
    return this.set({ batchSize: rows });
  }

  /** Passes over the data (Horn's maxIteration counts mini-batches: that is maxIterations here). */
  epochs(epochs: number): this {
    return this.set({ epochs });
  }

  threads(threads: number): this {
    return this.set({ threads });
  }

  /** Any other training options (optimizer, mode, portion, seed, ...), merged over the ones set so far. */
  set(options: TrainOptions): this {
    Object.assign(this.training, options);
    return this;
  }

  /** The network spec the job describes. Throws InvalidStateError until inputLayer and outputLayer are set. */
  spec(): NetworkSpec {
    if (this.inputs === undefined || !this.output) {
      throw new InvalidStateError(`the job needs inputLayer(n) and outputLayer(n, ...) before it can build a network (it has ${this.inputs === undefined ? "no input layer" : "no output layer"})`);
    }
    return {
      inputs: this.inputs,
      layers: [...this.layers, this.output],
      ...(this.costName ? { cost: this.costName } : {}),
      ...(this.initName ? { init: this.initName } : {}),
      ...(this.seedValue !== undefined ? { seed: this.seedValue } : {}),
    };
  }

  /** A copy of the training options set so far. */
  options(): TrainOptions {
    return { ...this.training };
  }

  /** Builds the network (loading its neuron types) without training it. */
  build(options: ModelOptions = {}): Promise<LayeredANN> {
    return LayeredANN.create(this.spec(), { ...options, train: { ...this.training, ...options.train } });
  }

  /** Builds the network and trains it on `data` (fit's hooks in `fit`); resolves with the model and the reports. */
  async train(data: Dataset, fit: Omit<FitOptions, keyof TrainOptions> = {}, options: ModelOptions = {}): Promise<JobResult> {
    const model = await this.build(options);
    try {
      return { model, reports: await model.fit(data, fit) };
    } catch (error) {
      model.dispose();
      throw error;
    }
  }
}

/** A new, empty job (Horn: new HornJob(conf, ...)). */
export function job(): Job {
  return new Job();
}
