// How numbers read in the CLI's tables and lines: losses, metrics, accuracies, rates and times; "-" only for what
// is missing, "NaN" and "inf" for what is not finite.
import type { EpochReport } from "../train/trainer.js";

/** The mark of a figure that is missing (no test set, not a classifier, undefined such as R² of constant targets);
 *  never of a figure that is NaN or infinite, which reads "NaN", "inf" or "-inf". */
export const MISSING = "-";

/** `value` through `finite`, or MISSING when undefined, or "NaN" / "inf" / "-inf" when it is not finite. */
function figure(value: number | undefined, finite: (value: number) => string): string {
  if (value === undefined) return MISSING;
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return finite(value);
}

const fourDecimals = (value: number) => value.toFixed(4);

/** A loss: four decimals. */
export function loss(value: number | undefined): string {
  return figure(value, fourDecimals);
}

/** A metric of about [0, 1] (precision, recall, F1, ROC AUC, R²): four decimals. */
export function metric(value: number | undefined): string {
  return figure(value, fourDecimals);
}

/** An error in the targets' units (MAE, RMSE): four decimals, or four significant digits when it is very small or
 *  very large. */
export function error(value: number | undefined): string {
  return figure(value, (v) => (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6) ? v.toPrecision(4) : v.toFixed(4)));
}

export function percent(value: number | undefined): string {
  return figure(value, (v) => `${(100 * v).toFixed(2)}%`);
}

export function rate(value: number): string {
  return figure(value, (v) => Math.round(v).toLocaleString("en-US"));
}

export function seconds(value: number | undefined): string {
  return figure(value, (v) => v.toFixed(2));
}

/** "epoch 3/10  loss 0.2345  test loss 0.2012  test accuracy 94.12%  61,234 samples/s  0.98 s  test 0.12 s": the
 *  samples/s and the first seconds count training only, "test" the validation after it. */
export function epochLine(report: EpochReport, epochs: number): string {
  const parts = [`epoch ${report.epoch}/${epochs}`, `loss ${loss(report.loss)}`];
  if (report.validation) parts.push(`test loss ${loss(report.validation.loss)}`);
  if (report.validation?.accuracy !== undefined) parts.push(`test accuracy ${percent(report.validation.accuracy)}`);
  parts.push(`${rate(report.samplesPerSecond)} samples/s`, `${seconds(report.seconds)} s`);
  if (report.validationSeconds !== undefined) parts.push(`test ${seconds(report.validationSeconds)} s`);
  if (report.stop) parts.push(`(stopped: ${report.stop})`);
  return parts.join("  ");
}
