// `downpour train --sparse --stream` trains pass by pass over chunks of a libsvm file to about the test log-loss of
// the run that reads the file whole (and eval of its model agrees); `--hash-features 2^k` hashes a CSV's columns
// into sparse rows, whole or streamed; what they cannot do is refused by name (usage errors exit 2, others 1).
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { TrainResult } from "../../src/cli/commands/train.js";
import { loadTrainedModel } from "../../src/cli/model-file.js";
import { runCli } from "../../src/cli/program.js";
import { DEFAULT_SETTINGS } from "../../src/cli/settings.js";
import { loadTrainingData } from "../../src/cli/training-data.js";
import { mulberry32 } from "../../src/data/random.js";
import { readModelFile } from "../../src/model/file/index.js";
import { SynthCtr } from "../../src/data/synth-ctr.js";
import { writeSynthCtrLibsvm } from "../../src/data/synth-ctr-file.js";
import { captureIO, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 120_000 };

/** Runs `downpour ...args` in this process, in `cwd`; the exit code and what it printed. */
async function downpour(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(cwd);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** A CSV of `rows` rows: a category and two numbers, the label 1 mostly when the category is "hot" or x is high. */
function clicksCsv(rows: number, seed: number): string {
  const random = mulberry32(seed);
  const lines = ["site,x,noise,clicked"];
  for (let r = 0; r < rows; r++) {
    const site = ["hot", "cold", "warm", "dull"][Math.floor(random() * 4)]!;
    const x = Math.round(random() * 1000) / 1000;
    const p = site === "hot" ? 0.85 : x > 0.7 ? 0.7 : 0.1;
    lines.push(`${site},${x},${Math.round(random() * 100) / 100},${random() < p ? 1 : 0}`);
  }
  return `${lines.join("\n")}\n`;
}

describe("downpour train --stream and --hash-features", () => {
  const dir = tempDir("cli-sparse-stream");
  const common = ["--model", "logistic", "--optimizer", "adagrad", "--learning-rate", "0.05", "--epochs", "2", "--quiet", "--no-curves", "--json", "--seed", "3"];

  before(async () => {
    const generator = new SynthCtr({ features: 2 ** 12, seed: 5 });
    await writeSynthCtrLibsvm(join(dir, "train.svm"), generator, { rows: 20_000 });
    await writeSynthCtrLibsvm(join(dir, "test.svm"), generator, { rows: 5_000, start: 20_000 });
    writeTemp(dir, "clicks.csv", clicksCsv(3000, 1));
    writeTemp(dir, "clicks-test.csv", clicksCsv(1000, 2));
  });

  test("--stream trains to within 0.01 of the whole file's test log-loss, pass by pass over chunks; eval of its model agrees", TIMEOUT, async () => {
    // the learning rate decays per pass in both (were it per chunk, the streamed run would nearly stop learning)
    const run = ["--data", "train.svm", "--test-data", "test.svm", "--sparse", ...common, "--learning-rate", "0.1", "--learning-rate-decay", "0.5"];
    const whole = await downpour(dir, "train", ...run, "--save", "whole.dpnn");
    assert.equal(whole.code, 0, whole.err);
    const streamed = await downpour(dir, "train", ...run, "--stream", "--chunk-rows", "3000", "--save", "stream.dpnn");
    assert.equal(streamed.code, 0, streamed.err);
    assert.match(streamed.err, /training LogisticRegression \d+ sparse-1 .* on train\.svm: 20000 rows, 5000 test rows; .*; streamed in chunks of 3000 rows/);
    const a = (JSON.parse(whole.out) as TrainResult).reports;
    const b = (JSON.parse(streamed.out) as TrainResult).reports;
    assert.deepEqual(b.map((r) => [r.epoch, r.samples, r.validation?.samples]), [[1, 20000, 5000], [2, 20000, 5000]]);
    assert.ok(b[1]!.iterations > b[0]!.iterations && b[1]!.iterations >= 2 * Math.ceil(20000 / 64), `iterations ${b.map((r) => r.iterations)}`);
    const [lossA, lossB] = [a.at(-1)!.validation!.loss, b.at(-1)!.validation!.loss];
    assert.ok(Math.abs(lossA - lossB) < 0.01, `test log-loss: whole ${lossA}, streamed ${lossB}`);
    assert.ok(b[1]!.loss < b[0]!.loss, "the training loss fell");

    const { model } = await loadTrainedModel(join(dir, "stream.dpnn"));
    try {
      assert.equal(model.network.spec.sparseInputs, true);
      assert.equal(model.state?.epochs, 2, "the optimizer state counts passes, not chunks");
    } finally {
      model.dispose();
    }
    assert.equal((await readModelFile(join(dir, "stream.dpnn"))).meta.epochs, 2, "so do the epochs the model file records");
    const evaluated = await downpour(dir, "eval", "--model", "stream.dpnn", "--data", "test.svm", "--json");
    assert.equal(evaluated.code, 0, evaluated.err);
    assert.ok(Math.abs((JSON.parse(evaluated.out) as { loss: number }).loss - lossB) < 1e-6);
  });

  test("--hash-features 2^k hashes a CSV into sparse rows (implying --sparse), read whole or streamed", TIMEOUT, async () => {
    const hashed = ["--data", "clicks.csv", "--test-data", "clicks-test.csv", "--model", "logistic", "--optimizer", "adagrad", "--learning-rate", "0.2", "--epochs", "5", "--quiet", "--no-curves", "--json"];
    const whole = await downpour(dir, "train", ...hashed, "--hash-features", "2^10", "--save", "hashed.dpnn");
    assert.equal(whole.code, 0, whole.err);
    assert.match(whole.err, /training LogisticRegression 1024 sparse-1 .* on clicks\.csv: 3000 rows, 1000 test rows/);
    const accuracy = (JSON.parse(whole.out) as TrainResult).reports.at(-1)!.validation!.accuracy!;
    assert.ok(accuracy > 0.75, `hashed test accuracy ${accuracy}`);
    const { model } = await loadTrainedModel(join(dir, "hashed.dpnn"));
    model.dispose();
    assert.equal(model.network.inputs, 1024);

    const streamed = await downpour(dir, "train", ...hashed, "--hash-features", "1024", "--stream", "--chunk-rows", "700", "--no-save");
    assert.equal(streamed.code, 0, streamed.err);
    const reports = (JSON.parse(streamed.out) as TrainResult).reports;
    assert.deepEqual(reports.map((r) => r.samples), [3000, 3000, 3000, 3000, 3000]);
    assert.ok(reports.at(-1)!.validation!.accuracy! > 0.75, `streamed hashed test accuracy ${reports.at(-1)!.validation!.accuracy}`);

    // the config file's "hashFeatures" (an integer) acts as the flag
    writeTemp(dir, "hashed.json", JSON.stringify({ data: "clicks.csv", hashFeatures: 256, model: "logistic", epochs: 1, holdout: 500, save: false, curves: false }));
    const configured = await downpour(dir, "train", "--config", "hashed.json", "--quiet");
    assert.equal(configured.code, 0, configured.err);
    assert.match(configured.err, /training LogisticRegression 256 sparse-1 .*: 2500 rows, 500 test rows/);
  });

  test("refused by name: a width that is not a power of two, hashing a libsvm file, --stream without sparse rows or with --holdout, --resume ...", TIMEOUT, async () => {
    const noSave = ["--quiet", "--no-curves", "--no-save", "--model", "logistic", "--epochs", "1"];
    const cases: [string[], number, RegExp][] = [
      [["--data", "clicks.csv", "--hash-features", "1000"], 2, /--hash-features <2\^k>.*expected a power of two like 2\^20 or 1048576, from 2 to 2\^31/],
      [["--data", "clicks.csv", "--hash-features", "2^32"], 2, /expected a power of two/],
      [["--data", "train.svm", "--hash-features", "2^10"], 1, /--hash-features hashes the columns of a CSV file, but --data train\.svm is read as libsvm \(chosen by its \.svm extension\); libsvm rows are sparse already: drop --hash-features/],
      [["--data", "clicks.csv", "--test-data", "test.svm", "--hash-features", "2^10"], 1, /--hash-features hashes the columns of a CSV file, but --test-data test\.svm is read as libsvm/],
      [["--data", "train.svm", "--stream"], 1, /--stream reads sparse rows chunk by chunk: give --sparse \(a libsvm file\) or --hash-features \(a CSV file\) too/],
      [["--data", "train.svm", "--sparse", "--stream", "--holdout", "0.1"], 1, /--holdout is not available with --stream: .*give the test set with --test-data/],
      [["--data", "train.svm", "--sparse", "--stream", "--save-best", "--patience", "2"], 1, /--save-best, --patience are not available with --stream/],
      [["--data", "train.svm", "--sparse", "--stream", "--resume", "whole.dpnn"], 1, /--resume is not available with --stream/],
      [["--data", "train.svm", "--sparse", "--chunk-rows", "100"], 1, /--chunk-rows sizes the chunks of --stream; give --stream too/],
      [["--data", "train.svm", "--sparse", "--stream", "--chunk-rows", "0"], 1, /--chunk-rows must be a positive number of rows, got 0/],
      [["--data", "clicks.csv", "--hash-features", "2^4", "--model", "autoencoder"], 1, /--hash-features builds a sparse first layer for mlp or logistic models/],
    ];
    for (const [args, code, pattern] of cases) {
      const run = await downpour(dir, "train", ...noSave, ...args);
      assert.equal(run.code, code, `${args.join(" ")}: ${run.err}`);
      assert.match(run.err, pattern, args.join(" "));
    }
    writeTemp(dir, "bad-width.json", JSON.stringify({ data: "clicks.csv", hashFeatures: 1000 }));
    const config = await downpour(dir, "train", "--config", "bad-width.json", ...noSave);
    assert.equal(config.code, 1);
    assert.match(config.err, /config file bad-width\.json, "hashFeatures" must be a power of two in \[2, 2\^31\], like 2\^20 or 1048576; got 1000/);
    // the dense data of peer, ps and cluster refuses them too
    for (const [key, value, flag] of [["hashFeatures", 16, "--hash-features"], ["stream", true, "--stream"]] as const) {
      await assert.rejects(loadTrainingData({ ...DEFAULT_SETTINGS, data: "clicks.csv", [key]: value }, { [key]: flag }, captureIO(dir)), new RegExp(`^CliError: ${flag}: sparse inputs train in one process`));
    }
  });
});
