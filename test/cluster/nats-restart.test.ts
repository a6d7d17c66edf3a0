// The NATS server killed (SIGKILL) and started again on the same port mid-run (issue 10, "Faults survived"):
// connectCluster keeps reconnecting past nats.js's own default of 10 attempts (forever, with jitter); the parameter
// client's chunked pushes and pulls survive it with the push/pull invariant exact (nothing lost, nothing applied
// twice); a Downpour job (2 tasks, 2 shards, Pima) and a BSP job (trainPeer, 3 peers, Pima) train through it to the
// usual accuracy. Recovery times (kill to the first push or superstep afterwards) go to the test diagnostics.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LogisticRegression } from "../../src/api/models.js";
import { BspPeer } from "../../src/cluster/bsp.js";
import { CONNECTION_DEFAULTS, connectCluster, natsConnectionOptions } from "../../src/cluster/connection.js";
import { startDownpourShard, trainDownpour } from "../../src/cluster/downpour-training.js";
import { trainPeer } from "../../src/cluster/peer-training.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterShard, type ShardOptimizerOptions } from "../../src/cluster/ps-shard.js";
import type { TrainOptions } from "../../src/train/options.js";
import { type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const TIMEOUT = { timeout: 150_000 };
/** Reconnect quickly in tests (the defaults, 1 s + 0-0.5 s, are checked separately). */
const FAST = { reconnectTimeWaitMs: 200, reconnectJitterMs: 100, timeoutMs: 5_000 };
const PLAIN_SGD: ShardOptimizerOptions = { optimizer: "sgd", learningRate: 1, momentum: 0, l2: 0 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A server that can be killed and started again on its port. */
class RestartableServer {
  killedAt = 0;
  upAt = 0;
  private constructor(public server: NatsServer) {}

  static async start(): Promise<RestartableServer> {
    return new RestartableServer(await startNatsServer({ jetstream: false }));
  }

  get url(): string {
    return this.server.url;
  }

  /** SIGKILL, `downMs` of nothing listening, then a new server on the same port. */
  async restart(downMs: number): Promise<void> {
    const port = this.server.port;
    this.killedAt = Date.now();
    this.server.kill("SIGKILL");
    await this.server.stop();
    await sleep(downMs);
    this.server = await startNatsServer({ jetstream: false, port });
    this.upAt = Date.now();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

const connections: NatsConnection[] = [];
async function openAll(url: string, n: number): Promise<NatsConnection[]> {
  const opened = await Promise.all(Array.from({ length: n }, (_, i) => connectCluster({ servers: url, name: `restart-${i}`, ...FAST })));
  connections.push(...opened);
  return opened;
}
async function closeAll(): Promise<void> {
  await Promise.allSettled(connections.splice(0).map((nc) => nc.close()));
}

/** Resolves with the first time `probe` holds, polling every 20 ms, or rejects after `ms`. */
async function until(probe: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(20);
  }
}

describe("NATS server restart on the same port", () => {
  after(closeAll);

  test("connectCluster reconnects forever with jitter: past the 10 attempts a plain nats.js connection gets", TIMEOUT, async () => {
    const options = natsConnectionOptions({ servers: "nats://127.0.0.1:4222" });
    assert.equal(options.maxReconnectAttempts, -1);
    assert.equal(options.reconnectTimeWait, CONNECTION_DEFAULTS.reconnectTimeWaitMs);
    assert.ok((options.reconnectJitter ?? 0) > 0 && (options.reconnectJitterTLS ?? 0) > 0, "jitter on");
    const server = await RestartableServer.start();
    const ours = await connectCluster({ servers: server.url, reconnectTimeWaitMs: 30, reconnectJitterMs: 10 });
    // The control: nats.js's defaults give up after maxReconnectAttempts (10 by default; 3 here to keep it short).
    const plain = await connect({ servers: server.url, reconnectTimeWait: 30, maxReconnectAttempts: 3, timeout: 2_000 });
    try {
      let attempts = 0;
      let reconnected = false;
      void (async () => {
        for await (const status of ours.status()) {
          if (status.type === "reconnecting") attempts++;
          if (status.type === "reconnect") reconnected = true;
        }
      })();
      await server.restart(1_500);
      await until(() => reconnected, 10_000, "the reconnect");
      assert.ok(attempts > 10, `dialled ${attempts} times during the outage (more than nats.js's default 10)`);
      assert.equal(ours.isClosed(), false);
      await until(() => plain.isClosed(), 5_000, "the plain connection closing");
      ours.subscribe("echo", { callback: (_e, msg) => void msg.respond(msg.data) });
      assert.equal((await ours.request("echo", "back", { timeout: 2_000 })).string(), "back");
    } finally {
      await plain.close().catch(() => {});
      await ours.close();
      await server.stop();
    }
  });

  test("push/pull invariant across a restart: chunked pushes retried with the same (worker, seq), applied exactly once", TIMEOUT, async (t) => {
    const server = await RestartableServer.start();
    const [S, W, R, keys] = [2, 3, 40, 1000];
    const job = "restart-inv";
    const ncs = await openAll(server.url, S + W);
    const init = Float32Array.from({ length: keys }, (_, i) => i % 7);
    const shards = await Promise.all(
      ncs.slice(0, S).map((nc, shard) => ParameterShard.start({ job, shard, shards: S, connection: nc, init, train: PLAIN_SGD, onError: () => {} })),
    );
    const clients = await Promise.all(
      ncs.slice(S).map((nc, worker) =>
        // 256-byte chunks: each part of a push or pull travels as 2 frames or more.
        ShardedParameterClient.connect({ job, shards: S, keys, connection: nc, worker, maxChunkBytes: 256, requestTimeoutMs: 3_000, connectTimeoutMs: 10_000 }),
      ),
    );
    try {
      const acks: number[] = [];
      let restart: Promise<void> | undefined;
      const ones = new Float32Array(keys).fill(1);
      const scratch = clients.map(() => new Float32Array(keys));
      await Promise.all(
        clients.map(async (client, w) => {
          for (let r = 0; r < R; r++) {
            await client.push(ones);
            acks.push(Date.now());
            if (acks.length === 30) restart = server.restart(500);
            if (r % 4 === 0) await client.pull(scratch[w]!);
          }
        }),
      );
      assert.ok(restart, "the restart happened mid-run");
      await restart;
      const after = acks.filter((at) => at > server.killedAt).sort((a, b) => a - b);
      assert.ok(after.length > 0, "pushes acknowledged after the kill");
      t.diagnostic(`ps pushes: kill to first acknowledged push ${after[0]! - server.killedAt} ms (server down ${server.upAt - server.killedAt} ms, up to push ${after[0]! - server.upAt} ms)`);
      const final = new Float32Array(keys);
      await clients[0]!.pull(final);
      for (let i = 0; i < keys; i++) assert.equal(final[i], init[i]! - R * W, `key ${i}`);
      for (const shard of shards) assert.equal(shard.version, R * W, `shard ${shard.shard} applied every push once`);
      const stats = clients.map((c) => c.stats);
      assert.ok(stats.every((s) => s.reconnects >= 1), `every client reconnected: ${JSON.stringify(stats)}`);
      assert.equal(stats.reduce((n, s) => n + s.pushes, 0), R * W);
      t.diagnostic(`ps clients: ${JSON.stringify(stats.map((s) => ({ resent: s.resent, retries: s.retries, deduped: s.deduped })))}`);
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(shards.map((s) => s.close()));
      await closeAll();
      await server.stop();
    }
  });

  test("BSP sums across a restart: every superstep's chunked messages arrive once (sent again after the reconnect, repeats dropped)", TIMEOUT, async (t) => {
    const server = await RestartableServer.start();
    const [PEERS, STEPS, FLOATS] = [3, 300, 600];
    const ncs = await openAll(server.url, PEERS);
    const peers = await Promise.all(
      ncs.map((nc, index) =>
        BspPeer.join({ job: "restart-sums", peers: PEERS, connection: nc, name: `sum-${index}`, index, maxChunkBytes: 512, barrierTimeoutMs: 30_000, joinTimeoutMs: 10_000, onError: () => {} }),
      ),
    );
    let restart: Promise<void> | undefined;
    const doneAt: number[] = [];
    try {
      await Promise.all(
        peers.map(async (peer, p) => {
          const mine = new Float32Array(FLOATS);
          for (let step = 0; step < STEPS; step++) {
            // Peer p sends (p + 1) * (step + 1) + i/1000 at float i to every peer, itself included.
            for (let i = 0; i < FLOATS; i++) mine[i] = (p + 1) * (step + 1) + i / 1000;
            for (let to = 0; to < PEERS; to++) peer.send(to, mine);
            await peer.sync();
            if (p === 0) doneAt.push(Date.now());
            if (p === 0 && step === 100) restart = server.restart(500);
            const sum = new Float64Array(FLOATS);
            let count = 0;
            for (const message of peer.messages()) {
              count++;
              const data = message.data as Float32Array;
              for (let i = 0; i < FLOATS; i++) sum[i]! += data[i]!;
            }
            assert.equal(count, PEERS, `peer ${p}, superstep ${step}: one message per peer`);
            for (let i = 0; i < FLOATS; i += 37) {
              const want = [0, 1, 2].reduce((n, q) => n + Math.fround((q + 1) * (step + 1) + i / 1000), 0);
              assert.equal(sum[i], want, `peer ${p}, superstep ${step}, float ${i}`);
            }
            peer.recycle();
          }
        }),
      );
      await restart;
      const first = doneAt.find((at) => at > server.upAt)!;
      const recovery = peers.map((peer) => peer.recovery);
      assert.ok(recovery.every((r) => r.reconnects === 1), JSON.stringify(recovery));
      t.diagnostic(`bsp sums: kill to the first superstep completed afterwards ${first - server.killedAt} ms (server down ${server.upAt - server.killedAt} ms); ${JSON.stringify(recovery)}`);
    } finally {
      await Promise.allSettled(peers.map((peer) => peer.close()));
      await closeAll();
      await server.stop();
    }
  });

  test("Downpour (2 tasks, 2 shards, Pima): the server restarted mid-run, the job ends at the usual accuracy, every push applied once", TIMEOUT, async (t) => {
    const TRAIN: TrainOptions = { epochs: 40, batchSize: 30, portion: 10, optimizer: "adagrad", learningRate: 0.5, threads: 1, mode: "async" };
    const BSP = { joinTimeoutMs: 15_000, barrierTimeoutMs: 60_000 };
    const server = await RestartableServer.start();
    const { train, held } = await pima();
    const model = () => LogisticRegression.create({ inputs: 8, seed: 1 });
    const [TASKS, SHARDS] = [2, 2];
    const shardModels = await Promise.all(Array.from({ length: SHARDS }, model));
    const taskModels = await Promise.all(Array.from({ length: TASKS }, model));
    const ncs = await openAll(server.url, SHARDS + TASKS);
    const shards: ParameterShard[] = [];
    let restart: Promise<void> | undefined;
    let firstEpochAfter = 0;
    try {
      for (let s = 0; s < SHARDS; s++) {
        shards.push(await startDownpourShard({ job: "restart-downpour", shard: s, shards: SHARDS, tasks: TASKS, model: shardModels[s]!, data: train, train: TRAIN, connection: ncs[s]!, onError: () => {} }));
      }
      const results = await Promise.all(
        taskModels.map((m, index) =>
          trainDownpour({
            job: "restart-downpour",
            tasks: TASKS,
            shards: SHARDS,
            index,
            name: `task-${index}`,
            connection: ncs[SHARDS + index]!,
            model: m,
            data: train,
            train: TRAIN,
            bsp: BSP,
            hooks: {
              onEpoch: (report) => {
                if (index !== 0) return;
                if (report.epoch === 10) restart = server.restart(500);
                else if (server.upAt > 0 && firstEpochAfter === 0) firstEpochAfter = Date.now();
              },
            },
          }),
        ),
      );
      assert.ok(restart, "the restart happened mid-run");
      await restart;
      const accuracy = taskModels[0]!.evaluate(held).accuracy!;
      assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);
      const [a, b] = taskModels.map((m) => m.network.params.block.toArray());
      assert.deepEqual(a, b, "every task ends with the shards' final parameters");
      const pushes = results.reduce((n, r) => n + r.client.pushes, 0);
      for (const shard of shards) assert.equal(shard.stats.updates, pushes, `shard ${shard.shard}: every push applied once`);
      assert.ok(results.every((r) => r.client.reconnects >= 1), "every task's client saw the reconnect");
      t.diagnostic(`downpour: accuracy ${accuracy}; kill to the first epoch ending after the restart ${firstEpochAfter - server.killedAt} ms; clients ${JSON.stringify(results.map((r) => ({ resent: r.client.resent, retries: r.client.retries, deduped: r.client.deduped })))}`);
    } finally {
      await Promise.allSettled(shards.map((s) => s.close()));
      for (const m of [...shardModels, ...taskModels]) m.dispose();
      await closeAll();
      await server.stop();
    }
  });

  test("BSP (trainPeer, 3 peers, Pima): the server restarted mid-run, no superstep lost, the same weights on every peer", TIMEOUT, async (t) => {
    const TRAIN: TrainOptions = { epochs: 60, batchSize: 30, portion: 5, learningRate: 0.5, momentum: 0.9, shuffle: false, threads: 0 };
    const BSP = { joinTimeoutMs: 10_000, barrierTimeoutMs: 30_000 };
    const PEERS = 3;
    const server = await RestartableServer.start();
    const { train, held } = await pima();
    const models = await Promise.all(Array.from({ length: PEERS }, () => LogisticRegression.create({ inputs: 8, seed: 1 })));
    const ncs = await openAll(server.url, PEERS);
    let restart: Promise<void> | undefined;
    let firstStepAfter = 0;
    try {
      const results = await Promise.all(
        models.map((model, index) =>
          trainPeer({
            job: "restart-bsp",
            peers: PEERS,
            connection: ncs[index]!,
            name: `peer-${index}`,
            index,
            model,
            data: train,
            train: TRAIN,
            bsp: BSP,
            hooks: {
              onEpoch: (report) => {
                if (index !== 0) return;
                if (report.epoch === 20) restart = server.restart(500);
                else if (server.upAt > 0 && firstStepAfter === 0) firstStepAfter = Date.now();
              },
            },
          }),
        ),
      );
      assert.ok(restart, "the restart happened mid-run");
      await restart;
      assert.equal(results[0]!.stats.steps, 60 * Math.ceil(668 / 30), "one superstep per global mini-batch, none lost");
      const weights = models.map((m) => m.network.params.block.toArray());
      for (let p = 1; p < PEERS; p++) assert.deepEqual(weights[p], weights[0], `peer ${p}'s weights differ from peer 0's`);
      const accuracy = models[0]!.evaluate(held).accuracy!;
      assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);
      t.diagnostic(`bsp: accuracy ${accuracy}; kill to the first epoch (23 supersteps) ending after the restart ${firstStepAfter - server.killedAt} ms (server down ${server.upAt - server.killedAt} ms)`);
    } finally {
      for (const m of models) m.dispose();
      await closeAll();
      await server.stop();
    }
  });
});
