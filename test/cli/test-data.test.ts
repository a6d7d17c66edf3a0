// --test-data must have the training file's columns (a clear error naming both files, not a scaling-stats error),
// and a test file that is the training file itself is warned about (its figures would measure fit, not learning).
import assert from "node:assert/strict";
import { test } from "node:test";
import { tempDir, writeTemp } from "./helpers.js";
import { cli, QUICK, tinyCsv } from "./tiny-data.js";

const dir = tempDir("cli-test-data");
const TIMEOUT = { timeout: 60_000 };

test("a --test-data file with fewer columns names both files and their shapes", TIMEOUT, async () => {
  writeTemp(dir, "t.csv", tinyCsv());
  writeTemp(dir, "narrow.csv", tinyCsv(10).split("\n").map((line) => line.split(",").slice(1).join(",")).join("\n"));
  const { code, err } = await cli(dir, ["train", "--data", "t.csv", "--test-data", "narrow.csv", "--no-save", "--no-curves", ...QUICK]);
  assert.equal(code, 1);
  assert.match(err, /--test-data narrow\.csv: its rows give 2 features and 1 output, but --data t\.csv gives 3 features and 1 output/);
});

test("a --test-data file that is the training file is warned about, and training goes on", TIMEOUT, async () => {
  writeTemp(dir, "same.csv", tinyCsv());
  const { code, err } = await cli(dir, ["train", "--data", "same.csv", "--test-data", "same.csv", "--no-save", "--no-curves", ...QUICK]);
  assert.equal(code, 0, err);
  assert.match(err, /warning: --test-data same\.csv is the training file/);
});
