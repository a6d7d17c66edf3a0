// A model as bytes of the downpour model file format and back, in memory (runtime-free: no file system): the spec,
// the parameters, the optimizer state and its step, so that decoding gives identical outputs and training resumes.
import { Kernels } from "../core/kernels.js";
import { asScaling, type Scaling } from "../data/scaling.js";
import { InvalidArgumentError, MemoryLimitError } from "../errors.js";
import { decodeModel as decodeContents } from "../model/file/decode.js";
import { encodeModel as encodeContents } from "../model/file/encode.js";
import { ModelFileError } from "../model/file/errors.js";
import type { ModelFileContents } from "../model/file/format.js";
import { Network, parameterEntries } from "../model/network.js";
import { loadNeuronTypes } from "../model/neurons/registry.js";
import { type NetworkSpec, resolveSpec } from "../model/spec.js";
import { OPTIMIZERS, type OptimizerKind, type TrainOptions } from "../train/options.js";
import { OptimizerState } from "../train/state.js";
import { defaultKernels } from "./default-kernels.js";
import { requireFiniteTensors } from "./finite-params.js";
import { describeValue } from "../util/describe.js";
import { MODEL_CLASSES, Model, type ModelKind } from "./models.js";

/** Options of decodeModel and loadModel. */
export interface DecodeModelOptions {
  /** Core and arena to place the model in. Default: the process-wide core (defaultKernels()). */
  kernels?: Kernels;
}

/** Throws InvalidArgumentError unless `model` is a Model, InvalidStateError if it was disposed; `use` names the call. */
export function requireModel(use: string, model: unknown): asserts model is Model {
  if (!(model instanceof Model)) {
    throw new InvalidArgumentError(`${use}: model must be a Model (MultiLayerPerceptron.create(), loadModel(), ...), got ${describeValue(model)}`);
  }
  model.requireUsable(use);
}

// Throws InvalidArgumentError unless `options` is undefined or { kernels?: Kernels }.
function requireDecodeOptions(use: string, options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`${use}: options must be an object like { kernels }, got ${describeValue(options)}`);
  }
  const { kernels } = options as DecodeModelOptions;
  if (kernels !== undefined && !(kernels instanceof Kernels)) {
    throw new InvalidArgumentError(`${use}: options.kernels must be a Kernels (from Kernels.load()), got ${describeValue(kernels)}`);
  }
}

/**
 * What a model file holds for `model`: kind, spec, training meta, parameters and optimizer state (copies).
 * Throws as requireModel does, naming `use`.
 */
export function modelContents(model: Model, use = "encodeModel"): ModelFileContents {
  requireModel(use, model);
  const state = model.state;
  const tensors = [
    ...model.network.tensors().map((t) => ({ ...t, group: "param" })),
    ...(state?.tensors() ?? []).map((t) => ({ ...t, group: "optimizer" })),
  ];
  requireFiniteTensors(tensors, "<bytes>", use);
  return {
    kind: model.kind,
    spec: model.network.spec,
    meta: {
      train: JSON.parse(JSON.stringify(model.trainDefaults)) as Record<string, unknown>,
      ...(state ? { optimizer: state.kind, step: state.step, stateEpochs: state.epochs, momentumSlots: state.slots } : {}),
      epochs: model.history.length,
      ...(model.inputScaling ? { inputScaling: JSON.parse(JSON.stringify(model.inputScaling)) } : {}),
    },
    tensors,
  };
}

/** The model described by decoded contents; `source` names the file or buffer in errors (ModelFileError). */
export async function modelFromContents(contents: ModelFileContents, source: string, options: DecodeModelOptions = {}): Promise<Model> {
  requireDecodeOptions(source === "<bytes>" ? "decodeModel" : "loadModel", options);
  const Model = MODEL_CLASSES[contents.kind as ModelKind];
  if (!Model) {
    throw new ModelFileError(source, `model file ${source}: unknown model kind ${JSON.stringify(contents.kind)}; expected one of ${Object.keys(MODEL_CLASSES).join(", ")}`);
  }
  const kernels = options.kernels ?? (await defaultKernels());
  let network: Network;
  try {
    requireTensorsOfSpec(contents, source);
    await loadNeuronTypes(contents.spec as { layers: [] });
    network = Network.create(kernels, contents.spec as NetworkSpec);
  } catch (cause) {
    if (cause instanceof ModelFileError) throw cause;
    if (cause instanceof MemoryLimitError) throw new MemoryLimitError(`model file ${source}: ${cause.message}`, cause, { cause });
    throw new ModelFileError(source, `model file ${source}: bad spec: ${(cause as Error).message}`, { cause });
  }
  const model = new Model(contents.kind as ModelKind, network, (contents.meta.train ?? {}) as TrainOptions);
  try {
    requireFiniteTensors(contents.tensors, source);
    network.setTensors(contents.tensors.filter((t) => t.group === "param"));
    restoreState(model, contents);
    model.inputScaling = storedScaling(contents, network.inputs);
  } catch (cause) {
    model.dispose();
    throw new ModelFileError(source, `model file ${source}: ${(cause as Error).message}`, { cause });
  }
  return model;
}

/**
 * Before the network is allocated: the file's parameter tensors are the ones its spec implies, by name and length
 * (a small file whose spec claims a huge layer is refused here, not after allocating and initializing it).
 */
function requireTensorsOfSpec(contents: ModelFileContents, source: string): void {
  const entries = parameterEntries(resolveSpec(contents.spec as NetworkSpec));
  const stored = new Map(contents.tensors.filter((t) => t.group === "param").map((t) => [t.name, t.data.length]));
  for (const { name, length } of entries) {
    const got = stored.get(name);
    if (got !== length) {
      throw new ModelFileError(source, `model file ${source}: parameter ${name} has ${got === undefined ? "no tensor" : `${got} values`}, the spec's network needs ${length}`);
    }
  }
}

/** The input scaling a file records: the library's meta.inputScaling, else the CLI's meta.preprocess.scaling. */
function storedScaling(contents: ModelFileContents, inputs: number): Scaling | undefined {
  const [field, value] = contents.meta.inputScaling !== undefined
    ? ["meta.inputScaling", contents.meta.inputScaling]
    : ["meta.preprocess.scaling", (contents.meta.preprocess as { scaling?: unknown } | undefined)?.scaling];
  if (value === undefined) return undefined;
  const scaling = asScaling(value, inputs);
  if (typeof scaling === "string") throw new Error(`${field}: ${scaling}`);
  return scaling;
}

/** A count the file records (absent: 0): an integer >= 0, else an error naming the field. */
function wholeNumber(value: unknown, field: string): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new Error(`${field} is ${JSON.stringify(value)}; expected a whole number >= 0`);
  return value;
}

function restoreState(model: Model, contents: ModelFileContents): void {
  const kind = contents.meta.optimizer as OptimizerKind | undefined;
  if (kind === undefined) return;
  if (!OPTIMIZERS.includes(kind)) throw new Error(`meta.optimizer is ${JSON.stringify(kind)}; expected one of ${OPTIMIZERS.join(", ")}`);
  const momentum = contents.meta.momentumSlots === 0 ? 0 : 0.9;
  const state = OptimizerState.create(model.network, kind, momentum);
  state.setTensors(contents.tensors.filter((t) => t.group === "optimizer"));
  state.step = wholeNumber(contents.meta.step, "meta.step");
  state.epochs = wholeNumber(contents.meta.stateEpochs, "meta.stateEpochs");
  model.state = state;
}

/**
 * The model as the bytes of a model file (what saveModel writes; a new array). Throws InvalidArgumentError
 * when `model` is not a Model, InvalidStateError when it was disposed.
 */
export function encodeModel(model: Model): Uint8Array {
  return encodeContents(modelContents(model, "encodeModel"), "<bytes>");
}

/**
 * The model encoded in `bytes` (a Uint8Array, or an ArrayBuffer, read without copying), of the class that encoded
 * it. Rejects with ModelFileError for bytes that are not a model file, InvalidArgumentError for arguments of the
 * wrong type.
 */
export async function decodeModel(bytes: Uint8Array | ArrayBuffer, options: DecodeModelOptions = {}): Promise<Model> {
  const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(view instanceof Uint8Array)) {
    throw new InvalidArgumentError(`decodeModel: bytes must be a Uint8Array (the contents of a model file), got ${describeValue(bytes)}`);
  }
  requireDecodeOptions("decodeModel", options);
  return modelFromContents(decodeContents(view, "<bytes>"), "<bytes>", options);
}
