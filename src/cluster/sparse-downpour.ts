// Downpour SGD for sparse-input models whose first layer is larger than a worker (issue 12): the first layer's
// rows are keys on S shards (sparse-shard.ts, Adagrad per row, grown lazily), the dense tail (b0, w1, b1, ...)
// is range-sharded as every dense model's parameters are (ps-shard.ts). Each task trains its rows portion by
// portion: it pulls only the rows of the portion's distinct features (sparse-client.ts: deduplicated, batched per
// shard, a hot-row cache bounded by `staleness` clocks) into a compact local copy (train/sparse-portion.ts), pulls
// the dense tail every nFetch portions, computes the portion's gradient and pushes the touched rows and the dense
// tail asynchronously (at most maxPushesInFlight portions unacknowledged). The worker never allocates the whole
// sparse layer. The data comes in memory or as a stream of chunks (one pass per epoch).
import type { NatsConnection } from "@nats-io/nats-core";
import { Kernels } from "../core/kernels.js";
import type { SparseDataset } from "../data/sparse.js";
import { InvalidArgumentError } from "../errors.js";
import { Network } from "../model/network.js";
import { type NetworkSpec, type ResolvedSpec, resolveSpec } from "../model/spec.js";
import { denseTail, type PortionPlan, SparsePortionStep } from "../train/sparse-portion.js";
import { type ParameterClientStats, ShardedParameterClient } from "./ps-client.js";
import { type SparseClientStats, SparseRowClient } from "./sparse-client.js";
import { type SparseShard, startSparseShard } from "./sparse-shard.js";
import { SPARSE_ROW_DEFAULTS, type SparseRowSnapshot } from "./sparse-rows.js";
import type { SnapshotStore } from "./snapshot-store.js";

/** Where a task's rows come from: a set in memory, or chunks streamed anew for every epoch. */
export type SparseSource = SparseDataset | { chunks(): AsyncIterable<SparseDataset> };

/** The job's settings every shard and task must share (its spec hash covers them). */
export interface SparseJobOptions {
  job: string;
  shards: number;
  /** The model: a spec with sparseInputs (its inputs are the sparse layer's rows). */
  spec: NetworkSpec | ResolvedSpec;
  /** Adagrad's rate on the shards, rows and dense tail alike (default 0.05). */
  learningRate?: number;
  /** Initial sparse rows are uniform in [-initScale, initScale] (default SPARSE_ROW_DEFAULTS.initScale). */
  initScale?: number;
}

/** Options of trainSparseDownpour (a task); defaults in SPARSE_DOWNPOUR_DEFAULTS. */
export interface SparseDownpourOptions extends SparseJobOptions {
  connection: NatsConnection;
  /** This task's id in [0, tasks): its worker id on the shards. */
  task: number;
  tasks: number;
  /** This task's rows (already its split). */
  data: SparseSource;
  epochs?: number;
  /** Rows per portion (one pull, one gradient, one push) (default 64). */
  portionRows?: number;
  /** Portions between pulls of the dense tail (default 1). */
  nFetch?: number;
  /** Clocks (portions) a cached sparse row may be reused (default 4; 0: pull every row every portion). */
  staleness?: number;
  /** Rows the hot-row cache holds (default 65 536). */
  cacheRows?: number;
  /** Portions pushed and not yet acknowledged while the next compute (default 8). */
  maxPushesInFlight?: number;
  /** Portions in progress at once (each waiting for its pulls while another computes; default 4). */
  lanes?: number;
  /** Kernels to compute on (default: Kernels.load({ maxBytes: memoryBytes })). */
  kernels?: Kernels;
  /** The arena's limit when the task loads its own kernels (default 256 MiB). */
  memoryBytes?: number;
  /** Called after every epoch. */
  onEpoch?: (report: SparseEpochReport) => void;
  signal?: AbortSignal;
}

export const SPARSE_DOWNPOUR_DEFAULTS = Object.freeze({
  learningRate: 0.05,
  epochs: 1,
  portionRows: 64,
  nFetch: 1,
  staleness: 4,
  cacheRows: 65_536,
  maxPushesInFlight: 8,
  lanes: 4,
  memoryBytes: 256 * 1024 * 1024,
});

/** One epoch of one task. */
export interface SparseEpochReport {
  epoch: number;
  examples: number;
  /** Mean training loss of the epoch's portions (each computed on the parameters it pulled). */
  loss: number;
  seconds: number;
}

/** What a task did. */
export interface SparseDownpourResult {
  epochs: SparseEpochReport[];
  examples: number;
  seconds: number;
  examplesPerSecond: number;
  rows: SparseClientStats;
  dense: ParameterClientStats;
  /** Body bytes pulled and pushed (rows and dense tail), per example. */
  bytesPerExample: { pulled: number; pushed: number };
  /** The size of the WebAssembly memory the task computed in at the end, in bytes. */
  wasmMemoryBytes: number;
}

/** The spec resolved and checked to have sparse inputs. */
export function sparseJobSpec(spec: NetworkSpec | ResolvedSpec): ResolvedSpec {
  const resolved = resolveSpec(spec as NetworkSpec);
  if (resolved.sparseInputs !== true) throw new InvalidArgumentError("a sparse Downpour job needs a spec with sparseInputs: true");
  return resolved;
}

/** The job's spec hash: the spec and the shards' settings (FNV-1a over their JSON). */
export function sparseSpecHash(options: SparseJobOptions): string {
  const text = JSON.stringify({ spec: sparseJobSpec(options.spec), shards: options.shards, learningRate: options.learningRate ?? SPARSE_DOWNPOUR_DEFAULTS.learningRate, initScale: options.initScale ?? SPARSE_ROW_DEFAULTS.initScale });
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `sparse-${h.toString(16).padStart(8, "0")}-${text.length}`;
}

/** Options of startSparseJobShard: the job's, which shard, and optionally where it starts from and snapshots to. */
export interface SparseJobShardOptions extends SparseJobOptions {
  shard: number;
  connection: NatsConnection;
  kernels?: Kernels;
  /** The rows to start from (this shard's row snapshot; default none: every row its initial value). */
  restore?: SparseRowSnapshot;
  /** Where the dense range's snapshots go (see ParameterShardOptions.snapshots), and whether to resume from them. */
  snapshots?: SnapshotStore;
  resume?: boolean;
}

/** Starts shard `shard` of a sparse job: its rows and its range of the dense tail (Adagrad on both). */
export async function startSparseJobShard(options: SparseJobShardOptions): Promise<SparseShard> {
  const spec = sparseJobSpec(options.spec);
  const kernels = options.kernels ?? (await Kernels.load());
  const tail = denseTail(kernels, spec);
  const learningRate = options.learningRate ?? SPARSE_DOWNPOUR_DEFAULTS.learningRate;
  return startSparseShard({
    job: options.job, shard: options.shard, shards: options.shards, connection: options.connection, features: spec.inputs, specHash: sparseSpecHash(options),
    rows: { units: spec.layers[0]!.units, seed: spec.seed, learningRate, initScale: options.initScale ?? SPARSE_ROW_DEFAULTS.initScale },
    ...(options.restore ? { restore: options.restore } : {}),
    dense: {
      init: tail.init, keys: tail.keys, segments: tail.segments, kernels, train: { optimizer: "adagrad", learningRate },
      ...(options.snapshots ? { snapshots: options.snapshots, resume: options.resume === true } : {}),
    },
  });
}

/** The clients of one task: rows and dense tail. */
interface TaskClients {
  rows: SparseRowClient;
  dense: ShardedParameterClient;
}

async function connectClients(options: SparseJobOptions & { connection: NatsConnection; cacheRows?: number }, spec: ResolvedSpec, denseKeys: number, worker: number, staleness: number): Promise<TaskClients> {
  const specHash = sparseSpecHash(options);
  const rows = await SparseRowClient.connect({
    job: options.job, shards: options.shards, features: spec.inputs, units: spec.layers[0]!.units, connection: options.connection, worker, specHash, staleness,
    cacheRows: options.cacheRows ?? SPARSE_DOWNPOUR_DEFAULTS.cacheRows,
  });
  const dense = await ShardedParameterClient.connect({ job: options.job, shards: options.shards, keys: denseKeys, connection: options.connection, specHash, worker });
  return { rows, dense };
}

/** The chunks of a source, in order. */
async function* chunksOf(source: SparseSource): AsyncIterable<SparseDataset> {
  if ("chunks" in source) yield* source.chunks();
  else yield source;
}

function positiveInt(name: string, value: number, min = 1): number {
  if (!(Number.isInteger(value) && value >= min)) throw new InvalidArgumentError(`trainSparseDownpour: ${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** Trains this task's rows against the job's shards; resolves once every push of the task was acknowledged. */
export async function trainSparseDownpour(options: SparseDownpourOptions): Promise<SparseDownpourResult> {
  const d = SPARSE_DOWNPOUR_DEFAULTS;
  const spec = sparseJobSpec(options.spec);
  const tasks = positiveInt("tasks", options.tasks);
  if (!(Number.isInteger(options.task) && options.task >= 0 && options.task < tasks)) throw new InvalidArgumentError(`trainSparseDownpour: task must be an integer in [0, ${tasks}), got ${options.task}`);
  const epochs = positiveInt("epochs", options.epochs ?? d.epochs);
  const portionRows = positiveInt("portionRows", options.portionRows ?? d.portionRows);
  const nFetch = positiveInt("nFetch", options.nFetch ?? d.nFetch);
  const maxInFlight = positiveInt("maxPushesInFlight", options.maxPushesInFlight ?? d.maxPushesInFlight);
  const staleness = positiveInt("staleness", options.staleness ?? d.staleness, 0);
  const lanes = positiveInt("lanes", options.lanes ?? d.lanes);
  const kernels = options.kernels ?? (await Kernels.load({ maxBytes: options.memoryBytes ?? d.memoryBytes }));
  const step = SparsePortionStep.create(kernels, spec, { rows: portionRows });
  const clients = await connectClients(options, spec, step.denseKeys, options.task, staleness);
  const started = performance.now();
  const reports: SparseEpochReport[] = [];
  try {
    const loop = new PortionLoop(step, clients, { nFetch, maxInFlight, lanes });
    for (let epoch = 0; epoch < epochs && !options.signal?.aborted; epoch++) {
      const t0 = performance.now();
      const { examples, loss } = await loop.epoch(options.data, options.signal);
      const report = { epoch, examples, loss: examples > 0 ? loss / examples : Number.NaN, seconds: (performance.now() - t0) / 1000 };
      reports.push(report);
      options.onEpoch?.(report);
    }
    await loop.drain();
  } finally {
    step.dispose();
    await clients.dense.close();
  }
  return result(reports, (performance.now() - started) / 1000, clients, kernels);
}

function result(epochs: SparseEpochReport[], seconds: number, clients: TaskClients, kernels: Kernels): SparseDownpourResult {
  const examples = epochs.reduce((n, e) => n + e.examples, 0);
  const rows = clients.rows.stats;
  const dense = clients.dense.stats;
  const per = (bytes: number) => (examples > 0 ? bytes / examples : 0);
  return {
    epochs, examples, seconds, examplesPerSecond: seconds > 0 ? examples / seconds : 0, rows, dense,
    bytesPerExample: { pulled: per(rows.bytesIn + dense.bytesIn), pushed: per(rows.bytesOut + dense.bytesOut) },
    wasmMemoryBytes: kernels.core.memory.buffer.byteLength,
  };
}

/**
 * Runs `portion` over every portion of the source's chunks, `lanes` at a time: each lane plans the next portion
 * (its keys, without touching the step) and awaits `portion`, which loads it on the shared step once its rows are
 * in; one lane waits for the shards while another computes.
 */
async function eachPortion(
  step: SparsePortionStep,
  source: SparseSource,
  lanes: number,
  signal: AbortSignal | undefined,
  portion: (chunk: SparseDataset, plan: PortionPlan, lane: number) => Promise<void>,
): Promise<void> {
  for await (const chunk of chunksOf(source)) {
    let next = 0;
    const run = async (lane: number) => {
      while (next < chunk.size && !signal?.aborted) {
        const plan = step.plan(chunk, next);
        next = plan.start + plan.count;
        await portion(chunk, plan, lane);
      }
    };
    await Promise.all(Array.from({ length: lanes }, (_, lane) => run(lane)));
  }
}

/**
 * A task's portions, `lanes` at a time: each lane pulls its portion's rows (and every nFetch portions the dense
 * tail), then computes on the one shared compact step (synchronously, so lanes never interleave inside it) and
 * hands its pushes over; pushes overlap everything, at most maxInFlight unacknowledged. While one lane waits for
 * the shards another computes, so a task is not bound by round trips.
 */
class PortionLoop {
  private readonly inFlight: Promise<void>[] = [];

  constructor(
    private readonly step: SparsePortionStep,
    private readonly clients: TaskClients,
    private readonly settings: { nFetch: number; maxInFlight: number; lanes: number },
  ) {}

  async epoch(source: SparseSource, signal: AbortSignal | undefined): Promise<{ examples: number; loss: number }> {
    const total = { examples: 0, loss: 0 };
    const lanes = Array.from({ length: this.settings.lanes }, () => ({ portions: 0, dense: new Float32Array(this.step.denseKeys) }));
    await eachPortion(this.step, source, this.settings.lanes, signal, async (chunk, plan, lane) => {
      // Awaited first: `total.loss += await ...` would read total.loss before another lane added to it.
      const loss = await this.portion(chunk, plan, lanes[lane]!);
      total.loss += loss;
      total.examples += plan.count;
    });
    return total;
  }

  // One portion: its rows (and every nFetch the dense tail) pulled, the gradient, the pushes handed over.
  private async portion(chunk: SparseDataset, plan: PortionPlan, lane: { portions: number; dense: Float32Array }): Promise<number> {
    const { step, clients } = this;
    const { keys } = plan;
    const rows = new Float32Array(keys.length * step.units);
    const pulls: Promise<unknown>[] = [clients.rows.pull(keys, rows)];
    if (lane.portions++ % this.settings.nFetch === 0) pulls.push(clients.dense.pull(lane.dense));
    await Promise.all(pulls);
    step.loadPlan(chunk, plan);
    step.rowsView().set(rows);
    step.denseView().set(lane.dense);
    const loss = step.train();
    clients.rows.tick();
    // Both pushes copy what they send before returning, so the step's live gradient views go as they are.
    await this.handOver(Promise.all([clients.rows.push(keys, step.rowGradients()), clients.dense.push(step.denseGradients())]).then(() => undefined));
    return loss;
  }

  private async handOver(push: Promise<void>): Promise<void> {
    push.catch(() => {});
    this.inFlight.push(push);
    while (this.inFlight.length > this.settings.maxInFlight) await this.inFlight.shift();
  }

  /** Waits for every push handed over. */
  async drain(): Promise<void> {
    while (this.inFlight.length > 0) await this.inFlight.shift();
  }
}

/** Options of evaluateSparseDownpour. */
export interface SparseEvaluateOptions extends SparseJobOptions {
  connection: NatsConnection;
  data: SparseSource;
  /** The worker id the evaluation's pulls carry (default 2^32 - 1). */
  worker?: number;
  portionRows?: number;
  kernels?: Kernels;
  memoryBytes?: number;
}

/** Held-out figures of a sparse job's current parameters. */
export interface SparseEvaluation {
  examples: number;
  /** Mean loss (the spec's cost: log-loss for a sigmoid output). */
  loss: number;
  /** One sigmoid output: the share of rows with (p >= 0.5) === (y >= 0.5). */
  accuracy: number | undefined;
}

/** The job's loss over `data` on the shards' current parameters (fresh rows: no cache). */
export async function evaluateSparseDownpour(options: SparseEvaluateOptions): Promise<SparseEvaluation> {
  const spec = sparseJobSpec(options.spec);
  const kernels = options.kernels ?? (await Kernels.load({ maxBytes: options.memoryBytes ?? SPARSE_DOWNPOUR_DEFAULTS.memoryBytes }));
  const step = SparsePortionStep.create(kernels, spec, { rows: options.portionRows ?? 256 });
  const clients = await connectClients(options, spec, step.denseKeys, options.worker ?? 0xffffffff, 0);
  try {
    const dense = new Float32Array(step.denseKeys);
    await clients.dense.pull(dense);
    let examples = 0;
    let loss = 0;
    let correct = 0;
    await eachPortion(step, options.data, SPARSE_DOWNPOUR_DEFAULTS.lanes, undefined, async (chunk, plan) => {
      const rows = new Float32Array(plan.keys.length * step.units);
      await clients.rows.pull(plan.keys, rows);
      step.loadPlan(chunk, plan);
      step.rowsView().set(rows);
      step.denseView().set(dense);
      loss += step.loss();
      if (step.outputs === 1) correct += agreements(step.predictions(), chunk.y.subarray(plan.start, plan.start + plan.count));
      examples += plan.count;
    });
    return { examples, loss: loss / Math.max(1, examples), accuracy: step.outputs === 1 ? correct / Math.max(1, examples) : undefined };
  } finally {
    step.dispose();
    await clients.dense.close();
  }
}

/** Options of sparseNetworkFromShards. */
export interface SparseNetworkOptions extends SparseJobOptions {
  connection: NatsConnection;
  /** The worker id the pulls carry (default 2^32 - 2). */
  worker?: number;
  /** Where the whole network is built (its arena must hold the sparse layer: features x units floats). */
  kernels: Kernels;
  /** Rows per pull (default 65 536). */
  rowsPerPull?: number;
}

/**
 * The job's whole network as the shards hold it now: every row of the sparse layer (an unpushed row is its initial
 * value) and the dense tail, in a Network of `kernels` (MemoryLimitError, before anything is pulled, when the arena
 * cannot hold it). For layers that fit one machine: to save, evaluate or export a model trained over shards.
 */
export async function sparseNetworkFromShards(options: SparseNetworkOptions): Promise<Network> {
  const spec = sparseJobSpec(options.spec);
  const network = Network.create(options.kernels, spec);
  const units = spec.layers[0]!.units;
  const step = Math.max(1, options.rowsPerPull ?? 65_536);
  try {
    const clients = await connectClients(options, spec, denseTail(options.kernels, spec).keys, options.worker ?? 0xfffffffe, 0);
    try {
      const offset = (network.bias(0).ptr - network.params.block.ptr) / 4;
      const dense = new Float32Array(network.params.block.length - offset);
      await clients.dense.pull(dense);
      network.params.block.f32().set(dense, offset);
      for (let begin = 0; begin < spec.inputs; begin += step) {
        const keys = Int32Array.from({ length: Math.min(step, spec.inputs - begin) }, (_, i) => begin + i);
        const rows = new Float32Array(keys.length * units);
        await clients.rows.pull(keys, rows);
        network.weights(0).f32().set(rows, begin * units);
      }
    } finally {
      await clients.dense.close();
    }
    return network;
  } catch (error) {
    network.dispose();
    throw error;
  }
}

function agreements(p: Float32Array, y: Float32Array): number {
  let n = 0;
  for (let i = 0; i < y.length; i++) if (p[i]! >= 0.5 === y[i]! >= 0.5) n++;
  return n;
}
