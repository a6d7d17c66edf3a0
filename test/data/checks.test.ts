// What the data layer refuses instead of reading wrong: infinite, NaN and float32-overflowing values (file, line,
// column), createDataset arguments of the wrong type or not finite (the row and its line), and data whose dense
// arrays would pass the memory limit (DataSizeError before the allocation); rows keep their source lines.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  createDataset,
  DataError,
  DataSizeError,
  DEFAULT_MEMORY_LIMIT_BYTES,
  findNonFinite,
  holdOut,
  minMaxNormalize,
  readCsv,
  readIdx,
  readIdxRecords,
  readIdxRows,
  readLibsvm,
  selectRows,
  shuffle,
  split,
  zScoreNormalize,
} from "../../src/data/index.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { tempDir, writeTemp } from "../support/temp.js";
import { idxBytes } from "./fixtures.js";

const TIMEOUT = { timeout: 30_000 };

/** Asserts `promise` rejects with a DataError (not another error) whose message matches and whose fields are `at`. */
async function refused(
  promise: Promise<unknown>,
  pattern: RegExp,
  at: { line?: number; column?: number; field?: string } = {},
): Promise<DataError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof DataError, `expected a DataError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  for (const [key, value] of Object.entries(at)) assert.equal(caught[key as keyof typeof at], value, key);
  return caught;
}

describe("non-finite values in data files", () => {
  const dir = tempDir("checks-finite");
  const csvWith = (value: string) => writeTemp(dir, `v${Math.abs(hash(value))}.csv`, `a,b,label\n1,2,0\n3,${value},1\n2,2,0\n`);

  for (const value of ["1e400", "-1e400", "3.5e38", "-3.5e38"]) {
    test(`CSV: ${value} overflows a 32-bit float: refused with the file, line, column and header field`, async () => {
      const path = csvWith(value);
      const error = await refused(
        readCsv(path),
        new RegExp(`line 3, column 2 \\("b"\\): expected a finite number; ${value.replace("-", "\\-")} is beyond the 32-bit float range`),
        {
          line: 3,
          column: 2,
          field: "b",
        },
      );
      assert.ok(error.message.startsWith(path), error.message);
    });
  }

  for (const value of ["Infinity", "-inf", "inf", "NaN", "nan", "+Infinity"]) {
    test(`CSV: the word ${value} is refused as not a finite number`, async () => {
      await refused(
        readCsv(csvWith(value)),
        new RegExp(`line 3, column 2 \\("b"\\): expected a finite number, got "${value.replace("+", "\\+")}"`),
        { line: 3, column: 2 },
      );
    });
  }

  test("CSV: a label that overflows is refused too, and values near the limits are read", async () => {
    await refused(readCsv(writeTemp(dir, "label.csv", "1,2,0\n3,4,1e39\n")), /line 2, column 3: expected a finite number; 1e39/, {
      line: 2,
      column: 3,
    });
    const ds = await readCsv(writeTemp(dir, "edges.csv", "3.4e38,-3.4e38,1e-50,0\n1,2,3,1\n"));
    assert.deepEqual([...ds.x.subarray(0, 3)], [Math.fround(3.4e38), Math.fround(-3.4e38), 0]);
  });

  test("CSV: an empty field (a missing value) is refused, never read as NaN or 0", async () => {
    await refused(
      readCsv(writeTemp(dir, "missing.csv", "a,b,label\n1,2,0\n3,,1\n")),
      /line 3, column 2 \("b"\): expected a number, got "" \(an empty field: missing values are not supported/,
      {
        line: 3,
        column: 2,
      },
    );
  });

  test("libsvm: an overflowing or NaN value or label is refused with the line and token", async () => {
    await refused(
      readLibsvm(writeTemp(dir, "value.svm", "1 1:1 2:3\n0 1:1e400\n")),
      /line 2, column 2 \("1:1e400"\): expected a value that is a finite number; 1e400 is beyond/,
      {
        line: 2,
        column: 2,
      },
    );
    await refused(
      readLibsvm(writeTemp(dir, "nan.svm", "1 1:1\n0 2:NaN\n")),
      /line 2, column 2 \("2:NaN"\): expected a value that is a finite number, got "NaN"/,
      { line: 2 },
    );
    await refused(
      readLibsvm(writeTemp(dir, "label.svm", "1 1:1\n-1e400 2:1\n")),
      /line 2, column 1: expected a label that is a finite number; -1e400/,
      { line: 2, column: 1 },
    );
    await refused(readLibsvm(writeTemp(dir, "f32.svm", "1 1:4e38\n")), /line 1, column 2 .*4e38 is beyond the 32-bit float range/, {
      line: 1,
    });
  });
});

describe("createDataset checks its arguments", () => {
  const parts = { features: 2, outputs: 1, x: Float32Array.from([1, 2, 3, 4]), y: Float32Array.from([0, 1]) };

  test("x and y must be Float32Arrays or arrays of numbers; number arrays are copied", () => {
    assert.throws(
      () => createDataset({ ...parts, x: "1,2,3,4" as unknown as Float32Array }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.match(error.message, /dataset: x must be a Float32Array or an array of numbers, got a string/);
        return true;
      },
    );
    assert.throws(
      () => createDataset({ ...parts, y: new Float64Array(2) as unknown as Float32Array }),
      /y must be a Float32Array or an array of numbers, got a Float64Array/,
    );
    assert.throws(() => createDataset({ ...parts, x: [1, "2", 3, 4] as unknown as number[] }), InvalidArgumentError);
    assert.throws(() => createDataset(undefined as never), /createDataset: expected an object \{ features, outputs, x, y \}, got nothing/);
    assert.throws(() => createDataset({ ...parts, labels: [0.5, 1] }), /labels must be an Int32Array or an array of integers/);
    const ds = createDataset({ features: 2, outputs: 1, x: [1, 2, 3, 4], y: [0, 1], labels: [0, 1] });
    assert.ok(ds.x instanceof Float32Array && ds.y instanceof Float32Array && ds.labels instanceof Int32Array);
    assert.deepEqual([...ds.x], [1, 2, 3, 4]);
  });

  test("a NaN or infinite value in x or y is a DataError naming the 0-based row and column, and the line when known", () => {
    assert.throws(
      () => createDataset({ ...parts, x: [1, 2, 3, Number.NaN] }),
      (error: unknown) => {
        assert.ok(error instanceof DataError);
        assert.match(error.message, /^dataset: row 1, feature 1 \(0-based\) is NaN, expected a finite number$/);
        assert.equal(error.row, 1);
        return true;
      },
    );
    assert.throws(
      () => createDataset({ ...parts, y: [Number.POSITIVE_INFINITY, 0], lines: [7, 9], name: "f.csv" }),
      /f\.csv: row 0 \(line 7\), target 0 \(0-based\) is Infinity, expected a finite number$/,
    );
    assert.throws(() => createDataset({ ...parts, lines: [1] }), /1 lines for 2 rows/);
  });

  test("findNonFinite finds a NaN in a hand-built Dataset, which did not go through createDataset", () => {
    const ds = {
      size: 2,
      features: 2,
      outputs: 1,
      x: Float32Array.from([1, 2, Number.NaN, 4]),
      y: Float32Array.from([0, 1]),
      lines: Int32Array.from([3, 5]),
    };
    assert.deepEqual(findNonFinite(ds), { array: "x", row: 1, column: 0, value: Number.NaN, line: 5 });
    assert.equal(findNonFinite({ ...ds, x: Float32Array.from([1, 2, 3, 4]) }), undefined);
  });
});

describe("source lines", () => {
  const dir = tempDir("checks-lines");

  test("CSV and libsvm rows carry their 1-based source lines (past headers, comments and blank lines)", async () => {
    const csv = await readCsv(writeTemp(dir, "l.csv", "a,b,label\n# note\n1,2,0\n\n3,4,1\n5,6,0\n"), { comment: "#" });
    assert.deepEqual([...csv.lines!], [3, 5, 6]);
    const gz = await readCsv(writeTemp(dir, "l.csv.gz", gzipSync("1,2,0\r\n\r\n3,4,1\r\n")));
    assert.deepEqual([...gz.lines!], [1, 3]);
    const svm = await readLibsvm(writeTemp(dir, "l.svm", "# c\n1 1:1\n\n0 2:1\n"));
    assert.deepEqual([...svm.lines!], [2, 4]);
  });

  test("holdOut, selectRows, shuffle, split and scaling keep each row's line", async () => {
    const ds = await readCsv(writeTemp(dir, "rows.csv", Array.from({ length: 10 }, (_, i) => `${i},${i * i},${i % 2}`).join("\n")));
    const lineOf = (d: typeof ds, r: number) => d.lines![r]!;
    const rowOfX = (d: typeof ds, r: number) => d.x[r * d.features]!;
    const check = (d: typeof ds) => {
      assert.ok(d.lines, `${d.name} has lines`);
      for (let r = 0; r < d.size; r++) assert.equal(lineOf(d, r), rowOfX(d, r) + 1);
    };
    const { train, test: held } = holdOut(ds, 3);
    for (const part of [train, held, selectRows(ds, [4, 1, 8]), shuffle(ds, 3), ...split(ds, 3)]) check(part);
    assert.deepEqual(minMaxNormalize(ds).dataset.lines, ds.lines);
    assert.deepEqual(zScoreNormalize(ds).dataset.lines, ds.lines);
  });

  test("IDX rows have no lines (messages name the record instead)", async () => {
    const ds = await readIdxRows(writeTemp(dir, "r.idx", idxBytes([2, 2], Uint8Array.from([1, 2, 3, 4]))));
    assert.equal(ds.lines, undefined);
    assert.deepEqual([...ds.x], [1, 2, 3, 4]);
  });
});

describe("sizes implied by the data, checked before allocating", () => {
  const dir = tempDir("checks-size");

  function sizeError(error: DataError, limitBytes: number): DataSizeError {
    assert.ok(error instanceof DataSizeError, `expected a DataSizeError, got ${error.constructor.name}`);
    assert.equal(error.limitBytes, limitBytes);
    assert.ok(error.neededBytes > limitBytes);
    return error;
  }

  test("the default memory limit is 4 GiB", () => {
    assert.equal(DEFAULT_MEMORY_LIMIT_BYTES, 4 * 1024 ** 3);
  });

  test("libsvm: a huge feature index is refused naming the line, the index and the sizes", async () => {
    const path = writeTemp(dir, "big.libsvm", "1 1:1 2:3\n0 1:2\n1 100000000:2\n");
    const error = await refused(
      readLibsvm(path, { maxBytes: 1e6 }),
      /big\.libsvm line 3: feature index 100000000 implies 100000000 features; the 3 rows would need 1\.2 GB, more than the memory limit of 1 MB$/,
      {
        line: 3,
      },
    );
    assert.equal(sizeError(error, 1e6).neededBytes, 3 * (100000000 + 1) * 4);
  });

  test("libsvm: a real file with an index implying 8 GB fails fast under the default limit, without allocating it", TIMEOUT, async () => {
    const path = writeTemp(dir, "huge.libsvm", "1 1:1\n1 2000000000:2\n");
    const before = process.memoryUsage().rss;
    const error = await refused(
      readLibsvm(path),
      /huge\.libsvm line 2: feature index 2000000000 implies 2000000000 features; the 2 rows would need 16 GB, more than the memory limit of 4 GiB/,
    );
    sizeError(error, DEFAULT_MEMORY_LIMIT_BYTES);
    assert.ok(process.memoryUsage().rss - before < 300e6, "no dense buffer was allocated");
    await refused(
      readLibsvm(writeTemp(dir, "int.libsvm", "1 4294967297:2\n"), { maxBytes: Number.POSITIVE_INFINITY }),
      /index 4294967297 is above 2147483647/,
    );
  });

  test("libsvm and CSV: many one-hot classes are checked like features, naming the option", async () => {
    const svm = writeTemp(dir, "c.svm", "1 1:1\n0 1:2\n");
    await refused(
      readLibsvm(svm, { classes: 1e6, maxBytes: 1e6, optionNames: { classes: "--classes" } }),
      /c\.svm line 1: --classes 1000000 implies 1000000 outputs per row; the 1 row would need 4 MB/,
    );
    const csv = writeTemp(dir, "c.csv", "1,0\n2,1\n");
    await refused(
      readCsv(csv, { classes: 1e6, maxBytes: 1e6 }),
      /c\.csv line 1: classes 1000000 implies 1000000 outputs per row; the 1 row would need 4 MB/,
    );
  });

  test("CSV: the rows are checked while they grow, naming the line that passes the limit", async () => {
    const path = writeTemp(dir, "grow.csv", Array.from({ length: 100 }, (_, i) => `${i},${i},${i},0`).join("\n"));
    // 4 values a row (3 features + 1 label) x 4 bytes = 16 bytes a row: 50 rows fit in 800 bytes, the 51st does not
    const error = await refused(
      readCsv(path, { maxBytes: 800 }),
      /grow\.csv line 51: the 51 rows of 3 features and 1 output would need 816 bytes, more than the memory limit of 800 bytes/,
      {
        line: 51,
      },
    );
    assert.equal(sizeError(error, 800).neededBytes, 816);
    assert.equal((await readCsv(path, { maxBytes: 1600 })).size, 100);
    await refused(readCsv(path, { maxBytes: -1 }), /maxBytes is -1, expected a number of bytes > 0/);
  });

  test("IDX: the header's dimensions are checked before the body is read", async () => {
    // the header announces 1000x1000x1000 bytes but the body holds 4: the size error comes first, not "truncated"
    const path = writeTemp(dir, "dims.idx", idxBytes([1000, 1000, 1000], Uint8Array.from([1, 2, 3, 4])));
    const rows = await refused(
      readIdxRows(path, { maxBytes: 1e6 }),
      /dims\.idx: the header's dimensions 1000x1000x1000 imply 1000 records of 1000000 values \(and as many targets\); the 1000 rows would need 8 GB/,
    );
    sizeError(rows, 1e6);
    sizeError(
      await refused(
        readIdx(path, { maxBytes: 1e6 }),
        /dims\.idx: the header's dimensions 1000x1000x1000 would need 1 GB, more than the memory limit of 1 MB/,
      ),
      1e6,
    );
    await refused(readIdx(path), /truncated: expected 1000000000 bytes of data, got 4/);
  });

  test("IDX: one record too big for a chunk is a DataSizeError, not a RangeError", async () => {
    const path = writeTemp(dir, "record.idx", gzipSync(idxBytes([1, 65535, 65535, 65535], new Uint8Array(8))));
    const chunks = async () => {
      for await (const _ of readIdxRecords(path)) assert.fail("no chunk");
    };
    sizeError(
      await refused(chunks(), /record\.idx: the header's dimensions 1x65535x65535x65535 would need 281 TB/),
      DEFAULT_MEMORY_LIMIT_BYTES,
    );
  });
});

describe("scaling", () => {
  test("a value scaled far beyond the float32 range is a DataError naming the row, not an Infinity", () => {
    const train = createDataset({ features: 1, outputs: 1, x: [1, 1 + 2 ** -23], y: [0, 1] });
    const far = createDataset({ features: 1, outputs: 1, x: [0, 3e38], y: [0, 0], lines: [4, 8], name: "far.csv" });
    for (const scale of [
      () => minMaxNormalize(far, minMaxNormalize(train).stats),
      () => zScoreNormalize(far, zScoreNormalize(train).stats),
    ]) {
      assert.throws(scale, (error: unknown) => {
        assert.ok(error instanceof DataError);
        assert.match(
          error.message,
          /^far\.csv: row 1 \(line 8\), feature 0 \(0-based\): 3\.0000000054977558e\+38 scaled by the (min-max|z-score) statistics .* is beyond the 32-bit float range$/,
        );
        return true;
      });
    }
  });
});

function hash(text: string): number {
  let h = 7;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}
