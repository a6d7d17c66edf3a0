// A shard's lazily created rows of a sparse layer: unpushed rows read as their (seed, key) initial values without
// being stored, pushes create rows and step them with per-row Adagrad (against a reference here), the table grows
// past its pages, snapshots hold only the rows that exist and restore to the same store; misuse is refused by name.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { initialRow, SparseRowStore } from "../../src/cluster/sparse-rows.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { seededRandom } from "../helpers.js";

const UNITS = 5;
const OPTIONS = { units: UNITS, seed: 9, initScale: 0.1, learningRate: 0.2, epsilon: 1e-8 };

const pulled = (store: SparseRowStore, keys: number[]) => {
  const out = new Float32Array(keys.length * UNITS);
  store.pull(Int32Array.from(keys), out);
  return out;
};

describe("SparseRowStore", () => {
  test("a row never pushed reads as its initial value, the same in any order, and is not stored", () => {
    const store = new SparseRowStore(OPTIONS);
    const keys = [0, 7, 2 ** 27 - 1, 2 ** 31 - 1, 12345];
    const forward = pulled(store, keys);
    const backward = pulled(store, [...keys].reverse());
    keys.forEach((key, i) => {
      const expected = new Float32Array(UNITS);
      initialRow(OPTIONS.seed, key, UNITS, OPTIONS.initScale, expected, 0);
      assert.deepEqual(forward.subarray(i * UNITS, (i + 1) * UNITS), expected);
      assert.deepEqual(backward.subarray((keys.length - 1 - i) * UNITS, (keys.length - i) * UNITS), expected);
      for (const v of expected) assert.ok(Math.abs(v) <= OPTIONS.initScale);
    });
    assert.equal(store.size, 0);
    assert.notDeepEqual(forward.subarray(0, UNITS), forward.subarray(UNITS, 2 * UNITS), "rows of different keys differ");
  });

  test("pushes step each row with Adagrad, as a reference computes it; other rows keep their initial values", () => {
    const store = new SparseRowStore(OPTIONS);
    const random = seededRandom(3);
    const keys = [4, 900, 31];
    const w = Array.from(pulled(store, keys), Number);
    const h: number[] = new Array(w.length).fill(0);
    for (let step = 0; step < 5; step++) {
      const g = Float32Array.from({ length: keys.length * UNITS }, () => 2 * random() - 1);
      store.push(Int32Array.from(keys), g);
      g.forEach((gi, i) => {
        h[i] = h[i]! + gi * gi;
        w[i] = w[i]! - (OPTIONS.learningRate * gi) / (Math.sqrt(h[i]!) + OPTIONS.epsilon);
      });
    }
    const got = pulled(store, keys);
    got.forEach((v, i) => {
      assert.ok(Math.abs(v - w[i]!) <= 1e-6, `value ${i}: ${v}, reference ${w[i]}`);
    });
    assert.equal(store.size, 3);
    const untouched = new Float32Array(UNITS);
    initialRow(OPTIONS.seed, 5, UNITS, OPTIONS.initScale, untouched, 0);
    assert.deepEqual(pulled(store, [5]), untouched);
  });

  test("10000 rows past the table's and pages' first sizes; a snapshot holds just them (keys ascending) and restores", () => {
    const store = new SparseRowStore(OPTIONS);
    const random = seededRandom(5);
    const keys = Array.from(new Set(Array.from({ length: 12_000 }, () => Math.floor(random() * 2 ** 27)))).slice(0, 10_000);
    for (let i = 0; i < keys.length; i += 500) {
      const batch = Int32Array.from(keys.slice(i, i + 500));
      store.push(batch, Float32Array.from({ length: batch.length * UNITS }, () => random() - 0.5));
    }
    assert.equal(store.size, keys.length);
    const snapshot = store.snapshot();
    assert.equal(snapshot.keys.length, keys.length);
    assert.deepEqual(Array.from(snapshot.keys), [...keys].sort((a, b) => a - b));
    const restored = SparseRowStore.restore(OPTIONS, snapshot);
    assert.equal(restored.size, keys.length);
    const probe = [...keys.slice(0, 50), 3, 2 ** 30];
    assert.deepEqual(pulled(restored, probe), pulled(store, probe));
    assert.deepEqual(restored.snapshot(), snapshot);
    assert.ok(store.bytes < 3 * 8 * UNITS * keys.length + 8 * 65536, `${store.bytes} bytes for ${keys.length} rows`);
  });

  test("misuse is refused by name: a key twice in a push, a negative key, shapes that do not match, another width", () => {
    const store = new SparseRowStore(OPTIONS);
    assert.throws(() => store.push(Int32Array.of(3, 8, 3), new Float32Array(3 * UNITS)), (e: Error) => e instanceof InvalidArgumentError && /key 3 appears twice/.test(e.message));
    assert.throws(() => store.pull(Int32Array.of(1, -4), new Float32Array(2 * UNITS)), (e: Error) => e instanceof InvalidArgumentError && /key -4 at position 1/.test(e.message));
    assert.throws(() => store.push(Int32Array.of(1), new Float32Array(UNITS + 1)), InvalidArgumentError);
    assert.throws(() => new SparseRowStore({ units: 0 }), InvalidArgumentError);
    assert.equal(store.size, 0, "a refused push changes nothing");
    assert.throws(() => SparseRowStore.restore({ ...OPTIONS, units: UNITS + 1 }, store.snapshot()), InvalidArgumentError);
  });
});
