// `downpour data synth-ctr`: the files and sidecars it writes (the same bytes for 2^k and its number, a held-out file
// of the next rows), --json, and the usage errors and refusals that name the flag and write nothing.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseFeatureCount, type SynthCtrResult } from "../../src/cli/commands/synth-ctr.js";
import { runCli } from "../../src/cli/program.js";
import { readLibsvmSparse } from "../../src/data/index.js";
import { captureIO, tempDir } from "./helpers.js";

const TIMEOUT = { timeout: 30_000 };

/** Runs `downpour ...args` in `cwd`; the exit code and what it printed. */
async function downpour(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(cwd);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("downpour data synth-ctr", () => {
  test("writes the libsvm file and its teacher sidecar, and prints them with bestLogLoss", TIMEOUT, async () => {
    const dir = tempDir("cli-synth-ctr");
    const run = await downpour(dir, "data", "synth-ctr", "--rows", "2000", "--features", "2^12", "--out", "train.svm", "--seed", "4");
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^wrote train\.svm: rows 0\.\.1999 \(2000\), 2\^12 features, 40\.0 active per row, /);
    assert.match(run.out, /click rate 0\.\d{4}; bestLogLoss 0\.\d{5} \(the teacher's on these labels 0\.\d{5}, a constant's 0\.\d{5}\)/);
    assert.match(run.out, /teacher: train\.svm\.teacher\.json\n$/);
    const sidecar = JSON.parse(readFileSync(join(dir, "train.svm.teacher.json"), "utf8"));
    assert.equal(sidecar.rows, 2000);
    assert.equal(sidecar.features, 4096);
    assert.equal(sidecar.seed, 4);
    assert.ok(sidecar.bestLogLoss > 0 && sidecar.bestLogLoss < sidecar.constantLogLoss);
    const data = await readLibsvmSparse(join(dir, "train.svm"), { features: 4096 });
    assert.equal(data.size, 2000);
    assert.deepEqual(readdirSync(dir).sort(), ["train.svm", "train.svm.teacher.json"], "no temp files stay");

    const again = await downpour(dir, "data", "synth-ctr", "--rows", "2000", "--features", "4096", "--out", "same.svm", "--seed", "4");
    assert.equal(again.code, 0, again.err);
    assert.ok(readFileSync(join(dir, "same.svm")).equals(readFileSync(join(dir, "train.svm"))), "2^12 and 4096 write the same bytes");
  });

  test("--test-rows/--test-out write the rows after the training rows; --json prints both sidecars with paths", TIMEOUT, async () => {
    const dir = tempDir("cli-synth-ctr");
    mkdirSync(join(dir, "out"));
    const args = ["data", "synth-ctr", "--rows", "300", "--features", "1000", "--per-example", "10", "--noise", "0.1", "--click-rate", "0.3"];
    const run = await downpour(dir, ...args, "--real-values", "--out", "out/a.svm", "--test-rows", "100", "--test-out", "out/b.svm", "--json");
    assert.equal(run.code, 0, run.err);
    const result = JSON.parse(run.out) as SynthCtrResult;
    assert.equal(result.train.path, join(dir, "out", "a.svm"));
    assert.equal(result.test!.teacherPath, join(dir, "out", "b.svm.teacher.json"));
    assert.deepEqual([result.train.start, result.test!.start, result.test!.rows], [0, 300, 100]);
    assert.deepEqual([result.train.perExample, result.train.noise, result.train.clickRateTarget, result.train.values], [10, 0.1, 0.3, "real"]);
    assert.equal(result.train.bias, result.test!.bias, "one teacher");
    const longer = await downpour(dir, ...args.map((a) => (a === "300" ? "400" : a)), "--real-values", "--out", "out/400.svm");
    assert.equal(longer.code, 0, longer.err);
    const lines = (name: string) => readFileSync(join(dir, "out", name), "utf8").trimEnd().split("\n");
    assert.deepEqual(lines("b.svm"), lines("400.svm").slice(300), "the held-out rows are rows 300..399");
    assert.deepEqual(lines("a.svm"), lines("400.svm").slice(0, 300));
  });

  test("bad flag values are usage errors (exit 2) naming the flag", async () => {
    const dir = tempDir("cli-synth-ctr");
    const cases: [string[], RegExp][] = [
      [["--rows", "0"], /option '--rows <n>' argument '0' is invalid\. expected a row count, an integer >= 1/],
      [["--rows", "ten"], /'--rows <n>' argument 'ten' is invalid/],
      [["--rows", "5", "--features", "2^31"], /'--features <n>' argument '2\^31' is invalid\. expected a feature count like 2\^20 or 1048576, from 1 to 2\^30/],
      [["--rows", "5", "--features", "lots"], /'--features <n>' argument 'lots' is invalid/],
      [["--rows", "5", "--noise", "0.5"], /'--noise <p>' argument '0\.5' is invalid\. expected a probability in \[0, 0\.5\)/],
      [["--rows", "5", "--per-example", "0"], /'--per-example <n>' argument '0' is invalid/],
      [["--rows", "5", "--click-rate", "1"], /'--click-rate <r>' argument '1' is invalid/],
      [["--rows", "5", "--seed", "-1"], /'--seed <n>' argument '-1' is invalid/],
      [["--rows", "5", "--zipf", "0"], /'--zipf <s>' argument '0' is invalid/],
      [["--rows", "5"], /required option '--out <file>' not specified/],
    ];
    for (const [flags, pattern] of cases) {
      const args = flags.includes("--rows") && !flags.includes("--out") && flags.length > 2 ? [...flags, "--out", "x.svm"] : flags;
      const run = await downpour(dir, "data", "synth-ctr", ...args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.err}`);
      assert.match(run.err, pattern);
    }
    assert.deepEqual(readdirSync(dir), [], "nothing written");
  });

  test("refusals (exit 1) name the flag and write nothing: held-out halves, same files, missing folders, unreachable click rates", async () => {
    const dir = tempDir("cli-synth-ctr");
    mkdirSync(join(dir, "folder"));
    const cases: [string[], RegExp][] = [
      [["--test-rows", "5"], /--test-rows needs --test-out <file>/],
      [["--test-out", "t.svm"], /--test-out needs --test-rows <n>/],
      [["--test-rows", "5", "--test-out", "a.svm"], /--test-out a\.svm and --out a\.svm are the same file/],
      [["--test-rows", "5", "--test-out", "a.svm.teacher.json"], /--test-out a\.svm\.teacher\.json and the teacher sidecar of --out a\.svm \(a\.svm\.teacher\.json\) are the same file/],
      [["--click-rate", "0.04"], /--click-rate 0\.04 cannot be reached with --noise 0\.05/],
      [["--noise", "0.3"], /the default --click-rate 0\.2 cannot be reached with --noise 0\.3/],
    ];
    for (const [flags, pattern] of cases) {
      const run = await downpour(dir, "data", "synth-ctr", "--rows", "5", "--out", "a.svm", ...flags);
      assert.equal(run.code, 1, `${flags.join(" ")}: ${run.err}`);
      assert.match(run.err, pattern);
    }
    const missing = await downpour(dir, "data", "synth-ctr", "--rows", "5", "--out", "nowhere/a.svm");
    assert.equal(missing.code, 1);
    assert.match(missing.err, /--out nowhere\/a\.svm: the folder nowhere does not exist/);
    const folder = await downpour(dir, "data", "synth-ctr", "--rows", "5", "--out", "folder");
    assert.match(folder.err, /--out folder: is a directory, expected a file path/);
    assert.deepEqual(readdirSync(dir), ["folder"], "nothing written");
    assert.deepEqual(readdirSync(join(dir, "folder")), []);
  });

  test("data --help lists synth-ctr; parseFeatureCount takes 2^k, 2**k and numbers", async () => {
    const dir = tempDir("cli-synth-ctr");
    const help = await downpour(dir, "data", "--help");
    assert.equal(help.code, 0);
    assert.match(help.out, /synth-ctr \[options\]/);
    assert.deepEqual(["2^20", "2**3", " 1048576 ", "1", "2^30"].map(parseFeatureCount), [2 ** 20, 8, 2 ** 20, 1, 2 ** 30]);
    for (const bad of ["0", "2^", "3^2", "1.5", "-4", "2^31"]) assert.throws(() => parseFeatureCount(bad), /expected a feature count/);
  });
});
