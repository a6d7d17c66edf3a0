// A 3-node NATS cluster on loopback (routes between three nats-server processes, JetStream R3): every client is
// given all three URLs (tried in order, so every one starts on node 0); node 0 is SIGKILLed mid-run. The clients
// fail over to another node and the run continues without an error: the push/pull invariant exact, BSP sums exact, a
// Downpour job on Pima at the usual accuracy; a KV value and an object written (R3) before the kill read back after.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connectCluster } from "../../src/cluster/connection.js";
import { type NatsCluster, startNatsCluster } from "../support/nats.js";
import { bspSums, downpourPima, longestPause, pushInvariant, sleep } from "./fixtures/fault-runs.js";

const TIMEOUT = { timeout: 180_000 };

/** A cluster whose node 0 can be killed; the time of the kill. */
interface Killable {
  cluster: NatsCluster;
  killedAt: number;
  kill(): void;
}

/** Runs `body` against a fresh 3-node cluster and `n` connections given every URL; all closed afterwards. */
async function withCluster<T>(n: number, body: (c: Killable, ncs: NatsConnection[]) => Promise<T>): Promise<T> {
  const cluster = await startNatsCluster(3);
  const ncs: NatsConnection[] = [];
  const killable: Killable = {
    cluster,
    killedAt: 0,
    kill() {
      killable.killedAt = Date.now();
      cluster.servers[0]!.kill("SIGKILL");
    },
  };
  try {
    for (let i = 0; i < n; i++) ncs.push(await connectCluster({ servers: cluster.urls, name: `failover-${i}`, reconnectTimeWaitMs: 200, reconnectJitterMs: 100 }));
    for (const nc of ncs) assert.equal(nc.getServer(), cluster.urls[0]!.replace(/^nats:\/\//, ""), "every client starts on node 0");
    return await body(killable, ncs);
  } finally {
    await Promise.allSettled(ncs.map((nc) => nc.close()));
    await cluster.stop();
  }
}

/** `work` retried every 250 ms while it throws (JetStream elects new leaders after a node is lost), up to `ms`. */
async function eventually<T>(work: () => Promise<T>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: still failing after ${attempt} attempts in ${ms} ms: ${String(error)}`, { cause: error });
    }
    await sleep(250);
  }
}

describe("3-node NATS cluster: the node every client is on is killed mid-run", () => {
  test("push/pull invariant exact through the fail-over; an R3 KV value and object written before the kill survive", TIMEOUT, async (t) => {
    await withCluster(5, async (c, ncs) => {
      const kv = await new Kvm(ncs[0]!).create("failover-kv", { replicas: 3 });
      await kv.put("answer", "42");
      const store = await new Objm(ncs[0]!).create("failover-obj", { replicas: 3 });
      const blob = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) % 251);
      await store.putBlob({ name: "blob" }, blob);
      const { stats, acks } = await pushInvariant({
        job: "failover-inv", connections: ncs, shards: 2, workers: 3, pushes: 40, keys: 1000,
        onAck: (acked) => {
          if (acked === 30) c.kill();
        },
      });
      assert.ok(c.killedAt > 0, "the kill happened mid-run");
      for (const nc of ncs) assert.notEqual(nc.getServer(), c.cluster.urls[0]!.replace(/^nats:\/\//, ""), "every client moved off node 0");
      assert.ok(stats.every((s) => s.reconnects >= 1), JSON.stringify(stats));
      const value = await eventually(async () => (await (await new Kvm(ncs[1]!).open("failover-kv")).get("answer"))?.string(), 30_000, "the KV read");
      assert.equal(value, "42");
      // The bucket's stream elects a leader among the two nodes left first (slow on a loaded machine), then reads.
      const killedName = "downpour-test-0"; // startNatsCluster's server_name of node 0
      await eventually(async () => {
        // The JetStream API itself may not answer until the meta group has a new leader too.
        const jsm = await jetstreamManager(ncs[1]!);
        const leader = (await jsm.streams.info("OBJ_failover-obj")).cluster?.leader;
        if (!leader || leader === killedName) throw new Error(`no leader on the live nodes yet (${leader ?? "none"})`);
      }, 60_000, "the object bucket's new leader");
      const back = await eventually(async () => (await new Objm(ncs[1]!).open("failover-obj")).getBlob("blob"), 60_000, "the object read");
      // Compared byte by byte: Bun hands back a Buffer, not a plain Uint8Array.
      assert.ok(back !== null && back.length === blob.length && back.every((byte, i) => byte === blob[i]), "the object reads back whole");
      const first = acks.filter((at) => at > c.killedAt).sort((a, b) => a - b)[0]!;
      t.diagnostic(`fail-over ps: kill to the first push acknowledged afterwards ${first - c.killedAt} ms, the longest pause ${longestPause(acks)} ms; ${JSON.stringify(stats.map((s) => ({ resent: s.resent, retries: s.retries, deduped: s.deduped })))}`);
    });
  });

  test("BSP sums exact through the fail-over", TIMEOUT, async (t) => {
    await withCluster(3, async (c, ncs) => {
      const { recovery, doneAt } = await bspSums("failover-sums", ncs, 300, (step) => {
        if (step === 100) c.kill();
      });
      assert.ok(recovery.every((r) => r.reconnects === 1), JSON.stringify(recovery));
      t.diagnostic(`fail-over bsp sums: the longest pause between supersteps ${longestPause(doneAt)} ms; ${JSON.stringify(recovery)}`);
    });
  });

  test("Downpour (2 tasks, 2 shards, Pima) through the fail-over: the usual accuracy, every push applied once", TIMEOUT, async (t) => {
    await withCluster(4, async (c, ncs) => {
      let firstEpochAfter = 0;
      const { accuracy, clients } = await downpourPima("failover-downpour", ncs, (epoch) => {
        if (epoch === 10) c.kill();
        else if (c.killedAt > 0 && firstEpochAfter === 0) firstEpochAfter = Date.now();
      });
      assert.ok(c.killedAt > 0, "the kill happened mid-run");
      assert.ok(clients.every((s) => s.reconnects >= 1), JSON.stringify(clients));
      t.diagnostic(`fail-over downpour: accuracy ${accuracy}; kill to the end of task 0's next epoch ${firstEpochAfter - c.killedAt} ms; ${JSON.stringify(clients.map((s) => ({ resent: s.resent, retries: s.retries })))}`);
    });
  });
});
