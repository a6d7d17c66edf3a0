// Classification and regression metrics against hand-computed cases and independent brute-force references on seeded
// random data (ties included): confusion matrix, precision/recall/F1 with their zero-division conventions, exact ROC
// AUC, MAE/RMSE/R², and that accumulating chunk by chunk gives what one pass gives.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mulberry32 } from "../../src/data/random.js";
import { InvalidArgumentError, InvalidStateError } from "../../src/errors.js";
import {
  ClassificationAccumulator,
  classificationMetrics,
  RegressionAccumulator,
  regressionMetrics,
  rocAuc,
} from "../../src/train/metrics.js";

/** One-hot rows (as network outputs or targets) of the given classes. */
function oneHotRows(classes: readonly number[], width: number): Float32Array {
  const out = new Float32Array(classes.length * width);
  classes.forEach((c, i) => {
    out[i * width + c] = 1;
  });
  return out;
}

function close(actual: number | undefined, expected: number, what: string, tolerance = 1e-12): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${what}: ${actual}, expected ${expected}`,
  );
}

/** The O(n²) definition: the share of (positive, negative) pairs where the positive scores higher, ties one half. */
function bruteAuc(scores: ArrayLike<number>, truth: ArrayLike<number>): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (truth[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (truth[j] !== 0) continue;
      pairs++;
      if (scores[i]! > scores[j]!) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}

/** Scores rounded to tenths (many ties), as float32, and 0/1 truths. */
function randomBinary(n: number, seed: number): { scores: Float32Array; truth: Int32Array } {
  const random = mulberry32(seed);
  const truth = Int32Array.from({ length: n }, () => (random() < 0.4 ? 1 : 0));
  const scores = Float32Array.from(truth, (t) => Math.round(10 * Math.min(1, Math.max(0, random() * 0.8 + 0.3 * t))) / 10);
  return { scores, truth };
}

describe("classification metrics", () => {
  test("a hand-computed 3-class case: confusion rows are the true class; per-class and macro figures", () => {
    const truth = [0, 0, 1, 1, 2, 2, 2];
    const predicted = [0, 1, 1, 1, 2, 0, 2];
    const m = classificationMetrics(oneHotRows(predicted, 3), oneHotRows(truth, 3), 3);
    assert.equal(m.task, "classification");
    assert.equal(m.classes, 3);
    assert.equal(m.samples, 7);
    assert.deepEqual(m.confusion, [
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 2],
    ]);
    close(m.accuracy, 5 / 7, "accuracy");
    const expected = [
      { precision: 1 / 2, recall: 1 / 2, f1: 1 / 2, support: 2 },
      { precision: 2 / 3, recall: 1, f1: 0.8, support: 2 },
      { precision: 1, recall: 2 / 3, f1: 0.8, support: 3 },
    ];
    expected.forEach((e, c) => {
      for (const key of ["precision", "recall", "f1", "support"] as const) close(m.perClass[c]![key], e[key], `class ${c} ${key}`);
    });
    close(m.precision, (1 / 2 + 2 / 3 + 1) / 3, "macro precision");
    close(m.recall, (1 / 2 + 1 + 2 / 3) / 3, "macro recall");
    close(m.f1, (1 / 2 + 0.8 + 0.8) / 3, "macro F1");
    assert.equal(m.rocAuc, undefined, "no ROC AUC for three classes");
  });

  test("labels, when given, are the true classes; a class never predicted has precision 0; an absent class is left out of the macro averages", () => {
    const labels = Int32Array.of(0, 1, 2, 2);
    const predicted = [0, 1, 1, 0];
    const m = classificationMetrics(oneHotRows(predicted, 4), new Float32Array(16), 4, labels);
    assert.deepEqual(m.confusion, [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [1, 1, 0, 0],
      [0, 0, 0, 0],
    ]);
    assert.deepEqual(m.perClass[2], { precision: 0, recall: 0, f1: 0, support: 2 }, "class 2: never predicted");
    assert.deepEqual(m.perClass[3], { precision: 0, recall: 0, f1: 0, support: 0 }, "class 3: neither true nor predicted");
    close(m.precision, (1 / 2 + 1 / 2 + 0) / 3, "macro precision over classes 0-2");
    close(m.recall, (1 + 1 + 0) / 3, "macro recall over classes 0-2");
    close(m.f1, (2 / 3 + 2 / 3 + 0) / 3, "macro F1 over classes 0-2");
  });

  test("per-class and macro figures match a brute-force count on seeded random labels", () => {
    const random = mulberry32(17);
    const classes = 5;
    const n = 400;
    const truth = Array.from({ length: n }, () => Math.floor(random() * classes));
    const predicted = truth.map((t) => (random() < 0.6 ? t : Math.floor(random() * (classes - 1))));
    const m = classificationMetrics(oneHotRows(predicted, classes), oneHotRows(truth, classes), classes);
    let f1Sum = 0;
    for (let c = 0; c < classes; c++) {
      const tp = truth.filter((t, i) => t === c && predicted[i] === c).length;
      const fp = truth.filter((t, i) => t !== c && predicted[i] === c).length;
      const fn = truth.filter((t, i) => t === c && predicted[i] !== c).length;
      const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
      const recall = tp / (tp + fn);
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      f1Sum += f1;
      close(m.perClass[c]!.precision, precision, `precision ${c}`);
      close(m.perClass[c]!.recall, recall, `recall ${c}`);
      close(m.perClass[c]!.f1, f1, `F1 ${c}`);
      assert.equal(
        m.confusion[c]!.reduce((a, b) => a + b, 0),
        truth.filter((t) => t === c).length,
      );
    }
    close(m.f1, f1Sum / classes, "macro F1");
    close(m.accuracy, truth.filter((t, i) => t === predicted[i]).length / n, "accuracy");
  });

  test("ROC AUC of a hand-computed case, ties counted as half", () => {
    close(rocAuc([0.9, 0.4, 0.6], [0.4, 0.2]), 5.5 / 6, "AUC");
    close(rocAuc([1, 1], [1, 1, 1]), 0.5, "all tied");
    close(rocAuc([0.1], [0.9]), 0, "all wrong");
    assert.equal(rocAuc([0.5], []), undefined, "no negatives: undefined");
    assert.ok(Number.isNaN(rocAuc([Number.NaN, 0.5], [0.2])!), "a NaN score gives NaN");
  });

  test("ROC AUC of one sigmoid output equals the brute-force pair count on seeded random scores with ties", () => {
    for (const seed of [1, 2, 3]) {
      const { scores, truth } = randomBinary(600, seed);
      const m = classificationMetrics(scores, Float32Array.from(truth), 1);
      assert.equal(m.classes, 2);
      close(m.rocAuc, bruteAuc(scores, truth), `seed ${seed}`);
      close(m.accuracy, truth.filter((t, i) => t === (scores[i]! >= 0.5 ? 1 : 0)).length / truth.length, "accuracy at 0.5");
    }
  });

  test("ROC AUC of two softmax outputs uses the score of class 1", () => {
    const { scores, truth } = randomBinary(300, 9);
    const outputs = new Float32Array(2 * scores.length);
    scores.forEach((s, i) => {
      outputs[2 * i] = 1 - s;
      outputs[2 * i + 1] = s;
    });
    const m = classificationMetrics(outputs, oneHotRows(Array.from(truth), 2), 2);
    close(m.rocAuc, bruteAuc(scores, truth), "AUC");
  });

  test("one class only: the ROC AUC is absent, the other figures are there", () => {
    const m = classificationMetrics(Float32Array.of(0.7, 0.2), Float32Array.of(1, 1), 1);
    assert.equal(m.rocAuc, undefined);
    close(m.accuracy, 0.5, "accuracy");
  });

  test("chunk by chunk gives what one pass gives", () => {
    const { scores, truth } = randomBinary(257, 4);
    const whole = classificationMetrics(scores, Float32Array.from(truth), 1);
    const accumulator = new ClassificationAccumulator(1, { capacity: 2 });
    for (let r0 = 0; r0 < scores.length; r0 += 50) {
      const end = Math.min(scores.length, r0 + 50);
      accumulator.add(scores.subarray(r0, end), Float32Array.from(truth.subarray(r0, end)), end - r0);
    }
    assert.deepEqual(accumulator.result(), whole);
  });

  test("a label outside the classes, mismatched arrays and no samples are errors", () => {
    const accumulator = new ClassificationAccumulator(3, { name: "t.csv" });
    assert.throws(
      () => accumulator.add(new Float32Array(6), new Float32Array(6), 2, Int32Array.of(1, 3)),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /^t\.csv: the label 3 of row 2 is not a class of the model \(0 to 2\)/);
        return true;
      },
    );
    assert.throws(() => classificationMetrics(new Float32Array(5), new Float32Array(6), 3), InvalidArgumentError);
    assert.throws(() => new ClassificationAccumulator(2).result(), InvalidStateError);
  });
});

describe("regression metrics", () => {
  test("a hand-computed case: MAE, RMSE and R² = 1 - SSres/SStot", () => {
    const m = regressionMetrics(Float32Array.of(1, 3, 2, 4), Float32Array.of(1, 2, 3, 4), 1);
    assert.equal(m.task, "regression");
    close(m.mae, 0.5, "MAE");
    close(m.rmse, Math.sqrt(0.5), "RMSE");
    close(m.r2, 1 - 2 / 5, "R²");
  });

  test("several outputs: SStot sums each output's deviations from its own mean", () => {
    // output 0 targets 0, 10 (mean 5, SStot 50); output 1 targets 100, 102 (mean 101, SStot 2)
    const targets = Float32Array.of(0, 100, 10, 102);
    const predicted = Float32Array.of(1, 100, 10, 101);
    const m = regressionMetrics(predicted, targets, 2);
    close(m.mae, 2 / 4, "MAE over all outputs");
    close(m.rmse, Math.sqrt(2 / 4), "RMSE over all outputs");
    close(m.r2, 1 - 2 / 52, "R²");
  });

  test("predicting each output's mean gives R² 0, a perfect fit 1, and constant targets leave R² undefined", () => {
    const random = mulberry32(5);
    const targets = Float32Array.from({ length: 300 }, () => random() * 10 - 3);
    const mean = targets.reduce((a, b) => a + b, 0) / targets.length;
    close(regressionMetrics(new Float32Array(300).fill(mean), targets, 1).r2, 0, "mean predictor", 1e-6);
    close(regressionMetrics(targets, targets, 1).r2, 1, "perfect");
    const constant = regressionMetrics(Float32Array.of(1, 2), Float32Array.of(3, 3), 1);
    assert.equal(constant.r2, undefined);
    close(constant.mae, 1.5, "MAE still there");
  });

  test("chunk by chunk gives what one pass gives (R² merges per-chunk means)", () => {
    const random = mulberry32(8);
    const outputs = 3;
    const rows = 211;
    const targets = Float32Array.from({ length: rows * outputs }, (_, k) => 1000 * (k % outputs) + random());
    const predicted = Float32Array.from(targets, (t) => t + random() - 0.5);
    const whole = regressionMetrics(predicted, targets, outputs);
    const accumulator = new RegressionAccumulator(outputs);
    for (let r0 = 0, step = 1; r0 < rows; r0 += step, step = step * 2 + 1) {
      const end = Math.min(rows, r0 + step);
      accumulator.add(predicted.subarray(r0 * outputs, end * outputs), targets.subarray(r0 * outputs, end * outputs), end - r0);
    }
    const chunked = accumulator.result();
    for (const key of ["mae", "rmse", "r2"] as const) close(chunked[key], whole[key]!, key, 1e-9);
    assert.equal(chunked.samples, rows);
    // an independent two-pass R²
    let res = 0;
    let tot = 0;
    for (let j = 0; j < outputs; j++) {
      let mean = 0;
      for (let i = 0; i < rows; i++) mean += targets[i * outputs + j]! / rows;
      for (let i = 0; i < rows; i++) {
        tot += (targets[i * outputs + j]! - mean) ** 2;
        res += (predicted[i * outputs + j]! - targets[i * outputs + j]!) ** 2;
      }
    }
    close(chunked.r2, 1 - res / tot, "two-pass R²", 1e-9);
  });

  test("NaN predictions give NaN figures, not a silent number", () => {
    const m = regressionMetrics(Float32Array.of(Number.NaN, 1), Float32Array.of(0, 1), 1);
    assert.ok(Number.isNaN(m.mae) && Number.isNaN(m.rmse) && Number.isNaN(m.r2!));
  });

  test("no samples is an error", () => {
    assert.throws(() => new RegressionAccumulator(1).result(), InvalidStateError);
  });
});
