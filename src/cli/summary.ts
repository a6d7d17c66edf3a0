// Tables printed after training (a row per epoch, or the first, best and last of them, with the test metric that
// matters) and after evaluation (loss and metrics, a classifier's confusion matrix), drawn with cli-table3 without colour.
import Table from "cli-table3";
import type { Evaluation } from "../train/evaluate.js";
import type { ClassificationMetrics } from "../train/metrics.js";
import type { EpochReport } from "../train/trainer.js";
import { error, loss, metric, percent, rate, seconds } from "./format.js";

const PLAIN = { style: { head: [], border: [] } };
/** Without a line between rows: the confusion matrix and per-class tables, which can have many rows. */
const COMPACT = { style: { head: [], border: [], compact: true } };

const ELLIPSIS = "…";

/** A column of the epoch table: its heading and its cell for one epoch. */
interface Column {
  readonly head: string;
  readonly cell: (report: EpochReport) => string | number;
}

/**
 * epoch | loss | test loss | test accuracy [| test F1 or test AUC] | samples/s | seconds [| test s] for classifiers;
 * test RMSE | test R² instead of the accuracy for regression; "test s" is the validation time after each epoch, when
 * the reports have it (samples/s and seconds count training only). Every epoch, or (`short`) the first, best and
 * last with an ellipsis row for each gap, then a line saying which epoch was best and how to see them all.
 */
export function epochTable(reports: readonly EpochReport[], short = false): string {
  const columns = epochColumns(reports);
  const table = new Table({ ...PLAIN, head: columns.map((c) => c.head), colAligns: columns.map(() => "right" as const) });
  const best = bestEpoch(reports);
  const shown = short
    ? [...new Set([0, best.index, reports.length - 1])].filter((i) => i >= 0).sort((a, b) => a - b)
    : reports.map((_, i) => i);
  shown.forEach((i, k) => {
    if (k > 0 && i > shown[k - 1]! + 1) table.push(columns.map(() => ELLIPSIS));
    const r = reports[i]!;
    table.push(columns.map((c) => c.cell(r)));
  });
  const hidden = reports.length - shown.length;
  if (!short || hidden === 0) return table.toString();
  return `${table.toString()}
${reports.length} epochs: the first, the best (epoch ${reports[best.index]!.epoch}, by ${best.by}) and the last; --summary all shows every one`;
}

/** The epoch table's columns for these reports: the test figures follow the kind of metrics the first evaluated
 *  epoch has (one extra column for a classifier, the one that matters: AUC for two classes, macro F1 for more). */
function epochColumns(reports: readonly EpochReport[]): Column[] {
  const metrics = reports.find((r) => r.validation?.metrics)?.validation?.metrics;
  const classification = (r: EpochReport) => (r.validation?.metrics?.task === "classification" ? r.validation.metrics : undefined);
  const regression = (r: EpochReport) => (r.validation?.metrics?.task === "regression" ? r.validation.metrics : undefined);
  const testFigures: Column[] =
    metrics?.task === "regression"
      ? [
          { head: "test RMSE", cell: (r) => error(regression(r)?.rmse) },
          { head: "test R²", cell: (r) => metric(regression(r)?.r2) },
        ]
      : [
          { head: "test accuracy", cell: (r) => percent(r.validation?.accuracy) },
          ...(metrics?.classes === 2 ? [{ head: "test AUC", cell: (r: EpochReport) => metric(classification(r)?.rocAuc) }] : []),
          ...(metrics !== undefined && metrics.classes > 2
            ? [{ head: "test F1", cell: (r: EpochReport) => metric(classification(r)?.f1) }]
            : []),
        ];
  const validationTime = reports.some((r) => r.validationSeconds !== undefined);
  return [
    { head: "epoch", cell: (r) => r.epoch },
    { head: "loss", cell: (r) => loss(r.loss) },
    { head: "test loss", cell: (r) => loss(r.validation?.loss) },
    ...testFigures,
    { head: "samples/s", cell: (r) => rate(r.samplesPerSecond) },
    { head: "seconds", cell: (r) => seconds(r.seconds) },
    ...(validationTime ? [{ head: "test s", cell: (r: EpochReport) => seconds(r.validationSeconds) }] : []),
  ];
}

/** The best epoch by test accuracy, else test loss, else training loss. */
export function bestEpoch(reports: readonly EpochReport[]): { index: number; by: string } {
  const pick = (score: (r: EpochReport) => number | undefined, by: string) => {
    let index = -1;
    reports.forEach((r, i) => {
      const value = score(r);
      if (value !== undefined && Number.isFinite(value) && (index < 0 || value > score(reports[index]!)!)) index = i;
    });
    return index < 0 ? undefined : { index, by };
  };
  return (
    pick((r) => r.validation?.accuracy, "test accuracy") ??
    pick((r) => (r.validation ? -r.validation.loss : undefined), "test loss") ??
    pick((r) => -r.loss, "loss") ?? { index: reports.length - 1, by: "loss" }
  );
}

/**
 * model | data | samples | loss, then for a classifier accuracy | precision | recall | F1 (macro averages) [| ROC AUC
 * for two classes] followed by its confusion matrix and per-class table; for a regression MAE | RMSE | R².
 */
export function evaluationTable(model: string, data: string, evaluation: Evaluation): string {
  const m = evaluation.metrics;
  const head = ["model", "data", "samples", "loss"];
  const row: (string | number)[] = [model, data, evaluation.samples, loss(evaluation.loss)];
  if (m?.task === "regression") {
    head.push("MAE", "RMSE", "R²");
    row.push(error(m.mae), error(m.rmse), metric(m.r2));
  } else {
    head.push("accuracy");
    row.push(percent(evaluation.accuracy));
    if (m && evaluation.accuracy !== undefined) {
      head.push("precision", "recall", "F1");
      row.push(metric(m.precision), metric(m.recall), metric(m.f1));
      if (m.classes === 2) {
        head.push("ROC AUC");
        row.push(metric(m.rocAuc));
      }
    }
  }
  const table = new Table({ ...PLAIN, head });
  table.push(row);
  if (m?.task !== "classification" || evaluation.accuracy === undefined) return table.toString();
  return [
    table.toString(),
    "precision, recall and F1: macro averages over the classes (per class below)",
    confusionTable(m),
    perClassTable(m),
  ].join("\n");
}

/** The confusion matrix: a row per true class, a column per predicted class, counts of samples. */
export function confusionTable(m: ClassificationMetrics): string {
  const classes = m.confusion.map((_, c) => String(c));
  const table = new Table({ ...COMPACT, head: ["true\\pred", ...classes], colAligns: ["right", ...classes.map(() => "right" as const)] });
  m.confusion.forEach((counts, c) => {
    table.push([String(c), ...counts]);
  });
  return `confusion matrix (rows: true class, columns: predicted class)\n${table.toString()}`;
}

/** class | support | precision | recall | F1, a row per class. */
function perClassTable(m: ClassificationMetrics): string {
  const table = new Table({
    ...COMPACT,
    head: ["class", "support", "precision", "recall", "F1"],
    colAligns: ["right", "right", "right", "right", "right"],
  });
  m.perClass.forEach((c, i) => {
    table.push([i, c.support, metric(c.precision), metric(c.recall), metric(c.f1)]);
  });
  return table.toString();
}
