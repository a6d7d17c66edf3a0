// A model trained with `downpour train --hash-features 2^k` records how it hashed its CSV (width, seed, field count,
// label and hashed columns, header handling, delimiter) in meta.preprocess.hashing; `downpour eval` and `downpour
// predict` in fresh processes hash their CSV the same way (eval gives the training run's test figures, predict's
// probabilities give eval's log-loss, with or without the label column), `--resume` trains on, and a CSV of other
// columns (another field count, a header naming other columns) is refused naming the file, the line and what was
// expected. Also the reader's options behind it: readHashedLayout, layout and ignoreLabels.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { EvalResult } from "../../src/cli/commands/eval.js";
import type { TrainResult } from "../../src/cli/commands/train.js";
import { loadTrainedModel, type HashedInputs } from "../../src/cli/model-file.js";
import { runCli } from "../../src/cli/program.js";
import { DataError } from "../../src/data/errors.js";
import { readCsvHashed, readHashedLayout } from "../../src/data/hash-features.js";
import { mulberry32 } from "../../src/data/random.js";
import { captureIO, cliMain, csvRows, pimaCsv, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 120_000 };
const HEADER = "pregnant,glucose,pressure,skin,insulin,bmi,pedigree,age,diabetic";

/** Runs `downpour ...args` in this process, in `cwd`; the exit code and what it printed. */
async function downpour(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(cwd);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** Runs the built binary in a fresh process in `cwd`; its exit code and output. */
function spawned(cwd: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const run = spawnSync(process.execPath, [cliMain(), ...args], { cwd, encoding: "utf8", timeout: 60_000 });
  return { code: run.status, out: run.stdout, err: run.stderr };
}

/** The mean log-loss of predict's probabilities (one output column) against the 0/1 labels. */
function logLoss(predicted: string, labels: readonly number[]): number {
  const lines = predicted.trim().split("\n");
  assert.equal(lines[0], "output0");
  assert.equal(lines.length - 1, labels.length, "one prediction per row");
  const sum = lines.slice(1).reduce((total, line, i) => {
    const p = Math.min(Math.max(Number(line), 1e-7), 1 - 1e-7);
    return total - (labels[i] === 1 ? Math.log(p) : Math.log(1 - p));
  }, 0);
  return sum / labels.length;
}

describe("downpour eval, predict and train --resume of a --hash-features model", () => {
  const dir = tempDir("cli-hashed");
  let heldLabels: number[] = [];
  const train = ["--model", "logistic", "--optimizer", "adagrad", "--learning-rate", "0.01", "--quiet", "--no-curves", "--json", "--seed", "3"];

  before(() => {
    // Pima's rows shuffled (seeded), then 600 to train on and 168 held out; the same held-out rows in other shapes
    const rows = csvRows(pimaCsv());
    const random = mulberry32(11);
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    const text = (part: string[][]) => `${part.map((row) => row.join(",")).join("\n")}\n`;
    const held = rows.slice(600);
    heldLabels = held.map((row) => Number(row.at(-1)));
    writeTemp(dir, "pima-train.csv", text(rows.slice(0, 600)));
    writeTemp(dir, "pima-held.csv", text(held));
    writeTemp(dir, "pima-held-header.csv", `${HEADER}\n${text(held)}`);
    writeTemp(dir, "pima-new.csv", text(held.map((row) => row.slice(0, -1)))); // no label column
    writeTemp(dir, "pima-seven.csv", text(held.map((row) => row.slice(0, 7))));
    writeTemp(dir, "pima-train-header.csv", `${HEADER}\n${text(rows.slice(0, 600))}`);
    const swapped = HEADER.split(",");
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    writeTemp(dir, "pima-held-swapped.csv", `${swapped.join(",")}\n${text(held.map((row) => [row[0]!, row[2]!, row[1]!, ...row.slice(3)]))}`);
    writeTemp(dir, "pima-held-ragged.csv", `${text(held.slice(0, 5))}${held[5]!.slice(0, 8).join(",")}\n`);
  });

  test("eval in a fresh process gives the run's test figures; predict's probabilities give eval's log-loss; --resume trains on", TIMEOUT, async () => {
    const run = await downpour(dir, "train", "--data", "pima-train.csv", "--test-data", "pima-held.csv", "--hash-features", "2^12", ...train, "--epochs", "6",
      "--checkpoint-every", "3", "--save", "pima.dpnn");
    assert.equal(run.code, 0, run.err);
    const last = (JSON.parse(run.out) as TrainResult).reports.at(-1)!.validation!;

    // the model file records the whole hashing; so does the checkpoint
    const expected: HashedInputs = { width: 4096, seed: 0, fields: 9, labelColumn: 8, featureColumns: [0, 1, 2, 3, 4, 5, 6, 7], header: "auto", delimiter: "," };
    for (const file of ["pima.dpnn", "pima.checkpoint.dpnn"]) {
      const { model, preprocess } = await loadTrainedModel(join(dir, file));
      model.dispose();
      assert.deepEqual(preprocess.hashing, expected, file);
      assert.equal(preprocess.hashFeatures, 4096, file);
    }

    const evaluated = spawned(dir, "eval", "--model", "pima.dpnn", "--data", "pima-held.csv", "--json");
    assert.equal(evaluated.code, 0, evaluated.err);
    const scored = JSON.parse(evaluated.out) as EvalResult;
    assert.equal(scored.samples, 168);
    assert.ok(Math.abs(scored.loss - last.loss) < 1e-6, `eval's log-loss ${scored.loss}, the run's test log-loss ${last.loss}`);
    assert.equal(scored.accuracy, last.accuracy);
    // a header line is detected as training would (its label field is not a number), the rows hashed the same way
    const headed = spawned(dir, "eval", "--model", "pima.dpnn", "--data", "pima-held-header.csv", "--json");
    assert.equal(headed.code, 0, headed.err);
    assert.equal((JSON.parse(headed.out) as EvalResult).loss, scored.loss);

    const predicted = spawned(dir, "predict", "--model", "pima.dpnn", "--input", "pima-held.csv", "--output", "-");
    assert.equal(predicted.code, 0, predicted.err);
    const loss = logLoss(predicted.out, heldLabels);
    assert.ok(Math.abs(loss - scored.loss) < 1e-4, `predict's probabilities give log-loss ${loss}, eval said ${scored.loss}`);
    // rows without the label column predict the same
    const unlabelled = spawned(dir, "predict", "--model", "pima.dpnn", "--input", "pima-new.csv", "--output", "-");
    assert.equal(unlabelled.code, 0, unlabelled.err);
    assert.equal(unlabelled.out, predicted.out);

    // --resume reads and hashes the recorded file by itself, and goes on from epoch 7
    const resumed = await downpour(dir, "train", "--resume", "pima.dpnn", "--epochs", "8", "--quiet", "--no-curves", "--json", "--save", "pima8.dpnn");
    assert.equal(resumed.code, 0, resumed.err);
    const reports = (JSON.parse(resumed.out) as TrainResult).reports;
    assert.deepEqual(reports.map((r) => [r.epoch, r.samples, r.validation?.samples]), [[7, 600, 168], [8, 600, 168]]);
    const { model, preprocess } = await loadTrainedModel(join(dir, "pima8.dpnn"));
    try {
      assert.equal(model.state?.epochs, 8);
      assert.deepEqual(preprocess.hashing, expected);
    } finally {
      model.dispose();
    }
    const again = await downpour(dir, "eval", "--model", "pima8.dpnn", "--data", "pima-held.csv", "--json");
    assert.equal(again.code, 0, again.err);
    assert.ok(Math.abs((JSON.parse(again.out) as EvalResult).loss - reports.at(-1)!.validation!.loss) < 1e-6);
    // so does the checkpoint (of epoch 6)
    const fromCheckpoint = await downpour(dir, "train", "--resume", "pima.checkpoint.dpnn", "--epochs", "7", "--quiet", "--no-curves", "--json", "--no-save");
    assert.equal(fromCheckpoint.code, 0, fromCheckpoint.err);
    assert.deepEqual((JSON.parse(fromCheckpoint.out) as TrainResult).reports.map((r) => r.epoch), [7]);
  });

  test("a training file with a header: its names are recorded, a file naming other columns is refused, one without a header is hashed alike", TIMEOUT, async () => {
    const run = await downpour(dir, "train", "--data", "pima-train-header.csv", "--label-column", "diabetic", "--holdout", "100", "--hash-features", "2^10", ...train,
      "--epochs", "2", "--save", "headed.dpnn");
    assert.equal(run.code, 0, run.err);
    const { model, preprocess } = await loadTrainedModel(join(dir, "headed.dpnn"));
    model.dispose();
    assert.deepEqual(preprocess.hashing?.headerNames, HEADER.split(","));
    assert.equal(preprocess.hashing?.labelColumn, 8);

    const withHeader = await downpour(dir, "eval", "--model", "headed.dpnn", "--data", "pima-held-header.csv", "--json");
    assert.equal(withHeader.code, 0, withHeader.err);
    const without = await downpour(dir, "eval", "--model", "headed.dpnn", "--data", "pima-held.csv", "--json");
    assert.equal(without.code, 0, without.err);
    assert.equal((JSON.parse(without.out) as EvalResult).loss, (JSON.parse(withHeader.out) as EvalResult).loss);

    const swapped = await downpour(dir, "eval", "--model", "headed.dpnn", "--data", "pima-held-swapped.csv");
    assert.equal(swapped.code, 1);
    assert.match(swapped.err, /pima-held-swapped\.csv line 1, column 2: the header names column 1 "pressure", expected "glucose" \(as in pima-train-header\.csv, the training file of headed\.dpnn\)/);
  });

  test("refused by name: another column count (eval, predict, --resume, a ragged line), other columns or width, another format", TIMEOUT, async () => {
    const made = await downpour(dir, "train", "--data", "pima-train.csv", "--holdout", "100", "--hash-features", "2^8", ...train, "--epochs", "1", "--save", "small.dpnn");
    assert.equal(made.code, 0, made.err);
    writeTemp(dir, "rows.svm", "1 1:0.5 2:1\n0 1:1\n");
    const from = "\\(as in pima-train\\.csv, the training file of small\\.dpnn\\)";
    const cases: [string[], number, RegExp][] = [
      [["eval", "--model", "small.dpnn", "--data", "pima-seven.csv"], 1, new RegExp(`pima-seven\\.csv line 1 has 7 fields, expected 9 ${from}`)],
      [["eval", "--model", "small.dpnn", "--data", "pima-new.csv"], 1, new RegExp(`pima-new\\.csv line 1 has 8 fields, expected 9 ${from}`)],
      [["eval", "--model", "small.dpnn", "--data", "pima-held-ragged.csv"], 1, new RegExp(`pima-held-ragged\\.csv line 6 has 8 fields, expected 9 ${from}`)],
      [["predict", "--model", "small.dpnn", "--input", "pima-seven.csv"], 1, new RegExp(`pima-seven\\.csv line 1 has 7 fields, expected 9 ${from}, or 8 without its label column`)],
      [["train", "--resume", "small.dpnn", "--data", "pima-seven.csv", "--epochs", "2", "--no-save", "--quiet"], 1, new RegExp(`pima-seven\\.csv line 1 has 7 fields, expected 9 ${from}`)],
      [["eval", "--model", "small.dpnn", "--data", "pima-held.csv", "--features", "0-3"], 1, /--features: --model small\.dpnn \(hashed CSV columns, trained with --hash-features\) hashes the columns its training hashed/],
      [["predict", "--model", "small.dpnn", "--input", "pima-held.csv", "--label-column", "0"], 1, /--label-column: the model small\.dpnn \(hashed CSV columns, trained with --hash-features\) hashes the columns/],
      [["eval", "--model", "small.dpnn", "--data", "rows.svm"], 1, /--model small\.dpnn \(hashed CSV columns, trained with --hash-features\): --data rows\.svm is read as libsvm \(chosen by its \.svm extension\)/],
      [["predict", "--model", "small.dpnn", "--input", "rows.svm"], 1, /--input rows\.svm: the model small\.dpnn .* hashes the columns of CSV rows, but this one is read as libsvm/],
      [["eval", "--model", "small.dpnn", "--data", "digits"], 1, /--model small\.dpnn \(hashed CSV columns.*\): --data digits is a preset, read dense; give the CSV file/],
      [["train", "--resume", "small.dpnn", "--hash-features", "2^10", "--epochs", "2", "--no-save"], 1, /--hash-features 1024: the model of --resume small\.dpnn hashes into 256 features/],
      [["train", "--resume", "small.dpnn", "--features", "0-3", "--epochs", "2", "--no-save"], 1, /--features: the model of --resume small\.dpnn hashes the columns its training hashed/],
      [["eval", "--model", "small.dpnn", "--data", "pima-held.csv", "--classes", "x"], 2, /--classes/],
    ];
    for (const [args, code, pattern] of cases) {
      const run = await downpour(dir, ...args);
      assert.equal(run.code, code, `${args.join(" ")}: ${run.err}`);
      assert.match(run.err, pattern, args.join(" "));
    }
  });
});

describe("readCsvHashed's layout and ignoreLabels", () => {
  const dir = tempDir("hashed-layout");

  test("readHashedLayout settles the columns; a layout checks the field count and header; ignoreLabels reads rows with or without the label", async () => {
    writeTemp(dir, "a.csv", "site,x,clicked\nhot,0.5,1\ncold,2,0\n");
    writeTemp(dir, "b.csv", "hot,0.5,?\ncold,2,?\n");
    writeTemp(dir, "c.csv", "site,x\nhot,0.5\ncold,2\n");
    writeTemp(dir, "d.csv", "hot,0.5,1,9\n");
    const options = { bits: 8, seed: 4 };
    const layout = await readHashedLayout(join(dir, "a.csv"), options);
    assert.deepEqual(layout, { fields: 3, header: ["site", "x", "clicked"], labelColumn: 2, featureColumns: [0, 1] });

    const expected = { fields: 3, header: layout.header!, from: "as in a.csv" };
    const whole = await readCsvHashed(join(dir, "a.csv"), options);
    const labelled = await readCsvHashed(join(dir, "b.csv"), { ...options, labelColumn: 2, layout: expected, ignoreLabels: true });
    const unlabelled = await readCsvHashed(join(dir, "c.csv"), { ...options, labelColumn: 2, layout: expected, ignoreLabels: true });
    for (const ds of [labelled, unlabelled]) {
      assert.deepEqual([...ds.rowPtr], [...whole.rowPtr]);
      assert.deepEqual([...ds.indices], [...whole.indices]);
      assert.deepEqual([...ds.values], [...whole.values]);
      assert.deepEqual([...ds.y], [0, 0]);
    }
    // labels read: "?" makes the first line look like a header (its label field is not a number), unlike a.csv's
    await assert.rejects(readCsvHashed(join(dir, "b.csv"), { ...options, layout: expected }), /b\.csv line 1, column 1: the header names column 0 "hot", expected "site" \(as in a\.csv\)/);
    await assert.rejects(readCsvHashed(join(dir, "b.csv"), { ...options, header: false, layout: expected }), (error: unknown) => {
      assert.ok(error instanceof DataError);
      assert.equal(error.line, 1);
      assert.match(error.message, /b\.csv line 1, column 3: expected a numeric label/);
      return true;
    });
    await assert.rejects(readCsvHashed(join(dir, "d.csv"), { ...options, labelColumn: 2, layout: expected }), /d\.csv line 1 has 4 fields, expected 3 \(as in a\.csv\)$/);
  });
});
