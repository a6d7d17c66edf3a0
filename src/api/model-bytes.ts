// A model as bytes of the downpour model file format and back, in memory (runtime-free: no file system): the spec,
// the parameters, the optimizer state and its step, so that decoding gives identical outputs and training resumes.
import type { Kernels } from "../core/kernels.js";
import { decodeModel as decodeContents } from "../model/file/decode.js";
import { encodeModel as encodeContents } from "../model/file/encode.js";
import { ModelFileError } from "../model/file/errors.js";
import type { ModelFileContents } from "../model/file/format.js";
import { Network } from "../model/network.js";
import type { NetworkSpec } from "../model/spec.js";
import { OPTIMIZERS, type OptimizerKind, type TrainOptions } from "../train/options.js";
import { OptimizerState } from "../train/state.js";
import { defaultKernels } from "./default-kernels.js";
import { MODEL_CLASSES, type Model, type ModelKind } from "./models.js";

/** Options of decodeModel and loadModel. */
export interface DecodeModelOptions {
  /** Core and arena to place the model in. Default: the process-wide core (defaultKernels()). */
  kernels?: Kernels;
}

/** What a model file holds for `model`: kind, spec, training meta, parameters and optimizer state. */
export function modelContents(model: Model): ModelFileContents {
  const state = model.state;
  return {
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
}

/** The model described by decoded contents; `source` names the file or buffer in errors (ModelFileError). */
export async function modelFromContents(contents: ModelFileContents, source: string, options: DecodeModelOptions = {}): Promise<Model> {
  const Model = MODEL_CLASSES[contents.kind as ModelKind];
  if (!Model) {
    throw new ModelFileError(source, `model file ${source}: unknown model kind ${JSON.stringify(contents.kind)}; expected one of ${Object.keys(MODEL_CLASSES).join(", ")}`);
  }
  const kernels = options.kernels ?? (await defaultKernels());
  let network: Network;
  try {
    network = Network.create(kernels, contents.spec as NetworkSpec);
  } catch (cause) {
    throw new ModelFileError(source, `model file ${source}: bad spec: ${(cause as Error).message}`, { cause });
  }
  const model = new Model(contents.kind as ModelKind, network, (contents.meta.train ?? {}) as TrainOptions);
  try {
    network.setTensors(contents.tensors.filter((t) => t.group === "param"));
    restoreState(model, contents);
  } catch (cause) {
    model.dispose();
    throw new ModelFileError(source, `model file ${source}: ${(cause as Error).message}`, { cause });
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

/** The model as the bytes of a model file (what saveModel writes). */
export function encodeModel(model: Model): Uint8Array {
  return encodeContents(modelContents(model), "<bytes>");
}

/** The model encoded in `bytes`, of the class that encoded it. Rejects with ModelFileError. */
export async function decodeModel(bytes: Uint8Array, options: DecodeModelOptions = {}): Promise<Model> {
  return modelFromContents(decodeContents(bytes, "<bytes>"), "<bytes>", options);
}
