// Sharded parameter servers over a real nats-server: after R pushes of v from W concurrent workers (with replies
// dropped so pushes are retried, and pushes sent twice) every key holds exactly initial - R*W*v and every shard's
// version is R*W, for 1, 2 and 3 shards; the shards end where MemoryParameterStore ends for the same pushes (SGD
// with momentum, Adagrad, Adam, with L2 on weights only); a 1M-float model travels intact under a 256 KB
// max_payload; bad pushes (wrong length, range not owned, another job or spec hash, a damaged chunk) are refused
// naming the sender, field and range, leaving the shard unchanged; a push missing chunks is dropped, never applied;
// pushes whose replies never come fail after the last attempt; a shard in a child process serves workers in this one.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import { encodeFrames, float32Bytes, specTag } from "../../src/cluster/chunks.js";
import { MessageError } from "../../src/cluster/errors.js";
import { shardRanges } from "../../src/cluster/partition.js";
import { ShardedParameterClient, type ParameterClientOptions } from "../../src/cluster/ps-client.js";
import { metaHeaders, ParameterServerError, PS_PROTOCOL_VERSION, type ReplyMeta, type RequestMeta, readMeta, shardSubjects } from "../../src/cluster/ps-protocol.js";
import { networkSegments, ParameterShard, type ParameterShardOptions, type ShardOptimizerOptions } from "../../src/cluster/ps-shard.js";
import { Kernels } from "../../src/core/kernels.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import { MemoryParameterStore } from "../../src/train/memory-exchange.js";
import { mulberry32 } from "../../src/util/random.js";
import type { ShardConfig } from "./fixtures/ps-shard.js";

/** The fixture's stop subject (as fixtures/ps-shard.ts has it; importing the fixture would run it). */
const stopSubject = (job: string): string => `_test.ps-shard.${job}.stop`;
import { closeAll, connectAll, seededFloats, sleep, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 120_000 };
const PLAIN_SGD: ShardOptimizerOptions = { optimizer: "sgd", learningRate: 1, momentum: 0, l2: 0 };

/** Initial values that keep SGD with lr 1 exact: small integers. */
const integers = (keys: number, mod = 11) => Float32Array.from({ length: keys }, (_, i) => i % mod);

/** Starts `shards` shards of `job`, each on its own connection from `ncs`. */
function startShards(ncs: NatsConnection[], job: string, init: Float32Array, options: Partial<ParameterShardOptions> = {}): Promise<ParameterShard[]> {
  return Promise.all(ncs.map((nc, shard) => ParameterShard.start({ job, shard, shards: ncs.length, connection: nc, init, train: PLAIN_SGD, onError: () => {}, ...options })));
}

/** One client per connection, worker ids 0, 1, ... */
function connectClients(ncs: NatsConnection[], job: string, shards: number, keys: number, options: Partial<ParameterClientOptions> = {}): Promise<ShardedParameterClient[]> {
  return Promise.all(ncs.map((nc, worker) => ShardedParameterClient.connect({ job, shards, keys, connection: nc, worker, connectTimeoutMs: 10_000, ...options })));
}

async function closeEverything(clients: ShardedParameterClient[], shards: ParameterShard[], ncs: NatsConnection[]): Promise<void> {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(shards.map((s) => s.close()));
  await closeAll(ncs);
}

describe("push/pull invariant: plain SGD with lr 1 holds initial - R*W*v exactly", () => {
  for (const S of [1, 2, 3]) {
    test(`${S} shard${S > 1 ? "s" : ""}, 3 workers, 5 pushes each, retried and doubled pushes applied once`, TIMEOUT, async () => {
      await withServer(async (server) => {
        const [W, R, keys] = [3, 5, 1000];
        const ncs = await connectAll(server.url, S + W);
        const init = integers(keys);
        const shards = await startShards(ncs.slice(0, S), `inv${S}`, init);
        let clients: ShardedParameterClient[] = [];
        try {
          // Shard 0's reply to the first attempt of every even seq is lost: the push is sent again, with the same seq.
          const dropReply = ({ shard, op, attempt, seq }: { shard: number; op: string; attempt: number; seq?: number }) =>
            shard === 0 && op === "push" && attempt === 1 && seq !== undefined && seq % 2 === 0;
          // Chunks of 1 KB: every push part travels as several frames, and a retry re-sends them all.
          clients = await connectClients(ncs.slice(S), `inv${S}`, S, keys, { requestTimeoutMs: 1_000, maxChunkBytes: 1024, faults: { dropReply } });
          const v = Float32Array.from({ length: keys }, (_, i) => (i % 5) - 2 + 0.5);
          await Promise.all(
            clients.map((client, worker) => {
              // push copies its gradient before returning: the scratch buffer is overwritten at once.
              const send = (seq: number) => {
                const scratch = v.slice();
                const sent = client.push(scratch, undefined, { worker, seq });
                scratch.fill(1e6);
                return sent;
              };
              const pushes = Array.from({ length: R }, (_, r) => send(r + 1));
              // The same push (worker, seq 1) sent twice more, in flight with the others.
              pushes.push(send(1), send(1));
              return Promise.all(pushes);
            }),
          );
          const evens = Math.floor(R / 2);
          for (const shard of shards) {
            assert.equal(shard.version, R * W, `shard ${shard.shard}'s version`);
            // At least: the two extra copies of seq 1 per worker, and on shard 0 the retries of even seqs (a reply slower
            // than the timeout on a loaded machine adds a retry, which is deduplicated too).
            assert.ok(shard.stats.deduped >= W * 2 + (shard.shard === 0 ? W * evens : 0), `shard ${shard.shard} deduplicated ${shard.stats.deduped}`);
          }
          for (const client of clients) {
            const into = new Float32Array(keys).fill(Number.NaN);
            const version = await client.pull(into);
            assert.equal(version, R * W);
            for (let i = 0; i < keys; i++) {
              if (into[i] !== init[i]! - R * W * v[i]!) assert.fail(`key ${i}: ${into[i]}, expected ${init[i]! - R * W * v[i]!}`);
            }
            assert.deepEqual(client.versions().map((x) => [x.pulled, x.latest]), shards.map(() => [R * W, R * W]));
            assert.equal(client.staleness(), 0);
          }
          assert.ok(clients.every((c) => c.stats.retries >= evens), `retries: ${clients.map((c) => c.stats.retries)}`);
        } finally {
          await closeEverything(clients, shards, ncs);
        }
      });
    });
  }

  test("ranges across shard boundaries, concurrent pulls, staleness seen from acknowledgements", TIMEOUT, async () => {
    await withServer(async (server) => {
      const keys = 333;
      const ncs = await connectAll(server.url, 5);
      const init = integers(keys);
      const shards = await startShards(ncs.slice(0, 3), "ranges", init);
      let clients: ShardedParameterClient[] = [];
      try {
        clients = await connectClients(ncs.slice(3), "ranges", 3, keys);
        const [a, b] = clients as [ShardedParameterClient, ShardedParameterClient];
        const ranges = shardRanges(keys, 3);
        const g = new Float32Array(keys).fill(1);
        const across = { begin: ranges[0]!.end - 5, end: ranges[2]!.begin + 7 };
        assert.equal(await a.push(g, across), 1, "only shard 1 is wholly inside: every shard involved is at version 1");
        await b.pull(new Float32Array(keys));
        await a.push(g, { begin: ranges[2]!.begin, end: keys });
        assert.equal(b.staleness(), 0, "b has seen no acknowledgement since its pull");
        await b.push(g, { begin: keys - 1, end: keys });
        assert.equal(b.staleness({ begin: keys - 1, end: keys }), 2, "shard 2 moved on twice since b's pull");
        assert.equal(b.staleness({ begin: 0, end: 1 }), 0);
        const into = new Float32Array(keys);
        const [v1, v2] = await Promise.all([b.pull(into, { begin: 10, end: 20 }), b.pull(into, { begin: ranges[2]!.begin, end: keys })]);
        assert.deepEqual([v1, v2], [1, 3]);
        const expected = (i: number) => init[i]! - (i >= across.begin && i < across.end ? 1 : 0) - (i >= ranges[2]!.begin ? 1 : 0) - (i === keys - 1 ? 1 : 0);
        for (let i = ranges[2]!.begin; i < keys; i++) assert.equal(into[i], expected(i), `key ${i}`);
        for (let i = 10; i < 20; i++) assert.equal(into[i], expected(i));
        assert.equal(into[5], 0, "keys outside the pulled ranges untouched");
        assert.deepEqual(shards.map((s) => s.version), [1, 1, 3]);
      } finally {
        await closeEverything(clients, shards, ncs);
      }
    });
  });
});

describe("the shards apply the same math as MemoryParameterStore", () => {
  const spec = { inputs: 5, layers: [{ units: 7, activation: "relu" as const }, { units: 3, activation: "softmax" as const }], seed: 3 };
  const cases: [string, ShardOptimizerOptions, boolean][] = [
    ["sgd with momentum and l2", { optimizer: "sgd", learningRate: 0.05, momentum: 0.9, l2: 0.01 }, true],
    ["adagrad with l2", { optimizer: "adagrad", learningRate: 0.05, l2: 0.02 }, true],
    ["adam with l2", { optimizer: "adam", learningRate: 0.01, l2: 0.01 }, false],
  ];
  for (const [name, train, partial] of cases) {
    test(`${name}: 2 and 3 shards within 1e-6 after the same pushes`, TIMEOUT, async () => {
      const kernels = await Kernels.load();
      const network = Network.create(kernels, spec);
      const keys = network.params.block.length;
      const init = network.params.block.f32().slice();
      await withServer(async (server) => {
        for (const S of [2, 3]) {
          const store = MemoryParameterStore.create(network, train);
          const ncs = await connectAll(server.url, S + 1);
          const shards = await startShards(ncs.slice(0, S), `math${S}`, init, { train, segments: networkSegments(network) });
          let clients: ShardedParameterClient[] = [];
          try {
            clients = await connectClients(ncs.slice(S), `math${S}`, S, keys);
            const client = clients[0]!;
            const random = mulberry32(7 + S);
            for (let p = 0; p < 8; p++) {
              const g = Float32Array.from({ length: keys }, () => random() * 2 - 1);
              // Adam's bias correction counts updates per store (per shard here): only whole pushes keep them equal.
              const range = partial && p % 3 === 2 ? { begin: 5, end: keys - 21 } : undefined;
              const info = { worker: 0, seq: p + 1 };
              await Promise.all([store.push(g, range, info), client.push(g, range, info)]);
            }
            const [ours, theirs] = [new Float32Array(keys), new Float32Array(keys)];
            await Promise.all([client.pull(ours), store.pull(theirs)]);
            let worst = 0;
            for (let i = 0; i < keys; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
            assert.ok(worst <= 1e-6, `${S} shards: largest difference ${worst}`);
            assert.ok(theirs.some((x, i) => x !== init[i]), "the pushes changed the parameters");
          } finally {
            store.dispose();
            await closeEverything(clients, shards, ncs);
          }
        }
      });
    });
  }

  test("the learning-rate schedule runs on the shard: per N updates and per pushed epoch", TIMEOUT, async () => {
    await withServer(async (server) => {
      const keys = 64;
      const ncs = await connectAll(server.url, 3);
      const init = new Float32Array(keys);
      const train = { ...PLAIN_SGD, learningRate: 1, learningRateDecay: 0.5 };
      const shards = [
        await ParameterShard.start({ job: "sched", shard: 0, shards: 1, connection: ncs[0]!, init, train: { ...train, decayEvery: 2 } }),
        await ParameterShard.start({ job: "sched-epoch", shard: 0, shards: 1, connection: ncs[1]!, init, train }),
      ];
      let clients: ShardedParameterClient[] = [];
      try {
        clients = [
          await ShardedParameterClient.connect({ job: "sched", shards: 1, keys, connection: ncs[2]!, worker: 0 }),
          await ShardedParameterClient.connect({ job: "sched-epoch", shards: 1, keys, connection: ncs[2]!, worker: 0 }),
        ];
        const [byUpdates, byEpoch] = clients as [ShardedParameterClient, ShardedParameterClient];
        const ones = new Float32Array(keys).fill(1);
        for (let i = 0; i < 5; i++) await byUpdates.push(ones);
        // Rates 1, 1, 0.5, 0.5, 0.25: the weights fall by 3.25.
        const w = new Float32Array(keys);
        await byUpdates.pull(w);
        assert.equal(w[0], -3.25);
        assert.equal(shards[0]!.stats.learningRate, 0.25);
        await byEpoch.push(ones);
        byEpoch.epoch = 2;
        await byEpoch.push(ones);
        byEpoch.epoch = 1; // an older epoch from a slower worker does not undo the decay
        await byEpoch.push(ones);
        await byEpoch.pull(w);
        assert.equal(w[0], -1.5);
        assert.equal(shards[1]!.stats.learningRate, 0.25);
      } finally {
        await closeEverything(clients, shards, ncs);
      }
    });
  });
});

test("a 1M-float model over a server with max_payload 256 KB: push and pull intact", TIMEOUT, async () => {
  await withServer(
    async (server) => {
      const keys = 1 << 20;
      const ncs = await connectAll(server.url, 3);
      const init = seededFloats(keys, 11);
      const shards = await startShards(ncs.slice(0, 2), "big", init);
      let clients: ShardedParameterClient[] = [];
      try {
        clients = await connectClients(ncs.slice(2), "big", 2, keys);
        const client = clients[0]!;
        const pulled = new Float32Array(keys);
        assert.equal(await client.pull(pulled), 0);
        assert.deepEqual(pulled, init, "the initial model pulled bit for bit");
        const g = seededFloats(keys, 12);
        assert.equal(await client.push(g), 1);
        await client.pull(pulled);
        for (let i = 0; i < keys; i++) {
          const expected = Math.fround(init[i]! - g[i]!);
          if (pulled[i] !== expected) assert.fail(`key ${i}: ${pulled[i]}, expected ${expected}`);
        }
        const { bytesOut, bytesIn } = client.stats;
        assert.ok(bytesOut >= 4 * keys && bytesOut < 4 * keys * 1.01, `bytes pushed ${bytesOut}`);
        assert.ok(bytesIn >= 8 * keys && bytesIn < 8 * keys * 1.01, `bytes pulled ${bytesIn}`);
        assert.ok(shards.every((s) => s.stats.bytesIn >= 2 * keys && s.stats.pulls === 2));
      } finally {
        await closeEverything(clients, shards, ncs);
      }
    },
    { maxPayload: 256 * 1024 },
  );
});

describe("bad input is refused, naming the sender, the field and the range; the shard is unchanged", () => {
  const job = "bad";
  const spec = "spec-a";
  const keys = 200;

  /** A hand-made push to shard 0 (from "mallory", worker 9): `meta` overrides, `floats` sets the body's length. */
  async function rawPush(nc: NatsConnection, override: Partial<RequestMeta>, floats?: number, subjectJob = job): Promise<ReplyMeta> {
    const range = shardRanges(keys, 2)[0]!;
    const meta: RequestMeta = { v: PS_PROTOCOL_VERSION, job, spec, from: "mallory", worker: 9, begin: range.begin, end: range.end, id: 1, seq: 1, ...override };
    const body = new Float32Array(floats ?? meta.end - meta.begin).fill(1);
    const [frame] = encodeFrames(float32Bytes(body), { kind: "f32", sender: 9, specTag: specTag(meta.spec), step: meta.id, seq: meta.seq! }, 1 << 20);
    const reply = await nc.request(shardSubjects(subjectJob, 0).push, frame, { headers: metaHeaders(meta), timeout: 5_000 });
    return readMeta(reply.headers, reply.subject, job) as unknown as ReplyMeta;
  }

  test("wrong length, range not owned, another job, another spec hash", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 3);
      const init = integers(keys);
      const errors: unknown[] = [];
      const shards = await startShards(ncs.slice(0, 2), job, init, { specHash: spec, onError: (e) => errors.push(e) });
      try {
        const before = shards.map((s) => s.values());
        const owned = shards[0]!.range;
        const [b, e] = [owned.end - 16, owned.end + 16];
        const cases: [Partial<RequestMeta>, number | undefined, string, RegExp][] = [
          [{}, owned.end - owned.begin - 3, "length", new RegExp(`\\(keys \\[0, ${owned.end}\\)\\)`)],
          [{ begin: b, end: e }, undefined, "range", new RegExp(`keys \\[${b}, ${e}\\) are not all owned by shard 0, which owns \\[0, ${owned.end}\\)`)],
          [{ job: "other" }, undefined, "job", /job "other" reached shard 0 of job "bad"/],
          [{ spec: "spec-b" }, undefined, "spec", /spec hash "spec-b" differs/],
        ];
        for (const [meta, floats, field, message] of cases) {
          const reply = await rawPush(ncs[2]!, meta, floats);
          assert.ok(reply.error, `${field}: refused`);
          assert.equal(reply.error.field, field);
          assert.equal(reply.error.sender, "mallory");
          assert.match(reply.error.message, /peer "mallory"/);
          assert.match(reply.error.message, message);
        }
        assert.equal(errors.length, 4);
        assert.ok(errors.every((e) => e instanceof MessageError && e.sender === "mallory"));
        assert.deepEqual(shards.map((s) => s.version), [0, 0]);
        assert.deepEqual(shards.map((s) => s.values()), before, "no key changed");
        assert.equal(shards[0]!.stats.refused, 4);
        // A well-formed push from mallory is applied: the refusals did not mark (9, 1) as applied.
        const ok = await rawPush(ncs[2]!, {});
        assert.deepEqual([ok.error, ok.version, ok.deduped], [undefined, 1, false]);
      } finally {
        await Promise.allSettled(shards.map((s) => s.close()));
        await closeAll(ncs);
      }
    });
  });

  test("a damaged chunk is refused; a push missing chunks is dropped after partialTimeoutMs, never applied", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 2);
      const errors: MessageError[] = [];
      const init = integers(keys);
      const [shard] = await startShards(ncs.slice(0, 1), job, init, { specHash: spec, partialTimeoutMs: 200, onError: (e) => errors.push(e as MessageError) });
      try {
        const meta: RequestMeta = { v: PS_PROTOCOL_VERSION, job, spec, from: "mallory", worker: 9, begin: 0, end: 100, id: 5, seq: 1 };
        const frames = encodeFrames(float32Bytes(new Float32Array(100).fill(1)), { kind: "f32", sender: 9, specTag: specTag(spec), step: 5, seq: 1 }, 256);
        assert.equal(frames.length, 2);
        const damaged = frames[1]!.slice();
        damaged[damaged.length - 1]! ^= 1;
        const reply = await ncs[1]!.request(shardSubjects(job, 0).push, damaged, { headers: metaHeaders(meta), timeout: 5_000 });
        const refused = readMeta(reply.headers, reply.subject, job) as unknown as ReplyMeta;
        assert.deepEqual([refused.error?.field, refused.error?.sender], ["crc32", "mallory"]);
        ncs[1]!.publish(shardSubjects(job, 0).push, frames[0]!, { headers: metaHeaders(meta) }); // chunk 1 never comes
        await ncs[1]!.flush();
        await sleep(1_300);
        // The next push (any) sweeps the stale one away.
        const ok = await rawPush(ncs[1]!, { id: 6, seq: 2 });
        assert.equal(ok.version, 1);
        assert.deepEqual(errors.map((e) => e.field), ["crc32", "chunks"]);
        assert.match(errors[1]!.message, /missing 1 of its 2 chunks \(1\)/);
        const sent = await rawPush(ncs[1]!, { id: 7, seq: 1 });
        assert.deepEqual([sent.deduped, sent.version], [false, 2], "the dropped push (9, 1) was never applied: it still can be");
      } finally {
        await shard!.close();
        await closeAll(ncs);
      }
    });
  });

  test("first chunks alone cannot exhaust a shard: beyond its limit of incomplete pushes one is refused (field pending) and whole pushes still apply", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 2);
      const errors: MessageError[] = [];
      const init = integers(keys);
      // Room for 12 incomplete pushes of this shard's range (MIN_PENDING is 8).
      const limit = 12;
      const [shard] = await startShards(ncs.slice(0, 1), job, init, { specHash: spec, pendingBytes: limit * 4 * keys, onError: (e) => errors.push(e as MessageError) });
      try {
        const first = (id: number) => {
          const meta: RequestMeta = { v: PS_PROTOCOL_VERSION, job, spec, from: "mallory", worker: 9, begin: 0, end: 100, id, seq: id };
          const frames = encodeFrames(float32Bytes(new Float32Array(100).fill(1)), { kind: "f32", sender: 9, specTag: specTag(spec), step: id, seq: id }, 256);
          return { meta, frame: frames[0]! };
        };
        for (let id = 1; id <= limit; id++) {
          const { meta, frame } = first(id);
          ncs[1]!.publish(shardSubjects(job, 0).push, frame, { headers: metaHeaders(meta) });
        }
        await ncs[1]!.flush();
        const { meta, frame } = first(limit + 1);
        const reply = await ncs[1]!.request(shardSubjects(job, 0).push, frame, { headers: metaHeaders(meta), timeout: 5_000 });
        const refused = readMeta(reply.headers, reply.subject, job) as unknown as ReplyMeta;
        assert.deepEqual([refused.error?.field, refused.error?.sender], ["pending", "mallory"]);
        assert.equal(shard!.version, 0, "nothing applied");
        assert.ok(errors.some((e) => e.field === "pending"));
      } finally {
        await shard!.close();
        await closeAll(ncs);
      }
    });
  });

  test("a client or a shard with another spec hash is refused; a restarted shard with another spec refuses pushes", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 4);
      const init = integers(keys);
      const shards = await startShards(ncs.slice(0, 2), job, init, { specHash: spec });
      const clients: ShardedParameterClient[] = [];
      try {
        await assert.rejects(
          ShardedParameterClient.connect({ job, shards: 2, keys, connection: ncs[2]!, worker: 1, specHash: "spec-b" }),
          (e: unknown) => e instanceof ParameterServerError && e.reason === "mismatch" && e.field === "spec" && e.op === "info" && /shard 0/.test(e.message),
        );
        await assert.rejects(
          ShardedParameterClient.connect({ job, shards: 2, keys: keys + 1, connection: ncs[2]!, worker: 1, specHash: spec }),
          (e: unknown) => e instanceof ParameterServerError && e.reason === "mismatch" && e.field === "keys",
        );
        await assert.rejects(
          ParameterShard.start({ job, shard: 0, shards: 2, connection: ncs[3]!, init, specHash: spec, train: PLAIN_SGD }),
          (e: unknown) => e instanceof ParameterServerError && e.op === "start" && e.field === "shard" && /already served/.test(e.message),
        );
        // Shard 1 goes away; a shard 1 with another spec hash is refused by shard 0.
        await shards[1]!.close();
        await assert.rejects(
          ParameterShard.start({ job, shard: 1, shards: 2, connection: ncs[3]!, init, specHash: "spec-b", train: PLAIN_SGD }),
          (e: unknown) => e instanceof ParameterServerError && e.op === "start" && e.field === "spec" && e.shard === 0 && /spec-b/.test(e.message),
        );
        shards[1] = await ParameterShard.start({ job, shard: 1, shards: 2, connection: ncs[3]!, init, specHash: spec, train: PLAIN_SGD, onError: () => {} });
        const client = await ShardedParameterClient.connect({ job, shards: 2, keys, connection: ncs[2]!, worker: 1, specHash: spec });
        clients.push(client);
        // Shard 0 is replaced behind the client's back by one of another spec (and keys) that its peers would refuse.
        await shards[0]!.close();
        shards[0] = await ParameterShard.start({ job, shard: 0, shards: 1, connection: ncs[0]!, init, specHash: "spec-c", train: PLAIN_SGD, onError: () => {} });
        const before = shards[0]!.values();
        await assert.rejects(client.push(new Float32Array(keys).fill(1)), (e: unknown) => {
          assert.ok(e instanceof ParameterServerError, String(e));
          assert.deepEqual([e.reason, e.op, e.shard, e.field], ["refused", "push", 0, "spec"]);
          assert.deepEqual(e.range, shardRanges(keys, 2)[0]);
          assert.match(e.message, /push of keys \[0, 96\) was refused by shard 0 of job "bad" \(spec\).*peer "worker 1"/);
          return true;
        });
        assert.deepEqual([shards[0]!.version, shards[0]!.values()], [0, before]);
        await assert.rejects(client.push(new Float32Array(10), { begin: 0, end: keys + 1 }), InvalidArgumentError);
        await assert.rejects(client.push(new Float32Array(10)), InvalidArgumentError, "grads shorter than the key space");
      } finally {
        await closeEverything(clients, shards, ncs);
      }
    });
  });

  test("a push whose replies never come fails after the last attempt, naming the shard, range and cause", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 3);
      const shards = await startShards(ncs.slice(0, 2), "lost", integers(keys));
      let clients: ShardedParameterClient[] = [];
      try {
        clients = await connectClients(ncs.slice(2), "lost", 2, keys, {
          requestTimeoutMs: 300,
          attempts: 3,
          faults: { dropReply: ({ shard, op }) => shard === 1 && op === "push" },
        });
        const client = clients[0]!;
        const started = Date.now();
        await assert.rejects(client.push(new Float32Array(keys).fill(1)), (e: unknown) => {
          assert.ok(e instanceof ParameterServerError, String(e));
          assert.deepEqual([e.reason, e.shard, e.attempts, e.range], ["timeout", 1, 3, { begin: 96, end: 200 }]);
          assert.match(e.message, /push of keys \[96, 200\) to shard 1 of job "lost" failed after 3 attempts: no reply within 300 ms/);
          return true;
        });
        assert.ok(Date.now() - started < 10_000);
        assert.deepEqual(shards.map((s) => s.version), [1, 1], "each shard applied the push once");
        assert.equal(shards[1]!.stats.deduped, 2, "the retries were acknowledged without applying");
        await shards[1]!.close();
        await assert.rejects(client.pull(new Float32Array(keys)), (e: unknown) => e instanceof ParameterServerError && e.reason === "no-responders" && e.shard === 1);
      } finally {
        await closeEverything(clients, shards, ncs);
      }
    });
  });
});

/** A spawned shard: its output so far and its exit. */
function spawnShard(config: ShardConfig): { process: ChildProcess; stdout(): string; stderr(): string; exited: Promise<number | null> } {
  const script = fileURLToPath(new URL("./fixtures/ps-shard.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
  let [stdout, stderr] = ["", ""];
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

test("a shard in a child process and one in this process serve two workers: the invariant holds", TIMEOUT, async () => {
  await withServer(async (server) => {
    const [keys, W, R] = [1000, 2, 4];
    const job = "child";
    const child = spawnShard({ url: server.url, job, shard: 0, shards: 2, keys, specHash: "h", limitMs: 60_000 });
    const ncs = await connectAll(server.url, 1 + W);
    let shards: ParameterShard[] = [];
    let clients: ShardedParameterClient[] = [];
    try {
      const deadline = Date.now() + 30_000;
      while (!child.stdout().includes("ready\n")) {
        if (Date.now() > deadline) assert.fail(`the child shard did not start: ${child.stderr()}`);
        await sleep(20);
      }
      shards = [await ParameterShard.start({ job, shard: 1, shards: 2, connection: ncs[0]!, init: integers(keys), specHash: "h", train: PLAIN_SGD })];
      clients = await connectClients(ncs.slice(1), job, 2, keys, { specHash: "h" });
      const v = Float32Array.from({ length: keys }, (_, i) => (i % 3) - 1);
      await Promise.all(clients.map((c) => Promise.all(Array.from({ length: R }, () => c.push(v)))));
      const into = new Float32Array(keys);
      assert.equal(await clients[0]!.pull(into), R * W);
      const init = integers(keys);
      for (let i = 0; i < keys; i++) assert.equal(into[i], init[i]! - R * W * v[i]!, `key ${i}`);
      ncs[0]!.publish(stopSubject(job));
      assert.equal(await child.exited, 0, child.stderr());
      const stats = JSON.parse(child.stdout().trim().split("\n").pop()!) as { updates: number; pulls: number };
      assert.deepEqual([stats.updates, stats.pulls], [R * W, 1]);
    } finally {
      if (child.process.exitCode === null) child.process.kill("SIGKILL");
      await closeEverything(clients, shards, ncs);
    }
  });
});
