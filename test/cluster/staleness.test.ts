// The staleness histogram: doubling buckets (0, 1, 2-3, 4-7, ...), its count, max and mean, and its one-line text.
import assert from "node:assert/strict";
import { test } from "node:test";
import { StalenessHistogram, stalenessText } from "../../src/cluster/staleness.js";

test("samples fall in doubling buckets; max, mean and the count are kept; bad samples count as 0", () => {
  const h = new StalenessHistogram();
  for (const n of [0, 0, 1, 2, 3, 4, 7, 8, 100, -5, Number.NaN]) h.record(n);
  const s = h.summary();
  assert.equal(s.samples, 11);
  assert.equal(s.max, 100);
  assert.equal(s.mean, (1 + 2 + 3 + 4 + 7 + 8 + 100) / 11);
  assert.deepEqual(s.buckets, [
    { from: 0, to: 0, count: 4 },
    { from: 1, to: 1, count: 1 },
    { from: 2, to: 3, count: 2 },
    { from: 4, to: 7, count: 2 },
    { from: 8, to: 15, count: 1 },
    { from: 64, to: 127, count: 1 },
  ]);
  assert.equal(stalenessText(s), "0: 4, 1: 1, 2-3: 2, 4-7: 2, 8-15: 1, 64-127: 1");
  assert.equal(stalenessText(new StalenessHistogram().summary()), "none");
});
