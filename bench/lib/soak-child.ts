// The soak benchmark's child processes (bench/soak.ts): a parameter-server shard that snapshots itself (and, with
// durability "log", logs every push) and can be killed and resumed; and a worker that pushes its own constant value
// over the whole key space in a loop and pulls every few pushes. Both print one JSON line every REPORT_MS (progress:
// version or acknowledged pushes, resident memory) and a final line when their stdin closes. Plain SGD with lr 1
// and momentum 0 makes the invariant exact: every key of the final parameters is -(sum over workers of the pushes
// applied from it times its value), with the per-worker counts from the shards' clocks.
// Usage: <node> soak-child.js '{"role":"shard",...}' | '{"role":"worker",...}'
import { connectCluster } from "../../src/cluster/connection.js";
import type { ShardDurability } from "../../src/cluster/durability.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterShard } from "../../src/cluster/ps-shard.js";
import { openSnapshotStore } from "../../src/cluster/snapshot-store.js";

/** How often a child prints its progress line, in ms. */
const REPORT_MS = 500;

export interface SoakShardRequest {
  role: "shard";
  servers: string[];
  job: string;
  shard: number;
  shards: number;
  keys: number;
  durability: ShardDurability;
  /** "nats" (the job's object store bucket) or a directory. */
  snapshots: string;
  /** Restore the latest snapshot (and replay the log) instead of starting from zeros. */
  resume: boolean;
}

export interface SoakWorkerRequest {
  role: "worker";
  servers: string[];
  job: string;
  shards: number;
  keys: number;
  worker: number;
  /** The value of every key of this worker's pushes (a small integer, so sums stay exact in float32). */
  value: number;
  pullEvery: number;
}

/** A progress line. */
export interface SoakProgress {
  t: number;
  rssMB: number;
  /** Shard: its version; worker: pushes acknowledged so far. */
  count: number;
}

/** A shard's last line. */
export interface SoakShardFinal {
  version: number;
  min: number;
  max: number;
  clocks: [worker: number, applied: number][];
  restored?: unknown;
  rssMB: number;
}

/** A worker's last line. */
export interface SoakWorkerFinal {
  worker: number;
  value: number;
  /** Pushes sent, acknowledged (applied), and failed (may or may not have been applied). */
  sent: number;
  acked: number;
  failed: number;
  rssMB: number;
}

const rss = () => Math.round(process.memoryUsage().rss / 1e6);
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
/** Resolves when stdin closes (the parent's stop). */
const stdinClosed = () =>
  new Promise<void>((resolve) => {
    process.stdin.on("end", resolve).on("close", resolve).on("error", resolve);
    process.stdin.resume();
  });

async function runShard(r: SoakShardRequest): Promise<void> {
  const nc = await connectCluster({ servers: r.servers, name: `soak-shard-${r.shard}` });
  const snapshots = await openSnapshotStore(r.snapshots, r.job, nc);
  const shard = await ParameterShard.start({
    job: r.job, shard: r.shard, shards: r.shards, keys: r.keys, connection: nc, init: new Float32Array(r.keys),
    train: { optimizer: "sgd", learningRate: 1, momentum: 0 }, snapshots, resume: r.resume, durability: r.durability,
    snapshotEveryUpdates: 200, snapshotEveryMs: 5_000, onError: () => {},
  });
  print({ ready: true, restored: shard.restored ?? null });
  const timer = setInterval(() => print({ t: Date.now(), rssMB: rss(), count: shard.version } satisfies SoakProgress), REPORT_MS);
  await stdinClosed();
  clearInterval(timer);
  const values = shard.values();
  let [min, max] = [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const final: SoakShardFinal = { version: shard.version, min, max, clocks: [...shard.clocks()], rssMB: rss() };
  await shard.close();
  await nc.close();
  print({ final });
  process.exit(0);
}

async function runWorker(r: SoakWorkerRequest): Promise<void> {
  const nc = await connectCluster({ servers: r.servers, name: `soak-worker-${r.worker}` });
  const client = await ShardedParameterClient.connect({
    job: r.job, shards: r.shards, keys: r.keys, connection: nc, worker: r.worker, name: `worker ${r.worker}`,
    requestTimeoutMs: 5_000, attempts: 20, connectTimeoutMs: 60_000,
  });
  print({ ready: true });
  const grads = new Float32Array(r.keys).fill(r.value);
  const into = new Float32Array(r.keys);
  const counts = { sent: 0, acked: 0, failed: 0 };
  let stopping = false;
  void stdinClosed().then(() => {
    stopping = true;
  });
  const timer = setInterval(() => print({ t: Date.now(), rssMB: rss(), count: counts.acked } satisfies SoakProgress), REPORT_MS);
  while (!stopping) {
    counts.sent++;
    try {
      await client.push(grads);
      counts.acked++;
      if (counts.sent % r.pullEvery === 0) await client.pull(into);
    } catch {
      counts.failed++;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  clearInterval(timer);
  await client.close();
  await nc.close();
  print({ final: { worker: r.worker, value: r.value, ...counts, rssMB: rss() } satisfies SoakWorkerFinal });
  process.exit(0);
}

const request = JSON.parse(process.argv[2] ?? "{}") as SoakShardRequest | SoakWorkerRequest;
if (request.role === "shard") await runShard(request);
else if (request.role === "worker") await runWorker(request);
else throw new Error(`soak-child: unknown role ${JSON.stringify((request as { role?: unknown }).role)}`);
