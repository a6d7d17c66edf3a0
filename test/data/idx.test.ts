// IDX reader on small generated files (gzip and raw): dims, streaming chunks against the whole read, and broken copies.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { DataError, readIdx, readIdxRecords } from "../../src/data/index.js";
import { tempDir, writeTemp } from "../support/temp.js";
import { idxBytes, imagesIdx, labelsIdx } from "./fixtures.js";

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DataError, `expected a DataError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

describe("IDX", () => {
  const RECORDS = 10;
  const dir = tempDir("idx");
  const rawImages = imagesIdx(RECORDS, 7);
  const rawLabels = labelsIdx(RECORDS);
  const images = writeTemp(dir, "images-idx3-ubyte.gz", gzipSync(rawImages));
  const labels = writeTemp(dir, "labels-idx1-ubyte.gz", gzipSync(rawLabels));

  describe("readIdx on gzip files", () => {
    test("images are 10x28x28 and labels 10, with the bytes written", async () => {
      const read = await readIdx(images);
      assert.deepEqual(read.dims, [RECORDS, 28, 28]);
      assert.equal(read.data.length, RECORDS * 28 * 28);
      assert.ok(Buffer.from(read.data).equals(Buffer.from(rawImages.subarray(16))));
      const readLabels = await readIdx(labels);
      assert.deepEqual(readLabels.dims, [RECORDS]);
      assert.deepEqual([...readLabels.data], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    test("streaming chunks concatenate to the same bytes as readIdx", async () => {
      const whole = await readIdx(images);
      const streamed = new Uint8Array(whole.data.length);
      let expectedIndex = 0;
      for await (const chunk of readIdxRecords(images, { recordsPerChunk: 3 })) {
        assert.equal(chunk.index, expectedIndex);
        assert.equal(chunk.data.length, chunk.count * 28 * 28);
        assert.ok(chunk.count === 3 || chunk.index + chunk.count === RECORDS, "only the last chunk is short");
        assert.deepEqual(chunk.dims, [RECORDS, 28, 28]);
        streamed.set(chunk.data, chunk.index * 28 * 28);
        expectedIndex += chunk.count;
      }
      assert.equal(expectedIndex, RECORDS);
      assert.ok(Buffer.from(streamed).equals(Buffer.from(whole.data)));
    });

    test("stopping early releases the file without error", async () => {
      let chunks = 0;
      for await (const chunk of readIdxRecords(labels, { recordsPerChunk: 2 })) {
        assert.equal(chunk.count, 2);
        if (++chunks === 3) break;
      }
      assert.equal(chunks, 3);
    });
  });

  describe("readIdx on raw and broken copies", () => {
    test("an un-gzipped copy reads the same (gzip is detected by magic, not name)", async () => {
      const path = writeTemp(dir, "labels-named-like.gz", rawLabels);
      const fromRaw = await readIdx(path);
      const fromGzip = await readIdx(labels);
      assert.deepEqual(fromRaw.dims, [RECORDS]);
      assert.ok(Buffer.from(fromRaw.data).equals(Buffer.from(fromGzip.data)));
    });

    test("a truncated raw file says how many data bytes were expected and found", async () => {
      const path = writeTemp(dir, "truncated-labels", rawLabels.subarray(0, 8 + 5));
      await rejectsWith(readIdx(path), /truncated-labels: truncated: expected 10 bytes of data, got 5/);
    });

    test("truncated content inside a valid gzip stream is found too", async () => {
      const path = writeTemp(dir, "truncated.gz", gzipSync(rawImages.subarray(0, 16 + 123)));
      await rejectsWith(readIdx(path), /truncated\.gz: truncated: expected 7840 bytes of data, got 123/);
    });

    test("a cut gzip stream is reported as truncated", async () => {
      const gz = gzipSync(rawImages);
      const path = writeTemp(dir, "cut.gz", gz.subarray(0, gz.length >> 1));
      await rejectsWith(readIdx(path), /cut\.gz: truncated: the gzip stream ends early/);
    });

    test("a header shorter than its dims is truncated", async () => {
      const path = writeTemp(dir, "short-header", rawLabels.subarray(0, 6));
      await rejectsWith(readIdx(path), /short-header: truncated: the IDX header ends after 6 bytes/);
    });

    test("wrong magic names the magic found and the ones expected", async () => {
      const path = writeTemp(dir, "wrong-magic", idxBytes([3], new Uint8Array(3), 0x12345678));
      await rejectsWith(readIdx(path), /wrong-magic: wrong magic 0x12345678: expected one of 0x00000801, .*0x00000803/);
    });

    test("a float32 IDX file is an unsupported data type", async () => {
      const path = writeTemp(dir, "floats", idxBytes([2], new Uint8Array(8), 0x00000d01));
      await rejectsWith(readIdx(path), /floats: IDX data type 0x0d \(float32\) is not supported/);
    });

    test("bytes after the announced data are refused", async () => {
      const path = writeTemp(dir, "trailing", idxBytes([4], new Uint8Array(6)));
      await rejectsWith(readIdx(path), /trailing: more bytes than the 4 bytes of data the header announces/);
    });

    test("a missing file is a DataError naming it", async () => {
      await rejectsWith(readIdx(join(dir, "absent")), /absent: cannot read the file \(ENOENT/);
    });

    test("a small 2-D file streams in chunks of whole records", async () => {
      const data = Uint8Array.from({ length: 5 * 3 }, (_, i) => i);
      const path = writeTemp(dir, "small", idxBytes([5, 3], data));
      const chunks = [];
      for await (const chunk of readIdxRecords(path, { recordsPerChunk: 2 })) chunks.push(chunk);
      assert.deepEqual(chunks.map((c) => [c.index, c.count, [...c.data]]), [
        [0, 2, [0, 1, 2, 3, 4, 5]],
        [2, 2, [6, 7, 8, 9, 10, 11]],
        [4, 1, [12, 13, 14]],
      ]);
    });

    test("recordsPerChunk must be a positive integer", async () => {
      const iterate = async () => {
        for await (const _ of readIdxRecords(labels, { recordsPerChunk: 0 })) void _;
      };
      await rejectsWith(iterate(), /recordsPerChunk is 0/);
    });
  });
});
