// Slow consumers (issue 10): nats-server first holds back the publishers of a client that does not read (back-
// pressure), then, past write_deadline, drops the client with what it had queued for it and tells it nothing (the
// client only sees its socket close). Here a BSP peer in its own process stalls its event loop while the other two
// peers' messages and a flood on a subject it also reads pile up for it: the server cuts it; it reconnects, reports a
// SlowConsumerError naming itself and its inbox, every peer sends it again what it sent in the last two supersteps,
// and every peer's sums stay exact: no message lost silently. Then a parameter-server shard in its own process stalls
// the same way while two workers push: the server cuts it, the workers' pushes that got no reply are sent again with
// the same (worker, seq), and the push/pull invariant holds exactly (nothing lost, nothing applied twice).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectCluster } from "../../src/cluster/connection.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { startNatsServer } from "../support/nats.js";
import { checkedSums, joinSumsPeer, until } from "./fixtures/fault-runs.js";
import type { StallingPeerConfig, StallingPeerReport } from "./fixtures/stalling-peer.js";
import type { StallingShardConfig, StallingShardReport } from "./fixtures/stalling-shard.js";

const TIMEOUT = { timeout: 120_000 };
const WAIT_MS = 90_000;

/** A spawned fixture: its output so far and its exit. Deno turns a node-style spawn of itself into `deno run`. */
function spawnFixture(script: string, config: object): { process: ChildProcess; stdout(): string; stderr(): string; exited: Promise<number | null> } {
  const path = fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url));
  const child = spawn(process.execPath, [path, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
  let [stdout, stderr] = ["", ""];
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** `work`, or a failure naming `what` after `ms`. */
async function within<T>(work: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what()} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Publishes `count` messages of `bytes` bytes on `subject` and flushes. */
async function floodOnce(nc: NatsConnection, subject: string, count: number, bytes: number): Promise<void> {
  const payload = new Uint8Array(bytes);
  for (let i = 0; i < count; i++) nc.publish(subject, payload);
  await nc.flush();
}

describe("slow consumers", () => {
  test("a BSP peer that stalls is cut by the server as a slow consumer: it reports it, and no message is lost", TIMEOUT, async (t) => {
    // write_deadline 1 s (the default is 10 s): a client the server cannot write to for that long is a slow consumer.
    // The healthy peers read all the time; the stalled one reads nothing for 2.5 s while a 64 MB flood fills its socket.
    const server = await startNatsServer({ jetstream: false, extraConfig: 'write_deadline: "1s"\n' });
    const [PEERS, STEPS, FLOATS] = [3, 6, 250_000];
    const job = "slow-bsp";
    const floodSubject = "test.slow.flood";
    const config: StallingPeerConfig = { url: server.url, job, peers: PEERS, index: 2, steps: STEPS, floats: FLOATS, stallAt: 1, stallMs: 2_500, peerTimeoutMs: 15_000, floodSubject };
    const ncs: NatsConnection[] = [];
    const child = spawnFixture("stalling-peer.js", config);
    try {
      for (let i = 0; i < 3; i++) ncs.push(await connectCluster({ servers: server.url, name: `slow-${i}`, reconnectTimeWaitMs: 100, reconnectJitterMs: 50 }));
      const peers = await Promise.all(ncs.slice(0, 2).map((nc, index) => joinSumsPeer(job, nc, index, PEERS, { peerTimeoutMs: 15_000, maxChunkBytes: undefined, barrierTimeoutMs: 60_000 })));
      let flood: Promise<void> | undefined;
      // Peer 0 leaves superstep stallAt when the stalling peer does: it is stalling now.
      const onStep = (step: number) => {
        if (step === config.stallAt && flood === undefined) flood = floodOnce(ncs[2]!, floodSubject, 64, 1_000_000);
      };
      try {
        await within(Promise.all(peers.map((peer) => checkedSums(peer, STEPS, FLOATS, peer.index === 0 ? onStep : () => {}))), WAIT_MS, () => `the local peers' sums (child: ${child.stderr()})`);
        await flood;
      } finally {
        await Promise.allSettled(peers.map((peer) => peer.close()));
      }
      const code = await within(child.exited, WAIT_MS, () => "the stalling peer's exit");
      assert.equal(code, 0, `the stalling peer failed: ${child.stderr()}`);
      const report = JSON.parse(child.stdout().trim()) as StallingPeerReport;
      assert.ok(report.recovery.reconnects >= 1, `the server cut the stalled peer: ${JSON.stringify(report)}`);
      const slow = report.reports.find((r) => r.slowConsumer);
      assert.ok(slow, `a SlowConsumerError was reported: ${JSON.stringify(report.reports)}`);
      assert.equal(slow.name, "SlowConsumerError");
      assert.equal(slow.client, 'peer "sum-2"');
      assert.match(slow.subject, new RegExp(`^downpour\\.${job}\\.peer\\.`));
      assert.ok(slow.stalledMs >= 1_000, `stalled ${slow.stalledMs} ms`);
      assert.ok(peers.every((peer) => peer.recovery.resends > 0), "the others sent their messages again");
      t.diagnostic(`slow consumer: stalled ${slow.stalledMs} ms, back after ${slow.downMs} ms; child ${JSON.stringify(report.recovery)}; local ${JSON.stringify(peers.map((p) => p.recovery))}`);
    } finally {
      if (child.process.exitCode === null && child.process.pid !== undefined) {
        try {
          process.kill(child.process.pid, "SIGKILL");
        } catch {
          // it has just exited
        }
      }
      await Promise.allSettled(ncs.map((nc) => nc.close()));
      await server.stop();
    }
  });

  test("a parameter-server shard that stalls is cut as a slow consumer: the pushes are retried, the invariant holds exactly", TIMEOUT, async (t) => {
    const server = await startNatsServer({ jetstream: false, extraConfig: 'write_deadline: "1s"\n' });
    const [W, R, keys] = [2, 30, 1000];
    const job = "slow-ps";
    const control = "test.slow.shard";
    const config: StallingShardConfig = { url: server.url, job, keys, stallMs: 2_500, floodSubject: "test.slow.shard.flood", control };
    const child = spawnFixture("stalling-shard.js", config);
    const ncs: NatsConnection[] = [];
    let clients: ShardedParameterClient[] = [];
    try {
      await until(() => child.stdout().includes("ready\n") || child.process.exitCode !== null, 30_000, `the shard starting (${child.stderr()})`);
      for (let i = 0; i < W + 1; i++) ncs.push(await connectCluster({ servers: server.url, name: `slow-ps-${i}` }));
      clients = await Promise.all(
        ncs.slice(0, W).map((nc, worker) => ShardedParameterClient.connect({ job, shards: 1, keys, connection: nc, worker, requestTimeoutMs: 1_500, attempts: 5, connectTimeoutMs: 10_000, onError: () => {} })),
      );
      let acked = 0;
      let flood: Promise<void> | undefined;
      const ones = new Float32Array(keys).fill(1);
      await within(
        Promise.all(
          clients.map(async (client) => {
            for (let r = 0; r < R; r++) {
              await client.push(ones);
              if (++acked === 10) {
                ncs[W]!.publish(`${control}.stall`);
                flood = floodOnce(ncs[W]!, config.floodSubject, 64, 1_000_000);
              }
            }
          }),
        ),
        WAIT_MS,
        () => `the pushes (shard: ${child.stderr()})`,
      );
      await flood;
      const final = new Float32Array(keys);
      await clients[0]!.pull(final);
      for (let i = 0; i < keys; i++) if (final[i] !== (i % 7) - R * W) assert.fail(`key ${i} is ${final[i]}, expected ${(i % 7) - R * W}`);
      await ncs[W]!.request(`${control}.stop`, "", { timeout: 10_000 });
      assert.equal(await within(child.exited, WAIT_MS, () => "the shard's exit"), 0, child.stderr());
      const report = JSON.parse(child.stdout().split("\n").find((line) => line.startsWith("{"))!) as StallingShardReport;
      assert.equal(report.version, R * W, "every push applied once");
      const slow = report.reports.find((r) => r.slowConsumer);
      assert.ok(slow, `the shard was cut as a slow consumer: ${JSON.stringify(report)}`);
      assert.ok(slow.stalledMs >= 1_000, `stalled ${slow.stalledMs} ms`);
      const stats = clients.map((c) => c.stats);
      assert.ok(stats.some((s) => s.retries > 0), `a push got no reply and was sent again: ${JSON.stringify(stats)}`);
      t.diagnostic(`slow shard: stalled ${slow.stalledMs} ms; shard deduped ${report.deduped}; clients ${JSON.stringify(stats.map((s) => ({ retries: s.retries, resent: s.resent, deduped: s.deduped })))}`);
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      if (child.process.exitCode === null && child.process.pid !== undefined) {
        try {
          process.kill(child.process.pid, "SIGKILL");
        } catch {
          // it has just exited
        }
      }
      await Promise.allSettled(ncs.map((nc) => nc.close()));
      await server.stop();
    }
  });
});
