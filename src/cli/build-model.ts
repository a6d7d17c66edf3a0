// From train settings and the data's shape to a model: the five kinds, an mlp's (or a config's full) spec checked
// early with errors that name the setting, its user neuron types imported early, and the settings each kind (or the
// data) ignores.
import { AutoEncoder, LinearRegression, LogisticRegression, MultiLayerPerceptron, Perceptron, type Model, type ModelOptions } from "../api/models.js";
import { Kernels } from "../core/kernels.js";
import { MemoryLimitError } from "../errors.js";
import { loadNeuronType } from "../model/neurons/registry.js";
import { NeuronTypeError, type NeuronRef } from "../model/neurons/types.js";
import { ACTIVATIONS, resolveSpec, SpecError, type NetworkSpec } from "../model/spec.js";
import type { TrainOptions } from "../train/options.js";
import type { Sources } from "./config.js";
import { isFile, type DataSource } from "./datasets.js";
import { CliError } from "./errors.js";
import { sharedMemoryAvailable } from "../runtime/isolation.js";
import { formatBytes } from "../util/bytes.js";
import { flagName, MAX_MODEL_MEMORY_BYTES, type ModelName, type SettingKey, type TrainSettings } from "./settings.js";
import { withSource } from "./train-options.js";

/** Inputs and outputs of the data a model is built for; `name` is the data's, for messages. */
export interface Shape {
  readonly inputs: number;
  readonly outputs: number;
  readonly name: string;
}

/** The layer-shaping settings a full spec replaces. */
const LAYER_KEYS = ["hidden", "activation", "neuron", "outputActivation", "dropout"] as const;

/** Settings each kind does not use (beside the data, training and output ones). */
const IGNORED: Record<ModelName, readonly SettingKey[]> = {
  mlp: [],
  perceptron: ["hidden", "activation", "neuron", "outputActivation", "cost", "dropout", "init"],
  linear: ["hidden", "activation", "neuron", "outputActivation", "cost", "dropout", "init"],
  logistic: ["hidden", "activation", "neuron", "outputActivation", "cost", "dropout", "init"],
  autoencoder: ["neuron", "outputActivation", "cost", "dropout", "init"],
};

/** The spec of an mlp: from a config's full spec (cost, init and seed settings override it) or from the settings. */
export function mlpSpec(settings: TrainSettings, shape: Omit<Shape, "name">): NetworkSpec {
  const { spec } = settings;
  const common = { cost: settings.cost ?? spec?.cost, init: settings.init ?? spec?.init, seed: settings.seed ?? spec?.seed };
  const sparse = settings.sparse ? { sparseInputs: true } : {};
  if (spec) return { ...spec, inputs: spec.inputs ?? shape.inputs, layers: spec.layers ?? [], ...common, ...sparse };
  return MultiLayerPerceptron.mlpSpec({ ...sparse,
    inputs: shape.inputs, outputs: shape.outputs, hidden: settings.hidden, dropout: settings.dropout,
    hiddenActivation: settings.activation, outputActivation: settings.outputActivation, ...common,
    ...(settings.neuron === undefined ? {} : { hiddenNeuron: settings.neuron }),
  });
}

/** The user neuron types an mlp of these settings uses (none for the other kinds), each with the setting that names it. */
function neuronRefs(settings: TrainSettings, sources: Sources): Array<{ ref: NeuronRef; source: string }> {
  if (settings.model !== "mlp") return [];
  const layers = settings.spec ? (settings.spec.layers ?? []) : settings.neuron === undefined ? [] : [{ neuron: settings.neuron }];
  const source = (i: number) => (settings.spec ? `${sources.spec ?? "spec"}: layers[${i}].neuron` : (sources.neuron ?? "--neuron"));
  return layers.flatMap((layer, i) => {
    const { neuron } = layer as { neuron?: unknown };
    if (typeof neuron === "string") {
      const at = neuron.lastIndexOf("#");
      return at > 0 ? [{ ref: { module: neuron.slice(0, at), export: neuron.slice(at + 1) }, source: source(i) }] : [];
    }
    const ref = neuron as Partial<NeuronRef> | undefined;
    return typeof ref?.module === "string" && typeof ref.export === "string" ? [{ ref: { module: ref.module, export: ref.export }, source: source(i) }] : [];
  });
}

/**
 * Imports the user neuron types the settings' mlp uses (--neuron, or a full spec's layers; their modules already
 * absolute, see resolveSettings), so that a missing module or export stops the run before any data is read: a
 * NeuronTypeError naming the setting, the export and the module.
 */
export async function loadModelNeurons(settings: TrainSettings, sources: Sources): Promise<void> {
  for (const { ref, source } of neuronRefs(settings, sources)) await loadNamedNeuron(ref, `${source} ${ref.export}`);
}

/**
 * Imports a user type (once per thread), `what` naming it in errors; a NeuronTypeError whose message lacks the module
 * (an export that is not a neuron type) gets `what` and the module put first.
 */
export async function loadNamedNeuron(ref: NeuronRef, what: string): Promise<void> {
  try {
    await loadNeuronType(ref, what);
  } catch (error) {
    if (error instanceof NeuronTypeError && !error.message.includes(ref.module)) error.message = `${what} from ${ref.module}: ${error.message}`;
    throw error;
  }
}

/** The kinds a sparse first layer (--sparse) is built for. */
export const SPARSE_MODELS: readonly ModelName[] = ["mlp", "logistic"];

/** --sparse with a model kind that has no sparse first layer, or with input scaling (--normalize): a CliError naming both. */
export function checkSparseSettings(settings: TrainSettings, sources: Sources): void {
  if (!settings.sparse) return;
  const flag = sources.sparse ?? "--sparse";
  if (!SPARSE_MODELS.includes(settings.model)) {
    throw new CliError(`${flag} builds a sparse first layer for ${SPARSE_MODELS.join(" or ")} models, but ${sources.model ?? "--model"} asks for ${settings.model}; use --model ${SPARSE_MODELS.join(" or --model ")}`);
  }
  if (settings.normalize !== undefined && settings.normalize !== "none") {
    throw new CliError(`${sources.normalize ?? "--normalize"} ${settings.normalize}: ${flag} rows are not scaled (scaling would make every absent feature present); leave it out or give --normalize none`);
  }
}

/** Checks the model settings before any data is read: conflicts with a full spec, and the spec itself. */
export function checkModelSettings(settings: TrainSettings, sources: Sources): void {
  checkSparseSettings(settings, sources);
  if (settings.spec) {
    if (settings.model !== "mlp") throw new CliError(`${sources.spec}: a full spec builds an mlp, but ${sources.model} asks for ${settings.model}`);
    const layerKey = LAYER_KEYS.find((key) => sources[key]);
    if (layerKey) throw new CliError(`${sources[layerKey]} cannot change the layers of the full spec (${sources.spec}); edit the spec instead`);
  }
  if (settings.model === "autoencoder" && settings.hidden.length !== 1) {
    throw new CliError(`${sources.hidden ?? "--hidden"}: an autoencoder has one hidden layer (its code); got ${settings.hidden.length} sizes: ${settings.hidden.join(",")}`);
  }
  if (settings.model !== "mlp") return;
  checkBuiltinNeuron(settings, sources);
  const outputs = settings.spec?.layers?.at(-1)?.units ?? 2;
  try {
    resolveSpec(mlpSpec(settings, { inputs: settings.spec?.inputs ?? 1, outputs: typeof outputs === "number" ? outputs : 2 }));
  } catch (error) {
    throw withSource(error, sourceOfSpecError((error as Error).message, settings, sources));
  }
}

/** --neuron naming a built-in type acts as --activation: both given, and different, is refused. */
function checkBuiltinNeuron(settings: TrainSettings, sources: Sources): void {
  const { neuron, activation } = settings;
  if (neuron === undefined || !(ACTIVATIONS as readonly string[]).includes(neuron) || sources.activation === undefined || activation === neuron) return;
  throw new CliError(`${sources.neuron} names the built-in type ${neuron}, which is an activation, but ${sources.activation} asks for ${activation}; keep one of them`);
}

/** Which setting a SpecError's field came from: "layers[0].dropout" -> dropout, "cost ..." -> cost. */
function sourceOfSpecError(message: string, settings: TrainSettings, sources: Sources): string | undefined {
  if (settings.spec) return /^(cost|init|seed)\b/.test(message) ? (sources[message.split(/\W/)[0]!] ?? sources.spec) : sources.spec;
  const layer = /^layers\[(\d+)\]\.(\w+)/.exec(message);
  if (!layer) return sources[message.split(/\W/)[0]!];
  const isOutput = Number(layer[1]) === settings.hidden.length;
  const key = { units: "hidden", dropout: "dropout", neuron: "neuron", activation: isOutput ? "outputActivation" : "activation" }[layer[2]!];
  return key ? sources[key] : undefined;
}

/** The settings given (not defaults) that `settings.model` does not use, as the user wrote them. */
export function ignoredSettings(settings: TrainSettings, sources: Sources): string[] {
  return IGNORED[settings.model].filter((key) => sources[key] !== undefined).map((key) => sources[key]!);
}

/** The settings of reading data files; the CSV ones mean nothing to libsvm and idx files, and none to the presets. */
const CSV_KEYS = ["labelColumn", "features", "delimiter", "comment", "header"] as const satisfies readonly SettingKey[];
const FILE_KEYS = [...CSV_KEYS, "classes"] as const satisfies readonly SettingKey[];

/** A warning for the data-file settings given that `source` does not use (with a preset, or CSV ones with another format). */
export function ignoredDataSettings(source: DataSource, sources: Sources): string | undefined {
  const given = (keys: readonly SettingKey[]) => keys.filter((key) => sources[key] !== undefined).map((key) => sources[key]!);
  if (!isFile(source)) {
    const unused = given(FILE_KEYS);
    if (unused.length === 0) return undefined;
    return `${sources.data ?? "--data"} ${source.name} is a preset, not a data file: ${unused.join(", ")} ${unused.length === 1 ? "is" : "are"} ignored`;
  }
  if (source.format === "csv") return undefined;
  const unused = given(CSV_KEYS);
  if (unused.length === 0) return undefined;
  return `${source.name} is read as ${source.format} (chosen by ${source.how}), which has no CSV columns: ${unused.join(", ")} ${unused.length === 1 ? "is" : "are"} ignored`;
}

/**
 * A fresh model of the settings' kind for data of `shape`; `train` becomes its training defaults (saved with it).
 * With --memory-limit the model gets its own core whose memory is limited to that (at most 4 GiB); a model too
 * big for its memory is a CliError naming the settings that size it and --memory-limit.
 */
export async function createModel(settings: TrainSettings, shape: Shape, train: TrainOptions, sources: Sources = {}): Promise<Model> {
  const kernels = await modelKernels(settings.memoryLimit);
  try {
    return await createModelOn(settings, shape, { train, ...(kernels ? { kernels } : {}) });
  } catch (error) {
    // A spec the data's shape makes wrong (softmax over the one output of the data) names its setting too.
    if (error instanceof SpecError) throw withSource(error, sourceOfSpecError(error.message, settings, sources));
    throw asMemoryLimitAdvice(error, settings, shape, sources);
  }
}

/** The core of a model: undefined (the default core, 1 GiB) without a limit, else one limited to `memoryLimit` (capped at 4 GiB). */
async function modelKernels(memoryLimit: number | undefined): Promise<Kernels | undefined> {
  if (memoryLimit === undefined) return undefined;
  const maxBytes = Math.min(memoryLimit, MAX_MODEL_MEMORY_BYTES);
  if (sharedMemoryAvailable()) {
    try {
      return await Kernels.load({ shared: true, maxBytes });
    } catch {
      // as the default core: private memory where shared memory cannot be had (then training runs on the main thread)
    }
  }
  return Kernels.load({ shared: false, maxBytes });
}

/**
 * A MemoryLimitError (the model's memory cannot hold it) as a CliError naming what sizes the model (--hidden or
 * the spec, the data's features and outputs, and while `training` the batch size) and --memory-limit; any other
 * error as it is.
 */
export function asMemoryLimitAdvice(error: unknown, settings: TrainSettings, shape: Shape, sources: Sources, training = false): unknown {
  if (!(error instanceof MemoryLimitError)) return error;
  const limit = sources.memoryLimit ?? "--memory-limit";
  const limitText = `the model's memory limit of ${formatBytes(error.limitBytes)}${settings.memoryLimit === undefined ? "" : ` (${limit})`}`;
  const problem = training
    ? `training needs another ${formatBytes(error.neededBytes)}, more than is free within ${limitText}`
    : `${error.what} needs ${formatBytes(error.neededBytes)}, more than ${limitText}`;
  const units = settings.spec ? (sources.spec ?? "the spec") : settings.model === "mlp" || settings.model === "autoencoder" ? (sources.hidden ?? "--hidden") : undefined;
  const fixes = [
    ...(units ? [`use fewer units in ${units}`] : []),
    ...(training ? [`a smaller ${sources.batchSize ?? "--batch-size"}`] : []),
    `data with fewer features (${shape.name}: ${shape.inputs} input${shape.inputs === 1 ? "" : "s"}, ${shape.outputs} output${shape.outputs === 1 ? "" : "s"})`,
    error.limitBytes < MAX_MODEL_MEMORY_BYTES
      ? `raise ${limit} (the model's memory can hold up to ${formatBytes(MAX_MODEL_MEMORY_BYTES)})`
      : `(${formatBytes(MAX_MODEL_MEMORY_BYTES)} is the most the model's memory can hold)`,
  ];
  const last = fixes.pop()!;
  const advice = last.startsWith("(") ? `${fixes.join(", ")} ${last}` : `${fixes.join(", ")}, or ${last}`;
  return new CliError(`${problem}: ${advice}`, { cause: error });
}

async function createModelOn(settings: TrainSettings, shape: Shape, options: ModelOptions): Promise<Model> {
  const seed = settings.seed;
  switch (settings.model) {
    case "mlp":
      return MultiLayerPerceptron.create(checkedSpec(settings, shape), options);
    case "perceptron":
      return Perceptron.create({ inputs: shape.inputs, outputs: shape.outputs, seed }, options);
    case "linear":
      return LinearRegression.create({ inputs: requireOneOutput("linear", shape), seed }, options);
    case "logistic":
      return LogisticRegression.create({ inputs: requireOneOutput("logistic", shape), seed, ...(settings.sparse ? { sparseInputs: true } : {}) }, options);
    case "autoencoder":
      return AutoEncoder.create({ inputs: shape.inputs, hidden: settings.hidden[0]!, activation: settings.activation, seed }, options);
  }
}

function checkedSpec(settings: TrainSettings, shape: Shape): NetworkSpec {
  const spec = mlpSpec(settings, shape);
  if (spec.inputs !== shape.inputs) throw new CliError(`${settings.spec ? "spec.inputs" : "inputs"} is ${spec.inputs}, but ${shape.name} has ${shape.inputs} features`);
  const units = spec.layers.at(-1)?.units;
  if (settings.spec && units !== shape.outputs) {
    throw new CliError(`the spec's output layer has ${units} units, but ${shape.name} has ${shape.outputs} output${shape.outputs === 1 ? "" : "s"} per row`);
  }
  return spec;
}

function requireOneOutput(kind: ModelName, shape: Shape): number {
  if (shape.outputs !== 1) {
    throw new CliError(
      `model ${kind} gives one output, but ${shape.name} has ${shape.outputs} outputs per row (one-hot classes); use --model mlp or perceptron, or data whose label is one value (no ${flagName("classes")})`,
    );
  }
  return shape.inputs;
}
