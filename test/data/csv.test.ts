// CSV reader on small generated files: a Pima-shaped table, header detection, label columns by name and negative index, CRLF, located errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { DataError, readCsv, readCsvRows } from "../../src/data/index.js";
import { tempDir, writeTemp } from "../support/temp.js";

/** Ten rows shaped like the Pima file (8 numeric features, then a 0/1 label), four of them positive. */
const PIMA_LIKE = [
  "6,148,72,35,0,33.6,0.627,50,1",
  "1,85,66,29,0,26.6,0.351,31,0",
  "8,183,64,0,0,23.3,0.672,32,1",
  "1,89,66,23,94,28.1,0.167,21,0",
  "0,137,40,35,168,43.1,2.288,33,1",
  "5,116,74,0,0,25.6,0.201,30,0",
  "3,78,50,32,88,31,0.248,26,1",
  "10,115,0,0,0,35.3,0.134,29,0",
  "2,197,70,45,543,30.5,0.158,53,0",
  "8,125,96,0,0,0,0.232,54,0",
].join("\n");

function counts(labels: Int32Array, classes: number): number[] {
  const histogram = new Array<number>(classes).fill(0);
  for (const label of labels) histogram[label]!++;
  return histogram;
}

async function rejectsAt(promise: Promise<unknown>, pattern: RegExp, line?: number, column?: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DataError, `expected a DataError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (line !== undefined) assert.equal(error.line, line);
    if (column !== undefined) assert.equal(error.column, column);
    return true;
  });
}

describe("readCsv on a Pima-shaped file", () => {
  const pima = writeTemp(tempDir("csv-pima"), "pima-like.csv", `${PIMA_LIKE}\n`);

  test("10 rows, 8 features, 6 zeros and 4 ones, one-hot y", async () => {
    const ds = await readCsv(pima, { classes: 2 });
    assert.equal(ds.size, 10);
    assert.equal(ds.features, 8);
    assert.equal(ds.outputs, 2);
    assert.deepEqual(counts(ds.labels!, 2), [6, 4]);
    assert.deepEqual([...ds.x.subarray(0, 8)], [6, 148, 72, 35, 0, 33.6, 0.627, 50].map(Math.fround));
    assert.deepEqual([...ds.x.subarray(72, 80)], [8, 125, 96, 0, 0, 0, 0.232, 54].map(Math.fround));
    assert.deepEqual([...ds.y.subarray(0, 4)], [0, 1, 1, 0]);
    assert.equal(ds.name, "pima-like.csv");
  });

  test("without classes, y is the raw label as one output", async () => {
    const ds = await readCsv(pima);
    assert.equal(ds.outputs, 1);
    assert.equal(ds.labels, undefined);
    assert.deepEqual([...ds.y], [1, 0, 1, 0, 1, 0, 1, 0, 0, 0]);
  });

  test("readCsvRows streams 10 rows of 9 values with their line numbers", async () => {
    let rows = 0;
    for await (const { line, values } of readCsvRows(pima)) {
      assert.equal(line, ++rows);
      assert.equal(values.length, 9);
    }
    assert.equal(rows, 10);
  });
});

describe("readCsv on temporary files", () => {
  const dir = tempDir("csv");
  const withHeader = "a,b,label\n1,2,0\n3,4,1\n5,6,2\n";

  test("a first line of names is detected as a header", async () => {
    const ds = await readCsv(writeTemp(dir, "header.csv", withHeader), { classes: 3 });
    assert.equal(ds.size, 3);
    assert.deepEqual([...ds.x], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...ds.labels!], [0, 1, 2]);
  });

  test("header rows are not yielded and data lines keep their file line numbers", async () => {
    const lines = [];
    for await (const row of readCsvRows(writeTemp(dir, "rows.csv", withHeader))) lines.push(row.line);
    assert.deepEqual(lines, [2, 3, 4]);
  });

  test("the label column can be named or counted from the end", async () => {
    const path = writeTemp(dir, "named.csv", '"y","p","q"\n1,10,20\n0,30,40\n');
    const byName = await readCsv(path, { labelColumn: "y", classes: 2 });
    const byNegative = await readCsv(path, { labelColumn: -3, classes: 2 });
    const byIndex = await readCsv(path, { labelColumn: 0, classes: 2 });
    for (const ds of [byName, byNegative, byIndex]) {
      assert.deepEqual([...ds.x], [10, 20, 30, 40]);
      assert.deepEqual([...ds.labels!], [1, 0]);
    }
    const middle = await readCsv(path, { labelColumn: -2 });
    assert.deepEqual([...middle.x], [1, 20, 0, 40]);
    assert.deepEqual([...middle.y], [10, 30]);
  });

  test("CRLF, no trailing newline, blank lines at the end, and gzip are all fine", async () => {
    const expected = [1, 2, 3, 4];
    for (const [name, text] of [
      ["crlf.csv", "1,2,0\r\n3,4,1\r\n"],
      ["no-newline.csv", "1,2,0\n3,4,1"],
      ["blank-end.csv", "1,2,0\n3,4,1\n\n  \n\n"],
      ["crlf-blank.csv", "x,y,c\r\n1,2,0\r\n3,4,1\r\n\r\n"],
    ] as const) {
      const ds = await readCsv(writeTemp(dir, name, text), { classes: 2 });
      assert.deepEqual([...ds.x], expected, name);
      assert.deepEqual([...ds.labels!], [0, 1], name);
    }
    const gz = await readCsv(writeTemp(dir, "zipped.csv.gz", gzipSync("1,2,0\n3,4,1\n")), { classes: 2 });
    assert.deepEqual([...gz.x], expected);
  });

  test("header: false makes a non-numeric first line an error; header: true skips a numeric one", async () => {
    const path = writeTemp(dir, "forced.csv", withHeader);
    await rejectsAt(readCsv(path, { header: false }), /forced\.csv line 1, column 1: expected a number, got "a"/, 1, 1);
    const numericHeader = writeTemp(dir, "numeric-header.csv", "7,8,9\n1,2,0\n");
    assert.equal((await readCsv(numericHeader, { header: true })).size, 1);
    assert.equal((await readCsv(numericHeader)).size, 2);
  });

  test("a non-numeric field names file, line, column and the text found", async () => {
    const lines = ["1,2,3,0", "4,5,6,1", "7,8,abc,0"];
    const path = writeTemp(dir, "pima.csv", lines.join("\n"));
    await rejectsAt(readCsv(path), /pima\.csv line 3, column 3: expected a number, got "abc"/, 3, 3);
    const headed = writeTemp(dir, "headed.csv", `a,b,c,d\n${lines.join("\n")}`);
    await rejectsAt(readCsv(headed), /headed\.csv line 4, column 3 \("c"\): expected a number, got "abc"/, 4, 3);
    await rejectsAt(readCsv(writeTemp(dir, "empty-field.csv", "1,2,0\n1,,0\n")), /line 2, column 2: expected a number, got ""/);
  });

  test("a ragged row says how many fields it has and expected", async () => {
    const path = writeTemp(dir, "ragged.csv", "1,2,3,4,5,6,7,8,1\n".repeat(4) + "1,2,3,4,5,6,7,0\n");
    await rejectsAt(readCsv(path), /ragged\.csv line 5 has 8 fields, expected 9/, 5);
  });

  test("a class label out of range or fractional is located", async () => {
    await rejectsAt(readCsv(writeTemp(dir, "class.csv", "1,0\n2,2\n"), { classes: 2 }), /class\.csv line 2, column 2: expected a class index in \[0, 2\), got 2/, 2, 2);
    await rejectsAt(readCsv(writeTemp(dir, "frac.csv", "1,0.5\n"), { classes: 2 }), /line 1, column 2: expected a class index in \[0, 2\), got 0\.5/);
  });

  test("option mistakes are explained", async () => {
    const headerless = writeTemp(dir, "headerless.csv", "1,2,0\n");
    await rejectsAt(readCsv(headerless, { labelColumn: "label" }), /names a header column, but the file has no header/);
    const headed = writeTemp(dir, "h.csv", withHeader);
    await rejectsAt(readCsv(headed, { labelColumn: "nope" }), /no header column is named "nope"; the header has "a", "b", "label"/);
    await rejectsAt(readCsv(headed, { labelColumn: 3 }), /labelColumn is 3, expected an integer in \[-3, 2\]/);
    await rejectsAt(readCsv(writeTemp(dir, "none.csv", "\n\n")), /none\.csv: no data rows/);
  });
});
