// Reading data files: one format decision for train, eval and predict (.txt by content, --format to choose), CSV
// options (--delimiter, --comment, --features), one-column CSVs in predict, errors naming file, line, column and
// flag; and the summary table of a long run (first, best and last epochs unless --summary all).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runEval } from "../../src/cli/commands/eval.js";
import { runPredict } from "../../src/cli/commands/predict.js";
import { runTrain } from "../../src/cli/commands/train.js";
import { dataFormat } from "../../src/cli/datasets.js";
import { parseColumns, parseDelimiter } from "../../src/cli/parse.js";
import { readCsv, readCsvHeader } from "../../src/data/csv.js";
import { captureIO, csvRows, tempDir, writeTemp } from "./helpers.js";

const dir = tempDir("cli-formats");
const TIMEOUT = { timeout: 60_000 };
const quick = { epochs: 3, threads: 1, quiet: true, curves: false as const };

/** 40 rows of two separable classes: x0, x1 (and a third, noise column), label x0 > x1. */
function rows(): number[][] {
  return Array.from({ length: 40 }, (_, i) => {
    const a = (i * 37) % 17;
    const b = (i * 11) % 13;
    return [a, b, i % 5, a > b ? 1 : 0];
  });
}

const csv = (sep = ",") => `${rows().map((r) => r.join(sep)).join("\n")}\n`;
const libsvm = () => `${rows().map((r) => `${r[3]} 1:${r[0]} 2:${r[1]} 3:${r[2]}`).join("\n")}\n`;

describe("data formats", () => {
  test("one detection for every command: extension, else (.txt) content, else --format", async () => {
    assert.deepEqual(await dataFormat(writeTemp(dir, "a.csv", csv())), { format: "csv", how: "its .csv extension" });
    assert.deepEqual(await dataFormat(writeTemp(dir, "a.svm", libsvm())), { format: "libsvm", how: "its .svm extension" });
    assert.deepEqual(await dataFormat(writeTemp(dir, "csv.txt", csv())), { format: "csv", how: "its content (.txt)" });
    assert.deepEqual(await dataFormat(writeTemp(dir, "svm.txt", `# comment\n${libsvm()}`)), { format: "libsvm", how: "its content (.txt)" });
    assert.deepEqual(await dataFormat(`${dir}/csv.txt`, "libsvm"), { format: "libsvm", how: "--format libsvm" });
    assert.equal((await dataFormat("train-images-idx3-ubyte.gz")).format, "idx");
  });

  test("train, eval and predict read a libsvm .txt file alike", TIMEOUT, async () => {
    writeTemp(dir, "train.txt", libsvm());
    const result = await runTrain({ ...quick, data: "train.txt", model: "logistic", save: "txt.dpnn" }, captureIO(dir));
    assert.equal(result.reports[0]!.samples, 36);
    const evaluation = await runEval({ model: "txt.dpnn", data: "train.txt" }, captureIO(dir));
    assert.equal(evaluation.samples, 40);
    const io = captureIO(dir);
    assert.equal((await runPredict({ model: "txt.dpnn", input: "train.txt" }, io)).rows, 40);
    assert.equal(csvRows(io.out()).length, 41);
  });

  test("a parse error says which format was assumed and how to choose another", TIMEOUT, async () => {
    writeTemp(dir, "mixed.txt", `1,2,3,0\n1,2,x,1\n`);
    await assert.rejects(runTrain({ ...quick, data: "mixed.txt", save: false }, captureIO(dir)), (error: Error) => {
      assert.match(error.message, /mixed\.txt line 2, column 3: expected a number, got "x" \(read as csv, chosen by its content \(\.txt\); choose another with --format csv\|libsvm\|idx\)/);
      return true;
    });
    writeTemp(dir, "forced.txt", csv());
    await assert.rejects(runTrain({ ...quick, data: "forced.txt", format: "libsvm", save: false }, captureIO(dir)), /forced\.txt line 1, column 1: .*\(read as libsvm, chosen by --format libsvm; choose another/);
    writeTemp(dir, "model-input.txt", "1 2 3\n");
    await runTrain({ ...quick, data: "forced.txt", model: "logistic", save: "forced.dpnn" }, captureIO(dir));
    await assert.rejects(runPredict({ model: "forced.dpnn", input: "model-input.txt" }, captureIO(dir)), /model-input\.txt line 1, column 1: expected a number, got "1 2 3" \(fields separated by something else than ","\? set --delimiter\) \(read as csv/);
  });

  test("--delimiter (tab), --comment and --features; errors name the flag", TIMEOUT, async () => {
    writeTemp(dir, "tabs.csv", `# made by hand\n${csv("\t")}# the end\n`);
    const io = captureIO(dir);
    await runTrain({ ...quick, data: "tabs.csv", delimiter: parseDelimiter("\\t"), comment: "#", features: parseColumns("0-1"), model: "logistic", save: "tabs.dpnn" }, io);
    assert.match(io.err(), /training LogisticRegression 2-1 .* on tabs\.csv: 36 rows/);
    const evaluation = await runEval({ model: "tabs.dpnn", data: "tabs.csv" }, captureIO(dir));
    assert.equal(evaluation.samples, 40, "eval reads the file as training did (delimiter, comment, features from the model file)");
    await assert.rejects(runTrain({ ...quick, data: "tabs.csv", delimiter: "\t", comment: "#", features: [0, 7], save: false }, captureIO(dir)), /tabs\.csv line 2: --features names column 7, but the rows have 4 columns \(0-3\)/);
    await assert.rejects(runTrain({ ...quick, data: "tabs.csv", delimiter: "\t", comment: "#", features: [0, 3], save: false }, captureIO(dir)), /tabs\.csv line 2, column 4: --features includes column 3, the label column \(--label-column\)/);
    await assert.rejects(runTrain({ ...quick, data: "tabs.csv", delimiter: "\t", save: false }, captureIO(dir)), /tabs\.csv line 2 has 4 fields, expected 1 \(as on line 1\) \(line 1 looks like a comment: set --comment\)/);
    assert.throws(() => parseDelimiter(";;"), /expected one character/);
    assert.deepEqual(parseColumns("0-2,5"), [0, 1, 2, 5]);
    assert.throws(() => parseColumns("3-1"), /runs backwards/);
  });

  test("an autoencoder on a 3-column file uses all 3 columns", TIMEOUT, async () => {
    writeTemp(dir, "three.csv", `${rows().map((r) => r.slice(0, 3).join(",")).join("\n")}\n`);
    const io = captureIO(dir);
    await runTrain({ ...quick, data: "three.csv", model: "autoencoder", hidden: [2], save: "three.dpnn" }, io);
    assert.match(io.err(), /training AutoEncoder 3-2-3 /);
    const out = captureIO(dir);
    await runPredict({ model: "three.dpnn", input: "three.csv" }, out);
    assert.deepEqual(csvRows(out.out())[0], ["output0", "output1", "output2"]);
  });

  test("predict reads one-column CSVs, with or without a header", TIMEOUT, async () => {
    writeTemp(dir, "line.csv", `${Array.from({ length: 30 }, (_, i) => `${i},${2 * i + 1}`).join("\n")}\n`);
    await runTrain({ ...quick, data: "line.csv", model: "linear", save: "line.dpnn" }, captureIO(dir));
    for (const [name, text] of [["one.csv", "1\n2\n3\n"], ["named.csv", "x\n1\n2\n3\n"]] as const) {
      writeTemp(dir, name, text);
      const io = captureIO(dir);
      assert.equal((await runPredict({ model: "line.dpnn", input: name }, io)).rows, 3, name);
      assert.equal(csvRows(io.out()).length, 4);
    }
  });

  test("predict's header detection is the CSV reader's", async () => {
    const path = writeTemp(dir, "headed.csv", "a;b;label\n1;2;0\n");
    assert.deepEqual(await readCsvHeader(path, { delimiter: ";" }), ["a", "b", "label"]);
    assert.equal(await readCsvHeader(writeTemp(dir, "plain.csv", "1,2,0\n")), undefined);
    const ds = await readCsv(path, { delimiter: ";", labelColumn: null });
    assert.equal(ds.features, 3);
  });
});

describe("the summary of a long run", () => {
  test("50 epochs, --quiet: the first, best and last epochs with ellipsis rows; --summary all: every epoch", TIMEOUT, async () => {
    writeTemp(dir, "tiny.csv", csv());
    const io = captureIO(dir);
    await runTrain({ ...quick, epochs: 50, data: "tiny.csv", model: "logistic", save: false }, io);
    const epochs = (text: string) => text.split("\n").flatMap((l) => /^│\s+(\d+) │/.exec(l)?.[1] ?? []).map(Number);
    const shown = epochs(io.out());
    assert.ok(shown.length >= 2 && shown.length <= 3, `rows ${shown}`);
    assert.deepEqual([shown[0], shown.at(-1)], [1, 50]);
    assert.match(io.out(), /│\s+… │/);
    assert.match(io.out(), /50 epochs: the first, the best \(epoch \d+, by test accuracy\) and the last; --summary all shows every one/);
    const all = captureIO(dir);
    await runTrain({ ...quick, epochs: 50, data: "tiny.csv", model: "logistic", save: false, summary: "all" }, all);
    assert.deepEqual(epochs(all.out()), Array.from({ length: 50 }, (_, i) => i + 1));
    const terminal = { ...captureIO(dir), stdoutIsTerminal: true };
    await runTrain({ ...quick, quiet: false, epochs: 5, data: "tiny.csv", model: "logistic", save: false }, terminal);
    assert.equal(epochs(terminal.out()).length, 5, "every epoch on a terminal");
  });
});
