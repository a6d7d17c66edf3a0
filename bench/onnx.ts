// ONNX benchmark (issue 13): a model exported with exportOnnx, served by onnxruntime-web (WebAssembly SIMD, one
// thread) beside the same model's own predict (one thread, the calling thread), on the same rows: rows/s at batch
// 1, 64 and 1024 for an MNIST-shaped MLP 784-128-10 (softmax) and a Pima-shaped 8-16-1 logistic model with z-score
// input scaling; the largest output difference; export and import time and the file sizes. Models are seeded, not
// trained: speed and agreement do not depend on the weights' values.
// Run: npm run bench:onnx [-- --record | --quick]  (see bench/run.mjs).
import * as ort from "onnxruntime-web";
import { encodeModel } from "../src/api/model-bytes.js";
import { type Model, MultiLayerPerceptron } from "../src/api/models.js";
import { Kernels } from "../src/core/kernels.js";
import { exportOnnx } from "../src/onnx/export.js";
import { importOnnx } from "../src/onnx/import.js";
import { mulberry32 } from "../src/util/random.js";
import { benchFlags, formatTable, machineInfo, measure, resultsPath, round, runEnvironment, writeJsonAtomic } from "./lib/report.js";

const flags = benchFlags();
const measureOptions = flags.quick ? { repSeconds: 0.05, reps: 3 } : { repSeconds: 0.3, reps: 7 };
ort.env.wasm.numThreads = 1;

interface Case {
  name: string;
  model: Model;
  inputs: number;
}

async function cases(): Promise<Case[]> {
  const mnist = await MultiLayerPerceptron.create({ inputs: 784, hidden: [128], outputs: 10, hiddenActivation: "relu", seed: 1 });
  const pima = await MultiLayerPerceptron.create({ inputs: 8, hidden: [16], outputs: 1, hiddenActivation: "tanh", seed: 2 });
  pima.inputScaling = { kind: "z-score", mean: [3.8, 120.9, 69.1, 20.5, 79.8, 32, 0.47, 33.2], std: [3.4, 32, 19.4, 16, 115.2, 7.9, 0.33, 11.8] };
  return [
    { name: "MLP 784-128-10 (relu, softmax)", model: mnist, inputs: 784 },
    { name: "MLP 8-16-1 (tanh, sigmoid) with z-score input scaling", model: pima, inputs: 8 },
  ];
}

function rowsOf(seed: number, rows: number, inputs: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: rows * inputs }, () => random() * 2);
}

/** Seconds per call of an async function, the best of a few repetitions of enough calls to last repSeconds. */
async function measureAsync(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let calls = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await fn();
    if ((performance.now() - t0) / 1000 >= measureOptions.repSeconds || calls > 1e6) break;
    calls *= 2;
  }
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < measureOptions.reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await fn();
    best = Math.min(best, (performance.now() - t0) / 1000 / calls);
  }
  return best;
}

const probe = await Kernels.load({ shared: true });
const env = runEnvironment(probe.core.variant);
const machine = machineInfo();
console.log(`engine ${env.engine}; CPU ${env.cpu} (${machine.cpus} CPUs); core build ${env.build}; onnxruntime-web ${ort.env.versions.web ?? "?"} (wasm, 1 thread)${flags.quick ? " (QUICK: do not compare)" : ""}\n`);
const rows: Array<Record<string, unknown>> = [];
const PEER = "onnxruntime-web 1.30 (wasm SIMD, 1 thread)";
const add = (name: string, unit: string, ours: number, peer: number | null, peerName: string | null, digits: number) =>
  rows.push({ case: name, unit, ours: round(ours, digits), peer: peer === null ? null : round(peer, digits), peer_name: peerName, ratio: peer === null ? null : round(ours / peer, 3), ...env });

for (const c of await cases()) {
  const t0 = performance.now();
  const bytes = exportOnnx(c.model);
  const exportMs = performance.now() - t0;
  const session = await ort.InferenceSession.create(bytes);
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  let maxDiff = 0;
  for (const batch of [1, 64, 1024]) {
    const x = rowsOf(batch, batch, c.inputs);
    const feeds = { [inputName!]: new ort.Tensor("float32", x, [batch, c.inputs]) };
    const theirs = (await session.run(feeds))[outputName!]!.data as Float32Array;
    const ours = c.model.predict(x);
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - theirs[i]!) / Math.max(1e-3, Math.abs(theirs[i]!)));
    const ourSeconds = measure(() => c.model.predict(x), measureOptions).seconds;
    const peerSeconds = await measureAsync(() => session.run(feeds));
    add(`${c.name}: rows/s at batch ${batch}`, "rows/s", batch / ourSeconds, batch / peerSeconds, PEER, 0);
  }
  add(`${c.name}: largest relative output difference (rows of batches 1, 64, 1024)`, "relative", maxDiff, null, null, 8);
  const t1 = performance.now();
  const imported = await importOnnx(bytes);
  const importMs = performance.now() - t1;
  imported.dispose();
  add(`${c.name}: export time`, "ms", exportMs, null, null, 2);
  add(`${c.name}: import time`, "ms", importMs, null, null, 2);
  add(`${c.name}: ONNX file size`, "bytes", bytes.length, encodeModel(c.model).length, "its .dpnn model file", 0);
  await session.release();
  c.model.dispose();
}

const cell = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
console.log(formatTable(["case", "ours", "peer", "value", "ours/peer"], rows.map((r) => [String(r.case), cell(r.ours), cell(r.peer_name), cell(r.peer), cell(r.ratio)]), ["left", "right", "left", "right", "right"]));
const worst = Math.max(...rows.filter((r) => r.unit === "relative").map((r) => r.ours as number));
console.log(`\ntargets:\n  [${worst <= 1e-5 ? "PASS" : "FAIL"}] outputs within 1e-5 relative of onnxruntime's: largest ${worst.toExponential(2)}`);
const out = resultsPath("onnx", flags);
await writeJsonAtomic(out, { rows, ...env, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick });
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"}`);
process.exit(0);
