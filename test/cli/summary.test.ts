// The CLI's summary and eval tables and epoch lines: non-finite figures read "NaN"/"inf" (never the "-" of a
// missing test set), the test metric that matters per kind of model, validation time beside training time, and
// the eval table's metrics and confusion matrix.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { epochLine, error, loss, MISSING, metric, percent, rate, seconds } from "../../src/cli/format.js";
import { epochTable, evaluationTable } from "../../src/cli/summary.js";
import type { Evaluation } from "../../src/train/evaluate.js";
import { classificationMetrics, regressionMetrics } from "../../src/train/metrics.js";
import type { EpochReport } from "../../src/train/trainer.js";

function report(epoch: number, extra: Partial<EpochReport> = {}): EpochReport {
  return { epoch, iterations: epoch * 10, samples: 640, loss: 1 / epoch, seconds: 0.5, samplesPerSecond: 1280, backups: 0, ...extra };
}

/** The table's header cells and its body rows (cells trimmed), ignoring the borders. */
function cells(table: string): { head: string[]; rows: string[][] } {
  const lines = table.split("\n").filter((l) => l.startsWith("│"));
  const split = (l: string) =>
    l
      .split("│")
      .slice(1, -1)
      .map((c) => c.trim());
  return { head: split(lines[0]!), rows: lines.slice(1).map(split) };
}

/** A binary classifier's evaluation: scores and 0/1 truths. */
function binaryEvaluation(scores: number[], truth: number[], lossValue = 0.4): Evaluation {
  const metrics = classificationMetrics(Float32Array.from(scores), Float32Array.from(truth), 1);
  return { loss: lossValue, accuracy: metrics.accuracy, samples: scores.length, metrics };
}

const threeClasses = classificationMetrics(
  Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0),
  Float32Array.of(1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1),
  3,
);

describe("summary tables", () => {
  test("a NaN or infinite figure reads NaN / inf / -inf; only a missing one reads -", () => {
    for (const format of [loss, metric, error, percent, seconds]) {
      assert.equal(format(Number.NaN), "NaN");
      assert.equal(format(Number.POSITIVE_INFINITY), "inf");
      assert.equal(format(Number.NEGATIVE_INFINITY), "-inf");
      assert.equal(format(undefined), MISSING);
    }
    assert.equal(rate(Number.NaN), "NaN");
    const diverged = report(1, { loss: Number.NaN, validation: { loss: Number.POSITIVE_INFINITY, accuracy: 0.5, samples: 10 } });
    const { rows } = cells(epochTable([diverged, report(2)]));
    assert.deepEqual(rows[0]!.slice(0, 3), ["1", "NaN", "inf"]);
    assert.deepEqual(rows[1]!.slice(0, 4), ["2", "0.5000", MISSING, MISSING], "no test set: -");
    assert.match(epochLine(diverged, 3), /^epoch 1\/3 {2}loss NaN {2}test loss inf {2}/);
  });

  test("classification: test AUC for two classes, test F1 for more, beside the test accuracy", () => {
    const binary = binaryEvaluation([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1]);
    const table = cells(epochTable([report(1, { validation: binary })]));
    assert.deepEqual(table.head, ["epoch", "loss", "test loss", "test accuracy", "test AUC", "samples/s", "seconds"]);
    const auc = binary.metrics?.task === "classification" ? binary.metrics.rocAuc : undefined;
    assert.equal(table.rows[0]![4], metric(auc));
    const multi: Evaluation = { loss: 0.3, accuracy: threeClasses.accuracy, samples: 4, metrics: threeClasses };
    const multiTable = cells(epochTable([report(1), report(2, { validation: multi })]));
    assert.deepEqual(multiTable.head, ["epoch", "loss", "test loss", "test accuracy", "test F1", "samples/s", "seconds"]);
    assert.equal(multiTable.rows[0]![4], MISSING, "epoch 1 had no test figures");
    assert.equal(multiTable.rows[1]![4], metric(threeClasses.f1));
  });

  test("regression: test RMSE and test R² instead of a test accuracy that is always -", () => {
    const metrics = regressionMetrics(Float32Array.of(1, 2.5, 2.5), Float32Array.of(1, 2, 3), 1);
    const table = cells(epochTable([report(1, { validation: { loss: 0.1, accuracy: undefined, samples: 3, metrics } })]));
    assert.deepEqual(table.head, ["epoch", "loss", "test loss", "test RMSE", "test R²", "samples/s", "seconds"]);
    assert.deepEqual(table.rows[0]!.slice(3, 5), [error(metrics.rmse), metric(metrics.r2)]);
  });

  test("validation time: a test s column beside seconds, and in the epoch line; samples/s stays the training rate", () => {
    const validation = binaryEvaluation([0.9, 0.2], [1, 0]);
    const reports = [report(1, { validation, validationSeconds: 2.25 }), report(2, { validation, validationSeconds: 1.5 })];
    const table = cells(epochTable(reports));
    assert.deepEqual(table.head.slice(-3), ["samples/s", "seconds", "test s"]);
    assert.deepEqual(
      table.rows.map((r) => r.slice(-3)),
      [
        ["1,280", "0.50", "2.25"],
        ["1,280", "0.50", "1.50"],
      ],
    );
    assert.match(epochLine(reports[0]!, 2), / {2}1,280 samples\/s {2}0\.50 s {2}test 2\.25 s$/);
    assert.ok(!cells(epochTable([report(1)])).head.includes("test s"), "no column when the reports have no validation time");
  });

  test("the short summary's ellipsis rows are as wide as the table", () => {
    const validation = binaryEvaluation([0.9, 0.2], [1, 0]);
    const reports = [1, 2, 3, 4, 5].map((e) =>
      report(e, { validation: { ...validation, accuracy: e === 3 ? 0.9 : 0.5 }, validationSeconds: 1 }),
    );
    const { head, rows } = cells(epochTable(reports, true));
    assert.equal(head.length, 8);
    assert.deepEqual(
      rows.map((r) => r[0]),
      ["1", "…", "3", "…", "5"],
    );
    for (const row of rows) assert.equal(row.length, head.length);
  });
});

describe("eval table", () => {
  test("a classifier: accuracy, macro precision/recall/F1, ROC AUC for two classes, then the confusion matrix", () => {
    const evaluation = binaryEvaluation([0.9, 0.2, 0.6, 0.4, 0.7], [1, 0, 0, 1, 1]);
    const m = evaluation.metrics!;
    assert.ok(m.task === "classification");
    const text = evaluationTable("m.dpnn", "d.csv", evaluation);
    const [main, ...rest] = text.split(/\n(?=┌)/);
    const summary = cells(main!);
    assert.deepEqual(summary.head, ["model", "data", "samples", "loss", "accuracy", "precision", "recall", "F1", "ROC AUC"]);
    assert.deepEqual(summary.rows[0], [
      "m.dpnn",
      "d.csv",
      "5",
      loss(0.4),
      percent(m.accuracy),
      metric(m.precision),
      metric(m.recall),
      metric(m.f1),
      metric(m.rocAuc),
    ]);
    assert.match(text, /confusion matrix \(rows: true class, columns: predicted class\)/);
    const confusion = cells(rest[0]!);
    assert.deepEqual(confusion.head, ["true\\pred", "0", "1"]);
    assert.deepEqual(
      confusion.rows,
      m.confusion.map((counts, c) => [String(c), ...counts.map(String)]),
    );
    const perClass = cells(rest[1]!);
    assert.deepEqual(perClass.head, ["class", "support", "precision", "recall", "F1"]);
    assert.deepEqual(perClass.rows[1], [
      "1",
      String(m.perClass[1]!.support),
      metric(m.perClass[1]!.precision),
      metric(m.perClass[1]!.recall),
      metric(m.perClass[1]!.f1),
    ]);
  });

  test("more than two classes: no ROC AUC column; one confusion row per class", () => {
    const text = evaluationTable("m", "d", { loss: 0.2, accuracy: threeClasses.accuracy, samples: 4, metrics: threeClasses });
    assert.ok(!text.includes("ROC AUC"));
    const [, confusion] = text.split(/\n(?=┌)/);
    assert.equal(cells(confusion!).rows.length, 3);
  });

  test("a regression: MAE, RMSE and R² and no accuracy; an undefined R² (constant targets) reads -", () => {
    const metrics = regressionMetrics(Float32Array.of(1, 3), Float32Array.of(2, 2), 1);
    const text = evaluationTable("m", "d", { loss: 0.5, accuracy: undefined, samples: 2, metrics });
    const { head, rows } = cells(text);
    assert.deepEqual(head, ["model", "data", "samples", "loss", "MAE", "RMSE", "R²"]);
    assert.deepEqual(rows[0]!.slice(4), [error(metrics.mae), error(metrics.rmse), MISSING]);
    assert.ok(!text.includes("confusion"));
  });
});
