// User neuron types through the registry and the model lifecycle: local training on 0, 1 and 2 threads (the same
// weights), save and load, the Job builder, checkNeuron on the built-ins and on broken types, and the errors that
// name the module and export, the layer and the unit.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { job } from "../../src/api/job.js";
import { decodeModel, encodeModel, modelContents } from "../../src/api/model-bytes.js";
import { encodeModel as encodeContents } from "../../src/model/file/encode.js";
import { LayeredANN, MultiLayerPerceptron } from "../../src/api/models.js";
import { createDataset, type Dataset } from "../../src/data/dataset.js";
import { InvalidStateError, WorkerError } from "../../src/errors.js";
import { checkNeuron } from "../../src/api/neuron-check.js";
import { resolveSpec, SpecError } from "../../src/model/spec.js";
import { loadNeuronTypes, neuronTypes } from "../../src/model/neurons/registry.js";
import { NeuronTypeError, scalarNeuron } from "../../src/model/neurons/types.js";
import { randomArray, seededRandom } from "../helpers.js";
import { MODULE, StandardNeuron } from "../support/neurons.js";

const TIMEOUT = { timeout: 120_000 };

function blobs(seed: number, rows: number): Dataset {
  const random = seededRandom(seed);
  const x = randomArray(random, rows * 4, -1, 1);
  const y = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) y[r * 2 + (x[r * 4]! + x[r * 4 + 1]! * x[r * 4 + 2]! > 0 ? 1 : 0)] = 1;
  return createDataset({ features: 4, outputs: 2, x, y });
}

/** An error (or one of its causes) that is a NeuronTypeError naming both the module and the export. */
function namesModuleAndExport(module: string, exportName: string) {
  return (error: unknown) => {
    for (let e = error as { cause?: unknown } | undefined; e; e = e.cause as typeof e) {
      if (e instanceof NeuronTypeError) {
        assert.ok(e.message.includes(module) && e.message.includes(exportName), e.message);
        assert.equal(e.exportName, exportName);
        return true;
      }
    }
    return false;
  };
}

describe("user neuron types", () => {
  test("Swish and StandardNeuron train on 0, 1 and 2 threads to the same weights, and learn", TIMEOUT, async () => {
    const data = blobs(1, 256);
    for (const neuron of [`${MODULE}#Swish`, `${MODULE}#StandardNeuron`]) {
      const weights: Float32Array[] = [];
      for (const threads of [0, 1, 2]) {
        const model = await MultiLayerPerceptron.create({ inputs: 4, hidden: [12], outputs: 2, hiddenActivation: "tanh", hiddenNeuron: neuron, seed: 2 });
        try {
          const reports = await model.fit(data, { epochs: 40, batchSize: 32, learningRate: 0.2, momentum: 0.9, threads, mode: "sync" });
          assert.ok(reports.at(-1)!.loss < 0.5 * reports[0]!.loss, `${neuron} on ${threads} threads: loss ${reports[0]!.loss} -> ${reports.at(-1)!.loss}`);
          assert.ok(model.evaluate(data).accuracy! >= 0.85, `${neuron} on ${threads} threads: accuracy ${model.evaluate(data).accuracy}`);
          weights.push(Float32Array.from(model.network.tensors().flatMap((t) => Array.from(t.data))));
        } finally {
          model.dispose();
        }
      }
      assert.deepEqual(weights[1], weights[0], `${neuron}: 1 thread differs from 0`);
      assert.deepEqual(weights[2], weights[0], `${neuron}: 2 threads differ from 0`);
    }
  });

  test("a model with user types survives encodeModel / decodeModel: the spec names them, predictions are identical", TIMEOUT, async () => {
    const data = blobs(2, 64);
    const model = await LayeredANN.create({
      inputs: 4,
      layers: [{ units: 6, neuron: `${MODULE}#Swish` }, { units: 5, activation: "tanh", neuron: `${MODULE}#StandardNeuron` }, { units: 2, activation: "softmax" }],
      seed: 4,
    });
    try {
      await model.fit(data, { epochs: 5, batchSize: 16, learningRate: 0.1, threads: 0 });
      const loaded = await decodeModel(encodeModel(model));
      try {
        assert.deepEqual(loaded.network.spec.layers.map((l) => l.neuron?.export), ["Swish", "StandardNeuron", undefined]);
        assert.equal(loaded.network.spec.layers[0]!.neuron!.module, MODULE);
        assert.deepEqual(loaded.predict(data.x), model.predict(data.x));
      } finally {
        loaded.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  test("a saved model whose neuron module has moved fails to load with a NeuronTypeError naming the module and export", TIMEOUT, async () => {
    const model = await LayeredANN.create({ inputs: 4, layers: [{ units: 3, neuron: `${MODULE}#Swish` }, { units: 2, activation: "softmax" }], seed: 4 });
    try {
      const contents = modelContents(model);
      const moved = new URL("./moved-away/neurons.js", MODULE).href;
      const spec = contents.spec as { layers: Array<{ neuron?: { module: string; export: string } }> };
      spec.layers[0]!.neuron = { module: moved, export: "Swish" };
      await assert.rejects(decodeModel(encodeContents(contents)), namesModuleAndExport(moved, "Swish"));
    } finally {
      model.dispose();
    }
  });

  test("a missing module or export is a NeuronTypeError naming both, before any training", TIMEOUT, async () => {
    const missingFile = new URL("./no-such-neurons.js", MODULE).href;
    await assert.rejects(LayeredANN.create({ inputs: 2, layers: [{ units: 3, neuron: `${missingFile}#Swish` }, { units: 1 }] }), namesModuleAndExport(missingFile, "Swish"));
    await assert.rejects(LayeredANN.create({ inputs: 2, layers: [{ units: 3, neuron: `${MODULE}#NoSuchType` }, { units: 1 }] }), namesModuleAndExport(MODULE, "NoSuchType"));
    await assert.rejects(LayeredANN.create({ inputs: 2, layers: [{ units: 3, neuron: `${MODULE}#NotANeuron` }, { units: 1 }] }), namesModuleAndExport(MODULE, "NotANeuron"));
    assert.throws(() => resolveSpec({ inputs: 2, layers: [{ units: 3, neuron: "./neurons.js" }, { units: 1 }] }), (e: Error) => e instanceof SpecError && e.message.includes("MODULE#EXPORT"));
  });

  test("wrong placements are SpecErrors naming the layer: a user type on the output layer, softmax or dropout on a per-neuron layer", TIMEOUT, async () => {
    await assert.rejects(LayeredANN.create({ inputs: 2, layers: [{ units: 3 }, { units: 1, neuron: `${MODULE}#Swish` }] }), (e: Error) => e instanceof SpecError && /layers\[1\]\.neuron/.test(e.message));
    await assert.rejects(LayeredANN.create({ inputs: 2, layers: [{ units: 3, activation: "softmax", neuron: `${MODULE}#StandardNeuron` }, { units: 1 }] }), (e: Error) => e instanceof SpecError && /layers\[0\]/.test(e.message));
    await assert.rejects(LayeredANN.create({ inputs: 2, layers: [{ units: 3, dropout: 0.5, neuron: `${MODULE}#StandardNeuron` }, { units: 1 }] }), (e: Error) => e instanceof SpecError && /dropout/.test(e.message));
    assert.throws(() => job().inputLayer(2).outputLayer(1, "sigmoid", StandardNeuron), SpecError);
  });

  test("a type defined in-process (no module) trains on the calling thread and is refused for worker threads by name", TIMEOUT, async () => {
    const Softsign = scalarNeuron({ name: "Softsign", f: (z) => z / (1 + Math.abs(z)), derivativeFromInput: (z) => 1 / (1 + Math.abs(z)) ** 2 });
    const data = blobs(3, 64);
    const model = await LayeredANN.create({ inputs: 4, layers: [{ units: 6, neuron: Softsign }, { units: 2, activation: "softmax" }], seed: 1 });
    try {
      const reports = await model.fit(data, { epochs: 20, batchSize: 16, learningRate: 0.2, threads: 0 });
      assert.ok(reports.at(-1)!.loss < reports[0]!.loss);
      await assert.rejects(model.fit(data, { epochs: 1, threads: 2 }), (e: Error) => e instanceof WorkerError && e.message.includes("Softsign") && e.message.includes("module"));
    } finally {
      model.dispose();
    }
  });

  test("the Job builder: Horn's inputLayer / addLayer / outputLayer / cost chain builds the spec and trains", TIMEOUT, async () => {
    const built = job().inputLayer(4).addLayer(8, "sigmoid", StandardNeuron).addLayer(6, "tanh", `${MODULE}#Swish`).outputLayer(2, "softmax").cost("softmax-cross-entropy");
    const spec = built.spec();
    assert.equal(spec.inputs, 4);
    assert.deepEqual(spec.layers.map((l) => [l.units, l.activation]), [[8, "sigmoid"], [6, "tanh"], [2, "softmax"]]);
    assert.equal(spec.cost, "softmax-cross-entropy");
    assert.throws(() => job().outputLayer(2).spec(), InvalidStateError);
    const data = blobs(4, 128);
    const { model, reports } = await built.learningRate(0.2).momentum(0.9).batchSize(16).epochs(30).threads(1).train(data);
    try {
      assert.equal(reports.length, 30);
      assert.ok(model.evaluate(data).accuracy! >= 0.8, `accuracy ${model.evaluate(data).accuracy}`);
      assert.deepEqual(model.network.spec.layers[0]!.neuron, { module: MODULE, export: "StandardNeuron" });
    } finally {
      model.dispose();
    }
  });

  test("one registry: the built-ins are its entries (the core's kernels), the user types join it once loaded", TIMEOUT, async () => {
    const before = neuronTypes();
    assert.deepEqual(before.filter((t) => t.form === "kernel").map((t) => t.name), ["identity", "sigmoid", "tanh", "relu", "softmax"]);
    await loadNeuronTypes(resolveSpec({ inputs: 1, layers: [{ units: 1, neuron: `${MODULE}#WinnerTakeAll` }, { units: 1 }] }));
    const entry = neuronTypes().find((t) => t.name === "WinnerTakeAll");
    assert.equal(entry?.form, "block");
    assert.deepEqual(entry && "ref" in entry ? entry.ref : undefined, { module: MODULE, export: "WinnerTakeAll" });
  });

  test("checkNeuron passes every built-in and the well-formed user types, in each form", TIMEOUT, async () => {
    for (const type of ["identity", "sigmoid", "tanh", "relu", `${MODULE}#Swish`, `${MODULE}#WinnerTakeAll`, `${MODULE}#StandardNeuron`]) {
      const report = await checkNeuron(type);
      assert.ok(report.passed, `${type}: ${JSON.stringify(report.checks)}`);
      assert.deepEqual(report.checks.map((c) => [c.name, c.status]), [["gradients", "passed"], ["finite", "passed"], ["threads", "passed"]]);
    }
  });

  test("checkNeuron fails broken types on the check they break", TIMEOUT, async () => {
    const statusOf = async (type: string) => Object.fromEntries((await checkNeuron(type)).checks.map((c) => [c.name, c.status]));
    assert.equal((await statusOf(`${MODULE}#Exploding`)).finite, "failed");
    const silent = await checkNeuron(`${MODULE}#Silent`);
    assert.equal(silent.passed, false);
    assert.ok(silent.checks.every((c) => c.status === "failed" && c.detail.includes("feedforward")), JSON.stringify(silent.checks));
    const short = await checkNeuron(`${MODULE}#ShortPush`);
    assert.ok(short.checks.some((c) => c.status === "failed" && /pushed \d+ weight gradients/.test(c.detail)), JSON.stringify(short.checks));
    await assert.rejects(checkNeuron(`${MODULE}#NoSuchType`), namesModuleAndExport(MODULE, "NoSuchType"));
  });
});
