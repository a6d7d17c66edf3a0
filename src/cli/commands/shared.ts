// What eval and predict share: the default model file, and flags for reading data files with a model's settings.
import { Option } from "commander";
import type { Model } from "../../model/models.js";
import type { ReadOptions } from "../datasets.js";
import type { Preprocess } from "../model-file.js";
import { parseColumn } from "../parse.js";
import { DEFAULT_SETTINGS } from "../settings.js";

/** Where train saves by default, and so where eval and predict look by default. */
export const DEFAULT_MODEL_FILE = DEFAULT_SETTINGS.save as string;

export function modelFileOption(): Option {
  return new Option("--model <file>", "model file written by downpour train").default(DEFAULT_MODEL_FILE);
}

export function labelColumnOption(help: string): Option {
  return new Option("--label-column <index|name>", help).argParser(parseColumn);
}

export function headerOptions(): Option[] {
  return [
    new Option("--header", "the CSV's first line is a header (default: auto-detected)"),
    new Option("--no-header", "the CSV's first line is data"),
  ];
}

/** How to read an evaluation file: the flags given, else what training recorded, else the classes the model outputs. */
export function evaluationReadOptions(
  flags: { labelColumn?: number | string; header?: boolean; classes?: number },
  preprocess: Partial<Preprocess>,
  model: Model,
): ReadOptions {
  const outputs = model.network.outputs;
  const inferred = model.kind !== "AutoEncoder" && outputs > 1 ? outputs : undefined;
  return {
    labelColumn: flags.labelColumn ?? preprocess.labelColumn,
    header: flags.header,
    classes: flags.classes ?? preprocess.classes ?? inferred,
    features: model.network.inputs,
  };
}
