// Shard snapshots (issue 10, checkpoints): the format round-trips the parameters, every optimizer-state slot, the
// version clock, the schedule's epoch, the per-worker clocks and the dedupe window; a shard resumed from its snapshot
// goes on exactly as one that never stopped (Adam, momentum) and drops a retried push it applied before; a corrupt
// or truncated newest snapshot is skipped by name for the previous one (directory and NATS object store); directory
// writes leave no temp files and keep the last K; a snapshot of another shard or spec is refused by name; the
// on-demand request subject saves one.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import { snapshotSubject } from "../../src/cluster/durability.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterShard, type ParameterShardOptions, type ShardOptimizerOptions } from "../../src/cluster/ps-shard.js";
import { decodeSnapshot, encodeSnapshot, type ShardSnapshot, SnapshotError } from "../../src/cluster/snapshot.js";
import { DirectorySnapshotStore, NatsSnapshotStore, type SnapshotStore, snapshotBucket } from "../../src/cluster/snapshot-store.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { mulberry32 } from "../../src/util/random.js";
import { tempDir } from "../support/temp.js";
import { closeAll, connectAll, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 120_000 };
const JETSTREAM = { jetstream: true };
const ADAM: ShardOptimizerOptions = { optimizer: "adam", learningRate: 0.01, learningRateDecay: 0.5 };

function gradient(keys: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: keys }, () => random() * 2 - 1);
}

function sample(keys = 37, slots = 2): ShardSnapshot {
  return {
    job: "j", shard: 1, shards: 3, keys: keys * 3, begin: keys, end: 2 * keys, specHash: "abc", optimizer: slots === 2 ? "adam" : "sgd",
    version: 42, epoch: 3, logSeq: 17, createdAt: 1_700_000_000_000,
    clocks: [[0, 20], [7, 22]],
    applied: [{ worker: 0, max: 20, recent: [15, 16, 18, 19, 20] }, { worker: 7, max: 22, recent: [22] }],
    params: gradient(keys, 1),
    state: Array.from({ length: slots }, (_, s) => gradient(keys, 2 + s)),
  };
}

function refused(run: () => unknown, reason: string): SnapshotError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof SnapshotError, `a SnapshotError, got ${error}`);
    assert.equal(error.reason, reason, error.message);
    return error;
  }
  return assert.fail(`not refused (${reason})`);
}

describe("the snapshot format", () => {
  test("round trip: parameters, state slots, clocks, dedupe window, epoch, log sequence", () => {
    for (const slots of [0, 1, 2]) {
      const original = sample(37, slots);
      const bytes = encodeSnapshot(original);
      assert.deepEqual(decodeSnapshot(bytes), original);
      assert.deepEqual(encodeSnapshot(decodeSnapshot(bytes)), bytes, "encoding is deterministic");
    }
  });

  test("truncated, corrupt, foreign and oversized snapshots are refused by name", () => {
    const bytes = encodeSnapshot(sample());
    const e = refused(() => decodeSnapshot(bytes.subarray(0, bytes.length - 9), { name: "s.dpsnap" }), "truncated");
    assert.equal(e.snapshot, "s.dpsnap");
    assert.match(e.message, /^snapshot s\.dpsnap: /);
    const flipped = bytes.slice();
    flipped[bytes.length - 20]! ^= 0x10;
    refused(() => decodeSnapshot(flipped), "crc32");
    refused(() => decodeSnapshot(new TextEncoder().encode("definitely not a snapshot file")), "magic");
    refused(() => decodeSnapshot(bytes, { maxBytes: 100 }), "limit");
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    refused(() => decodeSnapshot(longer), "length");
  });
});

/** Starts shard 0 of 1 of `job` with a store; the rest of the options as given. */
function startShard(nc: NatsConnection, job: string, keys: number, store: SnapshotStore, extra: Partial<ParameterShardOptions> = {}): Promise<ParameterShard> {
  return ParameterShard.start({
    job, shard: 0, shards: 1, connection: nc, init: new Float32Array(keys).fill(0.5), train: ADAM, snapshots: store, specHash: "h",
    snapshotEveryUpdates: 0, snapshotEveryMs: 0, onError: () => {}, ...extra,
  });
}

describe("a shard resumed from its snapshot", () => {
  for (const kind of ["directory", "nats"] as const) {
    test(`${kind} store: resumes where it stopped (Adam state, epoch, clocks), a retried push is applied once`, TIMEOUT, async () => {
      await withServer(async (server) => {
        const keys = 300;
        const [nc, nc2] = await connectAll(server.url, 2) as [NatsConnection, NatsConnection];
        const job = `resume-${kind}`;
        const dir = tempDir("snap");
        const open = () => (kind === "nats" ? NatsSnapshotStore.open(nc, job) : DirectorySnapshotStore.open(job, dir));
        const store = await open();
        const control = await ParameterShard.start({ job: `${job}-control`, shard: 0, shards: 1, connection: nc, init: new Float32Array(keys).fill(0.5), train: ADAM, specHash: "h" });
        let shard = await startShard(nc, job, keys, store);
        const clients: ShardedParameterClient[] = [];
        try {
          const connectTo = async (j: string, worker: number) => {
            const client = await ShardedParameterClient.connect({ job: j, shards: 1, keys, connection: nc2, worker, specHash: "h", connectTimeoutMs: 10_000, requestTimeoutMs: 2_000, attempts: 20 });
            clients.push(client);
            return client;
          };
          const [a, b, c] = [await connectTo(job, 0), await connectTo(job, 1), await connectTo(`${job}-control`, 0)];
          const push = (seq: number, worker: number, epoch: number) => {
            const g = gradient(keys, 100 + seq * 10 + worker);
            const client = worker === 0 ? a : b;
            client.epoch = epoch;
            c.epoch = epoch;
            return Promise.all([client.push(g, undefined, { worker, seq }), c.push(g, undefined, { worker, seq })]);
          };
          for (let seq = 1; seq <= 4; seq++) for (const worker of [0, 1]) await push(seq, worker, seq > 2 ? 1 : 0);
          const saved = await shard.snapshot();
          assert.equal(saved.generation, 2, "the first snapshot at start, this one second");
          const before = shard.values();
          const clocks = shard.clocks();
          await shard.close();
          shard = await startShard(nc, job, keys, await open(), { resume: true });
          assert.deepEqual(shard.values(), before, "the parameters restored bit for bit");
          assert.equal(shard.version, 8);
          assert.deepEqual(shard.clocks(), clocks);
          const restored = shard.stats.restored!;
          assert.equal(restored.from, saved.name);
          assert.deepEqual([restored.snapshotVersion, restored.version, restored.skipped], [8, 8, []]);
          assert.equal(shard.stats.learningRate, 0.005, "the schedule's epoch restored (decay 0.5 per epoch)");
          // A retry of (worker 1, seq 4), applied before the snapshot: acknowledged, not applied again.
          await b.push(gradient(keys, 100 + 40 + 1), undefined, { worker: 1, seq: 4 });
          assert.equal(shard.version, 8);
          assert.equal(shard.stats.deduped, 1);
          for (let seq = 5; seq <= 6; seq++) for (const worker of [0, 1]) await push(seq, worker, 2);
          assert.deepEqual(shard.values(), control.values(), "Adam moments and step count restored: the same result as a shard that never stopped");
        } finally {
          await Promise.allSettled(clients.map((c) => c.close()));
          await Promise.allSettled([shard.close(), control.close()]);
          await closeAll([nc, nc2]);
        }
      }, JETSTREAM);
    });
  }

  test("a snapshot of another spec hash or shard count is refused by name", TIMEOUT, async () => {
    await withServer(async (server) => {
      const [nc] = await connectAll(server.url, 1) as [NatsConnection];
      const dir = tempDir("snap-mismatch");
      try {
        const store = await DirectorySnapshotStore.open("mm", dir);
        await (await startShard(nc, "mm", 100, store)).close();
        const error = await startShard(nc, "mm", 100, store, { resume: true, specHash: "other" }).then(() => assert.fail("resumed"), (e: unknown) => e);
        assert.ok(error instanceof SnapshotError, String(error));
        assert.deepEqual([error.reason, error.field], ["mismatch", "specHash"]);
        assert.match(error.message, /mm\.shard-0\.0000000001\.dpsnap/);
        const other = await DirectorySnapshotStore.open("mm", dir);
        const wrongShape = await ParameterShard.start({ job: "mm", shard: 0, shards: 1, connection: nc, init: new Float32Array(120), train: ADAM, snapshots: other, specHash: "h", resume: true })
          .then(() => assert.fail("resumed"), (e: unknown) => e);
        assert.ok(wrongShape instanceof SnapshotError && wrongShape.field === "keys", String(wrongShape));
        await assert.rejects(startShard(nc, "other-job", 100, other), (e: unknown) => e instanceof InvalidArgumentError && /snapshots must be a store of job "other-job"/.test(e.message));
      } finally {
        await closeAll([nc]);
      }
    });
  });
});

describe("stores", () => {
  test("directory: atomic writes (no temp files left), the last K kept, a corrupt and a truncated newer one skipped by name", async () => {
    const dir = tempDir("snap-dir");
    const store = await DirectorySnapshotStore.open("dj", dir, { keep: 3 });
    const saved = [];
    for (let v = 1; v <= 5; v++) saved.push(await store.save({ ...sample(), job: "dj", shard: 0, version: v }));
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, saved.slice(2).map((s) => s.name.slice(dir.length + 1)), "the last 3 kept, nothing else (no temp files)");
    // A write that crashed midway leaves a temp file: never listed.
    writeFileSync(join(dir, ".dj.shard-0.0000000009.dpsnap.123.abcd.tmp"), "partial");
    // The newest: one bit flipped; the one before: cut short.
    const newest = saved[4]!.name;
    const bytes = readFileSync(newest);
    bytes[bytes.length - 20]! ^= 1;
    writeFileSync(newest, bytes);
    truncateSync(saved[3]!.name, 50);
    const latest = (await store.latest(0))!;
    assert.equal(latest.snapshot.version, 3);
    assert.equal(latest.entry.name, saved[2]!.name);
    assert.deepEqual(latest.skipped.map((e) => [e.snapshot, e.reason]), [[newest, "crc32"], [saved[3]!.name, "truncated"]]);
    assert.equal(await store.latest(1), undefined, "no snapshot of shard 1");
    // The next save counts on from the newest generation, corrupt or not.
    assert.equal((await store.save({ ...sample(), job: "dj", shard: 0, version: 6 })).generation, 6);
  });

  test("NATS object store: the job's bucket; a truncated newer object skipped by name; on-demand snapshots on the shard's subject", TIMEOUT, async () => {
    await withServer(async (server) => {
      const [nc] = await connectAll(server.url, 1) as [NatsConnection];
      try {
        const store = await NatsSnapshotStore.open(nc, "nj", { keep: 2 });
        assert.equal(store.bucket, snapshotBucket("nj"));
        const shard = await startShard(nc, "nj", 64, store);
        try {
          const reply = await nc.request(snapshotSubject("nj", 0), new Uint8Array(0), { timeout: 10_000 });
          const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { name: string; generation: number; version: number };
          assert.deepEqual([answer.name, answer.generation, answer.version], ["nj.shard-0.0000000002.dpsnap", 2, 0]);
        } finally {
          await shard.close();
        }
        const good = encodeSnapshot({ ...sample(), job: "nj", shard: 0 });
        await store.save(good.subarray(0, good.length - 100), 0);
        const listed = await store.list(0);
        assert.deepEqual(listed.map((e) => e.generation), [3, 2], "keep 2");
        const latest = (await store.latest(0))!;
        assert.equal(latest.entry.generation, 2);
        assert.deepEqual(latest.skipped.map((e) => [e.snapshot, e.reason]), [["nj.shard-0.0000000003.dpsnap", "truncated"]]);
      } finally {
        await closeAll([nc]);
      }
    }, JETSTREAM);
  });
});
