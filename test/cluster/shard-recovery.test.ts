// A parameter-server shard SIGKILLed mid-run (twice, with the log) and started again (issue 10, "Faults survived"): 3 workers push to 2
// shards (each a child process with a directory snapshot store, a snapshot every 10 updates); shard 0 is killed while
// they push, restarted with resume, and the workers' retries (client options: attempts long enough to cover the
// restart) carry on. With durability "log" the final parameters equal exactly the no-crash result (plain SGD lr 1:
// initial - the sum of every acknowledged push, each once) and the restarted shard's version is exactly the pushes
// made (none applied twice, none lost); with "snapshot" the job completes and the updates lost are counted (the
// clients' view of the version vs the restored one). The recovery time (kill to the first update applied afterwards)
// is measured and printed as a test diagnostic. Log entries larger than max_payload are chunked and replayed whole.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { LOG_HEADER, logSubject, type ShardDurability } from "../../src/cluster/durability.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterShard, type ShardStats } from "../../src/cluster/ps-shard.js";
import { DirectorySnapshotStore } from "../../src/cluster/snapshot-store.js";
import { tempDir } from "../support/temp.js";
import type { DurableShardConfig } from "./fixtures/durable-shard.js";
import { closeAll, connectAll, sleep, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 180_000 };
/** The fixture's stop subject (as fixtures/durable-shard.ts has it; importing the fixture would run it). */
const stopSubject = (job: string, shard: number): string => `_test.durable-shard.${job}.${shard}.stop`;

interface Child {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnShard(config: DurableShardConfig): Child {
  const script = fileURLToPath(new URL("./fixtures/durable-shard.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
  let [stdout, stderr] = ["", ""];
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** The stats the child printed with "ready", once it did (bounded wait). */
async function ready(child: Child, what: string): Promise<ShardStats> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const line = child.stdout().split("\n").find((l) => l.startsWith("ready "));
    if (line !== undefined) return JSON.parse(line.slice("ready ".length)) as ShardStats;
    if (child.process.exitCode !== null || Date.now() > deadline) assert.fail(`${what} did not start: ${child.stderr()}`);
    await sleep(20);
  }
}

/** When the child applied its first update (its "first-update <ms>" line; bounded wait). */
async function firstUpdate(child: Child): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const line = child.stdout().split("\n").find((l) => l.startsWith("first-update "));
    if (line !== undefined) return Number(line.slice("first-update ".length));
    if (child.process.exitCode !== null || Date.now() > deadline) assert.fail(`no first update: ${child.stderr()}`);
    await sleep(10);
  }
}

/** Stops a child cleanly and returns its final stats. */
async function stop(nc: NatsConnection, job: string, shard: number, child: Child): Promise<ShardStats> {
  nc.publish(stopSubject(job, shard), new Uint8Array(0));
  await nc.flush();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([child.exited, new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), 30_000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, `shard ${shard} stopped: ${child.stderr()}`);
  return JSON.parse(child.stdout().trim().split("\n").pop()!) as ShardStats;
}

/** Push r of worker w: small integers, so every sum is exact in float32. */
const grad = (keys: number, w: number, r: number) => Float32Array.from({ length: keys }, (_, i) => ((i + 3 * w + 7 * r) % 5) - 2);
const initial = (keys: number) => Float32Array.from({ length: keys }, (_, i) => i % 11);

interface RunResult {
  final: Float32Array;
  finalVersions: number[];
  /** The last restarted shard's stats; per kill: the clients' newest view of shard 0's version, when, and the first
   *  update the next incarnation applied (ms since the epoch). */
  restarted: ShardStats;
  kills: { view: number; at: number; firstUpdateAt: number; restored: ShardStats["restored"] }[];
  failed: number;
}

/** Runs the job, SIGKILLing shard 0 each time the clients have seen it reach one of `killAt` versions. */
async function crashRun(durability: ShardDurability, job: string, killAt: number[]): Promise<RunResult> {
  return withServer(async (server) => {
    const [keys, S, W, R] = [2000, 2, 3, 40];
    const dir = tempDir(`recovery-${durability}`);
    const base = { url: server.url, job, shards: S, keys, specHash: "h", snapshots: dir, durability, snapshotEveryUpdates: 10, snapshotEveryMs: 0, limitMs: 150_000 };
    const children: Child[] = [];
    const ncs = await connectAll(server.url, W + 1);
    const clients: ShardedParameterClient[] = [];
    try {
      for (let k = 0; k < S; k++) children.push(spawnShard({ ...base, shard: k, resume: false }));
      for (const [k, child] of children.entries()) await ready(child, `shard ${k}`);
      for (let w = 0; w < W; w++) {
        clients.push(await ShardedParameterClient.connect({
          job, shards: S, keys, connection: ncs[w]!, worker: w, specHash: "h", connectTimeoutMs: 20_000,
          // Long enough to cover the restart: 60 attempts of at most 1 s (100 ms apart when nobody answers).
          requestTimeoutMs: 1_000, attempts: 60, retryDelayMs: 100,
        }));
      }
      let failed = 0;
      const work = clients.map(async (client, w) => {
        for (let r = 0; r < R; r++) {
          await client.push(grad(keys, w, r), undefined, { worker: w, seq: r + 1 }).catch(() => failed++);
          await sleep(5);
        }
      });
      const view = () => Math.max(...clients.map((c) => c.versions()[0]!.latest));
      const kills: RunResult["kills"] = [];
      let current = children[0]!;
      for (const threshold of killAt) {
        const deadline = Date.now() + 60_000;
        while (view() < threshold && Date.now() < deadline) await sleep(2);
        current.process.kill("SIGKILL");
        const at = Date.now();
        await current.exited;
        const seen = view();
        current = spawnShard({ ...base, shard: 0, resume: true });
        children.push(current);
        const stats = await ready(current, "the restarted shard 0");
        kills.push({ view: seen, at, firstUpdateAt: await firstUpdate(current), restored: stats.restored });
      }
      await Promise.all(work);
      const final = new Float32Array(keys);
      await clients[0]!.pull(final);
      const finalVersions = clients[0]!.versions().map((v) => v.pulled);
      const restarted = await stop(ncs[W]!, job, 0, current);
      await stop(ncs[W]!, job, 1, children[1]!);
      return { final, finalVersions, restarted, kills, failed };
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      for (const child of children) if (child.process.exitCode === null) child.process.kill("SIGKILL");
      await closeAll(ncs);
    }
  }, { jetstream: true });
}

function diagnostic(text: string): void {
  // The measured figures, for the report (not asserted beyond generous bounds).
  process.stderr.write(`# ${text}\n`);
}

test('durability "log": SIGKILL a shard twice mid-run, restart it each time: the final parameters equal the no-crash result exactly', TIMEOUT, async () => {
  const [keys, W, R] = [2000, 3, 40];
  const run = await crashRun("log", "recover-log", [30, 80]);
  assert.equal(run.failed, 0, "every push acknowledged");
  const expected = initial(keys);
  for (let w = 0; w < W; w++) for (let r = 0; r < R; r++) {
    const g = grad(keys, w, r);
    for (let i = 0; i < keys; i++) expected[i] = expected[i]! - g[i]!;
  }
  for (let i = 0; i < keys; i++) if (run.final[i] !== expected[i]) assert.fail(`key ${i}: ${run.final[i]}, expected ${expected[i]} (initial - every push once)`);
  assert.deepEqual(run.finalVersions, [W * R, W * R], "every push applied once on each shard");
  assert.equal(run.restarted.updates, W * R, "the last incarnation counts every push once");
  for (const [i, kill] of run.kills.entries()) {
    const restored = kill.restored!;
    assert.ok(restored.from !== "", "restored from a snapshot");
    assert.ok(restored.version >= kill.view, `kill ${i + 1}: nothing acknowledged lost: restored ${restored.version}, the clients saw ${kill.view}`);
    const recoveryMs = kill.firstUpdateAt - kill.at;
    assert.ok(recoveryMs > 0 && recoveryMs < 60_000, `recovery ${recoveryMs} ms`);
    diagnostic(
      `log, kill ${i + 1}: the clients had seen v${kill.view}; restored snapshot v${restored.snapshotVersion} + ${restored.replayed} replayed ` +
        `(${restored.replayDeduped} dropped as applied) = v${restored.version} in ${restored.tookMs} ms; recovery (kill to first applied update) ${recoveryMs} ms; 0 lost`,
    );
  }
});

test('durability "snapshot": SIGKILL a shard mid-run, restart it: the job completes, the updates lost are counted', TIMEOUT, async () => {
  const [W, R] = [3, 40];
  const run = await crashRun("snapshot", "recover-snap", [35]);
  assert.equal(run.failed, 0, "every push acknowledged");
  const kill = run.kills[0]!;
  const restored = kill.restored!;
  const lost = W * R - run.restarted.updates;
  assert.ok(lost >= 0 && lost <= 30, `updates lost ${lost} (at most the snapshot interval plus the saves in flight)`);
  assert.ok(lost <= Math.max(0, kill.view - restored.version) + W, `lost ${lost}, the clients saw ${kill.view}, restored ${restored.version}`);
  assert.equal(restored.version, restored.snapshotVersion, "no log: the snapshot's version");
  assert.deepEqual(run.finalVersions, [W * R - lost, W * R]);
  assert.ok(run.final.every(Number.isFinite));
  const recoveryMs = kill.firstUpdateAt - kill.at;
  assert.ok(recoveryMs > 0 && recoveryMs < 60_000, `recovery ${recoveryMs} ms`);
  diagnostic(`snapshot: the clients had seen v${kill.view}; restored v${restored.version} (snapshot ${restored.ageMs} ms old); lost ${lost} updates (client view - restored: ${kill.view - restored.version}); recovery ${recoveryMs} ms`);
});

test('durability "log": pushes larger than max_payload are logged in chunks and replayed whole; a partly logged entry is never applied', TIMEOUT, async () => {
  await withServer(async (server) => {
    // 40 000 floats = 160 KB per push, max_payload 64 KB: every log entry is 3 messages.
    const [keys, W, R, job] = [40_000, 2, 5, "chunked-log"];
    const dir = tempDir("chunked-log");
    const ncs = await connectAll(server.url, 2);
    const open = () => DirectorySnapshotStore.open(job, dir);
    const options = {
      job, shard: 0, shards: 1, connection: ncs[0]!, init: initial(keys), train: { optimizer: "sgd" as const, learningRate: 1, momentum: 0 },
      durability: "log" as const, snapshotEveryUpdates: 0, snapshotEveryMs: 0, snapshotOnClose: false, onError: () => {},
    };
    let shard = await ParameterShard.start({ ...options, snapshots: await open() });
    const clients: ShardedParameterClient[] = [];
    try {
      for (let w = 0; w < W; w++) clients.push(await ShardedParameterClient.connect({ job, shards: 1, keys, connection: ncs[1]!, worker: w, requestTimeoutMs: 5_000, attempts: 10 }));
      await Promise.all(clients.map(async (client, w) => {
        for (let r = 0; r < R; r++) await client.push(grad(keys, w, r), undefined, { worker: w, seq: r + 1 });
      }));
      assert.equal(shard.stats.logged, W * R);
      const before = shard.values();
      await shard.close();
      // The first chunk of a push nobody finished logging (worker 9): replay must not apply it.
      const header = headers();
      header.set(LOG_HEADER, JSON.stringify({ w: 9, s: 1, b: 0, e: keys, i: 0, n: 3, o: 0, t: keys * 4, inc: "dead" }));
      await jetstream(ncs[1]!).publish(logSubject(job, 0), new Uint8Array(1024).fill(7), { headers: header });
      // Only the snapshot taken at start (version 0) exists: everything comes back from the log.
      shard = await ParameterShard.start({ ...options, snapshots: await open(), resume: true });
      const restored = shard.stats.restored!;
      assert.deepEqual([restored.snapshotVersion, restored.replayed, restored.version], [0, W * R, W * R]);
      assert.deepEqual(shard.values(), before, "the replay rebuilt the parameters bit for bit");
      assert.equal(await clients[0]!.push(grad(keys, 0, 2), undefined, { worker: 0, seq: 3 }), W * R, "a retry of a replayed push is acknowledged, not applied");
      assert.equal(shard.stats.deduped, 1);
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      await shard.close();
      await closeAll(ncs);
    }
  }, { jetstream: true, maxPayload: 64 * 1024 });
});
