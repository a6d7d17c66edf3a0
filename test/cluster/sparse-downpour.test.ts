// A sparse layer over parameter-server shards (issue 12), on a real nats-server: rows pulled before any push are
// their (seed, key) initial values, a push steps each row with Adagrad once per (worker, seq), requests a shard
// must not take are refused by field; the client's hot-row cache reuses a row for `staleness` clocks, then pulls it
// again; Downpour over 2 shards and 2 tasks trains a sparse MLP on click-log-like rows far below the constant
// predictor's log-loss, and a 2^27 x 8 sparse layer (4 GiB, beyond a 32-bit WebAssembly memory) trains over 4
// shards from workers whose arenas are capped at 256 MiB, the shards holding only the rows pushed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SparseRowClient } from "../../src/cluster/sparse-client.js";
import { evaluateSparseDownpour, sparseSpecHash, startSparseJobShard, trainSparseDownpour } from "../../src/cluster/sparse-downpour.js";
import { ROWS_PROTOCOL_VERSION, type RowReplyMeta, rowHeaders, rowOwner, rowSubjects, SparseRowError } from "../../src/cluster/sparse-protocol.js";
import { initialRow } from "../../src/cluster/sparse-rows.js";
import { SparseRowServer } from "../../src/cluster/sparse-shard.js";
import { Kernels } from "../../src/core/kernels.js";
import { type SparseDataset, sparseRows } from "../../src/data/sparse.js";
import { SynthCtr, synthCtrDataset } from "../../src/data/synth-ctr.js";
import { MemoryLimitError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import { resolveSpec } from "../../src/model/spec.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";

const TIMEOUT = { timeout: 180_000 };
const ROWS = { units: 4, seed: 7, initScale: 0.1, learningRate: 0.5, epsilon: 1e-8 };
const FEATURES = 1000;

let server: NatsServer;
const pool = new ClientPool(() => server.url);
before(async () => {
  server = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
});
after(async () => {
  await pool.close();
  await server?.stop();
});

/** The log-loss of always predicting the set's click rate. */
function constantLogLoss(data: SparseDataset): number {
  const rate = data.y.reduce((s, v) => s + v, 0) / data.size;
  return -(rate * Math.log(rate) + (1 - rate) * Math.log(1 - rate));
}

const initial = (key: number) => {
  const row = new Float32Array(ROWS.units);
  initialRow(ROWS.seed, key, ROWS.units, ROWS.initScale, row, 0);
  return row;
};

async function rowServers(job: string, shards: number, onError: (e: Error) => void = () => {}): Promise<SparseRowServer[]> {
  const [nc] = await pool.open(1);
  return Promise.all(Array.from({ length: shards }, (_, shard) => SparseRowServer.start({ job, shard, shards, features: FEATURES, connection: nc!, rows: ROWS, specHash: "h", onError })));
}

describe("sparse rows over NATS", () => {
  test("pulls give initial rows; a push is one Adagrad step per row, applied once per (worker, seq); bad requests are refused by field", TIMEOUT, async () => {
    const errors: Error[] = [];
    const servers = await rowServers("rows-a", 2, (e) => errors.push(e));
    const [nc] = await pool.open(1);
    const client = await SparseRowClient.connect({ job: "rows-a", shards: 2, features: FEATURES, units: 4, connection: nc!, worker: 3, specHash: "h", staleness: 0 });
    const keys = Int32Array.of(0, 17, 999, 500, 3);
    assert.ok(new Set(Array.from(keys, (k) => rowOwner(k, 2))).size === 2, "the keys span both shards");
    const before = new Float32Array(keys.length * 4);
    await client.pull(keys, before);
    keys.forEach((key, i) => {
      assert.deepEqual(before.subarray(i * 4, i * 4 + 4), initial(key));
    });
    const grads = Float32Array.from({ length: keys.length * 4 }, (_, i) => (i % 3) - 1);
    await client.push(keys, grads);
    const after1 = new Float32Array(keys.length * 4);
    await client.pull(keys, after1);
    for (let i = 0; i < grads.length; i++) {
      const g = grads[i]!;
      const expected = Math.fround(before[i]! - (ROWS.learningRate * g) / (Math.sqrt(g * g) + ROWS.epsilon));
      assert.ok(Math.abs(after1[i]! - expected) < 1e-6, `value ${i}: ${after1[i]} vs ${expected}`);
    }
    assert.equal(servers[0]!.stats.rows + servers[1]!.stats.rows, keys.length, "only pushed rows exist");

    // A retry (same worker and seq) is acknowledged without applying; the rows stay as they were.
    const key = Int32Array.of(keys[0]!);
    const shard = rowOwner(key[0]!, 2);
    const body = new Uint8Array(4 + 16);
    new Int32Array(body.buffer, 0, 1).set(key);
    new Float32Array(body.buffer, 4, 4).fill(1);
    const send = (meta: Record<string, unknown>, data = body) =>
      nc!.request(rowSubjects("rows-a", shard).push, data, { timeout: 5000, headers: rowHeaders({ v: ROWS_PROTOCOL_VERSION, job: "rows-a", spec: "h", from: "raw", worker: 9, id: 1, count: 1, seq: 1, ...meta } as never) });
    const replyOf = (msg: { headers?: { get(k: string): string } }) => JSON.parse(msg.headers!.get("Downpour-Ps")) as RowReplyMeta;
    assert.equal(replyOf(await send({})).deduped, undefined);
    assert.equal(replyOf(await send({ id: 2 })).deduped, true);
    const once = new Float32Array(4);
    await client.pull(key, once);
    for (let j = 0; j < 4; j++) assert.ok(once[j]! < after1[j]! - 0.1, "applied once (one more step down)");
    assert.ok(Math.abs(once[0]! - (after1[0]! - ROWS.learningRate / Math.sqrt(grads[0]! ** 2 + 1))) < 1e-5, "exactly one step");

    const other = Array.from({ length: FEATURES }, (_, k) => k).find((k) => rowOwner(k, 2) !== shard)!;
    const wrongShard = new Uint8Array(body);
    new Int32Array(wrongShard.buffer, 0, 1)[0] = other;
    for (const [meta, data, field] of [[{ seq: 5 }, wrongShard, "key"], [{ spec: "other", seq: 6 }, body, "spec"], [{ seq: 7, count: 2 }, body, "length"], [{ seq: 0 }, body, "seq"]] as const) {
      const reply = replyOf(await send(meta, data));
      assert.equal(reply.error?.field, field, JSON.stringify(reply));
    }
    assert.equal(errors.length, 4);
    const outOfRange = client.pull(Int32Array.of(FEATURES), new Float32Array(4));
    await assert.rejects(outOfRange, /key 1000 at position 0 is outside \[0, 1000\)/);
    for (const s of servers) await s.close();
  });

  test("a client whose shape differs from the shards' is refused at connect, naming the field", TIMEOUT, async () => {
    const servers = await rowServers("rows-b", 1);
    const [nc] = await pool.open(1);
    await assert.rejects(SparseRowClient.connect({ job: "rows-b", shards: 1, features: FEATURES, units: 5, connection: nc!, worker: 1, specHash: "h" }), (e: unknown) => {
      assert.ok(e instanceof SparseRowError);
      assert.equal(e.reason, "mismatch");
      assert.equal(e.field, "units");
      return true;
    });
    await assert.rejects(SparseRowClient.connect({ job: "rows-b", shards: 2, features: FEATURES, units: 4, connection: nc!, worker: 1, specHash: "h", connectTimeoutMs: 500 }), SparseRowError);
    for (const s of servers) await s.close();
  });

  test("the hot-row cache answers for `staleness` clocks, then pulls the row again", TIMEOUT, async () => {
    const servers = await rowServers("rows-c", 2);
    const [a, b] = await pool.open(2);
    const reader = await SparseRowClient.connect({ job: "rows-c", shards: 2, features: FEATURES, units: 4, connection: a!, worker: 1, specHash: "h", staleness: 2 });
    const writer = await SparseRowClient.connect({ job: "rows-c", shards: 2, features: FEATURES, units: 4, connection: b!, worker: 2, specHash: "h", staleness: 0 });
    const keys = Int32Array.of(42, 43);
    const first = new Float32Array(8);
    await reader.pull(keys, first);
    await writer.push(keys, new Float32Array(8).fill(1));
    const read = async () => {
      const out = new Float32Array(8);
      await reader.pull(keys, out);
      return out;
    };
    reader.tick();
    reader.tick();
    assert.deepEqual(await read(), first, "2 clocks later: the cached (stale) rows");
    assert.equal(reader.stats.cacheHits, 2);
    reader.tick();
    const fresh = await read();
    assert.ok(fresh.every((v, i) => v < first[i]! - 0.1), "3 clocks later: pulled again, with the push in it");
    assert.equal(reader.stats.cacheHits, 2);
    assert.equal(reader.stats.rowsPulled, 4);
    for (const s of servers) await s.close();
  });
});

describe("sparse Downpour", () => {
  test("2 shards x 2 tasks train a sparse MLP (2^14 -> 16 -> 1) far below the constant's held-out log-loss", TIMEOUT, async () => {
    const spec = { inputs: 2 ** 14, sparseInputs: true as const, seed: 1, layers: [{ units: 16, activation: "relu" as const }, { units: 1, activation: "sigmoid" as const }] };
    const job = { job: "sparse-mlp", shards: 2, spec, learningRate: 0.02 };
    const [nc] = await pool.open(1);
    const shards = await Promise.all([0, 1].map((shard) => startSparseJobShard({ ...job, shard, connection: nc! })));
    const gen = new SynthCtr({ features: 2 ** 14, seed: 3 });
    const train = synthCtrDataset(gen, 0, 30_000);
    const held = synthCtrDataset(gen, 30_000, 5_000);
    const before = await evaluateSparseDownpour({ ...job, connection: nc!, data: held });
    const results = await Promise.all([0, 1].map((task) => trainSparseDownpour({ ...job, connection: nc!, task, tasks: 2, data: sparseRows(train, task * 15_000, (task + 1) * 15_000), epochs: 2 })));
    const heldOut = await evaluateSparseDownpour({ ...job, connection: nc!, data: held });
    const constant = constantLogLoss(held);
    // Measured: 0.462 held out on Node 20, 24 and Bun against the constant's 0.505 (0.689 before training); a local
    // fit of the same MLP and settings reaches 0.461.
    assert.ok(before.loss > constant, `untrained ${before.loss}`);
    assert.ok(heldOut.loss < constant - 0.03, `held-out log-loss ${heldOut.loss}, constant ${constant}`);
    for (const r of results) {
      assert.equal(r.examples, 30_000);
      // The mean training loss of the last epoch, summed over 4 concurrent lanes (0.39 measured; lanes losing each
      // other's sums gave 0.1).
      assert.ok(r.epochs.at(-1)!.loss > 0.3 && r.epochs.at(-1)!.loss < constant, `training loss ${r.epochs.at(-1)!.loss}`);
      assert.ok(r.bytesPerExample.pulled > 0 && r.bytesPerExample.pushed > 0);
      assert.ok(r.rows.cacheHits > 0, "frequent features come from the cache");
    }
    const existing = shards.reduce((n, s) => n + s.rows.stats.rows, 0);
    assert.ok(existing > 1000 && existing <= 2 ** 14);
    for (const s of shards) await s.close();
  });

  test("a 2^27 x 8 sparse layer (4 GiB) trains over 4 shards from workers capped at 256 MiB", TIMEOUT, async () => {
    const features = 2 ** 27;
    const spec = resolveSpec({ inputs: features, sparseInputs: true, seed: 2, layers: [{ units: 8, activation: "relu" }, { units: 1, activation: "sigmoid" }] });
    const job = { job: "sparse-huge", shards: 4, spec, learningRate: 0.05 };
    const cap = 256 * 1024 * 1024;
    const kernels = await Promise.all([0, 1].map(() => Kernels.load({ maxBytes: cap })));
    assert.throws(() => Network.create(kernels[0]!, spec), MemoryLimitError, "the whole layer does not fit a worker");
    const [nc] = await pool.open(1);
    const shards = await Promise.all([0, 1, 2, 3].map((shard) => startSparseJobShard({ ...job, shard, connection: nc! })));
    const gen = new SynthCtr({ features, seed: 4 });
    const train = synthCtrDataset(gen, 0, 40_000);
    const held = synthCtrDataset(gen, 40_000, 5_000);
    const results = await Promise.all([0, 1].map((task) => trainSparseDownpour({ ...job, connection: nc!, task, tasks: 2, data: sparseRows(train, task * 20_000, (task + 1) * 20_000), kernels: kernels[task]! })));
    const heldOut = await evaluateSparseDownpour({ ...job, connection: nc!, data: held, kernels: kernels[0]! });
    // Measured: 0.480 on Node 20, 24 and Bun against the constant's 0.502, with 104 000 rows on each shard.
    assert.ok(heldOut.loss < constantLogLoss(held) - 0.01, `held-out ${heldOut.loss}, constant ${constantLogLoss(held)}`);
    for (const r of results) assert.ok(r.wasmMemoryBytes <= cap + 16 * 1024 * 1024, `worker memory ${r.wasmMemoryBytes}`);
    const existing = shards.map((s) => s.rows.stats.rows);
    assert.ok(existing.every((n) => n > 0), "every shard holds rows");
    assert.ok(existing.reduce((a, b) => a + b, 0) < features / 100, `rows created ${existing}`);
    assert.notEqual(sparseSpecHash(job), sparseSpecHash({ ...job, shards: 2 }));
    for (const s of shards) await s.close();
  });
});
