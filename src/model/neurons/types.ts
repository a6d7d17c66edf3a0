// The three ways to define a neuron type (scalar, block, per-neuron), the reference that names one across
// threads, processes and model files, and the classification of a module's export into one of the forms.
import { DownpourError } from "../../errors.js";
import type { NeuronClass } from "./neuron.js";

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

/** Which form `value` is; throws NeuronTypeError (naming `what`) when it is none. */
export function classifyNeuronType(value: unknown, ref: NeuronRef, what: string): ClassifiedType {
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
