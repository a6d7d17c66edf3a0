// Work division between peers: shardRanges covers the key space in order without overlap, aligned and balanced, for
// many (keys, shards, align) including keys < shards and one shard; splitRows gives every row to exactly one peer
// for sizes 0..50 over 1..7 peers in both modes; splitDataset keeps labels and lines; bad arguments are named.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { shardRanges, splitDataset, splitRows, type SplitMode } from "../../src/cluster/partition.js";
import { createDataset } from "../../src/data/dataset.js";
import { InvalidArgumentError } from "../../src/errors.js";

const TIMEOUT = { timeout: 30_000 };
const MODES: readonly SplitMode[] = ["modulo", "contiguous"];

function argumentError(pattern: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof InvalidArgumentError && pattern.test(e.message);
}

describe("shardRanges", () => {
  test("covers [0, keys) in order without overlap; aligned begins; sizes within align of each other", TIMEOUT, () => {
    const keyCounts = [0, 1, 2, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 129, 1000, 4097, 101_770, 1 << 20];
    for (const align of [1, 4, 16, 64]) {
      for (const keys of keyCounts) {
        for (let shards = 1; shards <= 9; shards++) {
          const label = `keys=${keys} shards=${shards} align=${align}`;
          const ranges = shardRanges(keys, shards, align);
          assert.equal(ranges.length, shards, label);
          let at = 0;
          for (const { begin, end } of ranges) {
            assert.equal(begin, at, `${label}: a gap or an overlap at ${at}`);
            assert.ok(end >= begin, `${label}: [${begin}, ${end}) is reversed`);
            assert.equal(begin % align, 0, `${label}: begin ${begin} is not a multiple of ${align}`);
            if (end !== keys) assert.equal(end % align, 0, `${label}: inner end ${end} is not aligned`);
            at = end;
          }
          assert.equal(at, keys, `${label}: the ranges end at ${at}`);
          const sizes = ranges.map((r) => r.end - r.begin);
          assert.ok(Math.max(...sizes) - Math.min(...sizes) <= align, `${label}: sizes ${sizes.join(", ")} differ by more than ${align}`);
        }
      }
    }
  });

  test("one shard owns everything; keys < shards leaves the first shards empty; the default align is 16", TIMEOUT, () => {
    assert.deepEqual(shardRanges(37, 1), [{ begin: 0, end: 37 }]);
    assert.deepEqual(shardRanges(3, 5, 1), [{ begin: 0, end: 0 }, { begin: 0, end: 0 }, { begin: 0, end: 1 }, { begin: 1, end: 2 }, { begin: 2, end: 3 }]);
    assert.deepEqual(shardRanges(33, 2), [{ begin: 0, end: 16 }, { begin: 16, end: 33 }]);
    assert.deepEqual(shardRanges(64, 2), [{ begin: 0, end: 32 }, { begin: 32, end: 64 }]);
    assert.deepEqual(shardRanges(0, 3), [{ begin: 0, end: 0 }, { begin: 0, end: 0 }, { begin: 0, end: 0 }]);
    // A 1M-key gradient over 4 peers: each owns a quarter.
    assert.deepEqual(shardRanges(1 << 20, 4).map((r) => r.end - r.begin), [1 << 18, 1 << 18, 1 << 18, 1 << 18]);
  });

  test("bad arguments are InvalidArgumentErrors naming the argument", TIMEOUT, () => {
    assert.throws(() => shardRanges(-1, 2), argumentError(/^shardRanges: keys must be an integer >= 0, got the number -1$/));
    assert.throws(() => shardRanges(10.5, 2), argumentError(/^shardRanges: keys/));
    assert.throws(() => shardRanges(10, 0), argumentError(/^shardRanges: shards must be an integer >= 1, got the number 0$/));
    assert.throws(() => shardRanges(10, Number.NaN), argumentError(/^shardRanges: shards .* got the number NaN$/));
    assert.throws(() => shardRanges(10, 2, 0), argumentError(/^shardRanges: align must be an integer >= 1, got the number 0$/));
    assert.throws(() => shardRanges("10" as unknown as number, 2), argumentError(/^shardRanges: keys/));
  });
});

describe("splitRows", () => {
  test("every row of sizes 0..50 goes to exactly one of 1..7 peers, in ascending order, in both modes", TIMEOUT, () => {
    for (const mode of MODES) {
      for (let size = 0; size <= 50; size++) {
        for (let peers = 1; peers <= 7; peers++) {
          const label = `${mode} size=${size} peers=${peers}`;
          const owner = new Int32Array(size).fill(-1);
          const counts: number[] = [];
          for (let index = 0; index < peers; index++) {
            const rows = splitRows(size, peers, index, mode);
            assert.ok(rows instanceof Int32Array, label);
            counts.push(rows.length);
            for (let i = 0; i < rows.length; i++) {
              const row = rows[i]!;
              assert.ok(row >= 0 && row < size, `${label}: row ${row} out of range`);
              assert.equal(owner[row], -1, `${label}: row ${row} given to peers ${owner[row]} and ${index}`);
              owner[row] = index;
              if (i > 0) assert.ok(row > rows[i - 1]!, `${label}: rows not ascending`);
              if (mode === "modulo") assert.equal(row % peers, index, `${label}: row ${row} is not ${index} mod ${peers}`);
              else if (i > 0) assert.equal(row, rows[i - 1]! + 1, `${label}: contiguous split has a hole`);
            }
          }
          assert.ok(owner.every((p) => p >= 0), `${label}: some row has no peer`);
          assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${label}: sizes ${counts.join(", ")} differ by more than 1`);
          if (mode === "contiguous") assert.deepEqual(counts, counts.slice().sort((a, b) => b - a), `${label}: larger blocks must come first`);
        }
      }
    }
  });

  test("known splits", TIMEOUT, () => {
    assert.deepEqual([...splitRows(10, 3, 1, "modulo")], [1, 4, 7]);
    assert.deepEqual([...splitRows(10, 3, 0, "contiguous")], [0, 1, 2, 3]);
    assert.deepEqual([...splitRows(10, 3, 2, "contiguous")], [7, 8, 9]);
    assert.deepEqual([...splitRows(2, 5, 4, "modulo")], []);
    assert.deepEqual([...splitRows(2, 5, 1, "contiguous")], [1]);
  });

  test("bad arguments are InvalidArgumentErrors naming the argument", TIMEOUT, () => {
    assert.throws(() => splitRows(-1, 2, 0, "modulo"), argumentError(/^splitRows: size must be an integer in \[0, 2147483647\], got the number -1$/));
    assert.throws(() => splitRows(10, 0, 0, "modulo"), argumentError(/^splitRows: peers must be an integer in \[1, 2147483647\], got the number 0$/));
    assert.throws(() => splitRows(10, 3, 3, "modulo"), argumentError(/^splitRows: index must be an integer in \[0, 2\], got the number 3$/));
    assert.throws(() => splitRows(10, 3, -1, "contiguous"), argumentError(/^splitRows: index/));
    assert.throws(() => splitRows(10, 3, 0.5, "contiguous"), argumentError(/^splitRows: index/));
    assert.throws(() => splitRows(10, 3, 0, "random" as SplitMode), argumentError(/^splitRows: mode must be "modulo" or "contiguous", got/));
  });
});

describe("splitDataset", () => {
  test("each peer's split holds its rows' features, targets, labels and source lines; together they are the dataset", TIMEOUT, () => {
    const size = 11;
    const ds = createDataset({
      features: 2,
      outputs: 1,
      x: Float32Array.from({ length: size * 2 }, (_, i) => i),
      y: Float32Array.from({ length: size }, (_, i) => i % 2),
      labels: Int32Array.from({ length: size }, (_, i) => i % 2),
      lines: Int32Array.from({ length: size }, (_, i) => i + 2),
      name: "table",
    });
    for (const mode of MODES) {
      const seen: number[] = [];
      for (let index = 0; index < 3; index++) {
        const part = splitDataset(ds, 3, index, mode);
        const rows = splitRows(size, 3, index, mode);
        assert.equal(part.size, rows.length);
        assert.equal(part.name, `table part ${index + 1}/3`);
        assert.deepEqual([...part.x], [...rows].flatMap((r) => [2 * r, 2 * r + 1]));
        assert.deepEqual([...part.y], [...rows].map((r) => r % 2));
        assert.deepEqual([...part.labels!], [...rows].map((r) => r % 2));
        assert.deepEqual([...part.lines!], [...rows].map((r) => r + 2));
        seen.push(...part.lines!);
      }
      assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: size }, (_, i) => i + 2), mode);
    }
    assert.throws(() => splitDataset(ds, 3, 5, "modulo"), argumentError(/^splitDataset: index must be an integer in \[0, 2\], got the number 5$/));
    assert.throws(() => splitDataset(null as unknown as typeof ds, 3, 0, "modulo"), argumentError(/^splitDataset: ds must be a Dataset/));
  });
});
