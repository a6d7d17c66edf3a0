// evaluate(): its metrics agree with metrics computed independently from network.predict over more rows than one
// chunk (softmax, one sigmoid output, identity outputs, an auto-encoder's reconstruction), R² of an exact and of a
// constant predictor, and an empty dataset or a label outside the classes is an error.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { createDataset, type Dataset } from "../../src/data/dataset.js";
import { DataError } from "../../src/data/errors.js";
import { mulberry32 } from "../../src/data/random.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import type { NetworkSpec } from "../../src/model/spec.js";
import { evaluate } from "../../src/train/evaluate.js";
import { classificationMetrics, regressionMetrics, rocAuc } from "../../src/train/metrics.js";

/** More rows than evaluate's chunk (512), and not a multiple of it. */
const ROWS = 1300;

let kernels: Kernels;

function network(spec: NetworkSpec): Network {
  return Network.create(kernels, spec);
}

/** Rows of `features` uniform values in [-1, 1] and targets from `target` (one value per output). */
function regressionData(features: number, outputs: number, seed: number, target: (x: Float32Array, j: number) => number): Dataset {
  const random = mulberry32(seed);
  const x = Float32Array.from({ length: ROWS * features }, () => 2 * random() - 1);
  const y = new Float32Array(ROWS * outputs);
  for (let i = 0; i < ROWS; i++)
    for (let j = 0; j < outputs; j++) y[i * outputs + j] = target(x.subarray(i * features, (i + 1) * features), j);
  return createDataset({ features, outputs, x, y, name: "regression" });
}

describe("evaluate", () => {
  before(async () => {
    kernels = await Kernels.load();
  });

  test("softmax: accuracy and classification metrics agree with metrics of predict()", () => {
    const data = syntheticClassification({ size: ROWS, features: 6, classes: 4, seed: 3, spread: 0.6 });
    const net = network({
      inputs: 6,
      layers: [
        { units: 8, activation: "tanh" },
        { units: 4, activation: "softmax" },
      ],
      seed: 2,
    });
    const evaluation = evaluate(net, data);
    const metrics = evaluation.metrics;
    assert.ok(metrics?.task === "classification");
    assert.deepEqual(metrics, classificationMetrics(net.predict(data.x), data.y, 4, data.labels));
    assert.equal(metrics.samples, ROWS);
    const trace = metrics.confusion.reduce((sum, row, c) => sum + row[c]!, 0);
    assert.equal(evaluation.accuracy, trace / ROWS, "accuracy is the confusion matrix's trace / samples");
    assert.equal(metrics.rocAuc, undefined);
    net.dispose();
  });

  test("one sigmoid output: a binary task with the ROC AUC of its scores", () => {
    const blobs = syntheticClassification({ size: ROWS, features: 5, classes: 2, seed: 4, spread: 0.8 });
    const data = createDataset({ features: 5, outputs: 1, x: blobs.x, y: Float32Array.from(blobs.labels!), name: "binary" });
    const net = network({ inputs: 5, layers: [{ units: 1, activation: "sigmoid" }], seed: 5 });
    const metrics = evaluate(net, data).metrics;
    assert.ok(metrics?.task === "classification");
    assert.equal(metrics.classes, 2);
    const scores = net.predict(data.x);
    const positives = scores.filter((_, i) => blobs.labels![i] === 1);
    const negatives = scores.filter((_, i) => blobs.labels![i] === 0);
    assert.equal(metrics.rocAuc, rocAuc(positives, negatives));
    assert.ok(metrics.rocAuc! > 0 && metrics.rocAuc! < 1);
    net.dispose();
  });

  test("identity outputs: regression metrics (and no accuracy) that agree with metrics of predict()", () => {
    const data = regressionData(3, 2, 6, (x, j) => x[0]! * (j + 1) - x[2]!);
    const net = network({
      inputs: 3,
      layers: [
        { units: 5, activation: "tanh" },
        { units: 2, activation: "identity" },
      ],
      seed: 7,
    });
    const evaluation = evaluate(net, data);
    assert.equal(evaluation.accuracy, undefined);
    const metrics = evaluation.metrics;
    assert.ok(metrics?.task === "regression");
    const reference = regressionMetrics(net.predict(data.x), data.y, 2);
    for (const key of ["mae", "rmse", "r2"] as const) {
      assert.ok(Math.abs(metrics[key]! - reference[key]!) < 1e-9, `${key}: ${metrics[key]} vs ${reference[key]}`);
    }
    assert.ok(Math.abs(evaluation.loss - 0.5 * reference.rmse ** 2 * 2) < 1e-5, "the loss is 0.5 (y - t)² summed over the outputs");
    net.dispose();
  });

  test("y = 2x + 1: R² of the exact line is 1, of the constant mean 0", () => {
    const data = regressionData(1, 1, 8, (x) => 2 * x[0]! + 1);
    const mean = data.y.reduce((a, b) => a + b, 0) / ROWS;
    const net = network({ inputs: 1, layers: [{ units: 1, activation: "identity" }] });
    net.setTensors([
      { name: "w0", shape: [1, 1], data: Float32Array.of(2) },
      { name: "b0", shape: [1], data: Float32Array.of(1) },
    ]);
    const exact = evaluate(net, data).metrics;
    assert.ok(exact?.task === "regression");
    assert.ok(exact.r2! > 0.999999 && exact.mae < 1e-6, `R² ${exact.r2}, MAE ${exact.mae}`);
    net.setTensors([
      { name: "w0", shape: [1, 1], data: Float32Array.of(0) },
      { name: "b0", shape: [1], data: Float32Array.of(mean) },
    ]);
    const constant = evaluate(net, data).metrics;
    assert.ok(constant?.task === "regression");
    assert.ok(Math.abs(constant.r2!) < 1e-5, `R² ${constant.r2}`);
    net.dispose();
  });

  test("an auto-encoder's reconstruction (several sigmoid outputs, no labels) gets regression metrics", () => {
    const data = regressionData(4, 4, 9, (x, j) => (x[j]! + 1) / 2);
    const net = network({
      inputs: 4,
      layers: [
        { units: 2, activation: "sigmoid" },
        { units: 4, activation: "sigmoid" },
      ],
      seed: 3,
    });
    const evaluation = evaluate(net, data);
    assert.equal(evaluation.accuracy, undefined);
    assert.equal(evaluation.metrics?.task, "regression");
    net.dispose();
  });

  test("an empty dataset is a DataError, not a loss of 0", () => {
    const net = network({ inputs: 3, layers: [{ units: 2, activation: "softmax" }] });
    const empty = createDataset({ features: 3, outputs: 2, x: new Float32Array(0), y: new Float32Array(0), name: "empty.csv" });
    assert.throws(
      () => evaluate(net, empty),
      (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.equal(e.message, "empty.csv: cannot evaluate on an empty dataset (0 rows)");
        return true;
      },
    );
    net.dispose();
  });

  test("a label that is not one of the network's classes is an error, not a wrong prediction", () => {
    const net = network({ inputs: 2, layers: [{ units: 3, activation: "softmax" }] });
    const data = createDataset({
      features: 2,
      outputs: 3,
      x: new Float32Array(4),
      y: new Float32Array(6),
      labels: Int32Array.of(0, 5),
      name: "bad",
    });
    assert.throws(() => evaluate(net, data), /bad: the label 5 of row 2 is not a class of the model \(0 to 2\)/);
    assert.throws(() => evaluate(net, data), InvalidArgumentError);
    net.dispose();
  });
});
