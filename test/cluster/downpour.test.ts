// Downpour SGD over a real nats-server: 2 tasks (one connection each, as separate processes would have) train
// logistic regression on Pima asynchronously against 1 and 2 parameter-server shards and reach the held-out
// accuracy of local training within a margin; every task ends with the shards' final parameters; a task started
// with other options than the shards' is refused.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { startDownpourShard, trainDownpour } from "../../src/cluster/downpour-training.js";
import type { ParameterShard } from "../../src/cluster/ps-shard.js";
import type { TrainOptions } from "../../src/train/options.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const TASKS = 2;
// Adagrad, as DistBelief: it damps the stale gradients of the asynchronous workers per key.
const TRAIN: TrainOptions = { epochs: 40, batchSize: 30, portion: 10, optimizer: "adagrad", learningRate: 0.5, threads: 1, mode: "async" };
const BSP = { joinTimeoutMs: 15_000, barrierTimeoutMs: 60_000 };
const TIMEOUT = { timeout: 120_000 };

let server: NatsServer | undefined;
const pool = new ClientPool(() => server!.url);

const model = () => LogisticRegression.create({ inputs: 8, seed: 1 });

describe("Downpour SGD over NATS (tasks and shards in one process)", () => {
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await pool.close();
    await server?.stop();
  });

  for (const shards of [1, 2]) {
    test(`2 tasks x 1 thread against ${shards} shard(s): logistic regression on Pima reaches local training's held-out accuracy`, TIMEOUT, async (t) => {
      const { train, held } = await pima();
      const local = await model();
      await local.fit(train, { ...TRAIN, mode: "sync" });
      const localAccuracy = local.evaluate(held).accuracy!;
      local.dispose();
      const job = `downpour-pima-${shards}`;
      const shardModels = await Promise.all(Array.from({ length: shards }, model));
      const taskModels = await Promise.all(Array.from({ length: TASKS }, model));
      const ncs = await pool.open(shards + TASKS);
      const started: ParameterShard[] = [];
      try {
        for (let s = 0; s < shards; s++) {
          started.push(await startDownpourShard({ job, shard: s, shards, tasks: TASKS, model: shardModels[s]!, data: train, train: TRAIN, connection: ncs[s]!, onError: () => {} }));
        }
        const results = await Promise.all(
          taskModels.map((m, index) =>
            trainDownpour({ job, tasks: TASKS, shards, index, name: `task-${index}`, connection: ncs[shards + index]!, model: m, data: train, train: TRAIN, bsp: BSP }),
          ),
        );
        const accuracies = taskModels.map((m) => m.evaluate(held).accuracy!);
        t.diagnostic(`fault-free: accuracy ${accuracies[0]} (local ${localAccuracy})`);
        assert.ok(accuracies[0]! >= 0.7, `held-out accuracy ${accuracies[0]}`);
        assert.ok(accuracies[0]! >= localAccuracy - 0.08, `Downpour ${accuracies[0]} vs local ${localAccuracy}`);
        const [a, b] = taskModels.map((m) => m.network.params.block.toArray());
        assert.deepEqual(a, b, "every task ends with the shards' final parameters");
        const updates = started.reduce((n, shard) => n + shard.stats.updates, 0) / shards;
        const pushes = results.reduce((n, r) => n + r.client.pushes, 0);
        assert.equal(updates, pushes, "every push applied once on every shard");
        for (const r of results) assert.equal(r.staleness.samples, r.client.pushes, "staleness sampled at every push");
      } finally {
        await Promise.allSettled(started.map((s) => s.close()));
        for (const m of [...shardModels, ...taskModels]) m.dispose();
      }
    });
  }

  test("warm start: task 0 trains 20 mini-batches alone first; no push is lost to the shard's duplicate check", TIMEOUT, async () => {
    const { train, held } = await pima();
    const job = "downpour-warm";
    const [shardModel, ...taskModels] = await Promise.all(Array.from({ length: 1 + TASKS }, model));
    const ncs = await pool.open(1 + TASKS);
    const shard = await startDownpourShard({ job, shard: 0, shards: 1, tasks: TASKS, warmStart: 20, model: shardModel!, data: train, train: TRAIN, connection: ncs[0]!, onError: () => {} });
    try {
      const results = await Promise.all(
        taskModels.map((m, index) =>
          trainDownpour({ job, tasks: TASKS, shards: 1, index, name: `task-${index}`, warmStart: 20, connection: ncs[1 + index]!, model: m, data: train, train: TRAIN, bsp: BSP }),
        ),
      );
      const [first, second] = results.map((r) => r.client.pushes);
      assert.ok(first! > second!, `task 0 pushed during its warm start too: ${first} vs ${second}`);
      assert.equal(shard.stats.updates, first! + second!, "every push applied, none taken for a retry");
      assert.equal(shard.stats.deduped, 0);
      assert.ok(taskModels[0]!.evaluate(held).accuracy! >= 0.7);
    } finally {
      await shard.close();
      for (const m of [shardModel!, ...taskModels]) m.dispose();
    }
  });

  test("a task with other training options than the shards' is refused", TIMEOUT, async () => {
    const { train } = await pima();
    const [shardModel, taskModel] = await Promise.all([model(), model()]);
    const [ncShard, ncTask] = await pool.open(2);
    const shard = await startDownpourShard({ job: "downpour-mismatch", shard: 0, shards: 1, tasks: 1, model: shardModel!, data: train, train: TRAIN, connection: ncShard!, onError: () => {} });
    try {
      await assert.rejects(
        trainDownpour({ job: "downpour-mismatch", tasks: 1, shards: 1, connection: ncTask!, model: taskModel!, data: train, train: { ...TRAIN, learningRate: 0.2 }, bsp: BSP, client: { connectTimeoutMs: 3_000 } }),
        /spec/i,
      );
    } finally {
      await shard.close();
      shardModel!.dispose();
      taskModel!.dispose();
    }
  });
});
