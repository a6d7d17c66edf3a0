// The training seam without any network: two replicas on the halves of every mini-batch, joined by the in-memory
// gradient exchange, end where one trainer on the whole batches ends; replicas stop together on the combined loss;
// async workers served by an in-memory parameter store (nFetch = nPush = 4) learn as local training does.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { createDataset, holdOut, selectRows, type Dataset } from "../../src/data/dataset.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { Network } from "../../src/model/network.js";
import type { NetworkSpec } from "../../src/model/spec.js";
import { evaluate } from "../../src/train/evaluate.js";
import type { ParameterClient } from "../../src/train/exchange.js";
import { MemoryExchangeGroup, MemoryParameterStore } from "../../src/train/memory-exchange.js";
import type { TrainOptions } from "../../src/train/options.js";
import { LocalTrainer } from "../../src/train/trainer.js";

const SPEC: NetworkSpec = {
  inputs: 12,
  layers: [{ units: 16, activation: "relu" }, { units: 9, activation: "tanh" }, { units: 4, activation: "softmax" }],
  seed: 4,
};
const blobs = syntheticClassification({ size: 1200, features: 12, classes: 4, seed: 9 });
const { train, test: held } = holdOut(blobs, 200);
const BATCH = 50;

// Rows of every mini-batch's first (half 0) or second (half 1) half, in order, so that batch b of a replica with
// batch size BATCH/2 is half of batch b of the whole.
function halves(data: Dataset, half: 0 | 1): Dataset {
  const rows: number[] = [];
  for (let first = 0; first < data.size; first += BATCH) {
    for (let r = half * (BATCH / 2); r < (half + 1) * (BATCH / 2) && first + r < data.size; r++) rows.push(first + r);
  }
  return selectRows(data, rows);
}

function maxDifference(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((t, i) => {
    t.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - b[i]![j]!));
    });
  });
  return worst;
}

const weightsOf = (network: Network): Float32Array[] => network.tensors().map((t) => t.data);

const ONE_LAYER: NetworkSpec = { inputs: 12, layers: [{ units: 4, activation: "softmax" }], seed: 2 };

// Trains one replica per data part, joined by an in-memory exchange; replica `rank` gets `options(rank)`.
async function trainReplicas(parts: Dataset[], options: (rank: number) => TrainOptions) {
  const kernels = await Kernels.load({ shared: true });
  const group = new MemoryExchangeGroup(parts.length);
  const replicas = parts.map(() => Network.create(kernels, ONE_LAYER));
  const trainers = await Promise.all(replicas.map((network, rank) => LocalTrainer.create(network, parts[rank]!, options(rank), { exchange: group.member(rank) })));
  const reports = await Promise.all(trainers.map((t) => t.train()));
  await Promise.all(trainers.map((t) => t.close()));
  return { replicas, reports };
}

const rowsOf = (from: number, count: number): Dataset => selectRows(train, Array.from({ length: count }, (_, i) => from + i));

describe("the training seam", () => {
  for (const threads of [0, 1]) {
    for (const optimizer of ["sgd", "adam"] as const) {
      test(`two replicas on half batches (${threads} threads each, ${optimizer}) end with the weights of one trainer on whole batches`, { timeout: 60_000 }, async () => {
        const kernels = await Kernels.load({ shared: true });
        const options: TrainOptions = { epochs: 3, shuffle: false, threads, optimizer, learningRate: optimizer === "adam" ? 0.01 : 0.1, portion: 6 };
        const whole = Network.create(kernels, SPEC);
        const single = await LocalTrainer.create(whole, train, { ...options, batchSize: BATCH });
        await single.train();
        await single.close();

        const group = new MemoryExchangeGroup(2);
        const replicas = [Network.create(kernels, SPEC), Network.create(kernels, SPEC)];
        const trainers = await Promise.all(
          replicas.map((network, rank) =>
            LocalTrainer.create(network, halves(train, rank as 0 | 1), { ...options, batchSize: BATCH / 2 }, { exchange: group.member(rank) }),
          ),
        );
        const reports = await Promise.all(trainers.map((t) => t.train()));
        await Promise.all(trainers.map((t) => t.close()));
        assert.deepEqual(weightsOf(replicas[0]!), weightsOf(replicas[1]!), "the replicas differ");
        const diff = maxDifference(weightsOf(replicas[0]!), weightsOf(whole));
        assert.ok(diff <= 1e-5, `replicas differ from the single trainer by ${diff}`);
        assert.ok(Math.abs(reports[0]![2]!.loss - reports[1]![2]!.loss) < 1e-12, "replicas report different combined losses");
        for (const n of [whole, ...replicas]) n.dispose();
      });
    }
  }

  test("replicas stop on the same batch: convergence is decided on the combined loss", { timeout: 60_000 }, async () => {
    // Different data per replica, so their local losses differ; only the combined loss is common.
    const { replicas, reports } = await trainReplicas([rowsOf(0, 500), rowsOf(500, 500)], (rank) => ({
      epochs: 200, batchSize: 20, threads: rank, convergence: { window: 10, minImprovement: 0.01 },
    }));
    const last = reports.map((r) => r[r.length - 1]!);
    assert.equal(last[0]!.stop, "converged");
    assert.equal(last[1]!.stop, "converged");
    assert.equal(last[0]!.iterations, last[1]!.iterations);
    assert.ok(last[0]!.iterations < 200 * 25, `ran ${last[0]!.iterations} batches`);
    assert.deepEqual(weightsOf(replicas[0]!), weightsOf(replicas[1]!));
    for (const n of replicas) n.dispose();
  });

  test("replicas with different split sizes run the same number of batches (the smaller count)", { timeout: 30_000 }, async () => {
    const { replicas, reports } = await trainReplicas([rowsOf(0, 300), rowsOf(300, 500)], () => ({ epochs: 2, batchSize: 20, threads: 0 }));
    assert.deepEqual(reports.map((r) => r[1]!.iterations), [30, 30]);
    assert.deepEqual(weightsOf(replicas[0]!), weightsOf(replicas[1]!));
    for (const n of replicas) n.dispose();
  });

  for (const threads of [2, 0]) {
    test(`async workers (${threads} threads) served by an in-memory parameter store, nFetch = nPush = 4, learn held-out blobs to >= 0.9`, { timeout: 60_000 }, async () => {
      const kernels = await Kernels.load({ shared: true });
      const network = Network.create(kernels, SPEC);
      const options: TrainOptions = { mode: "async", threads, epochs: 6, batchSize: 50, portion: 6 };
      const store = MemoryParameterStore.create(network, options);
      const trainer = await LocalTrainer.create(network, train, options, { parameters: { client: store, nFetch: 4, nPush: 4 } });
      await trainer.train();
      await trainer.close();
      const { accuracy } = evaluate(network, held);
      assert.ok(accuracy! >= 0.9, `accuracy ${accuracy}`);
      assert.ok(store.version >= (6 * 1000) / 6 / 4, `the store applied ${store.version} pushes`);
      const pulled = new Float32Array(store.keys);
      await store.pull(pulled);
      assert.deepEqual(pulled, network.params.block.toArray(), "the network does not hold the store's parameters");
      store.dispose();
      network.dispose();
    });
  }

  test("async workers served by an in-memory parameter store learn XOR (2-3-1) to within 0.1 of every target", { timeout: 60_000 }, async () => {
    const kernels = await Kernels.load({ shared: true });
    const xor = createDataset({ features: 2, outputs: 1, x: new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]), y: new Float32Array([0, 1, 1, 0]) });
    // The local XOR test's net and hyper-parameters (test/train/learning.test.ts).
    const network = Network.create(kernels, { inputs: 2, layers: [{ units: 3, activation: "sigmoid" }, { units: 1, activation: "sigmoid" }], cost: "squared-error", seed: 3 });
    const options: TrainOptions = { mode: "async", threads: 2, epochs: 2000, batchSize: 4, portion: 1, learningRate: 2, momentum: 0.9 };
    const store = MemoryParameterStore.create(network, options);
    const trainer = await LocalTrainer.create(network, xor, options, { parameters: { client: store, nFetch: 4, nPush: 4 } });
    await trainer.train();
    await trainer.close();
    const out = network.predict(xor.x);
    out.forEach((v, i) => {
      assert.ok(Math.abs(v - xor.y[i]!) < 0.1, `XOR output ${i} is ${v}, target ${xor.y[i]}`);
    });
    store.dispose();
    network.dispose();
  });

  // The store's pushes, each applied 3 ms later; `most` counts a worker's pushes handed over and not yet applied.
  function slowClient(store: MemoryParameterStore): { client: ParameterClient; most: () => number } {
    const inFlight = new Map<number, number>();
    let most = 0;
    const client: ParameterClient = {
      keys: store.keys,
      pull: (into, range) => store.pull(into, range),
      push: async (grads, range, from) => {
        const worker = from?.worker ?? -1;
        inFlight.set(worker, (inFlight.get(worker) ?? 0) + 1);
        most = Math.max(most, inFlight.get(worker)!);
        const copy = grads.slice();
        await new Promise((resolve) => setTimeout(resolve, 3));
        const version = await store.push(copy, range, from);
        inFlight.set(worker, inFlight.get(worker)! - 1);
        return version;
      },
    };
    return { client, most: () => most };
  }

  for (const threads of [2, 0]) {
    test(`maxPushesInFlight 1 (${threads} threads): a worker computes with at most one unapplied push (unbounded: many); idle time is reported`, { timeout: 60_000 }, async () => {
      const kernels = await Kernels.load({ shared: true });
      const network = Network.create(kernels, SPEC);
      const options: TrainOptions = { mode: "async", threads, epochs: 2, batchSize: 50, portion: 10 };
      const most: Record<string, number> = {};
      for (const cap of [1, undefined]) {
        const store = MemoryParameterStore.create(network, options);
        const slow = slowClient(store);
        const trainer = await LocalTrainer.create(network, train, options, { parameters: { client: slow.client, maxPushesInFlight: cap } });
        const reports = await trainer.train();
        await trainer.close();
        most[String(cap)] = slow.most();
        assert.equal(store.version, reports.length * Math.ceil(train.size / 10), "every portion's push was applied once");
        for (const report of reports) {
          assert.equal(report.idleSeconds?.length, Math.max(1, threads));
          assert.ok(report.idleSeconds!.every((s) => s >= 0 && s <= report.seconds), `idle seconds ${report.idleSeconds} of ${report.seconds}`);
          if (cap === 1) assert.ok(report.idleSeconds!.some((s) => s > 0), "a worker held back by its pushes was idle");
        }
        store.dispose();
      }
      // Handed over while the worker waits for the one before: at most 2 at the client, and more without the cap.
      assert.ok(most["1"]! <= 2, `with the cap a worker had ${most["1"]} pushes at the client`);
      assert.ok(most.undefined! > 2, `without the cap a worker had only ${most.undefined} pushes at the client`);
      await assert.rejects(LocalTrainer.create(network, train, options, { parameters: { client: slowClient(MemoryParameterStore.create(network)).client, maxPushesInFlight: 0 } }), /parameters.maxPushesInFlight must be a positive integer/);
      network.dispose();
    });
  }

  test("the seam's options are checked: exchange needs sync, a parameter client needs async, counts are positive", { timeout: 30_000 }, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, SPEC);
    const store = MemoryParameterStore.create(network);
    await assert.rejects(LocalTrainer.create(network, train, { mode: "async" }, { exchange: new MemoryExchangeGroup(1).member(0) }), /gradient exchange needs mode "sync"/);
    await assert.rejects(LocalTrainer.create(network, train, { mode: "sync" }, { parameters: { client: store } }), /parameter client needs mode "async"/);
    await assert.rejects(LocalTrainer.create(network, train, { mode: "async" }, { parameters: { client: store, nPush: 0 } }), /parameters.nPush must be a positive integer/);
    store.dispose();
    network.dispose();
  });
});
