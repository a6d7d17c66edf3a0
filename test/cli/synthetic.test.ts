// The synthetic preset and the MNIST fallback: training on them, --json output, and eval of the saved model.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { runTrain } from "../../src/cli/commands/train.js";
import { SYNTHETIC } from "../../src/cli/datasets.js";
import { captureIO, tempDir } from "./helpers.js";

const dir = tempDir("cli-synthetic");
const emptyCache = { DOWNPOUR_CACHE: join(dir, "empty-cache") };

describe("synthetic data", () => {
  test("--data synthetic --epochs 2 trains, holds out a tenth, and saves a model eval can score", async () => {
    const io = captureIO(dir, emptyCache);
    const result = await runTrain({ data: "synthetic", epochs: 2, threads: 2, quiet: true, save: "synthetic.dpnn", curves: false }, io);
    assert.equal(result.data, "synthetic");
    assert.equal(result.reports.length, 2);
    assert.equal(result.reports[0]!.samples, SYNTHETIC.size * 0.9);
    assert.equal(result.reports[1]!.validation!.samples, SYNTHETIC.size / 10);
    assert.ok(result.reports[1]!.validation!.accuracy! >= 0.9);
    assert.ok(!existsSync(join(dir, "downpour-curves.svg")), "--no-curves writes none");
    assert.doesNotMatch(io.err(), /MNIST/);
    const evaluation = await runEval({ model: "synthetic.dpnn" }, captureIO(dir, emptyCache));
    assert.equal(evaluation.data, "synthetic (held-out rows)", "eval defaults to the preset the model was trained on");
    assert.ok(evaluation.accuracy! >= 0.9);
  });

  test("--data mnist without MNIST says so in one line and falls back to synthetic data; --json reports", async () => {
    const io = captureIO(dir, emptyCache);
    const result = await runTrain({ data: "mnist", epochs: 1, threads: 2, quiet: true, save: false, curves: false, json: true }, io);
    const notes = io.err().split("\n").filter((l) => l.includes("MNIST"));
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /^downpour: MNIST is not in .*empty-cache\/mnist .*; training on synthetic data instead \(get MNIST with: downpour data mnist\)$/);
    assert.equal(result.data, "synthetic");
    const json = JSON.parse(io.out());
    assert.equal(json.kind, "MultiLayerPerceptron");
    assert.equal(json.reports.length, 1);
    assert.equal(json.modelFile, undefined);
  });

  test("eval of a synthetic-trained model on absent MNIST is an error saying how to get it", async () => {
    await assert.rejects(runEval({ model: "synthetic.dpnn", data: "mnist" }, captureIO(dir, emptyCache)), /MNIST is not in .*; get it with: downpour data mnist/);
  });
});
