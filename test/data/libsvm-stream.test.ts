// streamLibsvmSparse: the chunks, concatenated, are exactly readLibsvmSparse's rows (pairs, targets, lines) for any
// chunk size; select keeps rows by number without parsing the others; an index above the features is a DataError
// naming the line; a 200k-row file streams in chunks of the size asked; scanLibsvm counts rows and the largest index.
import assert from "node:assert/strict";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { describe, test } from "node:test";
import { DataError, mulberry32, readLibsvmSparse, scanLibsvm, streamLibsvmSparse, type SparseDataset } from "../../src/data/index.js";
import { tempDir, writeTemp } from "../support/temp.js";

const TIMEOUT = { timeout: 60_000 };

/** Every row of `ds` as plain values: its pairs (0-based), targets and line. */
function rowsOf(ds: SparseDataset): { pairs: [number, number][]; y: number[]; label?: number; line?: number }[] {
  return Array.from({ length: ds.size }, (_, r) => ({
    pairs: Array.from({ length: ds.rowPtr[r + 1]! - ds.rowPtr[r]! }, (_, k): [number, number] => [ds.indices[ds.rowPtr[r]! + k]!, ds.values[ds.rowPtr[r]! + k]!]),
    y: [...ds.y.subarray(r * ds.outputs, (r + 1) * ds.outputs)],
    ...(ds.labels ? { label: ds.labels[r]! } : {}),
    ...(ds.lines ? { line: ds.lines[r]! } : {}),
  }));
}

async function collect(chunks: AsyncIterable<SparseDataset>): Promise<SparseDataset[]> {
  const all: SparseDataset[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return all;
}

/** `rows` seeded random libsvm lines (labels 0-2, up to 6 increasing indices in [1, features]), with comments and blanks among them. */
function randomLibsvm(rows: number, features: number, seed: number): string {
  const random = mulberry32(seed);
  const lines: string[] = ["# generated"];
  for (let r = 0; r < rows; r++) {
    const tokens = [String(Math.floor(random() * 3))];
    let index = 0;
    for (let k = Math.floor(random() * 7); k > 0 && index < features; k--) {
      index += 1 + Math.floor(random() * Math.max(1, (features - index) / k));
      if (index > features) break;
      tokens.push(`${index}:${(Math.round(random() * 2000) / 1000 - 1).toString()}`);
    }
    lines.push(tokens.join(" "));
    if (r % 5 === 2) lines.push("");
    if (r % 7 === 3) lines.push("   # a comment");
  }
  return `${lines.join("\n")}\n`;
}

describe("streamLibsvmSparse", () => {
  const dir = tempDir("libsvm-stream");

  test("the chunks, concatenated, are readLibsvmSparse's rows for chunk sizes 1, 3, 7, all and more", TIMEOUT, async () => {
    const path = writeTemp(dir, "random.svm", `${randomLibsvm(40, 30, 11)}2 qid:4 3:1.5 30:-2\n`);
    const whole = await readLibsvmSparse(path, { classes: 3, features: 30 });
    assert.equal(whole.size, 41);
    for (const chunkRows of [1, 3, 7, whole.size, whole.size + 5]) {
      const chunks = await collect(streamLibsvmSparse(path, { features: 30, classes: 3, chunkRows }));
      assert.equal(chunks.length, Math.ceil(whole.size / chunkRows), `chunkRows ${chunkRows}`);
      chunks.forEach((chunk, i) => {
        assert.equal(chunk.size, Math.min(chunkRows, whole.size - i * chunkRows));
        assert.equal(chunk.features, 30);
        assert.equal(chunk.outputs, 3);
        assert.equal(chunk.name, "random.svm");
      });
      assert.deepEqual(chunks.flatMap(rowsOf), rowsOf(whole), `chunkRows ${chunkRows}`);
    }
    // without classes y is the label value, as readLibsvmSparse gives it
    const regression = await collect(streamLibsvmSparse(path, { features: 30, chunkRows: 4 }));
    assert.deepEqual(regression.flatMap(rowsOf), rowsOf(await readLibsvmSparse(path, { features: 30 })));
  });

  test("select keeps rows by their number among the data rows, and does not parse the others", TIMEOUT, async () => {
    const path = writeTemp(dir, "select.svm", ["# rows 0..5", "0 1:1", "1 2:2", "", "0 3:x", "1 1:4 4:4", "0 2:5", "1 9999:1"].join("\n"));
    const kept = await collect(streamLibsvmSparse(path, { features: 4, chunkRows: 2, select: (row) => row % 3 === 1 }));
    const rows = kept.flatMap(rowsOf);
    assert.deepEqual(rows.map((r) => r.line), [3, 7]);
    assert.deepEqual(rows.map((r) => r.pairs), [[[1, 2]], [[1, 5]]]);
    // the rows 2 (a bad value) and 5 (an index above the features) are not kept, so not parsed; without select they fail
    await assert.rejects(collect(streamLibsvmSparse(path, { features: 4 })), (error: unknown) => error instanceof DataError && error.line === 5);
    assert.deepEqual(await collect(streamLibsvmSparse(path, { features: 4, select: () => false })), []);
  });

  test("an index above the features is a DataError naming the file and line; so are missing options and an empty file", TIMEOUT, async () => {
    const path = writeTemp(dir, "wide.svm", "1 1:1 2:1\n0 3:1\n1 2:1 4:0.5\n0 1:1\n");
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of streamLibsvmSparse(path, { features: 3, chunkRows: 1 })) seen.push(chunk.lines![0]!);
      })(),
      (error: unknown) => {
        assert.ok(error instanceof DataError);
        assert.equal(error.line, 3);
        assert.match(error.message, /wide\.svm line 3, column 3 \("4:0\.5"\): index 4 is above the 3 features/);
        return true;
      },
    );
    assert.deepEqual(seen, [1, 2], "the chunks before the bad line were yielded");
    await assert.rejects(collect(streamLibsvmSparse(path, {} as { features: number })), /wide\.svm: a stream needs the features option/);
    await assert.rejects(collect(streamLibsvmSparse(path, { features: 4, chunkRows: 0 })), /chunkRows is 0, expected an integer >= 1/);
    const empty = writeTemp(dir, "empty.svm", "# nothing\n\n");
    await assert.rejects(collect(streamLibsvmSparse(empty, { features: 4 })), /empty\.svm: no data rows/);
    assert.deepEqual(await scanLibsvm(path), { rows: 4, maxIndex: 4 });
    await assert.rejects(scanLibsvm(writeTemp(dir, "bad.svm", "1 1:1\n0 2:1 1:1\n")), (error: unknown) => error instanceof DataError && error.line === 2);
  });

  test("a 200k-row file streams in chunks of 1000 rows, each holding only its own rows", TIMEOUT, async () => {
    const path = `${dir}/big.svm`;
    const out = createWriteStream(path);
    const random = mulberry32(3);
    const rows = 200_000;
    for (let r = 0; r < rows; r += 1000) {
      let text = "";
      for (let i = r; i < r + 1000; i++) text += `${i % 2} ${1 + (i % 50)}:1 ${60 + Math.floor(random() * 1000)}:${(i % 7) / 7}\n`;
      if (!out.write(text)) await once(out, "drain");
    }
    out.end();
    await once(out, "finish");
    let count = 0;
    let chunks = 0;
    let nextLine = 1;
    for await (const chunk of streamLibsvmSparse(path, { features: 1060, chunkRows: 1000 })) {
      chunks++;
      assert.equal(chunk.size, 1000);
      assert.equal(chunk.rowPtr[0], 0);
      assert.equal(chunk.indices.length, 2000, "a chunk's arrays hold its own 1000 rows' pairs only");
      assert.equal(chunk.lines![0], nextLine);
      assert.equal(chunk.lines![999], nextLine + 999);
      nextLine += 1000;
      count += chunk.size;
    }
    assert.equal(chunks, 200);
    assert.equal(count, rows);
  });
});
