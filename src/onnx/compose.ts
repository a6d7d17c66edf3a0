// Building an ONNX graph node by node: unique value and node names, float initializers, attributes typed from their
// values, and the OnnxOps a neuron type's composition sees (scoped to one layer, checked against opset 17's
// default-domain operators so a typo is an export error naming the layer, not a runtime's load failure).
import { DownpourError } from "../errors.js";
import type { OnnxComposition, OnnxOps } from "../model/neurons/types.js";
import { floatTensor, type OnnxAttribute, type OnnxNode, type OnnxTensor } from "./codec.js";

/** AttributeProto.AttributeType values. */
const ATTRIBUTE = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** Attribute names that are floats in every default-domain operator that has them, even when given an integer. */
const FLOAT_ATTRIBUTES = new Set(["alpha", "beta", "gamma", "epsilon", "bias", "lambd", "min", "max"]);

/** The default-domain operators of opset 17 (onnx/defs, ONNX 1.12). */
export const OPSET_17_OPERATORS: ReadonlySet<string> = new Set(
  (
    "Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Bernoulli BitShift " +
    "BlackmanWindow Cast CastLike Ceil Celu Clip Compress Concat ConcatFromSequence Constant ConstantOfShape Conv " +
    "ConvInteger ConvTranspose Cos Cosh CumSum DFT DepthToSpace DequantizeLinear Det Div Dropout DynamicQuantizeLinear " +
    "Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements GatherND Gemm GlobalAveragePool " +
    "GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample HammingWindow HannWindow HardSigmoid HardSwish Hardmax " +
    "Identity If InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax " +
    "Loop LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean MeanVarianceNormalization " +
    "MelWeightMatrix Min Mod Mul Multinomial Neg NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot " +
    "Optional OptionalGetElement OptionalHasElement Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN " +
    "RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum " +
    "ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize " +
    "ReverseSequence RoiAlign Round STFT Scan ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty " +
    "SequenceErase SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax " +
    "SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt Squeeze StringNormalizer Sub Sum " +
    "Tan Tanh TfIdfVectorizer ThresholdedRelu Tile TopK Transpose Trilu Unique Unsqueeze Where Xor"
  ).split(" "),
);

/** Attribute values as OnnxOps takes them. */
export type AttributeValues = Record<string, number | number[] | string>;

/** A composition's misuse of OnnxOps (an unknown operator, a value that does not exist); the exporter names the layer. */
export class CompositionError extends DownpourError {}

/** The ONNX attributes of `values`, typed by value (see FLOAT_ATTRIBUTES). */
export function onnxAttributes(values: AttributeValues = {}): OnnxAttribute[] {
  return Object.entries(values).map(([name, value]) => {
    if (typeof value === "string") return { name, type: ATTRIBUTE.STRING, s: new TextEncoder().encode(value) };
    const list = Array.isArray(value) ? value : [value];
    if (!list.every((v) => typeof v === "number" && Number.isFinite(v))) throw new CompositionError(`attribute ${name}: expected a finite number, numbers or a string, got ${JSON.stringify(value)}`);
    const float = FLOAT_ATTRIBUTES.has(name) || !list.every(Number.isInteger);
    if (Array.isArray(value)) return float ? { name, type: ATTRIBUTE.FLOATS, floats: list } : { name, type: ATTRIBUTE.INTS, ints: list };
    return float ? { name, type: ATTRIBUTE.FLOAT, f: value } : { name, type: ATTRIBUTE.INT, i: value };
  });
}

/** The nodes and initializers of one graph, in order, with names unique across both. */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  /** Every value name so far: the graph input, node outputs and initializers. */
  private readonly values = new Set<string>();
  private readonly names = new Set<string>();

  constructor(inputName: string) {
    this.values.add(inputName);
  }

  /** `base` if unused, else `base_1`, `base_2`, ... (value and node names share one space). */
  unique(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  /** Whether `name` is a value of the graph so far. */
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** A float initializer named `name` (made unique); returns its name. */
  tensor(name: string, dims: number[], values: ArrayLike<number>): string {
    const unique = this.unique(name);
    this.initializers.push(floatTensor(unique, dims, values));
    this.values.add(unique);
    return unique;
  }

  /** A node of `type` over `inputs` whose output is named `output` (made unique); returns the output's name. */
  node(type: string, inputs: string[], output: string, attributes?: AttributeValues): string {
    if (!OPSET_17_OPERATORS.has(type)) throw new CompositionError(`${JSON.stringify(type)} is not an operator of ONNX's default domain at opset 17`);
    const missing = inputs.find((name) => !this.values.has(name));
    if (missing !== undefined) throw new CompositionError(`${type} reads ${JSON.stringify(missing)}, which is no value of the graph (use names that op(), constant() or the z argument gave)`);
    const out = this.unique(output);
    const attribute = onnxAttributes(attributes);
    this.nodes.push({ op_type: type, input: inputs, output: [out], name: out, ...(attribute.length ? { attribute } : {}) });
    this.values.add(out);
    return out;
  }
}

/** The built-in activations as ONNX operators (identity: none). */
export const ACTIVATION_OPS: Readonly<Record<string, string | undefined>> = { identity: undefined, sigmoid: "Sigmoid", tanh: "Tanh", relu: "Relu", softmax: "Softmax" };

/** `x` through a built-in activation (softmax over axis 1, each row), the output named `output`; identity adds nothing. */
export function applyActivation(g: GraphBuilder, activation: string, x: string, output: string): string {
  const type = ACTIVATION_OPS[activation];
  if (type === undefined) return x;
  return g.node(type, [x], output, type === "Softmax" ? { axis: 1 } : undefined);
}

/** The OnnxOps of one layer, over `g`: names start with `prefix`; squash applies `activation`. */
export function compositionOps(g: GraphBuilder, prefix: string, activation: string): OnnxOps {
  let constants = 0;
  return {
    activation,
    op: (type, inputs, attributes) => {
      if (typeof type !== "string" || !Array.isArray(inputs)) throw new CompositionError(`op(type, inputs) takes an operator name and an array of value names, got ${typeof type}, ${typeof inputs}`);
      return g.node(type, inputs, `${prefix}.${type}`, attributes);
    },
    constant: (values, dims) => {
      const list = typeof values === "number" ? [values] : values;
      const shape = dims ?? (typeof values === "number" ? [] : [list.length]);
      const count = shape.reduce((n, d) => n * d, 1);
      if (!Array.isArray(list) || list.length !== count || !list.every((v) => typeof v === "number")) throw new CompositionError(`constant(${JSON.stringify(values)}, ${JSON.stringify(dims)}): expected ${count} numbers for dims [${shape}]`);
      return g.tensor(`${prefix}.const${constants++}`, shape, list);
    },
    squash: (x) => {
      if (activation === "softmax") throw new CompositionError("squash(): softmax is not a squashing function (it is not elementwise)");
      return applyActivation(g, activation, x, `${prefix}.${activation}`);
    },
  };
}

/** The output of `composition` over `z`, checked to be a value of the graph. */
export function compose(g: GraphBuilder, composition: OnnxComposition, z: string, prefix: string, activation: string): string {
  const out = composition(compositionOps(g, prefix, activation), z);
  if (typeof out !== "string" || !g.has(out)) throw new CompositionError(`it returned ${JSON.stringify(out)}, which is no value of the graph; return the name op() gave its last node`);
  return out;
}
