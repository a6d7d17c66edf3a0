// Hybrid Downpour (task groups) over a real nats-server: 4 tasks (one connection each, as separate processes would
// have) in 2 groups train logistic regression on Pima against Adagrad shards and reach downpour.test.ts's held-out
// threshold; the shards saw exactly one pushing worker per group, each with one push per group step; the members of a
// group hold identical parameters after every pull; every task ends with the shards' final parameters. Bad group
// counts (and options groups cannot have) are refused by name before anything joins.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { type DownpourGroupsResult, trainDownpourGroups } from "../../src/cluster/downpour-groups.js";
import { startDownpourShard, WORKERS_PER_TASK } from "../../src/cluster/downpour-training.js";
import { MemoryChannelGroup } from "../../src/cluster/channel.js";
import { ClusterGradientExchange } from "../../src/cluster/gradient-exchange.js";
import type { ParameterShard } from "../../src/cluster/ps-shard.js";
import { type ReplicaPull, ReplicaExchange } from "../../src/cluster/replica-exchange.js";
import { stalenessText } from "../../src/cluster/staleness.js";
import { InvalidArgumentError } from "../../src/errors.js";
import type { ParameterClient, PushInfo } from "../../src/train/exchange.js";
import type { TrainOptions } from "../../src/train/options.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const TASKS = 4;
const GROUPS = 2;
const SHARDS = 2;
/** Rows each task computes of its group's mini-batch. */
const MEMBER_BATCH = 5;
// Adagrad on the shards, as downpour.test.ts; batchSize is a group's mini-batch (5 rows from each of its tasks).
const TRAIN: TrainOptions = {
  epochs: 40,
  batchSize: MEMBER_BATCH * (TASKS / GROUPS),
  portion: 10,
  optimizer: "adagrad",
  learningRate: 0.5,
  threads: 1,
  mode: "async",
};
const BSP = { joinTimeoutMs: 15_000, barrierTimeoutMs: 120_000 };
const TIMEOUT = { timeout: 180_000 };

let server: NatsServer | undefined;
const pool = new ClientPool(() => server!.url);

const model = () => LogisticRegression.create({ inputs: 8, seed: 1 });

/** One pull as a member saw it: the step, the version and a copy of its parameters. */
interface Seen {
  step: number;
  version: number;
  params: number[];
}

describe("Downpour task groups over NATS (tasks and shards in one process)", () => {
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await pool.close();
    await server?.stop();
  });

  // G = 2 is the hybrid; G = 1 one synchronous replica of 4 tasks; G = 4 every task its own replica (plain Downpour).
  for (const groups of [GROUPS, 1, TASKS]) {
    test(
      `${TASKS} tasks in ${groups} group(s) against ${SHARDS} Adagrad shards: Pima reaches the threshold; one pushing worker per group`,
      TIMEOUT,
      async () => {
        const TRAIN_G: TrainOptions = { ...TRAIN, batchSize: MEMBER_BATCH * (TASKS / groups) };
        const { train, held } = await pima();
        const local = await model();
        await local.fit(train, { ...TRAIN, batchSize: 30, mode: "sync" });
        const localAccuracy = local.evaluate(held).accuracy!;
        local.dispose();
        const job = `groups-pima-${groups}`;
        const shardModels = await Promise.all(Array.from({ length: SHARDS }, model));
        const taskModels = await Promise.all(Array.from({ length: TASKS }, model));
        const ncs = await pool.open(SHARDS + TASKS);
        const started: ParameterShard[] = [];
        const seen: Seen[][] = Array.from({ length: TASKS }, () => []);
        try {
          for (let s = 0; s < SHARDS; s++) {
            started.push(
              await startDownpourShard({
                job,
                shard: s,
                shards: SHARDS,
                tasks: TASKS,
                model: shardModels[s]!,
                data: train,
                train: TRAIN_G,
                connection: ncs[s]!,
                onError: () => {},
              }),
            );
          }
          const began = performance.now();
          const results: DownpourGroupsResult[] = await Promise.all(
            taskModels.map((m, index) =>
              trainDownpourGroups({
                job,
                tasks: TASKS,
                groups: groups,
                shards: SHARDS,
                index,
                name: `task-${index}`,
                connection: ncs[SHARDS + index]!,
                model: m,
                data: train,
                train: TRAIN_G,
                bsp: BSP,
                onPull: (pull) => seen[index]!.push({ step: pull.step, version: pull.version, params: Array.from(pull.params) }),
              }),
            ),
          );
          const seconds = (performance.now() - began) / 1000;

          const accuracy = taskModels[0]!.evaluate(held).accuracy!;
          assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);
          assert.ok(accuracy >= localAccuracy - 0.08, `groups ${accuracy} vs local ${localAccuracy}`);
          const finals = taskModels.map((m) => m.network.params.block.toArray());
          for (const f of finals.slice(1)) assert.deepEqual(f, finals[0], "every task ends with the shards' final parameters");

          // Task i is in group i % G as member floor(i / G); the leader of group g is task g.
          for (const r of results) {
            assert.equal(r.group.index, r.task.index % groups);
            assert.equal(r.group.member, Math.floor(r.task.index / groups));
            assert.equal(r.group.size, TASKS / groups);
            assert.equal(r.group.leader, r.group.member === 0);
          }
          const steps = Array.from({ length: groups }, (_, g) => results[g]!.replica.steps);
          for (const r of results) {
            assert.equal(r.replica.steps, steps[r.group.index], "the members of a group take the same steps");
            assert.equal(r.replica.steps, r.reports.at(-1)!.iterations, "one replica step per mini-batch");
            assert.equal(r.client.pushes, r.group.leader ? r.replica.steps : 0, "only the leader pushes, once per step");
            assert.equal(r.replica.pulls, r.replica.steps, "nFetch 1: a pull after every step");
            assert.equal(r.staleness.samples, r.client.pushes, "staleness sampled at every acknowledged push");
          }
          for (const shard of started) {
            const clocks = shard.clocks();
            assert.deepEqual(
              [...clocks.keys()].sort((a, b) => a - b),
              Array.from({ length: groups }, (_, g) => g * WORKERS_PER_TASK),
              "exactly one pushing worker per group",
            );
            for (let g = 0; g < groups; g++) assert.equal(clocks.get(g * WORKERS_PER_TASK), steps[g], `group ${g}'s pushes = its steps`);
            assert.equal(
              shard.stats.updates,
              steps.reduce((a, b) => a + b, 0),
              "every push applied once",
            );
            assert.equal(shard.stats.deduped, 0);
          }

          // The members of a group hold identical parameters after every pull.
          for (let g = 0; g < groups; g++) {
            const members = seen.filter((_, i) => i % groups === g);
            assert.equal(members[0]!.length, steps[g]);
            for (const other of members.slice(1)) assert.deepEqual(other, members[0], `group ${g}: every pull identical on every member`);
          }
          const versions = seen[0]!.map((s) => s.version);
          assert.ok(
            versions.every((v, i) => i === 0 || v >= versions[i - 1]!),
            "pulled versions never go back",
          );
          console.log(
            `groups: ${seconds.toFixed(1)} s, accuracy ${accuracy.toFixed(3)} (local ${localAccuracy.toFixed(3)}), steps per group ${steps.join(", ")}, ` +
              `staleness ${stalenessText(results[0]!.staleness)}`,
          );
        } finally {
          await Promise.allSettled(started.map((s) => s.close()));
          for (const m of [...shardModels, ...taskModels]) m.dispose();
        }
      },
    );
  }

  test("bad groups values, and options groups cannot have, are refused by name before joining", TIMEOUT, async () => {
    const { train } = await pima();
    const m = await model();
    const [nc] = await pool.open(1);
    const base = {
      job: "groups-bad",
      tasks: TASKS,
      shards: 1,
      connection: nc!,
      model: m,
      data: train,
      train: TRAIN,
      bsp: { joinTimeoutMs: 2_000 },
    };
    try {
      for (const groups of [0, -1, 3, 5, 1.5, Number.NaN, undefined as unknown as number]) {
        await assert.rejects(
          trainDownpourGroups({ ...base, groups }),
          (e: unknown) => e instanceof InvalidArgumentError && /groups/.test(e.message),
          `groups ${groups}`,
        );
      }
      const refused = [
        [{ consistency: "ssp" as const }, /consistency/],
        [{ staleness: 2 }, /staleness/],
        [{ warmStart: 5 }, /warmStart/],
        [{ nPush: 2 }, /nPush/],
        [{ train: { ...TRAIN, batchSize: 9 } }, /batchSize/],
        [{ job: "j".repeat(62) }, /job id/i],
      ] as const;
      for (const [extra, name] of refused) {
        await assert.rejects(
          trainDownpourGroups({ ...base, groups: GROUPS, ...extra }),
          (e: unknown) => e instanceof InvalidArgumentError && name.test(e.message),
          String(name),
        );
      }
    } finally {
      m.dispose();
    }
  });

  test("nFetch 3: the leader pulls every third step; the members still hold identical parameters after each pull", TIMEOUT, async () => {
    const { train } = await pima();
    const job = "groups-fetch";
    const options = { ...TRAIN, epochs: 5 };
    const [shardModel, ...taskModels] = await Promise.all(Array.from({ length: 1 + TASKS }, model));
    const ncs = await pool.open(1 + TASKS);
    const shard = await startDownpourShard({
      job,
      shard: 0,
      shards: 1,
      tasks: TASKS,
      nFetch: 3,
      model: shardModel!,
      data: train,
      train: options,
      connection: ncs[0]!,
      onError: () => {},
    });
    const seen: Seen[][] = Array.from({ length: TASKS }, () => []);
    try {
      const results = await Promise.all(
        taskModels.map((m, index) =>
          trainDownpourGroups({
            job,
            tasks: TASKS,
            groups: GROUPS,
            shards: 1,
            nFetch: 3,
            index,
            connection: ncs[1 + index]!,
            model: m,
            data: train,
            train: options,
            bsp: BSP,
            onPull: (pull) => seen[index]!.push({ step: pull.step, version: pull.version, params: Array.from(pull.params) }),
          }),
        ),
      );
      for (const r of results) {
        assert.equal(r.replica.pulls, Math.floor(r.replica.steps / 3));
        assert.equal(seen[r.task.index]!.length, r.replica.pulls);
      }
      for (let g = 0; g < GROUPS; g++) {
        const members = seen.filter((_, i) => i % GROUPS === g);
        for (const other of members.slice(1)) assert.deepEqual(other, members[0], `group ${g}: every pull identical on every member`);
      }
      const clocks = shard.clocks();
      assert.equal(clocks.size, GROUPS);
      for (let g = 0; g < GROUPS; g++) assert.equal(clocks.get(g * WORKERS_PER_TASK), results[g]!.replica.steps);
    } finally {
      await shard.close();
      for (const m of [shardModel!, ...taskModels]) m.dispose();
    }
  });

  test("tasks with another group count than the others are refused at the join (the spec hash covers groups)", TIMEOUT, async () => {
    const { train } = await pima();
    const taskModels = await Promise.all([model(), model()]);
    const ncs = await pool.open(2);
    try {
      const runs = taskModels.map((m, index) =>
        trainDownpourGroups({
          job: "groups-mismatch",
          tasks: 2,
          groups: index + 1,
          shards: 1,
          index,
          connection: ncs[index]!,
          model: m,
          data: train,
          train: { ...TRAIN, batchSize: 10 },
          bsp: { joinTimeoutMs: 5_000 },
        }),
      );
      const settled = await Promise.allSettled(runs);
      for (const s of settled) {
        assert.equal(s.status, "rejected");
        assert.match(String((s as PromiseRejectedResult).reason?.message), /spec/i);
      }
    } finally {
      for (const m of taskModels) m.dispose();
    }
  });
});

/** A parameter client in memory: records every push (copied), and answers every pull with `values` at `version`. */
class RecordingClient implements ParameterClient {
  readonly pushes: { grads: number[]; from: PushInfo | undefined }[] = [];
  version = 0;
  failPushes = false;

  constructor(
    readonly keys: number,
    readonly values: (version: number) => number[],
  ) {}

  push(grads: Float32Array, _range?: unknown, from?: PushInfo): Promise<number> {
    if (this.failPushes) return Promise.reject(new Error("shard 0 refused the push (test)"));
    this.pushes.push({ grads: Array.from(grads), from });
    return Promise.resolve(++this.version);
  }

  pull(into: Float32Array): Promise<number> {
    into.set(this.values(this.version));
    return Promise.resolve(this.version);
  }
}

describe("ReplicaExchange over an in-memory channel", () => {
  const KEYS = 4;
  const blocksOf = (params: Float32Array) => ({ keys: KEYS, params: () => params, state: () => [] });

  test("the leader pushes the group's mean gradient once per step, the gradient is zeroed, every member takes the pulls in", {
    timeout: 10_000,
  }, async () => {
    const group = new MemoryChannelGroup(2);
    const client = new RecordingClient(KEYS, (v) => [v, v + 0.5, -v, 0]);
    const pulls: ReplicaPull[][] = [[], []];
    const params = [new Float32Array(KEYS), new Float32Array(KEYS)];
    const exchanges = [0, 1].map((m) => {
      const channel = group.channel(m);
      const exchange = new ReplicaExchange({
        group: new ClusterGradientExchange(channel),
        channel,
        client: m === 0 ? client : undefined,
        worker: 7,
        nFetch: 2,
        onPull: (pull) => pulls[m]!.push({ ...pull, params: pull.params.slice() }),
      });
      exchange.attach(blocksOf(params[m]!));
      return exchange;
    });
    assert.deepEqual(await Promise.all(exchanges.map((e, m) => e.epochBatches(6 - m, 0))), [5, 5]);
    for (let step = 0; step < 5; step++) {
      const grads = [new Float32Array(KEYS).fill(1), new Float32Array(KEYS).fill(3)];
      const combined = await Promise.all(exchanges.map((e, m) => e.allreduce(grads[m]!, { loss: m + 1, rows: 2 }, step)));
      assert.deepEqual(combined, [
        { loss: 3, rows: 4 },
        { loss: 3, rows: 4 },
      ]);
      for (const g of grads) assert.deepEqual(Array.from(g), [0, 0, 0, 0], "zeroed: the trainer's own update is a no-op");
      assert.deepEqual(params[0], params[1], "the members hold the same parameters");
    }
    await Promise.all(exchanges.map((e) => e.drain()));
    assert.deepEqual(
      client.pushes,
      [1, 2, 3, 4, 5].map((seq) => ({ grads: [2, 2, 2, 2], from: { worker: 7, seq } })),
      "the mean gradient, pushed in step order as (worker, seq = step count)",
    );
    assert.deepEqual(
      pulls[0]!.map((p) => [p.member, p.step, p.version]),
      [
        [0, 1, 2],
        [0, 3, 4],
      ],
    );
    assert.deepEqual(
      pulls[1]!.map((p) => [p.member, p.step, p.version]),
      [
        [1, 1, 2],
        [1, 3, 4],
      ],
    );
    assert.deepEqual(Array.from(params[1]!), [4, 4.5, -4, 0], "the last pull's values");
    assert.deepEqual(exchanges[0]!.stats, { steps: 5, pushes: 5, pushesApplied: 5, skipped: 0, pulls: 2, version: 4 });
    assert.deepEqual(exchanges[1]!.stats, { steps: 5, pushes: 0, pushesApplied: 0, skipped: 0, pulls: 2, version: 4 });
  });

  test("a failed push rejects the leader's next step and drain(); a non-finite loss is not pushed", { timeout: 10_000 }, async () => {
    const channel = new MemoryChannelGroup(1).channel(0);
    const client = new RecordingClient(KEYS, () => [1, 1, 1, 1]);
    const exchange = new ReplicaExchange({ group: new ClusterGradientExchange(channel), channel, client });
    exchange.attach(blocksOf(new Float32Array(KEYS)));
    await exchange.epochBatches(10, 0);
    await exchange.allreduce(new Float32Array(KEYS).fill(1), { loss: Number.NaN, rows: 1 }, 0);
    assert.equal(client.pushes.length, 0, "a diverged step is not pushed");
    assert.equal(exchange.stats.skipped, 1);
    client.failPushes = true;
    await exchange.allreduce(new Float32Array(KEYS).fill(1), { loss: 1, rows: 1 }, 1);
    await new Promise((resolve) => setTimeout(resolve, 0));
    await assert.rejects(exchange.allreduce(new Float32Array(KEYS), { loss: 1, rows: 1 }, 2), /refused the push/);
    await assert.rejects(exchange.drain(), /refused the push/);
  });

  test("the leader needs a client, the other members take none, nFetch is a positive integer", () => {
    const group = new MemoryChannelGroup(2);
    const client = new RecordingClient(KEYS, () => [0, 0, 0, 0]);
    const make = (m: number, extra: object) => () =>
      new ReplicaExchange({ group: new ClusterGradientExchange(group.channel(m)), channel: group.channel(m), ...extra });
    assert.throws(make(0, {}), (e: unknown) => e instanceof InvalidArgumentError && /client/.test(e.message));
    assert.throws(make(1, { client }), (e: unknown) => e instanceof InvalidArgumentError && /client/.test(e.message));
    for (const nFetch of [0, 1.5, -1])
      assert.throws(make(0, { client, nFetch }), (e: unknown) => e instanceof InvalidArgumentError && /nFetch/.test(e.message));
  });
});
