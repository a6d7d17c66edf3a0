// train's checkpoints, --resume, --save-best, --patience and Ctrl-C, run in-process: a checkpoint every N epochs,
// resuming giving the very weights of an uninterrupted run (sync, main thread), refusals naming the flags, the best
// epoch saved, early stopping said once on stderr, and an interrupt writing a checkpoint and exiting 130.
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, test } from "node:test";
import { MultiLayerPerceptron, type Model } from "../../src/api/models.js";
import { loadModel, saveModel } from "../../src/api/persist.js";
import { checkpointPath } from "../../src/cli/checkpoints.js";
import { runTrain } from "../../src/cli/commands/train.js";
import type { TrainFlags } from "../../src/cli/config.js";
import { InterruptedError } from "../../src/cli/errors.js";
import { DEFAULT_SETTINGS } from "../../src/cli/settings.js";
import type { CliIO, Interrupts } from "../../src/cli/io.js";
import { runCli } from "../../src/cli/program.js";
import { digitsSets } from "../../src/cli/datasets.js";
import type { Tensor } from "../../src/model/network.js";
import { captureIO, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 120_000 };
/** Deterministic training: one update per mini-batch on the main thread; dropout and decay so that the seed of each
 *  step and the epoch count of the learning-rate decay matter. */
const DIGITS: TrainFlags = {
  data: "digits", hidden: [16], dropout: 0.2, learningRateDecay: 0.9, batchSize: 32, threads: 0, mode: "sync", seed: 5, quiet: true, curves: false,
};

/** A seeded CSV of `rows` rows: 4 features in [0, 10) and a 0/1 label from their sum (no header). */
function smallCsv(rows: number, seed = 7): string {
  let s = seed;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) / 2 ** 24;
  };
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const x = Array.from({ length: 4 }, () => Math.round(next() * 1000) / 100);
    lines.push([...x, x[0]! + x[1]! + next() * 4 > 12 ? 1 : 0].join(","));
  }
  return `${lines.join("\n")}\n`;
}

async function withModel<T>(path: string, use: (model: Model) => T): Promise<T> {
  const model = await loadModel(path);
  try {
    return use(model);
  } finally {
    model.dispose();
  }
}

/** Parameters and optimizer state of a model file, with its step and epoch count. */
async function trained(path: string): Promise<{ params: Tensor[]; state: Tensor[]; step: number; epochs: number }> {
  return withModel(path, (m) => ({ params: m.network.tensors(), state: m.state?.tensors() ?? [], step: m.state?.step ?? -1, epochs: m.state?.epochs ?? -1 }));
}

/** Every float of `a` and `b` has the same bits. */
function assertSameBits(a: Tensor[], b: Tensor[], what: string): void {
  assert.deepEqual(a.map((t) => t.name), b.map((t) => t.name), `${what}: tensor names`);
  a.forEach((t, i) => {
    const x = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    const y = new Uint32Array(b[i]!.data.buffer, b[i]!.data.byteOffset, b[i]!.data.length);
    assert.equal(x.length, y.length, `${what} ${t.name}: length`);
    const differing = x.reduce((n, v, k) => n + (v === y[k] ? 0 : 1), 0);
    assert.equal(differing, 0, `${what} ${t.name}: ${differing} of ${x.length} values differ`);
  });
}

/** Runs train in-process; resolves with its io (stderr text) and the result. */
async function train(dir: string, flags: TrainFlags, io: CliIO & { err(): string } = captureIO(dir)) {
  const result = await runTrain(flags, io);
  return { io, result };
}

describe("train --checkpoint-every and --resume", () => {
  const dir = tempDir("cli-checkpoints");

  test("the checkpoint is written atomically after every N epochs, beside --save by default", TIMEOUT, async () => {
    const { io } = await train(dir, { ...DIGITS, epochs: 3, checkpointEvery: 2, save: "every.dpnn" });
    const checkpoint = join(dir, "every.checkpoint.dpnn");
    assert.equal(checkpointPath({ save: "every.dpnn" }, dir), checkpoint);
    assert.match(io.err(), new RegExp(`^checkpoint after epoch 2 written to ${checkpoint.replace(/[.\\]/g, "\\$&")}$`, "m"));
    assert.doesNotMatch(io.err(), /checkpoint after epoch [13]/);
    const saved = await trained(checkpoint);
    assert.equal(saved.epochs, 2, "the checkpoint holds the model after epoch 2");
    assert.ok(saved.state.length > 0, "with its optimizer state");
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith(".")), [], "no temp files left");
  });

  test("resuming the epoch-2 checkpoint to 4 epochs gives the bits of an uninterrupted 4-epoch run", TIMEOUT, async () => {
    await train(dir, { ...DIGITS, epochs: 3, checkpointEvery: 2, checkpoint: "digits-ck.dpnn", save: false });
    const whole = await train(dir, { ...DIGITS, epochs: 4, checkpointEvery: 2, checkpoint: "whole-ck.dpnn", save: "whole.dpnn" });
    const resumed = await train(dir, { resume: "digits-ck.dpnn", epochs: 4, quiet: true, curves: false, save: "resumed.dpnn" });
    assert.match(resumed.io.err(), /^resuming digits-ck\.dpnn: 2 of 4 epochs done; training epochs 3 to 4$/m);
    assert.deepEqual(resumed.result.reports.map((r) => r.epoch), [3, 4], "epochs numbered from those done");
    assert.match(resumed.io.err(), /^epoch 3\/4 /m);
    assert.equal(resumed.result.reports.at(-1)!.loss, whole.result.reports.at(-1)!.loss, "the last epoch's loss");
    const [a, b] = [await trained(join(dir, "whole.dpnn")), await trained(join(dir, "resumed.dpnn"))];
    assertSameBits(b.params, a.params, "parameters");
    assertSameBits(b.state, a.state, "optimizer state");
    assert.deepEqual([b.step, b.epochs], [a.step, a.epochs], "step and epochs");
  });

  test("a CSV run resumes with the file's data, columns, scaling, holdout and seed when only --resume is given", TIMEOUT, async () => {
    writeTemp(dir, "small.csv", smallCsv(240));
    const csv: TrainFlags = { data: "small.csv", normalize: "zscore", holdout: 0.25, seed: 3, hidden: [8], threads: 0, quiet: true, curves: false };
    await train(dir, { ...csv, epochs: 2, checkpointEvery: 1, checkpoint: "csv-ck.dpnn", save: false });
    const whole = await train(dir, { ...csv, epochs: 3, save: "csv-whole.dpnn" });
    const resumed = await train(dir, { resume: "csv-ck.dpnn", epochs: 3, save: "csv-resumed.dpnn", quiet: true, curves: false });
    assert.match(resumed.io.err(), /on small\.csv: 180 rows, 60 test rows/);
    assert.equal(resumed.result.reports.at(-1)!.validation!.loss, whole.result.reports.at(-1)!.validation!.loss);
    const [a, b] = [await trained(join(dir, "csv-whole.dpnn")), await trained(join(dir, "csv-resumed.dpnn"))];
    assertSameBits(b.params, a.params, "parameters");
  });

  test("--resume refuses: epochs already done, another optimizer, data of another shape, a file without state", TIMEOUT, async () => {
    await train(dir, { ...DIGITS, epochs: 2, save: "two.dpnn" });
    await assert.rejects(train(dir, { resume: "two.dpnn", epochs: 2, save: false, quiet: true }), /--resume two\.dpnn: the model has already trained 2 epochs of --epochs 2; give a larger --epochs/);
    await assert.rejects(train(dir, { resume: "two.dpnn", epochs: 3, optimizer: "adam", save: false, quiet: true }), /--resume two\.dpnn: the model was trained with sgd with momentum, but --optimizer asks for adam/);
    writeTemp(dir, "other.csv", smallCsv(50));
    await assert.rejects(
      train(dir, { resume: "two.dpnn", data: "other.csv", epochs: 3, save: false, quiet: true }),
      /--data other\.csv has 4 features and 1 output, but the model of --resume two\.dpnn \(trained on digits\) takes 64 inputs and gives 10 outputs/,
    );
    await assert.rejects(train(dir, { resume: "missing.dpnn", epochs: 3, save: false, quiet: true }), /^CliError: --resume missing\.dpnn: cannot read model file .*missing\.dpnn/);
    const untrained = await MultiLayerPerceptron.create({ inputs: 64, hidden: [4], outputs: 10 });
    await saveModel(untrained, join(dir, "untrained.dpnn"));
    untrained.dispose();
    await assert.rejects(train(dir, { resume: "untrained.dpnn", epochs: 3, save: false, quiet: true }), /--resume untrained\.dpnn: the model file holds no optimizer state/);
  });

  test("--resume of a file whose training data is gone asks for --data; --checkpoint-every 0 is refused", TIMEOUT, async () => {
    writeTemp(dir, "gone.csv", smallCsv(40));
    await train(dir, { data: "gone.csv", hidden: [4], epochs: 1, threads: 0, quiet: true, curves: false, save: "gone.dpnn" });
    rmSync(join(dir, "gone.csv"));
    await assert.rejects(train(dir, { resume: "gone.dpnn", epochs: 2, save: false, quiet: true }), /--resume gone\.dpnn: the model was trained on .*gone\.csv, which is not there any more; give its data with --data/);
    await assert.rejects(train(dir, { ...DIGITS, epochs: 1, checkpointEvery: 0, save: false }), /--checkpoint-every must be a positive number of epochs, got 0/);
  });
});

test("train --help shows checkpoint, resume and early-stopping examples with the default checkpoint's name", async () => {
  const io = captureIO(tempDir("cli-help"));
  assert.equal(await runCli(["train", "--help"], io), 0);
  const examples = io.out().slice(io.out().indexOf("Examples:"));
  const name = basename(checkpointPath(DEFAULT_SETTINGS, io.cwd));
  assert.match(examples, new RegExp(`--checkpoint-every 5 .*${name.replace(/\./g, "\\.")}`));
  assert.match(examples, new RegExp(`downpour train --resume ${name.replace(/\./g, "\\.")} --epochs 40 `));
  assert.match(examples, /--patience 5 --save-best/);
});

describe("train --save-best and --patience", () => {
  const dir = tempDir("cli-best");
  /** A large step on digits: the test loss goes up and down from epoch to epoch. */
  const BOUNCY: TrainFlags = { ...DIGITS, dropout: 0, learningRateDecay: 1, learningRate: 0.9, batchSize: 16, epochs: 8 };

  test("--save-best saves the epoch of the lowest test loss, with its optimizer state, and says which", TIMEOUT, async () => {
    const { io, result } = await train(dir, { ...BOUNCY, saveBest: true, save: "best.dpnn" });
    const losses = result.reports.map((r) => r.validation!.loss);
    const best = losses.indexOf(Math.min(...losses));
    assert.notEqual(best, losses.length - 1, `the last epoch is not the best here: ${losses}`);
    assert.match(io.err(), new RegExp(`^--save-best: keeping epoch ${best + 1}, the lowest test loss`, "m"));
    const testSet = (await digitsSets()).test;
    const saved = await withModel(join(dir, "best.dpnn"), (m) => ({ loss: m.evaluate(testSet).loss, epochs: m.state?.epochs }));
    assert.equal(saved.loss, losses[best], "the saved model has the best epoch's test loss");
    assert.equal(saved.epochs, best + 1);
  });

  test("--save-best with --no-save is warned about", TIMEOUT, async () => {
    const { io } = await train(dir, { ...DIGITS, epochs: 1, saveBest: true, save: false });
    assert.match(io.err(), /^downpour: warning: --save-best picks the model to save, but --no-save saves none; it is ignored$/m);
  });

  test("--patience stops once the test loss has not improved for that many epochs, and says so once", TIMEOUT, async () => {
    const { io, result } = await train(dir, { ...BOUNCY, epochs: 40, patience: 2, save: false });
    const reports = result.reports;
    assert.ok(reports.length < 40, `stopped early: ${reports.length} epochs`);
    assert.equal(reports.at(-1)!.stop, "early-stopped");
    const losses = reports.map((r) => r.validation!.loss);
    const best = losses.indexOf(Math.min(...losses));
    assert.equal(reports.length, best + 1 + 2, `two epochs without improvement after the best (${losses})`);
    const said = io.err().match(/^stopped early after epoch \d+: .*$/gm) ?? [];
    assert.deepEqual(said, [`stopped early after epoch ${reports.length}: no test-loss improvement in 2 epochs`]);
  });

  test("--save-best and --patience need a test set: refused before training, naming the flags", TIMEOUT, async () => {
    writeTemp(dir, "small.csv", smallCsv(60));
    const io = captureIO(dir);
    const code = await runCli(["train", "--data", "small.csv", "--holdout", "0", "--save-best", "--patience", "3", "--no-save", "--no-curves"], io);
    assert.equal(code, 1);
    assert.match(io.err(), /^downpour: --save-best and --patience judge epochs by the test loss, but this run has no test set/m);
    assert.doesNotMatch(io.err(), /^epoch 1/m);
  });
});

describe("train interrupted (the first Ctrl-C)", () => {
  const dir = tempDir("cli-interrupt");

  /** An io whose Interrupts fires the caught handler as soon as stderr shows the first epoch line. */
  function interruptingIO(): CliIO & { err(): string; caught(): number } {
    const base = captureIO(dir);
    let handler: (() => void) | undefined;
    let caught = 0;
    const interrupts: Interrupts = {
      catchNext(onInterrupt) {
        caught++;
        handler = onInterrupt;
        return () => {
          handler = undefined;
        };
      },
    };
    return {
      ...base,
      interrupts,
      stderr: (text) => {
        base.stderr(text);
        if (/^epoch 1\//m.test(text) && handler) {
          const fire = handler;
          handler = undefined;
          fire();
        }
      },
      caught: () => caught,
    };
  }

  test("stops at the next mini-batch, writes the checkpoint, says where, and exits 130", TIMEOUT, async () => {
    const io = interruptingIO();
    const code = await runCli(["train", "--data", "digits", "--hidden", "16", "--threads", "0", "--epochs", "50", "--quiet", "--save", "int.dpnn", "--no-curves"], io);
    assert.equal(code, 130, io.err());
    const checkpoint = join(dir, "int.checkpoint.dpnn");
    const shown = checkpoint.replace(/[.\\]/g, "\\$&");
    assert.match(io.err(), new RegExp(`^downpour: interrupted: checkpoint saved to ${shown}; resume with --resume ${shown} \\(\\d+ epochs? done`, "m"));
    const saved = await trained(checkpoint);
    assert.ok(saved.epochs >= 1 && saved.epochs < 50, `stopped early: ${saved.epochs} epochs`);
    assert.equal(existsSync(join(dir, "int.dpnn")), false, "the model itself is not saved");
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith(".")), [], "no temp files left");
  });

  test("runTrain rejects with InterruptedError naming the checkpoint; --resume it continues", TIMEOUT, async () => {
    const io = interruptingIO();
    const flags: TrainFlags = { ...DIGITS, epochs: 30, save: false, checkpoint: "ck2.dpnn" };
    const error = await runTrain(flags, io).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof InterruptedError, String(error));
    assert.equal(error.checkpoint, join(dir, "ck2.dpnn"));
    const done = (await trained(join(dir, "ck2.dpnn"))).epochs;
    const resumed = await train(dir, { resume: "ck2.dpnn", epochs: done + 1, save: false, quiet: true, curves: false });
    assert.deepEqual(resumed.result.reports.map((r) => r.epoch), [done + 1]);
  });
});
