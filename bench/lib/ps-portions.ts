// bench:ps's "one worker slowed 3x" rows (issue 9): MNIST 784-128-10 on a training subset, 1 shard process
// (ps-child.ts's downpour-shard) and 2 task processes of trainDownpourPortions (this file as the child script), task 1
// slowed 3x (portions.slowdown); the job's epoch time with portions + backup tasks against fixed equal splits (the
// same units, queue and per-unit fits, task t training units u % 2 == t). Also where a unit's time goes: the fit of a
// unit against the shard, the same rows trained locally, and a fit's set-up alone. Exported for bench/ps.ts:
// runPortionsBench(url, options) -> rows { case, ours, peer, ratio, unit: "s", target, ... }.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { trainDownpourPortions } from "../../src/cluster/downpour-portions.js";
import type { PortionCounters } from "../../src/cluster/portion-queue.js";
import { take } from "../../src/data/dataset.js";
import { loadMnist } from "../../src/data/mnist.js";
import { Kernels, MultiLayerPerceptron } from "../../src/index.js";
import { type JobRecipe, type ShardReply, startPsChild } from "./ps-child.js";
import { engineName, machineInfo, round } from "./report.js";

/** Options of runPortionsBench. Defaults are in PORTIONS_BENCH_DEFAULTS. */
export interface PortionsBenchOptions {
  /** The MNIST directory (train-images-idx3-ubyte, ...). */
  mnistDir: string;
  /** Training rows (a subset of the 60 000; default 20 000). */
  trainRows?: number;
  /** Epochs of each run (default 3). */
  epochs?: number;
  /** Rows per unit (default 1024: 8 mini-batches of 128). */
  unitRows?: number;
  /** How much slower task 1 is (default 3). */
  slowdown?: number;
}

export const PORTIONS_BENCH_DEFAULTS = Object.freeze({ trainRows: 20_000, epochs: 3, unitRows: 1024, slowdown: 3 });

/** A row as bench/ps.ts writes them (ratio = ours / peer; lower is better). */
export interface PortionsBenchRow {
  case: string;
  unit: string;
  ours: number | null;
  peer: number | null;
  peer_name: string | null;
  peer_unit: string | null;
  ratio: number | null;
  target: number | null;
  engine: string;
  cpu: string;
  [extra: string]: unknown;
}

/** A portions task process. */
interface TaskRequest {
  role: "portions-task";
  url: string;
  job: string;
  index: number;
  recipe: JobRecipe;
  unitRows: number;
  fixed: boolean;
  slowdown: number;
}

/** What a task process reports. */
interface TaskReply {
  index: number;
  /** Per epoch: the job's seconds (first lease to last completion) and this task's units. */
  epochSeconds: number[];
  unitsTrained: number;
  unitsFirst: number;
  backups: number;
  queue: PortionCounters;
  msPerUnit: number;
  pushes: number;
  dedupedPushes: number;
  /** The same unit's rows trained locally on this thread (no shard), and a fit of one row: its set-up. */
  localUnitMs: number;
  setupMs: number;
  totalSeconds: number;
}

/** bench:ps's async recipe (Adagrad 0.03, batch and portion 128, nFetch and nPush 4) on the calling thread. */
function recipeOf(options: Required<PortionsBenchOptions>): JobRecipe {
  return {
    data: "mnist", dir: options.mnistDir, trainRows: options.trainRows, hidden: [128], seed: 1,
    train: { mode: "async", optimizer: "adagrad", learningRate: 0.03, batchSize: 128, portion: 128, epochs: options.epochs, threads: 0, shuffle: true, seed: 1 },
    nFetch: 4, nPush: 4, target: 0,
  };
}

/**
 * Runs the fixed-splits job, then the portions + backups job (each: a fresh shard process and 2 task processes, task
 * 1 slowed), on the nats-server at `url`; resolves with the rows: the mean epoch time of each (ours = portions, peer =
 * fixed, target ratio <= 0.6) and a unit's fit overhead. Rejects when a child fails (every child is killed).
 */
export async function runPortionsBench(url: string, options: PortionsBenchOptions): Promise<PortionsBenchRow[]> {
  const o: Required<PortionsBenchOptions> = { ...PORTIONS_BENCH_DEFAULTS, ...options };
  const recipe = recipeOf(o);
  const fixed = await runJob(url, `bench-portions-fixed`, recipe, o, true);
  const portions = await runJob(url, `bench-portions-backups`, recipe, o, false);
  const env = { engine: engineName(), cpu: machineInfo().model };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const epochOf = (r: TaskReply[]) => mean(r[0]!.epochSeconds);
  const [tp, tf] = [epochOf(portions.tasks), epochOf(fixed.tasks)];
  const q = portions.tasks[0]!.queue;
  const units = (r: TaskReply[]) => r.map((t) => t.unitsTrained);
  const what = `MNIST 784-128-10 (${o.trainRows} rows, units of ${o.unitRows}), 2 task processes + 1 shard process, task 1 slowed ${o.slowdown}x`;
  const rows: PortionsBenchRow[] = [
    {
      case: `${what}: epoch time, portions + backup tasks vs fixed equal splits`,
      unit: "s", ours: round(tp, 3), peer: round(tf, 3), peer_name: "fixed equal splits", peer_unit: "s", ratio: round(tp / tf, 2), target: 0.6, ...env,
      epochs: o.epochs, units_per_task: units(portions.tasks), units_per_task_fixed: units(fixed.tasks), backups_issued: q.backupsIssued,
      backups_won: q.backupsWon, duplicates_dropped: q.duplicates, pushes_dropped: portions.shard.stats.deduped, leases_expired: q.expired,
      epoch_seconds: portions.tasks[0]!.epochSeconds.map((s) => round(s, 3)), epoch_seconds_fixed: fixed.tasks[0]!.epochSeconds.map((s) => round(s, 3)),
    },
  ];
  const fast = portions.tasks[0]!;
  rows.push({
    case: `${what}: ms per unit fit against the shard (LocalTrainer set-up, 2 pulls, ${Math.ceil(o.unitRows / 128 / 4)} pushes) vs the same rows trained locally`,
    unit: "ms", ours: round(fast.msPerUnit, 2), peer: round(fast.localUnitMs, 2), peer_name: "local fit of the unit's rows (threads 0)", peer_unit: "ms",
    ratio: round(fast.msPerUnit / fast.localUnitMs, 2), target: null, ...env, setup_ms: round(fast.setupMs, 2),
  });
  return rows;
}

/** One job: a shard process, then the 2 task processes together; the shard's stats once they are done. */
async function runJob(url: string, job: string, recipe: JobRecipe, o: Required<PortionsBenchOptions>, fixed: boolean): Promise<{ tasks: TaskReply[]; shard: ShardReply }> {
  const shard = startPsChild<ShardReply>({ role: "downpour-shard", url, job, tasks: 2, shards: 1, shard: 0, recipe });
  const tasks = [0, 1].map((index) =>
    startTask({ role: "portions-task", url, job, index, recipe, unitRows: o.unitRows, fixed, slowdown: index === 1 ? o.slowdown : 1 }),
  );
  try {
    await Promise.all([shard.ready, ...tasks.map((t) => t.ready)]);
    for (const t of tasks) t.go();
    const replies = await Promise.all(tasks.map((t) => t.result));
    shard.go();
    return { tasks: replies, shard: await shard.result };
  } catch (error) {
    shard.kill();
    for (const t of tasks) t.kill();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The task processes (this file as the script; the protocol is ps-child.ts's: ready, go, result).

const SCRIPT = fileURLToPath(import.meta.url);

interface Task {
  ready: Promise<void>;
  go(): void;
  result: Promise<TaskReply>;
  kill(): void;
}

function startTask(request: TaskRequest, timeoutMs = 600_000): Task {
  const engineArgs = "Deno" in globalThis ? ["run", "-A"] : [];
  const child: ChildProcess = spawn(process.execPath, [...engineArgs, SCRIPT, JSON.stringify(request)], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let markReady!: () => void;
  let fail!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  const result = new Promise<TaskReply>((resolve, reject) => {
    let out = "";
    let answer: TaskReply | undefined;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      for (let nl = out.indexOf("\n"); nl >= 0; nl = out.indexOf("\n")) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const message = JSON.parse(line) as { ready?: boolean; result?: TaskReply };
        if (message.ready) markReady();
        if (message.result !== undefined) answer = message.result;
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && answer !== undefined) return resolve(answer);
      const error = new Error(`bench portions task ${request.index} exited with ${code ?? signal} without a result: ${stderr.trim() || "(no stderr)"}`);
      fail(error);
      reject(error);
    });
  });
  result.catch(() => {});
  ready.catch(() => {});
  return { ready, go: () => void child.stdin!.end("go\n"), result, kill: () => void child.kill("SIGKILL") };
}

function go(): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (line) => {
      if (line.trim() === "go") {
        rl.close();
        resolve();
      }
    });
    rl.on("close", () => resolve());
  });
}

async function runTask(r: TaskRequest): Promise<void> {
  const kernels = await Kernels.load({ shared: true });
  const { train } = await loadMnist(r.recipe.dir!);
  const data = take(train, r.recipe.trainRows ?? train.size);
  const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: r.recipe.hidden, outputs: 10, seed: r.recipe.seed }, { kernels });
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await go();
  const t0 = performance.now();
  const result = await trainDownpourPortions({
    job: r.job, tasks: 2, shards: 1, index: r.index, name: `task-${r.index}`, connection: nc, model, data, train: r.recipe.train,
    nFetch: r.recipe.nFetch, nPush: r.recipe.nPush, portions: { unitRows: r.unitRows, fixed: r.fixed, slowdown: r.slowdown },
    bsp: { joinTimeoutMs: 60_000, barrierTimeoutMs: 300_000 }, client: { requestTimeoutMs: 30_000, connectTimeoutMs: 60_000 },
  });
  const totalSeconds = (performance.now() - t0) / 1000;
  await nc.close();
  // Where a unit's time goes: the same rows trained locally (sync, no shard), and a fit's set-up (one row); best of 5.
  const local = { ...r.recipe.train, mode: "sync" as const, epochs: 1, threads: 0, shuffle: false };
  const best = async (rows: number) => {
    let ms = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      await model.fit(take(data, rows), local);
      ms = Math.min(ms, performance.now() - s);
    }
    return ms;
  };
  const reply: TaskReply = {
    index: r.index, epochSeconds: result.reports.map((e) => e.seconds), unitsTrained: result.units.trained, unitsFirst: result.units.first,
    backups: result.units.backups, queue: result.queue, msPerUnit: result.msPerUnit, pushes: result.pushes, dedupedPushes: result.dedupedPushes,
    localUnitMs: await best(r.unitRows), setupMs: await best(1), totalSeconds,
  };
  model.dispose();
  process.stdout.write(`${JSON.stringify({ result: reply })}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const request = JSON.parse(process.argv[2] ?? "{}") as TaskRequest;
  runTask(request).then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
