// `downpour predict`: streams a data file's feature rows through a saved model chunk by chunk (CSV rows are read as
// they come, so the file need not fit in memory), scaling inputs as in training, and writes a CSV of outputs (and
// the argmax class) to a file or stdout (`--output -`). The file's format is decided as train and eval decide it;
// the output is checked before any work (never an input), and an input without rows is an error. A model trained
// on hashed CSV columns (--hash-features) hashes the --input CSV as its training did, streamed chunk by chunk.
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { readCsvHeader, readCsvRows } from "../../data/csv.js";
import { streamCsvHashed, type HashedCsvOptions } from "../../data/hash-features.js";
import { readLibsvmSparse } from "../../data/libsvm.js";
import { sparseRows } from "../../data/sparse.js";
import type { Model } from "../../api/models.js";
import { fileSource, readDataFile, type FileSource } from "../datasets.js";
import { CliError } from "../errors.js";
import { AtomicFile } from "../files.js";
import { ignoredDataSettings } from "../build-model.js";
import type { Sources } from "../config.js";
import { inputPath, type CliIO } from "../io.js";
import { hashedReadOptions, loadTrainedModel, refuseColumnFlags } from "../model-file.js";
import { checkOutputs, namedFile, type NamedFile } from "../outputs.js";
import { parseFilePath } from "../parse.js";
import { flagName } from "../settings.js";
import { scaleRows, type Scaling } from "../scaling.js";
import { FLAG_NAMES, labelColumnOption, modelFileOption, readOptions, type ReadFlags } from "./shared.js";

/** Rows predicted at a time. */
export const PREDICT_CHUNK = 1024;

export interface PredictFlags extends ReadFlags {
  model: string;
  input: string;
  output?: string;
  classes?: boolean;
}

/** Where output text goes: io.stdout or an atomically written file. */
interface Sink {
  write(text: string): Promise<void>;
}

/** --output's value that means stdout. */
export const STDOUT = "-";

/**
 * Predicts every row of --input; resolves with the row count and the output file (if any). The output is checked
 * before anything is read (not an input, a writable file path); an input without rows is an error.
 */
export async function runPredict(flags: PredictFlags, io: CliIO): Promise<{ rows: number; output?: string }> {
  const toFile = flags.output !== undefined && flags.output !== STDOUT;
  if (toFile) await checkOutputs([namedFile("--output", "--output", flags.output!, resolve(io.cwd, flags.output!))], predictInputs(flags, io.cwd));
  const { model, preprocess } = await loadTrainedModel(inputPath(io, flags.model));
  try {
    const source = await fileSource(flags.input, inputPath(io, flags.input), flags.format);
    const sparse = model.network.spec.sparseInputs === true;
    const hashed = sparse ? hashedReadOptions(preprocess, flags.model, { header: flags.header, delimiter: flags.delimiter, comment: flags.comment }) : undefined;
    if (hashed) requireHashedInput(source, flags);
    else if (sparse) requireSparseInput(source, flags.model);
    const ignored = hashed ? undefined : ignoredDataSettings(source, givenReadFlags(flags));
    if (ignored) io.stderr(`downpour: warning: ${ignored}\n`);
    const output = toFile ? await AtomicFile.create(resolve(io.cwd, flags.output!)) : undefined;
    const sink: Sink = output ?? { write: async (text) => io.stdout(text) };
    try {
      const rows = hashed
        ? await predictHashedRows(model, flags, source, hashed, sink)
        : sparse
          ? await predictSparseRows(model, flags, source, sink)
          : await predictRows(model, preprocess.scaling, flags, source, sink);
      await output?.commit();
      return { rows, ...(output ? { output: output.path } : {}) };
    } catch (error) {
      await output?.abort();
      throw error;
    }
  } finally {
    model.dispose();
  }
}

/** A model with a sparse first layer (trained with --sparse) predicts libsvm rows, read sparse. */
function requireSparseInput(source: FileSource, file: string): void {
  if (source.format === "libsvm") return;
  throw new CliError(
    `--input ${source.name}: the model ${file} takes sparse inputs (trained with --sparse), so its rows must be libsvm (index:value pairs), but this one is read as ${source.format} (chosen by ${source.how}); give a .libsvm or .svm file, or --format libsvm`,
  );
}

/** A model trained on hashed CSV columns predicts CSV rows of its training file's columns (--features and
 *  --label-column cannot choose others). */
function requireHashedInput(source: FileSource, flags: PredictFlags): void {
  const what = `the model ${flags.model} (hashed CSV columns, trained with --hash-features)`;
  refuseColumnFlags(flags, what);
  if (source.format === "csv") return;
  throw new CliError(`--input ${source.name}: ${what} hashes the columns of CSV rows, but this one is read as ${source.format} (chosen by ${source.how}); give a .csv file, or --format csv`);
}

/** predictRows for a hashed model: the CSV hashed as training did (the label fields are not read), chunk by chunk. */
async function predictHashedRows(model: Model, flags: PredictFlags, source: FileSource, hashed: HashedCsvOptions, sink: Sink): Promise<number> {
  const outputs = model.network.outputs;
  const header = `${[...Array.from({ length: outputs }, (_, j) => `output${j}`), ...(flags.classes ? ["class"] : [])].join(",")}\n`;
  let total = 0;
  for await (const chunk of streamCsvHashed(source.path, { ...hashed, ignoreLabels: true, chunkRows: PREDICT_CHUNK })) {
    const y = model.predictSparse(chunk);
    await sink.write(`${total === 0 ? header : ""}${formatRows(y, chunk.size, outputs, flags.classes ?? false)}`);
    total += chunk.size;
  }
  return total;
}

/** predictRows for a sparse model: the libsvm rows read sparse (their labels are ignored), predicted chunk by chunk. */
async function predictSparseRows(model: Model, flags: PredictFlags, source: FileSource, sink: Sink): Promise<number> {
  const outputs = model.network.outputs;
  const data = await readLibsvmSparse(source.path, { features: model.network.inputs });
  const header = `${[...Array.from({ length: outputs }, (_, j) => `output${j}`), ...(flags.classes ? ["class"] : [])].join(",")}\n`;
  for (let r0 = 0; r0 < data.size; r0 += PREDICT_CHUNK) {
    const count = Math.min(PREDICT_CHUNK, data.size - r0);
    const y = model.predictSparse(sparseRows(data, r0, r0 + count));
    await sink.write(`${r0 === 0 ? header : ""}${formatRows(y, count, outputs, flags.classes ?? false)}`);
  }
  return data.size;
}

/** The files predict reads, which --output must not be. */
function predictInputs(flags: PredictFlags, cwd: string): NamedFile[] {
  return [namedFile("--input", "--input", flags.input, resolve(cwd, flags.input)), namedFile("--model", "--model", flags.model, resolve(cwd, flags.model))];
}

/** The reading flags given, named as typed (for the warning about those the input's format does not use). */
function givenReadFlags(flags: PredictFlags): Sources {
  const sources: Sources = {};
  for (const key of ["labelColumn", "features", "delimiter", "comment"] as const) if (flags[key] !== undefined) sources[key] = flagName(key);
  if (flags.header !== undefined) sources.header = flags.header ? "--header" : "--no-header";
  return sources;
}

/** Writes the header and the outputs of every row; the header only once a row is read, so an empty input writes nothing. */
async function predictRows(model: Model, scaling: Scaling | undefined, flags: PredictFlags, source: FileSource, sink: Sink): Promise<number> {
  const inputs = model.network.inputs;
  const outputs = model.network.outputs;
  const header = `${[...Array.from({ length: outputs }, (_, j) => `output${j}`), ...(flags.classes ? ["class"] : [])].join(",")}\n`;
  const chunk = new Float32Array(PREDICT_CHUNK * inputs);
  let filled = 0;
  let total = 0;
  const flush = async () => {
    const y = model.predict(scaleRows(chunk.slice(0, filled * inputs), inputs, scaling), filled);
    await sink.write(`${total === 0 ? header : ""}${formatRows(y, filled, outputs, flags.classes ?? false)}`);
    total += filled;
    filled = 0;
  };
  for await (const features of featureRows(source, flags, inputs)) {
    chunk.set(features, filled * inputs);
    if (++filled === PREDICT_CHUNK) await flush();
  }
  if (filled > 0) await flush();
  if (total === 0) throw new CliError(`${source.name}: no rows to predict`);
  return total;
}

/** The input rows' features: CSV streamed row by row (--features, or all but --label-column); libsvm and idx read whole. */
async function* featureRows(source: FileSource, flags: PredictFlags, inputs: number): AsyncGenerator<ArrayLike<number>> {
  if (source.format !== "csv") {
    const data = await readDataFile(source, { features: inputs, noLabel: true });
    if (data.features !== inputs) throw new CliError(`${source.name}: rows of ${data.features} values, the model takes ${inputs} inputs`);
    for (let r = 0; r < data.size; r++) yield data.x.subarray(r * inputs, (r + 1) * inputs);
    return;
  }
  const csv = { header: flags.header ?? "auto", delimiter: flags.delimiter, comment: flags.comment, optionNames: FLAG_NAMES } as const;
  const dropIndex = flags.labelColumn === undefined ? undefined : await labelIndex(source, flags.labelColumn, csv);
  if (dropIndex !== undefined && flags.features !== undefined) throw new CliError("--features and --label-column both choose the input columns; give one of them");
  const rows = readCsvRows(source.path, csv);
  for await (const { line, values } of withFormatHint(rows, source)) yield rowFeatures(values, { dropIndex, columns: flags.features }, { input: source.path, line, inputs });
}

/** The rows, with a parse error's message saying the file was read as CSV and how to choose another format. */
async function* withFormatHint<T>(rows: AsyncGenerator<T>, source: FileSource): AsyncGenerator<T> {
  try {
    yield* rows;
  } catch (error) {
    if (error instanceof Error && "line" in error && error.line !== undefined && !(error instanceof CliError)) {
      error.message += ` (read as csv, chosen by ${source.how}; choose another with --format csv|libsvm|idx)`;
    }
    throw error;
  }
}

/** The row's features (the --features columns, or all but the label column), checked against the model's input count. */
function rowFeatures(
  values: number[], pick: { dropIndex?: number; columns?: readonly number[] }, at: { input: string; line: number; inputs: number },
): number[] {
  if (pick.columns) {
    const outside = pick.columns.find((j) => j >= values.length);
    if (outside !== undefined) throw new CliError(`${at.input} line ${at.line}: --features names column ${outside}, but the row has ${values.length} columns (0-${values.length - 1})`);
  }
  const index = pick.dropIndex === undefined ? undefined : pick.dropIndex < 0 ? values.length + pick.dropIndex : pick.dropIndex;
  if (index !== undefined && (index < 0 || index >= values.length)) {
    throw new CliError(`${at.input} line ${at.line}: --label-column ${pick.dropIndex} is not one of the row's ${values.length} columns`);
  }
  const features = pick.columns ? pick.columns.map((j) => values[j]!) : index === undefined ? values : values.filter((_, j) => j !== index);
  if (features.length !== at.inputs) {
    const flag = pick.columns ? "--features" : "";
    const hint = flag ? ` (from ${flag})` : index === undefined && features.length === at.inputs + 1 ? " (drop a label column with --label-column, or choose the inputs with --features)" : "";
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

/** The index (maybe negative) of the label column: given, or found by name in the header the CSV reader detects. */
async function labelIndex(source: FileSource, column: number | string, csv: Parameters<typeof readCsvHeader>[1]): Promise<number> {
  if (typeof column === "number") return column;
  const names = await readCsvHeader(source.path, csv);
  if (!names) throw new CliError(`${source.path}: --label-column ${JSON.stringify(column)} names a header column, but the file has no header`);
  const index = names.indexOf(column);
  if (index < 0) throw new CliError(`${source.path}: --label-column: no header column is named ${JSON.stringify(column)}; the header has ${names.map((n) => JSON.stringify(n)).join(", ")}`);
  return index;
}

/** Adds `predict` to the program. */
export function registerPredict(program: Command, io: CliIO): void {
  const command = program
    .command("predict")
    .description("run a saved model over the rows of a data file (CSV, one column or more; libsvm; idx); writes a CSV of outputs (output0,...)")
    .addOption(modelFileOption())
    .requiredOption("--input <file>", "feature rows: CSV (header auto-detected, read in chunks), libsvm or idx, detected as train detects it")
    .addOption(new Option("--output <out.csv>", "where to write the outputs; - for stdout (default: stdout)").argParser(parseFilePath))
    .addOption(labelColumnOption("a CSV column to drop before predicting: 0-based index (negative from the end) or header name (default: none)"))
    .addOption(new Option("--classes", "add a class column: the argmax of the outputs (0/1 at 0.5 for one output)"))
    .action(async (flags: PredictFlags) => {
      await runPredict(flags, io);
    });
  for (const option of readOptions("all columns")) command.addOption(option);
}
