// What shard durability costs (issue 10): one in-process ParameterShard per mode — none (no snapshots), "snapshot"
// (a directory store, a snapshot every snapshotEveryUpdates) and "log" (every push written to the job's JetStream
// stream before it is applied and acknowledged) — served to clients in this process over a nats-server with JetStream:
// the latency of one push at a time (p50, p99) and the throughput of W workers pushing at once. Exported for
// bench/ps.ts: runDurabilityBench(url, options) -> rows { case, unit, ours, peer (no durability), ratio, ... }.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ShardDurability } from "../../src/cluster/durability.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterShard } from "../../src/cluster/ps-shard.js";
import { DirectorySnapshotStore } from "../../src/cluster/snapshot-store.js";

/** Options of runDurabilityBench. Defaults are in DURABILITY_BENCH_DEFAULTS. */
export interface DurabilityBenchOptions {
  /** Floats per push (default 100 000: 400 KB). */
  keys?: number;
  /** Pushes timed one at a time (default 200, after 20 untimed). */
  latencyPushes?: number;
  /** Workers pushing at once for the throughput figure, and pushes each (defaults 4 and 100). */
  workers?: number;
  pushesPerWorker?: number;
  /** "snapshot" mode's snapshot interval, in updates (default 250, so that a few snapshots fall in the timed pushes;
   *  the shard's own default is 1000). */
  snapshotEveryUpdates?: number;
}

export const DURABILITY_BENCH_DEFAULTS = Object.freeze({ keys: 100_000, latencyPushes: 200, workers: 4, pushesPerWorker: 100, snapshotEveryUpdates: 250 });

/** The figures of one mode. */
export interface DurabilityFigures {
  mode: "none" | ShardDurability;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  pushesPerSecond: number;
  snapshots: number;
}

/** A row as bench/ps.ts writes them (ratio = ours / peer, the mode against no durability; lower is better for ms). */
export interface DurabilityBenchRow {
  case: string;
  unit: string;
  ours: number;
  peer: number;
  peer_name: string;
  ratio: number;
  [extra: string]: unknown;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] ?? Number.NaN;
}

/** Runs one mode on its own job and connections; resolves with its figures. */
export async function measureDurability(url: string, mode: "none" | ShardDurability, options: DurabilityBenchOptions = {}): Promise<DurabilityFigures> {
  const o = { ...DURABILITY_BENCH_DEFAULTS, ...options };
  const job = `bench-durability-${mode}-${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), "downpour-bench-durability-"));
  const ncs: NatsConnection[] = await Promise.all(Array.from({ length: 1 + o.workers }, () => connect({ servers: url, timeout: 5_000 })));
  const store = mode === "none" ? undefined : await DirectorySnapshotStore.open(job, dir);
  const shard = await ParameterShard.start({
    job, shard: 0, shards: 1, connection: ncs[0]!, init: new Float32Array(o.keys), train: { optimizer: "sgd", learningRate: 0.001, momentum: 0 },
    snapshots: store, durability: mode === "none" ? "snapshot" : mode, snapshotEveryUpdates: o.snapshotEveryUpdates, snapshotEveryMs: 0, snapshotOnClose: false,
  });
  const clients: ShardedParameterClient[] = [];
  try {
    for (let w = 0; w < o.workers; w++) clients.push(await ShardedParameterClient.connect({ job, shards: 1, keys: o.keys, connection: ncs[1 + w]!, worker: w, requestTimeoutMs: 30_000 }));
    const g = Float32Array.from({ length: o.keys }, (_, i) => ((i % 7) - 3) / 100);
    const first = clients[0]!;
    for (let i = 0; i < 20; i++) await first.push(g);
    const times: number[] = [];
    for (let i = 0; i < o.latencyPushes; i++) {
      const t0 = performance.now();
      await first.push(g);
      times.push(performance.now() - t0);
    }
    const started = performance.now();
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < o.pushesPerWorker; i++) await client.push(g);
    }));
    const seconds = (performance.now() - started) / 1000;
    const sorted = [...times].sort((a, b) => a - b);
    return {
      mode,
      p50Ms: round(percentile(sorted, 0.5)),
      p99Ms: round(percentile(sorted, 0.99)),
      meanMs: round(times.reduce((a, b) => a + b, 0) / times.length),
      pushesPerSecond: round((o.workers * o.pushesPerWorker) / seconds, 1),
      snapshots: shard.stats.snapshots,
    };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await shard.close();
    await store?.close();
    await Promise.allSettled(ncs.map((nc) => nc.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The three modes in turn (after an untimed warm-up run without durability); rows of each durability mode against no
 *  durability (p50 and p99 latency, pushes/s). */
export async function runDurabilityBench(url: string, options: DurabilityBenchOptions = {}): Promise<{ figures: DurabilityFigures[]; rows: DurabilityBenchRow[] }> {
  const o = { ...DURABILITY_BENCH_DEFAULTS, ...options };
  const figures: DurabilityFigures[] = [];
  await measureDurability(url, "none", { ...o, latencyPushes: 50, pushesPerWorker: 20 });
  for (const mode of ["none", "snapshot", "log"] as const) figures.push(await measureDurability(url, mode, o));
  const none = figures[0]!;
  const size = `${o.keys} floats, 1 shard`;
  const rows: DurabilityBenchRow[] = [];
  for (const f of figures.slice(1)) {
    const row = (what: string, unit: string, ours: number, peer: number) =>
      rows.push({ case: `${what}, durability ${f.mode} (${size})`, unit, ours, peer, peer_name: "no durability", ratio: round(ours / peer), snapshots: f.snapshots });
    row("push latency p50", "ms", f.p50Ms, none.p50Ms);
    row("push latency p99", "ms", f.p99Ms, none.p99Ms);
    row(`pushes/s, ${o.workers} workers at once`, "push/s", f.pushesPerSecond, none.pushesPerSecond);
  }
  return { figures, rows };
}
