// BSP benchmark over one nats-server on a free loopback port: empty supersteps/s of 2, 4 and 8 peers (one process,
// one connection each) beside a raw nats.js request/reply loop, and the combine of a 1M-float (4 MB) gradient over
// 2 and 4 peers (allreduce and master) beside raw nats.js publishing the same bytes between two clients.
// Writes bench/.scratch/bsp.json, or bench/results/bsp.json with --record.
// Run: npm run bench:bsp [-- --record | --quick | --node-20]  (see bench/run.mjs).
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { BspChannel } from "../src/cluster/bsp-channel.js";
import { BspPeer } from "../src/cluster/bsp.js";
import type { CombineMode } from "../src/cluster/combine.js";
import { ClusterGradientExchange, type ExchangeCounters } from "../src/cluster/gradient-exchange.js";
import { startNatsServer } from "../test/support/nats.js";
import { rawPublishMBps, rawRoundTrips } from "./lib/nats-raw.js";
import { benchFlags, engineName, formatTable, machineInfo, resultsPath, round, writeJsonAtomic } from "./lib/report.js";

const flags = benchFlags();
/** Wall time of each measured case, in seconds. */
const SECONDS = flags.quick ? 0.5 : 2;
const BARRIER_PEERS = [2, 4, 8];
const COMBINE_PEERS = [2, 4];
const MODES: readonly CombineMode[] = ["allreduce", "master"];
const FLOATS = 1 << 20;
const MODEL_BYTES = FLOATS * 4;

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
}

/** `n` joined peers of `job`, one connection each; close() closes both. */
async function joinPeers(url: string, job: string, n: number): Promise<{ peers: BspPeer[]; close(): Promise<void> }> {
  const connections: NatsConnection[] = await Promise.all(Array.from({ length: n }, () => connect({ servers: url, timeout: 5_000 })));
  const peers: BspPeer[] = [];
  const close = async () => {
    await Promise.allSettled(peers.map((p) => p.close()));
    await Promise.allSettled(connections.map((nc) => nc.close()));
  };
  try {
    const joined = await Promise.all(
      connections.map((connection, index) => BspPeer.join({ job, peers: n, name: `bench-${index}`, index, connection, joinTimeoutMs: 15_000, barrierTimeoutMs: 30_000 })),
    );
    peers.push(...joined);
  } catch (error) {
    await close();
    throw error;
  }
  return { peers, close };
}

/** Empty supersteps per second of `n` peers (all calling sync() together) over SECONDS. */
async function emptySupersteps(url: string, n: number): Promise<number> {
  const { peers, close } = await joinPeers(url, `bench-empty-${n}`, n);
  try {
    for (let i = 0; i < 20; i++) await Promise.all(peers.map((p) => p.sync())); // warm-up
    let count = 0;
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    while (performance.now() < end) {
      await Promise.all(peers.map((p) => p.sync()));
      count++;
    }
    return count / ((performance.now() - t0) / 1000);
  } finally {
    await close();
  }
}

/** Milliseconds per combine step of a 1M-float gradient over `n` peers, and peer 0's split of the last step. */
async function combineStep(url: string, n: number, combine: CombineMode): Promise<{ ms: number; steps: number; last: ExchangeCounters }> {
  const { peers, close } = await joinPeers(url, `bench-combine-${combine}-${n}`, n);
  const exchanges = peers.map((p) => new ClusterGradientExchange(new BspChannel(p), { combine }));
  try {
    const grads = peers.map((_, p) => Float32Array.from({ length: FLOATS }, (_v, i) => Math.sin(i * 0.001 + p)));
    let step = 0;
    const once = () => Promise.all(exchanges.map((e, p) => e.allreduce(grads[p]!, { loss: 1, rows: 64 }, step))).then(() => void step++);
    await once(); // warm-up
    let steps = 0;
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    do {
      await once();
      steps++;
    } while (performance.now() < end || steps < 3);
    return { ms: (performance.now() - t0) / steps, steps, last: exchanges[0]!.stats.last };
  } finally {
    for (const e of exchanges) e.dispose();
    await close();
  }
}

const started = performance.now();
const env = { engine: engineName(), cpu: machineInfo().model };
const machine = machineInfo();
console.log(`engine ${env.engine}; CPU ${env.cpu} (${machine.cpus} CPUs)`);
console.log(`one nats-server on loopback; every peer in this process with its own connection; ${SECONDS} s per case${flags.quick ? " (QUICK: do not compare)" : ""}\n`);
const progress = (what: string) => process.stderr.write(`  done ${what} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);

const server = await startNatsServer({ jetstream: false });
const rows: Row[] = [];
const breakdown: Record<string, { ms: number; steps: number; waitMs: number; encodeMs: number; reduceMs: number }> = {};
let chunkBytes = 0;
try {
  const add = (name: string, unit: string, ours: number | null, peer: number | null, peerName: string | null, peerUnit: string | null, digits: number) =>
    rows.push({
      case: name, unit, ours: ours === null ? null : round(ours, digits), peer: peer === null ? null : round(peer, digits), peer_name: peerName, peer_unit: peerUnit,
      ratio: ours === null || peer === null ? null : round(ours / peer, 2), ...env,
    });
  const roundTrips = await rawRoundTrips(server.url, SECONDS);
  progress("raw request/reply");
  for (const n of BARRIER_PEERS) {
    const rate = await emptySupersteps(server.url, n);
    add(`empty supersteps/s, ${n} peers`, "supersteps/s", rate, roundTrips, "raw nats.js request/reply, 2 clients", "round trips/s", 0);
    progress(`empty supersteps, ${n} peers`);
  }
  const raw = await rawPublishMBps(server.url, MODEL_BYTES, SECONDS);
  chunkBytes = raw.chunk;
  progress("raw publish");
  for (const n of COMBINE_PEERS) {
    for (const combine of MODES) {
      const r = await combineStep(server.url, n, combine);
      breakdown[`${combine}, ${n} peers`] = { ms: round(r.ms, 1), steps: r.steps, waitMs: round(r.last.waitMs, 1), encodeMs: round(r.last.encodeMs, 1), reduceMs: round(r.last.reduceMs, 1) };
      add(`combine 1M floats (4 MB), ${combine}, ${n} peers`, "MB/s", MODEL_BYTES / (r.ms / 1000) / 1e6, raw.mbps, "raw nats.js publish 4 MB, 2 clients", "MB/s", 1);
      progress(`combine ${combine}, ${n} peers`);
    }
  }
  add("MNIST 784-128-10 time to 97%, 2 peers (not measured yet)", "s", null, null, "local training, 2 threads", "s", 1);
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
console.log(`\nraw publish chunks: ${chunkBytes} bytes (max_payload - 64)`);
console.log("combine steps, peer 0's last step (ms): total | wait | encode | reduce");
for (const [name, b] of Object.entries(breakdown)) console.log(`  ${name}: ${b.ms} | ${b.waitMs} | ${b.encodeMs} | ${b.reduceMs} (${b.steps} timed steps)`);
const target = (ok: boolean, text: string) => console.log(`  [${ok ? "PASS" : "FAIL"}] ${text}`);
const barrier2 = rows.find((r) => r.case === "empty supersteps/s, 2 peers")!.ratio!;
const allreduce2 = rows.find((r) => r.case === "combine 1M floats (4 MB), allreduce, 2 peers")!.ratio!;
console.log("\ntargets:");
target(barrier2 >= 0.5, `2-peer barrier >= 0.5x raw round trips: ${barrier2.toFixed(2)}x`);
target(allreduce2 >= 0.7, `allreduce of 4 MB over 2 peers >= 0.7x raw NATS MB/s: ${allreduce2.toFixed(2)}x`);
console.log("  [----] 2-peer MNIST time to 97% <= 1.5x local 2 threads: not measured yet");

const out = resultsPath("bsp", flags);
await writeJsonAtomic(out, { rows, ...env, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick, seconds_per_case: SECONDS, raw_chunk_bytes: chunkBytes, combine_breakdown_ms: breakdown });
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exit(0);
