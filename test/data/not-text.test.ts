// Text readers refuse files that are not UTF-8 text: UTF-16 (a NUL beside every ASCII character) or binary data
// (an IDX file read as CSV) get a DataError naming the file and line and saying what to do, not a number error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readCsv } from "../../src/data/csv.js";
import { DataError } from "../../src/data/errors.js";
import { readLibsvm } from "../../src/data/libsvm.js";
import { tempDir, writeTemp } from "./temp.js";

const dir = tempDir("not-text");

function utf16(text: string): Uint8Array {
  const bytes = new Uint8Array(2 + text.length * 2);
  bytes.set([0xff, 0xfe]);
  for (let i = 0; i < text.length; i++) bytes[2 + 2 * i] = text.charCodeAt(i);
  return bytes;
}

test("a UTF-16 CSV is refused on line 1 as UTF-16 text, with the fix", async () => {
  const path = writeTemp(dir, "u16.csv", utf16("1,2,0\n3,4,1\n"));
  await assert.rejects(readCsv(path), (e: unknown) => e instanceof DataError && e.line === 1 && /u16\.csv line 1: .*UTF-16 text .*save it as UTF-8/.test(e.message));
});

test("binary data read as libsvm is refused at its first NUL byte", async () => {
  const path = writeTemp(dir, "bin.txt", Uint8Array.from([0x31, 0x20, 0x31, 0x3a, 0x32, 0x0a, 0x00, 0x00, 0x08, 0x03, 0x0a]));
  await assert.rejects(readLibsvm(path), (e: unknown) => e instanceof DataError && e.line === 2 && /bin\.txt line 2: holds a NUL byte/.test(e.message));
});
