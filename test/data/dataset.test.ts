// Dataset helpers on a small generated table: one-hot, min-max/z-score with reused stats, seeded shuffle, splits, hold-out, synthetic data.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  createDataset,
  DataError,
  holdOut,
  minMaxNormalize,
  oneHot,
  seededPermutation,
  shuffle,
  split,
  syntheticClassification,
  take,
  zScoreNormalize,
  type Dataset,
} from "../../src/data/index.js";
import { mulberry32 } from "../../src/util/random.js";

/** 23 seeded rows x 4 features, 2 classes one-hot; column 1 is 3i + 1 (so 1..67), every row distinct. */
function fixtureTable(): Dataset {
  const rows = 23;
  const random = mulberry32(5);
  const x = new Float32Array(rows * 4);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    x.set([Math.round(random() * 100), 3 * i + 1, random() * 10 - 5, i % 4], i * 4);
    labels[i] = random() < 0.4 ? 1 : 0;
  }
  return createDataset({ features: 4, outputs: 2, x, y: oneHot(labels, 2), labels, name: "fixture" });
}

const table = fixtureTable();

function column(ds: Dataset, j: number): number[] {
  return Array.from({ length: ds.size }, (_, i) => ds.x[i * ds.features + j]!);
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function rowKey(ds: Dataset, i: number): string {
  return `${ds.x.subarray(i * ds.features, (i + 1) * ds.features).join(",")}|${ds.labels?.[i]}`;
}

/** 4 rows x 3 features; the last column is constant. */
const tiny = createDataset({
  features: 3,
  outputs: 1,
  x: Float32Array.from([1, -2, 5, 3, 0, 5, 2, 6, 5, 0, 4, 5]),
  y: Float32Array.from([0, 1, 0, 1]),
  labels: Int32Array.from([0, 1, 0, 1]),
  name: "tiny",
});

describe("oneHot and createDataset", () => {
  test("oneHot puts a 1 at each label", () => {
    assert.deepEqual([...oneHot(Int32Array.from([2, 0, 1]), 3)], [0, 0, 1, 1, 0, 0, 0, 1, 0]);
    assert.throws(() => oneHot(Int32Array.from([3]), 3), /label 3 of sample 0 is outside \[0, 3\)/);
  });

  test("createDataset checks that x, y and labels agree", () => {
    assert.throws(() => createDataset({ features: 2, outputs: 1, x: new Float32Array(5), y: new Float32Array(2) }), DataError);
    assert.throws(() => createDataset({ features: 2, outputs: 1, x: new Float32Array(4), y: new Float32Array(3) }), /y has 3 values, expected 2 rows x 1 outputs/);
    assert.throws(() => createDataset({ features: 1, outputs: 1, x: new Float32Array(2), y: new Float32Array(2), labels: new Int32Array(1) }), /1 labels for 2 rows/);
  });
});

describe("normalization", () => {
  test("min-max maps every column into [0, 1], exactly 0 and 1 at the extremes", () => {
    const { dataset, stats } = minMaxNormalize(table);
    for (let j = 0; j < dataset.features; j++) {
      const values = column(dataset, j);
      assert.equal(Math.min(...values), 0, `column ${j} min`);
      assert.equal(Math.max(...values), 1, `column ${j} max`);
    }
    assert.equal(stats.kind, "min-max");
    assert.equal(stats.min[1], 1);
    assert.equal(stats.max[1], 67);
  });

  test("z-score gives each column mean 0 and standard deviation 1", () => {
    const { dataset } = zScoreNormalize(table);
    for (let j = 0; j < dataset.features; j++) {
      const values = column(dataset, j);
      const m = mean(values);
      assert.ok(Math.abs(m) < 1e-6, `column ${j} mean ${m}`);
      const std = Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
      assert.ok(Math.abs(std - 1) < 1e-5, `column ${j} std ${std}`);
    }
  });

  test("stats from the training part are reused on the test part", () => {
    const { train, test: held } = holdOut(table, 5);
    const minMax = minMaxNormalize(train);
    const again = minMaxNormalize(held, minMax.stats);
    assert.equal(again.stats, minMax.stats);
    const raw = held.x[0]!;
    const expected = (raw - minMax.stats.min[0]!) / (minMax.stats.max[0]! - minMax.stats.min[0]!);
    assert.equal(again.dataset.x[0], Math.fround(expected));
    const zTrain = zScoreNormalize(train);
    const zTest = zScoreNormalize(held, zTrain.stats);
    assert.equal(zTest.dataset.x[1], Math.fround((held.x[1]! - zTrain.stats.mean[1]!) / zTrain.stats.std[1]!));
    assert.throws(() => minMaxNormalize(tiny, minMax.stats), /min-max stats have 4 columns, the dataset has 3 features/);
  });

  test("a constant column maps to 0, never NaN; the input is left alone", () => {
    const before = [...tiny.x];
    for (const { dataset } of [minMaxNormalize(tiny), zScoreNormalize(tiny)]) {
      assert.ok(dataset.x.every(Number.isFinite));
      assert.deepEqual(column(dataset, 2), [0, 0, 0, 0]);
      assert.equal(dataset.y, tiny.y);
      assert.equal(dataset.labels, tiny.labels);
    }
    assert.deepEqual(column(minMaxNormalize(tiny).dataset, 0), [1 / 3, 1, 2 / 3, 0].map(Math.fround));
    assert.deepEqual([...tiny.x], before);
  });
});

describe("row operations", () => {
  test("seededPermutation is a permutation, the same for the same seed", () => {
    const a = seededPermutation(1000, 42);
    assert.deepEqual([...a].sort((p, q) => p - q), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(a, seededPermutation(1000, 42));
    assert.notDeepEqual(a, seededPermutation(1000, 43));
    assert.notDeepEqual(a, Int32Array.from({ length: 1000 }, (_, i) => i));
  });

  test("shuffle keeps every row with its label and y, in a seeded order", () => {
    const shuffled = shuffle(table, 7);
    assert.equal(shuffled.size, table.size);
    const order = seededPermutation(table.size, 7);
    for (let i = 0; i < table.size; i++) {
      assert.equal(rowKey(shuffled, i), rowKey(table, order[i]!));
      assert.equal(shuffled.y[2 * i + shuffled.labels![i]!], 1);
    }
    const keys = (ds: Dataset) => Array.from({ length: ds.size }, (_, i) => rowKey(ds, i));
    assert.deepEqual(keys(shuffled).sort(), keys(table).sort());
    assert.deepEqual(keys(shuffle(table, 7)), keys(shuffled));
    assert.notDeepEqual(keys(shuffle(table, 8)), keys(shuffled));
  });

  test("split gives near-equal contiguous parts whose sizes add up", () => {
    for (const parts of [1, 3, 5, 7, 23]) {
      const splits = split(table, parts);
      const sizes = splits.map((s) => s.size);
      assert.equal(sizes.reduce((a, b) => a + b, 0), 23);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${parts} parts: ${sizes}`);
      assert.equal(splits[splits.length - 1]!.x.at(-1), table.x.at(-1));
    }
    assert.deepEqual(split(table, 5).map((s) => s.size), [5, 5, 5, 4, 4]);
    assert.equal(split(table, 5)[1]!.x[0], table.x[5 * 4]);
    assert.throws(() => split(table, 0), /split: parts is 0/);
    assert.throws(() => split(tiny, 5), /expected an integer in \[1, 4\]/);
  });

  test("holdOut keeps the last rows for testing, take the first rows", () => {
    const { train, test: held } = holdOut(table, 3);
    assert.equal(train.size, 20);
    assert.equal(held.size, 3);
    assert.equal(rowKey(held, 0), rowKey(table, 20));
    assert.equal(take(table, 10).size, 10);
    assert.equal(rowKey(take(table, 10), 9), rowKey(table, 9));
    assert.throws(() => take(table, 24), /take: n is 24/);
    assert.throws(() => holdOut(table, -1), DataError);
  });
});

describe("syntheticClassification", () => {
  const options = { size: 600, features: 4, classes: 3, seed: 11 };

  test("is seeded, balanced, one-hot, with labels", () => {
    const ds = syntheticClassification(options);
    assert.equal(ds.size, 600);
    assert.equal(ds.outputs, 3);
    assert.deepEqual([0, 1, 2].map((c) => ds.labels!.filter((l) => l === c).length), [200, 200, 200]);
    assert.deepEqual(ds.x, syntheticClassification(options).x);
    assert.notDeepEqual(ds.x, syntheticClassification({ ...options, seed: 12 }).x);
    for (let i = 0; i < ds.size; i++) assert.equal(ds.y[i * 3 + ds.labels![i]!], 1);
  });

  test("is learnable: nearest class mean classifies most samples", () => {
    const ds = syntheticClassification(options);
    const means = [0, 1, 2].map((c) => {
      const rows = [...ds.labels!.keys()].filter((i) => ds.labels![i] === c);
      return Array.from({ length: 4 }, (_, j) => mean(rows.map((i) => ds.x[i * 4 + j]!)));
    });
    let correct = 0;
    for (let i = 0; i < ds.size; i++) {
      const distances = means.map((m) => m.reduce((s, v, j) => s + (ds.x[i * 4 + j]! - v) ** 2, 0));
      if (distances.indexOf(Math.min(...distances)) === ds.labels![i]) correct++;
    }
    assert.ok(correct / ds.size > 0.9, `nearest-mean accuracy ${correct / ds.size}`);
  });
});
