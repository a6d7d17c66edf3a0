// Portions across processes and backup tasks (issue 9) over a real nats-server: the portion queue's rules on their
// own (leases, backups oldest first and never one's own, lease expiry, first completion counts); 2 tasks (one
// connection each, as separate processes would have) training logistic regression on Pima by units reach local
// training's held-out accuracy; with one task slowed 3x the other trains more units, backups run and the epochs are
// shorter than with fixed equal splits, and the shards' per-worker clocks show every unit's pushes applied exactly
// once; bad requests to the queue are refused naming the field.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { packValue, unpackValue } from "../../src/cluster/codec.js";
import { type DownpourPortionsResult, trainDownpourPortions, unitWorker } from "../../src/cluster/downpour-portions.js";
import { startDownpourShard } from "../../src/cluster/downpour-training.js";
import {
  PORTION_PROTOCOL_VERSION,
  PortionQueue,
  PortionQueueClient,
  PortionQueueServer,
  type PortionReply,
  portionSubject,
} from "../../src/cluster/portion-queue.js";
import type { ParameterShard } from "../../src/cluster/ps-shard.js";
import type { Dataset } from "../../src/data/dataset.js";
import type { TrainOptions } from "../../src/train/options.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const TASKS = 2;
// downpour.test.ts's recipe (Adagrad, as DistBelief), on the calling thread: each unit is one fit().
const TRAIN: TrainOptions = { epochs: 40, batchSize: 30, portion: 10, optimizer: "adagrad", learningRate: 0.5, threads: 0, mode: "async" };
const UNIT_ROWS = 60;
const BSP = { joinTimeoutMs: 15_000, barrierTimeoutMs: 120_000 };
const TIMEOUT = { timeout: 180_000 };

let server: NatsServer | undefined;
const pool = new ClientPool(() => server!.url);

const model = () => LogisticRegression.create({ inputs: 8, seed: 1 });

interface Run {
  results: DownpourPortionsResult[];
  shard: ParameterShard;
  held: Dataset;
  accuracies: number[];
  params: Float32Array[];
  clocks: Map<number, number>;
}

/** One shard and TASKS tasks of a portions job, every task with its own connection; task 1 slowed `slowdown` times. */
async function runJob(job: string, train: TrainOptions, portions: { fixed?: boolean; backups?: boolean }, slowdown: number, nPush = 1): Promise<Run> {
  const { train: data, held } = await pima();
  const [shardModel, ...taskModels] = await Promise.all(Array.from({ length: 1 + TASKS }, model));
  const ncs = await pool.open(1 + TASKS);
  const shard = await startDownpourShard({ job, shard: 0, shards: 1, tasks: TASKS, nPush, model: shardModel!, data, train, connection: ncs[0]!, onError: () => {} });
  try {
    const results = await Promise.all(
      taskModels.map((m, index) =>
        trainDownpourPortions({
          job, tasks: TASKS, shards: 1, index, name: `task-${index}`, connection: ncs[1 + index]!, model: m, data, train, nPush, bsp: BSP,
          portions: { unitRows: UNIT_ROWS, ...portions, slowdown: index === 1 ? slowdown : 1 },
        }),
      ),
    );
    return {
      results, shard, held,
      accuracies: taskModels.map((m) => m.evaluate(held).accuracy!),
      params: taskModels.map((m) => m.network.params.block.toArray()),
      clocks: shard.clocks(),
    };
  } finally {
    await shard.close();
    for (const m of [shardModel!, ...taskModels]) m.dispose();
  }
}

const epochSeconds = (r: DownpourPortionsResult) => r.reports.reduce((s, e) => s + e.seconds, 0);

describe("the portion queue's rules (no I/O)", () => {
  test("units in order, then a backup of the oldest lease of another task, at most one per unit; the first completion counts", () => {
    let now = 0;
    const q = new PortionQueue({ tasks: 3, rows: 10, unitRows: 4, now: () => now });
    assert.equal(q.units, 3);
    assert.deepEqual(q.lease(0, 0), { kind: "unit", unit: 0, begin: 0, end: 4 });
    now = 1;
    assert.deepEqual(q.lease(1, 0), { kind: "unit", unit: 1, begin: 4, end: 8 });
    now = 2;
    assert.deepEqual(q.lease(2, 0), { kind: "unit", unit: 2, begin: 8, end: 10 });
    assert.equal(q.complete(2, 0, 2, 1.5, 2), true);
    // Task 2 is idle: the oldest lease is task 0's unit 0.
    assert.deepEqual(q.lease(2, 0), { kind: "backup", unit: 0, begin: 0, end: 4, of: 0 });
    // Task 0 is never given its own unit; unit 0 has its backup already: unit 1.
    assert.deepEqual(q.lease(0, 0), { kind: "backup", unit: 1, begin: 4, end: 8, of: 1 });
    assert.deepEqual(q.lease(1, 0), { kind: "wait" });
    assert.equal(q.complete(2, 0, 0, 2, 4), true, "the backup came first");
    assert.equal(q.complete(0, 0, 0, 9, 4), false, "the primary's completion is dropped");
    assert.throws(() => q.lease(0, 1), (e: Error & { field?: string }) => e.field === "epoch", "epoch 1 cannot open before epoch 0 is done");
    assert.equal(q.complete(1, 0, 1, 0.5, 4), true);
    const done = q.lease(0, 0);
    assert.equal(done.kind, "done");
    assert.deepEqual(done.kind === "done" && done.summary, { epoch: 0, units: 3, lossSum: 4, rows: 10, seconds: 0.002 });
    assert.equal(q.lease(1, 1).kind, "unit", "epoch 1 opens");
    const c = q.counters();
    assert.deepEqual([c.leased, c.backupsIssued, c.backupsWon, c.duplicates, c.epochs], [6, 2, 1, 1, 2]);
    assert.deepEqual(c.perTask.map((t) => t.first), [0, 1, 2]);
  });

  test("a lease older than leaseMs returns its unit to the queue; fixed splits give each task its own units and no backups", () => {
    let now = 0;
    const q = new PortionQueue({ tasks: 2, rows: 4, unitRows: 2, leaseMs: 100, now: () => now });
    q.lease(0, 0);
    q.lease(0, 0);
    now = 150;
    assert.deepEqual(q.lease(1, 0), { kind: "unit", unit: 0, begin: 0, end: 2 }, "a dead task's units come back, in order");
    assert.equal(q.counters().expired, 2);
    const fixed = new PortionQueue({ tasks: 2, rows: 8, unitRows: 2, fixed: true, backups: true });
    assert.deepEqual([fixed.lease(1, 0), fixed.lease(1, 0)].map((a) => a.kind === "unit" && a.unit), [1, 3]);
    assert.deepEqual(fixed.lease(1, 0), { kind: "wait" }, "no backup of task 0's units, no unit of task 0");
    assert.deepEqual(fixed.lease(0, 0), { kind: "unit", unit: 0, begin: 0, end: 2 });
  });

  test("a slow copy of a unit of an epoch closed two epochs ago counts as a duplicate, and asking for that epoch says done", () => {
    const q = new PortionQueue({ tasks: 2, rows: 2, unitRows: 2, backups: true });
    const slow = q.lease(1, 0);
    assert.equal(slow.kind, "unit");
    assert.equal(q.lease(0, 0).kind, "backup");
    assert.equal(q.complete(0, 0, 0, 1, 2), true, "the backup finishes first");
    for (const epoch of [1, 2]) {
      assert.equal(q.lease(0, epoch).kind, "unit");
      assert.equal(q.complete(0, epoch, 0, 1, 2), true);
    }
    assert.equal(q.lease(0, 3).kind, "unit", "the queue is at epoch 3");
    assert.equal(q.complete(1, 0, 0, 1, 2), false, "the slow copy of epoch 0 is dropped, not refused");
    assert.equal(q.counters().duplicates, 1);
    assert.equal(q.lease(1, 0).kind, "done", "epoch 0 is done for the slow task too");
    assert.throws(() => q.complete(1, 7, 0, 1, 2), /epoch 7 is not open/, "a future epoch is still refused");
  });
});

describe("portions across processes over NATS (tasks and shards in one process)", () => {
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await pool.close();
    await server?.stop();
  });

  test("2 tasks training units against 1 shard: logistic regression on Pima reaches local training's held-out accuracy", TIMEOUT, async () => {
    const { train, held } = await pima();
    const local = await model();
    await local.fit(train, { ...TRAIN, mode: "sync" });
    const localAccuracy = local.evaluate(held).accuracy!;
    local.dispose();
    const run = await runJob("portions-pima", TRAIN, {}, 1);
    assert.ok(run.accuracies[0]! >= 0.7, `held-out accuracy ${run.accuracies[0]}`);
    assert.ok(run.accuracies[0]! >= localAccuracy - 0.08, `portions ${run.accuracies[0]} vs local ${localAccuracy}`);
    assert.deepEqual(run.params[0], run.params[1], "every task ends with the shards' final parameters");
    const [r0, r1] = run.results;
    assert.equal(r0!.reports.length, TRAIN.epochs);
    for (const report of r0!.reports) assert.equal(report.samples, train.size, "every row once per epoch");
    assert.equal(r0!.units.first + r1!.units.first, TRAIN.epochs! * r0!.unitsPerEpoch, "every unit counted once");
    // Task 0 reads the counters once every task reported its end; the others read them when they end.
    assert.ok(r1!.queue.leased <= r0!.queue.leased && r0!.queue.epochs === TRAIN.epochs, "task 0's counters are the final ones");
    assert.deepEqual(r0!.missingTasks, [], "every task reported its end");
  });

  test("one task slowed 3x: the other trains more units, backups run, epochs are shorter than with fixed splits, no push applied twice", TIMEOUT, async (t) => {
    const train = { ...TRAIN, epochs: 8 };
    const nPush = 2;
    const fixed = await runJob("portions-fixed", train, { fixed: true }, 3, nPush);
    const portions = await runJob("portions-backups", train, {}, 3, nPush);
    const [fast, slow] = portions.results;
    const q = fast!.queue;
    assert.ok(fast!.units.trained > slow!.units.trained, `units: fast ${fast!.units.trained}, slow ${slow!.units.trained}`);
    assert.ok(q.backupsIssued > 0, "the slow task's last unit is backed up");
    assert.equal(fixed.results[0]!.units.trained, fixed.results[1]!.units.trained, "fixed splits: equal shares");
    assert.equal(fixed.results[0]!.queue.backupsIssued, 0);
    const [tFixed, tPortions] = [epochSeconds(fixed.results[0]!), epochSeconds(fast!)];
    assert.ok(tPortions < tFixed, `epoch seconds: portions ${tPortions.toFixed(2)}, fixed ${tFixed.toFixed(2)}`);
    // Never applied twice: every unit's worker id has exactly its push count applied, backups or not.
    for (const run of [fixed, portions]) {
      const { unitsPerEpoch, unitRows } = run.results[0]!;
      const rows = (u: number) => Math.min(668, (u + 1) * unitRows) - u * unitRows;
      let expected = 0;
      for (let e = 0; e < train.epochs; e++) {
        for (let u = 0; u < unitsPerEpoch; u++) {
          const pushes = Math.ceil(Math.ceil(rows(u) / train.portion!) / nPush);
          assert.equal(run.clocks.get(unitWorker(e, unitsPerEpoch, u)), pushes, `epoch ${e} unit ${u}`);
          expected += pushes;
        }
      }
      assert.equal(run.clocks.size, train.epochs * unitsPerEpoch, "no other worker pushed");
      assert.equal(run.shard.stats.updates, expected);
      const pushed = run.results.reduce((n, r) => n + r.pushes, 0);
      assert.equal(run.shard.stats.deduped, pushed - expected, "every push beyond a unit's count was dropped");
    }
    assert.ok(portions.shard.stats.deduped > 0, "the backups' (or the losers') pushes were dropped");
    t.diagnostic(`fixed: ${tFixed.toFixed(2)} s, units ${fixed.results.map((r) => r.units.trained)}; portions: ${tPortions.toFixed(2)} s, units ${portions.results.map((r) => r.units.trained)}, ` +
      `backups ${q.backupsIssued} (won ${q.backupsWon}), duplicates ${q.duplicates}, pushes dropped ${portions.shard.stats.deduped}, ms per unit ${portions.results.map((r) => r.msPerUnit.toFixed(1))}`);
  });

  test("options portions cannot run are refused by name before joining: threads > 1, ssp and bsp, a split", TIMEOUT, async () => {
    const [nc] = await pool.open(1);
    const { train: data } = await pima();
    const m = await model();
    try {
      const base = { job: "portions-options", tasks: 1, shards: 1, connection: nc!, model: m, data, train: TRAIN };
      const refused = (pattern: RegExp) => (e: Error) => e.name === "InvalidArgumentError" && pattern.test(e.message);
      await assert.rejects(trainDownpourPortions({ ...base, train: { ...TRAIN, threads: 2 } }), refused(/train\.threads must be 0 or 1/));
      await assert.rejects(trainDownpourPortions({ ...base, consistency: "ssp" }), refused(/consistency must be "async".*"ssp"/));
      await assert.rejects(trainDownpourPortions({ ...base, consistency: "bsp" }), refused(/consistency must be "async".*"bsp"/));
      await assert.rejects(trainDownpourPortions({ ...base, split: "contiguous" } as never), refused(/split must be absent/));
      await assert.rejects(trainDownpourPortions({ ...base, portions: { unitRows: 0 } }), refused(/portions\.unitRows/));
    } finally {
      m.dispose();
    }
  });

  test("bad requests to the portion queue are refused naming the field; the queue's state is unchanged", TIMEOUT, async () => {
    const [nc] = await pool.open(1);
    const job = "portions-bad";
    const queue = await PortionQueueServer.start({ job, specHash: "spec-1", connection: nc!, tasks: 2, rows: 100, unitRows: 10 });
    try {
      const good = { v: PORTION_PROTOCOL_VERSION, job, spec: "spec-1", from: "tester", op: "lease", task: 0, epoch: 0 };
      const ask = async (body: unknown): Promise<PortionReply> =>
        unpackValue((await nc!.request(portionSubject(job), body instanceof Uint8Array ? body : packValue(body), { timeout: 5_000 })).data) as PortionReply;
      // Task 1 holds unit 0 of epoch 0 (the epoch is open).
      const client = new PortionQueueClient({ job, specHash: "spec-1", connection: nc!, task: 1, name: "task-1", requestTimeoutMs: 5_000 });
      assert.equal((await client.lease(0)).kind, "unit");
      const cases: [unknown, string][] = [
        [new Uint8Array([0x92, 0x01]), "encoding"],
        [[1, 2], "encoding"],
        [{ ...good, v: 2 }, "v"],
        [{ ...good, job: "other" }, "job"],
        [{ ...good, spec: "spec-2" }, "spec"],
        [{ ...good, from: "" }, "from"],
        [{ ...good, op: "steal" }, "op"],
        [{ ...good, task: 2 }, "task"],
        [{ ...good, task: -1 }, "task"],
        [{ ...good, epoch: 1 }, "epoch"],
        [{ ...good, epoch: "0" }, "epoch"],
        [{ ...good, op: "complete", unit: 0, rows: 10, loss: 1 }, "unit"],
        [{ ...good, op: "complete", unit: 10, rows: 10, loss: 1 }, "unit"],
        [{ ...good, op: "complete", unit: 0, rows: 0, loss: 1 }, "rows"],
        [{ ...good, op: "complete", unit: 0, rows: 10, loss: "x" }, "loss"],
      ];
      for (const [body, field] of cases) {
        const reply = await ask(body);
        assert.equal(reply.error?.field, field, `${JSON.stringify(body instanceof Uint8Array ? [...body] : body)}: ${reply.error?.message}`);
        assert.match(reply.error!.message, new RegExp(field === "encoding" ? "msgpack" : field), reply.error!.message);
      }
      assert.equal(queue.queue.counters().leased, 1, "nothing more was leased");
      assert.equal(queue.refused, cases.length);
      await assert.rejects(client.complete(0, 0, 1, 9), (e: Error & { field?: string }) => e.field === "rows" && /task-1/.test(e.message) && /rows/.test(e.message));
      await assert.rejects(client.lease(3), (e: Error & { field?: string }) => e.field === "epoch" && /epoch 3/.test(e.message));
      assert.equal(await client.complete(0, 0, 1, 10), true);
      assert.equal(queue.queue.counters().perTask[1]!.first, 1);
    } finally {
      await queue.close();
    }
  });
});
