// Seeded fuzzing of the CSV, libsvm and IDX readers on files in a temp dir (raw and gzip): mutations that keep a
// file valid must read to the values written; random bytes, truncations, huge numbers, odd encodings (BOM,
// UTF-16, CRLF, NUL bytes, lone surrogates) and odd options must either read to finite data or be refused with a
// DataError, never another error, a crash or a hang.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  type CsvOptions,
  DataError,
  type Dataset,
  findNonFinite,
  type LibsvmOptions,
  readCsv,
  readIdx,
  readIdxRecords,
  readIdxRows,
  readLibsvm,
} from "../../src/data/index.js";
import { tempDir, writeTemp } from "../support/temp.js";
import { idxBytes } from "./fixtures.js";
import { Fuzz } from "../support/fuzz.js";

const CASES = 100;
const CASE_TIMEOUT_MS = 5_000;
const TIMEOUT = { timeout: 60_000 };
const dir = tempDir("fuzz");


let fileCount = 0;
function write(name: string, content: string | Uint8Array): string {
  return writeTemp(dir, `${fileCount++}-${name}`, content);
}

/** The read's result, or the DataError it was refused with; any other error, or no answer in time, fails the test. */
async function outcome<T>(what: string, read: () => Promise<T>): Promise<T | DataError> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CASE_TIMEOUT_MS} ms (a hang)`)), CASE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([read(), hang]);
  } catch (error) {
    if (error instanceof DataError) return error;
    throw new Error(
      `${what}: expected a result or a DataError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** A dataset that was read must hold finite values and consistent sizes. */
function assertSane(ds: Dataset, what: string): void {
  assert.equal(findNonFinite(ds), undefined, `${what}: non-finite value read`);
  assert.equal(ds.x.length, ds.size * ds.features, what);
  assert.equal(ds.y.length, ds.size * ds.outputs, what);
  if (ds.lines) assert.equal(ds.lines.length, ds.size, what);
}

/** How a file's bytes are spoiled: each returns the new bytes. */
function corrupt(fuzz: Fuzz, bytes: Uint8Array): Uint8Array {
  const kind = fuzz.int(6);
  const at = fuzz.int(bytes.length + 1);
  const splice = (insert: number[]) => Uint8Array.from([...bytes.subarray(0, at), ...insert, ...bytes.subarray(at)]);
  switch (kind) {
    case 0: // truncation
      return bytes.subarray(0, at);
    case 1: // a random byte replaced
      return Uint8Array.from(bytes, (b, i) => (i === at ? fuzz.int(256) : b));
    case 2: // NUL bytes
      return splice([0, 0]);
    case 3: // a lone surrogate (U+D800 as UTF-8) and invalid UTF-8
      return splice([0xed, 0xa0, 0x80, 0xff, 0xfe]);
    case 4: // a line or paragraph separator, a CR alone, a tab
      return splice(fuzz.pick([[0xe2, 0x80, 0xa8], [0x0d], [0x09], [0xc2, 0x85]]));
    default: // random bytes
      return Uint8Array.from({ length: fuzz.int(120) }, () =>
        fuzz.chance(0.7) ? fuzz.pick([...Buffer.from("0123456789.,-+e:# \n")]) : fuzz.int(256),
      );
  }
}

/** UTF-16 (LE or BE, with a BOM) of a text. */
function utf16(text: string, bigEndian: boolean): Uint8Array {
  const le = Buffer.from(`\uFEFF${text}`, "utf16le");
  return bigEndian ? Uint8Array.from(le, (_, i) => le[i ^ 1]!) : le;
}

/** A number written in one of the spellings the readers accept, and its value. */
function numberText(fuzz: Fuzz): [string, number] {
  const base = fuzz.pick([0, 1, -1, 0.5, 42, -7.25, 1e-3, 123456, 3.4e38, -3.4e38, 1e-300]);
  const value = Math.abs(base) < 1e30 && fuzz.chance(0.5) ? base * fuzz.int(100) : base;
  const text = fuzz.pick([String(value), value.toExponential(), value.toExponential().toUpperCase(), value.toFixed(3)]);
  return [text, Number(text)];
}

/** Numbers no Float32Array can hold, and words for infinities and NaNs. */
const HUGE = ["1e400", "-1e400", "3.5e38", "-1e39", `1${"0".repeat(400)}`, "Infinity", "-inf", "NaN", "nan", "+Inf"];
/** Spellings that are not plain decimal numbers. */
const NOT_NUMBERS = ["0x10", "1_000", "١٢٣", "1,5", "1e", ".", "-", "+", "--1", "1..2", "٣", "１"];

describe("CSV reader fuzz", () => {
  interface Table {
    readonly text: string;
    readonly x: number[];
    readonly y: number[];
    readonly lines: number[];
    readonly cells: { line: number; column: number }[];
    readonly header: boolean;
  }

  /** A random valid table: optional header, 1-12 rows of 2-5 numbers, odd spacing, quotes and blank lines. */
  function table(fuzz: Fuzz, newline: string): Table {
    const columns = 2 + fuzz.int(4);
    const rows = 1 + fuzz.int(12);
    const out: string[] = [];
    const x: number[] = [];
    const y: number[] = [];
    const lines: number[] = [];
    const cells: { line: number; column: number }[] = [];
    const header = fuzz.chance(0.5);
    if (header) out.push(Array.from({ length: columns }, (_, j) => (fuzz.chance(0.3) ? `"c ${j}"` : `col${j}`)).join(","));
    for (let r = 0; r < rows; r++) {
      while (fuzz.chance(0.15)) out.push(fuzz.pick(["", "  ", "\t"]));
      const fields = Array.from({ length: columns }, (_, j) => {
        const [text, value] = numberText(fuzz);
        (j === columns - 1 ? y : x).push(Math.fround(value));
        const spaced = fuzz.chance(0.2) ? ` ${text} ` : text;
        return fuzz.chance(0.1) ? `"${spaced}"` : spaced;
      });
      out.push(fields.join(","));
      lines.push(out.length);
      cells.push({ line: out.length, column: 1 + fuzz.int(columns) });
    }
    const text = out.join(newline) + (fuzz.chance(0.7) ? newline : "");
    return { text, x, y, lines, cells, header };
  }

  test(`${CASES} valid tables (CRLF, BOM, gzip, blanks, quotes) read to the values written`, TIMEOUT, async () => {
    const fuzz = new Fuzz(11);
    for (let i = 0; i < CASES; i++) {
      const t = table(fuzz, fuzz.pick(["\n", "\r\n"]));
      let bytes: Uint8Array = Buffer.from((fuzz.chance(0.2) ? "\uFEFF" : "") + t.text);
      if (fuzz.chance(0.3)) bytes = gzipSync(bytes);
      const what = `case ${i}: ${JSON.stringify(t.text.slice(0, 200))}`;
      const ds = await outcome(what, () => readCsv(write("t.csv", bytes)));
      assert.ok(!(ds instanceof DataError), `${what}: ${ds instanceof DataError ? ds.message : ""}`);
      assert.deepEqual([...ds.x], t.x, what);
      assert.deepEqual([...ds.y], t.y, what);
      assert.deepEqual([...ds.lines!], t.lines, what);
    }
  });

  test(
    `${CASES} spoiled tables (truncations, random bytes, NUL, surrogates, UTF-16) read sanely or are refused with a DataError`,
    TIMEOUT,
    async () => {
      const fuzz = new Fuzz(12);
      for (let i = 0; i < CASES; i++) {
        const t = table(fuzz, fuzz.pick(["\n", "\r\n", "\r"]));
        const raw = Buffer.from(t.text);
        const bytes = fuzz.chance(0.1) ? utf16(t.text, fuzz.chance(0.5)) : corrupt(fuzz, raw);
        const gz = fuzz.chance(0.3);
        const content =
          gz && fuzz.chance(0.5) ? gzipSync(bytes).subarray(0, fuzz.int(gzipSync(bytes).length + 1)) : gz ? gzipSync(bytes) : bytes;
        const what = `case ${i}: ${JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 200))}`;
        const ds = await outcome(what, () => readCsv(write("s.csv", content), { classes: fuzz.chance(0.2) ? 2 : undefined }));
        if (!(ds instanceof DataError)) assertSane(ds, what);
      }
    },
  );

  test(`${CASES} tables with a huge or non-number value are refused at its line and column`, TIMEOUT, async () => {
    const fuzz = new Fuzz(13);
    for (let i = 0; i < CASES; i++) {
      const t = table(fuzz, "\n");
      const lines = t.text.split("\n");
      const cell = fuzz.pick(t.cells);
      const fields = lines[cell.line - 1]!.split(",");
      const bad = fuzz.chance(0.6) ? fuzz.pick(HUGE) : fuzz.pick(NOT_NUMBERS.filter((n) => !n.includes(",")));
      fields[cell.column - 1] = bad;
      lines[cell.line - 1] = fields.join(",");
      const what = `case ${i}: ${bad} on line ${cell.line}`;
      const result = await outcome(what, () => readCsv(write("h.csv", lines.join("\n"))));
      // a first data line of numbers and one word may be read as a header (then maybe "no data rows"); else an error at the cell
      if (cell.line === t.lines[0] && !t.header) continue;
      assert.ok(result instanceof DataError, `${what}: read`);
      assert.equal(result.line, cell.line, `${what}: ${result.message}`);
      assert.equal(result.column, cell.column, `${what}: ${result.message}`);
    }
  });

  test(`${CASES} odd options on valid tables are refused with a DataError or read sanely`, TIMEOUT, async () => {
    const fuzz = new Fuzz(14);
    const odd = [Number.NaN, -1, 0, 1.5, 1e9, -1e9, Number.POSITIVE_INFINITY, "", "nope", "col1"];
    for (let i = 0; i < CASES; i++) {
      const t = table(fuzz, "\n");
      const options: Record<string, unknown> = {};
      if (fuzz.chance(0.4)) options.labelColumn = fuzz.pick([...odd, null, 0, 1]);
      if (fuzz.chance(0.3)) options.featureColumns = fuzz.pick([[], [0], [0, 0], [Number.NaN], [-1], [1.5], [99], [0, 1]]);
      if (fuzz.chance(0.3)) options.classes = fuzz.pick([...odd, 2, 1000, 1e7]);
      if (fuzz.chance(0.3)) options.delimiter = fuzz.pick(["", ",,", '"', "\n", ";", "\t", "é", "x"]);
      if (fuzz.chance(0.2)) options.comment = fuzz.pick(["", "#", "1", "-", "col"]);
      if (fuzz.chance(0.2)) options.header = fuzz.pick([true, false, "auto"]);
      if (fuzz.chance(0.3)) options.maxBytes = fuzz.pick([...odd.filter((o) => typeof o === "number"), 8, 64, 1e12]);
      const what = `case ${i}: ${JSON.stringify(options)} on ${JSON.stringify(t.text.slice(0, 120))}`;
      const ds = await outcome(what, () => readCsv(write("o.csv", t.text), options as CsvOptions));
      if (!(ds instanceof DataError)) assertSane(ds, what);
    }
  });
});

describe("libsvm reader fuzz", () => {
  interface Sparse {
    readonly text: string;
    readonly x: number[];
    readonly y: number[];
    readonly features: number;
    readonly lines: number[];
  }

  /** 1-10 rows of a label and increasing 1-based index:value entries (up to 8 features), comments, qid and blanks. */
  function sparse(fuzz: Fuzz, newline: string): Sparse {
    const features = 1 + fuzz.int(8);
    const rows = 1 + fuzz.int(10);
    const out: string[] = [];
    const dense: number[][] = [];
    const y: number[] = [];
    const lines: number[] = [];
    let maxIndex = 0;
    for (let r = 0; r < rows; r++) {
      while (fuzz.chance(0.15)) out.push(fuzz.pick(["", "# a comment", "   "]));
      const [labelText, label] = numberText(fuzz);
      const row = new Array<number>(features).fill(0);
      const tokens = [labelText];
      if (fuzz.chance(0.1)) tokens.push(`qid:${fuzz.int(9)}`);
      for (let j = 1; j <= features; j++) {
        if (!(r === 0 && j === 1) && !fuzz.chance(0.5)) continue;
        const [text, value] = numberText(fuzz);
        tokens.push(`${j}:${text}`);
        row[j - 1] = Math.fround(value);
        maxIndex = Math.max(maxIndex, j);
      }
      y.push(Math.fround(label));
      dense.push(row);
      out.push(tokens.join(fuzz.pick([" ", "  ", "\t"])) + (fuzz.chance(0.1) ? " # trailing" : ""));
      lines.push(out.length);
    }
    const x = dense.flatMap((row) => row.slice(0, maxIndex));
    return { text: out.join(newline) + (fuzz.chance(0.7) ? newline : ""), x, y, features: maxIndex, lines };
  }

  test(`${CASES} valid files (CRLF, gzip, comments, qid) read to the values written`, TIMEOUT, async () => {
    const fuzz = new Fuzz(21);
    for (let i = 0; i < CASES; i++) {
      const s = sparse(fuzz, fuzz.pick(["\n", "\r\n"]));
      let bytes: Uint8Array = Buffer.from(s.text);
      if (fuzz.chance(0.3)) bytes = gzipSync(bytes);
      const what = `case ${i}: ${JSON.stringify(s.text.slice(0, 200))}`;
      const ds = await outcome(what, () => readLibsvm(write("v.svm", bytes)));
      assert.ok(!(ds instanceof DataError), `${what}: ${ds instanceof DataError ? ds.message : ""}`);
      assert.equal(ds.features, s.features, what);
      assert.deepEqual([...ds.x], s.x, what);
      assert.deepEqual([...ds.y], s.y, what);
      assert.deepEqual([...ds.lines!], s.lines, what);
    }
  });

  test(`${CASES} spoiled files and odd tokens read sanely or are refused with a DataError`, TIMEOUT, async () => {
    const fuzz = new Fuzz(22);
    const tokens = [
      ...HUGE.map((h) => `1:${h}`),
      ...NOT_NUMBERS.map((n) => `2:${n}`),
      "0:1",
      "-1:2",
      ":",
      "1:",
      ":1",
      "3:1 2:1",
      "1:1 1:1",
      "1e3:1",
      "99999999999999999999:1",
      "2147483648:1",
      "100000000:2",
      "1:2:3",
    ];
    for (let i = 0; i < CASES; i++) {
      const s = sparse(fuzz, fuzz.pick(["\n", "\r\n", "\r"]));
      let bytes: Uint8Array = Buffer.from(s.text);
      if (fuzz.chance(0.4)) {
        const lines = s.text.split("\n");
        const at = fuzz.int(lines.length);
        lines[at] = `${fuzz.chance(0.3) ? fuzz.pick(HUGE) : "1"} ${fuzz.pick(tokens)}`;
        bytes = Buffer.from(lines.join("\n"));
      } else if (fuzz.chance(0.1)) bytes = utf16(s.text, fuzz.chance(0.5));
      else bytes = corrupt(fuzz, bytes);
      if (fuzz.chance(0.2)) bytes = gzipSync(bytes).subarray(0, fuzz.chance(0.5) ? undefined : fuzz.int(40));
      const options: LibsvmOptions = {
        ...(fuzz.chance(0.2) ? { classes: fuzz.pick([2, 3, 0, 1.5, Number.NaN, 1e7]) } : {}),
        ...(fuzz.chance(0.2) ? { features: fuzz.pick([1, 8, 0, -2, 2.5, 1e9]) } : {}),
        maxBytes: fuzz.pick([1e6, 1e4, 100]),
      };
      const what = `case ${i}: ${JSON.stringify(options)} ${JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 200))}`;
      const ds = await outcome(what, () => readLibsvm(write("s.svm", bytes), options));
      if (!(ds instanceof DataError)) assertSane(ds, what);
    }
  });
});

describe("IDX reader fuzz", () => {
  /** A random valid ubyte IDX file of 1-3 dimensions (sizes 1-6). */
  function idx(fuzz: Fuzz): { dims: number[]; data: Uint8Array; bytes: Uint8Array } {
    const dims = Array.from({ length: 1 + fuzz.int(3) }, () => 1 + fuzz.int(6));
    const data = Uint8Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => fuzz.int(256));
    return { dims, data, bytes: idxBytes(dims, data) };
  }

  async function readAll(path: string, perChunk: number): Promise<Uint8Array> {
    const parts: number[] = [];
    for await (const chunk of readIdxRecords(path, { recordsPerChunk: perChunk, maxBytes: 1e6 })) parts.push(...chunk.data);
    return Uint8Array.from(parts);
  }

  test(`${CASES} valid files (raw and gzip) read to the bytes written, whole, as rows and in chunks`, TIMEOUT, async () => {
    const fuzz = new Fuzz(31);
    for (let i = 0; i < CASES; i++) {
      const f = idx(fuzz);
      const path = write("v.idx", fuzz.chance(0.4) ? gzipSync(f.bytes) : f.bytes);
      const what = `case ${i}: dims ${f.dims.join("x")}`;
      const whole = await outcome(what, () => readIdx(path, { maxBytes: 1e6 }));
      assert.ok(!(whole instanceof DataError), `${what}: ${whole instanceof DataError ? whole.message : ""}`);
      assert.deepEqual(whole.dims, f.dims, what);
      assert.deepEqual(whole.data, f.data, what);
      const chunks = await outcome(what, () => readAll(path, 1 + fuzz.int(4)));
      assert.deepEqual(chunks, f.data, what);
      const rows = await outcome(what, () => readIdxRows(path, { maxBytes: 1e6 }));
      assert.ok(!(rows instanceof DataError), what);
      assert.deepEqual([...rows.x], [...f.data], what);
    }
  });

  test(
    `${CASES} spoiled files (truncations, random bytes, huge dims, wrong magic) are refused with a DataError or read sanely`,
    TIMEOUT,
    async () => {
      const fuzz = new Fuzz(32);
      for (let i = 0; i < CASES; i++) {
        const f = idx(fuzz);
        let bytes: Uint8Array = f.bytes;
        const kind = fuzz.int(4);
        if (kind === 0) bytes = corrupt(fuzz, bytes);
        else if (kind === 1) {
          // a dimension replaced by a random (often huge) 32-bit count
          const view = Buffer.from(bytes);
          view.writeUInt32BE(fuzz.pick([0, 1, 0xffffffff, 0x7fffffff, 65536, fuzz.int(2 ** 32)]), 4 + 4 * fuzz.int(f.dims.length));
          bytes = view;
        } else if (kind === 2) bytes = Uint8Array.from(bytes, (b, j) => (j < 4 && fuzz.chance(0.5) ? fuzz.int(256) : b));
        else bytes = Uint8Array.from([...bytes, ...Array.from({ length: 1 + fuzz.int(5) }, () => fuzz.int(256))]);
        if (fuzz.chance(0.3)) bytes = gzipSync(bytes);
        const path = write("s.idx", bytes);
        const what = `case ${i} (kind ${kind}): ${Buffer.from(bytes.subarray(0, 24)).toString("hex")}`;
        const options = { maxBytes: fuzz.pick([1e6, 64]) };
        const whole = await outcome(what, () => readIdx(path, options));
        const rows = await outcome(what, () => readIdxRows(path, options));
        if (!(rows instanceof DataError)) assertSane(rows, what);
        await outcome(what, () => readAll(path, 1 + fuzz.int(3)));
        if (!(whole instanceof DataError))
          assert.equal(
            whole.data.length,
            whole.dims.reduce((a, b) => a * b, 1),
            what,
          );
      }
    },
  );

  test("headers implying more than the default limit are refused before any allocation", TIMEOUT, async () => {
    const fuzz = new Fuzz(33);
    for (let i = 0; i < 20; i++) {
      const dims = [65536 + fuzz.int(2 ** 31), 256 + fuzz.int(65536), 1 + fuzz.int(1000)];
      const path = write(
        "h.idx",
        idxBytes(
          dims,
          Uint8Array.from({ length: fuzz.int(64) }, () => fuzz.int(256)),
        ),
      );
      const reads: (() => Promise<unknown>)[] = [() => readIdx(path), () => readIdxRows(path), () => readAll(path, 1)];
      for (const read of reads) {
        const result = await outcome(`dims ${dims.join("x")}`, read);
        assert.ok(result instanceof DataError, `dims ${dims.join("x")}: read`);
      }
    }
  });
});
