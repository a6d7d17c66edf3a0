// Saving and loading models as downpour model files: the spec, the parameters, the optimizer state and its step,
// so that loading gives identical outputs and training resumes where it stopped.
import type { Kernels } from "../core/kernels.js";
import type { TrainOptions } from "../train/options.js";
import { OPTIMIZERS, type OptimizerKind } from "../train/options.js";
import { OptimizerState } from "../train/state.js";
import { defaultKernels } from "./default-kernels.js";
import { ModelFileError, readModelFile, writeModelFile, type ModelFileContents } from "./file/index.js";
import { MODEL_CLASSES, type Model, type ModelKind } from "./models.js";
import { Network } from "./network.js";
import type { NetworkSpec } from "./spec.js";

/** Writes `model` to `path` atomically (a temp file renamed over the target). */
export async function saveModel(model: Model, path: string): Promise<void> {
  const state = model.state;
  const contents: ModelFileContents = {
    kind: model.kind,
    spec: model.network.spec,
    meta: {
      train: JSON.parse(JSON.stringify(model.trainDefaults)) as Record<string, unknown>,
      ...(state ? { optimizer: state.kind, step: state.step, stateEpochs: state.epochs, momentumSlots: state.slots } : {}),
      epochs: model.history.length,
    },
    tensors: [
      ...model.network.tensors().map((t) => ({ ...t, group: "param" })),
      ...(state?.tensors() ?? []).map((t) => ({ ...t, group: "optimizer" })),
    ],
  };
  await writeModelFile(path, contents);
}

/** Reads a model file; the result is of the class that saved it. Throws ModelFileError naming the file. */
export async function loadModel(path: string, options: { kernels?: Kernels } = {}): Promise<Model> {
  const contents = await readModelFile(path);
  const Model = MODEL_CLASSES[contents.kind as ModelKind];
  if (!Model) throw new ModelFileError(path, `model file ${path}: unknown model kind ${JSON.stringify(contents.kind)}; expected one of ${Object.keys(MODEL_CLASSES).join(", ")}`);
  const kernels = options.kernels ?? (await defaultKernels());
  let network: Network;
  try {
    network = Network.create(kernels, contents.spec as NetworkSpec);
  } catch (cause) {
    throw new ModelFileError(path, `model file ${path}: bad spec: ${(cause as Error).message}`, { cause });
  }
  const model = new Model(contents.kind as ModelKind, network, (contents.meta.train ?? {}) as TrainOptions);
  try {
    network.setTensors(contents.tensors.filter((t) => t.group === "param"));
    restoreState(model, contents);
  } catch (cause) {
    model.dispose();
    throw new ModelFileError(path, `model file ${path}: ${(cause as Error).message}`, { cause });
  }
  return model;
}

function restoreState(model: Model, contents: ModelFileContents): void {
  const kind = contents.meta.optimizer as OptimizerKind | undefined;
  if (kind === undefined) return;
  if (!OPTIMIZERS.includes(kind)) throw new Error(`meta.optimizer is ${JSON.stringify(kind)}; expected one of ${OPTIMIZERS.join(", ")}`);
  const momentum = contents.meta.momentumSlots === 0 ? 0 : 0.9;
  const state = OptimizerState.create(model.network, kind, momentum);
  state.setTensors(contents.tensors.filter((t) => t.group === "optimizer"));
  state.step = Number(contents.meta.step ?? 0);
  state.epochs = Number(contents.meta.stateEpochs ?? 0);
  model.state = state;
}
