// Train settings from defaults < a JSON config file < command-line flags, with the config file checked key by key
// (unknown keys and wrongly typed values name the key and the file) and the source of every value recorded. Neuron
// types' modules are made absolute here (a flag's from the working directory, a config file's from its folder) and
// imported before any data is read.
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ACTIVATIONS, type LayerSpec } from "../model/spec.js";
import { parseNeuronSpecifier, resolveModuleSpecifier } from "../model/neurons/registry.js";
import type { NeuronRef } from "../model/neurons/types.js";
import { didYouMean } from "../train/suggest.js";
import { loadModelNeurons } from "./build-model.js";
import { CliError, ConfigError } from "./errors.js";
import { readablePath } from "./io.js";
import { isDelimiter, isHoldout } from "./parse.js";
import { parseBytes } from "../util/bytes.js";
import {
  DEFAULT_SETTINGS, FLAT_TRAIN_KEYS, SETTINGS, TRAIN_OPTION_KEYS, flagName, settingDef,
  type SettingDef, type SettingKey, type TrainSettings,
} from "./settings.js";

/** Flags as commander parsed them, plus --config. */
export type TrainFlags = Partial<TrainSettings> & { config?: string };

/** Where each setting that is not a default came from, as messages name it: "--epochs" or 'config file run.json, "epochs"'. */
export type Sources = Partial<Record<string, string>>;

export interface ResolvedSettings {
  readonly settings: TrainSettings;
  readonly sources: Sources;
}

/**
 * Merges defaults, the --config file (read relative to cwd) and the flags given; neuron types' modules become
 * absolute URLs (--neuron's from cwd, the file's from its folder) and the types the model uses are imported
 * (NeuronTypeError naming the setting, the module and the export when one cannot be).
 */
export async function resolveSettings(flags: TrainFlags, cwd: string): Promise<ResolvedSettings> {
  const { config, ...given } = flags;
  const file = config === undefined ? undefined : await readResolvedConfig(cwd, config);
  const resolved = mergeSettings(file, given.neuron === undefined ? given : { ...given, neuron: resolveNeuronText(given.neuron, "--neuron", folderUrl(cwd), CliError) });
  await loadModelNeurons(resolved.settings, resolved.sources);
  return resolved;
}

/** The config file `config` (relative to cwd), its neuron types' modules made absolute from the file's folder. */
async function readResolvedConfig(cwd: string, config: string): Promise<{ name: string; values: Partial<TrainSettings> }> {
  const values = await readConfigFile(readablePath(cwd, config), config);
  const base = folderUrl(dirname(resolve(cwd, config)));
  const neuron = values.neuron === undefined ? {} : { neuron: resolveNeuronText(values.neuron, `config file ${config}, "neuron"`, base, ConfigError) };
  const layers = values.spec?.layers?.map((layer, i) => resolveLayerNeuron(layer, `config file ${config}, "spec.layers[${i}].neuron"`, base));
  return { name: config, values: { ...values, ...neuron, ...(layers ? { spec: { ...values.spec, layers } } : {}) } };
}

/** "file:///dir/": the URL of a folder, as the base of relative module specifiers. */
function folderUrl(dir: string): string {
  const href = pathToFileURL(dir).href;
  return href.endsWith("/") ? href : `${href}/`;
}

/** A neuron setting is well formed: a built-in type's name, or MODULE#EXPORT with both parts non-empty. */
export function isNeuronText(value: unknown): value is string {
  if (typeof value !== "string" || value === "") return false;
  if ((ACTIVATIONS as readonly string[]).includes(value)) return true;
  const at = value.lastIndexOf("#");
  return at > 0 && at < value.length - 1;
}

const NEURON_FORM = `MODULE#EXPORT (like ./neurons.js#Swish) or a built-in type (${ACTIVATIONS.join(", ")})`;

/** A built-in name as it is; MODULE#EXPORT with its module absolute (from `base`); else an `Err` naming `source`. */
function resolveNeuronText(text: string, source: string, base: string, Err: new (message: string) => Error): string {
  if (!isNeuronText(text)) throw new Err(`${source}: ${describe(text)} is not a neuron type; expected ${NEURON_FORM}`);
  if ((ACTIVATIONS as readonly string[]).includes(text)) return text;
  const ref = parseNeuronSpecifier(text, source, base);
  return `${ref.module}#${ref.export}`;
}

/** A full spec's layer with its neuron type's module (MODULE#EXPORT or { module, export }) absolute from `base`. */
function resolveLayerNeuron(layer: LayerSpec, source: string, base: string): LayerSpec {
  const { neuron } = layer;
  if (typeof neuron === "string") return { ...layer, neuron: resolveNeuronText(neuron, source, base, ConfigError) };
  if (isNeuronRef(neuron)) return { ...layer, neuron: { module: resolveModuleSpecifier(neuron.module, base), export: neuron.export } };
  return layer;
}

function isNeuronRef(value: unknown): value is NeuronRef {
  return isObject(value) && typeof value.module === "string" && value.module !== "" && typeof value.export === "string" && value.export !== "";
}

/** Defaults < file values < flags; a flag that is undefined was not given. */
export function mergeSettings(file: { name: string; values: Partial<TrainSettings> } | undefined, flags: Partial<TrainSettings>): ResolvedSettings {
  if (file) refuseSetTwice(file.values, file.name);
  const settings: Record<string, unknown> = { ...DEFAULT_SETTINGS };
  const sources: Sources = {};
  for (const [key, value] of Object.entries(file?.values ?? {})) {
    settings[key] = settingDef(key)?.type === "bytes" && typeof value === "string" ? parseBytes(value) : value;
    sources[key] = `config file ${file!.name}, "${key}"`;
  }
  for (const key of Object.keys(file?.values.train ?? {})) sources[`train.${key}`] = `config file ${file!.name}, "train.${key}"`;
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    settings[key] = value;
    sources[key] = value === false && settingDef(key)?.off ? `--no-${flagName(key as SettingKey).slice(2)}` : flagName(key as SettingKey);
  }
  return { settings: settings as unknown as TrainSettings, sources };
}

/** A training option set both at the top of a config and in its "train" object is refused: which one wins is not obvious. */
function refuseSetTwice(values: Partial<TrainSettings>, name: string): void {
  const train: Partial<Record<string, unknown>> = { ...values.train };
  const key = FLAT_TRAIN_KEYS.find((k) => values[k] !== undefined && train[k] !== undefined);
  if (key) throw new ConfigError(`config file ${name}: "${key}" and "train.${key}" both set ${key}; keep one of them`);
  if (values.convergenceWindow !== undefined && values.train?.convergence?.window !== undefined) {
    throw new ConfigError(`config file ${name}: "convergenceWindow" and "train.convergence.window" both set the convergence window; keep one of them`);
  }
}

/** Reads and checks a config file; `name` is how messages refer to it. */
export async function readConfigFile(path: string, name = path): Promise<Partial<TrainSettings>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`config file ${name}: cannot read it (${(error as Error).message})`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, "")); // a UTF-8 byte order mark (some editors write one) is not JSON
  } catch (error) {
    throw new ConfigError(`config file ${name}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  return checkConfig(json, name);
}

/** The config's settings after checking every key and value; throws ConfigError naming the key and the file. */
export function checkConfig(json: unknown, name: string): Partial<TrainSettings> {
  if (!isObject(json)) throw new ConfigError(`config file ${name}: expected a JSON object of settings like { "epochs": 20 }, got ${describe(json)}`);
  for (const [key, value] of Object.entries(json)) {
    const def = settingDef(key);
    if (!def) throw new ConfigError(`config file ${name}: unknown key ${quoted(key)}${suggestion(key)}; the keys are ${SETTINGS.map((s) => s.key).join(", ")}`);
    const expected = problem(def, value);
    if (expected) throw new ConfigError(`config file ${name}: "${key}" must be ${expected}, got ${describe(value)}`);
  }
  if (json.train !== undefined) checkKeys(json.train as Record<string, unknown>, "train", TRAIN_OPTION_KEYS, name);
  if (json.spec !== undefined) checkSpecKeys(json.spec as Record<string, unknown>, name);
  return json as Partial<TrainSettings>;
}

/** What `value` should have been for `def`, or undefined when it is fine. */
function problem(def: SettingDef, value: unknown): string | undefined {
  switch (def.type) {
    case "string":
      return typeof value === "string" && value !== "" ? undefined : "a non-empty string";
    case "integer":
      return Number.isInteger(value) ? undefined : "an integer";
    case "number":
      return typeof value === "number" && Number.isFinite(value) ? undefined : "a number";
    case "boolean":
      return typeof value === "boolean" ? undefined : "true or false";
    case "integers":
      return Array.isArray(value) && value.length > 0 && value.every(Number.isInteger) ? undefined : "an array of integers, like [256, 128]";
    case "holdout":
      return isHoldout(value) ? undefined : "a count of rows (an integer >= 0) or a fraction in (0, 1)";
    case "column":
      return Number.isInteger(value) || (typeof value === "string" && value !== "") ? undefined : "a column index or a header name";
    case "columns":
      return Array.isArray(value) && value.length > 0 && value.every((c) => Number.isInteger(c) && c >= 0) ? undefined : "an array of 0-based column indices, like [0, 1, 2]";
    case "delimiter":
      return isDelimiter(value) ? undefined : 'one character, like ";" or "\t"';
    case "choice":
      return def.choices!.includes(value as string) ? undefined : `one of ${def.choices!.map((c) => `"${c}"`).join(", ")}`;
    case "file-or-off":
      return (typeof value === "string" && value !== "") || value === false ? undefined : "a file name, or false";
    case "object":
      return isObject(value) ? undefined : "an object";
    case "neuron":
      return isNeuronText(value) ? undefined : NEURON_FORM;
    case "bytes":
      return (typeof value === "number" && Number.isInteger(value) && value > 0) || (typeof value === "string" && (parseBytes(value) ?? 0) > 0)
        ? undefined
        : 'a size like "512M" or "8G", or a number of bytes';
  }
}

function checkSpecKeys(spec: Record<string, unknown>, name: string): void {
  checkKeys(spec, "spec", ["inputs", "layers", "cost", "init", "seed"], name);
  if (!Array.isArray(spec.layers)) throw new ConfigError(`config file ${name}: "spec.layers" must be an array of layers like { "units": 10 }, got ${describe(spec.layers)}`);
  spec.layers.forEach((layer, i) => {
    if (!isObject(layer)) throw new ConfigError(`config file ${name}: "spec.layers[${i}]" must be an object like { "units": 10 }, got ${describe(layer)}`);
    checkKeys(layer, `spec.layers[${i}]`, ["units", "activation", "dropout", "neuron"], name);
    if (layer.neuron !== undefined) checkLayerNeuron(layer.neuron, `spec.layers[${i}].neuron`, name);
  });
}

/** A full spec's layer neuron: MODULE#EXPORT, a built-in name, or { "module": ..., "export": ... }. */
function checkLayerNeuron(neuron: unknown, path: string, name: string): void {
  if (isNeuronText(neuron)) return;
  if (isObject(neuron)) {
    checkKeys(neuron, path, ["module", "export"], name);
    if (isNeuronRef(neuron)) return;
  }
  throw new ConfigError(`config file ${name}: "${path}" must be ${NEURON_FORM}, or { "module": "./neurons.js", "export": "Swish" }; got ${describe(neuron)}`);
}

function checkKeys(object: Record<string, unknown>, path: string, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw new ConfigError(`config file ${name}: unknown key ${quoted(`${path}.${key}`)}; "${path}" may hold ${allowed.join(", ")}`);
  }
}

/** ' (did you mean "batchSize"?)' for a kebab-case, abbreviated ("lr") or slightly misspelled key (src/train/suggest.ts). */
function suggestion(key: string): string {
  if (key.length > MAX_SHOWN) return "";
  return didYouMean(key, SETTINGS.map((s) => s.key));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The most characters of a key or value a message shows. */
const MAX_SHOWN = 80;

/** A value as JSON for messages, cut after MAX_SHOWN characters (and never failing on deep nesting). */
function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  try {
    return shorten(JSON.stringify(value));
  } catch {
    return "a value nested too deeply to show";
  }
}

/** "\"key\"", cut after MAX_SHOWN characters. */
function quoted(key: string): string {
  return `"${shorten(key)}"`;
}

function shorten(text: string): string {
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}... (${text.length} characters)` : text;
}
