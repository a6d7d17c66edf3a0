// A sparse first layer (spec.sparseInputs, SparseDataset rows of index/value pairs): its gradients equal the dense
// network's on the same rows made dense, and central differences; it trains on 0, 1 and 2 threads to the same
// weights, and to the dense run's with plain SGD (no momentum: the sparse step leaves untouched rows alone);
// a logistic regression on click-log-like data beats the constant predictor by far; what it cannot do yet is
// refused by name; it survives save and load.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeModel, encodeModel } from "../../src/api/model-bytes.js";
import { LayeredANN, LogisticRegression, MultiLayerPerceptron } from "../../src/api/models.js";
import { gradientCheck } from "../../src/api/neuron-check.js";
import { createSparseDataset, type SparseDataset, sparseToDense } from "../../src/data/sparse.js";
import { SynthCtr, synthCtrDataset } from "../../src/data/synth-ctr.js";
import { ShapeError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import { SpecError } from "../../src/model/spec.js";
import { computeGradients } from "../../src/train/gradients.js";
import { TrainOptionsError } from "../../src/train/options.js";
import { kernelsFor, seededRandom } from "../helpers.js";
import { MODULE } from "../support/neurons.js";

const TIMEOUT = { timeout: 120_000 };

/** `rows` random sparse rows over `features` (0 to 5 pairs, repeats allowed), one-hot over `outputs`. */
function randomSparse(seed: number, rows: number, features: number, outputs: number): SparseDataset {
  const random = seededRandom(seed);
  const rowPtr = new Int32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    const n = Math.floor(random() * 6);
    for (let k = 0; k < n; k++) {
      indices.push(Math.floor(random() * features));
      values.push(2 * random() - 1);
    }
    rowPtr[r + 1] = indices.length;
  }
  const labels = Int32Array.from({ length: rows }, () => Math.floor(random() * outputs));
  const y = new Float32Array(rows * outputs);
  labels.forEach((c, r) => {
    y[r * outputs + c] = 1;
  });
  return createSparseDataset({ features, outputs, rowPtr, indices: Int32Array.from(indices), values: Float32Array.from(values), y, labels });
}

const weightsOf = (network: Network) => Float32Array.from(network.tensors().flatMap((t) => Array.from(t.data)));

describe("sparse inputs", () => {
  test("gradients equal the dense network's on the same rows, on both GEMM paths, and pass central differences", TIMEOUT, async () => {
    const kernels = await kernelsFor("simd");
    for (const hidden of [[], [5], [5, 4]]) {
      const data = randomSparse(hidden.length + 1, 9, 7, 3);
      const spec = { inputs: 7, layers: [...hidden.map((units) => ({ units, activation: "tanh" as const })), { units: 3, activation: "softmax" as const }], init: "xavier" as const, seed: 2 };
      const sparse = Network.create(kernels, { ...spec, sparseInputs: true });
      const dense = Network.create(kernels, spec);
      try {
        dense.setTensors(sparse.tensors());
        for (const packed of [true, false]) {
          const gs = computeGradients(sparse, data, { packed, portion: 2 });
          const gd = computeGradients(dense, sparseToDense(data), { packed, portion: 2 });
          assert.ok(Math.abs(gs.loss - gd.loss) <= 1e-6, `hidden ${hidden}: loss ${gs.loss} vs dense ${gd.loss}`);
          gs.tensors.forEach((t, i) => {
            t.data.forEach((v, j) => {
              assert.ok(Math.abs(v - gd.tensors[i]!.data[j]!) <= 1e-6, `hidden ${hidden}, ${t.name}[${j}]: ${v} vs dense ${gd.tensors[i]!.data[j]}`);
            });
          });
        }
        const check = gradientCheck(sparse, data);
        assert.deepEqual(check.failures, [], `hidden ${hidden}`);
        assert.ok(check.checked > 0);
      } finally {
        sparse.dispose();
        dense.dispose();
      }
    }
  });

  test("trains on 0, 1 and 2 threads (sync) to the same weights, and to the dense run's with plain SGD", TIMEOUT, async () => {
    const data = randomSparse(7, 300, 64, 2);
    const config = { inputs: 64, hidden: [8], outputs: 2, hiddenActivation: "tanh" as const, seed: 5 };
    const fit = { epochs: 4, batchSize: 16, learningRate: 0.2, momentum: 0, mode: "sync" as const };
    const runs: Float32Array[] = [];
    for (const threads of [0, 1, 2]) {
      const model = await MultiLayerPerceptron.create({ ...config, sparseInputs: true });
      try {
        await model.fit(data, { ...fit, threads });
        runs.push(weightsOf(model.network));
      } finally {
        model.dispose();
      }
    }
    assert.deepEqual(runs[1], runs[0]);
    assert.deepEqual(runs[2], runs[0]);
    const dense = await MultiLayerPerceptron.create(config);
    try {
      await dense.fit(sparseToDense(data), { ...fit, threads: 2 });
      const d = weightsOf(dense.network);
      runs[0]!.forEach((v, i) => {
        assert.ok(Math.abs(v - d[i]!) <= 1e-5, `weight ${i}: sparse ${v}, dense ${d[i]}`);
      });
    } finally {
      dense.dispose();
    }
  });

  test("logistic regression on click-log-like data (2^12 features, 40 per row): held-out log-loss far below the constant's, sync and async", TIMEOUT, async () => {
    const gen = new SynthCtr({ features: 2 ** 12, seed: 3 });
    const train = synthCtrDataset(gen, 0, 20_000);
    const held = synthCtrDataset(gen, 20_000, 5_000);
    const rate = held.y.reduce((s, v) => s + v, 0) / held.size;
    const constant = -(rate * Math.log(rate) + (1 - rate) * Math.log(1 - rate));
    for (const mode of ["sync", "async"] as const) {
      const model = await LogisticRegression.create({ inputs: 2 ** 12, seed: 1, sparseInputs: true });
      try {
        await model.fit(train, { epochs: 2, batchSize: 64, learningRate: 0.05, momentum: 0, optimizer: "adagrad", threads: 2, mode });
        const loss = model.evaluate(held).loss;
        assert.ok(loss < constant - 0.04, `${mode}: held-out log-loss ${loss}, the constant predictor's ${constant}`);
      } finally {
        model.dispose();
      }
    }
  });

  test("a sparse model survives encodeModel / decodeModel (spec.sparseInputs kept, the same evaluation); predictSparse is the dense network's predict", TIMEOUT, async () => {
    const data = randomSparse(9, 50, 32, 2);
    const model = await LayeredANN.create({ inputs: 32, layers: [{ units: 4, neuron: `${MODULE}#Swish` }, { units: 2, activation: "softmax" }], sparseInputs: true, seed: 1 });
    try {
      await model.fit(data, { epochs: 3, batchSize: 8, learningRate: 0.1, threads: 0 });
      const loaded = await decodeModel(encodeModel(model));
      try {
        assert.equal(loaded.network.spec.sparseInputs, true);
        assert.deepEqual(loaded.evaluate(data), model.evaluate(data));
        assert.deepEqual(loaded.predictSparse(data), model.predictSparse(data));
        const dense = await LayeredANN.create({ inputs: 32, layers: [{ units: 4, neuron: `${MODULE}#Swish` }, { units: 2, activation: "softmax" }], seed: 1 });
        try {
          dense.network.setTensors(model.network.tensors());
          const expected = dense.predict(sparseToDense(data).x);
          model.predictSparse(data).forEach((v, i) => {
            assert.ok(Math.abs(v - expected[i]!) <= 1e-6, `output ${i}: sparse ${v}, dense ${expected[i]}`);
          });
        } finally {
          dense.dispose();
        }
      } finally {
        loaded.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  test("what does not fit is refused by name: dense data for sparse inputs and back, the cluster seams, a per-neuron first layer", TIMEOUT, async () => {
    const data = randomSparse(11, 20, 16, 2);
    const sparseModel = await LogisticRegression.create({ inputs: 16, sparseInputs: true });
    const denseModel = await LogisticRegression.create({ inputs: 16 });
    const binary = createSparseDataset({ ...data, outputs: 1, y: Float32Array.from(data.labels!), labels: undefined as unknown as Int32Array });
    try {
      await assert.rejects(sparseModel.fit(sparseToDense(binary), { epochs: 1, threads: 0 }), (e: Error) => e instanceof ShapeError && /network takes sparse inputs/.test(e.message));
      await assert.rejects(denseModel.fit(binary, { epochs: 1, threads: 0 }), (e: Error) => e instanceof ShapeError && /is sparse/.test(e.message));
      await assert.rejects(sparseModel.fit(binary, { epochs: 1, threads: 0, convergence: { window: 3 } } as never), TrainOptionsError);
    } finally {
      sparseModel.dispose();
      denseModel.dispose();
    }
    await assert.rejects(LayeredANN.create({ inputs: 16, layers: [{ units: 3, neuron: `${MODULE}#StandardNeuron` }, { units: 1 }], sparseInputs: true }), SpecError);
  });
});
