// What eval and predict share: the default model file, and flags for reading data files with a model's settings.
import { Option } from "commander";
import type { Model } from "../../api/models.js";
import type { FileFormat, ReadOptions } from "../datasets.js";
import type { Preprocess } from "../model-file.js";
import { parseColumn, parseColumns, parseDelimiter } from "../parse.js";
import { DEFAULT_SETTINGS, FORMATS } from "../settings.js";

/** Where train saves by default, and so where eval and predict look by default. */
export const DEFAULT_MODEL_FILE = DEFAULT_SETTINGS.save as string;

/** The data-reading flags eval and predict take. */
export interface ReadFlags {
  format?: FileFormat;
  labelColumn?: number | string;
  features?: number[];
  delimiter?: string;
  comment?: string;
  header?: boolean;
}

export function modelFileOption(): Option {
  return new Option("--model <file>", "model file written by downpour train").default(DEFAULT_MODEL_FILE);
}

export function labelColumnOption(help: string): Option {
  return new Option("--label-column <index|name>", help).argParser(parseColumn);
}

/** --format, --features, --delimiter, --comment, --header / --no-header; `defaults` says where unset values come from. */
export function readOptions(defaults: string): Option[] {
  return [
    new Option("--format <format>", "how the file is read (default: by extension; .txt by content: index:value tokens make it libsvm, else csv)").choices(FORMATS),
    new Option("--features <columns>", `the CSV's input columns, 0-based, like 0-7 or 1,2,5 (default: ${defaults})`).argParser(parseColumns),
    new Option("--delimiter <char>", `the CSV field separator, one character; \\t for tab (default: ${defaults === "all columns" ? "," : "as in training, else ,"})`).argParser(parseDelimiter),
    new Option("--comment <prefix>", "skip CSV lines starting with this, like '#' (default: none)"),
    new Option("--header", "the CSV's first line is a header (default: auto-detected)"),
    new Option("--no-header", "the CSV's first line is data"),
  ];
}

/** How messages name the reading flags. */
export const FLAG_NAMES = { labelColumn: "--label-column", featureColumns: "--features", delimiter: "--delimiter", comment: "--comment" } as const;

/** How to read an evaluation file: the flags given, else what training recorded, else the classes the model outputs. */
export function evaluationReadOptions(flags: ReadFlags & { classes?: number }, preprocess: Partial<Preprocess>, model: Model): ReadOptions {
  const outputs = model.network.outputs;
  const autoencoder = model.kind === "AutoEncoder";
  const inferred = !autoencoder && outputs > 1 ? outputs : undefined;
  return {
    labelColumn: flags.labelColumn ?? preprocess.labelColumn,
    noLabel: autoencoder,
    header: flags.header,
    classes: flags.classes ?? preprocess.classes ?? inferred,
    features: model.network.inputs,
    featureColumns: flags.features ?? preprocess.featureColumns,
    delimiter: flags.delimiter ?? preprocess.delimiter,
    comment: flags.comment ?? preprocess.comment,
    names: FLAG_NAMES,
  };
}
