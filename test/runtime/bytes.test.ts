// Byte sizes in plain words (formatBytes) and sizes from flags (parseBytes), as the memory-limit messages use them.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatBytes, parseBytes } from "../../src/util/bytes.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe("formatBytes", () => {
  test("exact binary multiples in binary units", () => {
    assert.equal(formatBytes(GiB), "1 GiB");
    assert.equal(formatBytes(4 * GiB), "4 GiB");
    assert.equal(formatBytes(1.5 * GiB), "1.5 GiB");
    assert.equal(formatBytes(512 * MiB), "512 MiB");
    assert.equal(formatBytes(1024), "1 KiB");
  });

  test("other sizes in decimal units with three significant digits", () => {
    // 79.4 billion parameters as 32-bit floats: the example.
    assert.equal(formatBytes(4 * (784 * 1e8 + 1e8 + 1e8 * 10 + 10)), "318 GB");
    assert.equal(formatBytes(512e6), "512 MB");
    assert.equal(formatBytes(79_420_000), "79.4 MB");
    assert.equal(formatBytes(1234), "1.23 kB");
    assert.equal(formatBytes(999_600_000), "1 GB", "rounding up to 1000 moves to the next unit");
  });

  test("small counts in bytes", () => {
    assert.equal(formatBytes(0), "0 bytes");
    assert.equal(formatBytes(1), "1 byte");
    assert.equal(formatBytes(512), "512 bytes");
  });
});

describe("parseBytes", () => {
  test("plain byte counts and binary suffixes, any case, optional B/iB and space", () => {
    const cases: Array<[string, number]> = [
      ["1073741824", GiB],
      ["512M", 512 * MiB],
      ["8G", 8 * GiB],
      ["8GB", 8 * GiB],
      ["8 GiB", 8 * GiB],
      ["1.5g", 1.5 * GiB],
      ["64k", 64 * 1024],
      ["100b", 100],
      ["2T", 2 * 1024 ** 4],
    ];
    for (const [text, bytes] of cases) assert.equal(parseBytes(text), bytes, text);
  });

  test("refuses what is not a size", () => {
    for (const text of ["", "G", "-1G", "1X", "1e9", "one", "1..5G", "8 G B"]) assert.equal(parseBytes(text), undefined, text);
    assert.equal(parseBytes(42 as unknown as string), undefined, "a number is not a text");
  });

  test("formatBytes reads back what parseBytes gives for binary sizes", () => {
    for (const text of ["1G", "4G", "512M", "1.5G"]) assert.equal(parseBytes(formatBytes(parseBytes(text)!)), parseBytes(text), text);
  });
});
