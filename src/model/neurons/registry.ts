// The one registry of neuron types: the built-ins (the core's kernels, by activation name) and user types keyed by
// "module#export". User types are imported once per thread (loadNeuronTypes) before a network or a training step
// needs them; a definition passed directly is registered in-process and can only run on the thread that has it.
import { type Activation, ACTIVATIONS } from "./builtin-names.js";
import { classifyNeuronType, NeuronTypeError, type ClassifiedType, type NeuronRef, type NeuronType } from "./types.js";

/** One entry of the registry: a built-in (its implementation is the core's kernels) or a loaded user type. */
export type NeuronEntry = { name: Activation; form: "kernel" } | (ClassifiedType & { name: string; ref: NeuronRef });

const builtins = new Map<string, NeuronEntry>(ACTIVATIONS.map((name) => [name, { name, form: "kernel" as const }]));
const loaded = new Map<string, ClassifiedType>();
const imports = new Map<string, Promise<Record<string, unknown>>>();

/** "module#export": the registry key of a user type. */
export function neuronKey(ref: NeuronRef): string {
  return `${ref.module}#${ref.export}`;
}

/** Every type this thread can run: the built-ins, then the user types loaded or registered so far. */
export function neuronTypes(): NeuronEntry[] {
  const users = [...loaded.entries()].map(([key, type]) => {
    const at = key.lastIndexOf("#");
    return { ...type, name: key.slice(at + 1), ref: { module: key.slice(0, at), export: key.slice(at + 1) } };
  });
  return [...builtins.values(), ...users];
}

/** The entry of a layer's type: its user type (loaded on this thread) or the built-in its activation names. */
export function neuronEntry(layer: { activation: Activation; neuron?: NeuronRef }, what: string): NeuronEntry {
  if (!layer.neuron) {
    const builtin = builtins.get(layer.activation);
    if (!builtin) throw new NeuronTypeError(`${what}: ${JSON.stringify(layer.activation)} is not a built-in neuron type (${ACTIVATIONS.join(", ")})`, { module: "", export: String(layer.activation) });
    return builtin;
  }
  return { ...requireNeuronType(layer.neuron, what), name: layer.neuron.export, ref: layer.neuron };
}

/** The user type a reference names, once loaded or registered; undefined otherwise. */
export function loadedNeuronType(ref: NeuronRef): ClassifiedType | undefined {
  return loaded.get(neuronKey(ref));
}

/** The loaded type of `ref`; throws NeuronTypeError saying how to load it. */
export function requireNeuronType(ref: NeuronRef, what: string): ClassifiedType {
  const found = loaded.get(neuronKey(ref));
  if (found) return found;
  if (!ref.module) {
    throw new NeuronTypeError(`${what}: the neuron type ${ref.export} was defined in another thread or process and has no module to import it from; give it a module (module: import.meta.url) and export it`, ref);
  }
  throw new NeuronTypeError(`${what}: the neuron type ${ref.export} from ${ref.module} is not loaded; await loadNeuronTypes(spec) first (models, trainers and workers do)`, ref);
}

/** Registers a type under a reference (in-process); `ref.module` "" means it cannot leave this thread. */
export function registerNeuronType(ref: NeuronRef, type: NeuronType, what = `neuron type ${ref.export}`): ClassifiedType {
  const classified = classifyNeuronType(type, ref, what);
  loaded.set(neuronKey(ref), classified);
  return classified;
}

/** The reference of a definition passed directly: its `module` (if any) and its name; registers it. */
export function refOfDefinition(type: NeuronType, field: string): NeuronRef {
  const named = type as { name?: unknown; exportName?: unknown; module?: unknown };
  const name = typeof named.exportName === "string" ? named.exportName : typeof named.name === "string" && named.name ? named.name : "";
  if (!name) throw new NeuronTypeError(`${field}: a neuron type passed directly needs a name (a named class, or name: "...")`, { module: "", export: "" });
  const ref = { module: typeof named.module === "string" ? resolveModuleSpecifier(named.module) : "", export: name };
  registerNeuronType(ref, type);
  return ref;
}

// The folder relative module specifiers start from: the working directory, or the page in a browser.
function defaultBase(): string {
  const g = globalThis as { process?: { cwd?: () => string }; Deno?: { cwd?: () => string }; location?: { href?: string } };
  const cwd = g.process?.cwd?.() ?? g.Deno?.cwd?.();
  if (cwd) return fileUrlOf(cwd.endsWith("/") || cwd.endsWith("\\") ? cwd : `${cwd}/`);
  return g.location?.href ?? "file:///";
}

function fileUrlOf(path: string): string {
  const slashed = path.replace(/\\/g, "/");
  const encoded = encodeURI(slashed).replace(/#/g, "%23").replace(/\?/g, "%3F");
  return `file://${slashed.startsWith("/") ? "" : "/"}${encoded}`;
}

const isPath = (s: string) => s.startsWith("./") || s.startsWith("../") || s.startsWith("/") || /^[A-Za-z]:[\\/]/.test(s) || s.startsWith(".\\") || s.startsWith("..\\");

/** An absolute URL for a path or relative specifier (from `base`, default the working directory); URLs and bare package names unchanged. */
export function resolveModuleSpecifier(specifier: string, base = defaultBase()): string {
  if (!isPath(specifier)) return specifier;
  if (specifier.startsWith("/") || /^[A-Za-z]:[\\/]/.test(specifier)) return fileUrlOf(specifier);
  return new URL(specifier.replace(/\\/g, "/"), base).href;
}

/**
 * "MODULE#EXPORT" (./neurons.js#Swish) as a reference whose module is absolute. Throws NeuronTypeError naming
 * `field` when the text has no "#EXPORT".
 */
export function parseNeuronSpecifier(text: string, field: string, base?: string): NeuronRef {
  const at = text.lastIndexOf("#");
  if (at <= 0 || at === text.length - 1) {
    throw new NeuronTypeError(`${field}: ${JSON.stringify(text)} is not a neuron type; expected MODULE#EXPORT (like ./neurons.js#Swish) or one of ${ACTIVATIONS.join(", ")}`, { module: text, export: "" });
  }
  return { module: resolveModuleSpecifier(text.slice(0, at), base), export: text.slice(at + 1) };
}

function importOnce(module: string): Promise<Record<string, unknown>> {
  let pending = imports.get(module);
  if (!pending) {
    pending = import(/* @vite-ignore */ module) as Promise<Record<string, unknown>>;
    imports.set(module, pending);
    pending.catch(() => imports.delete(module));
  }
  return pending;
}

/** Imports a user type's module (once per thread) and registers the export; throws NeuronTypeError naming both. */
export async function loadNeuronType(ref: NeuronRef, what = `neuron type ${ref.export}`): Promise<ClassifiedType> {
  const found = loaded.get(neuronKey(ref));
  if (found) return found;
  if (!ref.module) requireNeuronType(ref, what);
  let namespace: Record<string, unknown>;
  try {
    namespace = await importOnce(ref.module);
  } catch (error) {
    throw new NeuronTypeError(`${what}: cannot import the module ${ref.module}: ${(error as Error)?.message ?? error}`, ref, { cause: error });
  }
  if (!(ref.export in namespace)) {
    const names = Object.keys(namespace).filter((k) => k !== "default");
    throw new NeuronTypeError(`${what}: the module ${ref.module} has no export ${JSON.stringify(ref.export)} (it exports ${names.length ? names.join(", ") : "nothing"})`, ref);
  }
  return registerNeuronType(ref, namespace[ref.export] as NeuronType, `${what}: the export ${JSON.stringify(ref.export)} of ${ref.module}`);
}

/** Loads every user type a spec's layers name (a resolved spec, or one read from a model file). */
export async function loadNeuronTypes(spec: { layers: ReadonlyArray<{ neuron?: unknown }> }): Promise<void> {
  for (const [l, layer] of spec.layers.entries()) {
    const ref = layer.neuron as NeuronRef | undefined;
    if (ref && typeof ref === "object" && typeof ref.module === "string" && typeof ref.export === "string") {
      await loadNeuronType(ref, `layers[${l}].neuron ${ref.export}`);
    }
  }
}
