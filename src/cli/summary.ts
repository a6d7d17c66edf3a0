// Tables printed after training (one row per epoch) and after evaluation, drawn with cli-table3 without colour.
import Table from "cli-table3";
import type { Evaluation } from "../train/evaluate.js";
import type { EpochReport } from "../train/trainer.js";
import { MISSING, loss, percent, rate, seconds } from "./format.js";

const PLAIN = { style: { head: [], border: [] } };

/** epoch | loss | test loss | test accuracy | samples/s | seconds. */
export function epochTable(reports: readonly EpochReport[]): string {
  const table = new Table({ ...PLAIN, head: ["epoch", "loss", "test loss", "test accuracy", "samples/s", "seconds"], colAligns: ["right", "right", "right", "right", "right", "right"] });
  for (const r of reports) {
    table.push([r.epoch, loss(r.loss), loss(r.validation?.loss), percent(r.validation?.accuracy), rate(r.samplesPerSecond), seconds(r.seconds)]);
  }
  return table.toString();
}

/** model | data | samples | loss | accuracy. */
export function evaluationTable(model: string, data: string, evaluation: Evaluation): string {
  const table = new Table({ ...PLAIN, head: ["model", "data", "samples", "loss", "accuracy"] });
  table.push([model, data, evaluation.samples, loss(evaluation.loss), evaluation.accuracy === undefined ? MISSING : percent(evaluation.accuracy)]);
  return table.toString();
}
