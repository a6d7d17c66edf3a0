// `downpour eval`: a saved model's loss and metrics on a dataset (MNIST's test set, the digits' or the synthetic
// preset's held-out rows, or a file), its inputs scaled as in training; a table (with a classifier's confusion matrix)
// or JSON. A model trained on hashed CSV columns (--hash-features) hashes the --data CSV as its training did.
import { type Command, Option } from "commander";
import { readCsvHashed } from "../../data/hash-features.js";
import type { Model } from "../../api/models.js";
import type { Dataset } from "../../data/dataset.js";
import { isSparse, type SparseDataset } from "../../data/sparse.js";
import type { ClassificationMetrics, RegressionMetrics } from "../../train/metrics.js";
import {
  dataSource, digitsSets, findMnistSets, isFile, mnistPlaces, PRESETS, readDataFile, readSparseDataFile, syntheticTestData, type DataSource,
} from "../datasets.js";
import { CliError } from "../errors.js";
import { type CliIO, inputPath } from "../io.js";
import { hashedReadOptions, loadTrainedModel, refuseColumnFlags, type Preprocess } from "../model-file.js";
import { parseInteger } from "../parse.js";
import { applyScaling } from "../scaling.js";
import { evaluationTable } from "../summary.js";
import { checkTargets } from "../training-data.js";
import { evaluationReadOptions, labelColumnOption, modelFileOption, type ReadFlags, readOptions } from "./shared.js";

export interface EvalFlags extends ReadFlags {
  model: string;
  data?: string;
  classes?: number;
  json?: boolean;
}

export interface EvalResult {
  readonly model: string;
  readonly kind: string;
  readonly data: string;
  readonly samples: number;
  readonly loss: number;
  /** Absent for regression and auto-encoders. */
  readonly accuracy?: number;
  /** A classifier's accuracy, macro precision/recall/F1, per-class figures, confusion matrix and (two classes) ROC
   *  AUC; a regression's or an auto-encoder's MAE, RMSE and R². In the JSON output a NaN or infinite figure is
   *  null (JSON has neither). */
  readonly metrics?: ClassificationMetrics | RegressionMetrics;
}

/** Evaluates the model file on --data (default: the preset it was trained on); prints a table or JSON to io.stdout. */
export async function runEval(flags: EvalFlags, io: CliIO): Promise<EvalResult> {
  const file = inputPath(io, flags.model);
  const { model, preprocess } = await loadTrainedModel(file);
  try {
    const data = await evaluationData(flags, preprocess, model, io);
    const evaluation = model.evaluate(isSparse(data.dataset) ? data.dataset : applyScaling(data.dataset, preprocess.scaling));
    const reconstruction = model.kind === "AutoEncoder";
    const accuracy = reconstruction ? undefined : evaluation.accuracy;
    // an auto-encoder is scored as a regression of its inputs, whatever its output layer looks like
    const metrics = reconstruction && evaluation.metrics?.task === "classification" ? undefined : evaluation.metrics;
    const result: EvalResult = {
      model: file,
      kind: model.kind,
      data: data.name,
      samples: evaluation.samples,
      loss: evaluation.loss,
      ...(accuracy !== undefined ? { accuracy } : {}),
      ...(metrics ? { metrics } : {}),
    };
    const shown = { loss: evaluation.loss, samples: evaluation.samples, accuracy, ...(metrics ? { metrics } : {}) };
    io.stdout(flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${evaluationTable(flags.model, data.name, shown)}\n`);
    return result;
  } finally {
    model.dispose();
  }
}

async function evaluationData(
  flags: EvalFlags,
  preprocess: Partial<Preprocess>,
  model: Model,
  io: CliIO,
): Promise<{ dataset: Dataset | SparseDataset; name: string }> {
  const preset = (PRESETS as readonly (string | undefined)[]).includes(preprocess.data) ? preprocess.data : undefined;
  const arg = flags.data ?? preset;
  if (arg === undefined)
    throw new CliError(
      `the model was trained on ${preprocess.data ?? "unrecorded data"}: give the evaluation data with --data <path|mnist|digits>`,
    );
  const source = await dataSource(arg, io.cwd, "--data", flags.format);
  if (model.network.spec.sparseInputs) return sparseEvaluationData(flags, source, preprocess, model);
  if (isFile(source)) {
    const dataset = await readDataFile(source, evaluationReadOptions(flags, preprocess, model));
    checkTargets(model.network.spec, dataset, { source, name: source.name });
    if (dataset.features !== model.network.inputs) {
      throw new CliError(
        `${source.name}: ${dataset.features} feature columns, the model takes ${model.network.inputs} inputs (choose the columns with --features or --label-column)`,
      );
    }
    return { dataset, name: source.name };
  }
  if (source.kind === "synthetic") return { dataset: syntheticTestData(), name: "synthetic (held-out rows)" };
  if (source.kind === "digits") return { dataset: (await digitsSets()).test, name: "digits (held-out rows)" };
  const sets = await findMnistSets(io.env);
  if (!sets) throw new CliError(`MNIST is not in ${mnistPlaces(io.env)}; get it with: downpour data mnist`);
  return { dataset: sets.test, name: "mnist test set" };
}

/** A model with a sparse first layer (trained with --sparse) reads its libsvm --data sparse, as training did; one
 *  trained with --hash-features hashes its CSV --data as training did. */
async function sparseEvaluationData(
  flags: EvalFlags, source: DataSource, preprocess: Partial<Preprocess>, model: Model,
): Promise<{ dataset: SparseDataset; name: string }> {
  const hashed = hashedReadOptions(preprocess, flags.model, { header: flags.header, delimiter: flags.delimiter, comment: flags.comment, classes: flags.classes });
  const what = hashed ? `--model ${flags.model} (hashed CSV columns, trained with --hash-features)` : `--model ${flags.model} (sparse inputs, trained with --sparse)`;
  if (!isFile(source)) throw new CliError(`${what}: --data ${source.name} is a preset, read dense; give the ${hashed ? "CSV file to evaluate with --data FILE.csv" : "libsvm file to evaluate with --data FILE.svm"}`);
  if (hashed) refuseColumnFlags(flags, what);
  if (hashed && source.format !== "csv") {
    throw new CliError(`${what}: --data ${source.name} is read as ${source.format} (chosen by ${source.how}), but the model hashes CSV columns; give a CSV file, or --format csv`);
  }
  const dataset = hashed ? await readCsvHashed(source.path, hashed) : await readSparseDataFile(source, evaluationReadOptions(flags, preprocess, model), what);
  checkTargets(model.network.spec, dataset, { source, name: source.name });
  return { dataset, name: source.name };
}

/** Adds `eval` to the program. */
export function registerEval(program: Command, io: CliIO): void {
  const command = program
    .command("eval")
    .description(
      "loss and metrics of a saved model on a dataset: a classifier's accuracy, precision, recall, F1, ROC AUC (two classes) and confusion matrix; a regression's MAE, RMSE and R²",
    )
    .addOption(modelFileOption())
    .option(
      "--data <path|preset>",
      "evaluation data: mnist (its test set), digits or synthetic (their held-out rows), or a data file (default: the preset the model was trained on)",
    )
    .addOption(labelColumnOption("the CSV label column (default: as in training, else the last)"))
    .addOption(
      new Option("--classes <n>", "labels are class indices in [0, n) (default: the model's outputs when it has several)").argParser(
        parseInteger,
      ),
    )
    .option("--json", "print the result as JSON (a NaN or infinite figure as null)")
    .action(async (flags: EvalFlags) => {
      await runEval(flags, io);
    });
  for (const option of readOptions("as in training, else all but the label")) command.addOption(option);
}
