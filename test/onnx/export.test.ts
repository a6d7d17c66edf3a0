// exportOnnx against a real ONNX runtime (onnxruntime-web, one wasm thread): every model kind, with and without
// input scaling (a constant column included), answers what model.predict answers on the same raw rows for batches
// of 1, 7 and 300; user neuron types export through their compositions (Swish) and are refused without one; the
// bytes decode to a model that declares the dynamic batch, the names, opset 17 and IR 8, and the metadata keys.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as ort from "onnxruntime-web";
import {
  AutoEncoder,
  LayeredANN,
  LinearRegression,
  LogisticRegression,
  type Model,
  MultiLayerPerceptron,
  Perceptron,
} from "../../src/api/models.js";
import { createDataset } from "../../src/data/dataset.js";
import { minMaxStats, zScoreStats } from "../../src/data/normalize.js";
import type { Scaling } from "../../src/data/scaling.js";
import { createSparseDataset } from "../../src/data/sparse.js";
import { InvalidStateError } from "../../src/errors.js";
import type { Network } from "../../src/model/network.js";
import { registerNeuronType } from "../../src/model/neurons/registry.js";
import { NeuronTypeError, scalarNeuron } from "../../src/model/neurons/types.js";
import { resolveSpec } from "../../src/model/spec.js";
import { decodeOnnx, ONNX_IR_VERSION, ONNX_OPSET, OnnxExportError, type OnnxModel } from "../../src/onnx/codec.js";
import { DOWNPOUR_VERSION, exportOnnx, ONNX_METADATA_KEYS, requireWithinProtobufLimit } from "../../src/onnx/export.js";
import { assertClose, randomArray, seededRandom } from "../helpers.js";
import { MODULE } from "../support/neurons.js";
import { projectRoot } from "../support/paths.js";

const TIMEOUT = { timeout: 120_000 };
const INPUTS = 5;
/** The column the scaling stats see as constant (its divisor is 0; the exported graph masks it). */
const CONSTANT_COLUMN = 2;
const BATCHES = [1, 7, 300] as const;
/** 1e-5 relative, plus a small absolute floor for values near 0 (float32 sums in another order). */
const TOLERANCE = { rtol: 1e-5, atol: 2e-6 };

ort.env.wasm.numThreads = 1;

/** Raw rows whose columns have their own centre and spread (far from [0, 1], so scaling matters). */
function rawRows(seed: number, rows: number, constantColumn = false): Float32Array {
  const random = seededRandom(seed);
  const x = new Float32Array(rows * INPUTS);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < INPUTS; j++) x[r * INPUTS + j] = constantColumn && j === CONSTANT_COLUMN ? 7.25 : 10 * j - 15 + (1 + 3 * j) * (2 * random() - 1);
  }
  return x;
}

/** Stats fitted on rows where CONSTANT_COLUMN is constant. */
function scalingOf(kind: "min-max" | "z-score"): Scaling {
  const sample = createDataset({ features: INPUTS, outputs: 1, x: rawRows(11, 64, true), y: new Float32Array(64) });
  return kind === "min-max" ? minMaxStats(sample) : zScoreStats(sample);
}

/** Small seeded parameters, biases included (the initial biases are all zero). */
function randomizeParameters(model: Model, seed: number): void {
  const random = seededRandom(seed);
  model.network.setTensors(model.network.tensors().map((t) => ({ ...t, data: randomArray(random, t.data.length, -0.8, 0.8) })));
}

/** What the exported model answers for `rows` rows of x, and its output's name. */
async function runOnnx(bytes: Uint8Array, x: Float32Array, rows: number): Promise<{ name: string; data: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ features: new ort.Tensor("float32", x, [rows, x.length / rows]) });
    const name = session.outputNames[0]!;
    return { name, data: out[name]!.data as Float32Array };
  } finally {
    await session.release();
  }
}

/** Exports `model` and checks the runtime's outputs against model.predict (or `expected`) for every batch size. */
async function assertMatches(model: Model, label: string, output: string, seed = 3): Promise<void> {
  const bytes = exportOnnx(model);
  for (const rows of BATCHES) {
    const x = rawRows(seed + rows, rows);
    const ours = model.predict(x, rows);
    const theirs = await runOnnx(bytes, x, rows);
    assert.equal(theirs.name, output, `${label}: output name`);
    assertClose(theirs.data, ours, TOLERANCE, `${label}, batch ${rows}`);
  }
}

/** Every model kind, each with its output's expected name. */
const KINDS: { label: string; output: string; create: () => Promise<Model> }[] = [
  { label: "MLP relu-relu-softmax", output: "probabilities", create: () => MultiLayerPerceptron.create({ inputs: INPUTS, hidden: [8, 6], outputs: 3, seed: 1 }) },
  { label: "MLP tanh-sigmoid, dropout", output: "probabilities", create: () => MultiLayerPerceptron.create({ inputs: INPUTS, hidden: [6], outputs: 1, hiddenActivation: "tanh", dropout: 0.4, seed: 2 }) },
  { label: "Perceptron", output: "probabilities", create: () => Perceptron.create({ inputs: INPUTS, outputs: 2, seed: 3 }) },
  { label: "LinearRegression", output: "predictions", create: () => LinearRegression.create({ inputs: INPUTS, seed: 4 }) },
  { label: "LogisticRegression", output: "probabilities", create: () => LogisticRegression.create({ inputs: INPUTS, seed: 5 }) },
  { label: "AutoEncoder sigmoid", output: "reconstruction", create: () => AutoEncoder.create({ inputs: INPUTS, hidden: 3, seed: 6 }) },
  { label: "AutoEncoder tanh", output: "reconstruction", create: () => AutoEncoder.create({ inputs: INPUTS, hidden: 2, activation: "tanh", seed: 7 }) },
  {
    label: "LayeredANN, every activation",
    output: "probabilities",
    create: () =>
      LayeredANN.create({
        inputs: INPUTS,
        layers: [
          { units: 6, activation: "identity" },
          { units: 5, activation: "sigmoid", dropout: 0.3 },
          { units: 4, activation: "tanh" },
          { units: 4, activation: "relu" },
          { units: 3, activation: "softmax" },
        ],
        seed: 8,
      }),
  },
  {
    label: "LayeredANN relu-identity (regression)",
    output: "predictions",
    create: () => LayeredANN.create({ inputs: INPUTS, layers: [{ units: 7, activation: "relu" }, { units: 2, activation: "identity" }], seed: 9 }),
  },
];

async function withModel<T>(create: () => Promise<Model>, use: (model: Model) => Promise<T>): Promise<T> {
  const model = await create();
  try {
    return await use(model);
  } finally {
    model.dispose();
  }
}

/** The op types of the graph's nodes, in order. */
const opTypes = (onnx: OnnxModel) => onnx.graph.node.map((n) => n.op_type);
const metadata = (onnx: OnnxModel) => Object.fromEntries((onnx.metadata_props ?? []).map((p) => [p.key, p.value]));

describe("exportOnnx in onnxruntime-web", () => {
  test("every model kind, without scaling and with min-max and z-score (a constant column), answers as predict for batches 1, 7, 300", TIMEOUT, async () => {
    for (const kind of KINDS) {
      for (const scaling of [undefined, "min-max", "z-score"] as const) {
        await withModel(kind.create, async (model) => {
          randomizeParameters(model, 21);
          model.inputScaling = scaling && scalingOf(scaling);
          await assertMatches(model, `${kind.label}, scaling ${scaling ?? "none"}`, kind.output);
        });
      }
    }
  });

  test("the constant column is masked to 0 (downpour's d > 0 ? (x - offset) / d : 0), whatever its raw value", TIMEOUT, async () => {
    await withModel(
      () => LinearRegression.create({ inputs: INPUTS, seed: 1 }),
      async (model) => {
        const w = new Float32Array(INPUTS);
        w[CONSTANT_COLUMN] = 1;
        model.network.setTensors([
          { name: "w0", shape: [INPUTS, 1], data: w },
          { name: "b0", shape: [1], data: new Float32Array(1) },
        ]);
        for (const kind of ["min-max", "z-score"] as const) {
          model.inputScaling = scalingOf(kind);
          const x = rawRows(5, 7);
          const theirs = await runOnnx(exportOnnx(model), x, 7);
          assert.deepEqual(Array.from(theirs.data, Math.abs), [0, 0, 0, 0, 0, 0, 0], kind);
          assert.deepEqual(Array.from(model.predict(x, 7), Math.abs), [0, 0, 0, 0, 0, 0, 0], kind);
        }
      },
    );
  });

  test("sparse-input models export as a dense Gemm: the runtime on dense rows answers as predictSparse", TIMEOUT, async () => {
    const creators = [
      () => LogisticRegression.create({ inputs: 40, seed: 3, sparseInputs: true }),
      () => MultiLayerPerceptron.create({ inputs: 40, hidden: [6], outputs: 3, sparseInputs: true, seed: 4 }),
    ];
    for (const create of creators) {
      await withModel(create, async (model) => {
        randomizeParameters(model, 8);
        const random = seededRandom(9);
        const rows = 7;
        const dense = new Float32Array(rows * 40);
        const rowPtr = [0];
        const indices: number[] = [];
        const values: number[] = [];
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < 40; j++) {
            if (random() < 0.2) {
              const v = 2 * random() - 1;
              dense[r * 40 + j] = v;
              indices.push(j);
              values.push(v);
            }
          }
          rowPtr.push(indices.length);
        }
        const outputs = model.network.outputs;
        const sparse = createSparseDataset({
          features: 40,
          outputs,
          rowPtr: Int32Array.from(rowPtr),
          indices: Int32Array.from(indices),
          values: Float32Array.from(values),
          y: new Float32Array(rows * outputs),
        });
        const theirs = await runOnnx(exportOnnx(model), dense, rows);
        assertClose(theirs.data, model.predictSparse(sparse), TOLERANCE, `sparse ${model.kind}`);
        const onnx = decodeOnnx(exportOnnx(model));
        assert.equal(JSON.parse(metadata(onnx)[ONNX_METADATA_KEYS.spec]!).sparseInputs, true);
      });
    }
  });

  test("the bytes declare IR 8, opset 17, the dynamic batch, the names, the producer and the metadata keys", TIMEOUT, async () => {
    await withModel(
      () => MultiLayerPerceptron.create({ inputs: INPUTS, hidden: [4], outputs: 3, seed: 2 }),
      async (model) => {
        model.inputScaling = scalingOf("z-score");
        const onnx = decodeOnnx(exportOnnx(model, { metadata: { "trained.on": "blobs" } }));
        assert.equal(onnx.ir_version, ONNX_IR_VERSION);
        assert.equal(ONNX_IR_VERSION, 8);
        assert.deepEqual(onnx.opset_import.map((o) => [o.domain ?? "", o.version]), [["", ONNX_OPSET]]);
        assert.equal(ONNX_OPSET, 17);
        assert.equal(onnx.producer_name, "downpour");
        const pkg = JSON.parse(readFileSync(join(projectRoot(), "package.json"), "utf8")) as { version: string };
        assert.equal(onnx.producer_version, pkg.version);
        assert.equal(DOWNPOUR_VERSION, pkg.version);
        assert.match(onnx.doc_string ?? "", /MultiLayerPerceptron 5-4-3.*z-score/);
        const [input] = onnx.graph.input;
        const [output] = onnx.graph.output;
        assert.equal(input!.name, "features");
        assert.deepEqual(input!.type?.tensor_type?.shape?.dim, [{ dim_param: "batch" }, { dim_value: INPUTS }]);
        assert.equal(output!.name, "probabilities");
        assert.deepEqual(output!.type?.tensor_type?.shape?.dim, [{ dim_param: "batch" }, { dim_value: 3 }]);
        assert.deepEqual(opTypes(onnx), ["Sub", "Div", "Mul", "Gemm", "Relu", "Gemm", "Softmax"]);
        const softmax = onnx.graph.node.at(-1)!;
        assert.deepEqual(softmax.attribute?.map((a) => [a.name, a.i]), [["axis", 1]]);
        const gemm = onnx.graph.node[3]!;
        assert.deepEqual(gemm.input, ["scaled", "w0", "b0"]);
        assert.deepEqual(gemm.attribute ?? [], [], "Gemm with its defaults (transB 0: W as stored, fanIn x units)");
        const w0 = onnx.graph.initializer?.find((t) => t.name === "w0");
        assert.deepEqual(w0?.dims, [INPUTS, 4]);
        const meta = metadata(onnx);
        assert.equal(meta[ONNX_METADATA_KEYS.kind], "MultiLayerPerceptron");
        assert.equal(meta[ONNX_METADATA_KEYS.cost], "softmax-cross-entropy");
        assert.equal(meta[ONNX_METADATA_KEYS.scaling], "z-score");
        assert.equal(meta[ONNX_METADATA_KEYS.activations], "relu,softmax");
        assert.deepEqual(JSON.parse(meta[ONNX_METADATA_KEYS.scalingStats]!), JSON.parse(JSON.stringify(model.inputScaling)));
        assert.deepEqual(JSON.parse(meta[ONNX_METADATA_KEYS.spec]!), model.network.spec);
        assert.equal(meta[ONNX_METADATA_KEYS.neurons], undefined);
        assert.equal(meta["trained.on"], "blobs");
        const session = await ort.InferenceSession.create(exportOnnx(model));
        try {
          assert.deepEqual([session.inputNames, session.outputNames], [["features"], ["probabilities"]]);
        } finally {
          await session.release();
        }
        model.inputScaling = { kind: "min-max", min: [0, 0, 0, 0, 0], max: [1, 2, 3, 4, 5] };
        const unmasked = decodeOnnx(exportOnnx(model));
        assert.deepEqual(opTypes(unmasked), ["Sub", "Div", "Gemm", "Relu", "Gemm", "Softmax"], "no Mul without a constant column");
        model.inputScaling = undefined;
        const plain = decodeOnnx(exportOnnx(model));
        assert.deepEqual(opTypes(plain), ["Gemm", "Relu", "Gemm", "Softmax"]);
        assert.equal(metadata(plain)[ONNX_METADATA_KEYS.scaling], undefined);
      },
    );
  });

  test("user neuron types with compositions (Swish, scalar, block and per-neuron sigmoids, StandardNeuron) answer as predict", TIMEOUT, async () => {
    for (const [neuron, activation] of [["Swish", "relu"], ["SigmoidScalar", "relu"], ["SigmoidBlock", "relu"], ["SigmoidNeuron", "relu"], ["StandardNeuron", "tanh"]] as const) {
      await withModel(
        () => MultiLayerPerceptron.create({ inputs: INPUTS, hidden: [6, 4], outputs: 2, hiddenActivation: activation, hiddenNeuron: `${MODULE}#${neuron}`, seed: 5 }),
        async (model) => {
          randomizeParameters(model, 13);
          model.inputScaling = scalingOf("z-score");
          await assertMatches(model, `MLP of ${neuron}`, "probabilities");
          const onnx = decodeOnnx(exportOnnx(model));
          assert.deepEqual(JSON.parse(metadata(onnx)[ONNX_METADATA_KEYS.neurons]!), [`${MODULE}#${neuron}`, `${MODULE}#${neuron}`, null]);
          if (neuron === "Swish") assert.deepEqual(opTypes(onnx).slice(3, 6), ["Gemm", "Sigmoid", "Mul"]);
        },
      );
    }
  });

  test("a layer whose type has no composition is refused, naming the layer and MODULE#EXPORT", TIMEOUT, async () => {
    await withModel(
      () => LayeredANN.create({ inputs: INPUTS, layers: [{ units: 4, activation: "relu" }, { units: 3, neuron: `${MODULE}#WinnerTakeAll` }, { units: 2, activation: "softmax" }] }),
      async (model) => {
        assert.throws(
          () => exportOnnx(model),
          (error: unknown) => {
            assert.ok(error instanceof OnnxExportError, String(error));
            assert.equal(error.layer, 1);
            assert.ok(error.message.includes("layers[1]") && error.message.includes(`${MODULE}#WinnerTakeAll`), error.message);
            assert.match(error.message, /no ONNX composition/);
            return true;
          },
        );
      },
    );
  });

  test("a composition's unknown operator, foreign value or wrong return is refused naming the layer; a non-function onnx is no neuron type", TIMEOUT, async () => {
    const base = { f: (z: number) => 1 / (1 + Math.exp(-z)), derivativeFromOutput: (y: number) => y * (1 - y) };
    const broken = [
      { name: "Typo", onnx: (g: { op(t: string, i: string[]): string }, z: string) => g.op("Sigmiod", [z]), says: /"Sigmiod" is not an operator/ },
      { name: "Foreign", onnx: (g: { op(t: string, i: string[]): string }) => g.op("Sigmoid", ["elsewhere"]), says: /"elsewhere", which is no value/ },
      { name: "Nothing", onnx: () => undefined as unknown as string, says: /returned undefined/ },
      { name: "Throws", onnx: () => { throw new Error("boom"); }, says: /boom/ },
    ];
    for (const type of broken) {
      await withModel(
        () => LayeredANN.create({ inputs: INPUTS, layers: [{ units: 3, neuron: scalarNeuron({ ...base, name: type.name, onnx: type.onnx }) }, { units: 1 }] }),
        async (model) => {
          assert.throws(
            () => exportOnnx(model),
            (error: unknown) => error instanceof OnnxExportError && error.layer === 0 && error.message.includes("layers[0]") && error.message.includes(type.name) && type.says.test(error.message),
            type.name,
          );
        },
      );
    }
    assert.throws(() => registerNeuronType({ module: "", export: "NotAFunction" }, { ...base, onnx: "Sigmoid" } as never), (error: unknown) => error instanceof NeuronTypeError && /onnx must be a function/.test(error.message));
    await withModel(
      () => LayeredANN.create({ inputs: INPUTS, layers: [{ units: 3, neuron: scalarNeuron({ ...base, name: "Constants", onnx: (g, z) => g.op("Mul", [g.op("Sigmoid", [g.op("Mul", [z, g.constant(0.5)])]), g.constant([1, 2, 3], [1, 3])]) }) }, { units: 1, activation: "identity" }] }),
      async (model) => {
        // The composition differs from f (a check that constants and the returned name are used, not that it matches).
        const onnx = decodeOnnx(exportOnnx(model));
        assert.deepEqual(onnx.graph.initializer?.filter((t) => t.name?.startsWith("layer0.const")).map((t) => t.dims ?? []), [[], [1, 3]]);
      },
    );
  });

  test("initializers beyond protobuf's 2 GiB are refused by name and size, before anything is copied", TIMEOUT, () => {
    const spec = resolveSpec({ inputs: 2 ** 29, layers: [{ units: 1, activation: "sigmoid" }], sparseInputs: true });
    const huge = new LogisticRegression("LogisticRegression", { spec } as unknown as Network);
    assert.throws(
      () => exportOnnx(huge),
      (error: unknown) => error instanceof OnnxExportError && error.layer === 0 && /w0 \[536870912 x 1\] 2 GiB/.test(error.message) && /2 GiB limit/.test(error.message),
    );
    assert.throws(() => requireWithinProtobufLimit([{ name: "scaling.offset", dims: [300], bytes: 1200 }], 1000 + (1 << 20)), (error: unknown) => error instanceof OnnxExportError && /scaling\.offset \[300\]/.test(error.message));
    requireWithinProtobufLimit([{ name: "w0", dims: [300], bytes: 1200 }]);
  });

  test("bad options and disposed models are refused by name", TIMEOUT, async () => {
    const model = await LogisticRegression.create({ inputs: INPUTS, seed: 1 });
    try {
      assert.throws(() => exportOnnx(model, { graphname: "x" } as never), (e: unknown) => e instanceof OnnxExportError && /unknown option "graphname"/.test(e.message));
      assert.throws(() => exportOnnx(model, { docString: 3 } as never), (e: unknown) => e instanceof OnnxExportError && /docString must be a string/.test(e.message));
      assert.throws(() => exportOnnx(model, { metadata: { "downpour.kind": "x" } }), (e: unknown) => e instanceof OnnxExportError && /metadata\.downpour\.kind/.test(e.message));
      assert.throws(() => exportOnnx({} as never), (e: unknown) => e instanceof OnnxExportError && /must be a downpour Model/.test(e.message));
      model.inputScaling = { kind: "min-max", min: [0], max: [1] };
      assert.throws(() => exportOnnx(model), (e: unknown) => e instanceof OnnxExportError && /inputScaling \(min-max\) has 1 columns; the network has 5 inputs/.test(e.message));
      model.inputScaling = undefined;
      const named = decodeOnnx(exportOnnx(model, { graphName: "churn", docString: "churn model" }));
      assert.deepEqual([named.graph.name, named.doc_string], ["churn", "churn model"]);
    } finally {
      model.dispose();
    }
    assert.throws(() => exportOnnx(model), InvalidStateError);
  });
});
