// The cluster gradient exchange in one process (MemoryChannelGroup, no NATS): the channel's Hama semantics; for 1 to 5
// peers, keys 1 to 1000 and both combine modes, the combined gradient and stats are MemoryExchangeGroup's, bit for
// bit, on every peer, with the bytes of stepTraffic; f16 within its documented bound at half the bytes; epochBatches
// takes the minimum; disagreeing peers and failed channels reject with named errors; trainers on 1, 2 and 3 peers'
// parts of every batch end with the weights of one trainer on whole batches (SGD and Adam, 0 and 1 threads).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { BspPeer } from "../../src/cluster/bsp.js";
import { BspChannel } from "../../src/cluster/bsp-channel.js";
import { type ChannelMessage, MemoryChannelGroup, type PeerChannel } from "../../src/cluster/channel.js";
import { type CombineMode, stepTraffic } from "../../src/cluster/combine.js";
import { ClusterGradientExchange, type ClusterExchangeOptions, ExchangeError } from "../../src/cluster/gradient-exchange.js";
import { Kernels } from "../../src/core/kernels.js";
import { toFloat16Bits } from "../../src/core/reference/convert.js";
import { holdOut, selectRows, type Dataset } from "../../src/data/dataset.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { InvalidArgumentError, InvalidStateError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import type { NetworkSpec } from "../../src/model/spec.js";
import type { BatchStats } from "../../src/train/exchange.js";
import { MemoryExchangeGroup } from "../../src/train/memory-exchange.js";
import type { TrainOptions } from "../../src/train/options.js";
import { LocalTrainer } from "../../src/train/trainer.js";
import { startNatsServer } from "../support/nats.js";
import { mulberry32 } from "../../src/util/random.js";

const TIMEOUT = { timeout: 60_000 };
const MODES: readonly CombineMode[] = ["master", "allreduce"];

const random = mulberry32;

function gradients(keys: number, peers: number, seed: number): Float32Array[] {
  const next = random(seed);
  return Array.from({ length: peers }, () => Float32Array.from({ length: keys }, () => (next() - 0.5) * 10 ** Math.floor(next() * 5 - 3)));
}

function exchanges(peers: number, options: ClusterExchangeOptions): ClusterGradientExchange[] {
  const group = new MemoryChannelGroup(peers);
  return group.channels.map((channel) => new ClusterGradientExchange(channel, options));
}

/** What MemoryExchangeGroup makes of the same gradients (copies) and stats. */
async function reference(grads: Float32Array[], stats: BatchStats[]): Promise<{ grads: Float32Array[]; combined: BatchStats[] }> {
  const group = new MemoryExchangeGroup(grads.length);
  const copies = grads.map((g) => g.slice());
  const combined = await Promise.all(copies.map((g, p) => group.member(p).allreduce(g, stats[p]!, 0)));
  return { grads: copies, combined };
}

/** Every peer's allreduce of copies of `grads`, at `step`. */
async function allreduce(members: ClusterGradientExchange[], grads: Float32Array[], stats: BatchStats[], step = 0) {
  const copies = grads.map((g) => g.slice());
  const combined = await Promise.all(members.map((m, p) => m.allreduce(copies[p]!, stats[p]!, step)));
  return { grads: copies, combined };
}

const statsOf = (peers: number): BatchStats[] => Array.from({ length: peers }, (_, p) => ({ loss: 0.25 + p * 1.5, rows: 1 + ((p * 5) % 7) }));

const f16Value = (x: number): number => {
  const h = toFloat16Bits(x);
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
};

describe("MemoryChannelGroup: Hama's semantics", () => {
  test("messages of superstep k arrive after the k-th sync, by sender then send order; self-messages; unread ones dropped", TIMEOUT, async () => {
    const group = new MemoryChannelGroup(3);
    const [a, b, c] = [group.channel(0), group.channel(1), group.channel(2)];
    c.send(1, { n: 1 });
    a.send(1, new Float32Array([1, 2]));
    b.send(1, { self: true });
    a.send(1, new Uint16Array([7]));
    a.send(0, { to: "myself" });
    assert.deepEqual([...b.messages()], [], "nothing is readable before the sync");
    await Promise.all([a.sync(), b.sync(), c.sync()]);
    const got = [...b.messages()].map((m: ChannelMessage) => [m.from, m.kind, m.kind === "value" ? m.data : [...m.data]]);
    assert.deepEqual(got, [
      [0, "f32", [1, 2]],
      [0, "f16", [7]],
      [1, "value", { self: true }],
      [2, "value", { n: 1 }],
    ]);
    assert.deepEqual([...a.messages()].map((m) => m.data), [{ to: "myself" }]);
    await Promise.all([a.sync(), b.sync(), c.sync()]);
    assert.deepEqual([...b.messages()], [], "the last superstep's messages were dropped at this sync");
  });

  test("send copies before it returns; bad peers, payloads and overlapping calls are refused; abort fails every peer", TIMEOUT, async () => {
    const group = new MemoryChannelGroup(2);
    const [a, b] = group.channels as [ReturnType<typeof group.channel>, ReturnType<typeof group.channel>];
    const data = new Float32Array([1, 2, 3]);
    const value = { list: [1, 2] };
    a.send(1, data);
    a.send(1, value);
    data[0] = 99;
    value.list[0] = 99;
    await Promise.all([a.sync(), b.sync()]);
    assert.deepEqual([...b.messages()].map((m) => (m.kind === "f32" ? [...m.data] : m.data)), [[1, 2, 3], { list: [1, 2] }]);
    assert.throws(() => a.send(2, {}), InvalidArgumentError);
    assert.throws(() => a.send(1, new Float64Array(1) as unknown as Float32Array), /Float32Array, a Uint16Array \(f16 bits\) or a plain object/);
    assert.throws(() => a.send(1, [1, 2] as unknown as { x: number }), InvalidArgumentError);
    const pending = a.sync();
    assert.throws(() => a.send(1, {}), InvalidStateError);
    await assert.rejects(a.sync(), InvalidStateError);
    const boom = new Error("peer lost");
    group.abort(boom);
    await assert.rejects(pending, (e) => e === boom);
    await assert.rejects(b.sync(), (e) => e === boom);
    assert.throws(() => b.send(0, {}), (e) => e === boom);
  });
});

describe("ClusterGradientExchange", () => {
  test("1 to 5 peers, keys 1 to 1000, both modes: MemoryExchangeGroup's gradient and stats, bit for bit, on every peer", TIMEOUT, async () => {
    for (const combine of MODES) {
      for (const keys of [1, 3, 17, 257, 1000]) {
        for (let peers = 1; peers <= 5; peers++) {
          const label = `${combine} keys=${keys} peers=${peers}`;
          const grads = gradients(keys, peers, keys + 100 * peers);
          const stats = statsOf(peers);
          const want = await reference(grads, stats);
          const members = exchanges(peers, { combine });
          const got = await allreduce(members, grads, stats, 7);
          for (let p = 0; p < peers; p++) {
            assert.deepEqual(got.grads[p], want.grads[0], `${label}: peer ${p}'s gradient`);
            assert.deepEqual(got.combined[p], want.combined[0], `${label}: peer ${p}'s stats`);
            const s = members[p]!.stats;
            const traffic = stepTraffic(combine, keys, peers, p);
            assert.equal(s.bytesSent, 4 * traffic.sent, `${label}: peer ${p} sent ${s.bytesSent} bytes`);
            assert.equal(s.bytesReceived, 4 * traffic.received, `${label}: peer ${p} received ${s.bytesReceived} bytes`);
            assert.equal(s.supersteps, 2, label);
            assert.equal(s.steps, 1, label);
            const { steps: _steps, last, ...totals } = s;
            assert.deepEqual(totals, last, `${label}: after one step the totals are the step's`);
          }
        }
      }
    }
  });

  test("allreduce: no peer sends or receives more than 2 (peers - 1) / peers models per step (+ shard rounding)", TIMEOUT, async () => {
    const keys = 101_770; // the MNIST 784-128-10 parameter block's size, about
    for (let peers = 2; peers <= 5; peers++) {
      const members = exchanges(peers, {});
      const grads = gradients(keys, peers, peers);
      await allreduce(members, grads, statsOf(peers), 0);
      await allreduce(members, grads, statsOf(peers), 1);
      for (const [p, m] of members.entries()) {
        const bound = 4 * ((2 * (peers - 1) * keys) / peers + 16 * (peers - 1));
        assert.ok(m.stats.last.bytesSent <= bound, `peers=${peers}: peer ${p} sent ${m.stats.last.bytesSent} bytes, bound ${bound}`);
        assert.ok(m.stats.last.bytesReceived <= bound, `peers=${peers}: peer ${p} received ${m.stats.last.bytesReceived} bytes, bound ${bound}`);
        assert.ok(m.stats.last.bytesSent >= 0.99 * 4 * ((2 * (peers - 1) * keys) / peers), `peers=${peers}: peer ${p} sent too little`);
        assert.equal(m.stats.bytesSent, 2 * m.stats.last.bytesSent, "the totals add up the steps");
        assert.equal(m.stats.steps, 2);
      }
    }
  });

  test("f16: every peer gets f16(sum of w * f16(g)), within 2^-11 (sum w|g| + |g|) + 2^-24 of the f32 result, at half the bytes", TIMEOUT, async () => {
    const kernels = await Kernels.load();
    for (const combine of MODES) {
      for (const [keys, peers] of [[1000, 3], [257, 2], [17, 5], [4096, 1]] as const) {
        const label = `${combine} keys=${keys} peers=${peers}`;
        const grads = gradients(keys, peers, keys * peers);
        grads[0]![0] = 1e-7; // subnormal in f16
        const stats = statsOf(peers);
        const exact = await reference(grads, stats);
        const members = exchanges(peers, { combine, gradDtype: "f16", kernels });
        const got = await allreduce(members, grads, stats);
        const total = stats.reduce((n, s) => n + s.rows, 0);
        for (let p = 0; p < peers; p++) {
          assert.deepEqual(got.grads[p], got.grads[0], `${label}: peer ${p} differs from peer 0`);
          assert.deepEqual(got.combined[p], exact.combined[0], label);
          const traffic = stepTraffic(combine, keys, peers, p);
          assert.equal(members[p]!.stats.bytesSent, 2 * traffic.sent, label);
        }
        // Exactly: every contribution rounded to f16, summed in f32 in peer order, the sum rounded to f16.
        const plain = new Float32Array(keys);
        grads.forEach((g, q) => {
          for (let i = 0; i < keys; i++) plain[i]! += (stats[q]!.rows / total) * f16Value(g[i]!);
        });
        assert.deepEqual(got.grads[0], plain.map((v) => f16Value(v)), `${label}: not f16(sum of w * f16(g)) in peer order`);
        let rounded = 0;
        for (let i = 0; i < keys; i++) {
          const scale = grads.reduce((n, g, q) => n + (stats[q]!.rows / total) * Math.abs(g[i]!), 0);
          const want = exact.grads[0]![i]!;
          const bound = 2 ** -11 * (scale + Math.abs(want)) * 1.001 + 2 ** -24;
          const got0: number = got.grads[0]![i]!;
          assert.ok(Math.abs(got0 - want) <= bound, `${label} key ${i}: ${got0} vs ${want} (bound ${bound})`);
          assert.equal(got0, f16Value(got0), `${label} key ${i}: ${got0} is not an f16 value`);
          if (got0 !== want) rounded++;
        }
        assert.ok(rounded > 0, `${label}: nothing was rounded: is f16 used at all?`);
        for (const m of members) m.dispose();
      }
    }
  });

  test("epochBatches: every peer gets the smallest count (1 superstep)", TIMEOUT, async () => {
    for (const combine of MODES) {
      const members = exchanges(3, { combine });
      assert.deepEqual(await Promise.all(members.map((m, p) => m.epochBatches([5, 3, 7][p]!, 0))), [3, 3, 3]);
      assert.deepEqual(await Promise.all(members.map((m, p) => m.epochBatches([9, 9, 8][p]!, 1))), [8, 8, 8]);
      assert.equal(members[0]!.stats.supersteps, 2);
    }
    assert.equal(await exchanges(1, {})[0]!.epochBatches(4, 0), 4);
  });

  test("peers that disagree (mode, dtype, model size, step, epoch) reject with an ExchangeError naming the peer and field", TIMEOUT, async () => {
    const kernels = await Kernels.load();
    const cases: { name: string; options: [ClusterExchangeOptions, ClusterExchangeOptions]; keys?: [number, number]; steps?: [number, number]; field: RegExp }[] = [
      { name: "another mode", options: [{ combine: "master" }, { combine: "allreduce" }], field: /^(missing|length)$/ },
      { name: "another dtype", options: [{}, { gradDtype: "f16", kernels }], field: /^dtype$/ },
      { name: "another model size", options: [{}, {}], keys: [64, 80], field: /^keys$/ },
      { name: "another step", options: [{}, {}], steps: [3, 4], field: /^step$/ },
    ];
    for (const c of cases) {
      const group = new MemoryChannelGroup(2);
      const members = c.options.map((o, p) => new ClusterGradientExchange(group.channel(p), o));
      const keys = c.keys ?? [64, 64];
      const results = await Promise.allSettled(members.map((m, p) => m.allreduce(new Float32Array(keys[p]!).fill(p + 1), { loss: 1, rows: 2 }, c.steps?.[p] ?? 0)));
      const errors = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
      assert.ok(errors.length > 0, `${c.name}: nobody noticed`);
      for (const e of errors) {
        assert.ok(e instanceof ExchangeError, `${c.name}: ${e}`);
        assert.match(e.field, c.field, `${c.name}: field ${e.field} (${e.message})`);
        assert.match(e.message, /gradient exchange of peer \d, step \d/);
        assert.ok(e.peer === 0 || e.peer === 1);
      }
      // A failed exchange stays failed.
      const failed = members[results.findIndex((r) => r.status === "rejected")]!;
      await assert.rejects(failed.allreduce(new Float32Array(64), { loss: 0, rows: 1 }, 9), ExchangeError);
    }
    const group = new MemoryChannelGroup(2);
    const [a, b] = [0, 1].map((p) => new ClusterGradientExchange(group.channel(p)));
    const results = await Promise.allSettled([a!.epochBatches(3, 0), b!.epochBatches(3, 1)]);
    assert.ok(results.every((r) => r.status === "rejected" && r.reason instanceof ExchangeError && r.reason.field === "epoch"));
  });

  test("a failed channel rejects the step; overlapping calls and bad options are refused", TIMEOUT, async () => {
    const group = new MemoryChannelGroup(2);
    const a = new ClusterGradientExchange(group.channel(0));
    const step = a.allreduce(new Float32Array(8), { loss: 0, rows: 1 }, 0);
    await assert.rejects(a.allreduce(new Float32Array(8), { loss: 0, rows: 1 }, 1), InvalidStateError);
    const lost = new Error("peer 1 lost");
    group.abort(lost);
    await assert.rejects(step, (e) => e === lost);
    await assert.rejects(a.epochBatches(1, 0), (e) => e === lost, "the exchange stays failed");
    const channel = new MemoryChannelGroup(1).channel(0);
    assert.throws(() => new ClusterGradientExchange(channel, { combine: "ring" as CombineMode }), /combine must be "master" or "allreduce", got the string "ring"/);
    assert.throws(() => new ClusterGradientExchange(channel, { gradDtype: "bf16" as "f16" }), /gradDtype must be "f32" or "f16"/);
    assert.throws(() => new ClusterGradientExchange(channel, { gradDtype: "f16" }), /gradDtype "f16" needs kernels/);
    assert.throws(() => new ClusterGradientExchange({} as typeof channel), /channel must be a PeerChannel/);
    const ok = new ClusterGradientExchange(channel);
    assert.equal(ok.combine, "allreduce", "the documented default");
    assert.equal(ok.gradDtype, "f32", "the documented default");
    await assert.rejects(ok.allreduce([1, 2] as unknown as Float32Array, { loss: 0, rows: 1 }, 0), /grads must be a Float32Array/);
    await assert.rejects(ok.allreduce(new Float32Array(2), { loss: 0, rows: -1 }, 0), /local must be/);
    await assert.rejects(ok.epochBatches(1.5, 0), /batches must be an integer/);
    const grads = new Float32Array([1, 2]);
    assert.deepEqual(await ok.allreduce(grads, { loss: 3, rows: 2 }, 0), { loss: 3, rows: 2 }, "bad arguments leave the exchange usable");
    assert.deepEqual([...grads], [1, 2]);
  });

  test("a 1M-float gradient over 2 in-process peers: the time of one allreduce (f32 and f16, both modes)", TIMEOUT, async (t) => {
    const kernels = await Kernels.load();
    const keys = 1 << 20;
    const grads = gradients(keys, 2, 1);
    for (const combine of MODES) {
      for (const gradDtype of ["f32", "f16"] as const) {
        const members = exchanges(2, { combine, gradDtype, kernels });
        const stats = statsOf(2);
        const buffers = grads.map((g) => g.slice()); // the mean of means stays in range: reused step after step
        const step = (s: number) => Promise.all(members.map((m, p) => m.allreduce(buffers[p]!, stats[p]!, s)));
        await step(0); // warm up (allocations, JIT)
        const steps = 5;
        const started = performance.now();
        for (let s = 1; s <= steps; s++) await step(s);
        const ms = (performance.now() - started) / steps;
        const last = members[0]!.stats.last;
        t.diagnostic(`${combine} ${gradDtype}: ${ms.toFixed(2)} ms per step (peer 0: encode ${last.encodeMs.toFixed(2)} ms, reduce ${last.reduceMs.toFixed(2)} ms, wait ${last.waitMs.toFixed(2)} ms, ${(last.bytesSent / 2 ** 20).toFixed(2)} MiB sent)`);
        assert.ok(ms < 5_000, `${ms} ms per step`);
        for (const m of members) m.dispose();
      }
    }
  });
});

// ---- trainers joined by the exchange --------------------------------------------------------------------------

const SPEC: NetworkSpec = {
  inputs: 12,
  layers: [{ units: 16, activation: "relu" }, { units: 9, activation: "tanh" }, { units: 4, activation: "softmax" }],
  seed: 4,
};
const blobs = syntheticClassification({ size: 1200, features: 12, classes: 4, seed: 9 });
const { train } = holdOut(blobs, 200);
const BATCH = 50;

/** Rows per peer of each whole batch: contiguous parts, the larger first (50 over 3 peers: 17, 17, 16). */
function partSizes(peers: number): number[] {
  return Array.from({ length: peers }, (_, p) => Math.floor(BATCH / peers) + (p < BATCH % peers ? 1 : 0));
}

/** Peer p's part of every mini-batch, in order, so that its batch b (of partSizes()[p] rows) is part of batch b. */
function parts(data: Dataset, peers: number, p: number): Dataset {
  const sizes = partSizes(peers);
  const offset = sizes.slice(0, p).reduce((a, b) => a + b, 0);
  const rows: number[] = [];
  for (let first = 0; first < data.size; first += BATCH) {
    for (let r = offset; r < offset + sizes[p]! && first + r < data.size; r++) rows.push(first + r);
  }
  return selectRows(data, rows);
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

const kernelsPromise = Kernels.load({ shared: true });
const wholeRuns = new Map<string, Promise<Float32Array>>();

/** The parameters of one trainer on whole batches (computed once per options). */
function wholeRun(options: TrainOptions): Promise<Float32Array> {
  const key = JSON.stringify(options);
  let run = wholeRuns.get(key);
  if (!run) {
    run = (async () => {
      const network = Network.create(await kernelsPromise, SPEC);
      const trainer = await LocalTrainer.create(network, train, { ...options, batchSize: BATCH });
      await trainer.train();
      await trainer.close();
      const params = network.params.block.toArray();
      network.dispose();
      return params;
    })();
    wholeRuns.set(key, run);
  }
  return run;
}

/** Trainers on each peer's parts of every batch, joined by exchanges over `channels` (in-process by default). */
async function trainPeers(peers: number, options: TrainOptions, exchange: ClusterExchangeOptions, channels: readonly PeerChannel[] = new MemoryChannelGroup(peers).channels) {
  const kernels = await kernelsPromise;
  const members = channels.map((channel) => new ClusterGradientExchange(channel, { kernels, ...exchange }));
  const networks = members.map(() => Network.create(kernels, SPEC));
  const sizes = partSizes(peers);
  const trainers = await Promise.all(
    networks.map((network, p) => LocalTrainer.create(network, parts(train, peers, p), { ...options, batchSize: sizes[p]! }, { exchange: members[p]! })),
  );
  const reports = await Promise.all(trainers.map((t) => t.train()));
  await Promise.all(trainers.map((t) => t.close()));
  const params = networks.map((n) => n.params.block.toArray());
  for (const n of networks) n.dispose();
  for (const m of members) m.dispose();
  return { params, reports, members };
}

describe("trainers joined by ClusterGradientExchange over MemoryChannelGroup", () => {
  for (const threads of [0, 1]) {
    for (const optimizer of ["sgd", "adam"] as const) {
      const options: TrainOptions = { mode: "sync", epochs: 3, shuffle: false, threads, optimizer, learningRate: optimizer === "adam" ? 0.01 : 0.1, portion: 6 };
      for (const combine of MODES) {
        test(`1, 2 and 3 peers (${combine}, ${optimizer}, ${threads} threads each) end with the weights of one trainer on whole batches`, TIMEOUT, async () => {
          const whole = await wholeRun(options);
          for (const peers of [1, 2, 3]) {
            const { params, reports, members } = await trainPeers(peers, options, { combine });
            for (let p = 1; p < peers; p++) assert.deepEqual(params[p], params[0], `${peers} peers: peer ${p}'s weights differ from peer 0's`);
            const diff = maxDifference(params[0]!, whole);
            assert.ok(diff <= 1e-5, `${peers} peers differ from the single trainer by ${diff}`);
            // Each peer averages the same combined batch losses over its own batch sizes: equal up to rounding.
            for (const r of reports) assert.ok(Math.abs(r[2]!.loss - reports[0]![2]!.loss) < 1e-12, "peers report different combined losses");
            const keys = whole.length;
            for (const [p, m] of members.entries()) {
              assert.equal(m.stats.steps, 3 * 20, "one step per mini-batch");
              assert.equal(m.stats.bytesSent, 60 * 4 * stepTraffic(combine, keys, peers, p).sent, `${peers} peers: peer ${p}'s bytes`);
            }
          }
        });
      }
    }
  }

  test("f16 gradients: 2 and 3 peers stay identical and end within 1e-3 of the f32 weights (SGD, 3 epochs)", TIMEOUT, async () => {
    const options: TrainOptions = { mode: "sync", epochs: 3, shuffle: false, threads: 0, optimizer: "sgd", learningRate: 0.1, portion: 6 };
    const whole = await wholeRun(options);
    for (const combine of MODES) {
      for (const peers of [2, 3]) {
        const { params, members } = await trainPeers(peers, options, { combine, gradDtype: "f16" });
        for (let p = 1; p < peers; p++) assert.deepEqual(params[p], params[0], `${combine} ${peers} peers: peer ${p} differs`);
        const diff = maxDifference(params[0]!, whole);
        assert.ok(diff > 0 && diff <= 1e-3, `${combine} ${peers} peers, f16: ${diff} from the f32 weights`);
        assert.equal(members[0]!.stats.bytesSent, 60 * 2 * stepTraffic(combine, whole.length, peers, 0).sent);
      }
    }
  });

  test("peers with different split sizes run the smaller batch count", TIMEOUT, async () => {
    const kernels = await kernelsPromise;
    const group = new MemoryChannelGroup(2);
    const data = [selectRows(train, Array.from({ length: 300 }, (_, i) => i)), selectRows(train, Array.from({ length: 500 }, (_, i) => 300 + i))];
    const networks = data.map(() => Network.create(kernels, SPEC));
    const trainers = await Promise.all(
      networks.map((n, p) => LocalTrainer.create(n, data[p]!, { mode: "sync", epochs: 2, batchSize: 20, threads: 0 }, { exchange: new ClusterGradientExchange(group.channel(p)) })),
    );
    const reports = await Promise.all(trainers.map((t) => t.train()));
    await Promise.all(trainers.map((t) => t.close()));
    assert.deepEqual(reports.map((r) => r[1]!.iterations), [30, 30]);
    assert.deepEqual(networks[0]!.params.block.toArray(), networks[1]!.params.block.toArray());
    for (const n of networks) n.dispose();
  });
});

// ---- over a real nats-server ------------------------------------------------------------------------------------

/** `n` BSP peers of `job` on `url`, one connection each (as separate processes would have), as channels. */
async function natsPeers(url: string, job: string, n: number, connections: NatsConnection[], peers: BspPeer[]): Promise<BspChannel[]> {
  const opened = await Promise.all(Array.from({ length: n }, () => connect({ servers: url, timeout: 5_000 })));
  connections.push(...opened);
  const joined = await Promise.all(
    opened.map((connection, index) =>
      BspPeer.join({ job, peers: n, name: `peer-${index}`, index, connection, joinTimeoutMs: 10_000, barrierTimeoutMs: 20_000, onError: (e) => assert.fail(`peer ${index}: ${e.message}`) }),
    ),
  );
  peers.push(...joined);
  return joined.map((peer) => new BspChannel(peer));
}

describe("ClusterGradientExchange over NATS (BspChannel, 2 peers in one process)", () => {
  test("both modes: the weights of one trainer on whole batches; f16 and f32 steps give the in-process bits", { timeout: 120_000 }, async (t) => {
    const server = await startNatsServer({ jetstream: false });
    const connections: NatsConnection[] = [];
    const peers: BspPeer[] = [];
    try {
      const kernels = await Kernels.load();
      const options: TrainOptions = { mode: "sync", epochs: 2, shuffle: false, threads: 1, optimizer: "adam", learningRate: 0.01, portion: 6 };
      const whole = await wholeRun(options);
      for (const combine of MODES) {
        const channels = await natsPeers(server.url, `gx-${combine}`, 2, connections, peers);
        const { params, members } = await trainPeers(2, options, { combine }, channels);
        assert.deepEqual(params[1], params[0], `${combine}: the peers' weights differ`);
        const diff = maxDifference(params[0]!, whole);
        assert.ok(diff <= 1e-5, `${combine} over NATS: ${diff} from the single trainer`);
        assert.equal(members[0]!.stats.bytesSent, 40 * 4 * stepTraffic(combine, whole.length, 2, 0).sent);
        // One step of each dtype on the same channels: the same bits as in process.
        for (const gradDtype of ["f32", "f16"] as const) {
          const grads = gradients(1000, 2, 5);
          const stats = statsOf(2);
          const wire = channels.map((channel) => new ClusterGradientExchange(channel, { combine, gradDtype, kernels }));
          const want = await allreduce(exchanges(2, { combine, gradDtype, kernels }), grads, stats);
          const got = await allreduce(wire, grads, stats);
          assert.deepEqual(got.grads, want.grads, `${combine} ${gradDtype}: not the in-process bits`);
          assert.deepEqual(got.combined, want.combined);
        }
        // A 1M-float gradient (4 MB) over loopback NATS: time printed, not asserted beyond a generous bound.
        const big = gradients(1 << 20, 2, 3);
        const wire = channels.map((channel) => new ClusterGradientExchange(channel, { combine }));
        await allreduce(wire, big, statsOf(2));
        const started = performance.now();
        for (let s = 1; s <= 3; s++) await allreduce(wire, big, statsOf(2), s);
        const ms = (performance.now() - started) / 3;
        const last = wire[0]!.stats.last;
        t.diagnostic(`${combine} f32, 1M floats over NATS: ${ms.toFixed(1)} ms per step (peer 0: wait ${last.waitMs.toFixed(1)} ms, encode ${last.encodeMs.toFixed(1)} ms, reduce ${last.reduceMs.toFixed(1)} ms)`);
        assert.ok(ms < 20_000, `${ms} ms per step`);
      }
    } finally {
      await Promise.allSettled(peers.map((peer) => peer.close()));
      await Promise.allSettled(connections.map((nc) => nc.close()));
      await server.stop();
    }
  });
});
