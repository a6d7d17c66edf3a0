// BSP benchmark over one nats-server on a free loopback port, every peer in its own child process (bench/lib/
// bsp-child.ts, one connection each): empty supersteps/s of 2, 4 and 8 peers beside a raw nats.js request/reply
// loop; the combine of a 1M-float (4 MB) gradient over 2 and 4 peers (allreduce and master) beside raw nats.js
// publishing the same bytes (and beside a raw swap, both clients sending 4 MB to the other at once); every raw floor
// is between two clients in two processes, measured just before its row. Then MNIST 784-128-10: wall
// time to 97% test accuracy of 2 peer processes (trainPeer, 1 thread each) beside local training on 2 threads.
// Writes bench/.scratch/bsp.json, or bench/results/bsp.json with --record.
// Run: npm run bench:bsp [-- --record | --quick | --node-20]  (see bench/run.mjs).
import { loadavg } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { BspPeer } from "../src/cluster/bsp.js";
import type { CombineMode } from "../src/cluster/combine.js";
import type { ExchangeCounters } from "../src/cluster/gradient-exchange.js";
import { startNatsServer } from "../test/support/nats.js";
import type { MnistEpoch, MnistRecipe, MnistReply, PeerReply } from "./lib/bsp-child.js";
import { runChildren } from "./lib/children.js";
import { rawPublishMBps, rawRoundTrips, rawSwapMBps } from "./lib/nats-raw.js";
import { benchFlags, engineName, formatTable, machineInfo, repoRoot, resultsPath, round, writeJsonAtomic } from "./lib/report.js";

const flags = benchFlags();
/** Wall time of each measured case, in seconds. */
const SECONDS = flags.quick ? 0.5 : 2;
const BARRIER_PEERS = [2, 4, 8];
const COMBINE_PEERS = [2, 4];
const MODES: readonly CombineMode[] = ["allreduce", "master"];
const FLOATS = 1 << 20;
const MODEL_BYTES = FLOATS * 4;
/**
 * The MNIST recipe of the time-to-accuracy rows (the README's cluster recipe): 784-128-10, relu, softmax
 * cross-entropy, pixels /255, SGD lr 0.1 momentum 0.9, global batch 128 (64 rows per peer), shuffled (seed 1).
 * Quick: the first 20000 training rows, to 95%.
 */
const RECIPE: Omit<MnistRecipe, "dir"> = {
  trainRows: flags.quick ? 20_000 : 60_000,
  batchSize: 128,
  learningRate: 0.1,
  momentum: 0.9,
  maxEpochs: flags.quick ? 4 : 8,
  target: flags.quick ? 0.95 : 0.97,
  seed: 1,
};
const MNIST_DIR = join(process.env.DOWNPOUR_DATA ?? join(repoRoot, "../shared/data"), "mnist");

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

/** Where a step's time goes on peer 0 (ms per step, bytes per step), as printed and recorded. */
interface Breakdown {
  ms: number;
  compute_ms?: number;
  encode_ms: number;
  wait_ms: number;
  reduce_ms: number;
  other_ms: number;
  supersteps: number;
  bytes_sent: number;
  bytes_received: number;
  steps: number;
}

/** Empty supersteps per second of `n` peer processes (peer 0's timed loop). */
async function emptySupersteps(url: string, n: number): Promise<number> {
  const replies = await runChildren<PeerReply>(
    Array.from({ length: n }, (_, index) => ({ role: "empty" as const, url, job: `bench-empty-${n}`, peers: n, index, seconds: SECONDS })),
  );
  const r = replies[0]!;
  return r.steps / r.seconds;
}

/** The same, with the `n` peers in this process (one connection each), for comparison with earlier runs. */
async function emptySuperstepsInProcess(url: string, n: number): Promise<number> {
  const connections: NatsConnection[] = await Promise.all(Array.from({ length: n }, () => connect({ servers: url, timeout: 5_000 })));
  const peers = await Promise.all(
    connections.map((connection, index) => BspPeer.join({ job: `bench-empty-local-${n}`, peers: n, name: `bench-${index}`, index, connection, joinTimeoutMs: 15_000, barrierTimeoutMs: 30_000 })),
  );
  try {
    for (let i = 0; i < 50; i++) await Promise.all(peers.map((p) => p.sync()));
    let count = 0;
    const t0 = performance.now();
    while (performance.now() < t0 + SECONDS * 1000) {
      await Promise.all(peers.map((p) => p.sync()));
      count++;
    }
    return count / ((performance.now() - t0) / 1000);
  } finally {
    await Promise.allSettled(peers.map((p) => p.close()));
    await Promise.allSettled(connections.map((nc) => nc.close()));
  }
}

/** Per-step means of exchange counters over `steps` steps, with the step's total time `ms`. */
function perStep(c: ExchangeCounters, steps: number, ms: number, computeMs?: number): Breakdown {
  const each = (x: number) => round(x / steps, 2);
  const accounted = (c.waitMs + c.encodeMs + c.reduceMs) / steps + (computeMs ?? 0);
  return {
    ms: round(ms, 2), ...(computeMs === undefined ? {} : { compute_ms: round(computeMs, 2) }),
    encode_ms: each(c.encodeMs), wait_ms: each(c.waitMs), reduce_ms: each(c.reduceMs), other_ms: round(Math.max(0, ms - accounted), 2),
    supersteps: each(c.supersteps), bytes_sent: Math.round(c.bytesSent / steps), bytes_received: Math.round(c.bytesReceived / steps), steps,
  };
}

/** A combine step of a 1M-float gradient over `n` peer processes: peer 0's ms per step and its breakdown. */
async function combineStep(url: string, n: number, combine: CombineMode): Promise<Breakdown> {
  const replies = await runChildren<PeerReply>(
    Array.from({ length: n }, (_, index) => ({ role: "combine" as const, url, job: `bench-combine-${combine}-${n}`, peers: n, index, seconds: SECONDS, combine, floats: FLOATS })),
  );
  const r = replies[0]!;
  return perStep(r.timed!, r.steps, (r.seconds * 1000) / r.steps);
}

/** The first epoch at which a run reached the target, with its time to there (validation excluded), or undefined. */
function reached(epochs: MnistEpoch[]): { epoch: MnistEpoch; seconds: number } | undefined {
  const epoch = epochs.find((e) => e.accuracy >= RECIPE.target);
  return epoch && { epoch, seconds: epoch.wallSeconds - epoch.validationSeconds };
}

const started = performance.now();
const env = { engine: engineName(), cpu: machineInfo().model };
const machine = machineInfo();
console.log(`engine ${env.engine}; CPU ${env.cpu} (${machine.cpus} CPUs)`);
console.log(
  `one nats-server on loopback; every peer in its own process (${process.execPath}), one connection each; raw floors between ` +
    `this process and a child; ${SECONDS} s per case${flags.quick ? " (QUICK: do not compare)" : ""}\n`,
);
const progress = (what: string) => process.stderr.write(`  done ${what} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);

const loadBefore = loadavg()[0]!;
const server = await startNatsServer({ jetstream: false });
const rows: Row[] = [];
const breakdown: Record<string, Breakdown> = {};
let chunkBytes = 0;
const add = (name: string, unit: string, ours: number | null, peer: number | null, peerName: string | null, peerUnit: string | null, digits: number, extra = {}) =>
  rows.push({
    case: name, unit, ours: ours === null ? null : round(ours, digits), peer: peer === null ? null : round(peer, digits), peer_name: peerName, peer_unit: peerUnit,
    ratio: ours === null || peer === null ? null : round(ours / peer, 2), ...env, ...extra,
  });
const RAW_RT = "raw nats.js request/reply, 2 clients in 2 processes";
const RAW_PUB = "raw nats.js publish 4 MB (acked), 2 clients in 2 processes";
try {
  // Each row's raw floor is measured just before it, so that a busy spell on the machine hits both alike.
  for (const n of BARRIER_PEERS) {
    const roundTrips = await rawRoundTrips(server.url, SECONDS);
    add(`empty supersteps/s, ${n} peers`, "supersteps/s", await emptySupersteps(server.url, n), roundTrips, RAW_RT, "round trips/s", 0, { processes: n });
    progress(`raw request/reply, empty supersteps, ${n} peers`);
  }
  const roundTrips = await rawRoundTrips(server.url, SECONDS);
  add("empty supersteps/s, 2 peers in one process", "supersteps/s", await emptySuperstepsInProcess(server.url, 2), roundTrips, RAW_RT, "round trips/s", 0, { processes: 1 });
  progress("raw request/reply, empty supersteps, 2 peers in one process");
  for (const n of COMBINE_PEERS) {
    for (const combine of MODES) {
      const raw = await rawPublishMBps(server.url, MODEL_BYTES, SECONDS);
      const swap = await rawSwapMBps(server.url, MODEL_BYTES, SECONDS);
      chunkBytes = raw.chunk;
      const b = await combineStep(server.url, n, combine);
      const name = `combine 1M floats (4 MB), ${combine}, ${n} peers`;
      breakdown[name] = b;
      const mbps = MODEL_BYTES / (b.ms / 1000) / 1e6;
      add(name, "MB/s", mbps, raw.mbps, RAW_PUB, "MB/s", 1, { processes: n, per_step: b, raw_swap_mbps: round(swap, 1), ratio_to_swap: round(mbps / swap, 2) });
      progress(`raw publish and swap, combine ${combine}, ${n} peers`);
    }
  }
  const recipe: MnistRecipe = { ...RECIPE, dir: MNIST_DIR };
  const [local] = await runChildren<MnistReply>([{ role: "local", recipe, threads: 2 }]);
  progress(`MNIST local, 2 threads (${local!.epochs.length} epochs)`);
  const cluster = await runChildren<MnistReply>(
    [0, 1].map((index) => ({ role: "mnist-peer" as const, recipe, threads: 1, url: server.url, job: "bench-mnist", peers: 2, index })),
  );
  progress(`MNIST 2 peers (${cluster[0]!.epochs.length} epochs)`);
  const ours = reached(cluster[0]!.epochs);
  const theirs = reached(local!.epochs);
  const pct = Math.round(RECIPE.target * 100);
  const name = `MNIST 784-128-10 time to ${pct}%, 2 peers x 1 thread${flags.quick ? ` (QUICK: ${RECIPE.trainRows} rows, ${pct}%)` : ""}`;
  const stats = cluster[0]!.stats!;
  const last = cluster[0]!.epochs.at(-1)!;
  const trainMs = last.trainSeconds * 1000;
  const mnistBreakdown = perStep(stats, stats.steps, trainMs / stats.steps, (trainMs - stats.waitMs - stats.encodeMs - stats.reduceMs) / stats.steps);
  mnistBreakdown.other_ms = 0;
  breakdown[`MNIST training step (global batch ${RECIPE.batchSize}, 2 peers)`] = mnistBreakdown;
  add(name, "s", ours?.seconds ?? null, theirs?.seconds ?? null, "local training, 2 threads", "s", 1, {
    recipe: RECIPE, epochs: ours?.epoch.epoch ?? null, peer_epochs: theirs?.epoch.epoch ?? null,
    accuracy: ours?.epoch.accuracy ?? null, peer_accuracy: theirs?.epoch.accuracy ?? null,
    epochs_detail: cluster[0]!.epochs, peer_epochs_detail: local!.epochs, per_step: mnistBreakdown,
  });
  // The same recipe with fewer or smaller exchanges: f16 gradients, and model averaging every 8 and 32 mini-batches.
  for (const variant of [{ gradDtype: "f16" as const }, { syncEvery: 8 }, { syncEvery: 32 }]) {
    const label = "gradDtype" in variant ? "--grad-dtype f16" : `--sync-every ${variant.syncEvery}`;
    const runs = await runChildren<MnistReply>(
      [0, 1].map((index) => ({ role: "mnist-peer" as const, recipe, threads: 1, url: server.url, job: `bench-mnist-${label.replace(/\W+/g, "-")}`, peers: 2, index, ...variant })),
    );
    progress(`MNIST 2 peers ${label} (${runs[0]!.epochs.length} epochs)`);
    const got = reached(runs[0]!.epochs);
    add(`${name}, ${label}`, "s", got?.seconds ?? null, theirs?.seconds ?? null, "local training, 2 threads", "s", 1, {
      recipe: { ...RECIPE, ...variant }, epochs: got?.epoch.epoch ?? null, accuracy: got?.epoch.accuracy ?? null, epochs_detail: runs[0]!.epochs,
      supersteps: runs[0]!.stats?.supersteps ?? null,
    });
  }
} finally {
  await server.stop();
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
console.log(`raw publish chunks: ${chunkBytes} bytes (max_payload - 64)`);
const swapRow = rows.find((r) => r.raw_swap_mbps !== undefined);
if (swapRow) {
  console.log("raw swap (both clients send 4 MB to the other at once, what a 2-peer exchange moves), measured before each combine row:");
  for (const r of rows) if (r.ratio_to_swap !== undefined) console.log(`  ${r.case}: ours ${r.ours} MB/s, swap ${r.raw_swap_mbps} MB/s, ${(r.ratio_to_swap as number).toFixed(2)}x`);
}
console.log("\nwhere the time goes: peer 0, mean ms per step (a step = the exchange's supersteps; MNIST: a training mini-batch)");
console.log(
  formatTable(
    ["step", "total", "compute", "encode", "wait (wire + others)", "reduce", "other", "supersteps", "MB sent", "MB recv", "steps"],
    Object.entries(breakdown).map(([name, b]) => [
      name, b.ms.toFixed(2), b.compute_ms === undefined ? "-" : b.compute_ms.toFixed(2), b.encode_ms.toFixed(2), b.wait_ms.toFixed(2), b.reduce_ms.toFixed(2), b.other_ms.toFixed(2),
      String(b.supersteps), (b.bytes_sent / 1e6).toFixed(2), (b.bytes_received / 1e6).toFixed(2), String(b.steps),
    ]),
    ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
  ),
);
const target = (ratio: number | null | undefined, ok: (r: number) => boolean, text: string) =>
  console.log(`  [${ratio == null ? "----" : ok(ratio) ? "PASS" : "FAIL"}] ${text}: ${ratio == null ? "not reached" : `${ratio.toFixed(2)}x`}`);
const ratioOf = (name: string) => rows.find((r) => r.case === name || (name === "MNIST" && r.case.startsWith(name)))?.ratio;
console.log("\ntargets:");
target(ratioOf("empty supersteps/s, 2 peers"), (r) => r >= 0.5, "2-peer barrier >= 0.5x raw round trips");
target(ratioOf("combine 1M floats (4 MB), allreduce, 2 peers"), (r) => r >= 0.7, "allreduce of 4 MB over 2 peers >= 0.7x raw NATS MB/s");
target(ratioOf("MNIST"), (r) => r <= 1.5, `2-peer MNIST time to ${Math.round(RECIPE.target * 100)}% <= 1.5x local 2 threads`);

const out = resultsPath("bsp", flags);
await writeJsonAtomic(out, { rows, ...env, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick, seconds_per_case: SECONDS, raw_chunk_bytes: chunkBytes, breakdown_ms: breakdown, mnist_recipe: RECIPE, load_average: [round(loadBefore, 2), round(loadAfter, 2)] });
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exit(0);
