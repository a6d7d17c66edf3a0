// The structure of a layered ANN as the user sets it (sizes, activations, cost, initialization, dropout),
// its validation with errors that name the offending field, and the defaults.
import { DownpourError } from "../errors.js";

export const ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "softmax"] as const;
export type Activation = (typeof ACTIVATIONS)[number];

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
}

/** A spec with every default filled in. */
export interface ResolvedSpec {
  inputs: number;
  layers: Required<LayerSpec>[];
  cost: Cost;
  init: Init;
  seed: number;
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

function resolveLayer(layer: LayerSpec, index: number, isOutput: boolean): Required<LayerSpec> {
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
  return { units, activation, dropout };
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
  return { inputs, layers, cost, init: oneOf("init", spec.init, INITS, "auto"), seed };
}

/** Inputs of layer `index` (the previous layer's units, or the network inputs). */
export function fanIn(spec: ResolvedSpec, index: number): number {
  return index === 0 ? spec.inputs : spec.layers[index - 1]!.units;
}

/** Units of the output layer. */
export function outputsOf(spec: ResolvedSpec): number {
  return spec.layers[spec.layers.length - 1]!.units;
}
