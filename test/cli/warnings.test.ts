// Settings a train run would silently ignore are warned about (optimizer fields of another update rule, data-file
// flags with a preset or a non-CSV file, --summary with --json); a config key set twice is refused; more threads
// than cores are capped unless --oversubscribe; --memory-limit takes sizes like 512M and limits the model too.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkConfig, mergeSettings } from "../../src/cli/config.js";
import { ConfigError } from "../../src/cli/errors.js";
import { parseByteSize } from "../../src/cli/parse.js";
import { detectPlatform } from "../../src/runtime/platform.js";
import { tempDir, writeTemp } from "./helpers.js";
import { cli, QUICK, tinyCsv } from "./tiny-data.js";

const dir = tempDir("cli-warnings");
const TIMEOUT = { timeout: 60_000 };
const NO_OUTPUTS = ["--no-save", "--no-curves"] as const;

writeTemp(dir, "t.csv", tinyCsv());

/** The warnings a run printed, without the "downpour: warning: " prefix. */
function warnings(err: string): string[] {
  return err.split("\n").flatMap((line) => line.match(/^downpour: warning: (.*)$/)?.[1] ?? []);
}

async function train(args: readonly string[]) {
  const run = await cli(dir, ["train", ...args, ...QUICK, ...NO_OUTPUTS]);
  assert.equal(run.code, 0, run.err);
  return run;
}

describe("optimizer settings the update rule does not use", () => {
  test("--momentum with --optimizer adam", TIMEOUT, async () => {
    const run = await train(["--data", "t.csv", "--optimizer", "adam", "--momentum", "0.5"]);
    assert.deepEqual(warnings(run.err), ["--optimizer adam does not use --momentum (only sgd does); it is ignored"]);
  });

  test("--momentum with --optimizer adagrad", TIMEOUT, async () => {
    const run = await train(["--data", "t.csv", "--optimizer", "adagrad", "--momentum", "0.5"]);
    assert.deepEqual(warnings(run.err), ["--optimizer adagrad does not use --momentum (only sgd does); it is ignored"]);
  });

  test("a config's train.beta1 and train.epsilon with the default sgd", TIMEOUT, async () => {
    writeTemp(dir, "betas.json", JSON.stringify({ data: "t.csv", train: { beta1: 0.8, epsilon: 1e-6 } }));
    const run = await train(["--config", "betas.json"]);
    assert.deepEqual(warnings(run.err), [
      'the default optimizer sgd does not use config file betas.json, "train.beta1" (only adam does); it is ignored',
      'the default optimizer sgd does not use config file betas.json, "train.epsilon" (only adagrad and adam do); it is ignored',
    ]);
  });

  test("no warning when the rule uses what is given", TIMEOUT, async () => {
    const run = await train(["--data", "t.csv", "--optimizer", "sgd", "--momentum", "0.5"]);
    assert.deepEqual(warnings(run.err), []);
  });
});

describe("data-file flags the data does not use", () => {
  test("CSV flags and --classes with the digits preset", TIMEOUT, async () => {
    const run = await train(["--data", "digits", "--label-column", "3", "--delimiter", ";", "--classes", "10"]);
    assert.deepEqual(warnings(run.err), ["--data digits is a preset, not a data file: --label-column, --delimiter, --classes are ignored"]);
  });

  test("CSV flags with a libsvm file", TIMEOUT, async () => {
    const libsvm = tinyCsv()
      .trim()
      .split("\n")
      .map((line) => {
        const values = line.split(",");
        return `${values.at(-1)} ${values
          .slice(0, -1)
          .map((v, j) => `${j + 1}:${v}`)
          .join(" ")}`;
      });
    writeTemp(dir, "t.libsvm", `${libsvm.join("\n")}\n`);
    const run = await train(["--data", "t.libsvm", "--comment", "#", "--header"]);
    assert.deepEqual(warnings(run.err), [
      "t.libsvm is read as libsvm (chosen by its .libsvm extension), which has no CSV columns: --comment, --header are ignored",
    ]);
  });
});

test("--summary with --json is warned about", TIMEOUT, async () => {
  const run = await train(["--data", "t.csv", "--json", "--summary", "all"]);
  assert.deepEqual(warnings(run.err), ["--json prints every epoch as JSON: --summary is ignored"]);
  assert.ok(JSON.parse(run.out).reports.length === 1);
});

describe("a key set both at the top of a config file and in its train object", () => {
  test('"epochs" and "train.epochs" is a ConfigError naming both, before any work', TIMEOUT, async () => {
    writeTemp(dir, "twice.json", JSON.stringify({ data: "t.csv", epochs: 5, train: { epochs: 7 } }));
    const run = await cli(dir, ["train", "--config", "twice.json", "--threads", "1", "--quiet", ...NO_OUTPUTS]);
    assert.equal(run.code, 1, run.err);
    assert.match(run.err, /^downpour: config file twice\.json: "epochs" and "train\.epochs" both set epochs; keep one of them$/m);
    assert.doesNotMatch(run.err, /^training /m);
  });

  test('"convergenceWindow" and "train.convergence.window" too', () => {
    const values = checkConfig({ convergenceWindow: 5, train: { convergence: { window: 7 } } }, "w.json");
    assert.throws(
      () => mergeSettings({ name: "w.json", values }, {}),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /"convergenceWindow" and "train\.convergence\.window" both set the convergence window/);
        return true;
      },
    );
  });

  test("a flag overriding a config's train key is not refused (flags win, as documented)", () => {
    const values = checkConfig({ train: { epochs: 7 } }, "f.json");
    assert.equal(mergeSettings({ name: "f.json", values }, { epochs: 3 }).settings.epochs, 3);
  });
});

describe("threads above the core count", () => {
  test("are capped to the cores with a warning; --oversubscribe keeps them", TIMEOUT, async () => {
    const cores = (await detectPlatform()).hardwareConcurrency();
    const asked = String(cores + 1);
    const base = ["train", "--data", "t.csv", "--epochs", "1", "--hidden", "4", "--quiet", ...NO_OUTPUTS];
    const capped = await cli(dir, [...base, "--threads", asked]);
    assert.equal(capped.code, 0, capped.err);
    assert.deepEqual(warnings(capped.err), [
      `--threads ${asked} is more than the ${cores} core${cores === 1 ? "" : "s"} here, which slows training down; using ${cores} (--oversubscribe keeps ${asked})`,
    ]);
    const shared = !/, main thread, /.test(capped.err);
    if (shared) assert.match(capped.err, new RegExp(`, ${cores} threads?, `));
    const forced = await cli(dir, [...base, "--threads", asked, "--oversubscribe"]);
    assert.equal(forced.code, 0, forced.err);
    assert.deepEqual(warnings(forced.err), []);
    if (shared) assert.match(forced.err, new RegExp(`, ${asked} threads, `));
  });

  test("a config's threads are capped too, the warning naming the key", TIMEOUT, async () => {
    const cores = (await detectPlatform()).hardwareConcurrency();
    writeTemp(dir, "threads.json", JSON.stringify({ data: "t.csv", threads: cores + 2 }));
    const run = await cli(dir, ["train", "--config", "threads.json", "--epochs", "1", "--hidden", "4", "--quiet", ...NO_OUTPUTS]);
    assert.equal(run.code, 0, run.err);
    assert.match(
      warnings(run.err).join("\n"),
      new RegExp(`^config file threads\\.json, "threads" ${cores + 2} is more than the ${cores} core`),
    );
  });
});

describe("--memory-limit", () => {
  test("takes sizes with 1024-based suffixes, or bytes", () => {
    assert.equal(parseByteSize("512M"), 512 * 1024 ** 2);
    assert.equal(parseByteSize("8G"), 8 * 1024 ** 3);
    assert.equal(parseByteSize("1.5GB"), 1.5 * 1024 ** 3);
    assert.equal(parseByteSize("1000000"), 1e6);
    for (const bad of ["", "0", "-1G", "1Q", "lots"])
      assert.throws(() => parseByteSize(bad), /expected a size like 512M, 8G or 1\.5GB/, bad);
  });

  test("the flag trains within a limit, and a bad size is a usage error naming it", TIMEOUT, async () => {
    await train(["--data", "t.csv", "--memory-limit", "64M"]);
    const bad = await cli(dir, ["train", "--data", "t.csv", "--memory-limit", "1Q", ...QUICK, ...NO_OUTPUTS]);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /option '--memory-limit <size>' argument '1Q' is invalid\. expected a size like 512M/);
  });

  test('a config\'s "memoryLimit" may be a size string or a number of bytes', () => {
    assert.equal(
      mergeSettings({ name: "m.json", values: checkConfig({ memoryLimit: "8G" }, "m.json") }, {}).settings.memoryLimit,
      8 * 1024 ** 3,
    );
    assert.equal(
      mergeSettings({ name: "m.json", values: checkConfig({ memoryLimit: 1048576 }, "m.json") }, {}).settings.memoryLimit,
      1048576,
    );
    assert.throws(
      () => checkConfig({ memoryLimit: "lots" }, "m.json"),
      /config file m\.json: "memoryLimit" must be a size like "512M" or "8G", or a number of bytes, got "lots"/,
    );
  });

  test("a model larger than the limit is refused naming --hidden and --memory-limit, before training", TIMEOUT, async () => {
    const run = await cli(dir, [
      "train",
      "--data",
      "t.csv",
      "--hidden",
      "400000",
      "--memory-limit",
      "4M",
      ...NO_OUTPUTS,
      "--epochs",
      "1",
      "--threads",
      "1",
      "--quiet",
    ]);
    assert.equal(run.code, 1, run.err);
    assert.match(
      run.err,
      /^downpour: the network 3-400000-1 \(.+ parameters\) needs .+, more than the model's memory limit of 4 MiB \(--memory-limit\): use fewer units in --hidden, .*or raise --memory-limit/m,
    );
    assert.doesNotMatch(run.err, /arena|layout|slab/i);
    assert.doesNotMatch(run.err, /^training /m);
  });

  test("a model that fits but cannot train within the limit names --batch-size too", TIMEOUT, async () => {
    const run = await cli(dir, [
      "train",
      "--data",
      "t.csv",
      "--hidden",
      "200000",
      "--memory-limit",
      "4M",
      ...NO_OUTPUTS,
      "--epochs",
      "1",
      "--threads",
      "1",
      "--quiet",
    ]);
    assert.equal(run.code, 1, run.err);
    assert.match(
      run.err,
      /^downpour: training needs another .+, more than is free within the model's memory limit of 4 MiB \(--memory-limit\): .*--hidden, a smaller --batch-size, .*or raise --memory-limit/m,
    );
    assert.doesNotMatch(run.err, /arena|layout|slab|\bd0\b/i);
  });
});
