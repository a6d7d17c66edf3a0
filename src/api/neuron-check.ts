// The conformance tester of a neuron type (`downpour check-neuron`, checkNeuron()): whole-network gradients against
// central finite differences, finite outputs and gradients over a sweep of inputs up to large magnitudes, and the
// same trained weights on 0, 1 and 2 worker threads. The built-ins pass it; the gradient tests run it on them.
import { Kernels } from "../core/kernels.js";
import { createDataset, type Dataset } from "../data/dataset.js";
import type { SparseDataset } from "../data/sparse.js";
import { mulberry32 } from "../util/random.js";
import { evaluate } from "../train/evaluate.js";
import { computeGradients } from "../train/gradients.js";
import { LocalTrainer } from "../train/trainer.js";
import { Network } from "../model/network.js";
import { resolveSpec, type Activation, type LayerSpec, type NetworkSpec } from "../model/spec.js";
import { ACTIVATIONS } from "../model/neurons/builtin-names.js";
import { loadNeuronTypes } from "../model/neurons/registry.js";
import type { NeuronForm, NeuronRef } from "../model/neurons/types.js";
import { layerOps } from "../model/neurons/ops.js";

/** Options of checkNeuron. */
export interface CheckNeuronOptions {
  /** The layers' activation (a per-neuron type's squashing function). Default "sigmoid". */
  activation?: Activation;
  /** Thread counts whose trained weights must agree. Default [0, 1, 2]. */
  threads?: number[];
  /** Seed of the data and weights. Default 7. */
  seed?: number;
  /** Kernels to use (shared memory, for the thread check). Default: loaded once per call. */
  kernels?: Kernels;
}

/** One check's outcome. */
export interface NeuronCheck {
  name: "gradients" | "finite" | "threads";
  status: "passed" | "failed" | "skipped";
  /** What was compared and the worst figure, or why it failed. */
  detail: string;
}

/** What checkNeuron found. */
export interface NeuronCheckReport {
  /** The type as given ("sigmoid", or "file:///…/neurons.js#Swish"). */
  type: string;
  form: NeuronForm;
  passed: boolean;
  checks: NeuronCheck[];
}

/** The central-difference step and tolerance of the gradient check (f32 arithmetic; as the engine's own tests). */
export const GRADIENT_CHECK = { step: 1e-3, absolute: 3e-3, relative: 3e-2 } as const;

/** Magnitudes of the finite-output sweep, each with both signs (the weighted sums reach twice the largest). */
export const SWEEP = [0, 1e-30, 1e-6, 0.5, 1, 3, 10, 30, 100, 1e4, 1e8, 1e30] as const;

/** The worst disagreement between a network's analytic gradient (both GEMM paths) and central differences. */
export interface GradientCheckResult {
  checked: number;
  /** Parameters whose one-sided differences disagree (the loss has a kink there, as relu at 0): not judged. */
  kinks: number;
  failures: string[];
  /** The largest |numeric - analytic| / (absolute + relative * |numeric|): <= 1 passes. */
  worst: number;
  /** The prepacked and plain GEMM paths gave different gradients (they must agree bit for bit). */
  pathsDiffer?: string;
}

/** Checks every parameter's gradient of the mean loss over `data` against central differences. */
export function gradientCheck(network: Network, data: Dataset | SparseDataset): GradientCheckResult {
  const plain = computeGradients(network, data, { packed: false, portion: 3 }).tensors;
  const packed = computeGradients(network, data, { packed: true, portion: 3 }).tensors;
  const result: GradientCheckResult = { checked: 0, kinks: 0, failures: [], worst: 0 };
  const base = evaluate(network, data).loss;
  plain.forEach((tensor, t) => {
    if (!tensor.data.every((v, i) => Object.is(v, packed[t]!.data[i]))) result.pathsDiffer ??= tensor.name;
    const view = () => network.params.get(tensor.name).f32();
    for (let i = 0; i < tensor.data.length; i++) {
      const original = view()[i]!;
      view()[i] = original + GRADIENT_CHECK.step;
      const up = evaluate(network, data).loss;
      view()[i] = original - GRADIENT_CHECK.step;
      const down = evaluate(network, data).loss;
      view()[i] = original;
      const numeric = (up - down) / (2 * GRADIENT_CHECK.step);
      const analytic = tensor.data[i]!;
      const tolerance = GRADIENT_CHECK.absolute + GRADIENT_CHECK.relative * Math.abs(numeric);
      const oneSided = [(up - base) / GRADIENT_CHECK.step, (base - down) / GRADIENT_CHECK.step];
      if (Math.abs(oneSided[0]! - oneSided[1]!) > 2 * tolerance) {
        result.kinks++;
        continue;
      }
      const ratio = Math.abs(numeric - analytic) / tolerance;
      if (!(ratio <= 1)) result.failures.push(`${tensor.name}[${i}]: analytic ${analytic}, numeric ${numeric}`);
      result.worst = Math.max(result.worst, Number.isNaN(ratio) ? Infinity : ratio);
      result.checked++;
    }
  });
  return result;
}

// A hidden layer of `units` of the type under test.
function layerOf(type: string, units: number, activation: Activation): LayerSpec {
  return (ACTIVATIONS as readonly string[]).includes(type) ? { units, activation: type as Activation } : { units, activation, neuron: type };
}

function randomData(seed: number, rows: number, features: number, outputs: number, oneHot: boolean): Dataset {
  const random = mulberry32(seed);
  const x = Float32Array.from({ length: rows * features }, () => 3 * random() - 1.5);
  const y = new Float32Array(rows * outputs);
  for (let r = 0; r < rows; r++) {
    if (oneHot) y[r * outputs + Math.floor(random() * outputs)] = 1;
    else for (let j = 0; j < outputs; j++) y[r * outputs + j] = 1.8 * random() - 0.9;
  }
  return createDataset({ features, outputs, x, y });
}

// Two networks: one hidden layer of the type before an identity output (squared error), and two before softmax.
function gradientNetworks(type: string, activation: Activation, seed: number): Array<{ spec: NetworkSpec; data: Dataset }> {
  return [
    { spec: { inputs: 4, layers: [layerOf(type, 5, activation), { units: 3, activation: "identity" }], cost: "squared-error", init: "xavier", seed }, data: randomData(seed, 7, 4, 3, false) },
    {
      spec: { inputs: 4, layers: [layerOf(type, 5, activation), layerOf(type, 4, activation), { units: 3, activation: "softmax" }], init: "xavier", seed: seed + 1 },
      data: randomData(seed + 1, 7, 4, 3, true),
    },
  ];
}

function checkGradients(kernels: Kernels, type: string, activation: Activation, seed: number): NeuronCheck {
  let checked = 0;
  let kinks = 0;
  let worst = 0;
  for (const { spec, data } of gradientNetworks(type, activation, seed)) {
    const network = Network.create(kernels, spec);
    try {
      const result = gradientCheck(network, data);
      checked += result.checked;
      kinks += result.kinks;
      worst = Math.max(worst, result.worst);
      const shape = [spec.inputs, ...spec.layers.map((l) => l.units)].join("-");
      if (result.pathsDiffer) return { name: "gradients", status: "failed", detail: `${shape}: the prepacked and plain GEMM paths disagree on ${result.pathsDiffer}` };
      if (result.failures.length) {
        return { name: "gradients", status: "failed", detail: `${shape}: ${result.failures.length} of ${result.checked} gradients off; first ${result.failures[0]}` };
      }
    } finally {
      network.dispose();
    }
  }
  const skipped = kinks ? `; ${kinks} at kinks of the loss not judged` : "";
  if (checked < 2 * kinks) return { name: "gradients", status: "failed", detail: `${kinks} of ${checked + kinks} parameters sit at kinks: the loss is not smooth enough to check` };
  return {
    name: "gradients", status: "passed",
    detail: `${checked} parameters of 4-5-3 and 4-5-4-3 networks within ${GRADIENT_CHECK.absolute} + ${GRADIENT_CHECK.relative}·|g| of central differences (worst ${(100 * worst).toFixed(1)}% of the tolerance${skipped})`,
  };
}

// 1 input -> 4 units of the type (weights 1, -1, 0.5, 2) -> 1 sigmoid output (cross-entropy), over the sweep.
function checkFinite(kernels: Kernels, type: string, activation: Activation): NeuronCheck {
  const inputs = SWEEP.flatMap((v) => (v === 0 ? [0] : [v, -v]));
  const spec: NetworkSpec = { inputs: 1, layers: [layerOf(type, 4, activation), { units: 1, activation: "sigmoid" }], cost: "cross-entropy", init: "xavier", seed: 1 };
  const network = Network.create(kernels, spec);
  try {
    network.weights(0).set(Float32Array.of(1, -1, 0.5, 2));
    network.weights(1).set(Float32Array.of(0.5, -0.5, 0.25, 1));
    const x = Float32Array.from(inputs);
    const hidden = network.forwardRange(x, 0, 0);
    const badOut = hidden.findIndex((v) => !Number.isFinite(v));
    if (badOut >= 0) {
      const sum = inputs[Math.floor(badOut / 4)]! * [1, -1, 0.5, 2][badOut % 4]!;
      return { name: "finite", status: "failed", detail: `the output for the weighted sum ${sum} is ${hidden[badOut]}` };
    }
    for (let r = 0; r < inputs.length; r++) {
      const data = createDataset({ features: 1, outputs: 1, x: x.subarray(r, r + 1), y: Float32Array.of(r % 2) });
      const bad = computeGradients(network, data, { packed: false, portion: 1 }).tensors.find((t) => !t.data.every(Number.isFinite));
      if (bad) return { name: "finite", status: "failed", detail: `the gradient of ${bad.name} is not finite for the input ${inputs[r]} (weighted sums up to ${2 * Math.abs(inputs[r]!)})` };
    }
  } finally {
    network.dispose();
  }
  return { name: "finite", status: "passed", detail: `outputs and gradients finite for weighted sums 0, ±1e-30 … ±2e30 (${inputs.length} inputs × 4 units)` };
}

// Trains the same seeded run on each thread count (sync mode: deterministic) and compares the weights bit for bit.
async function checkThreads(kernels: Kernels, type: string, activation: Activation, threads: number[], seed: number): Promise<NeuronCheck> {
  const spec: NetworkSpec = { inputs: 6, layers: [layerOf(type, 8, activation), { units: 3, activation: "softmax" }], seed };
  const resolved = resolveSpec(spec);
  if (resolved.layers[0]!.neuron && !resolved.layers[0]!.neuron.module && threads.some((t) => t > 0)) {
    return { name: "threads", status: "skipped", detail: "the type has no module, so worker threads cannot import it (give it module: import.meta.url)" };
  }
  const data = randomData(seed + 2, 96, 6, 3, true);
  const digests: Array<{ threads: number; weights: Float32Array }> = [];
  for (const count of threads) {
    const network = Network.create(kernels, resolved);
    try {
      const trainer = await LocalTrainer.create(network, data, { epochs: 2, batchSize: 16, portion: 4, learningRate: 0.1, threads: count, mode: "sync", seed });
      try {
        await trainer.train();
      } finally {
        await trainer.close();
      }
      digests.push({ threads: count, weights: Float32Array.from(network.tensors().flatMap((t) => Array.from(t.data))) });
    } finally {
      network.dispose();
    }
  }
  const [first, ...rest] = digests;
  for (const other of rest) {
    let worst = 0;
    other.weights.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - first!.weights[i]!));
    });
    if (worst > 0 || !other.weights.every((v, i) => Object.is(v, first!.weights[i]))) {
      return { name: "threads", status: "failed", detail: `${other.threads} threads trained other weights than ${first!.threads} (largest difference ${worst}): forward or backward depends on the thread or on state kept between calls` };
    }
  }
  return { name: "threads", status: "passed", detail: `2 epochs of 6-8-3 on ${threads.join(", ")} threads: the same weights bit for bit` };
}

// A check whose run threw (the type broke its contract: no feedforward, wrong pushes, a throw) fails with the error.
async function guarded(name: NeuronCheck["name"], run: () => NeuronCheck | Promise<NeuronCheck>): Promise<NeuronCheck> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { name, status: "failed", detail: message };
  }
}

/**
 * Runs the conformance checks on a neuron type: a built-in name, "MODULE#EXPORT" (relative to the working
 * directory) or a NeuronRef. Loads the type first (NeuronTypeError names the module and export when it cannot).
 * Resolves with every check's outcome; `passed` only if none failed.
 */
export async function checkNeuron(type: string | NeuronRef, options: CheckNeuronOptions = {}): Promise<NeuronCheckReport> {
  const activation = options.activation ?? "sigmoid";
  const seed = options.seed ?? 7;
  const given = typeof type === "string" ? type : `${type.module}#${type.export}`;
  const probe = resolveSpec({ inputs: 1, layers: [layerOf(given, 1, activation), { units: 1 }] });
  const canonical = probe.layers[0]!.neuron ? `${probe.layers[0]!.neuron.module}#${probe.layers[0]!.neuron.export}` : given;
  await loadNeuronTypes(probe);
  const form = layerOps(probe.layers[0]!, 0).form;
  const kernels = options.kernels ?? (await Kernels.load({ shared: true }));
  const checks = [
    await guarded("gradients", () => checkGradients(kernels, canonical, activation, seed)),
    await guarded("finite", () => checkFinite(kernels, canonical, activation)),
    await guarded("threads", () => checkThreads(kernels, canonical, activation, options.threads ?? [0, 1, 2], seed)),
  ];
  return { type: given, form, passed: checks.every((c) => c.status !== "failed"), checks };
}
