// Checkpoints, resuming, the best epoch and Ctrl-C of `downpour train`: the fit hooks that write a checkpoint every
// N epochs, keep the best epoch's weights and stop cleanly on the first Ctrl-C, and the loading of --resume files.
import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import type { FitOptions, Model, ModelKind } from "../api/models.js";
import type { Dataset } from "../data/dataset.js";
import type { Tensor } from "../model/network.js";
import { stateSlots } from "../train/state.js";
import type { ResolvedTrainOptions, TrainOptions } from "../train/options.js";
import type { EpochReport } from "../train/trainer.js";
import type { ResolvedSettings, Sources } from "./config.js";
import { PRESETS } from "./datasets.js";
import { CliError, InterruptedError } from "./errors.js";
import type { CliIO } from "./io.js";
import { loadTrainedModel, preprocessOf, saveTrainedModel, type HashedInputs, type Preprocess } from "./model-file.js";
import { namedFile, type NamedFile } from "./outputs.js";
import type { EpochProgress } from "./progress.js";
import { applyScaling } from "./scaling.js";
import { DEFAULT_SETTINGS, flagName, type ModelName, type SettingKey, type TrainSettings } from "./settings.js";
import type { TrainingData } from "./training-data.js";

/** The checkpoint's name beside a model file: m.dpnn -> m.checkpoint.dpnn (other names get it appended). */
export const CHECKPOINT_SUFFIX = ".checkpoint.dpnn";
/** The checkpoint when the model is not saved (--no-save) and no --checkpoint is given. */
export const DEFAULT_CHECKPOINT = "downpour-checkpoint.dpnn";

/** --checkpoint; else beside --save (m.dpnn -> m.checkpoint.dpnn); else downpour-checkpoint.dpnn; absolute. */
export function checkpointPath(settings: Pick<TrainSettings, "checkpoint" | "save">, cwd: string): string {
  if (settings.checkpoint !== undefined) return resolve(cwd, settings.checkpoint);
  if (settings.save === false) return resolve(cwd, DEFAULT_CHECKPOINT);
  return resolve(cwd, settings.save.replace(/\.dpnn$/i, "") + CHECKPOINT_SUFFIX);
}

/** A model file to go on training from (--resume). */
export interface Resume {
  /** The file as given, and how messages name it ("--resume ck.dpnn"). */
  readonly file: string;
  readonly label: string;
  readonly model: Model;
  readonly preprocess: Partial<Preprocess>;
  /** Epochs the model has trained (its optimizer state's count). */
  readonly epochsDone: number;
}

/** Loads settings.resume (undefined without it); refuses a file without optimizer state. The caller disposes the model. */
export async function openResume(settings: TrainSettings, sources: Sources, cwd: string): Promise<Resume | undefined> {
  if (settings.resume === undefined) return undefined;
  const label = `${sources.resume ?? "--resume"} ${settings.resume}`;
  let loaded: Awaited<ReturnType<typeof loadTrainedModel>>;
  try {
    loaded = await loadTrainedModel(resolve(cwd, settings.resume));
  } catch (error) {
    throw new CliError(`${label}: ${(error as Error).message}`, { cause: error });
  }
  const state = loaded.model.state;
  if (!state) {
    loaded.model.dispose();
    throw new CliError(`${label}: the model file holds no optimizer state (it was not written by training), so training cannot go on from it`);
  }
  return { file: settings.resume, label, model: loaded.model, preprocess: loaded.preprocess, epochsDone: state.epochs };
}

/** The settings a resumed run builds or scales a model with, which come from the file instead. */
const MODEL_KEYS = ["model", "hidden", "activation", "neuron", "outputActivation", "cost", "dropout", "init", "spec", "normalize"] as const satisfies readonly SettingKey[];

/** The --model name of each model kind (a LayeredANN trains as an mlp with its own spec). */
const MODEL_NAME: Record<ModelKind, ModelName> = {
  LayeredANN: "mlp", MultiLayerPerceptron: "mlp", Perceptron: "perceptron", LinearRegression: "linear", LogisticRegression: "logistic", AutoEncoder: "autoencoder",
};

/**
 * The settings of a resumed run: the model kind of the file; where not given, the data settings the file recorded
 * (the data, its columns, the test set) and the seed of its training (which picks the holdout); no scaling is fitted
 * (the file's applies, see resumedData). Model settings given are warned about and dropped (the file's model
 * replaces them).
 */
export function resumedSettings({ settings, sources: given }: ResolvedSettings, resume: Resume, io: CliIO): ResolvedSettings {
  const p = resume.preprocess;
  const ignored = MODEL_KEYS.filter((key) => given[key] !== undefined).map((key) => given[key]!);
  if (ignored.length > 0) {
    io.stderr(`downpour: warning: ${resume.label}: the model, its layers and its input scaling come from the file; ignoring ${ignored.join(", ")}\n`);
  }
  const sources: Sources = Object.fromEntries(Object.entries(given).filter(([key]) => !(MODEL_KEYS as readonly string[]).includes(key)));
  if (p.path !== undefined && sources.data === undefined && !existsSync(p.path)) {
    throw new CliError(`${resume.label}: the model was trained on ${p.path}, which is not there any more; give its data with --data`);
  }
  checkHashedResume(settings, sources, resume);
  const testChosen = sources.holdout !== undefined || sources.testData !== undefined;
  const recorded: Partial<TrainSettings> = {
    data: p.path ?? ((PRESETS as readonly (string | undefined)[]).includes(p.data) ? p.data : undefined),
    format: p.format, labelColumn: p.labelColumn, features: p.featureColumns ? [...p.featureColumns] : undefined,
    delimiter: p.delimiter, comment: p.comment, header: p.header, classes: p.classes, hashFeatures: p.hashing?.width ?? p.hashFeatures,
    ...(testChosen ? {} : { holdout: p.holdout, testData: p.testData }),
    seed: resume.model.trainDefaults.seed,
  };
  const merged: Record<string, unknown> = { ...settings };
  for (const key of MODEL_KEYS) merged[key] = DEFAULT_SETTINGS[key];
  Object.assign(merged, { model: MODEL_NAME[resume.model.kind], normalize: "none" });
  for (const [key, value] of Object.entries(recorded)) if (value !== undefined && sources[key] === undefined) merged[key] = value;
  return { settings: merged as unknown as TrainSettings, sources };
}

/**
 * Refuses settings that would hash the resumed data unlike the model's training: another --hash-features width, or
 * --features / --label-column (the columns' positions are the hash keys, recorded in the file); and --hash-features
 * for a model that was not trained on hashed features.
 */
function checkHashedResume(settings: TrainSettings, sources: Sources, resume: Resume): void {
  const width = resume.preprocess.hashing?.width ?? resume.preprocess.hashFeatures;
  const flag = sources.hashFeatures;
  if (width === undefined) {
    if (flag === undefined || resume.model.network.spec.sparseInputs !== true) return; // a dense model: --hash-features is refused as --sparse is
    throw new CliError(`${flag}: the model of ${resume.label} was trained on libsvm rows, not hashed CSV columns; resume it without ${flag}`);
  }
  if (flag !== undefined && settings.hashFeatures !== width) {
    throw new CliError(`${flag} ${settings.hashFeatures}: the model of ${resume.label} hashes into ${width} features; resume it with that width, or without ${flag}`);
  }
  const columns = (["labelColumn", "features"] as const).map((key) => sources[key]).filter((name) => name !== undefined);
  if (columns.length > 0) {
    throw new CliError(
      `${columns.join(", ")}: the model of ${resume.label} hashes the columns its training hashed (recorded in the file, by position); resume it without ${columns.join(" and ")}`,
    );
  }
}

/** The resumed model, set to save `options` as its training settings. */
export function resumedModel(resume: Resume, options: TrainOptions): Model {
  resume.model.trainDefaults = options;
  return resume.model;
}

/** The training options of a resumed run: those it was trained with (stored in the file), overridden by the ones given. */
export function resumedOptions(resume: Resume, given: TrainOptions): TrainOptions {
  return { ...resume.model.trainDefaults, ...given };
}

/** Refuses options that cannot continue the file's optimizer state, or epochs already done; returns the epochs to train. */
export function checkResume(resume: Resume, resolved: ResolvedTrainOptions, sources: Sources): number {
  const state = resume.model.state!;
  if (state.kind !== resolved.optimizer || state.slots !== stateSlots(resolved.optimizer, resolved.momentum)) {
    const asked = resolved.optimizer === "sgd" ? `sgd with momentum ${resolved.momentum}` : resolved.optimizer;
    const had = state.kind === "sgd" ? `sgd ${state.slots === 0 ? "without" : "with"} momentum` : state.kind;
    const source = sources.optimizer ?? sources.momentum ?? sources["train.optimizer"] ?? "the settings";
    throw new CliError(`${resume.label}: the model was trained with ${had}, but ${source} asks for ${asked}; resuming needs the same optimizer`);
  }
  const remaining = resolved.epochs - resume.epochsDone;
  if (remaining < 1) {
    const epochs = sources.epochs ? `${sources.epochs} ${resolved.epochs}` : `its --epochs ${resolved.epochs}`;
    throw new CliError(
      `${resume.label}: the model has already trained ${resume.epochsDone} epoch${resume.epochsDone === 1 ? "" : "s"} of ${epochs}; ` +
        `give a larger --epochs (the total, counting those done) to train further`,
    );
  }
  return remaining;
}

/**
 * Refuses data whose inputs or outputs differ from the resumed model's (naming --data and --resume); returns the data
 * scaled with the file's scaling. Warns when the data's name differs from the one recorded.
 */
export function resumedData(resume: Resume, data: TrainingData, sources: Sources, io: CliIO): TrainingData {
  const network = resume.model.network;
  const { features, outputs } = data.train;
  const dataLabel = `${sources.data ?? "--data"} ${data.source.name}`;
  const trainedOn = resume.preprocess.data === undefined ? "" : ` (trained on ${resume.preprocess.data})`;
  const outputsDiffer = resume.model.kind !== "AutoEncoder" && outputs !== network.outputs;
  if (features !== network.inputs || outputsDiffer) {
    throw new CliError(
      `${dataLabel} has ${features} feature${features === 1 ? "" : "s"} and ${outputs} output${outputs === 1 ? "" : "s"}, but the model of ${resume.label}${trainedOn} ` +
        `takes ${network.inputs} inputs and gives ${network.outputs} outputs; resume with the data it was trained on`,
    );
  }
  if (resume.preprocess.data !== undefined && resume.preprocess.data !== data.source.name) {
    io.stderr(`downpour: warning: ${dataLabel} is not the data the model of ${resume.label} was trained on (${resume.preprocess.data})\n`);
  }
  const scaling = resume.preprocess.scaling;
  return { ...data, train: applyScaling(data.train, scaling), test: data.test && applyScaling(data.test, scaling), scaling };
}

/** "resuming ck.dpnn: 4 of 10 epochs done; training epochs 5 to 10". */
export function resumeLine(resume: Resume, epochs: number): string {
  const first = resume.epochsDone + 1;
  const which = first === epochs ? `epoch ${epochs}` : `epochs ${first} to ${epochs}`;
  return `resuming ${resume.file}: ${resume.epochsDone} of ${epochs} epochs done; training ${which}`;
}

/** Settings that need a test set to judge epochs by: their flags, when given. */
export function checkNeedsTestSet(settings: TrainSettings, sources: Sources, hasTest: boolean): void {
  if (hasTest) return;
  const needs = (["saveBest", "patience"] as const).filter((key) => settings[key] !== undefined && settings[key] !== false);
  if (needs.length === 0) return;
  const names = needs.map((key) => sources[key] ?? flagName(key)).join(" and ");
  throw new CliError(`${names} judge${needs.length === 1 ? "s" : ""} epochs by the test loss, but this run has no test set; give --test-data or a --holdout above 0`);
}

/** --checkpoint-every is a count of epochs; --save-best without a model to save is warned about. */
export function checkKeeping(settings: TrainSettings, sources: Sources, io: CliIO): void {
  const every = settings.checkpointEvery;
  if (every !== undefined && !(Number.isInteger(every) && every >= 1)) {
    throw new CliError(`${sources.checkpointEvery ?? "--checkpoint-every"} must be a positive number of epochs, got ${every}`);
  }
  if (settings.saveBest && settings.save === false) {
    io.stderr(`downpour: warning: ${sources.saveBest ?? "--save-best"} picks the model to save, but ${sources.save ?? "--no-save"} saves none; it is ignored\n`);
  }
}

/** The checkpoint as an output to check before training (it may be the --resume file, which is read first). */
export function checkpointOutput(settings: TrainSettings, sources: Sources, cwd: string): NamedFile[] {
  const path = checkpointPath(settings, cwd);
  const typed = settings.checkpoint ?? relative(cwd, path);
  return [namedFile("--checkpoint", sources.checkpoint, typed, path, "the default, beside the model")];
}

/** The plan of a run with `settings` on `data` to `epochs` in all, `epochsDone` of them trained before. */
export function runPlan(
  settings: TrainSettings, data: Pick<TrainingData, "source" | "scaling"> & { readonly hashing?: HashedInputs }, epochs: number, epochsDone: number, cwd: string,
): RunPlan {
  return {
    preprocess: preprocessOf(data.source, data.scaling, settings, cwd, data.hashing),
    checkpoint: checkpointPath(settings, cwd),
    checkpointEvery: settings.checkpointEvery,
    saveBest: settings.saveBest === true,
    epochsDone,
    epochs,
    patience: settings.patience,
  };
}

/** How a training run is kept: checkpoints, the best epoch, what it resumes. */
export interface RunPlan {
  readonly preprocess: Preprocess;
  /** The checkpoint file (absolute), for --checkpoint-every and Ctrl-C. */
  readonly checkpoint: string;
  readonly checkpointEvery?: number;
  readonly saveBest: boolean;
  /** Epochs done before this run (resumed), and the total to reach. */
  readonly epochsDone: number;
  readonly epochs: number;
  readonly patience?: number;
}

/** The model's weights and optimizer state after one epoch (copies). */
interface Snapshot {
  readonly report: EpochReport;
  readonly params: Tensor[];
  readonly state: Tensor[];
  readonly step: number;
  readonly epochs: number;
}

/**
 * One fit() of `downpour train` with the plan's keeping: epochs numbered from those done before, a checkpoint every
 * `checkpointEvery` epochs (written from the awaited onEpoch hook, atomically), the epoch of the lowest test loss
 * kept in memory (--save-best) and put back into the model at the end, and the first Ctrl-C stopping training at
 * the next mini-batch, then writing a checkpoint and rejecting with InterruptedError (exit 130).
 */
export class TrainingRun {
  /** This run's reports, numbered from the epochs done before it. */
  readonly reports: EpochReport[] = [];
  private readonly abort = new AbortController();
  private best: Snapshot | undefined;
  private interrupted = false;

  constructor(
    private readonly model: Model,
    private readonly plan: RunPlan,
    private readonly io: CliIO,
  ) {}

  /** Trains `train` with `options` (hyper-parameters and validation) and shows `progress`; resolves with the reports
   *  once the model holds what is to be saved (with --save-best, the best epoch's weights). */
  async fit(train: Dataset, options: FitOptions, progress: EpochProgress): Promise<EpochReport[]> {
    const release = this.io.interrupts?.catchNext(() => this.interrupt());
    const done = this.plan.epochsDone;
    try {
      await this.model.fit(train, {
        ...options,
        epochs: this.plan.epochs - done,
        signal: this.abort.signal,
        onProgress: (p) => progress.onProgress({ ...p, epoch: p.epoch + done }),
        onEpoch: (report) => this.afterEpoch({ ...report, epoch: report.epoch + done }, progress),
      });
    } finally {
      release?.();
      progress.stop();
    }
    if (this.interrupted) await this.stopInterrupted(train.size);
    this.sayWhyStopped();
    if (this.plan.saveBest) this.restoreBest();
    return this.reports;
  }

  /** The first Ctrl-C: stop at the next mini-batch (a second one exits at once, see Interrupts). */
  private interrupt(): void {
    this.interrupted = true;
    this.io.stderr(`${this.io.terminal ? "\n" : ""}downpour: interrupted: stopping after this mini-batch to write a checkpoint (Ctrl-C again quits at once)\n`);
    this.abort.abort();
  }

  private async afterEpoch(report: EpochReport, progress: EpochProgress): Promise<void> {
    // One turn of the event loop, so that a Ctrl-C is taken between epochs even when training runs on this thread
    // (--threads 0) in epochs shorter than the library's progress breaks.
    await new Promise((resolve) => setImmediate(resolve));
    this.reports.push(report);
    progress.onEpoch(report);
    if (report.stop === "aborted") return;
    if (this.plan.saveBest) this.keepIfBest(report);
    const every = this.plan.checkpointEvery;
    if (every !== undefined && report.epoch % every === 0 && !this.interrupted) await this.writeCheckpoint(report.epoch);
  }

  /** A checkpoint that cannot be written is warned about; training goes on (the outputs were checked before it began). */
  private async writeCheckpoint(epoch: number): Promise<void> {
    const path = this.plan.checkpoint;
    try {
      await saveTrainedModel(this.model, path, this.plan.preprocess);
      this.io.stderr(`checkpoint after epoch ${epoch} written to ${path}\n`);
    } catch (error) {
      this.io.stderr(`downpour: warning: cannot write the checkpoint of epoch ${epoch}: ${(error as Error).message}; training goes on\n`);
    }
  }

  /**
   * Writes the checkpoint of the interrupted run and rejects with InterruptedError saying where. An epoch cut short
   * counts as done (its updates are in the checkpoint; resuming goes on with the next one). Interrupted before any
   * epoch ran, nothing is written.
   */
  private async stopInterrupted(totalSamples: number): Promise<never> {
    const last = this.reports.at(-1);
    if (!last) throw new InterruptedError("interrupted before the first epoch; nothing was trained or saved");
    const path = this.plan.checkpoint;
    await saveTrainedModel(this.model, path, this.plan.preprocess);
    const partial = last.stop === "aborted" && last.samples < totalSamples ? `, the last cut short after ${last.samples} of ${totalSamples} samples` : "";
    throw new InterruptedError(
      `interrupted: checkpoint saved to ${path}; resume with --resume ${path} (${last.epoch} epoch${last.epoch === 1 ? "" : "s"} done${partial})`,
      { checkpoint: path },
    );
  }

  /** "stopped early after epoch 7: no test-loss improvement in 3 epochs", once, when patience ended training. */
  private sayWhyStopped(): void {
    const last = this.reports.at(-1);
    if (last?.stop !== "early-stopped") return;
    const patience = this.plan.patience;
    this.io.stderr(`stopped early after epoch ${last.epoch}: no test-loss improvement in ${patience} epoch${patience === 1 ? "" : "s"}\n`);
  }

  /** Keeps copies of the weights and optimizer state when `report` has the lowest finite test loss so far (the first of ties). */
  private keepIfBest(report: EpochReport): void {
    const loss = report.validation?.loss;
    if (loss === undefined || !Number.isFinite(loss)) return;
    const bestLoss = this.best?.report.validation?.loss;
    if (bestLoss !== undefined && !(loss < bestLoss)) return;
    const state = this.model.state;
    this.best = { report, params: this.model.network.tensors(), state: state?.tensors() ?? [], step: state?.step ?? 0, epochs: state?.epochs ?? 0 };
  }

  /** Puts the best epoch's weights and optimizer state back into the model, saying which epoch it was. */
  private restoreBest(): void {
    const best = this.best;
    const last = this.reports.at(-1);
    if (!best || !last) return;
    this.io.stderr(`--save-best: keeping epoch ${best.report.epoch}, the lowest test loss (${best.report.validation!.loss.toPrecision(5)})\n`);
    if (best.report === last) return;
    this.model.network.setTensors(best.params);
    const state = this.model.state;
    if (state) {
      state.setTensors(best.state);
      state.step = best.step;
      state.epochs = best.epochs;
    }
  }
}
