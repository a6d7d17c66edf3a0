// Metrics in `downpour eval` and in the training summary, on small seeded runs: a logistic model on the Pima CSV
// (binary: ROC AUC), an MLP on the bundled digits (10 classes) and a linear model on y = 2x + 1 (MAE, RMSE, R²);
// the figures must agree with each other (confusion matrix, accuracy, ranges), in the table and in the JSON.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { runTrain, type TrainResult } from "../../src/cli/commands/train.js";
import { mulberry32 } from "../../src/data/random.js";
import type { ClassificationMetrics, RegressionMetrics } from "../../src/train/metrics.js";
import { captureIO, pimaCsv, tempDir, writeTemp } from "./helpers.js";

const dir = tempDir("cli-eval-metrics");
const TIMEOUT = { timeout: 90_000 };
const quick = { threads: 2, quiet: true, curves: false, seed: 3, summary: "all" } as const;

/** The header cells of every table in `text` (cli-table3 draws the header as the first │ row after ┌). */
function headers(text: string): string[][] {
  const lines = text.split("\n");
  return lines.flatMap((l, i) =>
    lines[i - 1]?.startsWith("┌") && l.startsWith("│")
      ? [
          l
            .split("│")
            .slice(1, -1)
            .map((c) => c.trim()),
        ]
      : [],
  );
}

/** "x,y" rows with y = 2x + 1 (x uniform in [-1, 1], seeded), or with y constant. */
function lineCsv(rows: number, seed: number, y: (x: number) => number): string {
  const random = mulberry32(seed);
  const lines = Array.from({ length: rows }, () => {
    const x = 2 * random() - 1;
    return `${x},${y(x)}`;
  });
  return `x,y\n${lines.join("\n")}\n`;
}

function inUnit(value: number, what: string): void {
  assert.ok(value >= 0 && value <= 1, `${what} ${value} is not within [0, 1]`);
}

/** The checks every classification result passes, whatever the model learnt. */
function consistent(m: ClassificationMetrics, samples: number, accuracy: number | undefined): void {
  assert.equal(m.samples, samples);
  assert.equal(m.confusion.length, m.classes);
  for (const row of m.confusion) assert.equal(row.length, m.classes);
  const total = m.confusion.flat().reduce((a, b) => a + b, 0);
  assert.equal(total, samples, "the confusion matrix counts every sample once");
  const trace = m.confusion.reduce((sum, row, c) => sum + row[c]!, 0);
  assert.equal(accuracy, trace / samples, "the reported accuracy is the confusion matrix's trace / samples");
  assert.deepEqual(
    m.perClass.map((c) => c.support),
    m.confusion.map((row) => row.reduce((a, b) => a + b, 0)),
    "support = row sums",
  );
  for (const key of ["precision", "recall", "f1"] as const) {
    inUnit(m[key], key);
    for (const c of m.perClass) inUnit(c[key], `per-class ${key}`);
  }
}

describe("metrics in eval and in the training summary", () => {
  let pimaRun: TrainResult;
  let pimaTrainOut = "";
  let digitsTrainOut = "";
  let lineRun: TrainResult;
  let lineTrainOut = "";

  before(async () => {
    writeTemp(dir, "pima.csv", pimaCsv());
    writeTemp(
      dir,
      "line.csv",
      lineCsv(400, 11, (x) => 2 * x + 1),
    );
    writeTemp(
      dir,
      "flat.csv",
      lineCsv(50, 12, () => 3),
    );
    let io = captureIO(dir);
    pimaRun = await runTrain(
      { ...quick, data: "pima.csv", model: "logistic", normalize: "zscore", batchSize: 16, epochs: 4, save: "pima.dpnn" },
      io,
    );
    pimaTrainOut = io.out();
    io = captureIO(dir);
    await runTrain({ ...quick, data: "digits", hidden: [16], epochs: 2, save: "digits.dpnn" }, io);
    digitsTrainOut = io.out();
    io = captureIO(dir);
    lineRun = await runTrain({ ...quick, data: "line.csv", model: "linear", epochs: 20, batchSize: 8, save: "line.dpnn", json: true }, io);
    lineTrainOut = io.out();
  }, TIMEOUT);

  test("eval of a binary classifier: consistent metrics, a ROC AUC better than chance, the same in the JSON", TIMEOUT, async () => {
    const io = captureIO(dir);
    const result = await runEval({ model: "pima.dpnn", data: "pima.csv", json: true }, io);
    const m = result.metrics;
    assert.ok(m?.task === "classification", `metrics ${JSON.stringify(m)}`);
    assert.equal(m.classes, 2);
    consistent(m, 768, result.accuracy);
    assert.ok(m.rocAuc !== undefined && m.rocAuc > 0.5 && m.rocAuc <= 1, `ROC AUC ${m.rocAuc}`);
    assert.deepEqual(JSON.parse(io.out()), result, "the JSON carries the metrics");
  });

  test("the eval table of a binary classifier: metrics, ROC AUC and a 2 x 2 confusion matrix matching the JSON", TIMEOUT, async () => {
    const { metrics } = await runEval({ model: "pima.dpnn", data: "pima.csv", json: true }, captureIO(dir));
    const io = captureIO(dir);
    await runEval({ model: "pima.dpnn", data: "pima.csv" }, io);
    const [main, confusion, perClass] = headers(io.out());
    assert.deepEqual(main, ["model", "data", "samples", "loss", "accuracy", "precision", "recall", "F1", "ROC AUC"]);
    assert.deepEqual(confusion, ["true\\pred", "0", "1"]);
    assert.deepEqual(perClass, ["class", "support", "precision", "recall", "F1"]);
    const counts = (metrics as ClassificationMetrics).confusion;
    for (const [c, row] of counts.entries()) assert.match(io.out(), new RegExp(`│\\s+${c} │\\s+${row[0]} │\\s+${row[1]} │`));
  });

  test("eval of a 10-class MLP: a 10 x 10 confusion matrix, macro figures, no ROC AUC", TIMEOUT, async () => {
    const io = captureIO(dir);
    const result = await runEval({ model: "digits.dpnn" }, io);
    const m = result.metrics;
    assert.ok(m?.task === "classification");
    assert.equal(m.classes, 10);
    consistent(m, result.samples, result.accuracy);
    assert.equal(m.rocAuc, undefined);
    const [main, confusion] = headers(io.out());
    assert.ok(!main!.includes("ROC AUC"));
    assert.deepEqual(confusion, ["true\\pred", ...Array.from({ length: 10 }, (_, c) => String(c))]);
  });

  test("eval of a linear model on y = 2x + 1: R² > 0.99, RMSE >= MAE, and no accuracy", TIMEOUT, async () => {
    const io = captureIO(dir);
    const result = await runEval({ model: "line.dpnn", data: "line.csv", json: true }, io);
    assert.equal(result.accuracy, undefined);
    const m = result.metrics as RegressionMetrics;
    assert.equal(m.task, "regression");
    assert.ok(m.r2! > 0.99, `R² ${m.r2}`);
    assert.ok(m.rmse >= m.mae && m.mae >= 0, `MAE ${m.mae}, RMSE ${m.rmse}`);
    const table = captureIO(dir);
    await runEval({ model: "line.dpnn", data: "line.csv" }, table);
    assert.deepEqual(headers(table.out()), [["model", "data", "samples", "loss", "MAE", "RMSE", "R²"]]);
  });

  test("eval on constant targets: R² is undefined, shown as - and absent from the JSON", TIMEOUT, async () => {
    const json = captureIO(dir);
    const result = await runEval({ model: "line.dpnn", data: "flat.csv", json: true }, json);
    assert.equal(result.metrics?.task, "regression");
    assert.ok(!("r2" in result.metrics!));
    const io = captureIO(dir);
    await runEval({ model: "line.dpnn", data: "flat.csv" }, io);
    assert.match(io.out(), /│ flat\.csv │ 50\s+│ \S+\s+│ \S+\s+│ \S+\s+│ -\s+│/);
  });

  test("the training summary shows the test metric that matters and the validation time", TIMEOUT, () => {
    const [pima] = headers(pimaTrainOut);
    assert.deepEqual(pima, ["epoch", "loss", "test loss", "test accuracy", "test AUC", "samples/s", "seconds", "test s"]);
    const last = pimaRun.reports.at(-1)!;
    assert.ok(last.validationSeconds !== undefined && last.validationSeconds >= 0);
    const [digits] = headers(digitsTrainOut);
    assert.deepEqual(digits, ["epoch", "loss", "test loss", "test accuracy", "test F1", "samples/s", "seconds", "test s"]);
  });

  test("train --json: every report's validation carries its metrics", TIMEOUT, () => {
    const parsed = JSON.parse(lineTrainOut) as TrainResult;
    assert.equal(parsed.reports.length, lineRun.reports.length);
    for (const r of parsed.reports) {
      assert.equal(r.validation?.metrics?.task, "regression");
      assert.ok(Number.isFinite((r.validation.metrics as RegressionMetrics).rmse));
    }
    assert.deepEqual(parsed.reports.at(-1)!.validation, JSON.parse(JSON.stringify(lineRun.reports.at(-1)!.validation)));
  });
});
