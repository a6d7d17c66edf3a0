// `downpour sparse cluster | shard | eval` as a user runs them: a whole sparse job on this machine (a nats-server,
// 2 shard and 2 task processes) trains a sparse MLP whose held-out log-loss is far below the constant's, reports
// every process (examples/s, bytes per example, peak RSS), saves a model file that `downpour eval` scores as the
// shards did, and leaves the shards' snapshots; shards restarted from
// those snapshots (`sparse shard --restore`) give `sparse eval` the same held-out log-loss, so the snapshots hold
// the model; bad labels, a shard out of range and flags that contradict each other are refused by name.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { SparseClusterReport } from "../../src/cli/commands/sparse-cluster.js";
import { runCli } from "../../src/cli/program.js";
import { decodeRowSnapshot } from "../../src/cluster/sparse-snapshot.js";
import { startNatsServer } from "../support/nats.js";
import { captureIO, cliMain, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 240_000 };
const JOB = ["--features", "2^14", "--hidden", "16", "--shards", "2", "--learning-rate", "0.02", "--job", "clicks"];

async function downpour(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(cwd);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("downpour sparse", () => {
  const dir = tempDir("cli-sparse-cluster");

  before(async () => {
    const made = await downpour(dir, "data", "synth-ctr", "--rows", "30000", "--features", "2^14", "--test-rows", "5000", "--out", "train.svm", "--test-out", "held.svm", "--seed", "3");
    assert.equal(made.code, 0, made.err);
  });

  test("cluster trains far below the constant, reports every process, and its shards' snapshots restore the model", TIMEOUT, async () => {
    const run = await downpour(dir, "sparse", "cluster", ...JOB, "--data", "train.svm", "--test-data", "held.svm", "--tasks", "2", "--epochs", "2", "--snapshots", "snaps", "--save", "clicks.dpnn", "--report", "report.json");
    assert.equal(run.code, 0, run.err);
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as SparseClusterReport;
    assert.match(run.out, /held out: 5,000 examples, log-loss 0\.\d+ \(the teacher's best 0\.\d+, a constant's 0\.\d+\)/);
    // Measured: 0.46 against the constant's 0.50 (the teacher's best 0.42).
    assert.ok(report.heldOut!.loss < report.teacher!.constantLogLoss - 0.03, `held-out ${report.heldOut!.loss}, constant ${report.teacher!.constantLogLoss}`);
    assert.equal(report.tasks.reduce((n, t) => n + t.examples, 0), 2 * 30_000, "2 epochs of every row, split over the tasks");
    for (const t of report.tasks) assert.ok(t.examplesPerSecond > 0 && t.bytesPerExample.pulled > 0 && t.peakRssBytes > 10_000_000);
    for (const s of report.shards) {
      assert.ok(s.rows.rows > 0 && s.peakRssBytes > 10_000_000);
      const snapshot = decodeRowSnapshot(readFileSync(s.snapshot!), { shard: s.shard, shards: 2, features: 2 ** 14, units: 16 }, s.snapshot!);
      assert.equal(snapshot.keys.length, s.rows.rows, "the snapshot holds exactly the rows that exist");
    }

    // The saved model file scores the held-out rows as the shards did (the whole network against the compact copies).
    const evalFile = await downpour(dir, "eval", "--model", "clicks.dpnn", "--data", "held.svm", "--json");
    assert.equal(evalFile.code, 0, evalFile.err);
    const fromFile = JSON.parse(evalFile.out) as { loss: number };
    assert.ok(Math.abs(fromFile.loss - report.heldOut!.loss) < 1e-5, `model file ${fromFile.loss} vs shards ${report.heldOut!.loss}`);

    // The shards again, from the snapshots, as processes; eval in this process reads the same model.
    const server = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
    const shards = [0, 1].map((shard) =>
      spawn(process.execPath, [cliMain(), "sparse", "shard", ...JOB, "--shard", String(shard), "--nats", server.url, "--snapshots", "snaps", "--restore", "--until-stdin-closes"], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] }),
    );
    try {
      const evaluated = await downpour(dir, "sparse", "eval", ...JOB, "--nats", server.url, "--data", "held.svm", "--json");
      assert.equal(evaluated.code, 0, evaluated.err);
      const again = JSON.parse(evaluated.out) as { loss: number; examples: number };
      assert.equal(again.examples, 5000);
      assert.ok(Math.abs(again.loss - report.heldOut!.loss) < 1e-6, `restored ${again.loss} vs ${report.heldOut!.loss}`);
    } finally {
      for (const child of shards) child.stdin.end();
      await Promise.all(shards.map((child) => new Promise((done) => child.once("close", done))));
      await server.stop();
    }
  });

  test("bad input is refused by name: labels other than 0/1, a shard out of range, --hidden with logistic, --restore without snapshots", TIMEOUT, async () => {
    writeTemp(dir, "bad.svm", "1 3:1 7:1\n-1 2:1\n");
    const bad = await downpour(dir, "sparse", "cluster", ...JOB, "--data", "bad.svm", "--tasks", "1");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /bad\.svm: line 2: label -1, expected 0 or 1/);
    const shard = await downpour(dir, "sparse", "shard", ...JOB, "--shard", "2", "--nats", "nats://127.0.0.1:1");
    assert.equal(shard.code, 1);
    assert.match(shard.err, /--shard 2 is not a shard of --shards 2/);
    const logistic = await downpour(dir, "sparse", "task", "--features", "2^14", "--model", "logistic", "--hidden", "8", "--data", "train.svm", "--nats", "nats://127.0.0.1:1");
    assert.match(logistic.err, /--hidden is for --model mlp/);
    const restore = await downpour(dir, "sparse", "shard", ...JOB, "--shard", "0", "--restore", "--nats", "nats://127.0.0.1:1");
    assert.match(restore.err, /--restore needs --snapshots/);
    const missing = await downpour(dir, "sparse", "task", "--data", "train.svm");
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--features/);
  });
});
