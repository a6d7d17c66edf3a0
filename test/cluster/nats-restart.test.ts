// The NATS server killed (SIGKILL) and started again on the same port mid-run (issue 10, "Faults survived"):
// connectCluster keeps reconnecting past the attempts a plain nats.js connection gets (forever, with jitter); the
// parameter client's chunked pushes and pulls survive it with the push/pull invariant exact (nothing lost, nothing
// applied twice); BSP supersteps keep their exact sums (frames sent again after the reconnect, repeats dropped); a
// Downpour job (2 tasks, 2 shards, Pima) and a BSP job (trainPeer, 3 peers, Pima) train through it to the usual
// accuracy. Recovery times (kill to the first push or superstep afterwards) go to the test diagnostics.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { CONNECTION_DEFAULTS, type ClusterConnectionOptions, connectCluster, natsConnectionOptions } from "../../src/cluster/connection.js";
import { type NatsServer, startNatsServer } from "../support/nats.js";
import { bspPima, bspSums, downpourPima, longestPause, pushInvariant, sleep, until } from "./fixtures/fault-runs.js";

const TIMEOUT = { timeout: 150_000 };
/** Reconnect quickly in tests (the defaults, 1 s + 0-0.5 s, are checked separately). */
const FAST = { reconnectTimeWaitMs: 200, reconnectJitterMs: 100, timeoutMs: 5_000 };

/** A server that can be killed and started again on its port (startNatsServer takes the port). */
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
async function openAll(url: string, n: number, reconnect: ClusterConnectionOptions = FAST): Promise<NatsConnection[]> {
  const opened = await Promise.all(Array.from({ length: n }, (_, i) => connectCluster({ servers: url, name: `restart-${i}`, ...reconnect })));
  connections.push(...opened);
  return opened;
}
async function closeAll(): Promise<void> {
  await Promise.allSettled(connections.splice(0).map((nc) => nc.close()));
}

/** Runs `body` against a fresh restartable server with `n` connections (reconnect options as given); all closed afterwards. */
async function withRestartable<T>(n: number, reconnect: ClusterConnectionOptions, body: (server: RestartableServer, ncs: NatsConnection[]) => Promise<T>): Promise<T> {
  const server = await RestartableServer.start();
  try {
    return await body(server, await openAll(server.url, n, reconnect));
  } finally {
    await closeAll();
    await server.stop();
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

  for (const [label, reconnect] of [["fast reconnects (200 ms + 0-100 ms)", FAST], ["connectCluster's defaults (1 s + 0-0.5 s)", {}]] as const) {
    test(`push/pull invariant across a restart, ${label}: chunked pushes retried with the same (worker, seq), applied exactly once`, TIMEOUT, async (t) => {
      await withRestartable(5, reconnect, async (server, ncs) => {
        let restart: Promise<void> | undefined;
        const { stats, acks } = await pushInvariant({
          job: "restart-inv", connections: ncs, shards: 2, workers: 3, pushes: 40, keys: 1000,
          onAck: (acked) => {
            if (acked === 30) restart = server.restart(500);
          },
        });
        assert.ok(restart, "the restart happened mid-run");
        await restart;
        // Every shard answered after the restart: nats.js re-subscribed them on the new server.
        const first = acks.filter((at) => at > server.upAt).sort((a, b) => a - b)[0];
        assert.ok(first !== undefined, "pushes acknowledged after the restart");
        assert.ok(stats.every((s) => s.reconnects >= 1), `every client reconnected: ${JSON.stringify(stats)}`);
        t.diagnostic(`ps (${label}): kill to the first push acknowledged after the restart ${first - server.killedAt} ms, the longest pause between acknowledgements ${longestPause(acks)} ms (server down ${server.upAt - server.killedAt} ms); ${JSON.stringify(stats.map((s) => ({ resent: s.resent, retries: s.retries, deduped: s.deduped })))}`);
      });
    });
  }

  test("BSP sums across a restart: every superstep's chunked messages arrive once (sent again after the reconnect, repeats dropped)", TIMEOUT, async (t) => {
    await withRestartable(3, FAST, async (server, ncs) => {
      let restart: Promise<void> | undefined;
      const { recovery, doneAt } = await bspSums("restart-sums", ncs, 300, (step) => {
        if (step === 100) restart = server.restart(500);
      });
      assert.ok(restart, "the restart happened mid-run");
      await restart;
      assert.ok(recovery.every((r) => r.reconnects === 1), JSON.stringify(recovery));
      const first = doneAt.find((at) => at > server.upAt)!;
      t.diagnostic(`bsp sums: kill to the first superstep completed after the restart ${first - server.killedAt} ms, the longest pause between supersteps ${longestPause(doneAt)} ms (server down ${server.upAt - server.killedAt} ms); ${JSON.stringify(recovery)}`);
    });
  });

  test("Downpour (2 tasks, 2 shards, Pima): the server restarted mid-run, the job ends at the usual accuracy, every push applied once", TIMEOUT, async (t) => {
    await withRestartable(4, FAST, async (server, ncs) => {
      let restart: Promise<void> | undefined;
      let firstEpochAfter = 0;
      const { accuracy, clients } = await downpourPima("restart-downpour", ncs, (epoch) => {
        if (epoch === 10) restart = server.restart(500);
        else if (server.upAt > 0 && firstEpochAfter === 0) firstEpochAfter = Date.now();
      });
      assert.ok(restart, "the restart happened mid-run");
      await restart;
      assert.ok(clients.every((c) => c.reconnects >= 1), "every task's client saw the reconnect");
      t.diagnostic(`downpour: accuracy ${accuracy}; kill to the end of task 0's first epoch afterwards ${firstEpochAfter - server.killedAt} ms; ${JSON.stringify(clients.map((c) => ({ resent: c.resent, retries: c.retries, deduped: c.deduped })))}`);
    });
  });

  test("BSP (trainPeer, 3 peers, Pima): the server restarted mid-run, no superstep lost, the same weights on every peer", TIMEOUT, async (t) => {
    await withRestartable(3, FAST, async (server, ncs) => {
      let restart: Promise<void> | undefined;
      let firstEpochAfter = 0;
      const { accuracy } = await bspPima("restart-bsp", ncs, (epoch) => {
        if (epoch === 20) restart = server.restart(500);
        else if (server.upAt > 0 && firstEpochAfter === 0) firstEpochAfter = Date.now();
      });
      assert.ok(restart, "the restart happened mid-run");
      await restart;
      t.diagnostic(`bsp: accuracy ${accuracy}; kill to the end of peer 0's first epoch (23 supersteps) afterwards ${firstEpochAfter - server.killedAt} ms`);
    });
  });
});
