// `downpour train --sparse`: libsvm click logs read as sparse rows train a logistic regression (and an mlp) whose
// model file keeps spec.sparseInputs; `downpour eval` in a fresh process reads the held-out file sparse because the
// model says so and scores far below the constant predictor; the seeded holdout splits sparse rows; what --sparse
// cannot do (a CSV, a preset, an autoencoder, input scaling, predict from dense rows, the cluster commands) is
// refused by name; predict reads libsvm rows sparse and its probabilities give eval's log-loss.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { TrainResult } from "../../src/cli/commands/train.js";
import { loadTrainedModel } from "../../src/cli/model-file.js";
import { runCli } from "../../src/cli/program.js";
import { DEFAULT_SETTINGS } from "../../src/cli/settings.js";
import { loadTrainingData } from "../../src/cli/training-data.js";
import { captureIO, cliMain, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 60_000 };

/** Runs `downpour ...args` in this process, in `cwd`; the exit code and what it printed. */
async function downpour(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(cwd);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** The 0/1 labels of a libsvm file. */
function labelsOf(path: string): number[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) => (Number(line.split(/\s+/)[0]) > 0 ? 1 : 0));
}

/** The mean log-loss of always predicting the labels' own click rate: the best constant predictor's. */
function constantLogLoss(labels: readonly number[]): number {
  const p = labels.reduce((a, b) => a + b, 0) / labels.length;
  return -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
}

describe("downpour train --sparse", () => {
  const dir = tempDir("cli-sparse");
  const common = ["--sparse", "--epochs", "3", "--quiet", "--no-curves", "--json", "--seed", "3"];

  before(async () => {
    const made = await downpour(dir, "data", "synth-ctr", "--rows", "3000", "--features", "2^10", "--test-rows", "1000", "--out", "train.svm", "--test-out", "held.svm", "--seed", "5",
      // a strong teacher without label noise, so that 3000 rows can show it: the best log-loss is far below the constant's
      "--teacher-scale", "3", "--teacher-density", "0.3", "--noise", "0");
    assert.equal(made.code, 0, made.err);
  });

  test("a sparse logistic regression trains on a seeded holdout, saves spec.sparseInputs, and eval in a new process beats the constant", TIMEOUT, async () => {
    const run = await downpour(dir, "train", "--data", "train.svm", "--model", "logistic", ...common, "--optimizer", "adagrad", "--learning-rate", "0.1", "--save", "ctr.dpnn");
    assert.equal(run.code, 0, run.err);
    assert.match(run.err, /training LogisticRegression 1024 sparse-1 .* on train\.svm: 2700 rows, 300 test rows/);
    const result = JSON.parse(run.out) as TrainResult;
    assert.equal(result.reports.length, 3);
    assert.equal(result.reports.at(-1)!.validation!.samples, 300);

    const { model } = await loadTrainedModel(join(dir, "ctr.dpnn"));
    try {
      assert.equal(model.network.spec.sparseInputs, true);
      assert.equal(model.network.inputs, 1024);
    } finally {
      model.dispose();
    }

    const evaluated = spawnSync(process.execPath, [cliMain(), "eval", "--model", "ctr.dpnn", "--data", "held.svm", "--json"], { cwd: dir, encoding: "utf8", timeout: 60_000 });
    assert.equal(evaluated.status, 0, evaluated.stderr);
    const scored = JSON.parse(evaluated.stdout) as { samples: number; loss: number };
    const constant = constantLogLoss(labelsOf(join(dir, "held.svm")));
    assert.equal(scored.samples, 1000);
    assert.ok(scored.loss < 0.85 * constant, `held-out log-loss ${scored.loss} vs the constant predictor's ${constant}`);

    // predict reads the libsvm rows sparse too: its probabilities give eval's log-loss
    const predicted = spawnSync(process.execPath, [cliMain(), "predict", "--model", "ctr.dpnn", "--input", "held.svm", "--output", "-"], { cwd: dir, encoding: "utf8", timeout: 60_000 });
    assert.equal(predicted.status, 0, predicted.stderr);
    const lines = predicted.stdout.trim().split("\n");
    assert.equal(lines[0], "output0");
    const labels = labelsOf(join(dir, "held.svm"));
    assert.equal(lines.length - 1, labels.length);
    const loss = lines.slice(1).reduce((sum, line, i) => {
      const p = Math.min(Math.max(Number(line), 1e-7), 1 - 1e-7);
      return sum - (labels[i] === 1 ? Math.log(p) : Math.log(1 - p));
    }, 0) / labels.length;
    assert.ok(Math.abs(loss - scored.loss) < 1e-3, `predict's probabilities give log-loss ${loss}, eval said ${scored.loss}`);

    // --resume reads the data sparse because the model's spec says so (no --sparse given)
    const resumed = await downpour(dir, "train", "--resume", "ctr.dpnn", "--epochs", "4", "--quiet", "--no-curves", "--json", "--save", "ctr4.dpnn");
    assert.equal(resumed.code, 0, resumed.err);
    assert.deepEqual((JSON.parse(resumed.out) as TrainResult).reports.map((r) => r.epoch), [4]);
  });

  test("the config file's \"sparse\": true acts as --sparse; --sparse on resuming a dense model is refused", TIMEOUT, async () => {
    writeTemp(dir, "run.json", JSON.stringify({ data: "train.svm", sparse: true, model: "logistic", epochs: 1, save: "config.dpnn", curves: false }));
    const run = await downpour(dir, "train", "--config", "run.json", "--quiet");
    assert.equal(run.code, 0, run.err);
    assert.match(run.err, /training LogisticRegression 1024 sparse-1 /);
    writeTemp(dir, "bad.json", JSON.stringify({ data: "train.svm", sparse: "yes" }));
    const bad = await downpour(dir, "train", "--config", "bad.json");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /"sparse" must be true or false/);

    writeTemp(dir, "dense.svm", "1 1:0.5 2:1\n0 1:1\n1 2:0.25\n0 1:0.75 2:0.5\n");
    const dense = await downpour(dir, "train", "--data", "dense.svm", "--model", "logistic", "--epochs", "1", "--holdout", "0", "--quiet", "--no-curves", "--save", "dense.dpnn");
    assert.equal(dense.code, 0, dense.err);
    const refused = await downpour(dir, "train", "--resume", "dense.dpnn", "--sparse", "--epochs", "2", "--quiet", "--no-curves", "--no-save");
    assert.equal(refused.code, 1);
    assert.match(refused.err, /--sparse: the model of .*dense\.dpnn takes dense inputs/);
  });

  test("the holdout pick is seeded: the same seed trains to the same test loss; an mlp with --test-data trains too", TIMEOUT, async () => {
    const again = async (seed: string) => {
      const run = await downpour(dir, "train", "--data", "train.svm", "--model", "logistic", ...common, "--seed", seed, "--holdout", "500", "--no-save", "--threads", "0");
      assert.equal(run.code, 0, run.err);
      return (JSON.parse(run.out) as TrainResult).reports.at(-1)!.validation!.loss;
    };
    assert.equal(await again("7"), await again("7"));
    assert.notEqual(await again("7"), await again("8"));

    const mlp = await downpour(dir, "train", "--data", "train.svm", "--test-data", "held.svm", "--hidden", "8", ...common, "--save", "mlp.dpnn");
    assert.equal(mlp.code, 0, mlp.err);
    assert.equal((JSON.parse(mlp.out) as TrainResult).reports.at(-1)!.validation!.samples, 1000);
    const evaluated = await downpour(dir, "eval", "--model", "mlp.dpnn", "--data", "held.svm", "--json");
    assert.equal(evaluated.code, 0, evaluated.err);
    assert.equal((JSON.parse(evaluated.out) as { samples: number }).samples, 1000);
  });

  test("refused by name: a CSV, a preset, an autoencoder, --normalize, predict on dense rows, the cluster commands' data", TIMEOUT, async () => {
    writeTemp(dir, "rows.csv", "1,2,0\n3,4,1\n5,6,0\n");
    const csv = await downpour(dir, "train", "--data", "rows.csv", ...common, "--no-save");
    assert.equal(csv.code, 1);
    assert.match(csv.err, /rows\.csv: --sparse reads libsvm files .* read as csv/);
    const preset = await downpour(dir, "train", "--data", "digits", ...common, "--no-save");
    assert.equal(preset.code, 1);
    assert.match(preset.err, /--sparse: --data digits is a preset/);
    const autoencoder = await downpour(dir, "train", "--data", "train.svm", "--model", "autoencoder", ...common, "--no-save");
    assert.equal(autoencoder.code, 1);
    assert.match(autoencoder.err, /--sparse builds a sparse first layer for mlp or logistic models, but --model asks for autoencoder/);
    const scaled = await downpour(dir, "train", "--data", "train.svm", "--normalize", "zscore", ...common, "--no-save");
    assert.equal(scaled.code, 1);
    assert.match(scaled.err, /--normalize zscore: --sparse rows are not scaled/);

    const saved = await downpour(dir, "train", "--data", "train.svm", "--model", "logistic", ...common, "--epochs", "1", "--save", "one.dpnn");
    assert.equal(saved.code, 0, saved.err);
    const predicted = await downpour(dir, "predict", "--model", "one.dpnn", "--input", "rows.csv");
    assert.equal(predicted.code, 1);
    assert.match(predicted.err, /--input rows\.csv: the model one\.dpnn takes sparse inputs .* read as csv/);

    const cluster = await downpour(dir, "cluster", "--data", "train.svm", "--peers", "2", ...common, "--no-save");
    assert.equal(cluster.code, 1);
    assert.match(cluster.err, /--sparse: sparse inputs train in one process .* peer, ps and cluster take dense rows only/);
    const io = captureIO(dir);
    await assert.rejects(loadTrainingData({ ...DEFAULT_SETTINGS, data: "train.svm", sparse: true }, { sparse: "--sparse" }, io), /--sparse: sparse inputs train in one process .* peer, ps and cluster/);
  });
});
