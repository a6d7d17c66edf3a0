// The first run: `downpour train` downloads MNIST when it is not cached (from local servers here, never the
// network), falls back to the bundled UCI digits only when the download fails and --data was left at its default;
// an explicit --data mnist that cannot be had is an error. And a 64-32-10 MLP learns the digits.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { runTrain } from "../../src/cli/commands/train.js";
import { CliError } from "../../src/cli/errors.js";
import { DIGITS } from "../../src/data/digits.js";
import { MNIST_FILES } from "../../src/data/mnist.js";
import { sharedData } from "../support/paths.js";
import { refusedBaseUrl, serveFiles, startServer } from "../support/servers.js";
import { captureIO, cliMain, tempDir } from "./helpers.js";

const dir = tempDir("cli-first-run");
const TIMEOUT = { timeout: 120_000 };
const quick = { epochs: 1, threads: 2, quiet: true, curves: false as const, save: false as const, hidden: [32] };

describe("first run", () => {
  let refused: string;
  /** An empty cache, no $DOWNPOUR_DATA, and a mirror list on which nothing listens. */
  let offline: Record<string, string>;

  before(async () => {
    refused = await refusedBaseUrl();
    offline = { DOWNPOUR_CACHE: join(dir, "empty-cache"), DOWNPOUR_MNIST_URLS: refused };
  });

  test("no --data, MNIST not cached, the download fails: says so on stderr and trains on the bundled digits", TIMEOUT, async () => {
    const io = captureIO(dir, offline);
    const result = await runTrain({ ...quick, save: "digits.dpnn" }, io);
    assert.equal(result.data, "digits");
    assert.match(io.err(), /^downpour: MNIST is not in .*empty-cache\/mnist .*; downloading it into .*empty-cache\/mnist$/m);
    assert.match(io.err(), /^downpour: the MNIST download failed: cannot download train-images-idx3-ubyte\.gz/m);
    assert.ok(io.err().includes(refused), "the URL tried is named");
    assert.match(io.err(), /^downpour: training on the bundled UCI 8x8 handwritten digits instead \(--data digits\)/m);
    assert.match(io.err(), /training MultiLayerPerceptron 64-32-10 .* on digits: 1438 rows, 359 test rows/);
    const evaluation = await runEval({ model: "digits.dpnn" }, captureIO(dir, offline));
    assert.equal(evaluation.data, "digits (held-out rows)");
    assert.equal(evaluation.samples, 359);
  });

  test("an explicit --data mnist that is not cached and cannot be downloaded is an error, not a fallback", TIMEOUT, async () => {
    const io = captureIO(dir, offline);
    await assert.rejects(runTrain({ ...quick, data: "mnist" }, io), (error: Error) => {
      assert.ok(error instanceof CliError);
      assert.match(error.message, /^--data mnist: MNIST is not cached and the download failed: cannot download /);
      assert.match(error.message, /get it with: downpour data mnist, or train on the bundled --data digits/);
      return true;
    });
    assert.doesNotMatch(io.err(), /digits instead/);
    assert.equal(io.out(), "");
  });

  test("the binary: --data mnist offline exits 1; the default falls back and exits 0", TIMEOUT, () => {
    const env = { ...process.env, ...offline, DOWNPOUR_DATA: "", DOWNPOUR_DEBUG: "" };
    const args = ["--epochs", "1", "--hidden", "16", "--threads", "1", "--quiet", "--no-save", "--no-curves"];
    const explicit = spawnSync(process.execPath, [cliMain(), "train", "--data", "mnist", ...args], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });
    assert.equal(explicit.status, 1, explicit.stderr);
    assert.match(explicit.stderr, /downpour: --data mnist: MNIST is not cached and the download failed/);
    const fallback = spawnSync(process.execPath, [cliMain(), "train", ...args], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });
    assert.equal(fallback.status, 0, fallback.stderr);
    assert.match(fallback.stderr, /training on the bundled UCI 8x8 handwritten digits instead/);
  });

  describe("with a local MNIST mirror serving the shared MNIST", () => {
    let server: Awaited<ReturnType<typeof startServer>>;
    before(async () => {
      const sharedMnist = sharedData("mnist");
      server = await startServer(serveFiles((name) => (MNIST_FILES.some((f) => f.name === name) ? readFileSync(join(sharedMnist, name)) : undefined)));
    });
    // When before() failed (no shared MNIST), there is no server to close.
    after(() => server?.close());

    test("no --data, MNIST not cached: downloads it (the failing mirror first, then the good one), verifies and trains on it", TIMEOUT, async () => {
      const cache = join(dir, "cache");
      const io = captureIO(dir, { DOWNPOUR_CACHE: cache, DOWNPOUR_MNIST_URLS: `${refused} ${server.baseUrl}` });
      const result = await runTrain({ ...quick, maxIterations: 20 }, io);
      assert.equal(result.data, "mnist");
      assert.equal(io.err().split("\n").filter((l) => l.startsWith(`downloading ${server.baseUrl}`)).length, 4);
      assert.doesNotMatch(io.err(), /digits/);
      assert.match(io.err(), /on mnist: 60000 rows, 10000 test rows/);
      for (const f of MNIST_FILES) assert.ok(existsSync(join(cache, "mnist", f.name)), f.name);
      const again = captureIO(dir, { DOWNPOUR_CACHE: cache, DOWNPOUR_MNIST_URLS: refused });
      await runTrain({ ...quick, data: "mnist", maxIterations: 5 }, again);
      assert.doesNotMatch(again.err(), /download/, "the cached copy is used");
      assert.equal(server.requests.length, 4);
    });
  });
});

describe("the digits preset", () => {
  test("a 64-32-10 MLP reaches >= 93% test accuracy on the held-out fifth in 30 epochs (seeded)", TIMEOUT, async () => {
    const io = captureIO(dir, {});
    const result = await runTrain({ data: "digits", hidden: [32], epochs: 30, seed: 1, threads: 2, quiet: true, save: false, curves: false }, io);
    const last = result.reports.at(-1)!.validation!;
    assert.equal(last.samples, Math.round(DIGITS.rows * DIGITS.testFraction));
    assert.ok(last.accuracy! >= 0.93, `test accuracy ${last.accuracy}`);
    assert.doesNotMatch(io.err(), /MNIST/);
  });
});
