// Hashed CSV features: a numeric field is (hash of its column, its value), any other the category (hash of column
// and text, 1); the same file hashes the same every time, indices stay in [0, 2^bits) and ascend in a row, pairs that
// collide add up; labels, headers and bad rows as the CSV reader has them; the stream gives the whole file's rows;
// and a logistic regression on hashed Pima (adagrad) learns about as well as the dense one.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import {
  categoryFeature, DataError, numericFeature, readCsvHashed, sparseRows, streamCsvHashed, type SparseDataset,
} from "../../src/data/index.js";
import { sharedData } from "../support/paths.js";
import { tempDir, writeTemp } from "../support/temp.js";

const TIMEOUT = { timeout: 60_000 };

/** Row r's pairs as a Map of index to value. */
function pairs(ds: SparseDataset, r: number): Map<number, number> {
  const map = new Map<number, number>();
  for (let k = ds.rowPtr[r]!; k < ds.rowPtr[r + 1]!; k++) map.set(ds.indices[k]!, ds.values[k]!);
  return map;
}

function checkRows(ds: SparseDataset, bits: number): void {
  for (let r = 0; r < ds.size; r++) {
    for (let k = ds.rowPtr[r]!; k < ds.rowPtr[r + 1]!; k++) {
      assert.ok(ds.indices[k]! >= 0 && ds.indices[k]! < 2 ** bits, `index ${ds.indices[k]} in range`);
      if (k > ds.rowPtr[r]!) assert.ok(ds.indices[k]! > ds.indices[k - 1]!, `row ${r}: indices ascend, once each`);
    }
  }
}

describe("readCsvHashed and streamCsvHashed", () => {
  const dir = tempDir("hash-features");
  const mixed = ["city,size,colour,clicked", "paris,1.5,red,1", "rome,0,blue,0", "paris,,red,1", "oslo,-2,green,0"].join("\n");

  test("numeric fields keep their value at their column's feature, other fields are categories of value 1", TIMEOUT, async () => {
    const path = writeTemp(dir, "mixed.csv", mixed);
    const ds = await readCsvHashed(path, { bits: 20, seed: 9 });
    assert.equal(ds.features, 2 ** 20);
    assert.equal(ds.size, 4, "the header is found (its label field is not a number) and skipped");
    assert.deepEqual([...ds.lines!], [2, 3, 4, 5]);
    assert.deepEqual([...ds.y], [1, 0, 1, 0]);
    const expect = (entries: [number, number][]) => new Map(entries);
    assert.deepEqual(pairs(ds, 0), expect([[categoryFeature(20, 9, 0, "paris"), 1], [numericFeature(20, 9, 1), 1.5], [categoryFeature(20, 9, 2, "red"), 1]]));
    // 0 and an empty field add no pair
    assert.deepEqual(pairs(ds, 1), expect([[categoryFeature(20, 9, 0, "rome"), 1], [categoryFeature(20, 9, 2, "blue"), 1]]));
    assert.deepEqual(pairs(ds, 2), expect([[categoryFeature(20, 9, 0, "paris"), 1], [categoryFeature(20, 9, 2, "red"), 1]]));
    assert.deepEqual(pairs(ds, 3).get(numericFeature(20, 9, 1)), -2);
    checkRows(ds, 20);
    // a category is its column's: "red" in another column is another feature
    assert.notEqual(categoryFeature(20, 9, 0, "red"), categoryFeature(20, 9, 2, "red"));
  });

  test("the same file and seed hash the same every time; another seed hashes elsewhere", TIMEOUT, async () => {
    const path = writeTemp(dir, "again.csv", mixed);
    const a = await readCsvHashed(path, { bits: 16 });
    const b = await readCsvHashed(path, { bits: 16 });
    assert.deepEqual([...a.indices], [...b.indices]);
    assert.deepEqual([...a.values], [...b.values]);
    const other = await readCsvHashed(path, { bits: 16, seed: 1 });
    assert.notDeepEqual([...other.indices], [...a.indices]);
    // the hashes are fixed functions (a model trained on hashed rows depends on them): the same on every engine and machine
    assert.equal(numericFeature(20, 0, 3), 467371);
    assert.equal(categoryFeature(20, 0, 1, "red"), 1008886);
    assert.equal(categoryFeature(31, 7, 2, "é✓"), 540843501);
  });

  test("pairs that land on one index add up: 2 features hold every column's values", TIMEOUT, async () => {
    const rows = ["1,2,3,a,b,c,1", "4,0,6,a,a,d,0", "7,8,9,x,y,z,1"];
    const path = writeTemp(dir, "narrow.csv", rows.join("\n"));
    const ds = await readCsvHashed(path, { bits: 1, header: false });
    checkRows(ds, 1);
    rows.forEach((line, r) => {
      const fields = line.split(",").slice(0, -1);
      const numeric = fields.filter((f) => /^\d+$/.test(f)).reduce((sum, f) => sum + Number(f), 0);
      const categories = fields.filter((f) => !/^\d+$/.test(f)).length;
      const total = [...pairs(ds, r).values()].reduce((sum, v) => sum + v, 0);
      assert.equal(total, numeric + categories, `row ${r}`);
      assert.ok(pairs(ds, r).size <= 2);
    });
  });

  test("labels: a column by index or header name, classes one-hot; the columns to hash", TIMEOUT, async () => {
    const path = writeTemp(dir, "classes.csv", ["label;kind;x", "2;a;1", "0;b;2", "1;a;3"].join("\n"));
    const ds = await readCsvHashed(path, { bits: 8, delimiter: ";", labelColumn: "label", classes: 3 });
    assert.deepEqual([...ds.labels!], [2, 0, 1]);
    assert.deepEqual([...ds.y.subarray(0, 3)], [0, 0, 1]);
    assert.deepEqual(pairs(ds, 0), new Map([[categoryFeature(8, 0, 1, "a"), 1], [numericFeature(8, 0, 2), 1]].sort((p, q) => p[0]! - q[0]!) as [number, number][]));
    const onlyX = await readCsvHashed(path, { bits: 8, delimiter: ";", labelColumn: 0, featureColumns: [2] });
    assert.deepEqual([...onlyX.indices], [numericFeature(8, 0, 2), numericFeature(8, 0, 2), numericFeature(8, 0, 2)]);
    assert.deepEqual([...onlyX.values], [1, 2, 3]);
  });

  test("bad rows and options are DataErrors naming the file, line and column", TIMEOUT, async () => {
    const cases: [string, string, object, RegExp, number | undefined][] = [
      ["label.csv", "a,1\nb,yes\n", { header: false }, /label\.csv line 2, column 2: expected a numeric label/, 2],
      ["class.csv", "a,1\nb,3\n", { classes: 2 }, /class\.csv line 2, column 2: expected a class index in \[0, 2\), got 3/, 2],
      ["width.csv", "a,1\nb,c,1\n", {}, /width\.csv line 2 has 3 fields, expected 2 \(as on line 1\)/, 2],
      ["huge.csv", "1e400,1\n", {}, /huge\.csv line 1, column 1: expected a finite number/, 1],
      ["bits.csv", "a,1\n", { bits: 32 }, /bits\.csv: bits is 32, expected an integer in \[1, 31\]/, undefined],
      ["empty.csv", "\n\n", {}, /empty\.csv: no data rows/, undefined],
      ["name.csv", "a,1\n", { labelColumn: "y", header: false }, /names a header column, but the file has no header/, undefined],
    ];
    for (const [name, text, options, pattern, line] of cases) {
      await assert.rejects(readCsvHashed(writeTemp(dir, name, text), { bits: 4, ...options }), (error: unknown) => {
        assert.ok(error instanceof DataError, `${name}: ${String(error)}`);
        assert.match(error.message, pattern);
        assert.equal(error.line, line, name);
        return true;
      });
    }
    await assert.rejects(readCsvHashed(writeTemp(dir, "small.csv", "a,b,c,1\n".repeat(100)), { bits: 4, maxBytes: 1000 }), /need \d+ bytes, more than the limit of 1000/);
  });

  test("the stream's chunks are the whole file's rows, for any chunk size; select keeps rows by number", TIMEOUT, async () => {
    const lines = ["f,g,h,y", ...Array.from({ length: 23 }, (_, i) => `c${i % 4},${i / 2},${i % 3 === 0 ? "" : `k${i % 5}`},${i % 2}`)];
    const path = writeTemp(dir, "stream.csv", `${lines.join("\n")}\n# a comment\n`);
    const whole = await readCsvHashed(path, { bits: 6, comment: "#" });
    const flat = (chunks: SparseDataset[]) => chunks.flatMap((c) => Array.from({ length: c.size }, (_, r) => ({ pairs: [...pairs(c, r)], y: c.y[r], line: c.lines![r] })));
    for (const chunkRows of [1, 3, 7, 23, 40]) {
      const chunks: SparseDataset[] = [];
      for await (const chunk of streamCsvHashed(path, { bits: 6, comment: "#", chunkRows })) chunks.push(chunk);
      assert.equal(chunks.length, Math.ceil(23 / chunkRows));
      assert.deepEqual(flat(chunks), flat([whole]), `chunkRows ${chunkRows}`);
    }
    const kept: SparseDataset[] = [];
    for await (const chunk of streamCsvHashed(path, { bits: 6, comment: "#", select: (row) => row % 4 === 3 })) kept.push(chunk);
    assert.deepEqual(flat(kept), flat([whole]).filter((_, r) => r % 4 === 3));
  });

  test("a logistic regression on hashed Pima (adagrad; min-max scaled, one column a category) reaches >= 0.72 held-out accuracy", TIMEOUT, async () => {
    const rows = readFileSync(sharedData("pima-diabetes.csv"), "utf8").trim().split("\n").map((line) => line.split(",").map(Number));
    const trainRows = rows.length - 100;
    const last = rows[0]!.length - 1;
    const range = (j: number) => {
      const column = rows.slice(0, trainRows).map((r) => r[j]!);
      return { min: Math.min(...column), span: Math.max(...column) - Math.min(...column) || 1 };
    };
    const ranges = Array.from({ length: last }, (_, j) => range(j));
    // column 0 (pregnancies) as a category "p<count>", the others scaled on the training rows, the label as it is
    const text = rows.map((r) => r.map((v, j) => (j === 0 ? `p${v}` : j < last ? (v - ranges[j]!.min) / ranges[j]!.span : v)).join(",")).join("\n");
    const ds = await readCsvHashed(writeTemp(dir, "pima-hashed.csv", text), { bits: 10 });
    assert.equal(ds.size, rows.length);
    const model = await LogisticRegression.create({ inputs: ds.features, sparseInputs: true, seed: 1 });
    try {
      await model.fit(sparseRows(ds, 0, trainRows), { epochs: 100, batchSize: 32, optimizer: "adagrad", learningRate: 0.5, threads: 0 });
      const accuracy = model.evaluate(sparseRows(ds, trainRows, ds.size)).accuracy!;
      assert.ok(accuracy >= 0.72, `held-out accuracy ${accuracy}`);
    } finally {
      model.dispose();
    }
  });
});
