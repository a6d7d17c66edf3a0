// Model.fit with a callback after each epoch (fit itself reports only when all are done): the same merged options,
// optimizer state and auto-encoder targets, driven through LocalTrainer's per-epoch reports.
import { createDataset, type Dataset } from "../data/index.js";
import { AutoEncoder, type Model } from "../model/models.js";
import type { TrainOptions } from "../train/options.js";
import { OptimizerState } from "../train/state.js";
import { LocalTrainer, type EpochReport, type TrainProgress } from "../train/trainer.js";

export interface EpochHooks {
  /** Evaluated after each epoch (given as for the model's predictions; an auto-encoder's is made x -> x here). */
  readonly validation?: Dataset;
  readonly onProgress?: (progress: TrainProgress) => void;
  readonly onEpoch?: (report: EpochReport) => void;
}

/** Trains `model` on `data`, calling onEpoch as each epoch ends; resolves with the reports (also added to model.history). */
export async function fitByEpoch(model: Model, data: Dataset, options: TrainOptions, hooks: EpochHooks = {}): Promise<EpochReport[]> {
  const merged: TrainOptions = { ...model.trainDefaults, ...options };
  if (!model.network.kernels.core.shared) merged.threads = 0;
  const state = stateFor(model, merged);
  const validation = hooks.validation && targetsFor(model, hooks.validation);
  const trainer = await LocalTrainer.create(model.network, targetsFor(model, data), merged, { validation, onProgress: hooks.onProgress, state });
  const reports: EpochReport[] = [];
  try {
    for await (const report of trainer.epochs()) {
      reports.push(report);
      model.history.push(report);
      hooks.onEpoch?.(report);
    }
  } finally {
    await trainer.close();
  }
  return reports;
}

/** The model's optimizer state when it suits `options`, else fresh state (as Model.fit keeps it). */
function stateFor(model: Model, options: TrainOptions): OptimizerState {
  const kind = options.optimizer ?? "sgd";
  const slots = kind === "sgd" && options.momentum === 0 ? 0 : undefined;
  if (model.state && model.state.kind === kind && (slots === undefined || model.state.slots === slots)) return model.state;
  model.state?.dispose();
  model.state = OptimizerState.create(model.network, kind, options.momentum ?? 0.9);
  return model.state;
}

/** What the model is trained and scored against: its own inputs for an auto-encoder. */
export function targetsFor(model: Model, data: Dataset): Dataset {
  if (!(model instanceof AutoEncoder)) return data;
  return createDataset({ features: data.features, outputs: data.features, x: data.x, y: data.x, name: data.name });
}
