// Seeded learning tests with real thresholds: XOR, a 4-2-4 auto-encoder, logistic regression on Pima,
// and a 784-128-10 MLP on MNIST; trained on worker threads as a user would.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createDataset, holdOut } from "../../src/data/dataset.js";
import { readCsv } from "../../src/data/csv.js";
import { loadMnist } from "../../src/data/mnist.js";
import { minMaxNormalize } from "../../src/data/normalize.js";
import { AutoEncoder, LogisticRegression, MultiLayerPerceptron } from "../../src/api/models.js";
import { sharedData } from "../support/paths.js";

const TIMEOUT = { timeout: 120_000 };

const XOR = createDataset({ features: 2, outputs: 1, x: new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]), y: new Float32Array([0, 1, 1, 0]) });

describe("learning", () => {
  test("XOR: a 2-3-1 sigmoid net gets every output within 0.1 of its target", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create({ inputs: 2, hidden: [3], outputs: 1, hiddenActivation: "sigmoid", cost: "squared-error", seed: 3 });
    try {
      await model.fit(XOR, { epochs: 2000, batchSize: 4, portion: 1, learningRate: 2, momentum: 0.9, threads: 2 });
      const out = model.predict(XOR.x);
      out.forEach((v, i) => {
        assert.ok(Math.abs(v - XOR.y[i]!) < 0.1, `XOR output ${i} is ${v}, target ${XOR.y[i]}`);
      });
    } finally {
      model.dispose();
    }
  });

  test("a 4-2-4 auto-encoder reconstructs one-hot codes within 0.1", TIMEOUT, async () => {
    const codes = new Float32Array(16);
    for (let i = 0; i < 4; i++) codes[i * 5] = 1;
    const data = createDataset({ features: 4, outputs: 4, x: codes, y: codes });
    const model = await AutoEncoder.create({ inputs: 4, hidden: 2, seed: 5 });
    try {
      await model.fit(data, { epochs: 4000, batchSize: 4, portion: 2, optimizer: "adam", learningRate: 0.05, threads: 1 });
      const rebuilt = model.decode(model.encode(codes));
      rebuilt.forEach((v, i) => {
        assert.ok(Math.abs(v - codes[i]!) < 0.1, `reconstruction ${i} is ${v}, expected ${codes[i]}`);
      });
    } finally {
      model.dispose();
    }
  });

  test("logistic regression on Pima (min-max, last 100 held out) reaches >= 0.74 accuracy", TIMEOUT, async () => {
    const pima = await readCsv(sharedData("pima-diabetes.csv"), { header: false });
    const { train, test: held } = holdOut(pima, 100);
    const { dataset: trainN, stats } = minMaxNormalize(train);
    const { dataset: testN } = minMaxNormalize(held, stats);
    const model = await LogisticRegression.create({ inputs: 8, seed: 1 });
    try {
      await model.fit(trainN, { epochs: 300, batchSize: 32, portion: 8, learningRate: 0.5, momentum: 0.9, threads: 2 });
      const accuracy = model.evaluate(testN).accuracy!;
      assert.ok(accuracy >= 0.74, `held-out accuracy ${accuracy}`);
    } finally {
      model.dispose();
    }
  });

  test("a 784-128-10 MLP on MNIST reaches >= 0.97 test accuracy", TIMEOUT, async () => {
    const { train, test: testSet } = await loadMnist(sharedData("mnist"));
    const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: [128], outputs: 10, seed: 1 });
    try {
      const reports = await model.fit(train, { epochs: 8, batchSize: 64, learningRate: 0.05, momentum: 0.9, threads: 2 });
      assert.equal(reports.length, 8);
      assert.ok(reports[7]!.loss < reports[0]!.loss / 4, "training loss fell");
      const accuracy = model.evaluate(testSet).accuracy!;
      assert.ok(accuracy >= 0.97, `MNIST test accuracy ${accuracy}`);
    } finally {
      model.dispose();
    }
  });
});
