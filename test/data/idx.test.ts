// IDX reader: real MNIST test files (gzip), streaming chunks against the whole read, raw copies, and broken copies.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { DataError, readIdx, readIdxRecords } from "../../src/data/index.js";
import { sharedDataDir } from "./paths.js";
import { tempDir, writeTemp } from "./temp.js";

const mnist = join(sharedDataDir(), "mnist");
const testImages = join(mnist, "t10k-images-idx3-ubyte.gz");
const testLabels = join(mnist, "t10k-labels-idx1-ubyte.gz");

/** A ubyte IDX file: magic 0x0000080N, big-endian dims, then the bytes. */
function idxBytes(dims: number[], data: Uint8Array, magic = 0x800 + dims.length): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DataError, `expected a DataError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

describe("readIdx on real MNIST test files", () => {
  test("images are 10000x28x28 and labels 10000, all digits", async () => {
    const images = await readIdx(testImages);
    assert.deepEqual(images.dims, [10000, 28, 28]);
    assert.equal(images.data.length, 10000 * 28 * 28);
    const labels = await readIdx(testLabels);
    assert.deepEqual(labels.dims, [10000]);
    assert.ok(labels.data.every((label) => label <= 9));
  });

  test("streaming chunks concatenate to the same bytes as readIdx", async () => {
    const whole = await readIdx(testImages);
    const streamed = new Uint8Array(whole.data.length);
    let expectedIndex = 0;
    for await (const chunk of readIdxRecords(testImages, { recordsPerChunk: 777 })) {
      assert.equal(chunk.index, expectedIndex);
      assert.equal(chunk.data.length, chunk.count * 28 * 28);
      assert.ok(chunk.count === 777 || chunk.index + chunk.count === 10000, "only the last chunk is short");
      assert.deepEqual(chunk.dims, [10000, 28, 28]);
      streamed.set(chunk.data, chunk.index * 28 * 28);
      expectedIndex += chunk.count;
    }
    assert.equal(expectedIndex, 10000);
    assert.ok(Buffer.from(streamed).equals(Buffer.from(whole.data)));
  });

  test("stopping early releases the file without error", async () => {
    let chunks = 0;
    for await (const chunk of readIdxRecords(testLabels, { recordsPerChunk: 100 })) {
      assert.equal(chunk.count, 100);
      if (++chunks === 3) break;
    }
    assert.equal(chunks, 3);
  });
});

describe("readIdx on temporary copies", () => {
  const dir = tempDir("idx");
  const rawLabels = gunzipSync(readFileSync(testLabels));

  test("an un-gzipped copy reads the same (gzip is detected by magic, not name)", async () => {
    const path = writeTemp(dir, "labels-named-like.gz", rawLabels);
    const fromRaw = await readIdx(path);
    const fromGzip = await readIdx(testLabels);
    assert.deepEqual(fromRaw.dims, [10000]);
    assert.ok(Buffer.from(fromRaw.data).equals(Buffer.from(fromGzip.data)));
  });

  test("a truncated raw file says how many data bytes were expected and found", async () => {
    const path = writeTemp(dir, "truncated-labels", rawLabels.subarray(0, 8 + 5000));
    await rejectsWith(readIdx(path), /truncated-labels: truncated: expected 10000 bytes of data, got 5000/);
  });

  test("truncated content inside a valid gzip stream is found too", async () => {
    const path = writeTemp(dir, "truncated.gz", gzipSync(rawLabels.subarray(0, 8 + 123)));
    await rejectsWith(readIdx(path), /truncated\.gz: truncated: expected 10000 bytes of data, got 123/);
  });

  test("a cut gzip stream is reported as truncated", async () => {
    const gz = readFileSync(testLabels);
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
      for await (const _ of readIdxRecords(testLabels, { recordsPerChunk: 0 })) void _;
    };
    await rejectsWith(iterate(), /recordsPerChunk is 0/);
  });
});
