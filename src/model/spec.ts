// The structure of a layered ANN as the user sets it (sizes, activations, cost, initialization, dropout),
// its validation with errors that name the offending field, and the defaults.
import { DownpourError } from "../errors.js";
import { ACTIVATIONS, type Activation } from "./neurons/builtin-names.js";
import { parseNeuronSpecifier, refOfDefinition, resolveModuleSpecifier } from "./neurons/registry.js";
import { NeuronTypeError, type NeuronRef, type NeuronType } from "./neurons/types.js";

export { ACTIVATIONS, type Activation };

/** squared-error: 0.5 (y-t)^2. cross-entropy: binary, per output (sigmoid outputs). softmax-cross-entropy: multi-class. */
export const COSTS = ["squared-error", "cross-entropy", "softmax-cross-entropy"] as const;
export type Cost = (typeof COSTS)[number];

export const INITS = ["auto", "xavier", "he"] as const;
export type Init = (typeof INITS)[number];

/** One layer of units fed by the previous layer (or the inputs). */
export interface LayerSpec {
  units: number;
  /** Default "sigmoid", as in Apache Hama. */
  activation?: Activation;
  /** Probability of dropping each unit's output while training (hidden layers only). Default 0. */
  dropout?: number;
  /**
   * A user neuron type for a hidden layer: "MODULE#EXPORT" (./neurons.js#Swish, relative to the working
   * directory), { module, export }, or the definition itself (in-process; give it `module: import.meta.url` so
   * threads and other processes can import it). Default: the built-in type named by `activation`. For a
   * per-neuron type, `activation` is its squashing function.
   */
  neuron?: string | NeuronRef | NeuronType;
}

/** A layer with every default filled in; `neuron` is a reference with an absolute module URL, or absent. */
export interface ResolvedLayer {
  units: number;
  activation: Activation;
  dropout: number;
  neuron?: NeuronRef;
}

/** A layered network: inputs, then layers in order; the last layer is the output. */
export interface NetworkSpec {
  inputs: number;
  layers: LayerSpec[];
  /** Default: softmax-cross-entropy after a softmax output, cross-entropy after sigmoid, squared-error otherwise. */
  cost?: Cost;
  /** Weight initialization: "xavier" (Glorot uniform), "he" (He normal), "auto" = he before relu. Default "auto". */
  init?: Init;
  /** Seed of the initial weights. Default 1. */
  seed?: number;
  /**
   * The inputs are sparse (a SparseDataset: rows of index/value pairs): the first layer's forward is a sparse-by-dense
   * product and its weight gradient touches only the rows of the features present. Default false.
   */
  sparseInputs?: boolean;
}

/** A spec with every default filled in. */
export interface ResolvedSpec {
  inputs: number;
  layers: ResolvedLayer[];
  cost: Cost;
  init: Init;
  seed: number;
  /** Present (true) only for sparse inputs, so dense specs and their files are as before. */
  sparseInputs?: true;
}

/** A spec field that is missing or out of range; the message names the field. */
export class SpecError extends DownpourError {}

function positiveInt(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new SpecError(`${field} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new SpecError(`${field} must be one of ${allowed.join(", ")}; got ${JSON.stringify(value)}`);
  return value as T;
}

// The layer's user type as a reference, or undefined for a built-in; throws SpecError naming the field.
function resolveNeuron(value: LayerSpec["neuron"], field: string, isOutput: boolean): NeuronRef | undefined {
  if (value === undefined) return undefined;
  if (isOutput) throw new SpecError(`${field}: user neuron types are for hidden layers; the output layer's loss uses its built-in kernel (set its activation instead)`);
  try {
    if (typeof value === "string") return parseNeuronSpecifier(value, field);
    if (typeof value === "object" && value !== null && typeof (value as NeuronRef).module === "string" && typeof (value as NeuronRef).export === "string" && !("f" in value) && !("forward" in value)) {
      const ref = value as NeuronRef;
      if (!ref.export) throw new SpecError(`${field}.export must name the module's export, got ""`);
      return { module: resolveModuleSpecifier(ref.module), export: ref.export };
    }
    return refOfDefinition(value as NeuronType, field);
  } catch (error) {
    if (error instanceof NeuronTypeError) throw new SpecError(error.message, { cause: error });
    throw error;
  }
}

function resolveLayer(layer: LayerSpec, index: number, isOutput: boolean): ResolvedLayer {
  const field = `layers[${index}]`;
  if (typeof layer !== "object" || layer === null) throw new SpecError(`${field} must be an object like { "units": 10 }`);
  const dropout = layer.dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) throw new SpecError(`${field}.dropout must be in [0, 1), got ${dropout}`);
  if (isOutput && dropout > 0) throw new SpecError(`${field}.dropout: the output layer cannot have dropout`);
  const units = positiveInt(`${field}.units`, layer.units);
  const activation = oneOf(`${field}.activation`, layer.activation, ACTIVATIONS, "sigmoid");
  if (activation === "softmax" && units === 1) {
    throw new SpecError(
      `${field}.activation: softmax over 1 unit always outputs 1; use sigmoid for one output, or give the layer 2 or more units`,
    );
  }
  const neuron = typeof layer.neuron === "string" && (ACTIVATIONS as readonly string[]).includes(layer.neuron) ? undefined : resolveNeuron(layer.neuron, `${field}.neuron`, isOutput);
  const named = typeof layer.neuron === "string" && neuron === undefined ? (layer.neuron as Activation) : activation;
  return neuron ? { units, activation: named, dropout, neuron } : { units, activation: named, dropout };
}

function defaultCost(last: Activation): Cost {
  if (last === "softmax") return "softmax-cross-entropy";
  if (last === "sigmoid") return "cross-entropy";
  return "squared-error";
}

/** Fills defaults and checks every field; throws SpecError naming the field. */
export function resolveSpec(spec: NetworkSpec): ResolvedSpec {
  if (typeof spec !== "object" || spec === null) throw new SpecError("a network spec must be an object with inputs and layers");
  const inputs = positiveInt("inputs", spec.inputs);
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) throw new SpecError("layers must be a non-empty array of { units, activation }");
  const layers = spec.layers.map((layer, i) => resolveLayer(layer, i, i === spec.layers.length - 1));
  const last = layers[layers.length - 1]!.activation;
  const cost = oneOf("cost", spec.cost, COSTS, defaultCost(last));
  if (cost === "softmax-cross-entropy" && last !== "softmax") {
    throw new SpecError(`cost softmax-cross-entropy needs a softmax output layer; layers[${layers.length - 1}].activation is ${last}`);
  }
  if (cost === "cross-entropy" && last !== "sigmoid" && last !== "softmax") {
    throw new SpecError(`cost cross-entropy needs sigmoid (or softmax) outputs in (0, 1); layers[${layers.length - 1}].activation is ${last}`);
  }
  const seed = spec.seed ?? 1;
  if (!Number.isInteger(seed)) throw new SpecError(`seed must be an integer, got ${seed}`);
  const sparseInputs = spec.sparseInputs ?? false;
  if (typeof sparseInputs !== "boolean") throw new SpecError(`sparseInputs must be true or false, got ${JSON.stringify(sparseInputs)}`);
  return { inputs, layers, cost, init: oneOf("init", spec.init, INITS, "auto"), seed, ...(sparseInputs ? { sparseInputs: true as const } : {}) };
}

/** Inputs of layer `index` (the previous layer's units, or the network inputs). */
export function fanIn(spec: ResolvedSpec, index: number): number {
  return index === 0 ? spec.inputs : spec.layers[index - 1]!.units;
}

/** Units of the output layer. */
export function outputsOf(spec: ResolvedSpec): number {
  return spec.layers[spec.layers.length - 1]!.units;
}
