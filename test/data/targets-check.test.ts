// targetProblem: targets a network's output layer and cost cannot produce (labels outside [0, 1] for one sigmoid
// output with cross-entropy, softmax rows that are not probabilities, non-finite targets), with the class count
// integer labels suggest.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Dataset } from "../../src/data/dataset.js";
import { type Activation, type Cost, resolveSpec } from "../../src/model/spec.js";
import { describeTargetProblem, targetProblem } from "../../src/model/targets-check.js";

function spec(outputs: number, activation: Activation, cost?: Cost) {
  return resolveSpec({
    inputs: 2,
    layers: [
      { units: 4, activation: "relu" },
      { units: outputs, activation },
    ],
    ...(cost ? { cost } : {}),
  });
}

/** A hand-built dataset of `y` rows (2 features of zeros), as createDataset would refuse non-finite targets. */
function targets(y: number[], outputs = 1): Dataset {
  const size = y.length / outputs;
  return { size, features: 2, outputs, x: new Float32Array(size * 2), y: Float32Array.from(y) };
}

const logistic = spec(1, "sigmoid");

describe("targetProblem", () => {
  test("one sigmoid output with cross-entropy: targets in [0, 1] fit; 2 is refused at its row, suggesting 3 classes", () => {
    assert.equal(logistic.cost, "cross-entropy");
    assert.equal(targetProblem(logistic, targets([0, 1, 0.25, 1, 0])), undefined);
    const problem = targetProblem(logistic, targets([0, 1, 1, 2, 0, 1]));
    assert.deepEqual(problem, {
      row: 3,
      column: 0,
      value: 2,
      message: "label 2 is outside [0, 1], the range of one sigmoid output with cross-entropy",
      classes: 3,
    });
    assert.equal(
      describeTargetProblem(problem!, "3class.csv"),
      "row 3 of 3class.csv: label 2 is outside [0, 1], the range of one sigmoid output with cross-entropy (the labels look like 3 classes: one-hot encode them, e.g. with classes: 3 when reading, and give the model 3 softmax outputs)",
    );
  });

  test("labels that are not class indices get no class suggestion", () => {
    for (const y of [
      [0, 1, -1],
      [0, 2.5, 1],
      [0, 1, 7.5],
    ]) {
      const problem = targetProblem(logistic, targets(y));
      assert.ok(problem, `${y} is refused`);
      assert.equal(problem.classes, undefined, `${y}`);
    }
    assert.equal(targetProblem(logistic, targets([0, 1, 1, 9]))?.classes, 10);
  });

  test("several sigmoid outputs with cross-entropy need each target in [0, 1]", () => {
    const multi = spec(3, "sigmoid");
    assert.equal(targetProblem(multi, targets([0, 1, 1, 1, 0, 0], 3)), undefined);
    const problem = targetProblem(multi, targets([0, 1, 1, 1, 0, 3], 3));
    assert.equal(problem?.row, 1);
    assert.equal(problem?.column, 2);
    assert.match(problem!.message, /^target 3 \(output 3 of 3\) is outside \[0, 1\], the range of sigmoid outputs with cross-entropy$/);
    assert.equal(problem?.classes, undefined);
  });

  test("softmax outputs need rows of non-negative targets summing to 1", () => {
    const softmax = spec(3, "softmax");
    assert.equal(targetProblem(softmax, targets([0, 1, 0, 0.2, 0.3, 0.5], 3)), undefined);
    const sum = targetProblem(softmax, targets([0, 1, 0, 1, 1, 0], 3));
    assert.equal(sum?.row, 1);
    assert.match(sum!.message, /^the targets sum to 2; softmax outputs need targets >= 0 that sum to 1 in each row/);
    const negative = targetProblem(softmax, targets([-0.5, 1, 0.5], 3));
    assert.match(negative!.message, /^target -0\.5 \(output 1 of 3\) is negative/);
    assert.match(targetProblem(softmax, targets([0, 0, 0], 3))!.message, /sum to 0/);
  });

  test("identity and tanh outputs, and sigmoid with squared error, take any finite target", () => {
    for (const s of [spec(1, "identity"), spec(1, "tanh"), spec(1, "sigmoid", "squared-error"), spec(1, "relu")]) {
      assert.equal(targetProblem(s, targets([-3, 250, 0.5, 1e30])), undefined, `${s.layers[1]!.activation} ${s.cost}`);
    }
  });

  test("a NaN or infinite target is refused for every output layer", () => {
    for (const s of [spec(1, "identity"), logistic, spec(1, "sigmoid", "squared-error")]) {
      const problem = targetProblem(s, targets([0, 1, Number.NaN]));
      assert.equal(problem?.row, 2);
      assert.equal(problem?.message, "label NaN is not a finite number");
    }
    assert.match(
      targetProblem(spec(2, "softmax"), targets([0, 1, Number.POSITIVE_INFINITY, 0], 2))!.message,
      /target Infinity \(output 1 of 2\) is not a finite number/,
    );
  });

  test("data of another shape is not judged (a shape problem, reported elsewhere)", () => {
    assert.equal(targetProblem(spec(3, "softmax"), targets([5, 7])), undefined);
  });
});
