// Training benchmark: one epoch of MNIST on a 784-128-10 MLP (relu, softmax cross-entropy, batch 64, SGD with
// momentum): ours on 1 and 2 worker threads (idle, and with one core taken by a busy process) beside
// @tensorflow/tfjs-layers' model.fit on tfjs-backend-wasm (SIMD) and a NumPy/OpenBLAS version (1 and 2 BLAS threads);
// samples/s and test accuracy. Then the neuron forms: the same MLP with a sigmoid hidden layer as the built-in
// kernel and as user types in forms 1, 2 and 3 (bench/lib/neuron-forms.ts), with their ratio to the built-in. Writes bench/.scratch/train.json, or bench/results/train.json with --record.
// Run: npm run bench:train [-- --record | --quick | --node-20]  (see bench/run.mjs).
import { createHash } from "node:crypto";
import { join } from "node:path";
import * as tfl from "@tensorflow/tfjs-layers";
import { Kernels, MultiLayerPerceptron, type Dataset } from "../src/index.js";
import { loadMnist } from "../src/data/mnist.js";
import { withBusyCore } from "./lib/busy.js";
import { runNeuronForms } from "./lib/neuron-forms.js";
import { numpyMissing, runNumpyPeer, type NumpyResult } from "./lib/numpy-peer.js";
import { benchFlags, formatTable, machineInfo, repoRoot, resultsPath, round, runEnvironment, writeJsonAtomic } from "./lib/report.js";
import { loadPeer } from "./lib/tfjs-peer.js";

const flags = benchFlags();
const dataDir = process.env.DOWNPOUR_DATA ?? join(repoRoot, "../shared/data");
const mnistDir = join(dataDir, "mnist");
const LEARNING_RATE = 0.05;
const MOMENTUM = 0.9;
const BATCH = 64;
/** Mini-batches of the timed run in --quick mode (0: the whole epoch); warm-up batches before each timed run. */
const QUICK_BATCHES = flags.quick ? 150 : 0;
const WARM_BATCHES = flags.quick ? 30 : 100;
const MLP = { inputs: 784, hidden: [128], outputs: 10, seed: 1 };

interface RunResult {
  samplesPerSecond: number;
  accuracy: number;
  /** sha256 of the final parameters (all tensors' bytes), to compare runs bit for bit. */
  digest: string;
}

/** One timed epoch of ours after a short warm-up run (JIT tiers, worker start-up), through the public fit(). */
async function ours(train: Dataset, test: Dataset, threads: number, mode: "sync" | "async" = "sync"): Promise<RunResult> {
  const kernels = await Kernels.load({ shared: true });
  const options = { epochs: 1, batchSize: BATCH, learningRate: LEARNING_RATE, momentum: MOMENTUM, threads, mode };
  const warm = await MultiLayerPerceptron.create(MLP, { kernels });
  try {
    await warm.fit(train, { ...options, maxIterations: WARM_BATCHES });
  } finally {
    warm.dispose();
  }
  const model = await MultiLayerPerceptron.create(MLP, { kernels });
  try {
    const [report] = await model.fit(train, QUICK_BATCHES ? { ...options, maxIterations: QUICK_BATCHES } : options);
    const hash = createHash("sha256");
    for (const tensor of model.network.tensors()) hash.update(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    return { samplesPerSecond: report!.samplesPerSecond, accuracy: model.evaluate(test).accuracy!, digest: hash.digest("hex") };
  } finally {
    model.dispose();
  }
}

/** Timed epochs per configuration whose ratios the targets judge (one epoch is noisy on a shared machine). */
const REPEATS = flags.quick ? 1 : 3;

/** Runs each configuration `repeats` times, alternating them, and keeps each one's median run (by samples/s). */
async function interleaved(repeats: number, configs: [() => Promise<RunResult>, () => Promise<RunResult>]): Promise<[RunResult, RunResult]> {
  const runs: [RunResult[], RunResult[]] = [[], []];
  for (let r = 0; r < repeats; r++) for (const [i, run] of configs.entries()) runs[i]!.push(await run());
  const median = (list: RunResult[]): RunResult => [...list].sort((a, b) => a.samplesPerSecond - b.samplesPerSecond)[Math.floor(list.length / 2)]!;
  return [median(runs[0]), median(runs[1])];
}

/** tfjs-layers model.fit on the wasm backend (SIMD build, 1 thread), same recipe (its default Glorot init). */
async function tfjsPeer(train: Dataset, test: Dataset): Promise<RunResult & { backend: string }> {
  const { tf, binary, version } = await loadPeer(1);
  const samples = QUICK_BATCHES ? QUICK_BATCHES * BATCH : train.size;
  const xs = tf.tensor2d(train.x.subarray(0, samples * 784), [samples, 784]);
  const ys = tf.tensor2d(train.y.subarray(0, samples * 10), [samples, 10]);
  const build = () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [784], units: 128, activation: "relu" }), tfl.layers.dense({ units: 10, activation: "softmax" })],
    });
    model.compile({ optimizer: tf.train.momentum(LEARNING_RATE, MOMENTUM), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
    return model;
  };
  const warm = WARM_BATCHES * BATCH;
  await build().fit(tf.slice(xs, [0, 0], [warm, 784]), tf.slice(ys, [0, 0], [warm, 10]), { batchSize: BATCH, epochs: 1, verbose: 0 });
  const model = build();
  const t0 = performance.now();
  await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  const testX = tf.tensor2d(test.x, [test.size, 784]);
  const predicted = tf.argMax(model.predict(testX) as ReturnType<typeof tf.tensor2d>, 1).dataSync();
  let correct = 0;
  for (let i = 0; i < test.size; i++) if (predicted[i] === test.labels![i]) correct++;
  return { samplesPerSecond: samples / seconds, accuracy: correct / test.size, digest: "", backend: `@tensorflow/tfjs-backend-wasm ${version} ${binary}, 1 thread` };
}

interface Row {
  case: string;
  unit: string;
  ours: number;
  peer: number | null;
  peer_name: string | null;
  ratio: number | null;
  engine: string;
  cpu: string;
  build: string;
}

const started = performance.now();
const probe = await Kernels.load({ shared: true });
const env = runEnvironment(probe.core.variant);
const machine = machineInfo();
console.log(`engine ${env.engine}; CPU ${env.cpu} (${machine.cpus} CPUs); core build ${env.build} (core-${env.build}-shared.wasm)`);
console.log(
  `MNIST 784-128-10, relu + softmax cross-entropy, batch ${BATCH}, SGD lr ${LEARNING_RATE} momentum ${MOMENTUM}, ` +
    (QUICK_BATCHES ? `QUICK: ${QUICK_BATCHES} mini-batches per timed run (not an epoch; do not compare)` : `1 epoch; the 1- and 2-thread rows are the median of ${REPEATS} interleaved epochs`) + "\n",
);

const { train, test } = await loadMnist(mnistDir);
const progress = (what: string) => process.stderr.write(`  done ${what} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
const [one, two] = await interleaved(REPEATS, [() => ours(train, test, 1), () => ours(train, test, 2)]);
progress(`ours, 1 and 2 threads (median of ${REPEATS} each, interleaved)`);
const twoAsync = await ours(train, test, 2, "async");
progress("ours, 2 threads async");
const busy = await withBusyCore(async (b) => {
  const [c1, c2] = await interleaved(REPEATS, [() => ours(train, test, 1), () => ours(train, test, 2)]);
  return { one: c1, two: c2, placement: b.placement };
});
progress(`ours, 1 and 2 threads with a busy process on ${busy.placement}`);
const tfjs = await tfjsPeer(train, test);
progress("tfjs-wasm");
// Five interleaved epochs per form (one epoch is about a second: a busy spell moves a single one by a third).
const forms = await runNeuronForms(train, test, flags.quick ? 1 : 5, QUICK_BATCHES);
progress("neuron forms (built-in, scalar, block, per neuron)");
const numpyReason = numpyMissing();
const numpy: NumpyResult[] = numpyReason ? [] : [1, 2].map((t) => runNumpyPeer(mnistDir, t, QUICK_BATCHES));
if (!numpyReason) progress("numpy, 1 and 2 BLAS threads");

const TFJS = "tfjs-wasm";
const rows: Row[] = [];
const add = (name: string, unit: string, ourValue: number, peerValue: number | null, peerName: string | null, digits: number) =>
  rows.push({
    case: name, unit, ours: round(ourValue, digits), peer: peerValue === null ? null : round(peerValue, digits), peer_name: peerName,
    ratio: peerValue === null ? null : round(ourValue / peerValue, 2), ...env,
  });
const S = "samples/s";
add("samples/s, 1 worker thread (sync)", S, one.samplesPerSecond, tfjs.samplesPerSecond, TFJS, 0);
add("samples/s, 2 worker threads (sync)", S, two.samplesPerSecond, tfjs.samplesPerSecond, TFJS, 0);
add("samples/s, 2 worker threads (async)", S, twoAsync.samplesPerSecond, tfjs.samplesPerSecond, TFJS, 0);
const [np1, np2] = numpy;
if (np1 && np2) {
  add("samples/s, 1 worker thread (sync) vs numpy 1 BLAS thread", S, one.samplesPerSecond, np1.samples_per_second, "numpy, 1 thread", 0);
  add("samples/s, 2 worker threads (sync) vs numpy 2 BLAS threads", S, two.samplesPerSecond, np2.samples_per_second, "numpy, 2 threads", 0);
}
add("samples/s, 1 worker thread (sync), one core taken by a busy process", S, busy.one.samplesPerSecond, null, null, 0);
add("samples/s, 2 worker threads (sync), one core taken by a busy process", S, busy.two.samplesPerSecond, null, null, 0);
const scaling = two.samplesPerSecond / one.samplesPerSecond;
const contention = busy.two.samplesPerSecond / busy.one.samplesPerSecond;
add("2 threads / 1 thread (sync), idle", "x", scaling, np1 && np2 ? np2.samples_per_second / np1.samples_per_second : null, np1 ? "numpy 2 / 1 threads" : null, 2);
add("2 threads / 1 thread (sync), one core taken by a busy process", "x", contention, null, null, 2);
add("test accuracy after 1 epoch, 1 thread", "accuracy", one.accuracy, tfjs.accuracy, TFJS, 4);
add("test accuracy after 1 epoch, 2 threads (sync)", "accuracy", two.accuracy, tfjs.accuracy, TFJS, 4);
add("test accuracy after 1 epoch, 2 threads (async)", "accuracy", twoAsync.accuracy, tfjs.accuracy, TFJS, 4);
if (np1) add("test accuracy after 1 epoch, 1 thread vs numpy", "accuracy", one.accuracy, np1.accuracy, "numpy, 1 thread", 4);
const [builtin, ...userForms] = forms;
add(`neuron forms: ${builtin!.form}, hidden sigmoid, 2 threads (sync)`, S, builtin!.samplesPerSecond, null, null, 0);
for (const f of userForms) add(`neuron forms: ${f.form}, hidden sigmoid, 2 threads (sync)`, S, f.samplesPerSecond, builtin!.samplesPerSecond, "built-in sigmoid", 0);
for (const f of forms) add(`neuron forms: test accuracy after 1 epoch, ${f.form}`, "accuracy", f.accuracy, f === builtin ? null : builtin!.accuracy, f === builtin ? null : "built-in sigmoid", 4);
// The ratio of ratios means nothing: the scaling row shows ours and numpy's scaling side by side only.
rows.find((r) => r.case === "2 threads / 1 thread (sync), idle")!.ratio = null;

const syncDigests = { "1 thread": one.digest, "2 threads": two.digest, "1 thread, busy core": busy.one.digest, "2 threads, busy core": busy.two.digest };
const bitIdentical = new Set(Object.values(syncDigests)).size === 1;

console.log(`peers: ${tfjs.backend} via @tensorflow/tfjs-layers model.fit`);
if (np1) {
  const b = np1.blas;
  console.log(
    `       numpy ${np1.numpy} (python ${np1.python}) over ${b.library ?? "its BLAS"} ${b.version ?? ""}, kernel ${b.kernel ?? "unknown"}, ` +
      `threads set via ${b.via} (reported ${np1.blas.threads} and ${np2!.blas.threads}); OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset in its process`,
  );
} else {
  console.log(`note: numpy peer skipped: ${numpyReason}`);
}
console.log(`busy process for the contention rows: a node busy loop on ${busy.placement}, started before and stopped after both runs\n`);
const cell = (v: number | null) => (v === null ? "-" : String(v));
console.log(
  formatTable(
    ["case", "ours", "peer", "value", "ours/peer"],
    rows.map((r) => [r.case, cell(r.ours), r.peer_name ?? "-", cell(r.peer), r.ratio === null ? "-" : r.ratio.toFixed(2)]),
    ["left", "right", "left", "right", "right"],
  ),
);
console.log(`\nsync runs' final weights (sha256): ${Object.entries(syncDigests).map(([k, v]) => `${k} ${v.slice(0, 12)}`).join(", ")}`);
const target = (ok: boolean, text: string) => console.log(`  [${ok ? "PASS" : "FAIL"}] ${text}`);
console.log("\ntargets:");
target(rows[0]!.ratio! >= 3, `1 thread >= 3x tfjs-wasm: ${rows[0]!.ratio!.toFixed(2)}x`);
target(scaling >= 1.6, `idle: 2 threads >= 1.6x 1 thread: ${scaling.toFixed(2)}x`);
target(contention >= 1.0, `one core busy: 2 threads >= 1.0x 1 thread: ${contention.toFixed(2)}x`);
const formRatio = (i: number) => forms[i]!.samplesPerSecond / builtin!.samplesPerSecond;
target(formRatio(1) >= 0.7, `form 1 (scalar) >= 0.7x the built-in sigmoid: ${formRatio(1).toFixed(2)}x`);
target(formRatio(2) >= 0.8, `form 2 (block) >= 0.8x the built-in sigmoid: ${formRatio(2).toFixed(2)}x`);
console.log(`  [info] form 3 (per neuron): ${Math.round(forms[3]!.samplesPerSecond)} samples/s, ${formRatio(3).toFixed(3)}x the built-in`);
target(bitIdentical, `sync final weights bit-identical across 1 and 2 threads (idle and busy): ${bitIdentical ? "equal" : "DIFFER"}`);

const out = resultsPath("train", flags);
await writeJsonAtomic(out, {
  rows, ...env, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick,
  scaling_2_over_1: round(scaling, 2), contention_2_over_1: round(contention, 2), sync_bit_identical: bitIdentical,
  busy_placement: busy.placement,
  peers: { tfjs: tfjs.backend, numpy: np1 ? { numpy: np1.numpy, python: np1.python, blas: np1.blas } : { skipped: numpyReason } },
});
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exit(0);
