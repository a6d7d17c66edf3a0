// The CLI's outputs are checked before any work: an output that is an input (also through a symlink, a hard link
// or ../), another output, a folder, a FIFO or a device is refused, as are missing or read-only folders and empty
// paths; a model whose write fails after training is kept in the temp folder; a diverged run writes nothing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { CliError } from "../../src/cli/errors.js";
import { loadTrainedModel, saveTrainedModel } from "../../src/cli/model-file.js";
import { checkOutputs, ModelRescuedError, namedFile, writeModelOrRescue } from "../../src/cli/outputs.js";
import { tempDir, writeTemp } from "./helpers.js";
import { cli, QUICK, tinyCsv } from "./tiny-data.js";

const root = tempDir("cli-outputs");
const TIMEOUT = { timeout: 60_000 };

/** A new folder holding t.csv (the tiny training data). */
function fresh(): string {
  const dir = mkdtempSync(join(root, "case-"));
  writeTemp(dir, "t.csv", tinyCsv());
  return dir;
}

/** The run was refused before training started (exit 1, no "training ..." line), with a message matching `message`. */
function assertRefusedUpFront(run: { code: number; err: string }, message: RegExp): void {
  assert.equal(run.code, 1, run.err);
  assert.match(run.err, message);
  assert.doesNotMatch(run.err, /^training /m, "refused before training");
}

describe("train refuses outputs that would destroy an input or another output, before any work", () => {
  const cases: { name: string; setup?: (dir: string) => void; args: string[]; message: RegExp; keep: string }[] = [
    {
      name: "--save is --data",
      args: ["--data", "t.csv", "--save", "t.csv", "--no-curves"],
      message: /--save t\.csv: would overwrite the input --data t\.csv/,
      keep: "t.csv",
    },
    {
      name: "--curves is --data",
      args: ["--data", "t.csv", "--curves", "t.csv"],
      message: /--curves t\.csv: would overwrite the input --data t\.csv/,
      keep: "t.csv",
    },
    {
      name: "--save through ../ is --data",
      setup: (dir) => mkdirSync(join(dir, "sub")),
      args: ["--data", "t.csv", "--save", "sub/../t.csv", "--no-curves"],
      message: /--save sub\/\.\.\/t\.csv: would overwrite the input --data t\.csv/,
      keep: "t.csv",
    },
    {
      name: "--save is a symlink to --data",
      setup: (dir) => symlinkSync(join(dir, "t.csv"), join(dir, "link.csv")),
      args: ["--data", "t.csv", "--save", "link.csv", "--no-curves"],
      message: /--save link\.csv: would overwrite the input --data t\.csv/,
      keep: "t.csv",
    },
    {
      name: "--save is a hard link of --data",
      setup: (dir) => linkSync(join(dir, "t.csv"), join(dir, "hard.csv")),
      args: ["--data", "t.csv", "--save", "hard.csv", "--no-curves"],
      message: /--save hard\.csv: would overwrite the input --data t\.csv/,
      keep: "t.csv",
    },
    {
      name: "--save is --test-data",
      setup: (dir) => writeTemp(dir, "test.csv", tinyCsv(12, 3)),
      args: ["--data", "t.csv", "--test-data", "test.csv", "--save", "test.csv", "--no-curves"],
      message: /--save test\.csv: would overwrite the input --test-data test\.csv/,
      keep: "test.csv",
    },
    {
      name: "--save is --config",
      setup: (dir) => writeTemp(dir, "run.json", '{ "data": "t.csv" }'),
      args: ["--config", "run.json", "--save", "run.json", "--no-curves"],
      message: /--save run\.json: would overwrite the input --config run\.json/,
      keep: "run.json",
    },
    {
      name: "the default curves file beside the model is --data",
      setup: (dir) => {
        mkdirSync(join(dir, "out"));
        writeTemp(dir, "out/downpour-curves.svg", tinyCsv());
      },
      args: ["--data", "out/downpour-curves.svg", "--format", "csv", "--save", "out/m.dpnn"],
      message:
        /--curves downpour-curves\.svg \(the default, beside the model\): would overwrite the input --data out\/downpour-curves\.svg/,
      keep: "out/downpour-curves.svg",
    },
  ];
  for (const c of cases) {
    test(c.name, TIMEOUT, async () => {
      const dir = fresh();
      c.setup?.(dir);
      const args = ["train", ...c.args, ...QUICK];
      const before = readFileSync(join(dir, c.keep));
      const run = await cli(dir, args);
      assertRefusedUpFront(run, c.message);
      assert.deepEqual(readFileSync(join(dir, c.keep)), before, `${c.keep} unchanged`);
    });
  }

  test("--save and --curves naming one file", TIMEOUT, async () => {
    const dir = fresh();
    const run = await cli(dir, ["train", "--data", "t.csv", "--save", "m.dpnn", "--curves", "m.dpnn", ...QUICK]);
    assertRefusedUpFront(run, /--curves m\.dpnn and --save m\.dpnn are the same file/);
    assert.ok(!existsSync(join(dir, "m.dpnn")));
  });
});

describe("train refuses outputs that are not file paths in a writable folder, before any work", () => {
  test("--save naming a directory", TIMEOUT, async () => {
    const dir = fresh();
    mkdirSync(join(dir, "folder"));
    assertRefusedUpFront(
      await cli(dir, ["train", "--data", "t.csv", "--save", "folder", "--no-curves", ...QUICK]),
      /--save folder: is a directory, expected a file path/,
    );
    assertRefusedUpFront(
      await cli(dir, ["train", "--data", "t.csv", "--save", "new/", "--no-curves", ...QUICK]),
      /--save new\/: names a folder, expected a file path/,
    );
  });

  test("--save naming a FIFO (where mkfifo exists)", TIMEOUT, async (t) => {
    const dir = fresh();
    const fifo = join(dir, "pipe.dpnn");
    try {
      execFileSync("mkfifo", [fifo], { stdio: "ignore" });
    } catch {
      t.skip("no mkfifo here");
      return;
    }
    assertRefusedUpFront(
      await cli(dir, ["train", "--data", "t.csv", "--save", "pipe.dpnn", "--no-curves", ...QUICK]),
      /--save pipe\.dpnn: is a named pipe \(FIFO\), expected a file path/,
    );
    assert.equal(execFileSync("ls", ["-l", fifo], { encoding: "utf8" })[0], "p", "still a FIFO");
  });

  test("a device (/dev/null) is refused by the check itself", { skip: !existsSync("/dev/null") }, async () => {
    await assert.rejects(
      checkOutputs([namedFile("--save", "--save", "/dev/null", "/dev/null")], []),
      /--save \/dev\/null: is a device, expected a file path/,
    );
  });

  test("--save in a folder that does not exist names the flag and the folder", TIMEOUT, async () => {
    const dir = fresh();
    assertRefusedUpFront(
      await cli(dir, ["train", "--data", "t.csv", "--save", "out/m.dpnn", "--no-curves", ...QUICK]),
      /--save out\/m\.dpnn: the folder out does not exist/,
    );
    assert.ok(!existsSync(join(dir, "out")), "nothing created");
  });

  test("--curves in a read-only folder (not as root, where every folder is writable)", {
    ...TIMEOUT,
    skip: process.getuid?.() === 0 || process.platform === "win32",
  }, async () => {
    const dir = fresh();
    mkdirSync(join(dir, "locked"));
    chmodSync(join(dir, "locked"), 0o555);
    try {
      assertRefusedUpFront(
        await cli(dir, ["train", "--data", "t.csv", "--no-save", "--curves", "locked/c.svg", ...QUICK]),
        /--curves locked\/c\.svg: the folder locked is not writable/,
      );
    } finally {
      chmodSync(join(dir, "locked"), 0o755);
    }
  });

  test("empty --save, --curves and predict --output are usage errors naming the flag", TIMEOUT, async () => {
    const dir = fresh();
    for (const [flag, args] of [
      ["--save", ["train", "--data", "t.csv", "--save", "", ...QUICK]],
      ["--curves", ["train", "--data", "t.csv", "--curves", "", ...QUICK]],
      ["--output", ["predict", "--input", "t.csv", "--output", ""]],
    ] as const) {
      const run = await cli(dir, args);
      assert.equal(run.code, 2, `${flag}: ${run.err}`);
      assert.match(run.err, new RegExp(`option '${flag} <[^>]+>' argument '' is invalid\\. expected a file path, got an empty one`));
      assert.doesNotMatch(run.err, /^training /m);
    }
  });
});

describe("predict refuses an --output that is an input", () => {
  test("--output is --input, or --model", TIMEOUT, async () => {
    const dir = fresh();
    assert.equal((await cli(dir, ["train", "--data", "t.csv", "--save", "m.dpnn", "--no-curves", ...QUICK])).code, 0);
    writeTemp(dir, "x.csv", tinyCsv(5, 11).replace(/,[01]\n/g, "\n"));
    const input = readFileSync(join(dir, "x.csv"));
    const model = readFileSync(join(dir, "m.dpnn"));
    const asInput = await cli(dir, ["predict", "--model", "m.dpnn", "--input", "x.csv", "--output", "x.csv"]);
    assert.equal(asInput.code, 1, asInput.err);
    assert.match(asInput.err, /--output x\.csv: would overwrite the input --input x\.csv/);
    const asModel = await cli(dir, ["predict", "--model", "m.dpnn", "--input", "x.csv", "--output", "./m.dpnn"]);
    assert.equal(asModel.code, 1, asModel.err);
    assert.match(asModel.err, /--output \.\/m\.dpnn: would overwrite the input --model m\.dpnn/);
    assert.deepEqual(readFileSync(join(dir, "x.csv")), input);
    assert.deepEqual(readFileSync(join(dir, "m.dpnn")), model);
  });
});

describe("a model whose write fails after training is kept", () => {
  test("writeModelOrRescue: the folder removed meanwhile, the model goes to the rescue folder, the error names both", TIMEOUT, async () => {
    const dir = mkdtempSync(join(root, "rescue-"));
    const gone = join(dir, "gone");
    mkdirSync(gone);
    rmSync(gone, { recursive: true });
    const keep = join(dir, "keep");
    mkdirSync(keep);
    const model = await LogisticRegression.create({ inputs: 3, seed: 5 });
    try {
      const preprocess = { data: "t.csv" };
      const target = join(gone, "m.dpnn");
      let error: unknown;
      await writeModelOrRescue("--save gone/m.dpnn", target, (path) => saveTrainedModel(model, path, preprocess), [
        join(dir, "missing-too"),
        keep,
      ]).catch((e: unknown) => {
        error = e;
      });
      assert.ok(error instanceof ModelRescuedError, String(error));
      assert.ok(error instanceof CliError);
      assert.equal(error.path, target);
      assert.ok(error.keptAt.startsWith(keep), error.keptAt);
      assert.match(error.message, /^--save gone\/m\.dpnn: cannot write the model \(.+\); the trained model was saved to .+ instead$/);
      assert.ok(error.message.includes(error.keptAt));
      const kept = await loadTrainedModel(error.keptAt);
      try {
        assert.deepEqual(kept.model.network.weights(0).toArray(), model.network.weights(0).toArray());
        assert.equal(kept.preprocess.data, "t.csv");
      } finally {
        kept.model.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  test("writeModelOrRescue: when no place takes it, the error says the model is lost", TIMEOUT, async () => {
    const dir = mkdtempSync(join(root, "lost-"));
    const failing = () => Promise.reject(new Error("disk full"));
    await assert.rejects(
      writeModelOrRescue("--save m.dpnn", join(dir, "m.dpnn"), failing, [dir]),
      /--save m\.dpnn: cannot write the model \(disk full\), nor keep it in .+; the trained model is lost/,
    );
  });
});

describe("a diverged run", () => {
  test("--learning-rate 1e30 exits 1 naming the epoch and mini-batch and --learning-rate; no model and no curves", TIMEOUT, async () => {
    const dir = fresh();
    const run = await cli(dir, [
      "train",
      "--data",
      "t.csv",
      "--learning-rate",
      "1e30",
      "--epochs",
      "2",
      "--threads",
      "1",
      "--hidden",
      "4",
      "--quiet",
      "--save",
      "m.dpnn",
      "--curves",
      "c.svg",
    ]);
    assert.equal(run.code, 1, run.err);
    assert.match(run.err, /^downpour: .*diverged.*epoch \d+, mini-batch \d+.*a smaller --learning-rate/m);
    assert.ok(!existsSync(join(dir, "m.dpnn")), "no model written");
    assert.ok(!existsSync(join(dir, "c.svg")), "no curves written");
  });
});
