// importOnnx against onnxruntime-web as the oracle: graphs built with encodeOnnx in the PyTorch style (Gemm,
// transB 1) and the Keras style (MatMul then Add, the bias on either side), with every activation, Dropout and
// Identity, Constant weights, a z-score or min-max scaling prefix (with a 0/1 mask for constant columns) and a
// leading affine folded into the first layer, predict what onnxruntime computes on the same rows (batch 1, 7, 300;
// 1e-5 relative); the metadata downpour's exporter writes picks the class, cost and spec; an imported model trains
// further and survives encodeModel/decodeModel; graphs that are not a chain of dense layers, wrong attributes,
// shapes that do not chain, truncated files and bytes that are not ONNX are refused with what was expected.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ort from "onnxruntime-web";
import { decodeModel, encodeModel } from "../../src/api/model-bytes.js";
import { AutoEncoder, LayeredANN, LinearRegression, LogisticRegression, type Model, MultiLayerPerceptron, Perceptron } from "../../src/api/models.js";
import { createDataset } from "../../src/data/dataset.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { encodeOnnx, floatTensor, ONNX_FLOAT, ONNX_IR_VERSION, ONNX_OPSET, type OnnxAttribute, OnnxImportError, type OnnxModel, type OnnxNode, type OnnxTensor } from "../../src/onnx/codec.js";
import { exportOnnx } from "../../src/onnx/export.js";
import { importOnnx } from "../../src/onnx/import.js";
import { assertClose, randomArray, seededRandom } from "../helpers.js";

ort.env.wasm.numThreads = 1;
const TIMEOUT = { timeout: 120_000 };
const BATCHES = [1, 7, 300];
const TOLERANCE = { rtol: 1e-5, atol: 1e-6 };

/** An int or float attribute (proto3 types INT 2, FLOAT 1). */
function intAttr(name: string, i: number): OnnxAttribute {
  return { name, type: 2, i };
}
function floatAttr(name: string, f: number): OnnxAttribute {
  return { name, type: 1, f };
}

/** Builds a graph node by node along a chain from the input "features" [batch, F]. */
class Graph {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  current = "features";
  width: number;
  private count = 0;

  constructor(
    readonly features: number,
    private readonly random: () => number,
  ) {
    this.width = features;
  }

  /** A new initializer of random values (or `values`), named by `name`. */
  init(name: string, dims: number[], values?: ArrayLike<number>): string {
    const n = dims.reduce((a, b) => a * b, 1);
    this.initializers.push(floatTensor(name, dims, values ?? randomArray(this.random, n, -0.8, 0.8)));
    return name;
  }

  /** A node reading the chain (where `inputs` says "$") and constants; its output becomes the chain's value. */
  node(op: string, inputs: string[], attribute: OnnxAttribute[] = [], name = `${op.toLowerCase()}${this.count}`): this {
    const output = `${name}_out`;
    this.count++;
    this.nodes.push({ op_type: op, name, input: inputs.map((i) => (i === "$" ? this.current : i)), output: [output], attribute });
    this.current = output;
    return this;
  }

  /** PyTorch's Linear: Gemm(x, W [units, fanIn], b [units]) with transB 1 (and alpha, beta 1 spelled out). */
  gemm(units: number, transB = 1, biasDims?: number[]): this {
    const k = this.count;
    const w = this.init(`w${k}`, transB ? [units, this.width] : [this.width, units]);
    const b = this.init(`b${k}`, biasDims ?? [units]);
    this.width = units;
    return this.node("Gemm", ["$", w, b], [floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transB", transB)]);
  }

  /** Keras's Dense: MatMul(x, W [fanIn, units]) then Add with the bias first or second. */
  matMulAdd(units: number, biasFirst: boolean): this {
    const k = this.count;
    const w = this.init(`kernel${k}`, [this.width, units]);
    const b = this.init(`bias${k}`, [units]);
    this.width = units;
    this.node("MatMul", ["$", w]);
    return this.node("Add", biasFirst ? [b, "$"] : ["$", b]);
  }

  /** Sub(offset), Div(divisor), and Mul(mask) when given: the exporter's input scaling. */
  scaling(offset: number[], divisor: number[], mask?: number[]): this {
    this.node("Sub", ["$", this.init("offset", [offset.length], offset)]);
    this.node("Div", ["$", this.init("divisor", [divisor.length], divisor)]);
    return mask ? this.node("Mul", ["$", this.init("mask", [mask.length], mask)]) : this;
  }

  model(options: { metadata?: Record<string, string>; opset?: number; outputs?: string[] } = {}): OnnxModel {
    const value = (name: string, dims: ({ dim_value: number } | { dim_param: string })[]) => ({ name, type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: dims } } } });
    return {
      ir_version: ONNX_IR_VERSION,
      opset_import: [{ domain: "", version: options.opset ?? ONNX_OPSET }],
      producer_name: "import.test",
      graph: {
        name: "chain",
        node: this.nodes,
        initializer: this.initializers,
        input: [value("features", [{ dim_param: "batch" }, { dim_value: this.features }])],
        output: (options.outputs ?? [this.current]).map((name) => value(name, [{ dim_param: "batch" }, { dim_value: this.width }])),
      },
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
  }

  bytes(options?: Parameters<Graph["model"]>[0]): Uint8Array {
    return encodeOnnx(this.model(options));
  }
}

/** onnxruntime's output for `rows` rows of `x`. */
async function runOrt(bytes: Uint8Array, x: Float32Array, rows: number, features: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor("float32", x, [rows, features]) });
    return Float32Array.from(out[session.outputNames[0]!]!.data as Float32Array);
  } finally {
    await session.release();
  }
}

/** Imports `bytes` and checks predict against onnxruntime on random rows in [lo, hi) for each batch size. */
async function importAndCompare(bytes: Uint8Array, features: number, label: string, range: [number, number] = [-3, 3]): Promise<Model> {
  const model = await importOnnx(bytes, { source: label });
  for (const batch of BATCHES) {
    const x = randomArray(seededRandom(batch), batch * features, ...range);
    assertClose(model.predict(x, batch), await runOrt(bytes, x, batch, features), TOLERANCE, `${label}, batch ${batch}`);
  }
  return model;
}

/** Rejects with an OnnxImportError of `reason` whose message matches; `node` and `opType` when given. */
async function refused(bytes: Uint8Array, reason: string, message: RegExp, at?: { node: string; opType: string }): Promise<void> {
  await assert.rejects(importOnnx(bytes, { source: "bad.onnx" }), (error: unknown) => {
    assert.ok(error instanceof OnnxImportError, `an OnnxImportError, got ${error}`);
    assert.equal(error.reason, reason, error.message);
    assert.match(error.message, message);
    assert.match(error.message, /^bad\.onnx/);
    if (at) assert.deepEqual({ node: error.node, opType: error.opType }, at);
    return true;
  });
}

describe("importOnnx: outputs equal onnxruntime's", () => {
  for (const output of ["Relu", "Sigmoid", "Tanh", "Softmax", "Identity", undefined]) {
    test(`PyTorch style (Gemm transB 1), Tanh hidden, Dropout, ${output ?? "no"} output activation`, TIMEOUT, async () => {
      const g = new Graph(6, seededRandom(11)).gemm(5).node("Tanh", ["$"]).node("Dropout", ["$"]).gemm(4);
      if (output) g.node(output, ["$"], output === "Softmax" ? [intAttr("axis", 1)] : []);
      const model = await importAndCompare(g.bytes(), 6, `pytorch ${output}`);
      try {
        assert.ok(model instanceof MultiLayerPerceptron);
        const activation = { Relu: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softmax: "softmax" }[output ?? ""] ?? "identity";
        assert.deepEqual(model.network.spec.layers.map((l) => [l.units, l.activation]), [[5, "tanh"], [4, activation]]);
        const cost = activation === "softmax" ? "softmax-cross-entropy" : activation === "sigmoid" ? "cross-entropy" : "squared-error";
        assert.equal(model.network.spec.cost, cost);
        assert.equal(model.inputScaling, undefined);
      } finally {
        model.dispose();
      }
    });
  }

  test("Keras style (MatMul then Add, bias either side), Relu and Sigmoid hidden, Softmax out, z-score prefix with a constant column", TIMEOUT, async () => {
    const mean = [50, -3, 0.5, 1000, 7];
    const std = [20, 1.5, 1, 300, 2];
    const g = new Graph(5, seededRandom(12)).scaling(mean, std, [1, 1, 0, 1, 1]);
    g.matMulAdd(8, false).node("Relu", ["$"]).matMulAdd(6, true).node("Sigmoid", ["$"]).matMulAdd(3, false).node("Softmax", ["$"]).node("Identity", ["$"]);
    const model = await importAndCompare(g.bytes(), 5, "keras z-score", [-100, 1500]);
    try {
      assert.deepEqual(model.inputScaling, { kind: "z-score", mean, std: [20, 1.5, 0, 300, 2] });
      assert.deepEqual(model.network.spec.layers.map((l) => l.activation), ["relu", "sigmoid", "softmax"]);
    } finally {
      model.dispose();
    }
  });

  test("the exporter's metadata: min-max scaling, the class, cost, dropout, init and seed of downpour.spec", TIMEOUT, async () => {
    const min = [0, 10, -5, 2];
    const range = [100, 5, 10, 1];
    const g = new Graph(4, seededRandom(13)).scaling(min, [100, 5, 10, 1], [1, 1, 1, 0]).gemm(7, 0).node("Relu", ["$"]).gemm(2, 0).node("Sigmoid", ["$"]);
    const spec = { inputs: 4, layers: [{ units: 7, activation: "relu", dropout: 0.25 }, { units: 2, activation: "sigmoid", dropout: 0 }], cost: "squared-error", init: "xavier", seed: 9 };
    const metadata = { "downpour.kind": "LayeredANN", "downpour.cost": "squared-error", "downpour.scaling": "min-max", "downpour.spec": JSON.stringify(spec) };
    const model = await importAndCompare(g.bytes({ metadata }), 4, "min-max", [-20, 120]);
    try {
      assert.equal(model.kind, "LayeredANN");
      assert.deepEqual(model.inputScaling, { kind: "min-max", min, max: min.map((m, j) => (j === 3 ? m : m + range[j]!)) });
      assert.deepEqual(model.network.spec, { ...spec, layers: spec.layers });
    } finally {
      model.dispose();
    }
  });

  test("a leading Mul/Add (and constant - x) affine that is not the scaling pattern is folded into the first layer", TIMEOUT, async () => {
    const g = new Graph(3, seededRandom(14));
    g.node("Mul", ["$", g.init("a", [1, 3], [2, -0.5, 4])]).node("Add", [g.init("b", [3], [1, 2, -3]), "$"]).node("Sub", [g.init("c", [], [0.5]), "$"]);
    g.gemm(4).node("Tanh", ["$"]).gemm(1).node("Sigmoid", ["$"]);
    const model = await importAndCompare(g.bytes(), 3, "affine");
    try {
      assert.equal(model.inputScaling, undefined);
      assert.equal(model.network.spec.layers.length, 2);
    } finally {
      model.dispose();
    }
  });

  test("a Gemm bias of one value for every unit", TIMEOUT, async () => {
    const model = await importAndCompare(new Graph(3, seededRandom(21)).gemm(4, 1, [1]).node("Relu", ["$"]).gemm(2, 0, []).bytes(), 3, "one-value bias");
    model.dispose();
  });

  test("Constant nodes hold the weights; opset 11 Softmax with its default axis; Gemm transB 0 with C [1, units]", TIMEOUT, async () => {
    const random = seededRandom(15);
    const g = new Graph(4, random);
    const weights = floatTensor("", [4, 3], randomArray(random, 12, -1, 1));
    g.nodes.push({ op_type: "Constant", name: "W", input: [], output: ["W"], attribute: [{ name: "value", type: 4, t: weights }] });
    g.nodes.push({ op_type: "Constant", name: "B", input: [], output: ["B"], attribute: [{ name: "value_floats", type: 6, floats: [0.1, -0.2, 0.3] }] });
    g.node("MatMul", ["$", "W"]).node("Add", ["$", "B"]);
    g.width = 3;
    g.gemm(5, 0, [1, 5]).node("Softmax", ["$"]);
    const model = await importAndCompare(g.bytes({ opset: 11 }), 4, "constants, opset 11");
    try {
      assert.deepEqual(model.network.spec.layers.map((l) => [l.units, l.activation]), [[3, "identity"], [5, "softmax"]]);
    } finally {
      model.dispose();
    }
  });
});

describe("importOnnx: exportOnnx's files come back as the model that was exported", () => {
  const zScore = (inputs: number) => ({ kind: "z-score" as const, mean: Array.from({ length: inputs }, (_, j) => 10 * j - 3.3), std: Array.from({ length: inputs }, (_, j) => (j === 1 ? 0 : 0.7 + j)) });
  const lows = (inputs: number) => Array.from({ length: inputs }, (_, j) => -j / 3 - 0.5);
  const minMax = (inputs: number) => ({ kind: "min-max" as const, min: lows(inputs), max: lows(inputs).map((lo, j) => (j === 1 ? lo : j * 1.1 + 1)) });
  const cases: { name: string; create: () => Promise<Model>; scale?: boolean }[] = [
    { name: "MLP relu, softmax", create: () => MultiLayerPerceptron.create({ inputs: 5, hidden: [7, 6], outputs: 3, dropout: 0.2, seed: 3 }) },
    { name: "MLP tanh, sigmoid, z-score with a constant column", create: () => MultiLayerPerceptron.create({ inputs: 4, hidden: [5], outputs: 1, hiddenActivation: "tanh", seed: 4 }), scale: true },
    { name: "Perceptron", create: () => Perceptron.create({ inputs: 3, outputs: 2, seed: 5 }) },
    { name: "LinearRegression, min-max with a constant column", create: () => LinearRegression.create({ inputs: 4, seed: 6 }), scale: true },
    { name: "LogisticRegression", create: () => LogisticRegression.create({ inputs: 6, seed: 7 }) },
    { name: "AutoEncoder", create: () => AutoEncoder.create({ inputs: 6, hidden: 2, seed: 8 }) },
    { name: "LayeredANN identity, relu, tanh, sigmoid layers on squared error", create: () => LayeredANN.create({ inputs: 3, layers: [{ units: 4, activation: "identity" }, { units: 4, activation: "relu" }, { units: 3, activation: "tanh" }, { units: 2, activation: "sigmoid" }], cost: "squared-error", init: "xavier", seed: 9 }) },
    { name: "sparse-input logistic regression", create: () => LogisticRegression.create({ inputs: 9, seed: 10, sparseInputs: true }) },
  ];
  for (const c of cases) {
    test(`${c.name}: the kind, spec, scaling and outputs (identical) return`, TIMEOUT, async () => {
      const model = await c.create();
      const inputs = model.network.inputs;
      if (c.scale) model.inputScaling = c.name.includes("min-max") ? minMax(inputs) : zScore(inputs);
      const copy = await importOnnx(exportOnnx(model));
      try {
        assert.equal(copy.kind, model.kind);
        assert.equal(copy.constructor, model.constructor);
        assert.deepEqual(copy.network.spec, model.network.spec);
        assert.deepEqual(copy.inputScaling, model.inputScaling);
        const x = randomArray(seededRandom(20), 50 * inputs, -5, 25);
        assert.deepEqual(copy.predict(x, 50), model.predict(x, 50));
      } finally {
        copy.dispose();
        model.dispose();
      }
    });
  }
});

describe("importOnnx: the model class and cost", () => {
  const cases: { name: string; build: (g: Graph) => Graph; metadata?: Record<string, string>; kind: new (...args: never[]) => Model; cost: string }[] = [
    { name: "one sigmoid unit: LogisticRegression", build: (g) => g.gemm(1).node("Sigmoid", ["$"]), kind: LogisticRegression, cost: "cross-entropy" },
    { name: "one identity unit: LinearRegression", build: (g) => g.matMulAdd(1, false), kind: LinearRegression, cost: "squared-error" },
    { name: "downpour.kind Perceptron: a Perceptron on squared error", build: (g) => g.gemm(2).node("Sigmoid", ["$"]), metadata: { "downpour.kind": "Perceptron" }, kind: Perceptron, cost: "squared-error" },
    { name: "several sigmoid units: an MLP on cross-entropy", build: (g) => g.gemm(3).node("Sigmoid", ["$"]), kind: MultiLayerPerceptron, cost: "cross-entropy" },
  ];
  for (const c of cases) {
    test(c.name, TIMEOUT, async () => {
      const g = c.build(new Graph(3, seededRandom(16)));
      const model = await importAndCompare(g.bytes({ metadata: c.metadata }), 3, c.name);
      try {
        assert.ok(model instanceof c.kind, `${model.constructor.name}`);
        assert.equal(model.network.spec.cost, c.cost);
      } finally {
        model.dispose();
      }
    });
  }
});

describe("importOnnx: an imported model trains further and is saved", () => {
  test("a z-score-scaled Keras-style classifier: fit lowers its loss; encodeModel/decodeModel keep its outputs", TIMEOUT, async () => {
    const g = new Graph(3, seededRandom(17)).scaling([10, 100, 0], [5, 50, 1]).matMulAdd(6, true).node("Tanh", ["$"]).matMulAdd(1, false).node("Sigmoid", ["$"]);
    const model = await importOnnx(g.bytes());
    const random = seededRandom(18);
    const rows = 200;
    const x = new Float32Array(rows * 3);
    const y = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      x.set([10 + 10 * (random() - 0.5), 100 + 100 * (random() - 0.5), random() - 0.5], 3 * r);
      y[r] = x[3 * r]! - 10 + (x[3 * r + 1]! - 100) / 10 > 0 ? 1 : 0;
    }
    const data = createDataset({ features: 3, outputs: 1, x, y });
    try {
      assert.ok(model instanceof MultiLayerPerceptron);
      const before = model.evaluate(data).loss;
      await model.fit(data, { epochs: 8, threads: 0, learningRate: 0.1, batchSize: 16 });
      const after = model.evaluate(data).loss;
      assert.ok(after < 0.8 * before, `loss ${before} -> ${after}`);
      const copy = await decodeModel(encodeModel(model));
      try {
        assert.equal(copy.kind, "MultiLayerPerceptron");
        assert.deepEqual(copy.inputScaling, model.inputScaling);
        assert.deepEqual(copy.predict(x, rows), model.predict(x, rows));
      } finally {
        copy.dispose();
      }
    } finally {
      model.dispose();
    }
  });
});

describe("importOnnx: refusals", () => {
  const dense = () => new Graph(4, seededRandom(19));

  test("a node that is not a dense layer or an activation is named with its op type", TIMEOUT, async () => {
    const g = dense().gemm(3);
    g.node("Conv", ["$", g.init("k", [1])], [], "conv1");
    await refused(g.bytes(), "unsupported", /node 'conv1' \(Conv\): not a dense layer \(Gemm, or MatMul then Add\) or one of the activations Relu, Sigmoid, Tanh, Softmax, Identity/, { node: "conv1", opType: "Conv" });
    await refused(dense().gemm(3).node("LeakyRelu", ["$"], [], "lrelu").bytes(), "unsupported", /node 'lrelu' \(LeakyRelu\): not a dense layer/, { node: "lrelu", opType: "LeakyRelu" });
    const custom = dense().gemm(3);
    custom.nodes.at(-1)!.domain = "com.microsoft";
    await refused(custom.bytes(), "unsupported", /\(Gemm\): an op of domain 'com\.microsoft'/);
    const unnamed = dense().gemm(3).node("Elu", ["$"]);
    delete unnamed.nodes[1]!.name;
    await refused(unnamed.bytes(), "unsupported", /node #1 \(Elu\)/, { node: "#1", opType: "Elu" });
  });

  test("wrong attributes are named: transA 1, alpha 2, beta 0.5, transB 2, Softmax axis 0, Flatten axis 0", TIMEOUT, async () => {
    const withAttr = (attr: OnnxAttribute) => {
      const g = dense().gemm(3);
      g.nodes[0]!.attribute = [...g.nodes[0]!.attribute!.filter((a) => a.name !== attr.name), attr];
      return g.bytes();
    };
    await refused(withAttr(intAttr("transA", 1)), "unsupported", /node 'gemm0' \(Gemm\): attribute transA is 1; only 0 is taken/, { node: "gemm0", opType: "Gemm" });
    await refused(withAttr(floatAttr("alpha", 2)), "unsupported", /attribute alpha is 2; only 1 is taken/);
    await refused(withAttr(floatAttr("beta", 0.5)), "unsupported", /attribute beta is 0.5/);
    await refused(withAttr(intAttr("transB", 2)), "unsupported", /attribute transB is 2; only 0 or 1/);
    await refused(dense().gemm(3).node("Softmax", ["$"], [intAttr("axis", 0)], "sm").bytes(), "unsupported", /node 'sm' \(Softmax\): attribute axis is 0; only 1 or -1/);
    await refused(dense().node("Flatten", ["$"], [intAttr("axis", 0)], "flat").gemm(3).bytes(), "unsupported", /node 'flat' \(Flatten\): attribute axis is 0/);
  });

  test("shapes that do not chain name the node and the shapes", TIMEOUT, async () => {
    const g = dense();
    g.width = 5; // the weight expects 5 inputs per row; the input has 4
    await refused(g.gemm(3).bytes(), "malformed", /node 'gemm0' \(Gemm\): shapes do not chain: its input 'features' is \[batch, 4\] but B \[3, 5\] \(transB 1\) takes 5 inputs/);
    await refused(dense().gemm(3, 1, [4]).bytes(), "malformed", /bias 'b0' has dims \[4\]; expected \[3\] or \[1, 3\]/);
    const m = dense();
    m.node("MatMul", ["$", m.init("k", [3, 2])], [], "mm");
    await refused(m.bytes(), "malformed", /node 'mm' \(MatMul\): shapes do not chain: its input 'features' is \[batch, 4\] but weight \[3, 2\]/);
    const s = dense();
    s.node("Sub", ["$", s.init("o", [2], [1, 2])], [], "sub").gemm(3);
    await refused(s.bytes(), "malformed", /node 'sub' \(Sub\): shapes do not chain: operand 'o' has dims \[2\]; expected \[4\], \[1, 4\] or one value/);
  });

  test("graphs that are not one chain: a branch, a leading activation, an op after the last layer, no dense layer", TIMEOUT, async () => {
    const branch = dense().gemm(4).node("Relu", ["$"]);
    branch.node("Add", ["$", "features"], [], "residual");
    await refused(branch.bytes(), "unsupported", /node 'residual' \(Add\): input 'features' is neither the chain's value/);
    await refused(dense().node("Relu", ["$"], [], "r").gemm(2).bytes(), "unsupported", /node 'r' \(Relu\): an activation before the first dense layer/);
    await refused(dense().gemm(2).node("Relu", ["$"]).node("Sigmoid", ["$"], [], "s2").bytes(), "unsupported", /node 's2' \(Sigmoid\): a second activation after the relu/);
    const after = dense().gemm(2).node("Relu", ["$"]);
    after.node("Mul", ["$", after.init("two", [1], [2])], [], "scale");
    await refused(after.bytes(), "unsupported", /node 'scale' \(Mul\): not a dense layer .*; Mul is taken only before the first dense layer \(input scaling\)/);
    const late = dense().gemm(2).node("Relu", ["$"]);
    late.node("Add", ["$", late.init("shift", [2])], [], "shift");
    await refused(late.bytes(), "unsupported", /node 'shift' \(Add\): .*an Add after the relu of the layer of node gemm0 is not its bias/);
    const twice = dense();
    twice.node("Add", ["$", "$"], [], "double");
    await refused(twice.gemm(2).bytes(), "unsupported", /node 'double' \(Add\): reads 'features' 2 times/);
    await refused(dense().node("Identity", ["$"]).bytes(), "unsupported", /no dense layer/);
    const divide = dense();
    divide.node("Div", ["$", divide.init("d", [4], [1, 2, 0, 4])], [], "div").gemm(2);
    await refused(divide.bytes(), "unsupported", /node 'div' \(Div\): divides input column 2 \(0-based\) by 0/);
    await refused(dense().gemm(1).node("Softmax", ["$"]).bytes(), "unsupported", /softmax over 1 unit/);
  });

  test("inputs and outputs: one float input [batch, F] with F known, one output that the last node produces", TIMEOUT, async () => {
    const two = dense().gemm(2).model();
    two.graph.input.push({ name: "extra", type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: [{ dim_value: 1 }] } } } });
    await refused(encodeOnnx(two), "unsupported", /the graph has 2 inputs \('features', 'extra'\) besides its initializers; expected one float input \[batch, features\]/);
    const withInits = dense().gemm(2).model();
    withInits.graph.input.push({ name: "w0", type: { tensor_type: { elem_type: ONNX_FLOAT } } });
    const ok = await importOnnx(encodeOnnx(withInits));
    ok.dispose();
    const unknown = dense().gemm(2).model();
    unknown.graph.input[0]!.type!.tensor_type!.shape!.dim![1] = { dim_param: "F" };
    await refused(encodeOnnx(unknown), "unsupported", /input 'features' has shape \[batch, F\]; expected one float input \[batch, features\] with the features known/);
    const ints = dense().gemm(2).model();
    ints.graph.input[0]!.type!.tensor_type!.elem_type = 7;
    await refused(encodeOnnx(ints), "unsupported", /input 'features' has element type 7/);
    const g = dense().gemm(3);
    const hidden = g.current;
    g.node("Relu", ["$"]);
    await refused(g.bytes({ outputs: [hidden] }), "unsupported", /the graph's output 'gemm0_out' is not the chain's last value; expected one output, the value 'relu1_out'/);
    await refused(g.bytes({ outputs: [hidden, g.current] }), "unsupported", /the graph has 2 outputs/);
    const late = dense().gemm(3).model();
    late.graph.node.push({ op_type: "Constant", name: "late", input: [], output: ["late"], attribute: [{ name: "value_float", type: 1, f: 1 }] });
    await refused(encodeOnnx(late), "unsupported", /the last node does not produce the output 'gemm0_out'/);
  });

  test("bad parameters and metadata", TIMEOUT, async () => {
    const nan = dense();
    nan.init("w", [4, 2], [1, 2, 3, Number.NaN, 5, 6, 7, 8]);
    nan.node("MatMul", ["$", "w"], [], "mm");
    await refused(nan.bytes(), "malformed", /node 'mm' \(MatMul\): weight 'w' holds NaN at index 3/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.kind": "Transformer" } }), "malformed", /metadata downpour\.kind is "Transformer"; expected one of LayeredANN/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.cost": "hinge" } }), "malformed", /metadata downpour\.cost is "hinge"/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.scaling": "log" } }), "malformed", /metadata downpour\.scaling is "log"/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.spec": "{not json" } }), "malformed", /metadata downpour\.spec is "\{not json"; expected the JSON of a network spec/);
    const spec = JSON.stringify({ inputs: 4, layers: [{ units: 3 }] });
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.spec": spec } }), "malformed", /downpour\.spec describes the network 4-3, the graph is 4-2/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.kind": "AutoEncoder" } }), "malformed", /AutoEncoder, but the graph 4-2 is not an encoder and a decoder/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.cost": "softmax-cross-entropy" } }), "malformed", /cost softmax-cross-entropy needs a softmax output layer/);
    await refused(dense().gemm(2).bytes({ metadata: { "downpour.scaling": "z-score" } }), "malformed", /metadata downpour\.scaling says z-score, but the graph does not start with its Sub and Div/);
    const scaled = () => dense().scaling([1, 2, 3, 4], [1, 1, 2, 2]).gemm(2);
    const stats = (std: number[]) => ({ "downpour.scaling.stats": JSON.stringify({ kind: "z-score", mean: [1, 2, 3, 4], std }) });
    const ok = await importOnnx(scaled().bytes({ metadata: stats([1, 1, 2, 2]) }));
    ok.dispose();
    await refused(scaled().bytes({ metadata: stats([1, 1, 2, 3]) }), "malformed", /metadata downpour\.scaling\.stats does not round to the graph's scaling constants at input 3/);
    await refused(scaled().bytes({ metadata: stats([1, 1, 2]) }), "malformed", /metadata downpour\.scaling\.stats .*std must be 4 finite numbers/);
  });

  test("a truncated file, at every length, is 'truncated'", TIMEOUT, async () => {
    const bytes = dense().gemm(3).node("Relu", ["$"]).gemm(2).node("Softmax", ["$"]).bytes();
    for (let n = 1; n < bytes.length; n++) {
      await assert.rejects(importOnnx(bytes.subarray(0, n), { source: "cut.onnx" }), (error: unknown) => {
        assert.ok(error instanceof OnnxImportError);
        assert.equal(error.reason, "truncated", `cut at ${n} of ${bytes.length}: ${error.message}`);
        assert.match(error.message, /^cut\.onnx .*\(a truncated file\?\)/);
        return true;
      });
    }
  });

  test("bytes that are not ONNX: a PNG header, random bytes, a downpour model file, text, an empty file", TIMEOUT, async () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    await refused(png, "not-onnx", /is not an ONNX model \(a PNG image\)/);
    for (let seed = 1; seed <= 20; seed++) {
      const random = seededRandom(seed);
      await refused(Uint8Array.from({ length: 1000 }, () => Math.floor(random() * 256)), "not-onnx", /is not an ONNX model/);
    }
    const model = await LogisticRegression.create({ inputs: 3 });
    try {
      await refused(encodeModel(model), "not-onnx", /a downpour model file \(\.dpnn\); load it with loadModel or decodeModel/);
    } finally {
      model.dispose();
    }
    await refused(new TextEncoder().encode('{"ir_version": 8, "graph": {}}'), "not-onnx", /text, not the binary protobuf/);
    await refused(new Uint8Array(0), "not-onnx", /empty, not an ONNX model/);
    await assert.rejects(importOnnx("model.onnx" as unknown as Uint8Array), (e: unknown) => e instanceof OnnxImportError && e.reason === "not-onnx" && /expected bytes/.test(e.message));
  });

  test("options are checked by name; an ArrayBuffer is taken as bytes", TIMEOUT, async () => {
    const bytes = dense().gemm(2).bytes();
    await assert.rejects(importOnnx(bytes, { kernels: {} as never }), (e: unknown) => e instanceof InvalidArgumentError && /options\.kernels must be a Kernels/.test(e.message));
    await assert.rejects(importOnnx(bytes, { source: 3 as never }), (e: unknown) => e instanceof InvalidArgumentError && /options\.source must be a string/.test(e.message));
    await assert.rejects(importOnnx(bytes, null as never), (e: unknown) => e instanceof InvalidArgumentError && /options must be an object/.test(e.message));
    assert.equal(bytes.buffer.byteLength, bytes.length, "encodeOnnx's bytes own their ArrayBuffer");
    const [model, same] = [await importOnnx(bytes.buffer as ArrayBuffer), await importOnnx(bytes)];
    try {
      assert.deepEqual(model.predict(Float32Array.of(1, 2, 3, 4)), same.predict(Float32Array.of(1, 2, 3, 4)));
    } finally {
      model.dispose();
      same.dispose();
    }
  });
});
