// Tables printed after training (a row per epoch, or the first, best and last of them) and after evaluation, drawn
// with cli-table3 without colour.
import Table from "cli-table3";
import type { Evaluation } from "../train/evaluate.js";
import type { EpochReport } from "../train/trainer.js";
import { MISSING, loss, percent, rate, seconds } from "./format.js";

const PLAIN = { style: { head: [], border: [] } };

const ELLIPSIS = "…";

/** epoch | loss | test loss | test accuracy | samples/s | seconds: every epoch, or (`short`) the first, best and last
 * with an ellipsis row for each gap, then a line saying which epoch was best and how to see them all. */
export function epochTable(reports: readonly EpochReport[], short = false): string {
  const table = new Table({ ...PLAIN, head: ["epoch", "loss", "test loss", "test accuracy", "samples/s", "seconds"], colAligns: ["right", "right", "right", "right", "right", "right"] });
  const best = bestEpoch(reports);
  const shown = short ? [...new Set([0, best.index, reports.length - 1])].filter((i) => i >= 0).sort((a, b) => a - b) : reports.map((_, i) => i);
  shown.forEach((i, k) => {
    if (k > 0 && i > shown[k - 1]! + 1) table.push(Array.from({ length: 6 }, () => ELLIPSIS));
    const r = reports[i]!;
    table.push([r.epoch, loss(r.loss), loss(r.validation?.loss), percent(r.validation?.accuracy), rate(r.samplesPerSecond), seconds(r.seconds)]);
  });
  const hidden = reports.length - shown.length;
  if (!short || hidden === 0) return table.toString();
  return `${table.toString()}
${reports.length} epochs: the first, the best (epoch ${reports[best.index]!.epoch}, by ${best.by}) and the last; --summary all shows every one`;
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

/** model | data | samples | loss | accuracy. */
export function evaluationTable(model: string, data: string, evaluation: Evaluation): string {
  const table = new Table({ ...PLAIN, head: ["model", "data", "samples", "loss", "accuracy"] });
  table.push([model, data, evaluation.samples, loss(evaluation.loss), evaluation.accuracy === undefined ? MISSING : percent(evaluation.accuracy)]);
  return table.toString();
}
