// The local trainer's behaviour: sync mode is deterministic whatever the thread count, async mode learns,
// every optimizer learns, convergence and max-iteration stops, progress reports, and clear option errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { holdOut, type Dataset } from "../../src/data/dataset.js";
import { Network } from "../../src/model/network.js";
import { ShapeError, WorkerError } from "../../src/errors.js";
import { TrainOptionsError, type TrainOptions } from "../../src/train/options.js";
import { evaluate } from "../../src/train/evaluate.js";
import { LocalTrainer, type TrainProgress } from "../../src/train/trainer.js";

const TIMEOUT = { timeout: 60_000 };

const blobs = syntheticClassification({ size: 1200, features: 12, classes: 4, seed: 9 });
const { train, test: held } = holdOut(blobs, 200);

async function trainedWeights(kernels: Kernels, options: TrainOptions, data: Dataset = train): Promise<{ weights: Float32Array[]; network: Network }> {
  const network = Network.create(kernels, {
    inputs: 12,
    layers: [{ units: 16, activation: "relu", dropout: 0.2 }, { units: 9, activation: "tanh" }, { units: 4, activation: "softmax" }],
    seed: 4,
  });
  const trainer = await LocalTrainer.create(network, data, { epochs: 2, batchSize: 50, portion: 6, ...options });
  await trainer.train();
  await trainer.close();
  return { weights: network.tensors().map((t) => t.data), network };
}

describe("local trainer", () => {
  test("sync mode gives bit-identical weights on 0, 1 and 2 threads (with dropout)", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const runs = [];
    for (const threads of [0, 1, 2]) {
      const { weights, network } = await trainedWeights(kernels, { threads });
      runs.push(weights);
      network.dispose();
    }
    assert.deepEqual(runs[1], runs[0]);
    assert.deepEqual(runs[2], runs[0]);
  });

  for (const [name, options] of [
    ["sgd without momentum", { optimizer: "sgd", momentum: 0, learningRate: 0.2 }],
    ["sgd with momentum and L2", { optimizer: "sgd", momentum: 0.9, l2: 1e-4 }],
    ["adagrad", { optimizer: "adagrad" }],
    ["adam", { optimizer: "adam", learningRate: 0.01 }],
    ["async (lock-free) sgd on 2 threads", { mode: "async", threads: 2 }],
  ] as Array<[string, TrainOptions]>) {
    test(`${name} learns held-out blobs to >= 0.9 accuracy`, TIMEOUT, async () => {
      const kernels = await Kernels.load({ shared: true });
      const { network } = await trainedWeights(kernels, { threads: 2, epochs: 6, ...options });
      const { accuracy } = evaluate(network, held);
      assert.ok(accuracy! >= 0.9, `accuracy ${accuracy}`);
    });
  }

  test("maxIterations stops after exactly that many mini-batches; progress is reported", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, { inputs: 12, layers: [{ units: 4, activation: "softmax" }] });
    const progress: TrainProgress[] = [];
    const trainer = await LocalTrainer.create(network, train, { epochs: 50, batchSize: 10, maxIterations: 130, threads: 2 }, { onProgress: (p) => progress.push(p) });
    const reports = await trainer.train();
    await trainer.close();
    assert.equal(reports.length, 2); // 100 batches per epoch
    assert.equal(reports[1]!.iterations, 130);
    assert.equal(reports[1]!.stop, "max-iterations");
    assert.equal(reports[1]!.samples, 300);
    for (const p of progress) assert.ok(p.samples <= p.epochSamples);
  });

  test("the convergence check stops training once the windowed loss stops falling", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, { inputs: 12, layers: [{ units: 4, activation: "softmax" }] });
    const trainer = await LocalTrainer.create(network, train, { epochs: 200, batchSize: 100, threads: 2, convergence: { window: 10, minImprovement: 0.01 } });
    const reports = await trainer.train();
    await trainer.close();
    const last = reports[reports.length - 1]!;
    assert.equal(last.stop, "converged");
    assert.ok(reports.length < 200, `ran ${reports.length} epochs`);
  });

  test("bad options and data give errors that name the field or the shapes", TIMEOUT, async () => {
    const shared = await Kernels.load({ shared: true });
    const network = Network.create(shared, { inputs: 12, layers: [{ units: 4, activation: "softmax" }] });
    await assert.rejects(LocalTrainer.create(network, train, { batchSize: 0 }), (e: Error) => e instanceof TrainOptionsError && /batchSize must be a positive integer/.test(e.message));
    await assert.rejects(LocalTrainer.create(network, train, { optimizer: "rmsprop" as "sgd" }), (e: Error) => e instanceof TrainOptionsError && /optimizer must be one of sgd, adagrad, adam/.test(e.message));
    const wrong = syntheticClassification({ size: 10, features: 5, classes: 4, seed: 1 });
    await assert.rejects(LocalTrainer.create(network, wrong, {}), (e: Error) => e instanceof ShapeError && /5 features/.test(e.message) && /12 inputs/.test(e.message));
    const privateKernels = await Kernels.load({ shared: false });
    const privateNet = Network.create(privateKernels, { inputs: 12, layers: [{ units: 4, activation: "softmax" }] });
    await assert.rejects(LocalTrainer.create(privateNet, train, { threads: 2 }), WorkerError);
    const inThread = await LocalTrainer.create(privateNet, train, { threads: 0, epochs: 1 });
    assert.equal((await inThread.train()).length, 1);
    await inThread.close();
  });
});

describe("a descheduled thread does not hold up a mini-batch", () => {
  test("items held by a stalled worker are recomputed by the other (backups), and sync results stay bit-identical", { timeout: 60_000 }, async () => {
    const kernels = await Kernels.load({ shared: true });
    const reference = await trainedWeights(kernels, { threads: 0 });
    reference.network.dispose();
    const network = Network.create(kernels, {
      inputs: 12,
      layers: [{ units: 16, activation: "relu", dropout: 0.2 }, { units: 9, activation: "tanh" }, { units: 4, activation: "softmax" }],
      seed: 4,
    });
    // Worker 1 sleeps 20 ms at every 7th ticket it starts, far longer than any item takes.
    const trainer = await LocalTrainer.create(network, train, { epochs: 2, batchSize: 50, portion: 6, threads: 2 }, { stall: { party: 1, every: 7, ms: 20 } });
    const reports = await trainer.train();
    await trainer.close();
    const backups = reports.reduce((n, r) => n + r.backups, 0);
    assert.ok(backups > 0, "no item was backed up");
    assert.deepEqual(network.tensors().map((t) => t.data), reference.weights);
    network.dispose();
  });
});
