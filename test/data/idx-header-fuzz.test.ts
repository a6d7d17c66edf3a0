// Seeded fuzzing of the IDX header decoder (issue 10), beside the file-level IDX fuzz of fuzz.test.ts: 10,000
// random, truncated, bit-flipped and oversized headers through parseIdxHeader, whole and fed in pieces as openIdx
// feeds it (the answer must not depend on how the bytes arrive), each a consistent header, "need-more" only while
// bytes are missing, or a DataError; then files whose headers claim up to 4 x (2^32 - 1) bytes of data are refused
// by every reader before allocating (memory measured).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DataError, readIdx, readIdxRecords, readIdxRows } from "../../src/data/index.js";
import { IDX_UBYTE_MAGICS, type IdxHeader, parseIdxHeader } from "../../src/data/idx.js";
import { tempDir, writeTemp } from "../support/temp.js";
import { idxBytes } from "./fixtures.js";
import { Fuzz } from "../support/fuzz.js";

const CASES = 10_000;
const TIMEOUT = { timeout: 60_000 };
const PATH = "/data/fuzz.idx";


/** A dimension: small, zero, or huge. */
function dimension(fuzz: Fuzz): number {
  return fuzz.chance(0.7) ? 1 + fuzz.int(30) : fuzz.pick([0, 1, 2 ** 16, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, fuzz.int(2 ** 32)]);
}

/** A header (and a few data bytes), valid or spoiled: random bytes, cuts, bit flips, other magics and types, 0-255 dims. */
function headerBytes(fuzz: Fuzz): Uint8Array {
  const dims = Array.from({ length: 1 + fuzz.int(4) }, () => dimension(fuzz));
  const valid = idxBytes(dims, fuzz.bytes(fuzz.int(8)));
  switch (fuzz.int(7)) {
    case 0:
      return valid;
    case 1:
      return fuzz.bytes(fuzz.int(40));
    case 2:
      return valid.subarray(0, fuzz.int(valid.length + 1));
    case 3: {
      const out = valid.slice();
      for (let i = 1 + fuzz.int(3); i > 0; i--) out[fuzz.int(Math.min(out.length, 8))]! ^= 1 << fuzz.int(8);
      return out;
    }
    case 4:
      // another type byte (signed, int16, ..., unknown) or dimension count (0, 5, 255)
      return idxBytes(dims, new Uint8Array(0), fuzz.pick([0x900, 0xb00, 0xc00, 0xd00, 0xe00, 0x0700, 0xff00]) + fuzz.int(5));
    case 5:
      return Uint8Array.from([0, 0, 8, fuzz.pick([0, 5, 16, 255]), ...fuzz.bytes(fuzz.int(64))]);
    default:
      return idxBytes(dims, new Uint8Array(0), fuzz.pick(IDX_UBYTE_MAGICS));
  }
}

/** parseIdxHeader's answer for `bytes` fed in random pieces, as openIdx does (undefined: still "need-more" at the end). */
function parseInPieces(fuzz: Fuzz, bytes: Uint8Array): IdxHeader | undefined {
  let fed = 0;
  for (;;) {
    const header = parseIdxHeader(PATH, bytes.subarray(0, fed));
    if (header !== "need-more") return header;
    if (fed === bytes.length) return undefined;
    fed = Math.min(bytes.length, fed + 1 + fuzz.int(6));
  }
}

/** Either a header or a DataError (any other error fails the test naming the case). */
function outcome(what: () => string, parse: () => IdxHeader | "need-more" | undefined): IdxHeader | "need-more" | undefined | DataError {
  try {
    return parse();
  } catch (error) {
    if (error instanceof DataError) return error;
    assert.fail(`${what()}: expected a header or a DataError, got ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`);
  }
}

describe("IDX header decoder fuzz (parseIdxHeader)", () => {
  test(`${CASES} headers, whole and in pieces: consistent, need-more while short, or a DataError`, TIMEOUT, () => {
    const fuzz = new Fuzz(7001);
    let headers = 0;
    for (let i = 0; i < CASES; i++) {
      const bytes = headerBytes(fuzz);
      const what = () => `idx case ${i}: ${Buffer.from(bytes).toString("hex")}`;
      const whole = outcome(what, () => parseIdxHeader(PATH, bytes));
      const pieces = outcome(what, () => parseInPieces(fuzz, bytes));
      if (whole instanceof DataError) {
        assert.ok(pieces instanceof DataError, `${what()}: refused whole, not in pieces`);
        assert.equal(whole.message, (pieces as DataError).message, what());
        continue;
      }
      if (whole === "need-more") {
        assert.equal(pieces, undefined, what());
        assert.ok(bytes.length < 4 || bytes.length < 4 + 4 * bytes[3]!, `${what()}: need-more with the whole header there`);
        continue;
      }
      headers++;
      assert.deepEqual(pieces, whole, what());
      const h = whole as IdxHeader;
      assert.equal(h.dims.length, bytes[3], what());
      assert.equal(h.headerBytes, 4 + 4 * h.dims.length, what());
      assert.ok(h.dims.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffffffff), what());
      assert.equal(h.recordBytes, h.dims.slice(1).reduce((a, b) => a * b, 1), what());
      assert.equal(h.dataBytes, h.dims[0]! * h.recordBytes, what());
    }
    assert.ok(headers > CASES / 10, `${headers} headers parsed`);
  });

  test("files claiming up to 4 x (2^32 - 1) bytes of data are refused by every reader before allocating", TIMEOUT, async () => {
    const fuzz = new Fuzz(7002);
    const dir = tempDir("idx-header-fuzz");
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage();
    for (let i = 0; i < 200; i++) {
      const dims = Array.from({ length: 1 + fuzz.int(3) }, () => fuzz.pick([2 ** 31, 2 ** 32 - 1, 2 ** 20 + fuzz.int(2 ** 31)]));
      if (dims.length === 1) dims.push(2 ** 12);
      const path = writeTemp(dir, `${i}.idx`, idxBytes(dims, fuzz.bytes(fuzz.int(64))));
      const what = `huge idx case ${i}: dims ${dims.join("x")}`;
      const reads: (() => Promise<unknown>)[] = [
        () => readIdx(path),
        () => readIdxRows(path),
        async () => {
          for await (const chunk of readIdxRecords(path, { recordsPerChunk: 1 + fuzz.int(2 ** 20) })) assert.fail(`${what}: a chunk of ${chunk.data.length} bytes was read`);
        },
      ];
      for (const read of reads) {
        await assert.rejects(read(), (error: unknown) => {
          assert.ok(error instanceof DataError, `${what}: ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : error}`);
          return true;
        });
      }
    }
    gc?.();
    const after = process.memoryUsage();
    const grew = Math.max(after.arrayBuffers - before.arrayBuffers, after.heapUsed - before.heapUsed);
    assert.ok(grew < 64 * 2 ** 20, `memory grew by ${grew} bytes: a claimed size was allocated`);
  });
});
