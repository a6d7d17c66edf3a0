// A worker process SIGKILLed mid-run (issue 10): a Downpour portions job of 3 tasks against 1 shard over a real
// nats-server, task 2 in its own process (slowed, so that it holds a unit when it dies) and killed once the job is
// under way. Its leased unit comes back to the queue after the lease timeout, the other tasks finish every epoch
// without it, every unit's gradient steps are applied exactly once (from the shard's per-worker clocks), and the
// model reaches the held-out threshold.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LogisticRegression } from "../../src/api/models.js";
import { trainDownpourPortions, unitWorker } from "../../src/cluster/downpour-portions.js";
import { startDownpourShard } from "../../src/cluster/downpour-training.js";
import type { TrainOptions } from "../../src/train/options.js";
import { type NatsServer, startNatsServer } from "../support/nats.js";
import type { PortionsTaskConfig } from "./fixtures/portions-task.js";
import { pima } from "./fixtures/pima.js";

const TASKS = 3;
const TRAIN: TrainOptions = { epochs: 30, batchSize: 30, portion: 10, optimizer: "adagrad", learningRate: 0.5, threads: 0, mode: "async" };
const UNIT_ROWS = 60;
const LEASE_MS = 1_500;
const TIMEOUT = { timeout: 180_000 };

let server: NatsServer | undefined;
const connections: NatsConnection[] = [];

before(async () => {
  server = await startNatsServer({ jetstream: false });
});
after(async () => {
  for (const nc of connections) await nc.close().catch(() => {});
  await server?.stop();
});

/** The task process: resolves "joined" once it started training; `exited` with its exit code or signal. */
function spawnTask(config: PortionsTaskConfig): { child: ChildProcess; joined: Promise<void>; exited: Promise<string> } {
  const script = fileURLToPath(new URL("./fixtures/portions-task.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const joined = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("joined\n")) resolve();
    });
    child.once("exit", () => reject(new Error(`the task process ended before it joined: ${err}`)));
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(signal ?? String(code))));
  return { child, joined, exited };
}

describe("a worker process killed mid-run", () => {
  test("SIGKILL of task 2: its unit returns after the lease timeout, tasks 0 and 1 finish the job, every unit applied exactly once", TIMEOUT, async (t) => {
    const job = "worker-loss";
    const { train, held } = await pima();
    const [shardModel, m0, m1] = await Promise.all([0, 1, 2].map(() => LogisticRegression.create({ inputs: 8, seed: 1 })));
    const ncs = await Promise.all([0, 1, 2].map(() => connect({ servers: server!.url, timeout: 5_000 })));
    connections.push(...ncs);
    const shard = await startDownpourShard({ job, shard: 0, shards: 1, tasks: TASKS, model: shardModel!, data: train, train: TRAIN, connection: ncs[0]!, onError: () => {} });
    const task2 = spawnTask({ url: server!.url, job, tasks: TASKS, index: 2, unitRows: UNIT_ROWS, leaseMs: LEASE_MS, slowdown: 20, backups: false, train: TRAIN });
    try {
      const portions = { unitRows: UNIT_ROWS, leaseMs: LEASE_MS, backups: false };
      const bsp = { joinTimeoutMs: 30_000, barrierTimeoutMs: 120_000, onError: () => {} };
      const runs = [m0!, m1!].map((model, index) =>
        trainDownpourPortions({ job, tasks: TASKS, shards: 1, index, name: `task-${index}`, connection: ncs[1 + index]!, model, data: train, train: TRAIN, bsp, portions }),
      );
      await task2.joined;
      // Under way: a few hundred updates applied (bounded wait), then the kill.
      for (let waited = 0; shard.version < 200 && waited < 60_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      const killedAt = shard.version;
      task2.child.kill("SIGKILL");
      assert.equal(await task2.exited, "SIGKILL");
      const [r0, r1] = await Promise.all(runs);
      const q = r0!.queue;
      assert.deepEqual(r0!.missingTasks, [2], "task 0 ended without the dead task's report");
      assert.ok(q.expired >= 1, `the dead task's lease expired (${q.expired})`);
      assert.equal(r0!.reports.length, TRAIN.epochs);
      for (const report of r0!.reports) assert.equal(report.samples, train.size, `epoch ${report.epoch}: every row counted once`);
      // Every unit's steps applied exactly once, whoever trained them (the dead task's partial pushes included).
      const { unitsPerEpoch } = r0!;
      const clocks = shard.clocks();
      let expected = 0;
      for (let e = 0; e < TRAIN.epochs!; e++) {
        for (let u = 0; u < unitsPerEpoch; u++) {
          const rows = Math.min(train.size, (u + 1) * UNIT_ROWS) - u * UNIT_ROWS;
          const pushes = Math.ceil(rows / TRAIN.portion!);
          assert.equal(clocks.get(unitWorker(e, unitsPerEpoch, u)), pushes, `epoch ${e} unit ${u}`);
          expected += pushes;
        }
      }
      assert.equal(shard.stats.updates, expected, "no push applied twice, none lost");
      const accuracy = m0!.evaluate(held).accuracy!;
      assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);
      t.diagnostic(`killed after ${killedAt} updates; units: task 0 ${r0!.units.trained}, task 1 ${r1!.units.trained}; expired ${q.expired}; deduped ${shard.stats.deduped}; accuracy ${accuracy}`);
    } finally {
      task2.child.kill("SIGKILL");
      await shard.close();
      for (const m of [shardModel!, m0!, m1!]) m.dispose();
    }
  });
});
