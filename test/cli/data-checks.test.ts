// Data the CLI must refuse instead of training on it: labels the model's output layer cannot produce (a 3-class
// file without --classes), values that overflow to Infinity, and data too big for --memory-limit; each message
// names the file and line (or the flag) and what to do.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCli } from "../../src/cli/program.js";
import { captureIO, tempDir, writeTemp } from "./helpers.js";

const dir = tempDir("cli-data-checks");
const TIMEOUT = { timeout: 60_000 };
const QUICK = ["--epochs", "1", "--threads", "1", "--quiet", "--no-curves"];

/** 30 rows of two features and an integer label 0..classes-1 (the first label 2 on line 4, after the header). */
function classesCsv(classes: number): string {
  const rows = Array.from({ length: 30 }, (_, i) => `${(i * 7) % 11},${(i * 5) % 13},${i % classes}`);
  return `a,b,label\n${rows.join("\n")}\n`;
}

/** Runs the CLI in `dir`; resolves with the exit code and stderr. */
async function run(...argv: string[]): Promise<{ code: number; err: string }> {
  const io = captureIO(dir);
  const code = await runCli(argv, io);
  return { code, err: io.err() };
}

describe("labels the model cannot produce", () => {
  writeTemp(dir, "3class.csv", classesCsv(3));
  writeTemp(dir, "binary.csv", classesCsv(2));

  test("--model logistic on a 3-class file: refused at the first label 2, suggesting --classes 3 and an mlp", TIMEOUT, async () => {
    const { code, err } = await run("train", "--data", "3class.csv", "--model", "logistic", "--no-save", ...QUICK);
    assert.equal(code, 1);
    assert.match(
      err,
      /^downpour: 3class\.csv line 4: label 2 is outside \[0, 1\], the range of one sigmoid output with cross-entropy \(the labels look like 3 classes: use --classes 3 and --model mlp\)\n$/,
    );
  });

  test(
    "the default mlp (one sigmoid output) on a 3-class file without --classes: refused; with --classes 3 it trains",
    TIMEOUT,
    async () => {
      const refused = await run("train", "--data", "3class.csv", "--no-save", ...QUICK);
      assert.equal(refused.code, 1);
      assert.match(refused.err, /3class\.csv line 4: label 2 is outside \[0, 1\].*\(the labels look like 3 classes: use --classes 3\)\n$/);
      const trained = await run("train", "--data", "3class.csv", "--classes", "3", "--no-save", ...QUICK);
      assert.equal(trained.code, 0, trained.err);
    },
  );

  test("a --test-data file with labels outside [0, 1] is refused naming that file", TIMEOUT, async () => {
    const { code, err } = await run(
      "train",
      "--data",
      "binary.csv",
      "--test-data",
      "3class.csv",
      "--model",
      "logistic",
      "--no-save",
      ...QUICK,
    );
    assert.equal(code, 1);
    assert.match(err, /downpour: 3class\.csv line 4: label 2 is outside \[0, 1\]/);
  });

  test("eval of a one-output model on a 3-class file is refused", TIMEOUT, async () => {
    const trained = await run("train", "--data", "binary.csv", "--model", "logistic", "--save", "binary.dpnn", ...QUICK);
    assert.equal(trained.code, 0, trained.err);
    const { code, err } = await run("eval", "--model", "binary.dpnn", "--data", "3class.csv");
    assert.equal(code, 1);
    assert.match(err, /downpour: 3class\.csv line 4: label 2 is outside \[0, 1\]/);
  });
});

describe("values and sizes", () => {
  test("a CSV value that overflows to Infinity is refused with the file, line, column and field", TIMEOUT, async () => {
    writeTemp(dir, "inf.csv", "a,b,label\n1,2,0\n3,1e400,1\n2,2,0\n1,1,1\n");
    const { code, err } = await run("train", "--data", "inf.csv", "--no-save", ...QUICK);
    assert.equal(code, 1);
    assert.match(err, /inf\.csv line 3, column 2 \("b"\): expected a finite number; 1e400 is beyond the 32-bit float range/);
  });

  test("a libsvm feature index implying more than --memory-limit is refused naming the line and the flag", TIMEOUT, async () => {
    writeTemp(dir, "big.libsvm", "1 1:1 2:3\n0 1:2\n1 100000000:2\n");
    const { code, err } = await run("train", "--data", "big.libsvm", "--memory-limit", "1M", "--no-save", ...QUICK);
    assert.equal(code, 1);
    assert.match(
      err,
      /big\.libsvm line 3: feature index 100000000 implies 100000000 features; the 3 rows would need 1\.2 GB, more than the memory limit of 1 MiB \(raise it with --memory-limit\)\n$/,
    );
  });

  test("one huge libsvm feature index under the default limits fails fast, not by exhausting the JavaScript heap", TIMEOUT, async () => {
    // 2 rows x 1e8 features: 800 MB as dense floats (under the 4 GiB data limit), but the min-max statistics of 1e8
    // features would not fit in V8's heap: before the check, the process died of heap exhaustion (exit 134).
    writeTemp(dir, "huge.libsvm", "1 1:0.5 2:0.3\n0 100000000:2\n");
    const { code, err } = await run("train", "--data", "huge.libsvm", "--no-save", ...QUICK);
    assert.equal(code, 1);
    assert.match(err, /huge\.libsvm: the minmax statistics of 100000000 features would need 6\.4 GB of JavaScript memory, more than the .* it can spare \(use fewer features, or no scaling: --normalize none\)/);
  });

  test("data that fits but whose scaling copies would not is refused before the copies are made", TIMEOUT, async () => {
    // 3 rows x 20000 features: 240 kB read; the min-max scaling adds 240 kB and 1.28 MB of statistics (64 bytes a feature)
    writeTemp(dir, "wide.libsvm", "1 1:1\n0 2:1\n1 20000:2\n");
    const { code, err } = await run("train", "--data", "wide.libsvm", "--memory-limit", "500K", "--no-save", ...QUICK);
    assert.equal(code, 1);
    assert.match(
      err,
      /wide\.libsvm: 3 rows of 20000 features and 1 output with their copies for the minmax scaling would need 1\.76 MB, more than the memory limit of 500 KiB \(raise it with --memory-limit, or skip the scaling with --normalize none\)/,
    );
  });
});
