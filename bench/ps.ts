// Parameter-server benchmark (issue 9) over one nats-server on a free loopback port, every shard, worker and raw
// client in its own child process (bench/lib/ps-child.ts; the local and BSP MNIST runs use bench/lib/bsp-child.ts):
// 1. push and pull MB/s of a 1M-float (4 MB) model over 1, 2 and 4 shards from one worker, beside raw nats.js
//    pushes (chunked like the client, one acknowledgement) and pulls (one request, the chunks back) of the same
//    bytes between two processes, measured just before each row; where the time goes (latency, CPU per request);
// 2. MNIST 784-128-10 time to 97% test accuracy: local 2 threads, bsp (2 peers, trainPeer), async (Downpour:
//    1 shard process + 2 task processes x 1 thread), ssp (s = 4, the same); compute per batch and
//    per portion alone, beside the async run's push and pull latency;
// 3. a scale test of the protocol: 16 task processes against 4 shards (digits, 64-32-10): it completes; shard
//    updates/s and the staleness histogram.
// 4. one task slowed 3x: the epoch time with portions and backup tasks against fixed equal splits
//    (bench/lib/ps-portions.ts: 2 task processes + 1 shard process on an MNIST subset);
// 5. what durability costs a push: snapshot and log (a JetStream stream) against none (bench/lib/ps-durability.ts).
// Writes bench/.scratch/ps.json, or bench/results/ps.json with --record.
// Run: npm run bench:ps [-- --record | --quick | --node-20]  (see bench/run.mjs).
import { loadavg } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../test/support/nats.js";
import type { MnistEpoch, MnistRecipe, MnistReply } from "./lib/bsp-child.js";
import { runChildren } from "./lib/children.js";
import { runDurabilityBench } from "./lib/ps-durability.js";
import { runPortionsBench } from "./lib/ps-portions.js";
import {
  type BulkReply,
  type ComputeReply,
  type JobRecipe,
  type Latency,
  runJob,
  runPsChildren,
  STALENESS_BUCKETS,
  type ShardReply,
  startPsChild,
  type TaskEpoch,
  type TaskReply,
} from "./lib/ps-child.js";
import { benchFlags, engineName, formatTable, machineInfo, repoRoot, resultsPath, round, writeJsonAtomic } from "./lib/report.js";

const flags = benchFlags();
/** Wall time of each timed bulk loop, in seconds. */
const SECONDS = flags.quick ? 0.5 : 2;
const SHARD_COUNTS = [1, 2, 4];
const FLOATS = 1 << 20;
const MODEL_BYTES = FLOATS * 4;
const MNIST_DIR = join(process.env.DOWNPOUR_DATA ?? join(repoRoot, "../shared/data"), "mnist");
/** bench:bsp's MNIST recipe (SGD lr 0.1 momentum 0.9, global batch 128, shuffled, seed 1); quick: 20000 rows to 95%. */
const RECIPE: Omit<MnistRecipe, "dir"> = {
  trainRows: flags.quick ? 20_000 : 60_000,
  batchSize: 128,
  learningRate: 0.1,
  momentum: 0.9,
  maxEpochs: flags.quick ? 4 : 8,
  target: flags.quick ? 0.95 : 0.97,
  seed: 1,
};
/**
 * The async (Downpour) recipe: SGD lr 0.1 with momentum 0.5 on the shard, portions of 128 rows (one mini-batch), a
 * pull and a push every portion, at most one push in flight per worker (trainDownpour's default). Tried on this
 * machine (2 tasks, 1 shard): the staleness of a push is about 3 updates, and SGD diverges once lr / (1 - momentum)
 * is above about 0.3 (momentum 0.9 at lr 0.05, 0.7 at 0.1, 0.5 at 0.15); local training's lr 0.1 with momentum 0.9
 * (1.0) is far beyond that. This one reaches 97% at about epoch 7-9. Adagrad (lr 0.03-0.1, nFetch/nPush 1-4)
 * plateaus at 96.2-96.6%; Adam 0.001 reached 96.9% at epoch 12.
 */
const ASYNC: JobRecipe = {
  data: "mnist",
  dir: MNIST_DIR,
  trainRows: RECIPE.trainRows,
  hidden: [128],
  seed: 1,
  train: { mode: "async", optimizer: "sgd", learningRate: 0.1, momentum: 0.5, batchSize: 128, portion: 128, epochs: flags.quick ? 4 : 16, threads: 1, shuffle: true, seed: 1 },
  nFetch: 1,
  nPush: 1,
  target: RECIPE.target,
};
/** ssp: the async recipe with a staleness bound of 4 clocks (pushes). */
const SSP: JobRecipe = { ...ASYNC, consistency: "ssp", staleness: 4 };
/** The scale test: 16 tasks x inline training (threads 0) against 4 shards on the 8x8 digits, 64-32-10, Adagrad. */
const SCALE_TASKS = 16;
const SCALE_SHARDS = 4;
const SCALE: JobRecipe = {
  data: "digits",
  hidden: [32],
  seed: 1,
  train: { mode: "async", optimizer: "adagrad", learningRate: 0.1, batchSize: 16, portion: 8, epochs: flags.quick ? 5 : 20, threads: 0, shuffle: true, seed: 1 },
  nFetch: 1,
  nPush: 1,
  target: 0,
};

interface Row {
  case: string;
  unit: string;
  ours: number | null;
  peer: number | null;
  peer_name: string | null;
  peer_unit: string | null;
  ratio: number | null;
  engine: string;
  cpu: string;
  [extra: string]: unknown;
}

const started = performance.now();
const env = { engine: engineName(), cpu: machineInfo().model };
const machine = machineInfo();
const rows: Row[] = [];
const notes: string[] = [];
const progress = (what: string) => process.stderr.write(`  done ${what} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
const add = (name: string, unit: string, ours: number | null, peer: number | null, peerName: string | null, peerUnit: string | null, digits: number, extra = {}) =>
  rows.push({
    case: name, unit, ours: ours === null ? null : round(ours, digits), peer: peer === null ? null : round(peer, digits), peer_name: peerName, peer_unit: peerUnit,
    ratio: ours === null || peer === null ? null : round(ours / peer, 2), ...env, ...extra,
  });
const mbps = (r: BulkReply) => (r.ops * r.bytes) / r.seconds / 1e6;

/** Where one bulk request's time goes: latency, and CPU ms per request in the worker and in the shards (summed). */
interface BulkBreakdown {
  latency: Latency;
  client_cpu_ms: number;
  server_cpu_ms: number;
  frames: number;
  chunk_bytes: number;
}

/** Raw pushes or pulls of 4 MB between two processes (raw-client times, raw-server answers). */
async function rawBulk(url: string, op: "push" | "pull"): Promise<{ reply: BulkReply; breakdown: BulkBreakdown }> {
  const subject = `bench.raw.${op}`;
  const server = startPsChild<{ cpuMs: number }>({ role: "raw-server", url, subject, bytes: MODEL_BYTES });
  try {
    await server.ready;
    const [reply] = await runPsChildren<BulkReply>([{ role: "raw-client", url, subject, bytes: MODEL_BYTES, op, seconds: SECONDS }]);
    server.go();
    const { cpuMs } = await server.result;
    const r = reply!;
    return { reply: r, breakdown: { latency: r.latency, client_cpu_ms: round(r.cpuMs / r.ops, 2), server_cpu_ms: round(cpuMs / (r.ops + 3), 2), frames: r.frames, chunk_bytes: r.chunkBytes } };
  } catch (error) {
    server.kill();
    throw error;
  }
}

/** Our pushes or pulls of the whole 1M-float key space over `shards` shard processes from one worker process. */
async function oursBulk(url: string, op: "push" | "pull", shards: number): Promise<{ reply: BulkReply; breakdown: BulkBreakdown; shards: ShardReply[] }> {
  const job = `bench-bulk-${op}-${shards}`;
  const { shards: shardReplies, workers } = await runJob<ShardReply, BulkReply>(
    Array.from({ length: shards }, (_, shard) => ({ role: "bulk-shard" as const, url, job, shard, shards, keys: FLOATS })),
    [{ role: "bulk-client", url, job, shards, keys: FLOATS, op, seconds: SECONDS }],
  );
  const r = workers[0]!;
  const serverCpu = shardReplies.reduce((sum, s) => sum + s.cpuMs / Math.max(1, s.stats.pushes + s.stats.pulls), 0);
  return { reply: r, shards: shardReplies, breakdown: { latency: r.latency, client_cpu_ms: round(r.cpuMs / r.ops, 2), server_cpu_ms: round(serverCpu, 2), frames: r.frames, chunk_bytes: r.chunkBytes } };
}

/** The first epoch at which a run reached `target`, with its time to there (validation excluded), or undefined. */
function reached<E extends MnistEpoch | TaskEpoch>(epochs: E[], target: number): { epoch: E; seconds: number } | undefined {
  const epoch = epochs.find((e) => (e.accuracy ?? 0) >= target);
  return epoch && { epoch, seconds: epoch.wallSeconds - epoch.validationSeconds };
}

/** Pushes per staleness bucket, summed over tasks. */
function histogram(tasks: TaskReply[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const bucket of STALENESS_BUCKETS) sum[bucket] = tasks.reduce((n, t) => n + (t.staleness[bucket] ?? 0), 0);
  return sum;
}

const bulkBreakdown: Record<string, BulkBreakdown> = {};
let mnist: Record<string, unknown> = {};
let scale: Record<string, unknown> = {};
const pct = Math.round(RECIPE.target * 100);
const quickNote = flags.quick ? ` (QUICK: ${RECIPE.trainRows} rows, ${pct}%)` : "";

console.log(`engine ${env.engine}; CPU ${env.cpu} (${machine.cpus} CPUs)`);
console.log(`one nats-server on loopback; every shard, worker and raw client in its own process (${process.execPath}); ${SECONDS} s per bulk case${flags.quick ? " (QUICK: do not compare)" : ""}\n`);
const loadBefore = loadavg()[0]!;
const server = await startNatsServer({ jetstream: false });
try {
  // 1. Bulk push and pull, each row after its raw floor.
  for (const op of ["push", "pull"] as const) {
    for (const shards of SHARD_COUNTS) {
      const raw = await rawBulk(server.url, op);
      const ours = await oursBulk(server.url, op, shards);
      const name = `${op} 1M floats (4 MB), ${shards} shard${shards === 1 ? "" : "s"}, 1 worker`;
      bulkBreakdown[`raw ${op} (before ${shards} shard${shards === 1 ? "" : "s"})`] = raw.breakdown;
      bulkBreakdown[name] = ours.breakdown;
      add(name, "MB/s", mbps(ours.reply), mbps(raw.reply), `raw nats.js ${op} of 4 MB, chunked, 2 processes`, "MB/s", 1, {
        processes: shards + 1, per_request: ours.breakdown, raw_per_request: raw.breakdown, shard_stats: ours.shards.map((s) => s.stats), client_stats: ours.reply.client,
      });
      progress(`raw ${op} and ${op} over ${shards} shard(s)`);
    }
  }

  // 2. MNIST time to the target.
  const recipe: MnistRecipe = { ...RECIPE, dir: MNIST_DIR };
  const [local] = await runChildren<MnistReply>([{ role: "local", recipe, threads: 2 }]);
  progress(`MNIST local, 2 threads (${local!.epochs.length} epochs)`);
  const bsp = await runChildren<MnistReply>([0, 1].map((index) => ({ role: "mnist-peer" as const, recipe, threads: 1, url: server.url, job: "bench-ps-bsp", peers: 2, index })));
  progress(`MNIST bsp, 2 peers (${bsp[0]!.epochs.length} epochs)`);
  const job = await runJob<ShardReply, TaskReply>(
    [{ role: "downpour-shard", url: server.url, job: "bench-ps-async", tasks: 2, shards: 1, shard: 0, recipe: ASYNC }],
    [0, 1].map((index) => ({ role: "downpour-task" as const, url: server.url, job: "bench-ps-async", tasks: 2, shards: 1, index, recipe: ASYNC, validate: true })),
  );
  progress(`MNIST async, 1 shard + 2 tasks (${job.workers[0]!.epochs.length} epochs)`);
  const computeRows = flags.quick ? 5_000 : 20_000;
  const [perBatch] = await runPsChildren<ComputeReply>([{ role: "compute", dir: MNIST_DIR, rows: computeRows, batch: RECIPE.batchSize, hidden: [128] }]);
  const [perPortion] = await runPsChildren<ComputeReply>([{ role: "compute", dir: MNIST_DIR, rows: computeRows, batch: ASYNC.train.portion!, hidden: [128] }]);
  progress("compute per batch and per portion, 1 thread");

  const theirs = reached(local!.epochs, RECIPE.target);
  const name = (what: string) => `MNIST 784-128-10 time to ${pct}%, ${what}${quickNote}`;
  const peerName = "local training, 2 threads";
  const ours = reached(bsp[0]!.epochs, RECIPE.target);
  add(name("local, 2 threads"), "s", theirs?.seconds ?? null, theirs?.seconds ?? null, peerName, "s", 1, { epochs: theirs?.epoch.epoch ?? null, epochs_detail: local!.epochs, recipe: RECIPE });
  add(name("bsp, 2 peers x 1 thread"), "s", ours?.seconds ?? null, theirs?.seconds ?? null, peerName, "s", 1, {
    epochs: ours?.epoch.epoch ?? null, epochs_detail: bsp[0]!.epochs, recipe: RECIPE, per_step_ms: bsp[0]!.stats ? round((bsp[0]!.epochs.at(-1)!.trainSeconds * 1000) / bsp[0]!.stats.steps, 2) : null,
  });
  // The task that got there first (both validate the shard's parameters at the end of each of their epochs).
  const firsts = job.workers.map((t) => reached(t.epochs, RECIPE.target)).filter((x) => x !== undefined).sort((a, b) => a.seconds - b.seconds);
  const asyncReached = firsts[0];
  const t0 = job.workers[0]!;
  add(name("async (Downpour), 1 shard + 2 tasks x 1 thread"), "s", asyncReached?.seconds ?? null, theirs?.seconds ?? null, peerName, "s", 1, {
    epochs: asyncReached?.epoch.epoch ?? null, epochs_detail: job.workers.map((t) => t.epochs), recipe: ASYNC,
    push_ms: job.workers.map((t) => t.push), pull_ms: job.workers.map((t) => t.pull), staleness: histogram(job.workers),
    shard: job.shards[0], final_accuracy: t0.finalAccuracy, best_accuracy: Math.max(...job.workers.flatMap((t) => t.epochs.map((e) => e.accuracy ?? 0))),
  });
  // At the level async reaches (95%), against local training's time to there (both measured at epoch ends).
  const LOWER = 0.95;
  if (RECIPE.target > LOWER) {
    const localLower = reached(local!.epochs, LOWER);
    const asyncLower = job.workers.map((t) => reached(t.epochs, LOWER)).filter((x) => x !== undefined).sort((a, b) => a.seconds - b.seconds)[0];
    const lowerName = `MNIST 784-128-10 time to 95%, async (Downpour), 1 shard + 2 tasks x 1 thread`;
    add(lowerName, "s", asyncLower?.seconds ?? null, localLower?.seconds ?? null, "local training, 2 threads, to 95%", "s", 1, {
      epochs: asyncLower?.epoch.epoch ?? null, peer_epochs: localLower?.epoch.epoch ?? null, recipe: ASYNC,
    });
  }
  const best = Math.max(...job.workers.flatMap((t) => t.epochs.map((e) => e.accuracy ?? 0)));
  notes.push(`async: best test accuracy ${round(best * 100, 2)}% in ${Math.max(...job.workers.map((t) => t.epochs.length))} epochs (target ${pct}%).`);
  const ssp = await runJob<ShardReply, TaskReply>(
    [{ role: "downpour-shard", url: server.url, job: "bench-ps-ssp", tasks: 2, shards: 1, shard: 0, recipe: SSP }],
    [0, 1].map((index) => ({ role: "downpour-task" as const, url: server.url, job: "bench-ps-ssp", tasks: 2, shards: 1, index, recipe: SSP, validate: true })),
  );
  progress(`MNIST ssp (s=${SSP.staleness}), 1 shard + 2 tasks (${ssp.workers[0]!.epochs.length} epochs)`);
  const sspReached = ssp.workers.map((t) => reached(t.epochs, RECIPE.target)).filter((x) => x !== undefined).sort((a, b) => a.seconds - b.seconds)[0];
  const clockMax = Math.max(...ssp.workers.map((t) => t.clockStaleness.max));
  add(name(`ssp (s=${SSP.staleness}), 1 shard + 2 tasks x 1 thread`), "s", sspReached?.seconds ?? null, theirs?.seconds ?? null, peerName, "s", 1, {
    epochs: sspReached?.epoch.epoch ?? null, epochs_detail: ssp.workers.map((t) => t.epochs), recipe: SSP, clock_staleness: ssp.workers.map((t) => t.clockStaleness),
    clock_staleness_max: clockMax, bound_held: clockMax <= SSP.staleness!, shard: ssp.shards[0],
    best_accuracy: Math.max(...ssp.workers.flatMap((t) => t.epochs.map((e) => e.accuracy ?? 0))),
  });
  notes.push(`ssp (s=${SSP.staleness}): best test accuracy ${round(Math.max(...ssp.workers.flatMap((t) => t.epochs.map((e) => e.accuracy ?? 0))) * 100, 2)}%; clock staleness at reads max ${clockMax} (bound ${SSP.staleness}: ${clockMax <= SSP.staleness! ? "held" : "EXCEEDED"}).`);

  // One task slowed 3x: portions and backup tasks against fixed equal splits.
  const portionRows = await runPortionsBench(server.url, { mnistDir: MNIST_DIR, ...(flags.quick ? { trainRows: 10_000, epochs: 2 } : { epochs: 4 }) });
  for (const row of portionRows) rows.push(row);
  progress("one task slowed 3x: portions + backups and fixed splits");

  // What durability costs a push (issue 10): none, snapshot and log (JetStream), over a server with JetStream.
  const js = await startNatsServer({});
  try {
    const durability = await runDurabilityBench(js.url, flags.quick ? { latencyPushes: 50, pushesPerWorker: 25 } : {});
    for (const row of durability.rows) rows.push({ ...row, peer_unit: row.unit, ...env, figures: durability.figures.find((f) => row.case.includes(`durability ${f.mode} `)) });
  } finally {
    await js.stop();
  }
  progress("push cost of durability snapshot and log");
  const exchanges = t0.client.pushes + t0.client.pulls;
  mnist = {
    compute_ms_per_batch_128_1_thread: round(perBatch!.msPerBatch, 3),
    compute_ms_per_portion_1_thread: round(perPortion!.msPerBatch, 3),
    portion_rows: ASYNC.train.portion,
    local_ms_per_batch_2_threads: theirs ? round((theirs.epoch.trainSeconds * 1000) / ((RECIPE.trainRows / RECIPE.batchSize) * theirs.epoch.epoch), 3) : null,
    async_push_ms: t0.push, async_pull_ms: t0.pull, async_pushes: t0.client.pushes, async_pulls: t0.client.pulls,
    async_bytes_per_exchange: exchanges > 0 ? Math.round((t0.client.bytesOut + t0.client.bytesIn) / exchanges) : null,
    async_epoch_seconds: t0.epochs.length ? round(t0.epochs.at(-1)!.trainSeconds / t0.epochs.length, 3) : null,
    local_epoch_seconds: local!.epochs.length ? round(local!.epochs.at(-1)!.trainSeconds / local!.epochs.length, 3) : null,
    async_staleness_mean: round(t0.stalenessMean, 2), async_staleness_max: t0.stalenessMax,
    shard_updates_per_second: round(job.shards[0]!.updatesPerSecond, 1), shard_cpu_share: round(job.shards[0]!.cpuShare, 2),
  };

  // 4. Scale test: 16 tasks against 4 shards.
  const scaleStart = performance.now();
  const big = await runJob<ShardReply, TaskReply>(
    Array.from({ length: SCALE_SHARDS }, (_, shard) => ({ role: "downpour-shard" as const, url: server.url, job: "bench-ps-scale", tasks: SCALE_TASKS, shards: SCALE_SHARDS, shard, recipe: SCALE })),
    Array.from({ length: SCALE_TASKS }, (_, index) => ({ role: "downpour-task" as const, url: server.url, job: "bench-ps-scale", tasks: SCALE_TASKS, shards: SCALE_SHARDS, index, recipe: SCALE, validate: index === 0 })),
  );
  const scaleSeconds = (performance.now() - scaleStart) / 1000;
  progress(`scale test, ${SCALE_TASKS} tasks x ${SCALE_SHARDS} shards`);
  const pushes = big.workers.reduce((n, t) => n + t.client.pushes, 0);
  const updates = big.shards.map((s) => s.stats.updates);
  const perShard = big.shards.map((s) => round(s.updatesPerSecond, 1));
  const hist = histogram(big.workers);
  const allStale = big.workers.reduce((s, t) => s + t.stalenessMean * t.client.pushes, 0) / Math.max(1, pushes);
  scale = {
    tasks: SCALE_TASKS, shards: SCALE_SHARDS, recipe: SCALE, wall_seconds: round(scaleSeconds, 1), pushes, shard_updates: updates,
    every_push_applied_once: updates.every((u) => u === pushes), updates_per_second: perShard, shard_cpu_share: big.shards.map((s) => round(s.cpuShare, 2)),
    staleness: hist, staleness_mean: round(allStale, 2), staleness_max: Math.max(...big.workers.map((t) => t.stalenessMax)),
    known_staleness_mean: round(big.workers.reduce((s, t) => s + t.knownMean, 0) / big.workers.length, 2),
    fit_seconds: big.workers.map((t) => round(t.fitSeconds, 2)), final_accuracy: big.workers[0]!.finalAccuracy,
    push_ms: latencyOf(big.workers.map((t) => t.push.mean)), rss_mb_max: Math.max(...big.workers.map((t) => t.rssMB)),
  };
  add(`scale: ${SCALE_TASKS} task processes x ${SCALE_SHARDS} shards (digits 64-32-10, ${SCALE.train.epochs} epochs), shard updates/s`, "updates/s",
    perShard.reduce((a, b) => a + b, 0) / perShard.length, null, null, null, 1, { scale });
} finally {
  await server.stop();
}

/** Mean of per-task means (for the scale test's push latency). */
function latencyOf(means: number[]): { mean: number; max: number } {
  return { mean: round(means.reduce((a, b) => a + b, 0) / Math.max(1, means.length), 2), max: round(Math.max(...means), 2) };
}

const cell = (v: number | null) => (v === null ? "-" : String(v));
console.log(
  formatTable(
    ["case", "ours", "unit", "peer", "value", "unit", "ours/peer"],
    rows.map((r) => [r.case, cell(r.ours), r.unit, r.peer_name ?? "-", cell(r.peer), r.peer_unit ?? "-", r.ratio === null ? "-" : r.ratio.toFixed(2)]),
    ["left", "right", "left", "left", "right", "left", "right"],
  ),
);
const loadAfter = loadavg()[0]!;
console.log(`\nload average (1 min) before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)} on ${machine.cpus} CPUs${Math.max(loadBefore, loadAfter) > machine.cpus ? " (BUSY machine: ratios are suspect)" : ""}`);
console.log("\nwhere a bulk request's time goes (per request: latency in the worker; CPU ms in the worker and in the shard or raw server processes, summed):");
console.log(
  formatTable(
    ["request", "mean ms", "p50", "p90", "max", "worker CPU ms", "server CPU ms", "frames", "chunk bytes"],
    Object.entries(bulkBreakdown).map(([n, b]) => [n, b.latency.mean.toFixed(2), b.latency.p50.toFixed(2), b.latency.p90.toFixed(2), b.latency.max.toFixed(2), b.client_cpu_ms.toFixed(2), b.server_cpu_ms.toFixed(2), String(b.frames), String(b.chunk_bytes)]),
    ["left", "right", "right", "right", "right", "right", "right", "right", "right"],
  ),
);
if (mnist.async_push_ms) {
  const m = mnist as { async_push_ms: Latency; async_pull_ms: Latency; compute_ms_per_portion_1_thread: number; compute_ms_per_batch_128_1_thread: number };
  console.log(
    `\nMNIST async: push ${m.async_push_ms.mean} ms, pull ${m.async_pull_ms.mean} ms (task 0, mean; served one after the other on its main thread) ` +
      `vs compute ${m.compute_ms_per_portion_1_thread} ms per ${ASYNC.train.portion}-row portion on 1 thread (x${ASYNC.nPush} portions per push, x${ASYNC.nFetch} per pull); ` +
      `compute per 128-row batch on 1 thread ${m.compute_ms_per_batch_128_1_thread} ms`,
  );
  console.log(`  async recipe: ${JSON.stringify({ ...ASYNC.train, nFetch: ASYNC.nFetch, nPush: ASYNC.nPush })}`);
  console.log(`  epoch: async ${mnist.async_epoch_seconds} s vs local ${mnist.local_epoch_seconds} s; staleness mean ${mnist.async_staleness_mean}, max ${mnist.async_staleness_max}; shard ${mnist.shard_updates_per_second} updates/s at ${mnist.shard_cpu_share} of a core`);
}
if (scale.staleness) {
  const s = scale as { staleness: Record<string, number>; updates_per_second: number[]; wall_seconds: number; pushes: number; every_push_applied_once: boolean; staleness_mean: number; rss_mb_max: number };
  console.log(`\nscale test: ${SCALE_TASKS} tasks x ${SCALE_SHARDS} shards completed in ${s.wall_seconds} s (startup included); ${s.pushes} pushes, every push applied once on every shard: ${s.every_push_applied_once}`);
  console.log(`  updates/s per shard: ${s.updates_per_second.join(", ")}; task RSS max ${s.rss_mb_max} MB`);
  console.log(`  staleness of a push (updates applied between the task's newest pull and its push; mean ${s.staleness_mean}):`);
  const total = Object.values(s.staleness).reduce((a, b) => a + b, 0);
  console.log(formatTable(["staleness", "pushes", "share"], Object.entries(s.staleness).map(([b, n]) => [b, String(n), `${((100 * n) / Math.max(1, total)).toFixed(1)}%`]), ["left", "right", "right"]));
}
for (const note of notes) console.log(`note: ${note}`);
const target = (ratio: number | null | undefined, ok: (r: number) => boolean, text: string) =>
  console.log(`  [${ratio == null ? "----" : ok(ratio) ? "PASS" : "FAIL"}] ${text}: ${ratio == null ? "not reached" : `${ratio.toFixed(2)}x`}`);
const ratioOf = (prefix: string) => rows.find((r) => r.case.startsWith(prefix))?.ratio;
console.log("\ntargets:");
target(ratioOf("push 1M floats (4 MB), 1 shard"), (r) => r >= 0.8, "push over 1 shard >= 0.8x raw NATS MB/s");
target(ratioOf("pull 1M floats (4 MB), 1 shard"), (r) => r >= 0.8, "pull over 1 shard >= 0.8x raw NATS MB/s");
target(ratioOf(`MNIST 784-128-10 time to ${pct}%, async`), (r) => r <= 1.3, `async MNIST time to ${pct}% <= 1.3x local 2 threads`);
target(rows.find((r) => r.case.includes("epoch time, portions + backup tasks"))?.ratio, (r) => r <= 0.6, "one task slowed 3x: epoch time with portions + backups <= 0.6x fixed equal splits");

const out = resultsPath("ps", flags);
await writeJsonAtomic(out, {
  rows, ...env, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick, seconds_per_case: SECONDS, bulk_breakdown: bulkBreakdown,
  mnist_recipe: RECIPE, async_recipe: ASYNC, mnist, scale, notes, load_average: [round(loadBefore, 2), round(loadAfter, 2)],
});
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exit(0);
