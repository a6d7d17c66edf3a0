// A model file may be trained further in place: --resume m.dpnn --save m.dpnn reads the file whole before any
// output is written, so replacing it is safe; an input that is not the resumed model is still never overwritten.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../../src/api/persist.js";
import { tempDir, writeTemp } from "./helpers.js";
import { cli, QUICK, tinyCsv } from "./tiny-data.js";

test("--resume and --save may name the same model file; it then holds the longer run", { timeout: 60_000 }, async () => {
  const dir = tempDir("cli-resume-in-place");
  writeTemp(dir, "t.csv", tinyCsv());
  const first = await cli(dir, ["train", "--data", "t.csv", "--save", "m.dpnn", "--no-curves", ...QUICK]);
  assert.equal(first.code, 0, first.err);
  const again = await cli(dir, ["train", "--resume", "m.dpnn", "--save", "m.dpnn", "--epochs", "2", "--no-curves", "--quiet"]);
  assert.equal(again.code, 0, again.err);
  const model = await loadModel(join(dir, "m.dpnn"));
  try {
    assert.equal(model.state?.epochs, 2);
  } finally {
    model.dispose();
  }
  const clobber = await cli(dir, ["train", "--resume", "m.dpnn", "--data", "t.csv", "--save", "t.csv", "--epochs", "3", "--no-curves", "--quiet"]);
  assert.equal(clobber.code, 1);
  assert.match(clobber.err, /would overwrite the input --data t\.csv/);
});
