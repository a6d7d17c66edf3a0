// A downpour model as ONNX bytes any onnxruntime serves: the stored input scaling as leading Sub/Div (and Mul by a
// 0/1 mask when a column is constant), then per layer a Gemm (W as stored, fanIn x units) and its activation or its
// neuron type's composition of standard operators; a dynamic batch dimension, opset 17, IR 8, and metadata_props
// (ONNX_METADATA_KEYS) from which importOnnx restores the model.
import { Model, type ModelKind } from "../api/models.js";
import type { Scaling } from "../data/scaling.js";
import type { Network } from "../model/network.js";
import { describeShape } from "../model/network.js";
import type { NeuronClass } from "../model/neurons/neuron.js";
import { loadedNeuronType, neuronKey } from "../model/neurons/registry.js";
import type { OnnxComposition } from "../model/neurons/types.js";
import { fanIn, outputsOf, type ResolvedLayer, type ResolvedSpec } from "../model/spec.js";
import { formatBytes } from "../util/bytes.js";
import { encodeOnnx, ONNX_FLOAT, ONNX_IR_VERSION, ONNX_OPSET, OnnxExportError, type OnnxModel, type OnnxValueInfo } from "./codec.js";
import { applyActivation, compose, GraphBuilder } from "./compose.js";

/** The metadata_props keys exported models carry (values are strings). */
export const ONNX_METADATA_KEYS = {
  /** The model class: LayeredANN, MultiLayerPerceptron, Perceptron, LinearRegression, LogisticRegression, AutoEncoder. */
  kind: "downpour.kind",
  /** The cost it was trained on: squared-error, cross-entropy, softmax-cross-entropy. */
  cost: "downpour.cost",
  /** The input scaling's kind, "min-max" or "z-score"; absent without scaling. */
  scaling: "downpour.scaling",
  /** The scaling's stats as JSON ({ kind, min, max } or { kind, mean, std }, full precision); absent without scaling. */
  scalingStats: "downpour.scaling.stats",
  /** The resolved spec as JSON (inputs, layers { units, activation, dropout }, cost, init, seed, sparseInputs?), without neuron refs. */
  spec: "downpour.spec",
  /** The layers' activations, comma-separated ("relu,relu,softmax"). */
  activations: "downpour.activations",
  /** Per layer, its user neuron type "MODULE#EXPORT" or null, as JSON; present only when some layer has one. */
  neurons: "downpour.neurons",
} as const;

/** The names of the graph's values: its input, the batch dimension, the scaling's initializers and output. */
export const ONNX_NAMES = {
  input: "features",
  batch: "batch",
  offset: "scaling.offset",
  divisor: "scaling.divisor",
  mask: "scaling.mask",
  scaled: "scaled",
} as const;

/** The downpour version exported models name as producer_version (package.json's; a test keeps them equal). */
export const DOWNPOUR_VERSION = "0.1.0";

/** Protobuf's limit on one message, the whole ONNX file: 2 GiB - 1 byte. */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;
/** Room kept under the limit for the graph's nodes, names and metadata beside the initializers. */
const GRAPH_RESERVE_BYTES = 1 << 20;

/** Options of exportOnnx. */
export interface OnnxExportOptions {
  /** The graph's name. Default: the model's kind ("MultiLayerPerceptron"). */
  graphName?: string;
  /** The model's doc_string. Default: a description of the model (kind, shape, activations, cost, scaling, names). */
  docString?: string;
  /** More metadata_props (string values; keys must not start with "downpour."). Default: none. */
  metadata?: Record<string, string>;
}

/** exportOnnx's defaults ("" and undefined: derived from the model, see OnnxExportOptions). */
const EXPORT_DEFAULTS: Required<OnnxExportOptions> = { graphName: "", docString: "", metadata: {} };

/** The output's name: "reconstruction" (AutoEncoder), "probabilities" (sigmoid or softmax outputs), else "predictions". */
export function onnxOutputName(kind: ModelKind, spec: ResolvedSpec): "reconstruction" | "probabilities" | "predictions" {
  if (kind === "AutoEncoder") return "reconstruction";
  const last = spec.layers[spec.layers.length - 1]!.activation;
  return last === "sigmoid" || last === "softmax" ? "probabilities" : "predictions";
}

/**
 * The ONNX bytes of `model`: input "features" [batch, inputs] (float32 raw rows; the model's inputScaling is in the
 * graph), output onnxOutputName(...) [batch, outputs], what model.predict(rows) computes. A model with sparse
 * inputs exports as a dense Gemm over all its inputs. Throws OnnxExportError when a layer's user neuron type has no
 * ONNX composition or its composition fails (naming the layer and MODULE#EXPORT), when the initializers would pass
 * protobuf's 2 GiB limit (naming the largest and their sizes), or for bad options (naming the option).
 */
export function exportOnnx(model: Model, options: OnnxExportOptions = {}): Uint8Array {
  if (!(model instanceof Model)) throw new OnnxExportError(`exportOnnx: model must be a downpour Model (MultiLayerPerceptron, LogisticRegression, ...), got ${model === null ? "null" : typeof model}`);
  model.requireUsable("exportOnnx()");
  const settings = exportSettings(options);
  const { network, kind } = model;
  const spec = network.spec;
  const scaling = model.inputScaling;
  requireScalingFits(scaling, spec.inputs);
  requireWithinProtobufLimit(initializerSizes(spec, scaling));
  const output = onnxOutputName(kind, spec);
  const g = new GraphBuilder(ONNX_NAMES.input);
  const scaled = scaling ? addScaling(g, scaling, spec.inputs) : ONNX_NAMES.input;
  const last = addLayers(g, network, scaled, output);
  if (last !== output) g.node("Identity", [last], output);
  const onnx: OnnxModel = {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: "", version: ONNX_OPSET }],
    producer_name: "downpour",
    producer_version: DOWNPOUR_VERSION,
    doc_string: settings.docString || describeModel(kind, spec, scaling, output),
    graph: {
      name: settings.graphName || kind,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(ONNX_NAMES.input, spec.inputs, scaling ? `raw rows of ${spec.inputs} inputs (scaled inside the graph, ${scaling.kind})` : `rows of ${spec.inputs} inputs`)],
      output: [valueInfo(output, outputsOf(spec), `${output}: ${outputsOf(spec)} per row`)],
    },
    metadata_props: metadataProps(kind, spec, scaling, settings.metadata),
  };
  return encodeOnnx(onnx);
}

// The options with defaults filled in; OnnxExportError naming an unknown or ill-typed option.
function exportSettings(options: OnnxExportOptions): Required<OnnxExportOptions> {
  if (typeof options !== "object" || options === null) throw new OnnxExportError(`exportOnnx: options must be an object, got ${options === null ? "null" : typeof options}`);
  for (const [name, value] of Object.entries(options)) {
    if (!(name in EXPORT_DEFAULTS)) throw new OnnxExportError(`exportOnnx: unknown option ${JSON.stringify(name)} (options: ${Object.keys(EXPORT_DEFAULTS).join(", ")})`);
    if (value === undefined) continue;
    if (name !== "metadata" && typeof value !== "string") throw new OnnxExportError(`exportOnnx: option ${name} must be a string, got ${typeof value}`);
  }
  const metadata = options.metadata ?? EXPORT_DEFAULTS.metadata;
  if (typeof metadata !== "object" || metadata === null) throw new OnnxExportError(`exportOnnx: option metadata must be an object of string values, got ${metadata === null ? "null" : typeof metadata}`);
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") throw new OnnxExportError(`exportOnnx: option metadata.${key} must be a string, got ${typeof value}`);
    if (key.startsWith("downpour.")) throw new OnnxExportError(`exportOnnx: option metadata.${key}: keys starting with "downpour." are the exporter's (ONNX_METADATA_KEYS)`);
  }
  return { ...EXPORT_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)), metadata } as Required<OnnxExportOptions>;
}

// The offsets and divisors of a scaling: min-max (min, max - min), z-score (mean, std), in f64.
function scalingColumns(scaling: Scaling): { offset: readonly number[]; divisor: number[] } {
  if (scaling.kind === "min-max") return { offset: scaling.min, divisor: scaling.min.map((lo, j) => scaling.max[j]! - lo) };
  return { offset: scaling.mean, divisor: [...scaling.std] };
}

function requireScalingFits(scaling: Scaling | undefined, inputs: number): void {
  if (!scaling) return;
  const { offset, divisor } = scalingColumns(scaling);
  if (offset.length !== inputs || divisor.length !== inputs) {
    throw new OnnxExportError(`exportOnnx: the model's inputScaling (${scaling.kind}) has ${offset.length} columns; the network has ${inputs} inputs`);
  }
}

// Every initializer's name, dims and bytes, from the spec alone (before anything is copied).
function initializerSizes(spec: ResolvedSpec, scaling: Scaling | undefined): { name: string; dims: number[]; bytes: number }[] {
  const sizes = spec.layers.flatMap((layer, l) => [
    { name: `w${l}`, dims: [fanIn(spec, l), layer.units], bytes: 4 * fanIn(spec, l) * layer.units },
    { name: `b${l}`, dims: [layer.units], bytes: 4 * layer.units },
  ]);
  if (scaling) {
    const columns = scalingColumns(scaling);
    const names: string[] = [ONNX_NAMES.offset, ONNX_NAMES.divisor, ...(columns.divisor.some((d) => !(d > 0)) ? [ONNX_NAMES.mask] : [])];
    sizes.push(...names.map((name) => ({ name, dims: [spec.inputs], bytes: 4 * spec.inputs })));
  }
  return sizes;
}

/**
 * Throws OnnxExportError when initializers of these sizes (with room for the graph) pass protobuf's 2 GiB limit
 * on one file, naming the largest ones and their sizes. Exported for tests.
 */
export function requireWithinProtobufLimit(sizes: ReadonlyArray<{ name: string; dims: number[]; bytes: number }>, limitBytes = PROTOBUF_LIMIT_BYTES): void {
  const total = sizes.reduce((sum, s) => sum + s.bytes, 0);
  if (total + GRAPH_RESERVE_BYTES <= limitBytes) return;
  const largest = [...sizes].sort((a, b) => b.bytes - a.bytes).slice(0, 3);
  const listed = largest.map((s) => `${s.name} [${s.dims.join(" x ")}] ${formatBytes(s.bytes)}`).join(", ");
  const first = largest[0]!;
  const layer = /^[wb](\d+)$/.exec(first.name);
  throw new OnnxExportError(
    `exportOnnx: the model's initializers need ${formatBytes(total)} (largest: ${listed}), more than protobuf's ${formatBytes(limitBytes + 1)} limit on one ONNX file; ONNX's external data format is not written`,
    layer ? Number(layer[1]) : undefined,
  );
}

// Sub(offset), Div(divisor; 1 for a constant column) and, when a column is constant, Mul by its 0/1 mask: exactly
// downpour's d > 0 ? (x - offset) / d : 0. Returns the name of the scaled rows.
function addScaling(g: GraphBuilder, scaling: Scaling, inputs: number): string {
  const { offset, divisor } = scalingColumns(scaling);
  const constant = divisor.map((d) => !(d > 0));
  const masked = constant.some(Boolean);
  const centered = g.node("Sub", [ONNX_NAMES.input, g.tensor(ONNX_NAMES.offset, [inputs], offset)], "scaling.centered");
  const divided = g.node("Div", [centered, g.tensor(ONNX_NAMES.divisor, [inputs], divisor.map((d, j) => (constant[j] ? 1 : d)))], masked ? "scaling.divided" : ONNX_NAMES.scaled);
  if (!masked) return divided;
  return g.node("Mul", [divided, g.tensor(ONNX_NAMES.mask, [inputs], constant.map((c) => (c ? 0 : 1)))], ONNX_NAMES.scaled);
}

// Each layer's Gemm and activation (or its neuron type's composition); the last one's output is named `output`
// when the activation is built in. Returns the name of the network's output.
function addLayers(g: GraphBuilder, network: Network, input: string, output: string): string {
  const spec = network.spec;
  let x = input;
  spec.layers.forEach((layer, l) => {
    const isLast = l === spec.layers.length - 1;
    const weights = g.tensor(`w${l}`, [fanIn(spec, l), layer.units], network.weights(l).f32());
    const bias = g.tensor(`b${l}`, [layer.units], network.bias(l).f32());
    const direct = isLast && !layer.neuron && layer.activation === "identity";
    const z = g.node("Gemm", [x, weights, bias], direct ? output : `layer${l}.sum`);
    if (layer.neuron) x = composeLayer(g, layer, l, z);
    else x = applyActivation(g, layer.activation, z, isLast ? output : `layer${l}.${layer.activation}`);
  });
  return x;
}

// A user neuron type's layer through its ONNX composition; OnnxExportError naming the layer and MODULE#EXPORT.
function composeLayer(g: GraphBuilder, layer: ResolvedLayer, l: number, z: string): string {
  const ref = layer.neuron!;
  const what = `layers[${l}]: the neuron type ${ref.export} (${neuronKey(ref)})`;
  const classified = loadedNeuronType(ref);
  if (!classified) throw new OnnxExportError(`${what} is not loaded on this thread; await loadNeuronTypes(spec) first`, l);
  const composition = (classified.form === "per-neuron" ? (classified.type as NeuronClass).onnx : classified.type.onnx) as OnnxComposition | undefined;
  if (typeof composition !== "function") {
    const how = classified.form === "per-neuron" ? "static onnx = (g, z) => ..." : "onnx: (g, z) => ...";
    throw new OnnxExportError(`${what} has no ONNX composition, so the model cannot be exported; give the type ${how} (its outputs from the weighted sums z, as standard ONNX operators)`, l);
  }
  try {
    return compose(g, composition, z, `layer${l}`, layer.activation);
  } catch (error) {
    throw new OnnxExportError(`${what}: its ONNX composition failed: ${(error as Error)?.message ?? error}`, l, { cause: error });
  }
}

// A float tensor [batch, width] value info.
function valueInfo(name: string, width: number, doc: string): OnnxValueInfo {
  return { name, doc_string: doc, type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: [{ dim_param: ONNX_NAMES.batch }, { dim_value: width }] } } } };
}

function describeModel(kind: ModelKind, spec: ResolvedSpec, scaling: Scaling | undefined, output: string): string {
  const layers = spec.layers.map((layer) => (layer.neuron ? layer.neuron.export : layer.activation)).join(", ");
  const parts = [
    `downpour ${kind} ${describeShape(spec)} (layers: ${layers}), trained on ${spec.cost}`,
    scaling ? `raw inputs scaled inside the graph (${scaling.kind})` : "inputs used as given (no scaling)",
    `input ${ONNX_NAMES.input} [${ONNX_NAMES.batch}, ${spec.inputs}] float32, output ${output} [${ONNX_NAMES.batch}, ${outputsOf(spec)}]`,
  ];
  if (spec.sparseInputs) parts.push("trained on sparse inputs; exported as a dense Gemm over all inputs (rows are dense)");
  return `${parts.join("; ")}.`;
}

function metadataProps(kind: ModelKind, spec: ResolvedSpec, scaling: Scaling | undefined, extra: Record<string, string>): { key: string; value: string }[] {
  const K = ONNX_METADATA_KEYS;
  const props: [string, string][] = [
    [K.kind, kind],
    [K.cost, spec.cost],
    [K.activations, spec.layers.map((layer) => layer.activation).join(",")],
    [K.spec, JSON.stringify({ ...spec, layers: spec.layers.map(({ neuron: _, ...rest }) => rest) })],
  ];
  if (scaling) props.push([K.scaling, scaling.kind], [K.scalingStats, JSON.stringify(scaling)]);
  if (spec.layers.some((layer) => layer.neuron)) props.push([K.neurons, JSON.stringify(spec.layers.map((layer) => (layer.neuron ? neuronKey(layer.neuron) : null)))]);
  props.push(...Object.entries(extra));
  return props.map(([key, value]) => ({ key, value }));
}
