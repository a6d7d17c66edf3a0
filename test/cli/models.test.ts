// The other model kinds and data options on the Pima CSV: auto-encoder and linear regression (no accuracy),
// --test-data, libsvm, and the errors for a model that does not fit the data or conflicting test-set flags.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { runPredict } from "../../src/cli/commands/predict.js";
import { runTrain } from "../../src/cli/commands/train.js";
import { CliError } from "../../src/cli/errors.js";
import { captureIO, csvRows, pimaCsv, tempDir, writeTemp } from "./helpers.js";

const dir = tempDir("cli-models");
const quick = { epochs: 2, threads: 2, quiet: true, curves: false } as const;
const TIMEOUT = { timeout: 60_000 };

describe("model kinds and data options", () => {
  let rows: string[][] = [];
  // The shared Pima CSV: absent, every test here fails with sharedData()'s message.
  before(() => {
    const pima = pimaCsv();
    rows = csvRows(pima);
    writeTemp(dir, "pima.csv", pima);
  });

  test("autoencoder: every column is an input (no label); reconstruction loss without accuracy; predict gives one column per input", TIMEOUT, async () => {
    const io = captureIO(dir);
    const result = await runTrain({ ...quick, data: "pima.csv", model: "autoencoder", hidden: [4], save: "ae.dpnn" }, io);
    assert.match(io.err(), /training AutoEncoder 9-4-9 /);
    assert.ok(result.reports.every((r) => r.validation && r.validation.accuracy === undefined));
    const evaluation = await runEval({ model: "ae.dpnn", data: "pima.csv" }, captureIO(dir));
    assert.equal(evaluation.accuracy, undefined);
    assert.equal(evaluation.samples, 768);
    writeTemp(dir, "x.csv", rows.slice(0, 5).map((f) => f.join(",")).join("\n"));
    const out = captureIO(dir);
    await runPredict({ model: "ae.dpnn", input: "x.csv" }, out);
    const [header, ...lines] = csvRows(out.out());
    assert.deepEqual(header, Array.from({ length: 9 }, (_, j) => `output${j}`));
    assert.equal(lines.length, 5);
    const picked = await runTrain({ ...quick, data: "pima.csv", model: "autoencoder", hidden: [3], features: [0, 1, 2, 3, 4, 5, 6, 7], save: false }, captureIO(dir));
    assert.equal(picked.reports.length, 2, "--features chooses the autoencoder's inputs");
  });

  test("linear regression reports losses only", TIMEOUT, async () => {
    const result = await runTrain({ ...quick, data: "pima.csv", model: "linear", save: false }, captureIO(dir));
    assert.equal(result.kind, "LinearRegression");
    assert.ok(result.reports.every((r) => Number.isFinite(r.validation!.loss) && r.validation!.accuracy === undefined));
  });

  test("--test-data evaluates on another file; with --holdout too it is an error", TIMEOUT, async () => {
    writeTemp(dir, "train.csv", rows.slice(0, 600).map((f) => f.join(",")).join("\n"));
    writeTemp(dir, "test.csv", rows.slice(600).map((f) => f.join(",")).join("\n"));
    const result = await runTrain({ ...quick, data: "train.csv", testData: "test.csv", save: false }, captureIO(dir));
    assert.equal(result.reports[0]!.samples, 600);
    assert.equal(result.reports[0]!.validation!.samples, 168);
    await assert.rejects(runTrain({ ...quick, data: "train.csv", testData: "test.csv", holdout: 10 }, captureIO(dir)), /--test-data and --holdout both choose the test set/);
  });

  test("libsvm with --classes 2: a softmax mlp; eval infers the classes from the model", TIMEOUT, async () => {
    const libsvm = rows.map((f) => `${f[8]} ${f.slice(0, 8).map((v, j) => `${j + 1}:${v}`).join(" ")}`).join("\n");
    writeTemp(dir, "pima.svm", libsvm);
    const result = await runTrain({ ...quick, data: "pima.svm", classes: 2, save: "svm.dpnn" }, captureIO(dir));
    assert.equal(result.reports[0]!.samples, 691);
    const evaluation = await runEval({ model: "svm.dpnn", data: "pima.svm" }, captureIO(dir));
    assert.equal(evaluation.samples, 768);
    assert.ok(evaluation.accuracy !== undefined);
  });

  test("a one-output model on one-hot classes, or an unknown data format, is a CliError saying what to do", TIMEOUT, async () => {
    await assert.rejects(runTrain({ ...quick, data: "pima.csv", model: "logistic", classes: 2 }, captureIO(dir)), (error: Error) => {
      assert.ok(error instanceof CliError);
      assert.match(error.message, /model logistic gives one output, but .* has 2 outputs per row .*use --model mlp/);
      return true;
    });
    await assert.rejects(runTrain({ ...quick, data: "pima.json" }, captureIO(dir)), /--data pima\.json: expected mnist, digits, synthetic, or a data file ending in \.csv.*give --format csv\|libsvm\|idx/);
    await assert.rejects(runTrain({ ...quick, data: "pima.csv", holdout: 768 }, captureIO(dir)), /--holdout 768 keeps 768 of the 768 rows for testing, leaving none to train on/);
  });
});
