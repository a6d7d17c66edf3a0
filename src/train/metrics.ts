// Classification metrics (confusion matrix, precision, recall, F1, accuracy, binary ROC AUC) and regression metrics
// (MAE, RMSE, R²) of a network's outputs against targets, accumulated chunk by chunk; plain TypeScript, runtime-free.
import { InvalidArgumentError, InvalidStateError } from "../errors.js";

/** Precision, recall and F1 of one class, and how many samples truly are of it. */
export interface ClassMetrics {
  /** True positives / predicted positives; 0 when the class is never predicted. */
  readonly precision: number;
  /** True positives / actual positives; 0 when no sample is of the class. */
  readonly recall: number;
  /** 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall; 0 when the class is neither true nor predicted. */
  readonly f1: number;
  /** Samples whose true class this is. */
  readonly support: number;
}

/** How well a classifier did on a set of samples. */
export interface ClassificationMetrics {
  readonly task: "classification";
  readonly samples: number;
  /** 2 for one sigmoid output (predicted class 1 when the output is >= 0.5), else the number of outputs. */
  readonly classes: number;
  /** The fraction of samples whose predicted class is the true class (the confusion matrix's trace / samples). */
  readonly accuracy: number;
  /** Macro averages of the per-class figures, over the classes that occur as a true or a predicted class
   *  (as scikit-learn does: a class absent from both does not pull the average down). */
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Indexed by class. */
  readonly perClass: readonly ClassMetrics[];
  /** confusion[t][p]: samples of true class t predicted as class p (rows are the true class). */
  readonly confusion: readonly (readonly number[])[];
  /** Binary tasks only (one sigmoid output, or two classes scored by the output of class 1): the area under the ROC
   *  curve, computed exactly from ranks with ties counted as half (Mann–Whitney U / (positives · negatives)).
   *  Absent for more than two classes, and when the samples hold only one of the two classes (it is undefined). */
  readonly rocAuc?: number;
}

/** How close a regression's outputs are to the targets, over every output of every sample. */
export interface RegressionMetrics {
  readonly task: "regression";
  readonly samples: number;
  readonly outputs: number;
  /** Mean absolute error over all samples × outputs. */
  readonly mae: number;
  /** Root of the mean squared error over all samples × outputs. */
  readonly rmse: number;
  /** 1 − SSres / SStot, where SSres sums the squared errors of every output and SStot the squared deviations of each
   *  output's targets from that output's mean (scikit-learn's "variance_weighted" R² for several outputs); 1 is
   *  perfect, 0 is as good as predicting each output's mean. Absent when the targets do not vary (SStot = 0). */
  readonly r2?: number;
}

/** Either kind of metrics; `task` tells them apart. */
export type Metrics = ClassificationMetrics | RegressionMetrics;

/** The class a row of outputs (or of one-hot targets) stands for: the argmax (first on ties), or for a single
 *  output 1 when it is >= 0.5, else 0. A NaN output gives class 0. */
export function classOf(values: Float32Array, row: number, cols: number): number {
  if (cols === 1) return values[row]! >= 0.5 ? 1 : 0;
  const base = row * cols;
  let best = 0;
  for (let j = 1; j < cols; j++) if (values[base + j]! > values[base + best]!) best = j;
  return best;
}

/** A float32 buffer that doubles when full. */
class Scores {
  private data: Float32Array;
  length = 0;

  constructor(capacity: number) {
    this.data = new Float32Array(Math.max(16, capacity));
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  /** The values pushed so far, sorted ascending (NaN last), in a copy. */
  sorted(): Float32Array {
    return this.data.slice(0, this.length).sort();
  }
}

/**
 * The area under the ROC curve of `positives`' scores against `negatives`' scores: the probability that a random
 * positive scores above a random negative, ties counting one half. Exact (no binning) in O(n log n). NaN when a
 * score is NaN; undefined when either side is empty.
 */
export function rocAuc(positives: ArrayLike<number>, negatives: ArrayLike<number>): number | undefined {
  return aucOfSorted(Float32Array.from(positives).sort(), Float32Array.from(negatives).sort());
}

function aucOfSorted(pos: Float32Array, neg: Float32Array): number | undefined {
  if (pos.length === 0 || neg.length === 0) return undefined;
  if (Number.isNaN(pos[pos.length - 1]!) || Number.isNaN(neg[neg.length - 1]!)) return Number.NaN;
  let below = 0; // negatives scoring below the current positive
  let notAbove = 0; // negatives scoring below or equal
  let wins = 0;
  for (const score of pos) {
    while (below < neg.length && neg[below]! < score) below++;
    if (notAbove < below) notAbove = below;
    while (notAbove < neg.length && neg[notAbove]! <= score) notAbove++;
    wins += below + 0.5 * (notAbove - below);
  }
  return wins / (pos.length * neg.length);
}

/** Options of a ClassificationAccumulator. */
export interface ClassificationOptions {
  /** Samples expected, to size the score buffers of a binary task at once. Default 1024 (they grow as needed). */
  readonly capacity?: number;
  /** Names the data in error messages. Default "dataset". */
  readonly name?: string;
}

/**
 * Collects a classifier's predictions chunk by chunk: a confusion matrix and, for a binary task, every sample's
 * score (4 bytes per sample) for the ROC AUC. `outputs` is the network's output count: 1 (one sigmoid output,
 * two classes) or the number of classes.
 */
export class ClassificationAccumulator {
  readonly classes: number;
  private readonly counts: Float64Array;
  private readonly positives: Scores | undefined;
  private readonly negatives: Scores | undefined;
  private readonly name: string;
  private seen = 0;

  constructor(
    readonly outputs: number,
    options: ClassificationOptions = {},
  ) {
    if (!Number.isInteger(outputs) || outputs < 1) throw new InvalidArgumentError(`a classifier needs at least 1 output, got ${outputs}`);
    this.classes = outputs === 1 ? 2 : outputs;
    this.counts = new Float64Array(this.classes * this.classes);
    this.name = options.name ?? "dataset";
    if (this.classes === 2) {
      const capacity = options.capacity ?? 1024;
      this.positives = new Scores(capacity / 2);
      this.negatives = new Scores(capacity / 2);
    }
  }

  /** Samples added so far. */
  get samples(): number {
    return this.seen;
  }

  /**
   * Adds `rows` samples: `predicted` and `targets` hold rows × outputs values (row-major; only the first rows are
   * read). The true class is `labels[i]` when labels are given (integers in [0, classes)), else the class of the
   * target row (its argmax, or target >= 0.5 for one output). Throws InvalidArgumentError on a label outside.
   */
  add(predicted: Float32Array, targets: Float32Array, rows: number, labels?: ArrayLike<number>): void {
    const { outputs, classes } = this;
    requireRows(predicted, targets, rows, outputs);
    if (labels && labels.length < rows) throw new InvalidArgumentError(`${this.name}: ${labels.length} labels for ${rows} rows`);
    for (let i = 0; i < rows; i++) {
      const truth = labels ? labels[i]! : classOf(targets, i, outputs);
      if (!(Number.isInteger(truth) && truth >= 0 && truth < classes)) {
        throw new InvalidArgumentError(
          `${this.name}: the label ${truth} of row ${this.seen + i + 1} is not a class of the model (0 to ${classes - 1})`,
        );
      }
      this.counts[truth * classes + classOf(predicted, i, outputs)]! += 1;
      if (this.positives) {
        const score = outputs === 1 ? predicted[i]! : predicted[i * 2 + 1]!;
        (truth === 1 ? this.positives : this.negatives!).push(score);
      }
    }
    this.seen += rows;
  }

  /** The metrics of every sample added (computed on each call; the accumulator can go on). Throws
   *  InvalidStateError when none was added. */
  result(): ClassificationMetrics {
    if (this.seen === 0) throw new InvalidStateError("no samples were added: there are no classification metrics of 0 samples");
    const { classes, counts } = this;
    const confusion = Array.from({ length: classes }, (_, t) => Array.from(counts.subarray(t * classes, (t + 1) * classes)));
    const perClass: ClassMetrics[] = [];
    const present: number[] = [];
    let correct = 0;
    for (let c = 0; c < classes; c++) {
      const tp = counts[c * classes + c]!;
      let actual = 0;
      let predicted = 0;
      for (let k = 0; k < classes; k++) {
        actual += counts[c * classes + k]!;
        predicted += counts[k * classes + c]!;
      }
      correct += tp;
      const errors = actual - tp + (predicted - tp);
      perClass.push({ precision: ratio(tp, predicted), recall: ratio(tp, actual), f1: ratio(2 * tp, 2 * tp + errors), support: actual });
      if (actual > 0 || predicted > 0) present.push(c);
    }
    const macro = (pick: (m: ClassMetrics) => number) => present.reduce((sum, c) => sum + pick(perClass[c]!), 0) / present.length;
    const auc = this.positives ? aucOfSorted(this.positives.sorted(), this.negatives!.sorted()) : undefined;
    return {
      task: "classification",
      samples: this.seen,
      classes,
      accuracy: correct / this.seen,
      precision: macro((m) => m.precision),
      recall: macro((m) => m.recall),
      f1: macro((m) => m.f1),
      perClass,
      confusion,
      ...(auc !== undefined ? { rocAuc: auc } : {}),
    };
  }
}

/** Requires `rows` whole rows of `outputs` values in both arrays. */
function requireRows(predicted: Float32Array, targets: Float32Array, rows: number, outputs: number): void {
  if (!Number.isInteger(rows) || rows < 0 || predicted.length < rows * outputs || targets.length < rows * outputs) {
    throw new InvalidArgumentError(
      `metrics of ${rows} rows of ${outputs} outputs need ${rows * outputs} values each; got ${predicted.length} predicted and ${targets.length} target values`,
    );
  }
}

/** a / b, or 0 when b is 0 (the convention for a class never predicted, or never true). */
function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/**
 * Collects a regression's errors chunk by chunk, in float64: absolute and squared errors, and each output's target
 * mean and sum of squared deviations (merged chunk by chunk, Chan et al., so R² does not lose precision).
 */
export class RegressionAccumulator {
  private readonly mean: Float64Array;
  private readonly deviations: Float64Array;
  private readonly chunkMean: Float64Array;
  private absolute = 0;
  private squared = 0;
  private seen = 0;

  constructor(readonly outputs: number) {
    if (!Number.isInteger(outputs) || outputs < 1) throw new InvalidArgumentError(`a regression needs at least 1 output, got ${outputs}`);
    this.mean = new Float64Array(outputs);
    this.deviations = new Float64Array(outputs);
    this.chunkMean = new Float64Array(outputs);
  }

  /** Samples added so far. */
  get samples(): number {
    return this.seen;
  }

  /** Adds `rows` samples: `predicted` and `targets` hold rows × outputs values (row-major; only the first rows are read). */
  add(predicted: Float32Array, targets: Float32Array, rows: number): void {
    if (rows === 0) return;
    const { outputs, chunkMean } = this;
    requireRows(predicted, targets, rows, outputs);
    chunkMean.fill(0);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < outputs; j++) {
        const t = targets[i * outputs + j]!;
        const error = predicted[i * outputs + j]! - t;
        this.absolute += Math.abs(error);
        this.squared += error * error;
        chunkMean[j]! += t;
      }
    }
    for (let j = 0; j < outputs; j++) chunkMean[j]! /= rows;
    const before = this.seen;
    const total = before + rows;
    for (let j = 0; j < outputs; j++) {
      let m2 = 0;
      for (let i = 0; i < rows; i++) {
        const d = targets[i * outputs + j]! - chunkMean[j]!;
        m2 += d * d;
      }
      const delta = chunkMean[j]! - this.mean[j]!;
      this.mean[j]! += (delta * rows) / total;
      this.deviations[j]! += m2 + (delta * delta * before * rows) / total;
    }
    this.seen = total;
  }

  /** The metrics of every sample added (computed on each call). Throws InvalidStateError when none was added. */
  result(): RegressionMetrics {
    if (this.seen === 0) throw new InvalidStateError("no samples were added: there are no regression metrics of 0 samples");
    const values = this.seen * this.outputs;
    const total = this.deviations.reduce((sum, d) => sum + d, 0);
    return {
      task: "regression",
      samples: this.seen,
      outputs: this.outputs,
      mae: this.absolute / values,
      rmse: Math.sqrt(this.squared / values),
      ...(total > 0 ? { r2: 1 - this.squared / total } : {}),
    };
  }
}

/** Classification metrics of whole arrays (rows × outputs each); see ClassificationAccumulator.add. */
export function classificationMetrics(
  predicted: Float32Array,
  targets: Float32Array,
  outputs: number,
  labels?: ArrayLike<number>,
): ClassificationMetrics {
  const rows = wholeRows(predicted, targets, outputs);
  const accumulator = new ClassificationAccumulator(outputs, { capacity: rows });
  accumulator.add(predicted, targets, rows, labels);
  return accumulator.result();
}

/** Regression metrics of whole arrays (rows × outputs each). */
export function regressionMetrics(predicted: Float32Array, targets: Float32Array, outputs: number): RegressionMetrics {
  const accumulator = new RegressionAccumulator(outputs);
  accumulator.add(predicted, targets, wholeRows(predicted, targets, outputs));
  return accumulator.result();
}

function wholeRows(predicted: Float32Array, targets: Float32Array, outputs: number): number {
  if (predicted.length !== targets.length || predicted.length % outputs !== 0) {
    throw new InvalidArgumentError(
      `${predicted.length} predicted and ${targets.length} target values are not the same whole rows of ${outputs} outputs`,
    );
  }
  return predicted.length / outputs;
}
