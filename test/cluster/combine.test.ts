// The combine arithmetic without a transport: summing each shardRanges() shard of the peers' gradients with
// weightedSum gives, for keys 1, 3, 17, 257, 1000 over 1 to 5 peers, exactly the bits of one f32 sum over the whole
// vector in peer order (what MemoryExchangeGroup computes) and the f64 mean within f32 rounding; weights, stats and
// the per-peer traffic of both modes (the allreduce bound of about 2 (peers - 1) / peers models each way).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { accumulate, meanWeights, shardLength, stepTraffic, sumStats, weightedSum } from "../../src/cluster/combine.js";
import { DEFAULT_SHARD_ALIGN, shardRanges } from "../../src/cluster/partition.js";
import { mulberry32 } from "../../src/util/random.js";

const TIMEOUT = { timeout: 30_000 };
const KEYS = [1, 3, 17, 257, 1000];
const PEERS = [1, 2, 3, 4, 5];

const random = mulberry32;

function gradients(keys: number, peers: number, seed: number): Float32Array[] {
  const next = random(seed);
  return Array.from({ length: peers }, () => Float32Array.from({ length: keys }, () => (next() - 0.5) * 10 ** Math.floor(next() * 6 - 3)));
}

/** The plain reference: one f32 accumulator over the whole vector, peers in order (MemoryExchangeGroup's loop). */
function plainF32(grads: Float32Array[], rows: number[]): Float32Array {
  const total = rows.reduce((a, b) => a + b, 0);
  const mean = new Float32Array(grads[0]!.length);
  grads.forEach((g, p) => {
    for (let i = 0; i < mean.length; i++) mean[i]! += (rows[p]! / total) * g[i]!;
  });
  return mean;
}

describe("combine", () => {
  test("shard by shard weightedSum equals the whole-vector f32 sum bit for bit, and the f64 mean within f32 rounding", TIMEOUT, () => {
    for (const keys of KEYS) {
      for (const peers of PEERS) {
        const label = `keys=${keys} peers=${peers}`;
        const grads = gradients(keys, peers, keys * 31 + peers);
        const rows = grads.map((_, p) => 1 + ((p * 7 + keys) % 13));
        const weights = meanWeights(rows);
        const combined = new Float32Array(keys).fill(Number.NaN);
        for (const { begin, end } of shardRanges(keys, peers)) {
          const into = combined.subarray(begin, end);
          weightedSum(
            into,
            grads.map((g) => g.subarray(begin, end)),
            weights,
          );
        }
        assert.deepEqual(combined, plainF32(grads, rows), `${label}: not the bits of the plain sum`);
        const total = rows.reduce((a, b) => a + b, 0);
        for (let i = 0; i < keys; i++) {
          let exact = 0;
          let scale = 0;
          grads.forEach((g, p) => {
            exact += (rows[p]! / total) * g[i]!;
            scale += (rows[p]! / total) * Math.abs(g[i]!);
          });
          assert.ok(Math.abs(combined[i]! - exact) <= peers * 2 ** -23 * scale + 1e-45, `${label} key ${i}: ${combined[i]} vs ${exact}`);
        }
      }
    }
  });

  test("weightedSum ignores what into held; accumulate adds in place", TIMEOUT, () => {
    const into = new Float32Array([5, 5, 5]);
    weightedSum(into, [new Float32Array([1, 2, 3]), new Float32Array([3, 2, 1])], [0.25, 0.75]);
    assert.deepEqual([...into], [2.5, 2, 1.5]);
    accumulate(into, new Float32Array([2, 2, 2]), 0.5);
    assert.deepEqual([...into], [3.5, 3, 2.5]);
  });

  test("weightedSum into one of its own inputs gives the bits of the fill-then-accumulate reference, for 1 to 5 peers", TIMEOUT, () => {
    const random = mulberry32(11);
    for (let peers = 1; peers <= 5; peers++) {
      const parts = Array.from({ length: peers }, () => Float32Array.from({ length: 257 }, () => (random() - 0.5) * 1e3));
      parts[0]![0] = -0;
      parts[peers - 1]![1] = 1e-40;
      const weights = meanWeights(Array.from({ length: peers }, (_, p) => p + 1));
      const reference = new Float32Array(257);
      for (let p = 0; p < peers; p++) accumulate(reference, parts[p]!, weights[p]!);
      const target = peers - 1;
      const copies = parts.map((part) => part.slice());
      weightedSum(copies[target]!, copies, weights);
      assert.deepEqual(new Uint32Array(copies[target]!.buffer), new Uint32Array(reference.buffer), `${peers} peers, in place into part ${target}`);
    }
    assert.throws(() => weightedSum(new Float32Array(3), [new Float32Array(2)], [1]), /length/);
  });

  test("meanWeights: rows over their sum (summing to 1); all zero without rows", TIMEOUT, () => {
    assert.deepEqual(meanWeights([1, 3]), [0.25, 0.75]);
    assert.deepEqual(meanWeights([17, 17, 16]).map((w) => w * 50), [17, 17, 16]);
    assert.deepEqual(meanWeights([0, 0]), [0, 0]);
    assert.deepEqual(meanWeights([4]), [1]);
  });

  test("sumStats sums losses in peer order and rows", TIMEOUT, () => {
    assert.deepEqual(sumStats([{ loss: 1.5, rows: 3 }, { loss: 2, rows: 4 }]), { loss: 3.5, rows: 7 });
    // Order matters for floats: (1e16 + 1) + -1e16 is 0, 1e16 + -1e16 + 1 is 1.
    assert.equal(sumStats([{ loss: 1e16, rows: 1 }, { loss: 1, rows: 1 }, { loss: -1e16, rows: 1 }]).loss, 0);
    assert.deepEqual(sumStats([]), { loss: 0, rows: 0 });
    assert.ok(Number.isNaN(sumStats([{ loss: Number.NaN, rows: 1 }, { loss: 1, rows: 1 }]).loss));
  });

  test("stepTraffic: allreduce moves keys - own + (peers - 1) own each way, within 2 (peers - 1) / peers models; master loads peer 0", TIMEOUT, () => {
    for (const keys of [...KEYS, 101_770, 1 << 20]) {
      for (const peers of [...PEERS, 8]) {
        const label = `keys=${keys} peers=${peers}`;
        let sent = 0;
        let received = 0;
        for (let p = 0; p < peers; p++) {
          const t = stepTraffic("allreduce", keys, peers, p);
          const own = shardLength(keys, peers, p);
          assert.equal(t.sent, keys - own + (peers - 1) * own, label);
          assert.equal(t.received, t.sent, label);
          assert.ok(t.sent <= (2 * (peers - 1) * keys) / peers + (peers - 1) * DEFAULT_SHARD_ALIGN, `${label} peer ${p}: ${t.sent} values`);
          sent += t.sent;
          received += t.received;
          const m = stepTraffic("master", keys, peers, p);
          assert.deepEqual(m, p === 0 ? { sent: (peers - 1) * keys, received: (peers - 1) * keys } : { sent: keys, received: keys }, label);
        }
        // Every value sent is received by someone: the totals agree, 2 (peers - 1) models in all.
        assert.equal(sent, received, label);
        assert.equal(sent, 2 * (peers - 1) * keys, label);
      }
    }
    assert.deepEqual(stepTraffic("allreduce", 1000, 1, 0), { sent: 0, received: 0 });
  });
});
