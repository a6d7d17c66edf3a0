// A shard's row snapshot as bytes: the rows that exist round-trip exactly; a truncated, corrupted or foreign
// snapshot (another shard, width or feature count; keys out of order or owned elsewhere) is refused naming the
// source and what is wrong.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { rowOwner } from "../../src/cluster/sparse-protocol.js";
import { SparseRowStore } from "../../src/cluster/sparse-rows.js";
import { decodeRowSnapshot, encodeRowSnapshot, RowSnapshotError } from "../../src/cluster/sparse-snapshot.js";

const OWNER = { shard: 1, shards: 3, features: 5000 };
const UNITS = 3;

/** A store holding some pushed rows of shard 1 of 3. */
function storeOfShard(): SparseRowStore {
  const store = new SparseRowStore({ units: UNITS, seed: 4 });
  const keys = Int32Array.from(Array.from({ length: 400 }, (_, k) => k * 11).filter((k) => rowOwner(k, 3) === 1));
  store.push(keys, Float32Array.from({ length: keys.length * UNITS }, (_, i) => Math.sin(i)));
  return store;
}

const refusal = (pattern: RegExp) => (e: unknown) => e instanceof RowSnapshotError && pattern.test(e.message);

describe("row snapshots", () => {
  test("round-trip the rows that exist, values and accumulators, into a store that reads the same", () => {
    const store = storeOfShard();
    const snapshot = store.snapshot();
    const decoded = decodeRowSnapshot(encodeRowSnapshot(snapshot, OWNER), { ...OWNER, units: UNITS }, "s.dpsr");
    assert.deepEqual(decoded.keys, snapshot.keys);
    assert.deepEqual(decoded.values, snapshot.values);
    assert.deepEqual(decoded.accumulators, snapshot.accumulators);
    const restored = SparseRowStore.restore({ units: UNITS, seed: 4 }, decoded);
    const a = new Float32Array(snapshot.keys.length * UNITS);
    const b = new Float32Array(snapshot.keys.length * UNITS);
    store.pull(snapshot.keys, a);
    restored.pull(snapshot.keys, b);
    assert.deepEqual(a, b);
    assert.equal(restored.size, store.size);
  });

  test("refuses truncated, corrupt and foreign snapshots by name", () => {
    const bytes = encodeRowSnapshot(storeOfShard().snapshot(), OWNER);
    const own = { ...OWNER, units: UNITS };
    assert.throws(() => decodeRowSnapshot(bytes.subarray(0, bytes.length - 9), own, "s.dpsr"), refusal(/^s\.dpsr: \d+ bytes, expected \d+ for \d+ rows of 3 floats \(truncated\?\)/));
    const corrupt = bytes.slice();
    corrupt[100]! ^= 0x40;
    assert.throws(() => decodeRowSnapshot(corrupt, own, "s.dpsr"), refusal(/checksum does not match/));
    assert.throws(() => decodeRowSnapshot(new Uint8Array(64), own, "s.dpsr"), refusal(/no DPSR magic/));
    assert.throws(() => decodeRowSnapshot(bytes, { ...own, shard: 2 }, "s.dpsr"), refusal(/holds shard 1, this shard has 2/));
    assert.throws(() => decodeRowSnapshot(bytes, { ...own, units: 4 }, "s.dpsr"), refusal(/holds units 3, this shard has 4/));
    assert.throws(() => decodeRowSnapshot(bytes, { ...own, features: 6000 }, "s.dpsr"), refusal(/holds features 5000/));
    const snapshot = storeOfShard().snapshot();
    const swapped = { ...snapshot, keys: snapshot.keys.slice().reverse() };
    assert.throws(() => decodeRowSnapshot(encodeRowSnapshot(swapped, OWNER), own, "s.dpsr"), refusal(/out of range or order/));
    const elsewhere = Int32Array.of(Array.from({ length: 100 }, (_, k) => k).find((k) => rowOwner(k, 3) === 0)!);
    const foreign = { units: UNITS, keys: elsewhere, values: new Float32Array(UNITS), accumulators: new Float32Array(UNITS) };
    assert.throws(() => decodeRowSnapshot(encodeRowSnapshot(foreign, OWNER), own, "s.dpsr"), refusal(/belongs to shard 0/));
  });
});
