// Training benchmark: one epoch of MNIST on a 784-128-10 MLP (relu, softmax cross-entropy, batch 64, SGD with
// momentum), ours on 1 and 2 worker threads beside @tensorflow/tfjs-layers' model.fit on the tfjs-backend-wasm
// (SIMD) backend, same data and hyper-parameters; samples/s and test accuracy; writes bench/results/train.json.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tfl from "@tensorflow/tfjs-layers";
import { loadMnist } from "../src/data/mnist.js";
import type { Dataset } from "../src/data/dataset.js";
import { Kernels } from "../src/core/kernels.js";
import { MultiLayerPerceptron } from "../src/model/models.js";
import { formatTable, machineInfo, round, writeJsonAtomic } from "./lib/report.js";
import { loadPeer } from "./lib/tfjs-peer.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dataDir = process.env.DOWNPOUR_DATA ?? join(root, "../shared/data");
const LEARNING_RATE = 0.05;
const MOMENTUM = 0.9;
const BATCH = 64;

interface RunResult {
  samplesPerSecond: number;
  accuracy: number;
}

async function ours(train: Dataset, test: Dataset, threads: number, mode: "sync" | "async" = "sync"): Promise<RunResult> {
  const kernels = await Kernels.load({ shared: true });
  const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: [128], outputs: 10, seed: 1 }, { kernels });
  const options = { epochs: 1, batchSize: BATCH, learningRate: LEARNING_RATE, momentum: MOMENTUM, threads, mode };
  await model.fit(train, { ...options, maxIterations: 100 }); // warm-up: JIT tiers, worker start-up
  const fresh = await MultiLayerPerceptron.create({ inputs: 784, hidden: [128], outputs: 10, seed: 1 }, { kernels });
  const [report] = await fresh.fit(train, options);
  const result = { samplesPerSecond: report!.samplesPerSecond, accuracy: fresh.evaluate(test).accuracy! };
  model.dispose();
  fresh.dispose();
  return result;
}

async function peer(train: Dataset, test: Dataset): Promise<RunResult & { backend: string }> {
  const { tf, binary } = await loadPeer(1);
  tf.setBackend("wasm");
  const xs = tf.tensor2d(train.x, [train.size, 784]);
  const ys = tf.tensor2d(train.y, [train.size, 10]);
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [784], units: 128, activation: "relu" }), tfl.layers.dense({ units: 10, activation: "softmax" })],
  });
  model.compile({ optimizer: tf.train.momentum(LEARNING_RATE, MOMENTUM), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const warm = 100 * BATCH;
  await model.fit(tf.slice(xs, [0, 0], [warm, 784]), tf.slice(ys, [0, 0], [warm, 10]), { batchSize: BATCH, epochs: 1, verbose: 0 });
  const fresh = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [784], units: 128, activation: "relu" }), tfl.layers.dense({ units: 10, activation: "softmax" })],
  });
  fresh.compile({ optimizer: tf.train.momentum(LEARNING_RATE, MOMENTUM), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const t0 = performance.now();
  await fresh.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  const testX = tf.tensor2d(test.x, [test.size, 784]);
  const predicted = tf.argMax(fresh.predict(testX) as ReturnType<typeof tf.tensor2d>, 1).dataSync();
  let correct = 0;
  for (let i = 0; i < test.size; i++) if (predicted[i] === test.labels![i]) correct++;
  return { samplesPerSecond: train.size / seconds, accuracy: correct / test.size, backend: `tfjs-backend-wasm ${binary}, 1 thread` };
}

const { train, test } = await loadMnist(join(dataDir, "mnist"));
const one = await ours(train, test, 1);
const two = await ours(train, test, 2);
const twoAsync = await ours(train, test, 2, "async");
const tfjs = await peer(train, test);

const rows = [
  { case: "samples/s, 1 worker thread (sync)", ours: round(one.samplesPerSecond, 0), peer: round(tfjs.samplesPerSecond, 0) },
  { case: "samples/s, 2 worker threads (sync)", ours: round(two.samplesPerSecond, 0), peer: round(tfjs.samplesPerSecond, 0) },
  { case: "samples/s, 2 worker threads (async)", ours: round(twoAsync.samplesPerSecond, 0), peer: round(tfjs.samplesPerSecond, 0) },
  { case: "test accuracy after 1 epoch, 1 thread", ours: round(one.accuracy, 4), peer: round(tfjs.accuracy, 4) },
  { case: "test accuracy after 1 epoch, 2 threads (sync)", ours: round(two.accuracy, 4), peer: round(tfjs.accuracy, 4) },
  { case: "test accuracy after 1 epoch, 2 threads (async)", ours: round(twoAsync.accuracy, 4), peer: round(tfjs.accuracy, 4) },
].map((r) => ({ ...r, ratio: round(r.ours / r.peer, 2) }));

const scaling = round(two.samplesPerSecond / one.samplesPerSecond, 2);
console.log(`MNIST 784-128-10, relu + softmax cross-entropy, batch ${BATCH}, SGD lr ${LEARNING_RATE} momentum ${MOMENTUM}, 1 epoch`);
console.log(`peer: @tensorflow/tfjs-layers model.fit on ${tfjs.backend}\n`);
console.log(formatTable(["case", "ours", "peer", "ratio"], rows.map((r) => [r.case, String(r.ours), String(r.peer), r.ratio.toFixed(2)]), ["left", "right", "right", "right"]));
console.log(`\n2 threads / 1 thread: ${scaling.toFixed(2)}x`);
console.log(`target 1 thread >= 3x tfjs-wasm: ${rows[0]!.ratio >= 3 ? "met" : "NOT met"} (${rows[0]!.ratio.toFixed(2)}x)`);
console.log(`target 2 threads >= 1.6x our 1 thread: ${scaling >= 1.6 ? "met" : "NOT met"} (${scaling.toFixed(2)}x)`);
const out = join(root, "bench/results/train.json");
writeJsonAtomic(out, { rows, scaling_2_over_1: scaling, runtime: `node ${process.version}`, date: new Date().toISOString(), machine: machineInfo() });
console.log(`wrote ${out}`);
