// An AbortSignal stops training at the next mini-batch boundary: the last report says stop "aborted" and counts the
// completed mini-batches, which are exactly what the parameters and optimizer state hold; aborted before, nothing
// runs; the calling thread (threads: 0) lets the event loop run during an epoch, so an abort gets through there too.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MultiLayerPerceptron } from "../../src/api/models.js";
import { Kernels } from "../../src/core/kernels.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { Network } from "../../src/model/network.js";
import type { GradientExchange } from "../../src/train/exchange.js";
import { MemoryParameterStore } from "../../src/train/memory-exchange.js";
import type { TrainOptions } from "../../src/train/options.js";
import { OptimizerState } from "../../src/train/state.js";
import { LocalTrainer } from "../../src/train/trainer.js";

const TIMEOUT = { timeout: 60_000 };
const data = syntheticClassification({ size: 600, features: 8, classes: 3, seed: 5 });
const SPEC = {
  inputs: 8,
  layers: [
    { units: 16, activation: "relu" as const, dropout: 0.1 },
    { units: 3, activation: "softmax" as const },
  ],
  seed: 2,
};
const OPTIONS: TrainOptions = { epochs: 3, batchSize: 20, portion: 5, optimizer: "adam", learningRate: 0.01 };
const BATCHES = 600 / 20;
const MLP = { inputs: 8, hidden: [16], outputs: 3, seed: 2 };

/** The local exchange, calling `onBatch(n)` at the n-th exchange point (n = 1, 2, ...) before combining. */
function exchangeCalling(onBatch: (n: number) => void): GradientExchange {
  let n = 0;
  return {
    epochBatches: async (batches) => batches,
    allreduce: async (_grads, local) => {
      onBatch(++n);
      return local;
    },
  };
}

/** Makes performance.now() advance `stepMs` per call; returns what restores it. */
function fakeClock(stepMs: number): () => void {
  const own = Object.getOwnPropertyDescriptor(performance, "now");
  const real = performance.now.bind(performance);
  const start = real();
  let calls = 0;
  Object.defineProperty(performance, "now", { value: () => start + stepMs * ++calls, configurable: true, writable: true });
  return () => {
    if (own) Object.defineProperty(performance, "now", own);
    else delete (performance as { now?: unknown }).now;
  };
}

async function weightsAfter(options: TrainOptions): Promise<{ weights: Float32Array[]; step: number }> {
  const kernels = await Kernels.load({ shared: true });
  const network = Network.create(kernels, SPEC);
  const state = OptimizerState.create(network, "adam");
  const trainer = await LocalTrainer.create(network, data, { ...OPTIONS, ...options }, { state });
  await trainer.train();
  await trainer.close();
  const result = { weights: network.tensors().map((t) => t.data), step: state.step };
  state.dispose();
  network.dispose();
  return result;
}

describe("abort", () => {
  for (const threads of [0, 1, 2]) {
    test(
      `sync, ${threads} threads: an abort during epoch 2 stops after the batch in progress; the parameters hold exactly the completed batches`,
      TIMEOUT,
      async () => {
        const abortAt = BATCHES + 7; // the 7th mini-batch of epoch 2
        const controller = new AbortController();
        const kernels = await Kernels.load({ shared: true });
        const network = Network.create(kernels, SPEC);
        const state = OptimizerState.create(network, "adam");
        const exchange = exchangeCalling((n) => n === abortAt && controller.abort());
        const trainer = await LocalTrainer.create(network, data, { ...OPTIONS, threads }, { state, exchange, signal: controller.signal });
        const reports = await trainer.train();
        await trainer.close();
        assert.equal(reports.length, 2);
        assert.equal(reports[0]!.stop, undefined);
        const last = reports[1]!;
        assert.equal(last.stop, "aborted");
        // The batch whose exchange saw the abort completes; none after it.
        assert.equal(last.iterations, abortAt);
        assert.equal(last.samples, (abortAt - BATCHES) * 20);
        assert.equal(state.step, abortAt);
        const expected = await weightsAfter({ threads, maxIterations: abortAt });
        assert.deepEqual(
          network.tensors().map((t) => t.data),
          expected.weights,
        );
        assert.equal(expected.step, abortAt);
        state.dispose();
        network.dispose();
      },
    );
  }

  test("async, 2 threads: an abort stops the epoch early; the report says aborted", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, SPEC);
    const options: TrainOptions = { ...OPTIONS, optimizer: "sgd", learningRate: 0.1, mode: "async", threads: 2 };
    const store = MemoryParameterStore.create(network, options);
    const controller = new AbortController();
    let pushes = 0;
    const client = {
      keys: store.keys,
      push: (grads: Float32Array, range?: Parameters<typeof store.push>[1], from?: Parameters<typeof store.push>[2]) => {
        if (++pushes === 10) controller.abort();
        return store.push(grads, range, from);
      },
      pull: (into: Float32Array, range?: Parameters<typeof store.pull>[1]) => store.pull(into, range),
    };
    const trainer = await LocalTrainer.create(network, data, options, { parameters: { client }, signal: controller.signal });
    const reports = await trainer.train();
    await trainer.close();
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.stop, "aborted");
    assert.ok(reports[0]!.samples > 0 && reports[0]!.samples < 600, `samples ${reports[0]!.samples}`);
    network.dispose();
  });

  test("a signal aborted before fit(): fit resolves with [] and changes nothing", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      const before = model.network.tensors().map((t) => t.data);
      const reports = await model.fit(data, { ...OPTIONS, threads: 2, signal: AbortSignal.abort() });
      assert.deepEqual(reports, []);
      assert.deepEqual(model.history, []);
      assert.deepEqual(
        model.network.tensors().map((t) => t.data),
        before,
      );
    } finally {
      model.dispose();
    }
  });

  test("an abort between epochs (in onEpoch) starts no further epoch; the last report says aborted", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      const controller = new AbortController();
      const reports = await model.fit(data, {
        ...OPTIONS,
        threads: 2,
        signal: controller.signal,
        onEpoch: (r) => (r.epoch === 1 ? controller.abort() : undefined),
      });
      assert.equal(reports.length, 1);
      assert.equal(reports[0]!.stop, "aborted");
      assert.equal(reports[0]!.samples, 600);
      // The model trains on afterwards, from the same state.
      const more = await model.fit(data, { ...OPTIONS, epochs: 1, threads: 2 });
      assert.equal(more.length, 1);
      assert.equal(model.state!.step, 2 * BATCHES);
    } finally {
      model.dispose();
    }
  });

  test("threads 0: the event loop runs during an epoch, so an abort from a timer stops it part-way", TIMEOUT, async () => {
    // The clock the trainer reads advances 10 ms per reading, so progress is due every few mini-batches.
    const restore = fakeClock(10);
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      const controller = new AbortController();
      const progress: number[] = [];
      const reports = await model.fit(data, {
        ...OPTIONS,
        threads: 0,
        signal: controller.signal,
        // Aborts from a timer: it fires only if the epoch lets the event loop run.
        onProgress: (p) => {
          progress.push(p.samples);
          setTimeout(() => controller.abort(), 0);
        },
      });
      assert.ok(progress.length >= 1, "no progress was reported during an epoch on the calling thread");
      assert.equal(reports.length, 1);
      assert.equal(reports[0]!.stop, "aborted");
      assert.ok(reports[0]!.samples < 600, `the epoch ran to its end (${reports[0]!.samples} samples)`);
      assert.equal(reports[0]!.samples % 20, 0, "the epoch stopped inside a mini-batch");
      assert.equal(model.state!.step, reports[0]!.samples / 20);
    } finally {
      restore();
      model.dispose();
    }
  });
});
