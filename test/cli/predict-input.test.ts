// predict reads what train reads (CSV, libsvm, IDX, each raw or gzip, by extension, content or --format) with the
// same outputs for the same rows, writes to stdout with `--output -`, refuses an input without rows (writing
// nothing), and warns about CSV flags an input of another format does not use.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { tempDir, writeTemp } from "./helpers.js";
import { cli, QUICK, TINY_FEATURES, tinyCsv } from "./tiny-data.js";

const dir = tempDir("cli-predict-input");
const TIMEOUT = { timeout: 60_000 };

/** Integer feature rows (IDX holds bytes), as CSV lines and as an IDX file of unsigned bytes. */
const ROWS = [
  [0, 128, 255],
  [17, 3, 200],
  [90, 90, 90],
  [255, 0, 64],
];

function idxFile(rows: readonly number[][]): Uint8Array {
  const header = new DataView(new ArrayBuffer(12));
  header.setUint32(0, 0x0802); // unsigned bytes, 2 dimensions
  header.setUint32(4, rows.length);
  header.setUint32(8, TINY_FEATURES);
  return Uint8Array.from([...new Uint8Array(header.buffer), ...rows.flat()]);
}

const csvText = (rows: readonly number[][]) => rows.map((r) => r.join(",")).join("\n") + "\n";
const libsvmText = (rows: readonly number[][]) => rows.map((r) => `0 ${r.map((v, j) => `${j + 1}:${v}`).join(" ")}`).join("\n") + "\n";

describe("predict inputs", () => {
  let expected = "";

  before(async () => {
    writeTemp(dir, "t.csv", tinyCsv());
    const trained = await cli(dir, ["train", "--data", "t.csv", "--save", "m.dpnn", "--no-curves", ...QUICK]);
    assert.equal(trained.code, 0, trained.err);
    writeTemp(dir, "rows.csv", csvText(ROWS));
    const reference = await cli(dir, ["predict", "--model", "m.dpnn", "--input", "rows.csv"]);
    assert.equal(reference.code, 0, reference.err);
    expected = reference.out;
    assert.equal(expected.trim().split("\n").length, ROWS.length + 1, "a header and a line per row");
  }, TIMEOUT);

  const inputs: { name: string; file: string; content: () => string | Uint8Array; args?: string[] }[] = [
    { name: "gzip CSV", file: "rows.csv.gz", content: () => gzipSync(csvText(ROWS)) },
    { name: "libsvm", file: "rows.libsvm", content: () => libsvmText(ROWS) },
    { name: "gzip libsvm", file: "rows.svm.gz", content: () => gzipSync(libsvmText(ROWS)) },
    { name: "libsvm found by content (.txt)", file: "rows.txt", content: () => libsvmText(ROWS) },
    { name: "libsvm by --format (any name)", file: "rows.data", content: () => libsvmText(ROWS), args: ["--format", "libsvm"] },
    { name: "IDX", file: "rows.idx", content: () => idxFile(ROWS) },
    { name: "gzip IDX (-ubyte)", file: "rows-idx2-ubyte.gz", content: () => gzipSync(idxFile(ROWS)) },
  ];
  for (const input of inputs) {
    test(`${input.name}: the same outputs as the CSV`, TIMEOUT, async () => {
      writeTemp(dir, input.file, input.content());
      const run = await cli(dir, ["predict", "--model", "m.dpnn", "--input", input.file, ...(input.args ?? [])]);
      assert.equal(run.code, 0, run.err);
      assert.equal(run.out, expected);
    });
  }

  test("--output - writes to stdout and creates no file named -", TIMEOUT, async () => {
    const run = await cli(dir, ["predict", "--model", "m.dpnn", "--input", "rows.csv", "--output", "-"]);
    assert.equal(run.code, 0, run.err);
    assert.equal(run.out, expected);
    assert.ok(!existsSync(join(dir, "-")), "no file named -");
  });

  const empty: { name: string; file: string; content: string | Uint8Array; args?: string[]; message: RegExp }[] = [
    { name: "an empty CSV", file: "empty.csv", content: "", message: /^downpour: empty\.csv: no rows to predict$/m },
    { name: "a CSV of only a header", file: "header.csv", content: "a,b,c\n", message: /^downpour: header\.csv: no rows to predict$/m },
    {
      name: "a CSV of only comments",
      file: "comments.csv",
      content: "# none\n\n# here\n",
      args: ["--comment", "#"],
      message: /^downpour: comments\.csv: no rows to predict$/m,
    },
    { name: "an empty libsvm file", file: "empty.libsvm", content: "", message: /^downpour: .*empty\.libsvm: no data rows/m },
    { name: "an IDX file of no records", file: "empty.idx", content: idxFile([]), message: /^downpour: .*empty\.idx: no records/m },
  ];
  for (const input of empty) {
    test(`${input.name} is refused and nothing is written`, TIMEOUT, async () => {
      writeTemp(dir, input.file, input.content);
      const toStdout = await cli(dir, ["predict", "--model", "m.dpnn", "--input", input.file, ...(input.args ?? [])]);
      assert.equal(toStdout.code, 1, toStdout.err);
      assert.match(toStdout.err, input.message);
      assert.equal(toStdout.out, "", "not even the header");
      const out = `${input.file}.predictions.csv`;
      const toFile = await cli(dir, ["predict", "--model", "m.dpnn", "--input", input.file, "--output", out, ...(input.args ?? [])]);
      assert.equal(toFile.code, 1, toFile.err);
      assert.ok(!readdirSync(dir).some((name) => name.includes(out)), "no output file, no temp file");
    });
  }

  test("CSV flags with a libsvm input are warned about", TIMEOUT, async () => {
    writeTemp(dir, "rows.libsvm", libsvmText(ROWS));
    const run = await cli(dir, ["predict", "--model", "m.dpnn", "--input", "rows.libsvm", "--delimiter", ";", "--no-header"]);
    assert.equal(run.code, 0, run.err);
    assert.match(
      run.err,
      /^downpour: warning: rows\.libsvm is read as libsvm \(chosen by its \.libsvm extension\), which has no CSV columns: --delimiter, --no-header are ignored$/m,
    );
    assert.equal(run.out, expected);
  });
});
