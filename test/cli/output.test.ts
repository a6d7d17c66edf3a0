// The CLI's output pieces: the epoch table, per-epoch lines, the curves chart's panels, prediction rows, atomic files.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { formatRows } from "../../src/cli/commands/predict.js";
import { AXIS_TITLES, curvesSpec, renderSvg } from "../../src/cli/curves.js";
import { AtomicFile, writeFileAtomic } from "../../src/cli/files.js";
import { epochLine } from "../../src/cli/format.js";
import { epochTable } from "../../src/cli/summary.js";
import type { EpochReport } from "../../src/train/trainer.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("cli-output");

function report(epoch: number, validation?: { loss: number; accuracy?: number }): EpochReport {
  return {
    epoch, iterations: epoch * 10, samples: 640, loss: 1 / epoch, seconds: 0.5, samplesPerSecond: 1280, backups: 0,
    ...(validation ? { validation: { loss: validation.loss, accuracy: validation.accuracy, samples: 100 } } : {}),
  };
}

describe("output", () => {
  test("the epoch table has a row per epoch; missing test figures show as -", () => {
    const table = epochTable([report(1, { loss: 0.5, accuracy: 0.875 }), report(2)]);
    assert.match(table, /│\s+1 │ 1\.0000 │\s+0\.5000 │\s+87\.50% │\s+1,280 │\s+0\.50 │/);
    assert.match(table, /│\s+2 │ 0\.5000 │\s+- │\s+- │\s+1,280 │\s+0\.50 │/);
    assert.doesNotMatch(table, /\u001b\[/, "no colour codes");
  });

  test("an epoch line carries the stop reason", () => {
    assert.equal(epochLine({ ...report(3), stop: "converged" }, 10), "epoch 3/10  loss 0.3333  1,280 samples/s  0.50 s  (stopped: converged)");
  });

  test("curves: a loss panel, and an accuracy panel only when there is a test accuracy", async () => {
    const withAccuracy = curvesSpec([report(1, { loss: 0.4, accuracy: 0.9 }), report(2, { loss: 0.3, accuracy: 0.95 })], "t") as { vconcat: unknown[] };
    assert.equal(withAccuracy.vconcat.length, 2);
    const regression = curvesSpec([report(1, { loss: 0.4 })], "t") as { vconcat: unknown[] };
    assert.equal(regression.vconcat.length, 1);
    const svg = await renderSvg(curvesSpec([report(1)], "loss only"));
    assert.ok(svg.startsWith("<svg") && svg.includes(`>${AXIS_TITLES.loss}</text>`) && !svg.includes(AXIS_TITLES.accuracy));
  });

  test("prediction rows: 7 significant digits, and the class by argmax or at 0.5", () => {
    assert.equal(formatRows(Float32Array.of(0.1, 0.7, 0.2, 0.6, 0.3, 0.1), 2, 3, true), "0.1,0.7,0.2,1\n0.6,0.3,0.1,0\n");
    assert.equal(formatRows(Float32Array.of(0.25, 0.5), 2, 1, true), "0.25,0\n0.5,1\n");
  });

  test("atomic files: whole after commit, absent after abort, no temp files left", async () => {
    await writeFileAtomic(join(dir, "a.txt"), "hello");
    assert.equal(readFileSync(join(dir, "a.txt"), "utf8"), "hello");
    const file = await AtomicFile.create(join(dir, "b.txt"));
    await file.write("partial");
    await file.abort();
    assert.deepEqual(readdirSync(dir), ["a.txt"]);
  });
});
