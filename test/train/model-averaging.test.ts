// Model averaging through the training seam, in one process (MemoryExchangeGroup, no network): syncEvery 1 is the
// per-batch gradient exchange, bit for bit; with syncEvery 4 (and one larger than an epoch), 2 and 3 replicas on
// SGD with momentum and on Adam end with bit-identical parameters and optimizer state, still learn, and train a run
// other than the per-batch one; one replica alone equals a lone trainer; a convergence check stops every replica on
// the same batch; bad syncEvery values and a member without blocks are refused by name.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { holdOut, selectRows, type Dataset } from "../../src/data/dataset.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { InvalidArgumentError, InvalidStateError } from "../../src/errors.js";
import { Network, type Tensor } from "../../src/model/network.js";
import type { NetworkSpec } from "../../src/model/spec.js";
import { evaluate } from "../../src/train/evaluate.js";
import { isSyncBatch } from "../../src/train/exchange.js";
import { MemoryExchangeGroup } from "../../src/train/memory-exchange.js";
import type { TrainOptions } from "../../src/train/options.js";
import { type EpochReport, LocalTrainer } from "../../src/train/trainer.js";

const TIMEOUT = { timeout: 120_000 };
const SPEC: NetworkSpec = {
  inputs: 10,
  layers: [
    { units: 12, activation: "relu" },
    { units: 3, activation: "softmax" },
  ],
  seed: 5,
};
const blobs = syntheticClassification({ size: 1100, features: 10, classes: 3, seed: 13 });
const { train, test: held } = holdOut(blobs, 200);

const OPTIMIZERS: Record<string, TrainOptions> = {
  "sgd with momentum": { optimizer: "sgd", momentum: 0.9, learningRate: 0.05 },
  adam: { optimizer: "adam", learningRate: 0.01 },
};

/** Rows p, p + parts, p + 2 parts, ... of `data`. */
function part(data: Dataset, parts: number, p: number): Dataset {
  const rows: number[] = [];
  for (let r = p; r < data.size; r += parts) rows.push(r);
  return selectRows(data, rows);
}

interface Run {
  weights: Float32Array[];
  state: Tensor[];
  reports: EpochReport[][];
  accuracy: number[];
}

/** One replica per part of `train`, joined by `group` (null: each trainer alone), trained with `options`. */
async function run(replicas: number, options: TrainOptions, group: MemoryExchangeGroup | null): Promise<Run> {
  const kernels = await Kernels.load({ shared: true });
  const networks = Array.from({ length: replicas }, () => Network.create(kernels, SPEC));
  const trainers = await Promise.all(
    networks.map((network, p) =>
      LocalTrainer.create(
        network,
        part(train, replicas, p),
        { shuffle: false, portion: 5, ...options },
        group ? { exchange: group.member(p) } : {},
      ),
    ),
  );
  try {
    const reports = await Promise.all(trainers.map((t) => t.train()));
    return {
      weights: networks.map((n) => n.params.block.toArray()),
      state: trainers.flatMap((t) => t.state.tensors()),
      reports,
      accuracy: networks.map((n) => evaluate(n, held).accuracy!),
    };
  } finally {
    await Promise.all(trainers.map((t) => t.close()));
  }
}

/** Every replica's state tensors, by replica (run() concatenates them in replica order). */
function stateOf(r: Run, replicas: number): Tensor[][] {
  const per = r.state.length / replicas;
  return Array.from({ length: replicas }, (_, p) => r.state.slice(p * per, (p + 1) * per));
}

function assertIdentical(r: Run, replicas: number, what: string): void {
  const states = stateOf(r, replicas);
  for (let p = 1; p < replicas; p++) {
    assert.deepEqual(r.weights[p], r.weights[0], `${what}: replica ${p}'s parameters differ from replica 0's`);
    assert.deepEqual(states[p], states[0], `${what}: replica ${p}'s optimizer state differs from replica 0's`);
  }
}

describe("model averaging (MemoryExchangeGroup syncEvery)", () => {
  test("the sync batches: every k-th and each epoch's last; k = 1 every batch", () => {
    const syncs = (k: number, batches: number) => Array.from({ length: batches }, (_, b) => b).filter((b) => isSyncBatch(b, k, batches));
    assert.deepEqual(syncs(1, 5), [0, 1, 2, 3, 4]);
    assert.deepEqual(syncs(4, 10), [3, 7, 9]);
    assert.deepEqual(syncs(4, 8), [3, 7]);
    assert.deepEqual(syncs(100, 6), [5]);
  });

  test("syncEvery 1 is the per-batch gradient exchange, bit for bit (weights, state, reported losses)", TIMEOUT, async () => {
    const options = { ...OPTIMIZERS["sgd with momentum"], epochs: 2, batchSize: 20, threads: 0 };
    const before = await run(2, options, new MemoryExchangeGroup(2));
    const now = await run(2, options, new MemoryExchangeGroup(2, { syncEvery: 1 }));
    assert.deepEqual(now.weights, before.weights);
    assert.deepEqual(now.state, before.state);
    assert.deepEqual(
      now.reports.map((rs) => rs.map((r) => r.loss)),
      before.reports.map((rs) => rs.map((r) => r.loss)),
    );
    assertIdentical(now, 2, "syncEvery 1");
  });

  for (const [name, optimizer] of Object.entries(OPTIMIZERS)) {
    for (const replicas of [2, 3]) {
      test(
        `syncEvery 4, ${replicas} replicas, ${name}: bit-identical parameters and state, a model that learned, not the per-batch run`,
        TIMEOUT,
        async () => {
          const threads = replicas === 2 && name === "adam" ? 1 : 0;
          const options = { ...optimizer, epochs: 4, batchSize: 20, threads };
          const perBatch = await run(replicas, options, new MemoryExchangeGroup(replicas));
          const averaged = await run(replicas, options, new MemoryExchangeGroup(replicas, { syncEvery: 4 }));
          assertIdentical(averaged, replicas, "syncEvery 4");
          assert.notDeepEqual(
            averaged.weights[0],
            perBatch.weights[0],
            "averaging every 4 batches trains another run than combining every batch",
          );
          for (const a of averaged.accuracy) {
            assert.ok(
              a >= perBatch.accuracy[0]! - 0.05,
              `held-out accuracy ${a} with syncEvery 4, ${perBatch.accuracy[0]} combining every batch`,
            );
            assert.ok(a >= 0.8, `held-out accuracy ${a} with syncEvery 4`);
          }
          const epochLosses = averaged.reports.map((rs) => rs[0]!.loss);
          assert.ok(epochLosses.every(Number.isFinite), `epoch losses ${epochLosses}`);
          assert.notEqual(epochLosses[1], epochLosses[0], "the local batches report each replica's own loss");
        },
      );
    }
  }

  test("syncEvery beyond the epoch: only each epoch's last batch is combined, and the replicas still end identical", TIMEOUT, async () => {
    const averaged = await run(
      3,
      { ...OPTIMIZERS.adam, epochs: 3, batchSize: 25, threads: 0 },
      new MemoryExchangeGroup(3, { syncEvery: 1000 }),
    );
    assertIdentical(averaged, 3, "syncEvery 1000");
  });

  test("one replica with syncEvery 4 trains as a lone trainer does, bit for bit", TIMEOUT, async () => {
    const options = { ...OPTIMIZERS["sgd with momentum"], epochs: 2, batchSize: 20, threads: 0 };
    const alone = await run(1, options, null);
    const averaged = await run(1, options, new MemoryExchangeGroup(1, { syncEvery: 4 }));
    assert.deepEqual(averaged.weights, alone.weights);
    assert.deepEqual(averaged.state, alone.state);
  });

  test("a convergence check sees only combined losses: every replica stops on the same batch, identical", TIMEOUT, async () => {
    const options = {
      ...OPTIMIZERS["sgd with momentum"],
      epochs: 30,
      batchSize: 20,
      threads: 0,
      convergence: { window: 3, minImprovement: 0.5 },
    };
    const averaged = await run(3, options, new MemoryExchangeGroup(3, { syncEvery: 4 }));
    const last = averaged.reports.map((rs) => rs.at(-1)!);
    for (const r of last) assert.equal(r.stop, "converged");
    assert.deepEqual(
      last.map((r) => r.iterations),
      last.map(() => last[0]!.iterations),
      "every replica stopped after the same mini-batch",
    );
    // 300 rows a replica: 15 batches an epoch, combined after 4, 8, 12 and 15 of them.
    assert.ok([0, 4, 8, 12].includes(last[0]!.iterations % 15), `stopped after ${last[0]!.iterations} batches: not at a sync batch`);
    assertIdentical(averaged, 3, "converged");
  });

  test("syncEvery must be a positive integer; a member without blocks is refused at the first averaging", TIMEOUT, async () => {
    for (const bad of [0, -2, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "4"]) {
      assert.throws(
        () => new MemoryExchangeGroup(2, { syncEvery: bad as number }),
        (e) => e instanceof InvalidArgumentError && /MemoryExchangeGroup: syncEvery .*must be a positive integer/.test(e.message),
        `syncEvery ${String(bad)}`,
      );
    }
    const group = new MemoryExchangeGroup(2, { syncEvery: 2 });
    const members = [group.member(0), group.member(1)];
    assert.deepEqual(await Promise.all(members.map((m) => m.epochBatches(3, 1))), [3, 3]);
    const local = await Promise.all(members.map((m) => m.allreduce(new Float32Array(4), { loss: 1, rows: 2 }, 0)));
    assert.deepEqual(
      local,
      [
        { loss: 1, rows: 2, local: true },
        { loss: 1, rows: 2, local: true },
      ],
      "batch 0 is local",
    );
    await Promise.all(
      members.map((m) =>
        assert.rejects(
          m.allreduce(new Float32Array(4), { loss: 1, rows: 2 }, 1),
          (e) => e instanceof InvalidStateError && /member 0 has no blocks attached/.test(e.message),
        ),
      ),
    );
  });
});
