// Child-process entry of the parameter-server benchmark (bench/ps.ts), and the parent's side of it: every shard,
// worker client, raw NATS client and Downpour task runs in its own process (one connection each). The protocol is
// bsp-child.ts's: the request is argv[2] (JSON); the child prints {"ready":true} once set up, waits for "go" on
// stdin (or its end), prints one {"result":...} line and exits 0. A shard's "go" means "stop and report": it
// serves from "ready" on. Task processes instrument ShardedParameterClient's push and pull (in their own process
// only) to time them and to read the shards' version clocks around each call (the staleness of each push).
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createInbox, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { chunkBytesFor } from "../../src/cluster/chunks.js";
import { type Consistency, startDownpourShard, trainDownpour } from "../../src/cluster/downpour-training.js";
import { ShardedParameterClient, type ParameterClientStats, type ShardVersion } from "../../src/cluster/ps-client.js";
import { ParameterShard, type ShardStats } from "../../src/cluster/ps-shard.js";
import type { StalenessSummary } from "../../src/cluster/staleness.js";
import { PS_HEADER_ROOM_BYTES } from "../../src/cluster/ps-protocol.js";
import { take, type Dataset } from "../../src/data/dataset.js";
import { loadDigits } from "../../src/data/digits.js";
import { loadMnist } from "../../src/data/mnist.js";
import { Kernels, MultiLayerPerceptron } from "../../src/index.js";
import type { TrainOptions } from "../../src/train/options.js";
import type { EpochReport } from "../../src/train/trainer.js";

/** A shard of the bulk push/pull rows: `keys` zeros, plain SGD (lr 1e-6, no momentum). */
export interface BulkShardRequest {
  role: "bulk-shard";
  url: string;
  job: string;
  shard: number;
  shards: number;
  keys: number;
}

/** The worker of a bulk row: `op` of the whole key space, one at a time, for `seconds` after a warm-up. */
export interface BulkClientRequest {
  role: "bulk-client";
  url: string;
  job: string;
  shards: number;
  keys: number;
  op: "push" | "pull";
  seconds: number;
}

/**
 * The raw floor of a bulk row, as the client does it without the protocol: "raw-server" acknowledges each whole
 * `bytes` pushed to `<subject>.push` (one empty reply) and answers each request on `<subject>.pull` with `bytes` in
 * chunks; "raw-client" times pushes or pulls of `bytes` in chunks of `chunk` bytes (each plus a 40-byte frame
 * header, as the client's frames), replies on one inbox subscription, as the client has.
 */
export interface RawRequest {
  role: "raw-server" | "raw-client";
  url: string;
  subject: string;
  bytes: number;
  op?: "push" | "pull";
  seconds?: number;
}

/** The data and model of a Downpour job: MNIST 784-128-10, or the 8x8 digits with a 64-32-10 MLP (scale test). */
export interface JobRecipe {
  data: "mnist" | "digits";
  /** MNIST only: where its files are, and how many training rows to use. */
  dir?: string;
  trainRows?: number;
  hidden: number[];
  seed: number;
  /** The job's training options (mode "async"), the same on every task and shard. */
  train: TrainOptions;
  nFetch: number;
  nPush: number;
  /** The job's consistency and ssp staleness bound (default async). */
  consistency?: Consistency;
  staleness?: number;
  /** Flow control of each task's pushes (trainDownpour's maxPushesInFlight; default unbounded). */
  maxPushesInFlight?: number;
  /** Validation accuracy at which the tasks stop (every task is told when one reaches it); 0: train every epoch. */
  target: number;
}

/** A shard of a Downpour job (startDownpourShard). */
export interface DownpourShardRequest {
  role: "downpour-shard";
  url: string;
  job: string;
  tasks: number;
  shards: number;
  shard: number;
  recipe: JobRecipe;
}

/** A task of a Downpour job (trainDownpour), validated after every epoch on the test set when `validate`. */
export interface DownpourTaskRequest {
  role: "downpour-task";
  url: string;
  job: string;
  tasks: number;
  shards: number;
  index: number;
  recipe: JobRecipe;
  validate: boolean;
}

/** Compute alone: local training on 1 thread, sync, mini-batches of `batch` rows, over the first `rows` MNIST rows (best of 3 epochs). */
export interface ComputeRequest {
  role: "compute";
  dir: string;
  rows: number;
  batch: number;
  hidden: number[];
}

export type PsChildRequest = BulkShardRequest | BulkClientRequest | RawRequest | DownpourShardRequest | DownpourTaskRequest | ComputeRequest;

/** Latency of one kind of call: count, mean, median, 90th percentile and max, in ms. */
export interface Latency {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  max: number;
}

/** What a shard reports at "go": its counters, its process's CPU time since ready, and when updates came in. */
export interface ShardReply {
  shard: number;
  stats: ShardStats;
  cpuMs: number;
  /** ms from the first update seen to the last one seen (sampled every 10 ms), and updates/s over it. */
  activeMs: number;
  updatesPerSecond: number;
  /** CPU time over the active span, as a share of one core. */
  cpuShare: number;
}

/** What a bulk or raw client reports over its timed loop. */
export interface BulkReply {
  ops: number;
  seconds: number;
  bytes: number;
  latency: Latency;
  cpuMs: number;
  chunkBytes: number;
  frames: number;
  client?: ParameterClientStats;
}

/** One epoch of a task, as it saw it (since "go"). */
export interface TaskEpoch {
  epoch: number;
  accuracy: number | null;
  wallSeconds: number;
  validationSeconds: number;
  trainSeconds: number;
}

export interface TaskReply {
  index: number;
  epochs: TaskEpoch[];
  client: ParameterClientStats;
  versions: ShardVersion[];
  push: Latency;
  pull: Latency;
  /** Pushes by staleness: updates the shards applied between this task's newest pull and the push (a lower bound). */
  staleness: Record<string, number>;
  stalenessMean: number;
  stalenessMax: number;
  /** client.staleness() just before each push (what the client knew): mean and max. */
  knownMean: number;
  knownMax: number;
  /** ssp/bsp: the reader's clock minus the slowest active worker's clock at each bounded read (trainDownpour's). */
  clockStaleness: StalenessSummary;
  /** Time of the fit (since "go"), and the job's end (barrier and final pull included). */
  fitSeconds: number;
  totalSeconds: number;
  finalAccuracy: number | null;
  cpuMs: number;
  rssMB: number;
}

export interface ComputeReply {
  msPerBatch: number;
  batches: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The parent's side: start a child of this script, wait for it, collect its result.

const SCRIPT = fileURLToPath(import.meta.url);
const live = new Set<ChildProcess>();
let signalsHooked = false;

/** A started child: ready once set up; go() tells it to start (a shard: to stop and report); result is its reply. */
export interface PsChild<T> {
  readonly ready: Promise<void>;
  go(): void;
  readonly result: Promise<T>;
  kill(): void;
}

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill("SIGKILL");
      process.exit(130);
    });
  }
}

/** Starts this script in a child process under this engine with `request`; the child is killed after `timeoutMs`. */
export function startPsChild<T>(request: PsChildRequest, timeoutMs = 300_000): PsChild<T> {
  hookSignals();
  const engineArgs = "Deno" in globalThis ? ["run", "-A"] : [];
  const child = spawn(process.execPath, [...engineArgs, SCRIPT, JSON.stringify(request)], { stdio: ["pipe", "pipe", "pipe"] });
  live.add(child);
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
  const result = new Promise<T>((resolve, reject) => {
    let out = "";
    let answer: T | undefined;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      for (let nl = out.indexOf("\n"); nl >= 0; nl = out.indexOf("\n")) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const message = JSON.parse(line) as { ready?: boolean; result?: T };
        if (message.ready) markReady();
        if (message.result !== undefined) answer = message.result;
      }
    });
    child.on("exit", (code, signal) => {
      live.delete(child);
      clearTimeout(timer);
      if (code === 0 && answer !== undefined) return resolve(answer);
      const error = new Error(`bench ps child ${request.role} exited with ${code ?? signal} without a result: ${stderr.trim() || "(no stderr)"}`);
      fail(error);
      reject(error);
    });
  });
  result.catch(() => {});
  ready.catch(() => {});
  return { ready, go: () => void child.stdin!.end("go\n"), result, kill: () => void child.kill("SIGKILL") };
}

/** Starts every request's child, waits until all are ready, tells them to go together, and collects the results. */
export async function runPsChildren<T>(requests: PsChildRequest[]): Promise<T[]> {
  const children = requests.map((r) => startPsChild<T>(r));
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.go();
    return await Promise.all(children.map((c) => c.result));
  } catch (error) {
    for (const c of children) c.kill();
    throw error;
  }
}

/**
 * Starts `shards` (each must be ready first), then runs `workers` together; when they are done, tells the shards to
 * stop and returns both sides' replies. Every child is killed on a failure.
 */
export async function runJob<S, W>(shards: PsChildRequest[], workers: PsChildRequest[]): Promise<{ shards: S[]; workers: W[] }> {
  const started = shards.map((r) => startPsChild<S>(r));
  try {
    await Promise.all(started.map((c) => c.ready));
    const results = await runPsChildren<W>(workers);
    for (const c of started) c.go();
    return { shards: await Promise.all(started.map((c) => c.result)), workers: results };
  } catch (error) {
    for (const c of started) c.kill();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The child's side.

function print(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Resolves at the parent's "go" line on stdin (or its end). */
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

function cpuMs(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

export function latencyOf(samples: number[]): Latency {
  if (samples.length === 0) return { count: 0, mean: 0, p50: 0, p90: 0, max: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { count: sorted.length, mean: r(sorted.reduce((s, x) => s + x, 0) / sorted.length), p50: r(at(0.5)), p90: r(at(0.9)), max: r(sorted.at(-1)!) };
}

/** Serves until "go", sampling the update counter every 10 ms; then reports. */
async function serveShard(shard: ParameterShard, nc: NatsConnection): Promise<void> {
  const cpu0 = process.cpuUsage();
  let first = 0;
  let last = 0;
  let seen = 0;
  let cpuFirst = 0;
  let cpuLast = 0;
  const sampler = setInterval(() => {
    const updates = shard.version;
    if (updates === seen) return;
    const now = performance.now();
    if (seen === 0) {
      first = now;
      cpuFirst = cpuMs(cpu0);
    }
    seen = updates;
    last = now;
    cpuLast = cpuMs(cpu0);
  }, 10);
  print({ ready: true });
  await go();
  clearInterval(sampler);
  const stats = shard.stats;
  const activeMs = last - first;
  const reply: ShardReply = {
    shard: shard.shard, stats, cpuMs: cpuMs(cpu0), activeMs,
    updatesPerSecond: activeMs > 0 ? stats.updates / (activeMs / 1000) : 0, cpuShare: activeMs > 0 ? (cpuLast - cpuFirst) / activeMs : 0,
  };
  await shard.close();
  await nc.close();
  print({ result: reply });
}

async function runBulkShard(r: BulkShardRequest): Promise<void> {
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  const shard = await ParameterShard.start({
    job: r.job, shard: r.shard, shards: r.shards, connection: nc, init: new Float32Array(r.keys),
    train: { optimizer: "sgd", learningRate: 1e-6, momentum: 0 }, peerCheckMs: 200,
  });
  await serveShard(shard, nc);
}

/** Times `once` for `seconds` after 3 warm-up calls; at least 5 timed calls. */
async function timedLoop(once: () => Promise<void>, seconds: number): Promise<{ ops: number; seconds: number; samples: number[]; cpuMs: number }> {
  for (let i = 0; i < 3; i++) await once();
  const samples: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  do {
    const s = performance.now();
    await once();
    samples.push(performance.now() - s);
  } while (performance.now() < t0 + seconds * 1000 || samples.length < 5);
  return { ops: samples.length, seconds: (performance.now() - t0) / 1000, samples, cpuMs: cpuMs(cpu0) };
}

async function runBulkClient(r: BulkClientRequest): Promise<void> {
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  const client = await ShardedParameterClient.connect({ job: r.job, shards: r.shards, keys: r.keys, connection: nc, worker: 1, requestTimeoutMs: 30_000 });
  const values = Float32Array.from({ length: r.keys }, (_v, i) => Math.sin(i * 0.001));
  print({ ready: true });
  await go();
  const before = client.stats;
  const once = r.op === "push" ? async () => void (await client.push(values)) : async () => void (await client.pull(values));
  const t = await timedLoop(once, r.seconds);
  const after = client.stats;
  const chunkBytes = chunkBytesFor(nc.info!.max_payload - PS_HEADER_ROOM_BYTES);
  const perShard = Math.ceil(r.keys / r.shards) * 4;
  const reply: BulkReply = {
    ops: t.ops, seconds: t.seconds, bytes: r.keys * 4, latency: latencyOf(t.samples), cpuMs: t.cpuMs, chunkBytes,
    frames: r.shards * Math.ceil(perShard / chunkBytes), client: { ...after, bytesIn: after.bytesIn - before.bytesIn, bytesOut: after.bytesOut - before.bytesOut },
  };
  await client.close();
  await nc.close();
  print({ result: reply });
}

/** The client's chunk size and frame header (40 bytes), so that raw messages are as large as the client's frames. */
function rawChunk(nc: NatsConnection): number {
  return chunkBytesFor(nc.info!.max_payload - PS_HEADER_ROOM_BYTES) + 40;
}

async function runRawServer(r: RawRequest): Promise<void> {
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  const chunk = rawChunk(nc);
  const payload = new Uint8Array(r.bytes).fill(5);
  let received = 0;
  nc.subscribe(`${r.subject}.push`, {
    callback: (_err, msg) => {
      received += msg.data.byteLength;
      if (received >= r.bytes) {
        received = 0;
        msg.respond(new Uint8Array(0));
      }
    },
  });
  nc.subscribe(`${r.subject}.pull`, {
    callback: (_err, msg) => {
      for (let offset = 0; offset < r.bytes; offset += chunk) nc.publish(msg.reply!, payload.subarray(offset, Math.min(r.bytes, offset + chunk)));
    },
  });
  await nc.flush();
  const cpu0 = process.cpuUsage();
  print({ ready: true });
  await go();
  await nc.close();
  print({ result: { cpuMs: cpuMs(cpu0) } });
}

async function runRawClient(r: RawRequest): Promise<void> {
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  const chunk = rawChunk(nc);
  const payload = Uint8Array.from({ length: r.bytes }, (_v, i) => i & 0xff);
  const inbox = createInbox();
  let got = 0;
  let waiter: (() => void) | undefined;
  nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg: Msg) => {
      got += msg.data.byteLength;
      if (r.op === "push" || got >= r.bytes) waiter?.();
    },
  });
  await nc.flush();
  let id = 0;
  const once = () =>
    new Promise<void>((resolve) => {
      got = 0;
      waiter = resolve;
      const reply = `${inbox}.${++id}`;
      if (r.op === "pull") nc.publish(`${r.subject}.pull`, new Uint8Array(0), { reply });
      else for (let offset = 0; offset < r.bytes; offset += chunk) nc.publish(`${r.subject}.push`, payload.subarray(offset, Math.min(r.bytes, offset + chunk)), { reply });
    });
  print({ ready: true });
  await go();
  const t = await timedLoop(once, r.seconds ?? 2);
  await nc.close();
  const reply: BulkReply = { ops: t.ops, seconds: t.seconds, bytes: r.bytes, latency: latencyOf(t.samples), cpuMs: t.cpuMs, chunkBytes: chunk, frames: Math.ceil(r.bytes / chunk) };
  print({ result: reply });
}

/** The job's data (train and test) and its model, seeded: every task and shard builds the same. */
async function jobSetup(recipe: JobRecipe): Promise<{ train: Dataset; test: Dataset; model: MultiLayerPerceptron }> {
  const kernels = await Kernels.load({ shared: true });
  if (recipe.data === "digits") {
    const { train, test } = await loadDigits();
    const model = await MultiLayerPerceptron.create({ inputs: 64, hidden: recipe.hidden, outputs: 10, seed: recipe.seed }, { kernels });
    return { train, test, model };
  }
  const { train, test } = await loadMnist(recipe.dir!);
  const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: recipe.hidden, outputs: 10, seed: recipe.seed }, { kernels });
  const rows = recipe.trainRows ?? train.size;
  return { train: rows < train.size ? take(train, rows) : train, test, model };
}

async function runDownpourShard(r: DownpourShardRequest): Promise<void> {
  const { train, model } = await jobSetup(r.recipe);
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  const shard = await startDownpourShard({
    job: r.job, shard: r.shard, shards: r.shards, tasks: r.tasks, model, data: train, train: r.recipe.train,
    nFetch: r.recipe.nFetch, nPush: r.recipe.nPush, consistency: r.recipe.consistency, staleness: r.recipe.staleness, connection: nc,
  });
  await serveShard(shard, nc);
  model.dispose();
}

/** Records every push and pull of ShardedParameterClient in this process: latency and the version clocks around it. */
function instrumentClient(): { push: number[]; pull: number[]; staleness: number[]; known: number[] } {
  const seen = { push: [] as number[], pull: [] as number[], staleness: [] as number[], known: [] as number[] };
  const proto = ShardedParameterClient.prototype;
  const push = proto.push;
  const pull = proto.pull;
  proto.push = async function (this: ShardedParameterClient, ...args: Parameters<typeof push>) {
    const pulled = this.versions().map((v) => v.pulled);
    seen.known.push(this.staleness());
    const t0 = performance.now();
    const version = await push.apply(this, args);
    seen.push.push(performance.now() - t0);
    const after = this.versions();
    seen.staleness.push(Math.max(0, ...after.map((v, k) => v.latest - 1 - pulled[k]!)));
    return version;
  };
  proto.pull = async function (this: ShardedParameterClient, ...args: Parameters<typeof pull>) {
    const t0 = performance.now();
    const version = await pull.apply(this, args);
    seen.pull.push(performance.now() - t0);
    return version;
  };
  return seen;
}

/** Staleness buckets of the histogram. */
export const STALENESS_BUCKETS = ["0", "1", "2", "3", "4-7", "8-15", "16-31", "32-63", "64+"] as const;

export function stalenessBucket(s: number): string {
  if (s < 4) return String(s);
  if (s < 8) return "4-7";
  if (s < 16) return "8-15";
  if (s < 32) return "16-31";
  if (s < 64) return "32-63";
  return "64+";
}

async function runDownpourTask(r: DownpourTaskRequest): Promise<void> {
  const { train, test, model } = await jobSetup(r.recipe);
  const nc = await connect({ servers: r.url, timeout: 5_000 });
  const seen = instrumentClient();
  const abort = new AbortController();
  const stopSubject = `bench.${r.job}.stop`;
  nc.subscribe(stopSubject, { callback: () => abort.abort() });
  await nc.flush();
  const epochs: TaskEpoch[] = [];
  let t0 = 0;
  let validationSeconds = 0;
  let trainSeconds = 0;
  const onEpoch = (report: EpochReport) => {
    validationSeconds += report.validationSeconds ?? 0;
    trainSeconds += report.seconds;
    const accuracy = report.validation?.accuracy ?? null;
    epochs.push({ epoch: report.epoch, accuracy, wallSeconds: (performance.now() - t0) / 1000, validationSeconds, trainSeconds });
    if (r.recipe.target > 0 && accuracy !== null && accuracy >= r.recipe.target) {
      nc.publish(stopSubject, new Uint8Array(0));
      abort.abort();
    }
  };
  print({ ready: true });
  await go();
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  let fitEnd = 0;
  const result = await trainDownpour({
    job: r.job, tasks: r.tasks, shards: r.shards, index: r.index, name: `task-${r.index}`, connection: nc, model, data: train,
    train: r.recipe.train, nFetch: r.recipe.nFetch, nPush: r.recipe.nPush, consistency: r.recipe.consistency, staleness: r.recipe.staleness,
    maxPushesInFlight: r.recipe.maxPushesInFlight, hooks: { ...(r.validate ? { validation: test } : {}), signal: abort.signal, onEpoch: (report) => { onEpoch(report); fitEnd = performance.now(); } },
    bsp: { joinTimeoutMs: 60_000, barrierTimeoutMs: 300_000 }, client: { requestTimeoutMs: 30_000, connectTimeoutMs: 60_000 },
  });
  const totalSeconds = (performance.now() - t0) / 1000;
  const histogram: Record<string, number> = {};
  for (const s of seen.staleness) histogram[stalenessBucket(s)] = (histogram[stalenessBucket(s)] ?? 0) + 1;
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const reply: TaskReply = {
    index: r.index, epochs, client: result.client, versions: result.versions, push: latencyOf(seen.push), pull: latencyOf(seen.pull),
    staleness: histogram, stalenessMean: mean(seen.staleness), stalenessMax: Math.max(0, ...seen.staleness), knownMean: mean(seen.known), knownMax: Math.max(0, ...seen.known),
    clockStaleness: result.clockStaleness, fitSeconds: (fitEnd - t0) / 1000, totalSeconds, finalAccuracy: r.validate ? (model.evaluate(test).accuracy ?? null) : null,
    cpuMs: cpuMs(cpu0), rssMB: Math.round(process.memoryUsage().rss / 1e6),
  };
  model.dispose();
  await nc.close();
  print({ result: reply });
}

async function runCompute(r: ComputeRequest): Promise<void> {
  const { train } = await loadMnist(r.dir);
  const data = take(train, r.rows);
  const kernels = await Kernels.load({ shared: true });
  const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: r.hidden, outputs: 10, seed: 1 }, { kernels });
  print({ ready: true });
  await go();
  const options = { batchSize: r.batch, portion: Math.min(r.batch, 64), threads: 1, learningRate: 0.05, momentum: 0.9 };
  await model.fit(take(data, Math.min(r.rows, 20 * r.batch)), { ...options, epochs: 1 }); // warm-up
  // The best of 3 epochs: the machine may be busy with other work.
  let best = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    await model.fit(data, { ...options, epochs: 1 });
    best = Math.min(best, performance.now() - t0);
  }
  const batches = Math.ceil(r.rows / r.batch);
  model.dispose();
  print({ result: { msPerBatch: best / batches, batches } satisfies ComputeReply });
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? "") as PsChildRequest;
  switch (request.role) {
    case "bulk-shard":
      return runBulkShard(request);
    case "bulk-client":
      return runBulkClient(request);
    case "raw-server":
      return runRawServer(request);
    case "raw-client":
      return runRawClient(request);
    case "downpour-shard":
      return runDownpourShard(request);
    case "downpour-task":
      return runDownpourTask(request);
    case "compute":
      return runCompute(request);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`ps-child: ${error instanceof Error ? (error.stack ?? error.message) : JSON.stringify(error)}\n`);
      process.exit(1);
    },
  );
}
