// `downpour predict`: streams a CSV of feature rows through a saved model chunk by chunk (so the file need not fit in
// memory), scaling inputs as in training, and writes a CSV of outputs (and the argmax class) to a file or stdout.
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { readCsvRows } from "../../data/index.js";
import { readLines } from "../../data/files.js";
import type { Model } from "../../model/models.js";
import { CliError } from "../errors.js";
import { AtomicFile } from "../files.js";
import { inputPath, type CliIO } from "../io.js";
import { loadTrainedModel } from "../model-file.js";
import { scaleRows, type Scaling } from "../scaling.js";
import { headerOptions, labelColumnOption, modelFileOption } from "./shared.js";

/** Rows predicted at a time. */
export const PREDICT_CHUNK = 1024;

export interface PredictFlags {
  model: string;
  input: string;
  output?: string;
  labelColumn?: number | string;
  header?: boolean;
  classes?: boolean;
}

/** Where output text goes: io.stdout or an atomically written file. */
interface Sink {
  write(text: string): Promise<void>;
}

/** Predicts every row of --input; resolves with the row count and the output file (if any). */
export async function runPredict(flags: PredictFlags, io: CliIO): Promise<{ rows: number; output?: string }> {
  const { model, preprocess } = await loadTrainedModel(inputPath(io, flags.model));
  const output = flags.output === undefined ? undefined : await AtomicFile.create(resolve(io.cwd, flags.output));
  const sink: Sink = output ?? { write: async (text) => io.stdout(text) };
  try {
    const rows = await predictRows(model, preprocess.scaling, flags, inputPath(io, flags.input), sink);
    await output?.commit();
    return { rows, ...(output ? { output: output.path } : {}) };
  } catch (error) {
    await output?.abort();
    throw error;
  } finally {
    model.dispose();
  }
}

async function predictRows(model: Model, scaling: Scaling | undefined, flags: PredictFlags, input: string, sink: Sink): Promise<number> {
  const inputs = model.network.inputs;
  const outputs = model.network.outputs;
  const dropIndex = flags.labelColumn === undefined ? undefined : await labelIndex(input, flags.labelColumn, flags.header);
  await sink.write(`${[...Array.from({ length: outputs }, (_, j) => `output${j}`), ...(flags.classes ? ["class"] : [])].join(",")}\n`);
  const chunk = new Float32Array(PREDICT_CHUNK * inputs);
  let filled = 0;
  let total = 0;
  const flush = async () => {
    const y = model.predict(scaleRows(chunk.slice(0, filled * inputs), inputs, scaling), filled);
    await sink.write(formatRows(y, filled, outputs, flags.classes ?? false));
    total += filled;
    filled = 0;
  };
  for await (const { line, values } of readCsvRows(input, { header: flags.header ?? "auto" })) {
    const features = rowFeatures(values, dropIndex, { input, line, inputs });
    chunk.set(features, filled * inputs);
    if (++filled === PREDICT_CHUNK) await flush();
  }
  if (filled > 0) await flush();
  return total;
}

/** The row's values without the label column, checked against the model's input count. */
function rowFeatures(values: number[], dropIndex: number | undefined, at: { input: string; line: number; inputs: number }): number[] {
  const index = dropIndex === undefined ? undefined : dropIndex < 0 ? values.length + dropIndex : dropIndex;
  if (index !== undefined && (index < 0 || index >= values.length)) {
    throw new CliError(`${at.input} line ${at.line}: --label-column ${dropIndex} is not one of the row's ${values.length} columns`);
  }
  const features = index === undefined ? values : values.filter((_, j) => j !== index);
  if (features.length !== at.inputs) {
    const hint = index === undefined && features.length === at.inputs + 1 ? " (drop a label column with --label-column)" : "";
    throw new CliError(`${at.input} line ${at.line}: ${features.length} values, the model takes ${at.inputs} inputs${hint}`);
  }
  return features;
}

/** CSV lines of `rows` outputs (7 significant digits: a float32's precision), with the argmax class if asked. */
export function formatRows(y: Float32Array, rows: number, outputs: number, classes: boolean): string {
  let text = "";
  for (let r = 0; r < rows; r++) {
    const row = y.subarray(r * outputs, (r + 1) * outputs);
    const cells = Array.from(row, (v) => String(Number(v.toPrecision(7))));
    if (classes) cells.push(String(outputs === 1 ? (row[0]! >= 0.5 ? 1 : 0) : argmax(row)));
    text += `${cells.join(",")}\n`;
  }
  return text;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j]! > row[best]!) best = j;
  return best;
}

/** The index (maybe negative) of the label column: given, or found by name in the file's header. */
async function labelIndex(input: string, column: number | string, header: boolean | undefined): Promise<number> {
  if (typeof column === "number") return column;
  const names = await headerNames(input, header);
  if (!names) throw new CliError(`${input}: --label-column ${JSON.stringify(column)} names a header column, but the file has no header`);
  const index = names.indexOf(column);
  if (index < 0) throw new CliError(`${input}: no header column is named ${JSON.stringify(column)}; the header has ${names.map((n) => JSON.stringify(n)).join(", ")}`);
  return index;
}

/** The first non-blank line's fields when it is a header (given, or detected: not all numbers). */
async function headerNames(input: string, header: boolean | undefined): Promise<string[] | undefined> {
  if (header === false) return undefined;
  for await (const { text } of readLines(input)) {
    if (text.trim() === "") continue;
    const fields = text.split(",").map((f) => f.trim().replace(/^"(.*)"$/, "$1").trim());
    return header === true || fields.some((f) => f === "" || Number.isNaN(Number(f))) ? fields : undefined;
  }
  return undefined;
}

/** Adds `predict` to the program. */
export function registerPredict(program: Command, io: CliIO): void {
  const command = program
    .command("predict")
    .description("run a saved model over the rows of a CSV file; writes a CSV of outputs (output0,...)")
    .addOption(modelFileOption())
    .requiredOption("--input <in.csv>", "CSV of feature rows (header auto-detected), read in chunks")
    .option("--output <out.csv>", "where to write the outputs (default: stdout)")
    .addOption(labelColumnOption("a column to drop before predicting: 0-based index (negative from the end) or header name (default: none)"))
    .addOption(new Option("--classes", "add a class column: the argmax of the outputs (0/1 at 0.5 for one output)"))
    .action(async (flags: PredictFlags) => {
      await runPredict(flags, io);
    });
  for (const option of headerOptions()) command.addOption(option);
}
