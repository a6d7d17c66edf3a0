// Model averaging over the cluster exchange (syncEvery): in one process (MemoryChannelGroup), trainers on 2 and 3
// peers with syncEvery 4 end where MemoryExchangeGroup's replicas end, bit for bit, in both combine modes (SGD with
// momentum and Adam), with the supersteps and bytes of the sync batches only; f16 gradients keep the peers
// identical. Over a real nats-server with trainPeer: syncEvery 1 still equals one local run; syncEvery 4 trains
// logistic regression on Pima to the local run's held-out threshold with bit-identical peers in about a quarter of
// the supersteps; bad syncEvery values are refused by name, and peers with another syncEvery refuse each other.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { MemoryChannelGroup } from "../../src/cluster/channel.js";
import { type CombineMode, stepTraffic } from "../../src/cluster/combine.js";
import { MembershipError } from "../../src/cluster/errors.js";
import { ClusterGradientExchange, type GradDtype } from "../../src/cluster/gradient-exchange.js";
import { type PeerTrainingOptions, trainPeer } from "../../src/cluster/peer-training.js";
import { Kernels } from "../../src/core/kernels.js";
import { type Dataset, selectRows } from "../../src/data/dataset.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import type { NetworkSpec } from "../../src/model/spec.js";
import { type GradientExchange, isSyncBatch } from "../../src/train/exchange.js";
import { MemoryExchangeGroup } from "../../src/train/memory-exchange.js";
import type { TrainOptions } from "../../src/train/options.js";
import { LocalTrainer } from "../../src/train/trainer.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const TIMEOUT = { timeout: 120_000 };
const MODES: readonly CombineMode[] = ["allreduce", "master"];

// --- in one process ---------------------------------------------------------------------------------------------

const SPEC: NetworkSpec = {
  inputs: 8,
  layers: [
    { units: 10, activation: "tanh" },
    { units: 3, activation: "softmax" },
  ],
  seed: 3,
};
const blobs = syntheticClassification({ size: 630, features: 8, classes: 3, seed: 21 });
const OPTIMIZERS: Record<string, TrainOptions> = {
  "sgd with momentum": { optimizer: "sgd", momentum: 0.9, learningRate: 0.05 },
  adam: { optimizer: "adam", learningRate: 0.01 },
};
const EPOCHS = 3;
const BATCH = 20;

function part(data: Dataset, parts: number, p: number): Dataset {
  const rows: number[] = [];
  for (let r = p; r < data.size; r += parts) rows.push(r);
  return selectRows(data, rows);
}

/** Trains one network per peer's part with `exchanges[p]`; the weights and optimizer state of each. */
async function trainAll(exchanges: GradientExchange[], options: TrainOptions) {
  const kernels = await Kernels.load({ shared: true });
  const peers = exchanges.length;
  const networks = exchanges.map(() => Network.create(kernels, SPEC));
  const trainers = await Promise.all(
    networks.map((n, p) =>
      LocalTrainer.create(
        n,
        part(blobs, peers, p),
        { ...options, epochs: EPOCHS, batchSize: BATCH, shuffle: false, threads: 0 },
        { exchange: exchanges[p]! },
      ),
    ),
  );
  try {
    await Promise.all(trainers.map((t) => t.train()));
    return {
      weights: networks.map((n) => n.params.block.toArray()),
      state: trainers.map((t) => t.state.tensors()),
      keys: networks[0]!.params.block.length,
    };
  } finally {
    await Promise.all(trainers.map((t) => t.close()));
  }
}

/** The tensor bytes peer `index` sends in a run: the sync batches' gradients, and the models after local batches. */
function expectedBytes(mode: CombineMode, keys: number, peers: number, index: number, batches: number, k: number, blocks: number): number {
  const values = stepTraffic(mode, keys, peers, index).sent;
  let bytes = 0;
  for (let b = 0; b < batches; b++) {
    if (!isSyncBatch(b, k, batches)) continue;
    const averaged = b > 0 && !isSyncBatch(b - 1, k, batches);
    bytes += 4 * values * (1 + (averaged ? blocks : 0));
  }
  return EPOCHS * bytes;
}

describe("ClusterGradientExchange syncEvery (one process)", () => {
  for (const [name, optimizer] of Object.entries(OPTIMIZERS)) {
    for (const peers of [2, 3]) {
      for (const combine of MODES) {
        test(
          `${peers} peers, ${combine}, ${name}, syncEvery 4: MemoryExchangeGroup's parameters and state, bit for bit; supersteps and bytes of the sync batches`,
          TIMEOUT,
          async () => {
            const group = new MemoryChannelGroup(peers);
            const cluster = group.channels.map((channel) => new ClusterGradientExchange(channel, { combine, syncEvery: 4 }));
            const memory = new MemoryExchangeGroup(peers, { syncEvery: 4 });
            const got = await trainAll(cluster, optimizer);
            const want = await trainAll(
              Array.from({ length: peers }, (_, p) => memory.member(p)),
              optimizer,
            );
            for (let p = 0; p < peers; p++) {
              assert.deepEqual(got.weights[p], want.weights[p], `peer ${p}'s parameters`);
              assert.deepEqual(got.state[p], want.state[p], `peer ${p}'s optimizer state`);
              assert.deepEqual(got.weights[p], got.weights[0], `peer ${p}'s parameters differ from peer 0's`);
            }
            const batches = Math.ceil(Math.floor(blobs.size / peers) / BATCH);
            const syncs = Array.from({ length: batches }, (_, b) => b).filter((b) => isSyncBatch(b, 4, batches)).length;
            const blocks = 1 + (optimizer.optimizer === "adam" ? 2 : 1);
            cluster.forEach((exchange, p) => {
              const s = exchange.stats;
              assert.equal(s.steps, EPOCHS * batches, "every batch is an allreduce() call");
              assert.equal(s.supersteps, EPOCHS * (1 + 2 * syncs), "1 superstep an epoch (epochBatches), 2 a sync batch, none a local one");
              assert.equal(s.bytesSent, expectedBytes(combine, got.keys, peers, p, batches, 4, blocks), `peer ${p}'s bytes sent`);
              exchange.dispose();
            });
          },
        );
      }
    }
  }

  for (const gradDtype of ["f32", "f16"] satisfies GradDtype[]) {
    test(`syncEvery 1 (${gradDtype}): the per-batch exchange, bit for bit, and no model bytes`, TIMEOUT, async () => {
      const kernels = await Kernels.load({ shared: true });
      const make = (syncEvery?: number) =>
        new MemoryChannelGroup(3).channels.map(
          (channel) => new ClusterGradientExchange(channel, { gradDtype, kernels, ...(syncEvery ? { syncEvery } : {}) }),
        );
      const [before, now] = [make(), make(1)];
      const a = await trainAll(before, OPTIMIZERS.adam!);
      const b = await trainAll(now, OPTIMIZERS.adam!);
      assert.deepEqual(b.weights, a.weights);
      assert.deepEqual(b.state, a.state);
      now.forEach((exchange, p) => {
        const { last: _a, ...got } = exchange.stats;
        const { last: _b, ...want } = before[p]!.stats;
        assert.deepEqual(
          [got.supersteps, got.bytesSent, got.bytesReceived, got.steps],
          [want.supersteps, want.bytesSent, want.bytesReceived, want.steps],
        );
      });
      for (const e of [...before, ...now]) e.dispose();
    });
  }

  test("syncEvery 4 with f16 gradients (the models travel in f32): bit-identical peers", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const cluster = new MemoryChannelGroup(3).channels.map(
      (channel) => new ClusterGradientExchange(channel, { gradDtype: "f16", kernels, syncEvery: 4 }),
    );
    const got = await trainAll(cluster, OPTIMIZERS["sgd with momentum"]!);
    for (let p = 1; p < 3; p++) {
      assert.deepEqual(got.weights[p], got.weights[0], `peer ${p}'s parameters`);
      assert.deepEqual(got.state[p], got.state[0], `peer ${p}'s optimizer state`);
    }
    for (const e of cluster) e.dispose();
  });

  test("syncEvery must be a positive integer (InvalidArgumentError naming it)", () => {
    const channel = new MemoryChannelGroup(1).channel(0);
    for (const bad of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, "4"]) {
      assert.throws(
        () => new ClusterGradientExchange(channel, { syncEvery: bad as number }),
        (e) => e instanceof InvalidArgumentError && /ClusterGradientExchange: syncEvery .*must be a positive integer, got/.test(e.message),
        `syncEvery ${String(bad)}`,
      );
    }
    assert.equal(new ClusterGradientExchange(channel).syncEvery, 1);
  });
});

// --- over NATS ----------------------------------------------------------------------------------------------------

const PEERS = 2;
const TRAIN: TrainOptions = { epochs: 60, batchSize: 30, portion: 5, learningRate: 0.5, momentum: 0.9, shuffle: false, threads: 0 };
const BSP = { joinTimeoutMs: 10_000, barrierTimeoutMs: 20_000 };

let server: NatsServer | undefined;
const pool = new ClientPool(() => server!.url);

/** PEERS peers of job `job` on fresh models (seed 1), each with `extra` over the common options. */
async function runJob(job: string, train: Dataset, extra: Partial<PeerTrainingOptions>) {
  const models = await Promise.all(Array.from({ length: PEERS }, () => LogisticRegression.create({ inputs: 8, seed: 1 })));
  const ncs = await pool.open(PEERS);
  try {
    const results = await Promise.all(
      models.map((model, index) =>
        trainPeer({
          job,
          peers: PEERS,
          connection: ncs[index]!,
          name: `peer-${index}`,
          index,
          model,
          data: train,
          train: TRAIN,
          bsp: BSP,
          ...extra,
        }),
      ),
    );
    return { models, results };
  } catch (error) {
    for (const m of models) m.dispose();
    throw error;
  }
}

describe("trainPeer syncEvery over NATS (2 peers in one process)", () => {
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await pool.close();
    await server?.stop();
  });

  test(
    "syncEvery 1 equals the local run; syncEvery 4 reaches the local held-out threshold, identical peers, about 4 times fewer supersteps",
    TIMEOUT,
    async (t) => {
      const { train, held } = await pima();
      const local = await LogisticRegression.create({ inputs: 8, seed: 1 });
      const every = await runJob("pima-sync-1", train, { syncEvery: 1 });
      const averaged = await runJob("pima-sync-4", train, { syncEvery: 4 });
      try {
        await local.fit(train, TRAIN);
        const localAccuracy = local.evaluate(held).accuracy!;
        assert.ok(localAccuracy >= 0.74, `the local run's held-out accuracy ${localAccuracy} (test/train/learning's threshold is 0.74)`);
        const want = local.network.params.block.toArray();
        for (const run of [every, averaged]) {
          const weights = run.models.map((m) => m.network.params.block.toArray());
          for (let p = 1; p < PEERS; p++) assert.deepEqual(weights[p], weights[0], `peer ${p}'s weights differ from peer 0's`);
          for (const r of run.results) assert.equal(r.reports.length, TRAIN.epochs);
        }
        const diff = Math.max(...want.map((w, i) => Math.abs(w - every.models[0]!.network.params.block.toArray()[i]!)));
        assert.ok(diff <= 1e-5, `syncEvery 1: the peers' weights are ${diff} from the local run's`);
        const accuracies = averaged.models.map((m) => m.evaluate(held).accuracy!);
        for (const a of accuracies)
          assert.ok(a >= 0.74, `syncEvery 4: held-out accuracy ${a}; the local run's ${localAccuracy}, threshold 0.74`);
        const [s1, s4] = [every.results[0]!.stats, averaged.results[0]!.stats];
        assert.equal(s4.steps, s1.steps, "every batch is still an allreduce() call");
        const batches = Math.ceil(334 / 15);
        assert.equal(s1.supersteps, TRAIN.epochs! * (1 + 2 * batches));
        assert.ok(s4.supersteps * 3 < s1.supersteps, `syncEvery 4: ${s4.supersteps} supersteps, syncEvery 1: ${s1.supersteps}`);
        assert.notEqual(every.results[0]!.specHash, averaged.results[0]!.specHash, "syncEvery is part of the spec hash");
        t.diagnostic(
          `syncEvery 1: ${s1.supersteps} supersteps, ${s1.bytesSent} bytes sent; syncEvery 4: ${s4.supersteps} supersteps, ${s4.bytesSent} bytes sent; held-out ${accuracies.join(", ")} (local ${localAccuracy})`,
        );
      } finally {
        local.dispose();
        for (const m of [...every.models, ...averaged.models]) m.dispose();
      }
    },
  );

  test("a bad syncEvery is refused before joining; a peer with another syncEvery is refused by name", TIMEOUT, async () => {
    const { train } = await pima();
    const models = await Promise.all([1, 2].map(() => LogisticRegression.create({ inputs: 8, seed: 1 })));
    try {
      for (const bad of [0, -3, 1.5, "2"]) {
        await assert.rejects(
          trainPeer({
            job: "bad",
            peers: 2,
            connection: { servers: server!.url },
            model: models[0]!,
            data: train,
            syncEvery: bad as number,
          }),
          (e) => e instanceof InvalidArgumentError && /^trainPeer: syncEvery .*must be a positive integer, got/.test(e.message),
          `syncEvery ${String(bad)}`,
        );
      }
      const ncs = await pool.open(2);
      const base = { job: "sync-refused", peers: 2, data: train, train: TRAIN, bsp: { ...BSP, onError: () => {} } };
      const [good, odd] = await Promise.allSettled([
        trainPeer({ ...base, connection: ncs[0]!, name: "good", model: models[0]!, syncEvery: 4 }),
        trainPeer({ ...base, connection: ncs[1]!, name: "odd", model: models[1]!, syncEvery: 2 }),
      ]);
      assert.equal(good.status, "rejected");
      const error = (good as PromiseRejectedResult).reason;
      assert.ok(
        error instanceof MembershipError && error.peer === "odd" && error.field === "spec",
        `the good peer's error: ${String(error)}`,
      );
      assert.equal(odd.status, "rejected", "the refusal is mutual");
    } finally {
      for (const m of models) m.dispose();
    }
  });
});
