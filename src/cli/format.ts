// How numbers read in the CLI's tables and lines: losses, accuracies, rates and times; "-" for what is missing.
import type { EpochReport } from "../train/trainer.js";

export const MISSING = "-";

export function loss(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? MISSING : value.toFixed(4);
}

export function percent(value: number | undefined): string {
  return value === undefined ? MISSING : `${(100 * value).toFixed(2)}%`;
}

export function rate(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : MISSING;
}

export function seconds(value: number): string {
  return value.toFixed(2);
}

/** "epoch 3/10  loss 0.2345  test loss 0.2012  test accuracy 94.12%  61,234 samples/s  0.98 s". */
export function epochLine(report: EpochReport, epochs: number): string {
  const parts = [`epoch ${report.epoch}/${epochs}`, `loss ${loss(report.loss)}`];
  if (report.validation) parts.push(`test loss ${loss(report.validation.loss)}`);
  if (report.validation?.accuracy !== undefined) parts.push(`test accuracy ${percent(report.validation.accuracy)}`);
  parts.push(`${rate(report.samplesPerSecond)} samples/s`, `${seconds(report.seconds)} s`);
  if (report.stop) parts.push(`(stopped: ${report.stop})`);
  return parts.join("  ");
}
