// The synthetic preset: training on it (its model made in before(), so every test stands alone), --json output,
// and eval of the saved model, including on absent MNIST.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { runTrain, type TrainResult } from "../../src/cli/commands/train.js";
import { SYNTHETIC } from "../../src/cli/datasets.js";
import { captureIO, tempDir } from "./helpers.js";

const dir = tempDir("cli-synthetic");
const emptyCache = { DOWNPOUR_CACHE: join(dir, "empty-cache") };
const TIMEOUT = { timeout: 60_000 };

describe("synthetic data", () => {
  let trained: TrainResult;
  let trainErr = "";

  before(async () => {
    const io = captureIO(dir, emptyCache);
    trained = await runTrain({ data: "synthetic", epochs: 2, threads: 2, quiet: true, save: "synthetic.dpnn", curves: false }, io);
    trainErr = io.err();
  }, TIMEOUT);

  test("--data synthetic --epochs 2 trains, holds out a tenth, and saves a model eval can score", TIMEOUT, async () => {
    assert.equal(trained.data, "synthetic");
    assert.equal(trained.reports.length, 2);
    assert.equal(trained.reports[0]!.samples, SYNTHETIC.size * 0.9);
    assert.equal(trained.reports[1]!.validation!.samples, SYNTHETIC.size / 10);
    assert.ok(trained.reports[1]!.validation!.accuracy! >= 0.9);
    assert.ok(!existsSync(join(dir, "downpour-curves.svg")), "--no-curves writes none");
    assert.doesNotMatch(trainErr, /MNIST/);
    const evaluation = await runEval({ model: "synthetic.dpnn" }, captureIO(dir, emptyCache));
    assert.equal(evaluation.data, "synthetic (held-out rows)", "eval defaults to the preset the model was trained on");
    assert.ok(evaluation.accuracy! >= 0.9);
  });

  test("--json prints the result", TIMEOUT, async () => {
    const io = captureIO(dir, emptyCache);
    const result = await runTrain({ data: "synthetic", epochs: 1, threads: 2, quiet: true, save: false, curves: false, json: true }, io);
    const json = JSON.parse(io.out());
    assert.equal(json.kind, "MultiLayerPerceptron");
    assert.equal(json.data, "synthetic");
    assert.equal(json.reports.length, 1);
    assert.equal(json.modelFile, undefined);
    assert.equal(result.reports.length, 1);
  });

  test("eval of a synthetic-trained model on absent MNIST is an error saying how to get it", TIMEOUT, async () => {
    await assert.rejects(runEval({ model: "synthetic.dpnn", data: "mnist" }, captureIO(dir, emptyCache)), /MNIST is not in .*; get it with: downpour data mnist/);
  });
});
