// The per-neuron form (Apache Horn's shape): a class whose forward(synapses) reads its incoming synapses and
// calls feedforward(output), and whose backward(synapses) reads its outgoing synapses (the next layer's deltas
// and weights), push()es one weight gradient per synapse and backpropagate()s its own delta. The engine reuses
// one Synapse object per layer (a cursor over the arena), so a loop over synapses allocates nothing.
import type { OnnxComposition } from "./types.js";

/** A layer's squashing function as a per-neuron type sees it (the layer's `activation`). */
export interface SquashingFunction {
  readonly name: string;
  apply(x: number): number;
  /** The derivative at the input whose output is `y` (Horn's applyDerivative(getOutput())). */
  applyDerivative(y: number): number;
}

/**
 * Where the engine points one layer's neurons: output, delta and push slots, and the synapse cursor.
 * Internal: the fields change between calls; a neuron reads them only through its methods.
 */
export class NeuronCursor {
  f32: Float32Array<ArrayBufferLike> = new Float32Array(0);
  outAt = 0;
  deltaAt = 0;
  pushAt = 0;
  pushes = 0;
  pushLimit = 0;
  fed = false;
  backpropagated = false;
}

/**
 * One synapse as forward() or backward() sees it. In forward: getInput() is the previous layer's output (1 for
 * the bias synapse, which comes last) and getWeight() the synapse's weight; getDelta() is NaN. In backward:
 * getDelta() is the delta of the next layer's neuron it feeds, getWeight() the weight, getInput() this neuron's
 * own output.
 */
export interface Synapse {
  getInput(): number;
  getWeight(): number;
  getDelta(): number;
  /** Whether this is the bias synapse (input 1), the last of forward's messages. */
  isBias(): boolean;
}

const DONE: IteratorResult<never> = { value: undefined, done: true };

/**
 * Forward's incoming synapses: an iterable that is its own iterator and its own synapse, moved along in place, so
 * a loop over it allocates nothing (one class per direction keeps the user's loops monomorphic).
 */
export class ForwardSynapses implements Iterable<Synapse>, Iterator<Synapse>, Synapse {
  /** @internal */ f32: Float32Array<ArrayBufferLike> = new Float32Array(0);
  /** @internal */ fanIn = 0;
  /** @internal */ inputAt = 0;
  /** @internal */ weightAt = 0;
  /** @internal */ weightStride = 1;
  /** @internal */ biasAt = 0;
  private i = -1;
  private w = 0;
  private readonly result: IteratorResult<Synapse> = { value: this, done: false };

  [Symbol.iterator](): Iterator<Synapse> {
    this.i = -1;
    this.w = this.weightAt - this.weightStride;
    return this;
  }

  next(): IteratorResult<Synapse> {
    if (++this.i > this.fanIn) return DONE;
    this.w += this.weightStride;
    return this.result;
  }

  getInput(): number {
    return this.i < this.fanIn ? this.f32[this.inputAt + this.i]! : 1;
  }

  getWeight(): number {
    return this.f32[this.i < this.fanIn ? this.w : this.biasAt]!;
  }

  getDelta(): number {
    return Number.NaN;
  }

  isBias(): boolean {
    return this.i >= this.fanIn;
  }
}

/** Backward's outgoing synapses, as ForwardSynapses. */
export class BackwardSynapses implements Iterable<Synapse>, Iterator<Synapse>, Synapse {
  /** @internal */ f32: Float32Array<ArrayBufferLike> = new Float32Array(0);
  /** @internal */ size = 0;
  /** @internal */ deltaAt = 0;
  /** @internal */ weightAt = 0;
  /** @internal */ ownOutput = 0;
  private i = -1;
  private readonly result: IteratorResult<Synapse> = { value: this, done: false };

  [Symbol.iterator](): Iterator<Synapse> {
    this.i = -1;
    return this;
  }

  next(): IteratorResult<Synapse> {
    return ++this.i < this.size ? this.result : DONE;
  }

  getInput(): number {
    return this.ownOutput;
  }

  getWeight(): number {
    return this.f32[this.weightAt + this.i]!;
  }

  getDelta(): number {
    return this.f32[this.deltaAt + this.i]!;
  }

  isBias(): boolean {
    return false;
  }
}

/**
 * Base class of per-neuron types. Subclass it, implement forward and backward, and export the class; give it
 * `static module = import.meta.url` so worker threads and other processes can import it. The engine makes one
 * instance per unit of the layer on each thread and calls it once per sample.
 *
 * Unlike Horn, push() takes the GRADIENT of the loss with respect to the synapse's weight (Horn pushes the weight
 * correction, -learningRate * gradient + momentum): downpour's optimizer (SGD, momentum, Adagrad, Adam, or the
 * parameter servers' Adagrad) turns gradients into corrections.
 */
export abstract class Neuron {
  /** The layer's squashing function (its `activation`: identity, sigmoid, tanh or relu). */
  squashingFunction!: SquashingFunction;
  /** @internal */ cursor!: NeuronCursor;
  /** @internal */ layerIndex = 0;
  /** @internal */ unitIndex = 0;

  /** Reads the incoming synapses (the bias last, input 1) and calls feedforward(output) once. */
  abstract forward(synapses: Iterable<Synapse>): void;
  /** Reads the outgoing synapses, calls push(gradient) once per synapse in order, then backpropagate(delta). */
  abstract backward(synapses: Iterable<Synapse>): void;

  /** Sets this neuron's output for the current sample. */
  feedforward(output: number): void {
    const c = this.cursor;
    c.f32[c.outAt] = output;
    c.fed = true;
  }

  /** Sets this neuron's delta (dLoss / d its weighted sum) for the current sample. */
  backpropagate(delta: number): void {
    const c = this.cursor;
    c.f32[c.deltaAt] = delta;
    c.backpropagated = true;
  }

  /** The gradient of the loss with respect to the weight of the current outgoing synapse. */
  push(gradient: number): void {
    const c = this.cursor;
    if (c.pushes < c.pushLimit) c.f32[c.pushAt + c.pushes] = gradient;
    c.pushes++;
  }

  /** This neuron's output for the current sample (valid after feedforward, and in backward). */
  getOutput(): number {
    return this.cursor.f32[this.cursor.outAt]!;
  }

  /** Index of this neuron's layer (0 = the first layer after the inputs). */
  getLayerIndex(): number {
    return this.layerIndex;
  }

  /** Index of this neuron in its layer. */
  getNeuronIndex(): number {
    return this.unitIndex;
  }
}

/**
 * A class that extends Neuron (any copy of the package), as a neuron type's export. Its optional `static onnx`
 * is its forward as standard ONNX operators over the layer's weighted sums (see OnnxComposition in types.ts), so
 * models with it export to ONNX; Horn's StandardNeuron: `static onnx = (g, z) => g.squash(z)`.
 */
export type NeuronClass = (new () => Neuron) & { module?: string; onnx?: OnnxComposition };
