// CRC-32 (IEEE): known check values, chaining, and agreement with zlib's gzip trailer on random data.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { crc32 } from "../../src/model/file/index.js";
import { seededRandom } from "../helpers.js";

const ascii = (text: string) => new TextEncoder().encode(text);

/** The CRC-32 zlib stores in a gzip member's trailer (bytes -8..-4, little-endian). */
function gzipCrc(data: Uint8Array): number {
  const gz = gzipSync(data);
  return new DataView(gz.buffer, gz.byteOffset, gz.byteLength).getUint32(gz.byteLength - 8, true);
}

function randomBytes(n: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

describe("crc32", () => {
  test("matches the standard check values", () => {
    assert.equal(crc32(ascii("123456789")), 0xcbf43926);
    assert.equal(crc32(ascii("")), 0);
    assert.equal(crc32(ascii("a")), 0xe8b7be43);
    assert.equal(crc32(ascii("The quick brown fox jumps over the lazy dog")), 0x414fa339);
    assert.equal(crc32(new Uint8Array(32)), 0x190a55ad);
  });

  test("is unsigned", () => {
    assert.ok(crc32(ascii("123456789")) > 0x7fffffff);
  });

  test("chains: crc32(b, crc32(a)) equals crc32(a + b)", () => {
    const data = randomBytes(1000, 7);
    for (const cut of [0, 1, 3, 500, 999, 1000]) {
      assert.equal(crc32(data.subarray(cut), crc32(data.subarray(0, cut))), crc32(data), `cut at ${cut}`);
    }
  });

  test("agrees with zlib's gzip trailer on random data", () => {
    for (const [i, n] of [0, 1, 2, 3, 4, 5, 7, 64, 255, 1000, 4097, 65537].entries()) {
      const data = randomBytes(n, 100 + i);
      assert.equal(crc32(data), gzipCrc(data), `${n} random bytes`);
    }
  });

  test("reads only the view it is given", () => {
    const data = randomBytes(100, 3);
    assert.equal(crc32(data.subarray(10, 90)), gzipCrc(data.slice(10, 90)));
  });
});
