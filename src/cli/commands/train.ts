// `downpour train`: merge the settings, check the outputs (before any work), read the data, build the model, train it
// on all cores with progress, then print the per-epoch summary (or JSON) and write the model file and the curves.
// With --stream (sparse rows), each epoch is one pass over the file, a fit of one epoch per chunk.
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { type Command, Option } from "commander";
import type { Model, ModelKind } from "../../api/models.js";
import type { Dataset } from "../../data/dataset.js";
import type { SparseDataset } from "../../data/sparse.js";
import { detectPlatform } from "../../runtime/platform.js";
import type { ResolvedTrainOptions, TrainOptions } from "../../train/options.js";
import type { EpochReport, TrainProgress } from "../../train/trainer.js";
import { asMemoryLimitAdvice, checkModelSettings, createModel, ignoredDataSettings, ignoredSettings } from "../build-model.js";
import {
  checkKeeping, checkNeedsTestSet, checkpointOutput, checkResume, openResume, resumedData, resumedModel, resumedOptions, resumedSettings, resumeLine, runPlan,
  TrainingRun, type Resume,
} from "../checkpoints.js";
import { resolveSettings, type ResolvedSettings, type Sources, type TrainFlags } from "../config.js";
import { writeCurves } from "../curves.js";
import { PRESETS } from "../datasets.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { hashedReadOptions, preprocessOf, saveTrainedModel, type HashedInputs } from "../model-file.js";
import { checkOutputs, namedFile, rescuePlaces, writeModelOrRescue, type NamedFile } from "../outputs.js";
import {
  parseByteSize, parseColumn, parseColumns, parseDelimiter, parseFilePath, parseHashWidth, parseHoldout, parseInteger, parseIntegerList, parseNumber,
} from "../parse.js";
import { epochProgress, type EpochProgress } from "../progress.js";
import { SETTINGS, type SettingDef, type TrainSettings, type ValueType } from "../settings.js";
import { epochTable } from "../summary.js";
import { asCliTrainingError, capThreads, checkTrainOptions, ignoredOptimizerSettings, trainOptionsOf } from "../train-options.js";
import {
  checkStreamSettings, checkTargets, checkTrainingTargets, loadSparseTrainingData, loadStreamTrainingData, loadTrainingData, type SparseTrainingData,
  type StreamTrainingData, type TrainingData,
} from "../training-data.js";

/** What a run trains on: dense rows (scaled), or with --sparse libsvm rows kept sparse. */
export type AnyTrainingData = TrainingData | SparseTrainingData;

/** Whether the run's data is sparse (--sparse). */
export function isSparseData(data: AnyTrainingData): data is SparseTrainingData {
  return (data as SparseTrainingData).sparse === true;
}

export const DEFAULT_CURVES = "downpour-curves.svg";

/** What a train run produced. */
export interface TrainResult {
  readonly kind: ModelKind;
  readonly data: string;
  readonly reports: EpochReport[];
  readonly modelFile?: string;
  readonly curvesFile?: string;
}

/** Trains with the merged settings (and, with --resume, the file's model and training state); prints progress to
 *  io.stderr and the summary (or JSON) to io.stdout. Rejects with InterruptedError after a caught Ctrl-C. */
export async function runTrain(flags: TrainFlags, io: CliIO): Promise<TrainResult> {
  const given = hashedIsSparse(await resolveSettings(flags, io.cwd));
  refuseClusterSettings(given.sources);
  checkStreamSettings(given.settings, given.sources);
  const resume = await openResume(given.settings, given.sources, io.cwd);
  try {
    return await trainWith(flags, resume ? sparseIfResumed(resumedSettings(given, resume, io), resume) : given, resume, io);
  } finally {
    resume?.model.dispose();
  }
}

/** runTrain once the settings are merged (with --resume, completed from the file). */
async function trainWith(flags: TrainFlags, { settings, sources }: ResolvedSettings, resume: Resume | undefined, io: CliIO): Promise<TrainResult> {
  const cores = (await detectPlatform()).hardwareConcurrency();
  const asked = resume ? resumedOptions(resume, trainOptionsOf(settings)) : trainOptionsOf(settings);
  const { options, resolved, warning } = capThreads(asked, checkTrainOptions(asked, sources, cores), cores, settings.oversubscribe === true, sources);
  checkModelSettings(settings, sources);
  checkKeeping(settings, sources, io);
  if (resume) checkResume(resume, resolved, sources);
  warn(io, [warning, ...ignoredRunSettings(settings, sources, resolved)]);
  await checkOutputs(outputFiles(settings, sources, io.cwd), inputFiles(flags.config, settings, sources, io.cwd));
  if (settings.stream) return trainStreamed(settings, sources, options, resolved, io);
  const replay = resume && hashedReadOptions(resume.preprocess, resume.file); // resuming: hash as the file's training did
  const loaded = settings.sparse ? await loadSparseTrainingData(settings, sources, io, replay) : await loadTrainingData(settings, sources, io);
  const data = resume ? resumedAnyData(resume, loaded, sources, io) : loaded;
  checkNeedsTestSet(settings, sources, data.test !== undefined);
  warn(io, [ignoredDataSettings(data.source, sources)]);
  const model = resume ? resumedModel(resume, options) : await createModel(settings, shapeOf(data), options, sources);
  try {
    checkTrainingTargets(model.network.spec, data, settings, sources);
    io.stderr(`${describeRun(model, data, resolved)}\n`);
    if (resume) io.stderr(`${resumeLine(resume, resolved.epochs)}\n`);
    const progress = epochProgress(io, resolved.epochs, settings.quiet);
    const run = new TrainingRun(model, runPlan(settings, data, resolved.epochs, resume?.epochsDone ?? 0, io.cwd), io);
    // TrainingRun.fit passes its rows to Model.fit, which takes sparse rows too; it reads only their size itself.
    const reports = await run.fit(data.train as Dataset, { ...options, validation: data.test }, progress);
    const files = await writeOutputs(model, reports, data, settings, io);
    const result: TrainResult = { kind: model.kind, data: data.source.name, reports, ...files };
    io.stdout(settings.json ? `${JSON.stringify(result, null, 2)}\n` : `${epochTable(reports, shortSummary(settings, io))}\n`);
    return result;
  } catch (error) {
    throw asMemoryLimitAdvice(asCliTrainingError(error, sources), settings, shapeOf(data), sources, true);
  } finally {
    model.dispose();
  }
}

/** --hash-features implies --sparse (and stands for it in messages about sparse inputs). */
function hashedIsSparse(given: ResolvedSettings): ResolvedSettings {
  const { settings, sources } = given;
  if (settings.hashFeatures === undefined || settings.sparse) return given;
  return { settings: { ...settings, sparse: true }, sources: { ...sources, sparse: sources.hashFeatures ?? "--hash-features" } };
}

/**
 * train --stream: the model built for the file's features, then each epoch one pass over the file, every chunk
 * given to Model.fit for one epoch in turn (the optimizer state carries over; the learning-rate decay counts whole
 * passes), the test set evaluated after each pass; reported, printed and saved as a run of trainWith is.
 */
async function trainStreamed(settings: TrainSettings, sources: Sources, options: TrainOptions, resolved: ResolvedTrainOptions, io: CliIO): Promise<TrainResult> {
  const data = await loadStreamTrainingData(settings, sources, io);
  warn(io, [ignoredDataSettings(data.source, sources)]);
  const shape = { inputs: data.features, outputs: data.outputs, name: data.source.name };
  const model = await createModel(settings, shape, options, sources);
  try {
    if (data.test) checkTargets(model.network.spec, data.test, { source: data.source, name: data.test.name ?? "the test data" });
    const run = { source: data.source, train: { size: data.rows }, ...(data.test ? { test: data.test } : {}) };
    io.stderr(`${describeRun(model, run, resolved)}; streamed in chunks of ${data.chunkRows} rows\n`);
    const progress = epochProgress(io, resolved.epochs, settings.quiet);
    const check = (chunk: SparseDataset) => checkTrainingTargets(model.network.spec, { sparse: true, train: chunk, source: data.source }, settings, sources);
    const reports = await fitPasses(model, data, options, resolved.epochs, progress, check);
    const files = await writeOutputs(model, reports, data, settings, io);
    const result: TrainResult = { kind: model.kind, data: data.source.name, reports, ...files };
    io.stdout(settings.json ? `${JSON.stringify(result, null, 2)}\n` : `${epochTable(reports, shortSummary(settings, io))}\n`);
    return result;
  } catch (error) {
    throw asMemoryLimitAdvice(asCliTrainingError(error, sources), settings, shape, sources, true);
  } finally {
    model.dispose();
  }
}

/** `epochs` passes over the stream's chunks, each chunk one fit() of one epoch; one report per pass. */
async function fitPasses(
  model: Model, data: StreamTrainingData, options: TrainOptions, epochs: number, progress: EpochProgress, check: (chunk: SparseDataset) => void,
): Promise<EpochReport[]> {
  const reports: EpochReport[] = [];
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const parts: EpochReport[] = [];
      let done = 0;
      for await (const chunk of data.chunks()) {
        check(chunk);
        if (model.state) model.state.epochs = epoch - 1; // the decay of the learning rate counts passes, not chunks
        const before = done;
        const onProgress = (p: TrainProgress) => progress.onProgress({ ...p, epoch, samples: before + p.samples, epochSamples: data.rows });
        parts.push(...(await model.fit(chunk, { ...options, epochs: 1, onProgress })));
        done += chunk.size;
      }
      if (model.state) model.state.epochs = epoch;
      const trained = passReport(epoch, parts, reports.at(-1)?.iterations ?? 0);
      const report = data.test ? withValidation(trained, model, data.test) : trained;
      model.history.splice(model.history.length - parts.length, parts.length, report); // the model's history counts passes too
      reports.push(report);
      progress.onEpoch(report);
    }
  } finally {
    progress.stop();
  }
  return reports;
}

/** One pass's report from its chunks' reports: samples, seconds and batches summed, the loss their samples' mean. */
function passReport(epoch: number, parts: readonly EpochReport[], iterationsBefore: number): EpochReport {
  const sum = (field: "samples" | "seconds" | "iterations" | "backups") => parts.reduce((total, part) => total + part[field], 0);
  const samples = sum("samples");
  const seconds = sum("seconds");
  const loss = parts.reduce((total, part) => total + part.loss * part.samples, 0) / Math.max(samples, 1);
  return { epoch, iterations: iterationsBefore + sum("iterations"), samples, loss, seconds, samplesPerSecond: seconds > 0 ? samples / seconds : 0, backups: sum("backups") };
}

/** The report with the test set's evaluation (and its time). */
function withValidation(report: EpochReport, model: Model, test: SparseDataset): EpochReport {
  const started = performance.now();
  const validation = model.evaluate(test);
  return { ...report, validation, validationSeconds: (performance.now() - started) / 1000 };
}

/** A resumed model with a sparse first layer reads its data sparse (its spec says so); --sparse for a dense one is refused. */
function sparseIfResumed(resolved: ResolvedSettings, resume: Resume): ResolvedSettings {
  const sparse = resume.model.network.spec.sparseInputs === true;
  if (sparse) return { ...resolved, settings: { ...resolved.settings, sparse: true } };
  if (resolved.settings.sparse) {
    throw new CliError(`${resolved.sources.sparse ?? "--sparse"}: the model of ${resume.label} takes dense inputs; resume it without ${resolved.sources.sparse ?? "--sparse"}`);
  }
  return resolved;
}

/** resumedData for dense rows; sparse rows are checked against the model's inputs and outputs (they are not scaled). */
function resumedAnyData(resume: Resume, data: AnyTrainingData, sources: Sources, io: CliIO): AnyTrainingData {
  if (!isSparseData(data)) return resumedData(resume, data, sources, io);
  const network = resume.model.network;
  if (data.train.features > network.inputs || data.train.outputs !== network.outputs) {
    throw new CliError(
      `${sources.data ?? "--data"} ${data.source.name} has ${data.train.features} features and ${data.train.outputs} outputs, but the model of ${resume.label} ` +
        `takes ${network.inputs} sparse inputs and gives ${network.outputs} outputs; resume with the data it was trained on`,
    );
  }
  return { ...data, train: { ...data.train, features: network.inputs }, ...(data.test ? { test: { ...data.test, features: network.inputs } } : {}) };
}

/** A config file's cluster setting (nats, peers, ...) is refused: train runs in this process alone. */
function refuseClusterSettings(sources: Sources): void {
  const key = SETTINGS.find((def) => def.scope === "cluster" && sources[def.key] !== undefined)?.key;
  if (key) throw new CliError(`${sources[key]}: a setting of downpour peer and downpour cluster; downpour train trains on this machine alone`);
}

/** Each warning given, on stderr as "downpour: warning: ...". */
export function warn(io: CliIO, warnings: readonly (string | undefined)[]): void {
  for (const text of warnings) if (text) io.stderr(`downpour: warning: ${text}\n`);
}

/** Settings given that this run would not use: by the model kind, the optimizer, or the output. */
export function ignoredRunSettings(settings: TrainSettings, sources: Sources, resolved: ResolvedTrainOptions): string[] {
  const ignored = ignoredSettings(settings, sources);
  return [
    ...(ignored.length > 0 ? [`model ${settings.model} does not use ${ignored.join(", ")}`] : []),
    ...ignoredOptimizerSettings(resolved, sources),
    ...(settings.json && sources.summary ? [`${sources.json ?? "--json"} prints every epoch as JSON: ${sources.summary} is ignored`] : []),
  ];
}

/** Where the model and the curves go (absent: not written); the curves default to beside the model. */
export function outputPaths(settings: TrainSettings, cwd: string): { modelFile?: string; curvesFile?: string } {
  const modelFile = settings.save === false ? undefined : resolve(cwd, settings.save);
  const curvesFile = settings.curves === false ? undefined : resolve(modelFile ? dirname(modelFile) : cwd, settings.curves ?? DEFAULT_CURVES);
  return { ...(modelFile ? { modelFile } : {}), ...(curvesFile ? { curvesFile } : {}) };
}

/** The files this run writes, as messages name them. */
export function outputFiles(settings: TrainSettings, sources: Sources, cwd: string): NamedFile[] {
  const { modelFile, curvesFile } = outputPaths(settings, cwd);
  return [
    ...(modelFile && settings.save !== false ? [namedFile("--save", sources.save, settings.save, modelFile)] : []),
    ...(curvesFile && settings.curves !== false ? [namedFile("--curves", sources.curves, settings.curves ?? DEFAULT_CURVES, curvesFile, "the default, beside the model")] : []),
    ...checkpointOutput(settings, sources, cwd),
  ];
}

/** The files this run reads: the config, the data and test files (not the presets), and the model it resumes (read
 *  whole first, so --save or --checkpoint may replace it). */
export function inputFiles(config: string | undefined, settings: TrainSettings, sources: Sources, cwd: string): NamedFile[] {
  const file = (flag: string, source: string | undefined, typed: string | undefined) => (typed === undefined ? [] : [namedFile(flag, source ?? flag, typed, resolve(cwd, typed))]);
  const preset = (PRESETS as readonly string[]).includes(settings.data) && settings.format === undefined;
  return [
    ...file("--config", "--config", config),
    ...(preset ? [] : file("--data", sources.data, settings.data)),
    ...file("--test-data", sources.testData, settings.testData),
    ...file("--resume", sources.resume, settings.resume).map((resume) => ({ ...resume, replaceable: true })),
  ];
}

/** --summary short, or auto when --quiet or stdout is not a terminal: the first, best and last epochs only. */
export function shortSummary(settings: TrainSettings, io: CliIO): boolean {
  const summary = settings.summary ?? "auto";
  return summary === "short" || (summary === "auto" && (settings.quiet || !io.stdoutIsTerminal));
}

export function shapeOf(data: AnyTrainingData) {
  return { inputs: data.train.features, outputs: data.train.outputs, name: data.train.name ?? data.source.name };
}

/** "MultiLayerPerceptron 784-128-10 (relu, softmax) on mnist: 60000 rows, 10000 test rows; 10 epochs of 64, sgd ..." (a
 *  user neuron type shows as its export: Swish) */
export function describeRun(model: Model, data: { source: { name: string }; train: { size: number }; test?: { size: number } }, o: ResolvedTrainOptions): string {
  const spec = model.network.spec;
  const sizes = [spec.sparseInputs ? `${spec.inputs} sparse` : spec.inputs, ...spec.layers.map((l) => l.units)].join("-");
  const test = data.test ? `${data.test.size} test rows` : "no test set";
  const step = o.optimizer === "sgd" ? `learning rate ${o.learningRate}, momentum ${o.momentum}` : `learning rate ${o.learningRate}`;
  const threads = model.network.kernels.core.shared ? o.threads : 0;
  return (
    `training ${model.kind} ${sizes} (${spec.layers.map((l) => l.neuron?.export ?? l.activation).join(", ")}; ${spec.cost}) on ${data.source.name}: ` +
    `${data.train.size} rows, ${test}; ${o.epochs} epoch${o.epochs === 1 ? "" : "s"} of batch ${o.batchSize}, ${o.optimizer} (${step}), ` +
    `${threads === 0 ? "main thread" : `${threads} thread${threads === 1 ? "" : "s"}`}, ${o.mode}`
  );
}

/**
 * Saves the model (with how its inputs were prepared) and the curves, as the settings ask; says where on stderr.
 * A model that cannot be written where asked is kept in the temp folder (ModelRescuedError says where).
 */
export async function writeOutputs(
  model: Model, reports: EpochReport[], data: Pick<AnyTrainingData, "source" | "scaling"> & { readonly hashing?: HashedInputs }, settings: TrainSettings, io: CliIO,
) {
  const { modelFile, curvesFile } = outputPaths(settings, io.cwd);
  if (modelFile) {
    // with --hash-features, how the columns were hashed, so that eval, predict and --resume hash new rows the same way
    const preprocess = preprocessOf(data.source, data.scaling, settings, io.cwd, data.hashing);
    await writeModelOrRescue(`--save ${settings.save}`, modelFile, (path) => saveTrainedModel(model, path, preprocess), rescuePlaces(io.cwd));
    io.stderr(`model saved to ${modelFile}\n`);
  }
  if (curvesFile) {
    await writeCurves(curvesFile, reports, `${model.kind} on ${data.source.name}`);
    io.stderr(`curves written to ${curvesFile}\n`);
  }
  return { ...(modelFile ? { modelFile } : {}), ...(curvesFile ? { curvesFile } : {}) };
}

const PARSERS: Partial<Record<ValueType, (text: string) => unknown>> = {
  integer: parseInteger,
  number: parseNumber,
  integers: parseIntegerList,
  holdout: parseHoldout,
  column: parseColumn,
  columns: parseColumns,
  delimiter: parseDelimiter,
  "file-or-off": parseFilePath,
  bytes: parseByteSize,
};

/** The flag (and its --no- form) of one setting, in its help group. */
export function flagOptions(def: SettingDef): Option[] {
  const shown = def.key === "threads" ? `all cores, ${availableParallelism()} here` : def.shown;
  const option = new Option(def.flag!, `${def.help} (default: ${shown})`).helpGroup(`${def.group} options:`);
  if (def.choices) option.choices(def.choices);
  const parser = def.key === "hashFeatures" ? parseHashWidth : PARSERS[def.type];
  if (parser) option.argParser(parser);
  if (!def.off) return [option];
  return [option, new Option(`--no-${def.flag!.slice(2).split(" ")[0]}`, def.off).helpGroup(`${def.group} options:`)];
}

/** Adds `train` to the program; its action runs runTrain with the parsed flags. */
export function registerTrain(program: Command, io: CliIO): void {
  const command = program
    .command("train")
    .description("build a model and train it on all cores, then save it and its learning curves")
    .option("--config <file.json>", "JSON file of settings: the flags' names in camelCase, plus \"spec\" and \"train\"; flags override it")
    .addHelpText("after", TRAIN_EXAMPLES)
    .action(async (flags: TrainFlags) => {
      await runTrain(flags, io);
    });
  for (const def of SETTINGS.filter((s) => s.flag && !s.scope)) for (const option of flagOptions(def)) command.addOption(option);
}

const TRAIN_EXAMPLES = `
Examples:
  downpour train                                    MNIST (downloaded once; the bundled digits if that fails), 784-128-10 MLP
  downpour train --data digits --hidden 32 --epochs 30   the bundled UCI 8x8 digits, offline
  downpour train --data pima.csv --model logistic --epochs 50
  downpour train --config run.json --epochs 5       the file's settings, with 5 epochs
  downpour train --epochs 30 --checkpoint-every 5   a checkpoint every 5 epochs (and on Ctrl-C) in downpour-model.checkpoint.dpnn
  downpour train --resume downpour-model.checkpoint.dpnn --epochs 40   go on from it: its model, data, scaling and
                                                    optimizer state, to 40 epochs in all (those done count)
  downpour train --data pima.csv --hidden 16 --neuron ./neurons.js#Swish   a user neuron type (module#export) in the
                                                    hidden layers; check one first: downpour check-neuron ./neurons.js#Swish
  downpour train --data clicks.svm --sparse --model logistic --optimizer adagrad   libsvm rows kept sparse (2^20
                                                    features cost only those present); eval reads them sparse too
  downpour train --data clicks.csv --hash-features 2^20 --model logistic --optimizer adagrad   the CSV's columns hashed
                                                    into 2^20 sparse features (categories and numbers alike)
  downpour train --data huge.svm --test-data test.svm --sparse --stream --model logistic   one pass over the file per
                                                    epoch, 65536 rows (--chunk-rows) in memory at a time
  downpour train --data pima.csv --patience 5 --save-best   stop once the test loss has not improved for 5 epochs;
                                                    save the epoch of the lowest test loss

A config file holds the same settings, e.g. { "data": "mnist", "hidden": [800], "epochs": 30 }, or a full network
"spec": { "layers": [{ "units": 300, "activation": "relu" }, { "units": 10, "activation": "softmax" }] } and "train"
options (any TrainOptions: "beta1", "shuffle", "convergence": { "window": 50, "minImprovement": 0.01 }, ...).`;

