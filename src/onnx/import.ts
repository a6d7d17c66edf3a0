// ONNX graphs that are a chain of dense layers and activations, read back as downpour models that evaluate and train
// further: Gemm (PyTorch) or MatMul then Add (Keras, tf2onnx) per layer, then Relu, Sigmoid, Tanh, Softmax or
// nothing; a leading Sub/Div (and 0/1 mask) becomes the model's input scaling, any other leading affine is folded
// into the first layer. The metadata downpour's exporter writes restores the model class, cost and spec. Any other
// graph is an OnnxImportError naming the first node it cannot take.
import { defaultKernels } from "../api/default-kernels.js";
import { Kernels } from "../core/kernels.js";
import { InvalidArgumentError } from "../errors.js";
import { describeValue } from "../util/describe.js";
import { MODEL_CLASSES, type Model, type ModelKind } from "../api/models.js";
import { asScaling, type Scaling } from "../data/scaling.js";
import { Network } from "../model/network.js";
import { type Activation, COSTS, type Cost, type LayerSpec, type NetworkSpec, resolveSpec, SpecError } from "../model/spec.js";
import { decodeOnnx, ONNX_FLOAT, type OnnxAttribute, type OnnxGraph, type OnnxImportFailure, OnnxImportError, type OnnxModel, type OnnxNode, type OnnxTensor, tensorFloats } from "./codec.js";

/** Options of importOnnx. */
export interface OnnxImportOptions {
  /** Core and arena the model lives in. Default: the process-wide core (defaultKernels()). */
  kernels?: Kernels;
  /** What names the bytes in errors (a file path). Default "the ONNX bytes". */
  source?: string;
}

/** The defaults of OnnxImportOptions. */
export const ONNX_IMPORT_DEFAULTS = { source: "the ONNX bytes" } as const;

/** The metadata keys downpour's exporter writes (src/onnx/export.ts). */
const KEYS = { kind: "downpour.kind", cost: "downpour.cost", scaling: "downpour.scaling", stats: "downpour.scaling.stats", spec: "downpour.spec" } as const;

/** ONNX activation ops and the downpour activations they are. */
const ACTIVATION_OPS: Record<string, Activation> = { Relu: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softmax: "softmax" };
/** Ops that change nothing at inference on a [batch, features] value. */
const PASS_THROUGH_OPS = new Set(["Identity", "Dropout", "Flatten"]);
/** Elementwise ops with a constant that may lead the graph (input scaling or an affine). */
const PREFIX_OPS = new Set(["Sub", "Div", "Mul", "Add"]);
/** Every op a chain may hold besides Constant. */
const KNOWN_OPS = new Set(["Gemm", "MatMul", ...Object.keys(ACTIVATION_OPS), ...PASS_THROUGH_OPS, ...PREFIX_OPS]);
/** The model classes whose own cost differs from the default of their output activation. */
const KIND_COSTS: Partial<Record<ModelKind, Cost>> = { Perceptron: "squared-error", AutoEncoder: "squared-error" };
/** What the refusal of an unknown op says is taken. */
const TAKEN =
  "not a dense layer (Gemm, or MatMul then Add) or one of the activations Relu, Sigmoid, Tanh, Softmax, Identity (Dropout and Flatten pass through)";

/** One dense layer read from the graph: weights fanIn x units row-major (downpour's layout). */
interface DenseLayer {
  node: string;
  fanIn: number;
  units: number;
  weights: Float32Array;
  bias: Float32Array;
  activation?: Activation;
}

/** A leading elementwise op with a per-column constant (`constFirst`: the constant is the left operand). */
interface PrefixOp {
  node: string;
  op: string;
  values: Float64Array;
  constFirst: boolean;
}

/** The state of the walk along the chain. */
interface Chain {
  /** The name of the chain's value so far. */
  current: string;
  /** Its width (columns). */
  width: number;
  prefix: PrefixOp[];
  layers: DenseLayer[];
}

/** What a node is called in errors, and its name or #index in OnnxImportError.node. */
interface NodeRef {
  node: OnnxNode;
  label: string;
  id: string;
}

/** Everything the walk reads besides the chain: constants by name, the opset, where errors come from. */
interface Context {
  source: string;
  constants: Map<string, OnnxTensor>;
  opset: number;
  /** The graph input's width, once read. */
  features: number;
}

/**
 * The downpour model an ONNX graph describes: a chain of dense layers and activations from one float input
 * [batch, F] to one output. Rejects with OnnxImportError: reason "not-onnx" or "truncated" for bytes that are not a
 * whole ONNX model, "unsupported" for a graph that is not such a chain (naming the first node it cannot take, its
 * op type and the attribute or input at fault), "malformed" for shapes that do not chain, bad tensor data or
 * metadata; MemoryLimitError when the parameters do not fit the kernels' arena; InvalidArgumentError for bad
 * options. `bytes` may be an ArrayBuffer (a fetch() response's), read without copying.
 */
export async function importOnnx(bytes: Uint8Array | ArrayBuffer, options: OnnxImportOptions = {}): Promise<Model> {
  requireOptions(options);
  const source = options.source ?? ONNX_IMPORT_DEFAULTS.source;
  const onnx = decodeOnnx(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes, source);
  const ctx: Context = { source, constants: initializers(onnx.graph), opset: defaultOpset(onnx), features: 0 };
  const input = graphInput(onnx.graph, ctx);
  ctx.features = input.features;
  const chain = walk(onnx.graph.node, { current: input.name, width: input.features, prefix: [], layers: [] }, ctx);
  requireOutput(onnx.graph, chain, ctx);
  const meta = metadata(onnx, ctx);
  const scaling = scalingOf(chain, meta, ctx);
  const kind = meta.kind ?? defaultKind(chain.layers);
  const spec = specOf(chain, input.features, kind, meta, scaling, ctx);
  const network = Network.create(options.kernels ?? (await defaultKernels()), spec);
  try {
    network.setTensors(chain.layers.flatMap((layer, l) => [
      { name: `w${l}`, shape: [layer.fanIn, layer.units], data: layer.weights },
      { name: `b${l}`, shape: [layer.units], data: layer.bias },
    ]));
  } catch (error) {
    network.dispose();
    throw error;
  }
  const model = new MODEL_CLASSES[kind](kind, network, {});
  model.inputScaling = scaling;
  return model;
}

/** Throws InvalidArgumentError naming the option unless `options` is { kernels?: Kernels, source?: string }. */
function requireOptions(options: unknown): asserts options is OnnxImportOptions {
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError(`importOnnx: options must be an object like { source, kernels }, got ${describeValue(options)}`);
  const { kernels, source } = options as OnnxImportOptions;
  if (kernels !== undefined && !(kernels instanceof Kernels)) throw new InvalidArgumentError(`importOnnx: options.kernels must be a Kernels (from Kernels.load()), got ${describeValue(kernels)}`);
  if (source !== undefined && typeof source !== "string") throw new InvalidArgumentError(`importOnnx: options.source must be a string (what names the bytes in errors), got ${describeValue(source)}`);
}

function fail(ctx: Context, message: string, reason: OnnxImportFailure, at?: NodeRef): never {
  const where = at ? `${at.label}: ` : "";
  throw new OnnxImportError(`${ctx.source}: ${where}${message}`, { reason, node: at?.id, opType: at?.node.op_type });
}

function initializers(graph: OnnxGraph): Map<string, OnnxTensor> {
  return new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t]));
}

/** The default-domain opset the model imports (the latest when it does not say). */
function defaultOpset(onnx: OnnxModel): number {
  const entry = (onnx.opset_import ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
  return entry?.version ?? Number.MAX_SAFE_INTEGER;
}

// ---------------------------------------------------------------------------------------------------------------
// The graph's input and output

/** The one float input [batch, F] that is not an initializer. */
function graphInput(graph: OnnxGraph, ctx: Context): { name: string; features: number } {
  const inputs = graph.input.filter((v) => !ctx.constants.has(v.name));
  const expected = "expected one float input [batch, features] with the features known";
  if (inputs.length !== 1) fail(ctx, `the graph has ${inputs.length} inputs (${inputs.map((v) => `'${v.name}'`).join(", ") || "none"}) besides its initializers; ${expected}`, "unsupported");
  const input = inputs[0]!;
  const tensor = input.type?.tensor_type;
  const elem = tensor?.elem_type ?? 0;
  if (elem !== ONNX_FLOAT) fail(ctx, `input '${input.name}' has element type ${elem}; ${expected} (FLOAT, 1)`, "unsupported");
  const dims = tensor?.shape?.dim;
  const features = dims?.[1]?.dim_value;
  if (dims?.length !== 2 || !(typeof features === "number" && features > 0)) {
    const shape = dims ? `[${dims.map((d) => d.dim_value ?? d.dim_param ?? "?").join(", ")}]` : "no shape";
    fail(ctx, `input '${input.name}' has ${dims ? `shape ${shape}` : shape}; ${expected}`, "unsupported");
  }
  return { name: input.name, features };
}

/** The graph has one output, the value the last node produces. */
function requireOutput(graph: OnnxGraph, chain: Chain, ctx: Context): void {
  if (chain.layers.length === 0) fail(ctx, "the graph has no dense layer (Gemm, or MatMul then Add)", "unsupported");
  const expected = `expected one output, the value '${chain.current}' that the last node produces`;
  if (graph.output.length !== 1) fail(ctx, `the graph has ${graph.output.length} outputs (${graph.output.map((v) => `'${v.name}'`).join(", ") || "none"}); ${expected}`, "unsupported");
  const output = graph.output[0]!;
  if (output.name !== chain.current) fail(ctx, `the graph's output '${output.name}' is not the chain's last value; ${expected}`, "unsupported");
  const last = graph.node.at(-1);
  if (!last?.output.includes(chain.current)) fail(ctx, `the last node does not produce the output '${output.name}'; ${expected}`, "unsupported");
  const elem = output.type?.tensor_type?.elem_type;
  if (elem !== undefined && elem !== ONNX_FLOAT) fail(ctx, `output '${output.name}' has element type ${elem}; expected FLOAT (1)`, "unsupported");
}

// ---------------------------------------------------------------------------------------------------------------
// The walk along the chain

function walk(nodes: OnnxNode[], chain: Chain, ctx: Context): Chain {
  for (const [index, node] of nodes.entries()) {
    const at: NodeRef = { node, id: node.name || `#${index}`, label: node.name ? `node '${node.name}' (${node.op_type})` : `node #${index} (${node.op_type})` };
    if (node.domain && node.domain !== "ai.onnx") fail(ctx, `an op of domain '${node.domain}'; ${TAKEN}`, "unsupported", at);
    if (node.op_type === "Constant") {
      constantNode(at, ctx);
      continue;
    }
    if (!KNOWN_OPS.has(node.op_type)) fail(ctx, TAKEN, "unsupported", at);
    requireChained(at, chain, ctx);
    step(at, chain, ctx);
  }
  return chain;
}

/** The node reads the chain's value once, and otherwise only constants (absent optional inputs are ""). */
function requireChained(at: NodeRef, chain: Chain, ctx: Context): void {
  const reads = at.node.input.filter((name) => name === chain.current).length;
  if (reads !== 1) {
    const what = reads === 0 ? `does not read '${chain.current}', the value of the chain so far` : `reads '${chain.current}' ${reads} times`;
    fail(ctx, `${what}; expected a chain of dense layers and activations, each node taking the previous one's output`, "unsupported", at);
  }
  const other = at.node.input.find((name) => name !== "" && name !== chain.current && !ctx.constants.has(name));
  if (other !== undefined) fail(ctx, `input '${other}' is neither the chain's value '${chain.current}' nor an initializer or Constant; a branching graph is not a chain of layers`, "unsupported", at);
  if (!at.node.output[0]) fail(ctx, "has no output", "malformed", at);
}

function step(at: NodeRef, chain: Chain, ctx: Context): void {
  const op = at.node.op_type;
  if (op === "Gemm") chain.layers.push(gemm(at, chain, ctx));
  else if (op === "MatMul") chain.layers.push(matMul(at, chain, ctx));
  else if (op in ACTIVATION_OPS) activation(at, chain, ctx);
  else if (PASS_THROUGH_OPS.has(op)) passThrough(at, ctx);
  else if (op === "Add" && chain.layers.length > 0) addBias(at, chain, ctx);
  else if (PREFIX_OPS.has(op) && chain.layers.length === 0) chain.prefix.push(prefixOp(at, chain, ctx));
  else fail(ctx, `${TAKEN}; ${op} is taken only before the first dense layer (input scaling), or Add right after one (its bias)`, "unsupported", at);
  chain.current = at.node.output[0]!;
}

function attribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

/** An int attribute (absent: `fallback`; present without a value: 0, as proto3 omits zeros). */
function intAttribute(node: OnnxNode, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a === undefined ? fallback : (a.i ?? 0);
}

function floatAttribute(node: OnnxNode, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a === undefined ? fallback : (a.f ?? 0);
}

function requireAttribute(at: NodeRef, ctx: Context, name: string, value: number, allowed: readonly number[]): void {
  if (!allowed.includes(value)) fail(ctx, `attribute ${name} is ${value}; only ${allowed.join(" or ")} is taken (a dense layer x·W + b)`, "unsupported", at);
}

/** A Constant node's tensor (value, value_float or value_floats), recorded under its output's name. */
function constantNode(at: NodeRef, ctx: Context): void {
  const [name] = at.node.output;
  const [attr, ...more] = at.node.attribute ?? [];
  if (!name || !attr || more.length > 0) fail(ctx, "expected one output and one value attribute", "malformed", at);
  let tensor: OnnxTensor;
  if (attr.name === "value" && attr.t) tensor = { ...attr.t, name };
  else if (attr.name === "value_float") tensor = { name, dims: [], data_type: ONNX_FLOAT, float_data: [attr.f ?? 0] };
  else if (attr.name === "value_floats") tensor = { name, dims: [(attr.floats ?? []).length], data_type: ONNX_FLOAT, float_data: attr.floats ?? [] };
  else fail(ctx, `attribute ${attr.name}: only a float tensor (value, value_float, value_floats) is taken`, "unsupported", at);
  ctx.constants.set(name, tensor);
}

/** The values of the constant `name` and its dims, refusing non-finite values by name. */
function constant(at: NodeRef, ctx: Context, name: string | undefined, role: string): { dims: number[]; values: Float32Array } {
  const tensor = name ? ctx.constants.get(name) : undefined;
  if (!tensor) fail(ctx, `its ${role} is not an initializer or Constant`, "unsupported", at);
  let values: Float32Array;
  try {
    values = tensorFloats(tensor);
  } catch (error) {
    if (error instanceof OnnxImportError) fail(ctx, `${role}: ${error.message}`, error.reason, at);
    throw error;
  }
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) fail(ctx, `${role} '${name}' holds ${values[bad]} at index ${bad}; a model's parameters must be finite`, "malformed", at);
  return { dims: tensor.dims ?? [], values };
}

function shapeText(dims: readonly number[]): string {
  return `[${dims.join(", ")}]`;
}

/** Gemm(A = the chain, B, C?): alpha 1, beta 1, transA 0; B [fanIn, units] (transB 0) or [units, fanIn] (transB 1). */
function gemm(at: NodeRef, chain: Chain, ctx: Context): DenseLayer {
  const { node } = at;
  requireAttribute(at, ctx, "transA", intAttribute(node, "transA", 0), [0]);
  requireAttribute(at, ctx, "alpha", floatAttribute(node, "alpha", 1), [1]);
  const transB = intAttribute(node, "transB", 0);
  requireAttribute(at, ctx, "transB", transB, [0, 1]);
  if (node.input[2]) requireAttribute(at, ctx, "beta", floatAttribute(node, "beta", 1), [1]);
  if (node.input[0] !== chain.current) fail(ctx, `its input A is '${node.input[0]}', not the chain's value '${chain.current}'`, "unsupported", at);
  const b = constant(at, ctx, node.input[1], "weight B");
  if (b.dims.length !== 2) fail(ctx, `weight B has dims ${shapeText(b.dims)}; expected a matrix`, "unsupported", at);
  const [fanIn, units] = transB ? [b.dims[1]!, b.dims[0]!] : [b.dims[0]!, b.dims[1]!];
  requireFanIn(at, ctx, chain, fanIn, `B ${shapeText(b.dims)} (transB ${transB})`);
  const weights = transB ? transpose(b.values, units, fanIn) : b.values;
  const bias = node.input[2] ? biasValues(at, ctx, node.input[2], units) : new Float32Array(units);
  chain.width = units;
  return { node: at.id, fanIn, units, weights, bias };
}

/** MatMul(the chain, W [fanIn, units]): a dense layer whose bias the next Add gives (zero without one). */
function matMul(at: NodeRef, chain: Chain, ctx: Context): DenseLayer {
  if (at.node.input[0] !== chain.current) fail(ctx, `its left operand is '${at.node.input[0]}', not the chain's value '${chain.current}' (expected x·W)`, "unsupported", at);
  const w = constant(at, ctx, at.node.input[1], "weight");
  if (w.dims.length !== 2) fail(ctx, `weight has dims ${shapeText(w.dims)}; expected a matrix [fanIn, units]`, "unsupported", at);
  const [fanIn, units] = [w.dims[0]!, w.dims[1]!];
  requireFanIn(at, ctx, chain, fanIn, `weight ${shapeText(w.dims)}`);
  chain.width = units;
  return { node: at.id, fanIn, units, weights: w.values, bias: new Float32Array(units) };
}

function requireFanIn(at: NodeRef, ctx: Context, chain: Chain, fanIn: number, what: string): void {
  if (fanIn !== chain.width) {
    fail(ctx, `shapes do not chain: its input '${chain.current}' is [batch, ${chain.width}] but ${what} takes ${fanIn} inputs per row`, "malformed", at);
  }
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

/** A bias of dims [units] or [1, units], or one value for every unit. */
function biasValues(at: NodeRef, ctx: Context, name: string, units: number): Float32Array {
  const c = constant(at, ctx, name, "bias");
  const perUnit = (c.dims.length === 1 && c.dims[0] === units) || (c.dims.length === 2 && c.dims[0] === 1 && c.dims[1] === units);
  if (!perUnit && c.values.length === 1 && c.dims.length <= 2) return new Float32Array(units).fill(c.values[0]!);
  if (!perUnit) fail(ctx, `shapes do not chain: bias '${name}' has dims ${shapeText(c.dims)}; expected [${units}] or [1, ${units}] for ${units} units`, "malformed", at);
  return Float32Array.from(c.values);
}

/** Add(the last layer's output, bias) before its activation: MatMul's bias (or a second one, summed). */
function addBias(at: NodeRef, chain: Chain, ctx: Context): void {
  const layer = chain.layers.at(-1)!;
  if (layer.activation !== undefined) fail(ctx, `${TAKEN}; an Add after the ${layer.activation} of the layer of node ${layer.node} is not its bias`, "unsupported", at);
  const name = at.node.input.find((n) => n !== chain.current);
  const bias = biasValues(at, ctx, name ?? "", layer.units);
  for (let j = 0; j < layer.units; j++) layer.bias[j] = layer.bias[j]! + bias[j]!;
}

/** Relu, Sigmoid, Tanh or Softmax (over the last axis) right after a dense layer. */
function activation(at: NodeRef, chain: Chain, ctx: Context): void {
  const layer = chain.layers.at(-1);
  if (!layer) fail(ctx, `an activation before the first dense layer; ${TAKEN}`, "unsupported", at);
  if (layer.activation !== undefined) fail(ctx, `a second activation after the ${layer.activation} of the layer of node ${layer.node}; expected a dense layer`, "unsupported", at);
  if (at.node.op_type === "Softmax") {
    // Opset < 13 flattens from `axis` (default 1), later opsets take the axis (default -1): on [batch, units] both are per row.
    const axis = intAttribute(at.node, "axis", ctx.opset < 13 ? 1 : -1);
    if (axis !== 1 && axis !== -1) fail(ctx, `attribute axis is ${axis}; only 1 or -1 (softmax over each row) is taken`, "unsupported", at);
  }
  layer.activation = ACTIVATION_OPS[at.node.op_type]!;
}

/** Identity, Dropout (inference) and Flatten (axis 1, on [batch, F]) leave the value as it is. */
function passThrough(at: NodeRef, ctx: Context): void {
  if (at.node.op_type === "Flatten") {
    const axis = intAttribute(at.node, "axis", 1);
    if (axis !== 1 && axis !== -1) fail(ctx, `attribute axis is ${axis}; only 1 (a [batch, features] value as it is) is taken`, "unsupported", at);
  }
}

/** A leading Sub, Div, Mul or Add of the chain and a per-column constant ([F], [1, F] or one value). */
function prefixOp(at: NodeRef, chain: Chain, ctx: Context): PrefixOp {
  const { node } = at;
  const constFirst = node.input[0] !== chain.current;
  if (constFirst && node.op_type === "Div") fail(ctx, "divides a constant by the input; only input / constant is an affine of the inputs", "unsupported", at);
  const name = node.input[constFirst ? 0 : 1];
  const c = constant(at, ctx, name, "operand");
  const f = chain.width;
  const perColumn = c.values.length === f && (c.dims.length === 1 || (c.dims.length === 2 && c.dims[0] === 1));
  const single = c.values.length === 1 && c.dims.length <= 2;
  if (!perColumn && !single) fail(ctx, `shapes do not chain: operand '${name}' has dims ${shapeText(c.dims)}; expected [${f}], [1, ${f}] or one value for [batch, ${f}] inputs`, "malformed", at);
  const values = Float64Array.from({ length: f }, (_, j) => c.values[single ? 0 : j]!);
  if (node.op_type === "Div") {
    const zero = values.indexOf(0);
    if (zero >= 0) fail(ctx, `divides input column ${zero} (0-based) by 0`, "unsupported", at);
  }
  return { node: at.id, op: node.op_type, values, constFirst };
}

// ---------------------------------------------------------------------------------------------------------------
// Input scaling, or an affine folded into the first layer

/**
 * The prefix as the model's input scaling when it is Sub(x, offset), Div(·, divisor > 0) and optionally Mul(·, a
 * 0/1 mask): z-score {mean, std (0 where masked)}, or min-max {min, max = min + divisor (min where masked)} when
 * the metadata says so; the exporter's full-precision stats (downpour.scaling.stats) when they round to the graph's
 * constants. Any other prefix is folded into the first layer (undefined returned).
 */
function scalingOf(chain: Chain, meta: Metadata, ctx: Context): Scaling | undefined {
  const kind = meta.stats?.kind ?? meta.scaling;
  const scaling = prefixScaling(chain.prefix, kind);
  if (!scaling) {
    if (kind) fail(ctx, `metadata ${KEYS.scaling} says ${kind}, but the graph does not start with its Sub and Div (and 0/1 mask) nodes`, "malformed");
    foldAffine(chain);
    return undefined;
  }
  if (!meta.stats) return scaling;
  const column = mismatchedColumn(meta.stats, chain.prefix);
  if (column >= 0) fail(ctx, `metadata ${KEYS.stats} does not round to the graph's scaling constants at input ${column} (0-based)`, "malformed");
  return meta.stats;
}

function prefixScaling(prefix: PrefixOp[], kind: Scaling["kind"] | undefined): Scaling | undefined {
  const [sub, div, mask, ...rest] = prefix;
  const isScaling =
    sub?.op === "Sub" && !sub.constFirst && div?.op === "Div" && div.values.every((d) => d > 0 && Number.isFinite(d)) &&
    rest.length === 0 && (mask === undefined || (mask.op === "Mul" && mask.values.every((m) => m === 0 || m === 1)));
  if (!isScaling) return undefined;
  const kept = (j: number) => mask === undefined || mask.values[j] === 1;
  const offset = Array.from(sub.values);
  if (kind === "min-max") return { kind, min: offset, max: offset.map((o, j) => (kept(j) ? o + div.values[j]! : o)) };
  return { kind: "z-score", mean: offset, std: Array.from(div.values, (d, j) => (kept(j) ? d : 0)) };
}

/** The first column where `stats` (f64) do not give the prefix's float32 offset, divisor and mask; -1 if none. */
function mismatchedColumn(stats: Scaling, prefix: PrefixOp[]): number {
  const [sub, div, mask] = prefix as [PrefixOp, PrefixOp, PrefixOp | undefined];
  const offset = stats.kind === "min-max" ? stats.min : stats.mean;
  const divisor = stats.kind === "min-max" ? stats.max.map((m, j) => m - stats.min[j]!) : stats.std;
  return offset.findIndex((o, j) => {
    const d = divisor[j]!;
    const kept = mask === undefined || mask.values[j] === 1;
    return Math.fround(o) !== sub.values[j] || (d > 0 ? !kept || Math.fround(d) !== div.values[j] : kept);
  });
}

/** Composes the prefix into x·diag(a) + b and folds it into the first layer: W' = diag(a)·W, bias' = bias + b·W. */
function foldAffine(chain: Chain): void {
  if (chain.prefix.length === 0) return;
  const layer = chain.layers[0]!;
  const a = new Float64Array(layer.fanIn).fill(1);
  const b = new Float64Array(layer.fanIn);
  for (const { op, values, constFirst } of chain.prefix) {
    for (let j = 0; j < layer.fanIn; j++) {
      const c = values[j]!;
      if (op === "Add") b[j]! += c;
      else if (op === "Sub" && !constFirst) b[j]! -= c;
      else if (op === "Sub") [a[j], b[j]] = [-a[j]!, c - b[j]!];
      else if (op === "Mul") [a[j], b[j]] = [a[j]! * c, b[j]! * c];
      else [a[j], b[j]] = [a[j]! / c, b[j]! / c];
    }
  }
  const { weights, bias, units } = layer;
  const shifted = Float64Array.from(bias);
  for (let i = 0; i < layer.fanIn; i++) {
    for (let u = 0; u < units; u++) {
      const w = weights[i * units + u]!;
      shifted[u]! += b[i]! * w;
      weights[i * units + u] = a[i]! * w;
    }
  }
  layer.bias = Float32Array.from(shifted);
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata and the spec

/** What downpour's exporter recorded (each absent from other producers' files). */
interface Metadata {
  kind?: ModelKind;
  cost?: Cost;
  scaling?: Scaling["kind"];
  stats?: Scaling;
  spec?: Partial<NetworkSpec>;
}

function metadata(onnx: OnnxModel, ctx: Context): Metadata {
  const props = new Map((onnx.metadata_props ?? []).map((p) => [p.key, p.value]));
  const bad = (key: string, value: string, expected: string): never => fail(ctx, `metadata ${key} is ${JSON.stringify(value)}; expected ${expected}`, "malformed");
  const meta: Metadata = {};
  const kind = props.get(KEYS.kind);
  if (kind !== undefined) meta.kind = kind in MODEL_CLASSES ? (kind as ModelKind) : bad(KEYS.kind, kind, `one of ${Object.keys(MODEL_CLASSES).join(", ")}`);
  const cost = props.get(KEYS.cost);
  if (cost !== undefined) meta.cost = (COSTS as readonly string[]).includes(cost) ? (cost as Cost) : bad(KEYS.cost, cost, `one of ${COSTS.join(", ")}`);
  const scaling = props.get(KEYS.scaling);
  if (scaling !== undefined) meta.scaling = scaling === "min-max" || scaling === "z-score" ? scaling : bad(KEYS.scaling, scaling, '"min-max" or "z-score"');
  const stats = props.get(KEYS.stats);
  if (stats !== undefined) meta.stats = parseStats(stats, meta.scaling, ctx.features, (expected) => bad(KEYS.stats, stats.slice(0, 80), expected));
  const spec = props.get(KEYS.spec);
  if (spec !== undefined) meta.spec = parseSpec(spec, (expected) => bad(KEYS.spec, spec.slice(0, 80), expected));
  return meta;
}

function parseStats(text: string, kind: Scaling["kind"] | undefined, features: number, bad: (expected: string) => never): Scaling {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad(`the JSON of ${features} columns' scaling stats`);
  }
  const stats = asScaling(value, features);
  if (typeof stats === "string") return bad(stats);
  if (kind !== undefined && stats.kind !== kind) return bad(`${kind} stats, as ${KEYS.scaling} says`);
  return stats;
}

function parseSpec(text: string, bad: (expected: string) => never): Partial<NetworkSpec> {
  try {
    const spec = JSON.parse(text) as unknown;
    if (typeof spec === "object" && spec !== null && !Array.isArray(spec)) return spec as Partial<NetworkSpec>;
  } catch {
    // refused below
  }
  return bad("the JSON of a network spec");
}

/** Without metadata: a LogisticRegression or LinearRegression for one layer of one sigmoid or identity unit. */
function defaultKind(layers: DenseLayer[]): ModelKind {
  const only = layers.length === 1 && layers[0]!.units === 1 ? layers[0]!.activation ?? "identity" : undefined;
  if (only === "sigmoid") return "LogisticRegression";
  if (only === "identity") return "LinearRegression";
  return "MultiLayerPerceptron";
}

/** The network's spec: the graph's layers; dropout, init, seed and sparseInputs from downpour.spec when the file records it. */
function specOf(chain: Chain, inputs: number, kind: ModelKind, meta: Metadata, scaling: Scaling | undefined, ctx: Context): NetworkSpec {
  const recorded = meta.spec;
  const shape = (n: number, layers: readonly { units?: unknown }[]) => [n, ...layers.map((l) => l.units)].join("-");
  const graphShape = shape(inputs, chain.layers);
  if (recorded && shape(recorded.inputs ?? 0, recorded.layers ?? []) !== graphShape) {
    fail(ctx, `metadata ${KEYS.spec} describes the network ${shape(recorded.inputs ?? 0, recorded.layers ?? [])}, the graph is ${graphShape}`, "malformed");
  }
  if (kind === "AutoEncoder" && !(chain.layers.length === 2 && chain.layers[1]!.units === inputs)) {
    fail(ctx, `metadata ${KEYS.kind} is AutoEncoder, but the graph ${graphShape} is not an encoder and a decoder back to its ${inputs} inputs`, "malformed");
  }
  const layers: LayerSpec[] = chain.layers.map((layer, l) => ({
    units: layer.units,
    activation: layer.activation ?? "identity",
    dropout: recorded?.layers?.[l]?.dropout ?? 0,
  }));
  const cost = meta.cost ?? recorded?.cost ?? KIND_COSTS[kind];
  const spec: NetworkSpec = {
    inputs,
    layers,
    ...(cost ? { cost } : {}),
    ...(recorded?.init ? { init: recorded.init } : {}),
    ...(recorded?.seed !== undefined ? { seed: recorded.seed } : {}),
    // A model trained on sparse inputs exports as a dense Gemm; it comes back sparse (input scaling is dense-only).
    ...(recorded?.sparseInputs === true && !scaling ? { sparseInputs: true } : {}),
  };
  try {
    resolveSpec(spec);
  } catch (error) {
    if (!(error instanceof SpecError)) throw error;
    const at = error.message.match(/^layers\[(\d+)\]/);
    const layer = at ? ` (layer of node ${chain.layers[Number(at[1])]?.node})` : "";
    fail(ctx, `the graph is not a downpour network${layer}: ${error.message}`, recorded || meta.cost ? "malformed" : "unsupported");
  }
  return spec;
}
