// Bounded-staleness reads over a real nats-server. At the shard: a read with a clock condition waits until every
// worker's pushes reach it, is released by an idle notice, and after its wait is refused naming the slowest worker.
// Downpour training on Pima with 2 tasks x 2 threads: SSP (s = 4) never reads beyond the bound (from the clocks the
// shards report at every read) and reaches 70% held-out accuracy; with one task's pushes slowed, the other's readers
// wait (reads held back at the shard) rather than exceed s; BSP's reads all have staleness 0.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { type DownpourOptions, type DownpourResult, startDownpourShard, trainDownpour } from "../../src/cluster/downpour-training.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterServerError } from "../../src/cluster/ps-protocol.js";
import { ParameterShard, type ShardOptimizerOptions } from "../../src/cluster/ps-shard.js";
import type { TrainOptions } from "../../src/train/options.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const TASKS = 2;
const THREADS = 2;
const TRAIN: TrainOptions = { epochs: 30, batchSize: 30, portion: 10, optimizer: "adagrad", learningRate: 0.5, threads: THREADS, mode: "async" };
const BSP = { joinTimeoutMs: 15_000, barrierTimeoutMs: 120_000 };
const TIMEOUT = { timeout: 180_000 };
const PLAIN_SGD: ShardOptimizerOptions = { optimizer: "sgd", learningRate: 1, momentum: 0, l2: 0 };

let server: NatsServer | undefined;
const pool = new ClientPool(() => server!.url);

const model = () => LogisticRegression.create({ inputs: 8, seed: 1 });

interface Run {
  results: DownpourResult[];
  accuracy: number;
  waitedReads: number;
}

/** One shard and TASKS tasks of `job` with `options`; task `slow.task` (if any) gets the client options `slow.client`. */
async function runJob(job: string, options: Partial<DownpourOptions>, slow?: { task: number; client: DownpourOptions["client"] }): Promise<Run> {
  const { train, held } = await pima();
  const [shardModel, ...taskModels] = await Promise.all(Array.from({ length: 1 + TASKS }, model));
  const ncs = await pool.open(1 + TASKS);
  const { consistency, staleness } = options;
  const shard = await startDownpourShard({ job, shard: 0, shards: 1, tasks: TASKS, consistency, staleness, model: shardModel!, data: train, train: TRAIN, connection: ncs[0]!, onError: () => {} });
  try {
    const results = await Promise.all(
      taskModels.map((m, index) =>
        trainDownpour({
          job, tasks: TASKS, shards: 1, index, name: `task-${index}`, connection: ncs[1 + index]!, model: m, data: train, train: TRAIN, bsp: BSP,
          ...options, client: slow?.task === index ? slow.client : undefined,
        }),
      ),
    );
    return { results, accuracy: taskModels[0]!.evaluate(held).accuracy!, waitedReads: shard.stats.waitedReads };
  } finally {
    await shard.close();
    for (const m of [shardModel!, ...taskModels]) m.dispose();
  }
}

function assertBound(results: DownpourResult[], bound: number): void {
  for (const r of results) {
    assert.equal(r.bound, bound);
    assert.ok(r.clockStaleness.samples > 0, `task ${r.task.index} read with a clock condition`);
    assert.ok(r.clockStaleness.max <= bound, `task ${r.task.index}: a read ${r.clockStaleness.max} clocks ahead of the slowest worker (bound ${bound})`);
    // Every fetch of every thread is a bounded read (pulls also counts the epoch-end reads of the whole model).
    assert.ok(r.clockStaleness.samples <= r.client.pulls);
  }
}

describe("bounded-staleness reads (SSP, BSP) over NATS", () => {
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await pool.close();
    await server?.stop();
  });

  test("a read waits for the slowest worker's pushes, an idle notice releases it, and a read that waits too long names the slowest worker", TIMEOUT, async () => {
    const keys = 64;
    const ncs = await pool.open(3);
    const shard = await ParameterShard.start({ job: "ssp-clock", shard: 0, shards: 1, connection: ncs[0]!, init: new Float32Array(keys), train: PLAIN_SGD, onError: () => {} });
    const clients = await Promise.all([1, 2].map((worker, k) => ShardedParameterClient.connect({ job: "ssp-clock", shards: 1, keys, connection: ncs[1 + k]!, worker, connectTimeoutMs: 10_000 })));
    const [fast, slow] = clients as [ShardedParameterClient, ShardedParameterClient];
    try {
      const g = new Float32Array(keys).fill(1);
      for (let seq = 1; seq <= 3; seq++) await fast.push(g, undefined, { worker: 1, seq });
      await slow.push(g, undefined, { worker: 2, seq: 1 });
      const into = new Float32Array(keys);
      // Clock 3 needs worker 2's third push: the read waits for it.
      let answered = false;
      const read = fast.read(into, undefined, { minClock: 3, workers: 2, waitMs: 20_000 }).then((r) => {
        answered = true;
        return r;
      });
      await slow.push(g, undefined, { worker: 2, seq: 2 });
      await fast.pull(new Float32Array(keys)); // a round trip: the shard has seen the push and still holds the read
      assert.equal(answered, false, "the read waits while worker 2 is at clock 2");
      await slow.push(g, undefined, { worker: 2, seq: 3 });
      const result = await read;
      assert.equal(result.clock, 3);
      assert.equal(into[0], -6, "the read holds all six pushes");
      // Clock 5: worker 2 goes idle, which releases the read (worker 1 is at 3 itself: its own clock is not asked).
      const held = fast.read(into, undefined, { minClock: 3, workers: 3, waitMs: 300 });
      await assert.rejects(held, (error: unknown) => {
        assert.ok(error instanceof ParameterServerError);
        assert.equal(error.reason, "refused");
        assert.equal(error.field, "clock");
        assert.match(error.message, /only 2 of the 3 workers have pushed/);
        return true;
      });
      for (let seq = 4; seq <= 5; seq++) await fast.push(g, undefined, { worker: 1, seq });
      const timedOut = fast.read(into, undefined, { minClock: 5, workers: 2, waitMs: 300 });
      await assert.rejects(timedOut, (error: unknown) => {
        assert.ok(error instanceof ParameterServerError);
        assert.equal(error.field, "clock");
        assert.match(error.message, /waited 300 ms for every worker to reach clock 5/);
        assert.match(error.message, /the slowest is worker 2 at clock 3/);
        return true;
      });
      const released = fast.read(into, undefined, { minClock: 5, workers: 2, waitMs: 20_000 });
      await slow.idle([2]);
      const afterIdle = await released;
      assert.equal(afterIdle.clock, 5, "worker 2 is idle: the slowest active worker is worker 1");
      assert.equal(afterIdle.version, 8);
      // A push from worker 2 makes it active again.
      await slow.push(g, undefined, { worker: 2, seq: 4 });
      await assert.rejects(fast.read(into, undefined, { minClock: 5, workers: 2, waitMs: 200 }), /the slowest is worker 2 at clock 4/);
      assert.deepEqual([...shard.clocks()].sort(), [[1, 5], [2, 4]]);
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      await shard.close();
    }
  });

  // Downpour SGD with bounded staleness: 2 tasks x 2 threads, 1 shard, Pima.

  test("ssp, s = 4: no read is more than 4 clocks ahead of the slowest worker, and held-out accuracy reaches 0.7", TIMEOUT, async () => {
    const { results, accuracy } = await runJob("ssp-pima", { consistency: "ssp", staleness: 4 });
    assertBound(results, 4);
    assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);
  });

  test("ssp, s = 2, one task's pushes slowed (3 ms each): the other task's readers wait at the shard rather than exceed s", TIMEOUT, async () => {
    const slow = { task: 1, client: { faults: { delayMs: ({ op }: { op: string }) => (op === "push" ? 3 : 0) } } };
    const { results, waitedReads } = await runJob("ssp-slow", { consistency: "ssp", staleness: 2 }, slow);
    assertBound(results, 2);
    const [fast] = results;
    assert.ok(waitedReads > fast!.clockStaleness.samples / 4, `${waitedReads} of the ${fast!.clockStaleness.samples} reads of the fast task waited for the slow one's pushes`);
    assert.equal(fast!.clockStaleness.max, 2, "the fast task's readers run up to the bound, and no further");
  });

  test("bsp: every read waits for the full round (staleness 0)", TIMEOUT, async () => {
    const { results, accuracy } = await runJob("bsp-pima", { consistency: "bsp" });
    assertBound(results, 0);
    assert.ok(accuracy >= 0.65, `held-out accuracy ${accuracy}`);
  });

  test("staleness is refused without ssp, and a negative one with it", async () => {
    const { train } = await pima();
    const m = await model();
    try {
      const base = { job: "ssp-bad", tasks: 1, shards: 1, connection: pool.opened[0]!, model: m, data: train, train: TRAIN };
      await assert.rejects(trainDownpour({ ...base, consistency: "async", staleness: 2 }), /staleness applies to consistency "ssp" only/);
      await assert.rejects(trainDownpour({ ...base, consistency: "ssp", staleness: -1 }), /staleness must be an integer >= 0/);
      await assert.rejects(trainDownpour({ ...base, consistency: "eventual" as never }), /consistency must be one of async, ssp, bsp/);
    } finally {
      m.dispose();
    }
  });
});
