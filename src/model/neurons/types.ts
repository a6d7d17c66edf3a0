// The three ways to define a neuron type (scalar, block, per-neuron), the reference that names one across
// threads, processes and model files, the classification of a module's export into one of the forms, and the
// shape of a type's optional ONNX composition (OnnxOps, structural, so the model layer imports nothing of src/onnx).
import { DownpourError } from "../../errors.js";
import type { NeuronClass } from "./neuron.js";

/**
 * What an ONNX composition (a neuron type's `onnx`) builds its layer's outputs with, when the model is exported
 * (downpour's exportOnnx). Values are named by strings: the composition gets the name of the layer's weighted
 * sums z (rows x units, the Gemm of its inputs, weights and biases) and returns the name of its outputs.
 */
export interface OnnxOps {
  /**
   * A node of a standard ONNX operator (the default domain, opset 17) over the values named by `inputs`; returns
   * the name of its (first) output. Integer numbers are INT attributes, except the float attributes alpha, beta,
   * gamma, epsilon, bias, lambd, min and max; other numbers are FLOAT; arrays are INTS or FLOATS alike; strings STRING.
   */
  op(type: string, inputs: string[], attributes?: Record<string, number | number[] | string>): string;
  /** A float constant: a scalar for a number (dims []), else `values` with `dims` (default [values.length]). */
  constant(values: number[] | number, dims?: number[]): string;
  /** The layer's activation (identity, sigmoid, tanh, relu) over x: a per-neuron type's squashing function. */
  squash(x: string): string;
  /** The layer's activation name. */
  readonly activation: string;
}

/**
 * How a neuron type exports to ONNX: its outputs from the layer's weighted sums z, as standard operators (Swish:
 * `(g, z) => g.op("Mul", [z, g.op("Sigmoid", [z])])`). A layer whose type has none cannot be exported.
 */
export type OnnxComposition = (g: OnnxOps, z: string) => string;

/** Where a user neuron type comes from: a module specifier (absolute URL once resolved) and an export name. */
export interface NeuronRef {
  module: string;
  export: string;
}

/**
 * Form 1, scalar: f(z) and its derivative, run over whole layer blocks. Give exactly one derivative:
 * from the output y (sigmoid: y(1-y)), from the input z, or from both.
 */
export interface ScalarNeuronType {
  form?: "scalar";
  f(z: number): number;
  derivativeFromOutput?(y: number): number;
  derivativeFromInput?(z: number): number;
  derivative?(z: number, y: number): number;
  /** f as standard ONNX operators, so models with this type export to ONNX (see OnnxComposition). Optional. */
  onnx?: OnnxComposition;
  /** Module URL (set `module: import.meta.url`) so worker threads and other processes can import the type. */
  module?: string;
  /** Its export name in that module: needed only when the definition itself is passed (not "MODULE#EXPORT"). */
  name?: string;
}

/**
 * Form 2, block: forward writes the layer's outputs `out` from its weighted sums `z` (rows x cols, row-major);
 * backward writes dz = dLoss/dz from dout = dLoss/dout, the outputs and the sums. The arrays never alias.
 */
export interface BlockNeuronType {
  form?: "block";
  forward(out: Float32Array, z: Float32Array, rows: number, cols: number): void;
  backward(dz: Float32Array, dout: Float32Array, out: Float32Array, z: Float32Array, rows: number, cols: number): void;
  /** forward as standard ONNX operators over the whole block (see OnnxComposition). Optional. */
  onnx?: OnnxComposition;
  /** As ScalarNeuronType's module and name. */
  module?: string;
  name?: string;
}

/** Any user neuron type: a scalar or block definition, or a class extending Neuron (form 3). */
export type NeuronType = ScalarNeuronType | BlockNeuronType | NeuronClass;

/** The form of a type, as the engine runs it; "kernel" is a built-in (the core's kernels). */
export type NeuronForm = "kernel" | "scalar" | "block" | "per-neuron";

/** A neuron module that cannot be imported, an export that is missing or not a neuron type. */
export class NeuronTypeError extends DownpourError {
  readonly module: string;
  readonly exportName: string;

  constructor(message: string, ref: NeuronRef, options?: { cause?: unknown }) {
    super(message, options);
    this.module = ref.module;
    this.exportName = ref.export;
  }
}

/** A user type's wrong behaviour while running (no feedforward, wrong pushes): names the type, layer and unit. */
export class NeuronRunError extends DownpourError {}

/** A classified user type. */
export type ClassifiedType =
  | { form: "scalar"; type: ScalarNeuronType; uses: "output" | "input" | "both" }
  | { form: "block"; type: BlockNeuronType }
  | { form: "per-neuron"; type: NeuronClass };

const isFunction = (v: unknown): v is (...args: unknown[]) => unknown => typeof v === "function";

/** Which form `value` is; throws NeuronTypeError (naming `what`) when it is none, or when its `onnx` is not a function. */
export function classifyNeuronType(value: unknown, ref: NeuronRef, what: string): ClassifiedType {
  const onnx = (value as { onnx?: unknown } | null | undefined)?.onnx;
  if (onnx !== undefined && !isFunction(onnx)) throw new NeuronTypeError(`${what}: its onnx must be a function (g, z) => output name (an ONNX composition), got ${typeof onnx}`, ref);
  return classifyForm(value, ref, what);
}

function classifyForm(value: unknown, ref: NeuronRef, what: string): ClassifiedType {
  const expected = "a neuron type: { f, derivativeFromOutput | derivativeFromInput | derivative } (scalar), { forward, backward } (block), or a class extending Neuron";
  if (isFunction(value)) {
    const proto = (value as { prototype?: Record<string, unknown> }).prototype;
    if (proto && isFunction(proto.forward) && isFunction(proto.backward)) {
      if (!isFunction(proto.feedforward) || !isFunction(proto.push)) throw new NeuronTypeError(`${what}: class ${value.name || "(anonymous)"} has forward and backward but does not extend Neuron (the base class the package exports)`, ref);
      return { form: "per-neuron", type: value as unknown as NeuronClass };
    }
    throw new NeuronTypeError(`${what} is a function, not ${expected}`, ref);
  }
  if (typeof value !== "object" || value === null) throw new NeuronTypeError(`${what} is ${value === null ? "null" : typeof value}, expected ${expected}`, ref);
  const v = value as Record<string, unknown>;
  if (v.form === "scalar" || (v.form === undefined && isFunction(v.f))) return classifyScalar(v as unknown as ScalarNeuronType, ref, what);
  if (v.form === "block" || (v.form === undefined && isFunction(v.forward) && isFunction(v.backward))) {
    if (!isFunction(v.forward) || !isFunction(v.backward)) throw new NeuronTypeError(`${what}: a block type needs forward(out, z, rows, cols) and backward(dz, dout, out, z, rows, cols)`, ref);
    return { form: "block", type: v as unknown as BlockNeuronType };
  }
  throw new NeuronTypeError(`${what} is an object with ${Object.keys(v).join(", ") || "no fields"}; expected ${expected}`, ref);
}

function classifyScalar(type: ScalarNeuronType, ref: NeuronRef, what: string): ClassifiedType {
  if (!isFunction(type.f)) throw new NeuronTypeError(`${what}: a scalar type needs f(z)`, ref);
  const given = (["derivativeFromOutput", "derivativeFromInput", "derivative"] as const).filter((k) => type[k] !== undefined);
  if (given.length !== 1 || !isFunction(type[given[0]!])) {
    throw new NeuronTypeError(`${what}: a scalar type needs exactly one of derivativeFromOutput(y), derivativeFromInput(z), derivative(z, y); it has ${given.length ? given.join(", ") : "none"}`, ref);
  }
  const uses = given[0] === "derivativeFromOutput" ? "output" : given[0] === "derivativeFromInput" ? "input" : "both";
  return { form: "scalar", type, uses };
}

/** A scalar type (form 1); the helper only checks it and marks its form. */
export function scalarNeuron(type: Omit<ScalarNeuronType, "form">): ScalarNeuronType {
  const marked = { ...type, form: "scalar" as const };
  classifyScalar(marked, { module: type.module ?? "", export: "" }, "scalarNeuron(...)");
  return marked;
}

/** A block type (form 2); the helper only marks its form. */
export function blockNeuron(type: Omit<BlockNeuronType, "form">): BlockNeuronType {
  return { ...type, form: "block" };
}
