// train -> eval -> predict on the Pima CSV in a temp dir: the model and SVG are written, the held-out accuracy is
// >= 0.7, eval reads the model's scaling back, and predict streams rows in chunks and names bad lines.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { PREDICT_CHUNK, runPredict } from "../../src/cli/commands/predict.js";
import { runTrain, type TrainResult } from "../../src/cli/commands/train.js";
import { AXIS_TITLES } from "../../src/cli/curves.js";
import { captureIO, csvRows, pimaCsv, tempDir, writeTemp } from "./helpers.js";

/** The shared Pima CSV, read in before(): absent, every test here fails with sharedData()'s message. */
let pima = "";
const dir = tempDir("cli-workflow");
const FEATURES = 8;
const TIMEOUT = { timeout: 60_000 };

/** The Pima rows without their label, under a header f0..f7, repeated `times`. */
function featureCsv(times = 1): string {
  const rows = csvRows(pima).map((fields) => fields.slice(0, FEATURES).join(","));
  const header = Array.from({ length: FEATURES }, (_, j) => `f${j}`).join(",");
  return `${header}\n${Array.from({ length: times }, () => rows.join("\n")).join("\n")}\n`;
}

describe("train, eval and predict on a CSV", () => {
  let trained: TrainResult;
  const trainIO = captureIO(dir);

  before(async () => {
    pima = pimaCsv();
    writeTemp(dir, "pima.csv", pima);
    const flags = { data: "pima.csv", model: "logistic", normalize: "zscore", batchSize: 16, epochs: 20, threads: 2, quiet: true, save: "pima.dpnn", curves: "pima.svg" } as const;
    trained = await runTrain(flags, trainIO);
  }, TIMEOUT);

  test("train writes the model and an SVG of the curves; held-out accuracy >= 0.7", TIMEOUT, () => {
    assert.equal(trained.reports.length, 20);
    const accuracy = trained.reports.at(-1)!.validation!.accuracy!;
    assert.ok(accuracy >= 0.7, `test accuracy ${accuracy}`);
    assert.equal(trained.modelFile, join(dir, "pima.dpnn"));
    assert.ok(existsSync(trained.modelFile!));
    const svg = readFileSync(join(dir, "pima.svg"), "utf8");
    assert.ok(svg.startsWith("<svg"), svg.slice(0, 40));
    for (const title of Object.values(AXIS_TITLES)) assert.ok(svg.includes(`>${title}</text>`), `axis title ${title}`);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp") || f.includes(".draft")), [], "no temp files left");
  });

  test("train prints one line per epoch on stderr (no terminal) and a short summary table on stdout (--quiet)", TIMEOUT, () => {
    const lines = trainIO.err().split("\n").filter((l) => /^epoch \d+\/20 /.test(l));
    assert.equal(lines.length, 20);
    assert.match(lines[0]!, /loss \d\.\d{4} {2}test loss \d\.\d{4} {2}test accuracy \d+\.\d\d% {2}[\d,]+ samples\/s/);
    assert.match(trainIO.err(), /training LogisticRegression 8-1 .* on pima\.csv: 691 rows, 77 test rows; 20 epochs of batch 16/);
    const table = trainIO.out();
    for (const head of ["epoch", "loss", "test loss", "test accuracy", "samples/s", "seconds"]) assert.ok(table.includes(head), head);
    const epochs = table.split("\n").flatMap((l) => /^│\s+(\d+) │/.exec(l)?.[1] ?? []).map(Number);
    assert.ok(epochs.length >= 2 && epochs.length <= 3, `first, best and last: ${epochs}`);
    assert.equal(epochs[0], 1);
    assert.equal(epochs.at(-1), 20);
    assert.match(table, /│\s+… │/, "an ellipsis row for the epochs left out");
    assert.match(table, /20 epochs: the first, the best \(epoch \d+, by test accuracy\) and the last; --summary all shows every one/);
  });

  test("eval reads the model's scaling back and scores the CSV (JSON)", TIMEOUT, async () => {
    const io = captureIO(dir);
    const result = await runEval({ model: "pima.dpnn", data: "pima.csv", json: true }, io);
    assert.equal(result.samples, 768);
    assert.equal(result.kind, "LogisticRegression");
    assert.ok(result.accuracy! >= 0.7, `accuracy ${result.accuracy}`);
    assert.ok(Number.isFinite(result.loss) && result.loss < 0.6, `loss ${result.loss}`);
    assert.deepEqual(JSON.parse(io.out()), result);
  });

  test("eval prints a table by default", TIMEOUT, async () => {
    const io = captureIO(dir);
    await runEval({ model: "pima.dpnn", data: "pima.csv" }, io);
    assert.match(io.out(), /pima\.dpnn\s+│ pima\.csv\s+│ 768\s+│ 0\.\d{4}\s+│ \d+\.\d\d%/);
  });

  test("predict writes one probability per input row (header auto-detected) and the class", TIMEOUT, async () => {
    writeTemp(dir, "features.csv", featureCsv());
    const result = await runPredict({ model: "pima.dpnn", input: "features.csv", output: "out.csv", classes: true }, captureIO(dir));
    assert.equal(result.rows, 768);
    const [header, ...rows] = csvRows(readFileSync(join(dir, "out.csv"), "utf8"));
    assert.deepEqual(header, ["output0", "class"]);
    assert.equal(rows.length, 768);
    for (const [p, c] of rows) {
      const probability = Number(p);
      assert.ok(probability >= 0 && probability <= 1, p);
      assert.equal(Number(c), probability >= 0.5 ? 1 : 0);
    }
  });

  test("predict streams chunk by chunk to stdout, and drops a label column by name", TIMEOUT, async () => {
    const times = Math.ceil((2 * PREDICT_CHUNK + 1) / 768);
    const labelled = csvRows(pima).map((fields) => fields.join(","));
    const text = `${[...Array.from({ length: FEATURES }, (_, j) => `f${j}`), "Outcome"].join(",")}\n${Array.from({ length: times }, () => labelled.join("\n")).join("\n")}\n`;
    writeTemp(dir, "labelled.csv", text);
    const io = captureIO(dir);
    const result = await runPredict({ model: "pima.dpnn", input: "labelled.csv", labelColumn: "Outcome" }, io);
    const [header, ...rows] = csvRows(io.out());
    assert.deepEqual(header, ["output0"]);
    assert.equal(rows.length, 768 * times);
    assert.equal(result.rows, 768 * times);
    assert.deepEqual(rows.slice(768, 1536), rows.slice(0, 768), "the same rows give the same outputs in every chunk");
  });

  test("predict names the file and line of a row the model cannot take, and leaves no output file", TIMEOUT, async () => {
    writeTemp(dir, "short.csv", "1,2,3,4,5\n6,7,8,9,10\n");
    const io = captureIO(dir);
    await assert.rejects(runPredict({ model: "pima.dpnn", input: "short.csv", output: "short-out.csv" }, io), /short\.csv line 1: 5 values, the model takes 8 inputs/);
    assert.ok(!existsSync(join(dir, "short-out.csv")));
    writeTemp(dir, "labels.csv", csvRows(pima).slice(0, 3).map((f) => f.join(",")).join("\n"));
    await assert.rejects(runPredict({ model: "pima.dpnn", input: "labels.csv" }, io), /labels\.csv line 1: 9 values, the model takes 8 inputs \(drop a label column with --label-column, or choose the inputs with --features\)/);
    writeTemp(dir, "ragged.csv", `${featureCsv().split("\n").slice(0, 7).join("\n")}\n1,2,3,4,5\n`);
    await assert.rejects(runPredict({ model: "pima.dpnn", input: "ragged.csv" }, io), /ragged\.csv line 8 has 5 fields, expected 8/);
  });
});
