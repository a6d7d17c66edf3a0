// `downpour cluster` and `downpour peer` end to end with the built binary and real nats-server processes: 3 peers
// train logistic regression on Pima and an MLP on an MNIST subset to local training's thresholds; two jobs share a
// server; user/password, token and TLS servers; bad input fails fast, naming the flag, the server or the peer.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { loadModel } from "../../src/api/persist.js";
import { loadMnist } from "../../src/data/mnist.js";
import { freePort, selfSignedCertificate, startNatsServer } from "../support/nats.js";
import { sharedData } from "../support/paths.js";
import { cliMain, pimaCsv, tempDir } from "./helpers.js";

const TIMEOUT = { timeout: 120_000 };
const dir = tempDir("cli-cluster");
const env = { ...process.env, DOWNPOUR_CACHE: dir, DOWNPOUR_DEBUG: "" };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the binary (killed after `limitMs`); resolves with its exit, output and wall time. */
function downpour(args: string[], limitMs = 90_000): Promise<Run> {
  return startDownpour(args, limitMs).done;
}

/** Starts the binary (killed after `limitMs`): its process, and its exit, output and wall time once it ends. */
function startDownpour(args: string[], limitMs = 90_000): { pid: number; stderr: () => string; done: Promise<Run> } {
  const started = Date.now();
  const child = spawn(process.execPath, [cliMain(), ...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const done = new Promise<Run>((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    }),
  );
  return { pid: child.pid!, stderr: () => stderr, done };
}

/** The pid of the child of `parent` whose command line matches `pattern` (from ps), or undefined. */
function childMatching(parent: number, pattern: RegExp): number | undefined {
  const table = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" });
  for (const line of table.split("\n")) {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (match && Number(match[2]) === parent && pattern.test(match[3]!)) return Number(match[1]);
  }
  return undefined;
}

/** The final test accuracy of a --json run's reports (train prints reports; cluster and peer print an object of them). */
function finalAccuracy(run: Run): number {
  assert.equal(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout) as { reports: { validation?: { accuracy?: number } }[] };
  return json.reports.at(-1)!.validation!.accuracy!;
}

const pima = join(dir, "pima.csv");
before(() => writeFileSync(pima, pimaCsv()));

/** mnist-train.csv (3000 rows) and mnist-test.csv (1000 rows) in dir, pixels 0-255 then the label (written once). */
let mnistWritten: Promise<void> | undefined;
function writeMnistSubset(): Promise<void> {
  mnistWritten ??= (async () => {
    const { train, test: testSet } = await loadMnist(sharedData("mnist"));
    const csv = (ds: typeof train, rows: number) => {
      const lines: string[] = [];
      for (let r = 0; r < rows; r++) {
        const pixels = Array.from(ds.x.subarray(r * ds.features, (r + 1) * ds.features), (v) => Math.round(v * 255));
        lines.push(`${pixels.join(",")},${ds.labels ? ds.labels[r] : ds.y.subarray(r * 10, r * 10 + 10).indexOf(1)}`);
      }
      return `${lines.join("\n")}\n`;
    };
    writeFileSync(join(dir, "mnist-train.csv"), csv(train, 3000));
    writeFileSync(join(dir, "mnist-test.csv"), csv(testSet, 1000));
  })();
  return mnistWritten;
}

const PIMA = ["--model", "logistic", "--epochs", "30", "--batch-size", "63", "--seed", "7", "--json", "--quiet"];

describe("downpour cluster", () => {
  test("3 peers train logistic regression on Pima to local training's threshold; peer 0 writes the model; a row per peer", TIMEOUT, async () => {
    const local = await downpour(["train", "--data", pima, ...PIMA, "--save", "local.dpnn", "--no-curves"]);
    const run = await downpour(["cluster", "--peers", "3", "--data", pima, ...PIMA, "--save", "cluster.dpnn", "--no-curves"]);
    const accuracy = finalAccuracy(run);
    assert.ok(accuracy >= 0.7, `cluster test accuracy ${accuracy}`);
    assert.ok(accuracy >= finalAccuracy(local) - 0.05, `cluster ${accuracy} vs local ${finalAccuracy(local)}`);
    const result = JSON.parse(run.stdout) as { rows: { index: number; supersteps: number; bytesSent: number }[]; modelFile: string };
    assert.deepEqual(result.rows.map((r) => r.index), [0, 1, 2]);
    assert.equal(new Set(result.rows.map((r) => r.supersteps)).size, 1, "every peer took the same supersteps");
    assert.ok(result.rows.every((r) => r.bytesSent > 0));
    assert.equal(result.modelFile, join(dir, "cluster.dpnn"));
    const evaluated = await downpour(["eval", "--model", "cluster.dpnn", "--data", pima, "--json"]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
  });

  test("3 peers train a 784-64-10 MLP on a 3000-row MNIST subset to >= 90% test accuracy, as local training does", TIMEOUT, async () => {
    await writeMnistSubset();
    const recipe = ["--data", "mnist-train.csv", "--test-data", "mnist-test.csv", "--classes", "10", "--hidden", "64", "--epochs", "8", "--batch-size", "33", "--seed", "3", "--json", "--quiet", "--no-save", "--no-curves"];
    const local = finalAccuracy(await downpour(["train", ...recipe]));
    const cluster = finalAccuracy(await downpour(["cluster", "--peers", "3", ...recipe]));
    assert.ok(local >= 0.9, `local ${local}`);
    assert.ok(cluster >= 0.9, `cluster ${cluster}`);
  });

  test("without shuffling, 2 and 3 peers (master and allreduce) end with one local run's weights (within 1e-5)", TIMEOUT, async () => {
    writeFileSync(join(dir, "unshuffled.json"), JSON.stringify({ train: { shuffle: false } }));
    const recipe = ["--config", "unshuffled.json", "--data", pima, "--model", "mlp", "--hidden", "6", "--epochs", "4", "--batch-size", "60", "--seed", "5", "--quiet", "--no-curves"];
    const weights = async (file: string) => {
      const model = await loadModel(join(dir, file));
      try {
        return model.network.params.block.toArray();
      } finally {
        model.dispose();
      }
    };
    const local = await downpour(["train", ...recipe, "--save", "eq-local.dpnn"]);
    assert.equal(local.code, 0, local.stderr);
    const expected = await weights("eq-local.dpnn");
    for (const [peers, combine] of [["2", "master"], ["3", "allreduce"]] as const) {
      const run = await downpour(["cluster", "--peers", peers, "--combine", combine, ...recipe, "--save", `eq-${peers}.dpnn`]);
      assert.equal(run.code, 0, run.stderr);
      const actual = await weights(`eq-${peers}.dpnn`);
      assert.equal(actual.length, expected.length);
      const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0);
      assert.ok(worst <= 1e-5, `${peers} peers, ${combine}: largest weight difference ${worst}`);
    }
  });

  test("sync jobs checkpoint and resume: 4 epochs with --checkpoint-every 2, resumed to 8, end with the weights of 8 epochs in one run", TIMEOUT, async () => {
    const recipe = ["--peers", "2", "--data", pima, "--model", "logistic", "--batch-size", "30", "--learning-rate", "0.3", "--seed", "5", "--json", "--quiet", "--no-curves"];
    const straight = await downpour(["cluster", ...recipe, "--epochs", "8", "--save", "straight.dpnn"]);
    assert.equal(straight.code, 0, straight.stderr);
    const first = await downpour(["cluster", ...recipe, "--epochs", "4", "--checkpoint-every", "2", "--checkpoint", "bsp-ck.dpnn", "--save", "first.dpnn"]);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await downpour(["cluster", ...recipe.filter((a) => a !== pima && a !== "--data"), "--resume", "bsp-ck.dpnn", "--epochs", "8", "--save", "resumed.dpnn"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const epochs = (JSON.parse(resumed.stdout) as { reports: { epoch: number }[] }).reports.map((r) => r.epoch);
    assert.deepEqual(epochs, [5, 6, 7, 8], "the resumed job numbers its epochs on from the checkpoint's");
    const [a, b, c] = await Promise.all(["straight.dpnn", "resumed.dpnn", "bsp-ck.dpnn"].map((f) => loadModel(join(dir, f))));
    assert.deepEqual(b!.network.params.block.toArray(), a!.network.params.block.toArray(), "resumed = uninterrupted, bit for bit");
    assert.equal(c!.state?.epochs, 4, "the checkpoint holds 4 epochs' optimizer state");
    for (const m of [a, b, c]) m!.dispose();
    const refused = await downpour(["cluster", "--peers", "2", "--mode", "async", "--shards", "1", "--data", pima, "--resume", "bsp-ck.dpnn"], 20_000);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--resume: not taken by downpour cluster --mode async/);
  });

  test("--sync-every 4 (model averaging) trains Pima to the threshold in about a quarter of the supersteps", TIMEOUT, async () => {
    const runs = await Promise.all(["1", "4"].map((k) => downpour(["cluster", "--peers", "2", "--sync-every", k, "--data", pima, ...PIMA, "--batch-size", "32", "--no-save", "--no-curves"])));
    const [every, averaged] = runs.map((run) => ({ accuracy: finalAccuracy(run), supersteps: (JSON.parse(run.stdout) as { rows: { supersteps: number }[] }).rows[0]!.supersteps }));
    assert.ok(averaged!.accuracy >= 0.7, `--sync-every 4: test accuracy ${averaged!.accuracy}`);
    assert.ok(averaged!.supersteps < every!.supersteps / 2.5, `supersteps ${averaged!.supersteps} vs ${every!.supersteps}`);
  });

  test("data published once into the NATS object store (data put) is what the peers train on: --data nats:<name>", TIMEOUT, async () => {
    const server = await startNatsServer();
    try {
      const put = await downpour(["data", "put", pima, "--nats", server.url, "--json"]);
      assert.equal(put.code, 0, put.stderr);
      const ref = (JSON.parse(put.stdout) as { ref: string }).ref;
      assert.match(ref, /^nats:[0-9a-f]{16}-pima\.csv$/);
      const run = await downpour(["cluster", "--peers", "2", "--nats", server.url, "--data", ref, ...PIMA, "--batch-size", "32", "--no-save", "--no-curves"]);
      assert.ok(finalAccuracy(run) >= 0.7);
      const missing = await downpour(["cluster", "--peers", "2", "--nats", server.url, "--data", "nats:0123456789abcdef-none.csv", "--no-save"], 20_000);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /0123456789abcdef-none\.csv/);
    } finally {
      await server.stop();
    }
  });

  test("two jobs run at once on one server without mixing", TIMEOUT, async () => {
    const server = await startNatsServer({ jetstream: false });
    try {
      const common = ["--peers", "2", "--nats", server.url, "--data", pima, "--epochs", "5", "--batch-size", "32", "--json", "--no-save", "--no-curves"];
      const [a, b] = await Promise.all([
        downpour(["cluster", ...common, "--job", "job-a", "--model", "logistic"]),
        downpour(["cluster", ...common, "--job", "job-b", "--model", "mlp", "--hidden", "8"]),
      ]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      assert.equal((JSON.parse(a.stdout) as { job: string }).job, "job-a");
      assert.equal((JSON.parse(b.stdout) as { job: string }).job, "job-b");
    } finally {
      await server.stop();
    }
  });
});

describe("downpour cluster --mode async (Downpour SGD against parameter-server shard processes)", () => {
  test("2 peers against 2 shards train an MLP on the MNIST subset to the threshold of local async training", TIMEOUT, async () => {
    await writeMnistSubset();
    const recipe = ["--data", "mnist-train.csv", "--test-data", "mnist-test.csv", "--classes", "10", "--hidden", "64", "--epochs", "8", "--portion", "16",
      "--optimizer", "adagrad", "--learning-rate", "0.05", "--seed", "3", "--json", "--quiet", "--no-save", "--no-curves"];
    const local = finalAccuracy(await downpour(["train", "--mode", "async", "--threads", "1", ...recipe]));
    const run = await downpour(["cluster", "--peers", "2", "--mode", "async", "--shards", "2", "--metrics", "async-metrics.json", ...recipe]);
    const accuracy = finalAccuracy(run);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "async-metrics.json"), "utf8")), JSON.parse(run.stdout), "--metrics holds what --json prints");
    assert.ok(local >= 0.85, `local async ${local}`);
    assert.ok(accuracy >= 0.85, `Downpour ${accuracy} (local async ${local})`);
    const result = JSON.parse(run.stdout) as {
      rows: { pushes: number; idleSeconds: number[] }[];
      shards: { shard: number; stats: { updates: number; refused: number; updatesPerSecond: number } }[];
    };
    const pushes = result.rows.reduce((n, r) => n + r.pushes, 0);
    assert.deepEqual(result.shards.map((s) => s.shard), [0, 1]);
    for (const shard of result.shards) {
      assert.equal(shard.stats.updates, pushes, "every push applied once on each shard");
      assert.equal(shard.stats.refused, 0);
      assert.ok(shard.stats.updatesPerSecond > 0, "updates/s per shard");
    }
    for (const row of result.rows) {
      assert.equal(row.idleSeconds.length, 1, "one worker thread per peer");
      assert.ok(row.idleSeconds.every((s) => Number.isFinite(s) && s >= 0), `idle seconds ${row.idleSeconds}`);
    }
  });

  test("ssp, s = 4: 2 peers against 1 shard train the MNIST subset to the threshold of local async training; no read exceeds the bound", TIMEOUT, async () => {
    await writeMnistSubset();
    const run = await downpour(["cluster", "--peers", "2", "--mode", "async", "--shards", "1", "--consistency", "ssp", "--staleness", "4",
      "--data", "mnist-train.csv", "--test-data", "mnist-test.csv", "--classes", "10", "--hidden", "64", "--epochs", "8", "--portion", "16",
      "--optimizer", "adagrad", "--learning-rate", "0.05", "--seed", "3", "--json", "--quiet", "--no-save", "--no-curves"]);
    const accuracy = finalAccuracy(run);
    assert.ok(accuracy >= 0.85, `ssp ${accuracy}`);
    const rows = (JSON.parse(run.stdout) as { rows: { bound: number; clockStaleness: { samples: number; max: number } }[] }).rows;
    for (const row of rows) {
      assert.equal(row.bound, 4);
      assert.ok(row.clockStaleness.samples > 0, "reads were sampled");
      assert.ok(row.clockStaleness.max <= 4, `a read at staleness ${row.clockStaleness.max}`);
    }
  });

  test("--consistency ssp --staleness 3: no read exceeds the bound (from the clocks); Pima reaches the threshold", TIMEOUT, async () => {
    const run = await downpour(["cluster", "--peers", "2", "--mode", "async", "--shards", "2", "--consistency", "ssp", "--staleness", "3", "--threads", "2", "--oversubscribe",
      "--data", pima, "--model", "logistic", "--epochs", "40", "--batch-size", "30", "--portion", "10", "--optimizer", "adagrad", "--learning-rate", "0.5", "--json", "--no-save", "--no-curves"]);
    assert.ok(finalAccuracy(run) >= 0.7);
    const rows = (JSON.parse(run.stdout) as { rows: { bound: number; clockStaleness: { samples: number; max: number } }[] }).rows;
    for (const row of rows) {
      assert.equal(row.bound, 3);
      assert.ok(row.clockStaleness.samples > 0, "reads were sampled");
      assert.ok(row.clockStaleness.max <= 3, `a read at staleness ${row.clockStaleness.max}`);
    }
  });

  test("--groups 2: 4 peers in 2 task groups (allreduce inside, async to the shards) train Pima to the threshold; one pushing replica per group", TIMEOUT, async () => {
    const recipe = ["--data", pima, "--model", "logistic", "--epochs", "40", "--batch-size", "30", "--portion", "10", "--optimizer", "adagrad", "--learning-rate", "0.5",
      "--json", "--quiet", "--no-save", "--no-curves"];
    const local = finalAccuracy(await downpour(["train", "--threads", "1", ...recipe]));
    const run = await downpour(["cluster", "--peers", "4", "--groups", "2", "--mode", "async", "--shards", "2", ...recipe]);
    assert.ok(local >= 0.65, `local ${local}`);
    assert.ok(finalAccuracy(run) >= local - 0.03, `groups ${finalAccuracy(run)}, local training ${local}`);
    const result = JSON.parse(run.stdout) as { rows: { index: number; group: number; groupSize: number; pushes: number }[]; shards: { stats: { updates: number } }[] };
    assert.deepEqual(result.rows.map((r) => r.group), [0, 1, 0, 1], "peer i is in group i mod 2");
    assert.ok(result.rows.every((r) => r.groupSize === 2));
    const pushes = result.rows.reduce((n, r) => n + r.pushes, 0);
    assert.ok(result.rows.filter((r) => r.pushes > 0).map((r) => r.index).every((i) => i < 2), "only the groups' leaders (peers 0 and 1) push");
    for (const shard of result.shards) assert.equal(shard.stats.updates, pushes, "every group push applied once on each shard");
    for (const [args, expected] of [
      [["--groups", "3"], /--groups must be an integer in \[1, 4\] dividing --peers 4/],
      [["--groups", "2", "--consistency", "ssp"], /--groups does not go with --consistency ssp/],
      [["--groups", "2", "--batch-size", "31"], /--batch-size 31 is a group's mini-batch and must be a multiple of its 2 peers/],
    ] as [string[], RegExp][]) {
      const bad = await downpour(["cluster", "--peers", "4", "--mode", "async", "--shards", "1", "--data", pima, ...args], 20_000);
      assert.equal(bad.code, 1, `${args.join(" ")}: ${bad.stderr}`);
      assert.match(bad.stderr, expected, args.join(" "));
    }
  });

  test("--portions 60: 2 peers take units from peer 0's queue (backups at epoch ends) and train Pima to the threshold; no push applied twice", TIMEOUT, async () => {
    const recipe = ["--data", pima, "--model", "logistic", "--epochs", "40", "--batch-size", "30", "--portion", "10", "--optimizer", "adagrad", "--learning-rate", "0.5",
      "--threads", "1", "--json", "--quiet", "--no-save", "--no-curves"];
    const local = finalAccuracy(await downpour(["train", ...recipe]));
    const run = await downpour(["cluster", "--peers", "2", "--portions", "60", "--mode", "async", "--shards", "1", ...recipe]);
    assert.ok(finalAccuracy(run) >= local - 0.03, `portions ${finalAccuracy(run)}, local training ${local}`);
    const result = JSON.parse(run.stdout) as {
      reports: { epoch: number; samples: number }[];
      rows: { pushes: number; units: { trained: number }; queue?: { leased: number; duplicates: number; backupsIssued: number } }[];
      shards: { stats: { updates: number; deduped: number } }[];
    };
    assert.deepEqual(result.reports.map((r) => r.epoch), Array.from({ length: 40 }, (_, i) => i + 1));
    const queue = result.rows[0]!.queue!;
    assert.equal(result.rows.reduce((n, r) => n + r.units.trained, 0), queue.leased, "every lease was trained");
    assert.equal(queue.duplicates, queue.backupsIssued, "each backup's second result was dropped");
    const pushes = result.rows.reduce((n, r) => n + r.pushes, 0);
    const shard = result.shards[0]!.stats;
    assert.equal(shard.updates + shard.deduped, pushes, "every push applied or dropped as a duplicate");
    for (const [args, expected] of [
      [["--threads", "2"], /--portions does not go with --threads 2/],
      [["--consistency", "ssp"], /--portions does not go with --consistency ssp/],
      [["--portions", "0"], /--portions must be a positive integer/],
    ] as [string[], RegExp][]) {
      const bad = await downpour(["cluster", "--peers", "2", "--portions", "60", "--mode", "async", "--shards", "1", "--data", pima, ...args], 20_000);
      assert.equal(bad.code, 1, `${args.join(" ")}: ${bad.stderr}`);
      assert.match(bad.stderr, expected, args.join(" "));
    }
  });

  test("--durability log: shard 0 SIGKILLed mid-run is started again from its snapshot and log; the job ends with every push applied exactly once", TIMEOUT, async (t) => {
    const snapshots = join(dir, "snapshots-log");
    const run = startDownpour(["cluster", "--peers", "2", "--mode", "async", "--shards", "2", "--durability", "log", "--snapshots", snapshots, "--snapshot-every", "50",
      "--data", pima, "--model", "logistic", "--epochs", "150", "--batch-size", "30", "--portion", "10", "--optimizer", "adagrad", "--learning-rate", "0.5", "--threads", "1",
      "--json", "--no-save", "--no-curves"], 110_000);
    let shard: number | undefined;
    for (let waited = 0; waited < 60_000 && !/epoch\s+3\b|\b3\/150\b/.test(run.stderr()); waited += 50) {
      shard ??= childMatching(run.pid, / ps --config .* --shard 0 /);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    shard ??= childMatching(run.pid, / ps --config .* --shard 0 /);
    assert.ok(shard !== undefined, "shard 0's process was found");
    process.kill(shard, "SIGKILL");
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /shard 0 ended \(SIGKILL\); starting it again from its latest snapshot/);
    const result = JSON.parse(done.stdout) as { rows: { pushes: number }[]; shards: { shard: number; stats: { updates: number }; restored?: { from: string; version: number } }[] };
    const pushes = result.rows.reduce((n, r) => n + r.pushes, 0);
    for (const s of result.shards) assert.equal(s.stats.updates, pushes, `shard ${s.shard}: every acknowledged push applied once, none lost`);
    assert.ok(result.shards[0]!.restored, "shard 0 reports what it restored");
    assert.equal((result.shards[0] as { lost?: number }).lost, 0, "durability log: no acknowledged update lost");
    assert.ok(finalAccuracy(done) >= 0.65, `accuracy ${finalAccuracy(done)}`);
    t.diagnostic(`shard kill: accuracy ${finalAccuracy(done)}; restored ${JSON.stringify(result.shards[0]!.restored)}`);
  });

  test("cluster --restore: an async job goes on from its shards' snapshots in a directory (version and parameters carried over)", TIMEOUT, async () => {
    const snapshots = join(dir, "snapshots-restore");
    const recipe = ["--peers", "2", "--job", "restored-job", "--mode", "async", "--shards", "2", "--snapshots", snapshots, "--data", pima, "--model", "logistic", "--epochs", "5",
      "--batch-size", "30", "--portion", "10", "--optimizer", "adagrad", "--learning-rate", "0.5", "--threads", "1", "--json", "--no-save", "--no-curves"];
    const first = await downpour(["cluster", ...recipe]);
    assert.equal(first.code, 0, first.stderr);
    const again = await downpour(["cluster", ...recipe, "--restore"]);
    assert.equal(again.code, 0, again.stderr);
    type Shards = { shards: { shard: number; stats: { updates: number }; restored?: { version: number; from: string } }[] };
    const [before, after] = [first, again].map((r) => (JSON.parse(r.stdout) as Shards).shards);
    for (const shard of after!) {
      const was = before!.find((s) => s.shard === shard.shard)!.stats.updates;
      assert.equal(shard.restored?.version, was, `shard ${shard.shard} restored the version it ended with`);
      assert.ok(shard.stats.updates > was, `shard ${shard.shard} went on from there`);
    }
    for (const [args, expected] of [
      [["--job", "j"], /--restore with the embedded nats-server finds no snapshots/],
      [[], /--restore needs --job <id>/],
    ] as [string[], RegExp][]) {
      const refused = await downpour(["cluster", "--peers", "2", "--mode", "async", "--shards", "1", "--data", pima, "--restore", ...args], 20_000);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, expected);
    }
  });

  test("bad async settings: --mode async without --shards, --shards with --mode sync, a shard index out of range", TIMEOUT, async () => {
    const cases: [string[], RegExp][] = [
      [["cluster", "--peers", "2", "--mode", "async", "--data", pima], /--mode async needs --shards <n>/],
      [["cluster", "--peers", "2", "--mode", "sync", "--shards", "2", "--data", pima], /--shards is for --mode async/],
      [["ps", "--job", "j", "--peers", "2", "--shard", "3", "--of", "2", "--data", pima], /--shard must be an integer in \[0, 1\] \(--of 2\), got 3/],
      [["cluster", "--peers", "2", "--mode", "async", "--shards", "1", "--staleness", "2", "--data", pima], /--staleness goes with --consistency ssp/],
      [["cluster", "--peers", "2", "--isolate", "--nats", "nats://127.0.0.1:4999", "--data", pima], /--isolate is for the embedded nats-server/],
      [["cluster", "--peers", "2", "--durability", "log", "--data", pima], /--durability is for --mode async/],
      [["cluster", "--peers", "2", "--mode", "async", "--shards", "1", "--durability", "log", "--snapshots", "none", "--data", pima], /--durability log replays the log after a snapshot/],
    ];
    for (const [args, message] of cases) {
      const run = await downpour(args, 20_000);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(" "));
    }
  });
});

describe("bad input fails fast, naming what is wrong", () => {
  test("--peers 0, a job id with a dot, a batch that is no multiple of the peers, a missing --job", TIMEOUT, async () => {
    const cases: [string[], RegExp][] = [
      [["peer", "--job", "j", "--peers", "0"], /^downpour: --peers must be a positive integer \(the number of peers\), got 0$/m],
      [["peer", "--job", "a.b", "--peers", "2"], /^downpour: --job: job id "a\.b" is not allowed: /m],
      [["cluster", "--peers", "3", "--data", pima, "--batch-size", "64"], /--batch-size 64 is the global mini-batch and must be a multiple of --peers 3.*try 63 or 66/],
      [["peer", "--peers", "2"], /downpour peer needs --job <id>/],
      [["peer", "--job", "j", "--peers", "2", "--mode", "async"], /--mode async needs --shards <n>/],
      [["peer", "--job", "j", "--peers", "2", "--mode", "async", "--shards", "1", "--resume", "m.dpnn"], /--resume: not taken by downpour peer --mode async/],
    ];
    for (const [args, message] of cases) {
      const run = await downpour(args, 20_000);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(" "));
    }
  });

  test("no server listening: an error naming the server within a few seconds", TIMEOUT, async () => {
    const port = await freePort();
    const run = await downpour(["peer", "--nats", `nats://127.0.0.1:${port}`, "--job", "j", "--peers", "2", "--data", pima], 20_000);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
  });

  test("a peer started with other options than the job's is refused by name; both peers exit non-zero", TIMEOUT, async () => {
    const server = await startNatsServer({ jetstream: false });
    try {
      const peer = (name: string, epochs: string) =>
        downpour(["peer", "--nats", server.url, "--job", "mixed", "--peers", "2", "--name", name, "--data", pima, "--model", "logistic", "--epochs", epochs, "--no-save", "--no-curves"], 30_000);
      const [a, b] = await Promise.all([peer("alpha", "3"), peer("beta", "4")]);
      assert.equal(a.code, 1, a.stderr);
      assert.equal(b.code, 1, b.stderr);
      assert.match(a.stderr, /"beta"/);
      assert.match(b.stderr, /"alpha"/);
      assert.match(`${a.stderr}${b.stderr}`, /spec/);
    } finally {
      await server.stop();
    }
  });

  test("a config file's cluster setting is refused by train", TIMEOUT, async () => {
    writeFileSync(join(dir, "cluster.json"), JSON.stringify({ peers: 2 }));
    const run = await downpour(["train", "--config", "cluster.json", "--data", pima], 20_000);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /config file cluster\.json, "peers": a setting of downpour peer and downpour cluster/);
  });
});

describe("servers that ask for credentials", () => {
  const tiny = ["--peers", "2", "--data", pima, "--model", "logistic", "--epochs", "2", "--batch-size", "32", "--json", "--no-save", "--no-curves"];

  test("user and password: the right ones train, wrong ones are refused with an authorization error", TIMEOUT, async () => {
    const server = await startNatsServer({ jetstream: false, auth: { user: "ann", password: "s3cret" } });
    try {
      const ok = await downpour(["cluster", "--nats", server.url, "--user", "ann", "--password", "s3cret", ...tiny]);
      assert.equal(ok.code, 0, ok.stderr);
      const wrong = await downpour(["peer", "--nats", server.url, "--user", "ann", "--password", "nope", "--job", "j", ...tiny], 20_000);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /authori[sz]ation|credentials/i);
    } finally {
      await server.stop();
    }
  });

  test("a token: the right one trains, a wrong one is refused", TIMEOUT, async () => {
    const server = await startNatsServer({ jetstream: false, auth: { token: "t0ken" } });
    try {
      const ok = await downpour(["cluster", "--nats", server.url, "--token", "t0ken", ...tiny]);
      assert.equal(ok.code, 0, ok.stderr);
      const wrong = await downpour(["peer", "--nats", server.url, "--token", "other", "--job", "j", ...tiny], 20_000);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /authori[sz]ation|credentials/i);
    } finally {
      await server.stop();
    }
  });

  test("TLS with a test certificate: reached with --tls-ca", TIMEOUT, async () => {
    const cert = await selfSignedCertificate(dir, "server");
    const server = await startNatsServer({ jetstream: false, tls: { cert: cert.cert, key: cert.key } });
    try {
      const ok = await downpour(["cluster", "--nats", server.url, "--tls-ca", cert.cert, ...tiny]);
      assert.equal(ok.code, 0, ok.stderr);
      const untrusted = await downpour(["peer", "--nats", server.url, "--job", "j", ...tiny], 20_000);
      assert.equal(untrusted.code, 1, "without --tls-ca the self-signed certificate is not trusted");
      assert.match(untrusted.stderr, /tls|certificate/i);
    } finally {
      await server.stop();
    }
  });
});
