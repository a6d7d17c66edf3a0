// Whether a dataset's targets are values the network's output layer and cost can produce: one sigmoid output with
// cross-entropy needs targets in [0, 1], softmax outputs need rows of probabilities (one-hot classes), all need finite.
import { outputsOf, type ResolvedSpec } from "./spec.js";

/** What targetProblem reads of a Dataset (src/data/dataset.ts; model/ does not import data/): its targets by row. */
export interface Targets {
  readonly size: number;
  readonly outputs: number;
  /** size x outputs, row-major. */
  readonly y: Float32Array;
}

/** The first target a network cannot learn, where it is, and (integer labels 0..N-1) how many classes they look like. */
export interface TargetProblem {
  /** 0-based row of the dataset. */
  readonly row: number;
  /** 0-based output (target column) of that row. */
  readonly column: number;
  /** The offending target (for a softmax row whose sum is off: the sum). */
  readonly value: number;
  /** What is wrong, without the row (callers say where): "label 2 is outside [0, 1], the range of ...". */
  readonly message: string;
  /** When every label is an integer in 0..N-1 with N >= 3: N, so the labels can be read as N one-hot classes. */
  readonly classes?: number;
}

/** How far a softmax row's targets may sum from 1 (float32 probabilities). */
const SUM_TOLERANCE = 1e-3;

/**
 * The first target in `data` outside what the output layer and cost of `spec` can produce, or undefined when all fit
 * (also when the shapes differ: that is a shape problem, checked elsewhere). Sigmoid outputs with cross-entropy:
 * each target in [0, 1]; softmax outputs: each row non-negative, summing to 1; any output: finite targets.
 * Reads every target once; copies nothing.
 */
export function targetProblem(spec: ResolvedSpec, data: Targets): TargetProblem | undefined {
  const outputs = outputsOf(spec);
  if (data.outputs !== outputs || data.y.length !== data.size * outputs) return undefined;
  const activation = spec.layers[spec.layers.length - 1]!.activation;
  const problem =
    nonFiniteTarget(data) ??
    (activation === "softmax" ? softmaxProblem(data) : undefined) ??
    (activation === "sigmoid" && spec.cost === "cross-entropy" ? unitRangeProblem(data) : undefined);
  if (!problem) return undefined;
  const classes = outputs === 1 ? classCount(data.y) : undefined;
  return classes === undefined ? problem : { ...problem, classes };
}

/** "row 4 of pima: label 2 is outside [0, 1], ... (the labels look like 3 classes: one-hot encode them, ...)": for library errors. */
export function describeTargetProblem(problem: TargetProblem, dataName = "the data"): string {
  const hint =
    problem.classes === undefined
      ? ""
      : ` (the labels look like ${problem.classes} classes: one-hot encode them, e.g. with classes: ${problem.classes} when reading, and give the model ${problem.classes} softmax outputs)`;
  return `row ${problem.row} of ${dataName}: ${problem.message}${hint}`;
}

function nonFiniteTarget(data: Targets): Omit<TargetProblem, "classes"> | undefined {
  const { y, outputs } = data;
  for (let i = 0; i < y.length; i++) {
    const value = y[i]!;
    if (!Number.isFinite(value)) return at(i, outputs, value, `${targetName(outputs, i % outputs, value)} is not a finite number`);
  }
  return undefined;
}

function unitRangeProblem(data: Targets): Omit<TargetProblem, "classes"> | undefined {
  const { y, outputs } = data;
  for (let i = 0; i < y.length; i++) {
    const value = y[i]!;
    if (value < 0 || value > 1) {
      const range = outputs === 1 ? "one sigmoid output with cross-entropy" : "sigmoid outputs with cross-entropy";
      return at(i, outputs, value, `${targetName(outputs, i % outputs, value)} is outside [0, 1], the range of ${range}`);
    }
  }
  return undefined;
}

function softmaxProblem(data: Targets): Omit<TargetProblem, "classes"> | undefined {
  const { y, outputs, size } = data;
  const expected = "softmax outputs need targets >= 0 that sum to 1 in each row (one-hot classes or probabilities)";
  for (let row = 0; row < size; row++) {
    let sum = 0;
    for (let j = 0; j < outputs; j++) {
      const value = y[row * outputs + j]!;
      if (value < 0) return { row, column: j, value, message: `${targetName(outputs, j, value)} is negative; ${expected}` };
      sum += value;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) {
      return { row, column: 0, value: sum, message: `the targets sum to ${sum}; ${expected}` };
    }
  }
  return undefined;
}

/** N when every value is an integer in 0..N-1 and N >= 3 (0/1 labels already fit one sigmoid output). */
function classCount(y: Float32Array): number | undefined {
  let max = 0;
  for (let i = 0; i < y.length; i++) {
    const value = y[i]!;
    if (!Number.isInteger(value) || value < 0) return undefined;
    if (value > max) max = value;
  }
  return max >= 2 ? max + 1 : undefined;
}

function at(index: number, outputs: number, value: number, message: string): Omit<TargetProblem, "classes"> {
  return { row: Math.floor(index / outputs), column: index % outputs, value, message };
}

/** "label 2" for one output, "target 2 (output 3 of 10)" for several. */
function targetName(outputs: number, column: number, value: number): string {
  return outputs === 1 ? `label ${value}` : `target ${value} (output ${column + 1} of ${outputs})`;
}
