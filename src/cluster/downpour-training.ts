// Downpour SGD (DistBelief): the parameters live on S parameter-server shards; each task of the job (one per data
// split) trains its split with its worker threads in async mode, each thread pulling fresh parameters every nFetch
// portions and pushing its accumulated gradient every nPush portions. Consistency per job: "async" (no worker waits
// for another), "ssp" (Ho et al. 2013: a worker at clock c, its pushes so far, reads only once every worker has
// pushed c - s times; it computes at most one portion push beyond a pending read) or "bsp" (ssp with s = 0). The tasks
// join as BSP peers (for deterministic indices and the spec check), then meet once more at the end so that task 0
// pulls the final parameters after every push of every task was applied.
import type { NatsConnection } from "@nats-io/nats-core";
import type { Model } from "../api/models.js";
import type { Dataset } from "../data/dataset.js";
import { InvalidArgumentError } from "../errors.js";
import type { TrainOptions } from "../train/options.js";
import type { KeyRange, ParameterClient, PullInfo, PushInfo } from "../train/exchange.js";
import type { EpochReport, TrainerHooks } from "../train/trainer.js";
import { BspPeer } from "./bsp.js";
import { type SplitMode, splitDataset } from "./partition.js";
import { peerSpecHash, type PeerBspOptions } from "./peer-training.js";
import { type ParameterClientOptions, type ParameterClientStats, ShardedParameterClient, type ShardVersion } from "./ps-client.js";
import { StalenessHistogram, type StalenessSummary } from "./staleness.js";
import { networkSegments, ParameterShard, type ParameterShardOptions, type ShardOptimizerOptions } from "./ps-shard.js";

/** Worker threads a task may have: task t's thread w pushes as worker t * WORKERS_PER_TASK + w. */
export const WORKERS_PER_TASK = 1024;

/** How the workers' reads relate to the other workers' pushes. */
export type Consistency = "async" | "ssp" | "bsp";
export const CONSISTENCIES: readonly Consistency[] = ["async", "ssp", "bsp"];

/** Options of trainDownpour. Defaults are in DOWNPOUR_DEFAULTS (and TRAIN_DEFAULTS). */
export interface DownpourOptions {
  job: string;
  /** Tasks (data splits) of the job; each runs its own worker threads. */
  tasks: number;
  /** Parameter-server shards serving the job (started with startDownpourShard). */
  shards: number;
  connection: NatsConnection;
  /** This task's name and explicit index (default: by name order, as BSP peers). */
  name?: string;
  index?: number;
  /** The model, built identically on every task and shard (same kind, spec and seed). */
  model: Model;
  /** The whole training set; this task trains its split. */
  data: Dataset;
  split?: SplitMode;
  /** Training options over the model's defaults; `mode` must be "async" (the default here). */
  train?: TrainOptions;
  /** Portions between a worker's pulls, and portions whose gradients it sums before a push (default 1 and 1). */
  nFetch?: number;
  nPush?: number;
  /** At most this many pushes of a worker thread unapplied while it computes (flow control; see
   *  ParameterOptions.maxPushesInFlight; default 1: a worker computes its next push while one is in flight). On MNIST
   *  (2 tasks, 1 shard, Adagrad) 1 trained faster per epoch and to a better accuracy than unbounded pushes, whose
   *  staleness grew; SGD at lr 0.3 diverged unbounded and trained with 1. */
  maxPushesInFlight?: number;
  /** DistBelief's warm start: task 0 trains this many mini-batches alone against the shards before the others begin
   *  (default 0). */
  warmStart?: number;
  /** "async" (default), "ssp" or "bsp" (ssp with staleness 0); see the file's comment. */
  consistency?: Consistency;
  /** ssp: the staleness bound s, in clocks (pushes) (default 4; bsp uses 0, async none). */
  staleness?: number;
  /** ssp and bsp: the job's worker threads over all tasks (default tasks x this task's threads, at least 1 each). */
  workers?: number;
  /** ssp and bsp: how long a read may wait for the slowest worker before the task fails naming it, in ms
   *  (default 60 000). */
  readWaitMs?: number;
  hooks?: Pick<TrainerHooks, "validation" | "onProgress" | "signal"> & { onEpoch?: (report: EpochReport) => void | Promise<void> };
  /** Further client options (timeouts, attempts). */
  client?: Pick<ParameterClientOptions, "requestTimeoutMs" | "attempts" | "connectTimeoutMs" | "faults" | "shardWaitMs" | "outageMs" | "onError">;
  bsp?: PeerBspOptions;
}

/** The default of every optional DownpourOptions field trainDownpour resolves itself. */
export const DOWNPOUR_DEFAULTS = Object.freeze({
  split: "modulo" as SplitMode,
  nFetch: 1,
  nPush: 1,
  warmStart: 0,
  consistency: "async" as Consistency,
  staleness: 4,
  readWaitMs: 60_000,
  maxPushesInFlight: 1,
});

/** What one task's training gives. */
export interface DownpourResult {
  reports: EpochReport[];
  task: { index: number; name: string };
  /** The client's counters and the shards' versions as this task last saw them. */
  client: ParameterClientStats;
  versions: ShardVersion[];
  /** At every push: how many updates the shards had applied beyond the parameters this task last pulled. */
  staleness: StalenessSummary;
  /** ssp and bsp, at every worker's read: its clock minus the lowest clock of the workers not idle when the shards
   *  read the values (never above the bound s: 0 for bsp). No samples in async mode. */
  clockStaleness: StalenessSummary;
  /** The job's consistency and the bound its reads kept (undefined for async). */
  consistency: Consistency;
  bound: number | undefined;
  /** The trained model (options.model), holding the shards' final parameters. */
  model: Model;
  specHash: string;
}

/** The DownpourOptions fields every task and shard must agree on. */
export type JobKey = "tasks" | "shards" | "split" | "nFetch" | "nPush" | "warmStart" | "consistency" | "staleness";

/** The consistency and staleness bound of a job, checked (InvalidArgumentError naming the field). */
export function readBound(options: Pick<DownpourOptions, "consistency" | "staleness">): { consistency: Consistency; bound: number | undefined } {
  const consistency = options.consistency ?? DOWNPOUR_DEFAULTS.consistency;
  if (!CONSISTENCIES.includes(consistency)) throw new InvalidArgumentError(`trainDownpour: consistency must be one of ${CONSISTENCIES.join(", ")}, got ${JSON.stringify(consistency)}`);
  if (consistency !== "ssp" && options.staleness !== undefined) throw new InvalidArgumentError(`trainDownpour: staleness applies to consistency "ssp" only (got it with ${JSON.stringify(consistency)})`);
  const staleness = options.staleness ?? DOWNPOUR_DEFAULTS.staleness;
  if (!Number.isSafeInteger(staleness) || staleness < 0) throw new InvalidArgumentError(`trainDownpour: staleness must be an integer >= 0 (clocks), got ${String(options.staleness)}`);
  return { consistency, bound: consistency === "async" ? undefined : consistency === "bsp" ? 0 : staleness };
}

/** The job's fields every task and shard must agree on (the spec hash covers them). */
export function jobFields(options: Pick<DownpourOptions, JobKey>, train: TrainOptions): Record<string, unknown> {
  return {
    ...train,
    mode: "async",
    tasks: options.tasks,
    shards: options.shards,
    split: options.split ?? DOWNPOUR_DEFAULTS.split,
    nFetch: options.nFetch ?? DOWNPOUR_DEFAULTS.nFetch,
    nPush: options.nPush ?? DOWNPOUR_DEFAULTS.nPush,
    warmStart: options.warmStart ?? DOWNPOUR_DEFAULTS.warmStart,
    // Absent for async jobs, so their hash is unchanged.
    ...(readBound(options).bound === undefined ? {} : { consistency: readBound(options).consistency, staleness: readBound(options).bound }),
  };
}

/** The job's view of the training options (model defaults under the caller's), checked for a Downpour job. */
export function downpourTrainOptions(model: Model, train: TrainOptions = {}): TrainOptions {
  const merged: TrainOptions = { ...model.trainDefaults, ...train, mode: train.mode ?? "async" };
  if (merged.mode !== "async") throw new InvalidArgumentError(`trainDownpour: train.mode must be "async" (workers push to the shards), got ${JSON.stringify(merged.mode)}`);
  return merged;
}

/** The spec hash of a Downpour job: the model, its initial weights, the data's shape and the job's options. */
export function downpourSpecHash(
  model: Model,
  data: Dataset,
  options: Pick<DownpourOptions, JobKey | "train">,
): string {
  return peerSpecHash(model, data, jobFields(options, downpourTrainOptions(model, options.train)));
}

/** A task's client, with each of its threads pushing as a worker id unique in the job, and sequence numbers that
 *  go on rising across fit() calls (each trainer counts its pushes from 1 again). */
export class TaskClient implements ParameterClient {
  #base = 0;
  #top = 0;
  /** Sampled at every push: updates the shards applied beyond what this task last pulled. */
  readonly staleness = new StalenessHistogram();
  /** Sampled at every bounded read: the reader's clock minus the lowest clock of the active workers at read time. */
  readonly clockStaleness = new StalenessHistogram();
  /** Per thread: pushes made so far (its clock), over every fit(). */
  readonly #clocks: number[] = [];

  constructor(
    private readonly inner: ShardedParameterClient,
    private readonly task: number,
    /** The read condition's bound and worker count (bound undefined: async). */
    private readonly read: { bound: number | undefined; workers: number; waitMs: number },
  ) {}

  /** Before another fit(): its sequence numbers follow every one used so far. */
  nextRun(): void {
    this.#base += this.#top;
    this.#top = 0;
  }

  get keys(): number {
    return this.inner.keys;
  }

  push(grads: Float32Array, range?: KeyRange, from?: PushInfo): Promise<number> {
    if (from && from.worker >= WORKERS_PER_TASK) return Promise.reject(new InvalidArgumentError(`a task has at most ${WORKERS_PER_TASK} worker threads`));
    if (from) {
      this.#top = Math.max(this.#top, from.seq);
      this.#clocks[from.worker] = (this.#clocks[from.worker] ?? 0) + 1;
    }
    this.staleness.record(this.inner.staleness(range));
    return this.inner.push(grads, range, from ? { worker: this.task * WORKERS_PER_TASK + from.worker, seq: this.#base + from.seq } : undefined);
  }

  pull(into: Float32Array, range?: KeyRange, from?: PullInfo): Promise<number> {
    const { bound, workers, waitMs } = this.read;
    if (bound === undefined || from === undefined) return this.inner.pull(into, range);
    const clock = this.#clocks[from.worker] ?? 0;
    return this.inner.read(into, range, { minClock: clock - bound, workers, waitMs }).then((result) => {
      if (result.clock !== undefined) this.clockStaleness.record(clock - result.clock);
      return result.version;
    });
  }

  /** This task's threads push nothing more for now: their clocks hold no other reader back until they push again. */
  pause(): Promise<void> {
    if (this.read.bound === undefined) return Promise.resolve();
    const ids = this.#clocks.flatMap((_, w) => [this.task * WORKERS_PER_TASK + w]);
    return ids.length ? this.inner.idle(ids) : Promise.resolve();
  }
}

/** A task's connection to the job's shards: its own pushes (without PushInfo) as the last worker id of its range. */
export function connectTaskClient(
  options: Pick<DownpourOptions, "client" | "job" | "shards" | "model" | "connection">,
  specHash: string,
  task: { index: number; name: string },
  what = "",
): Promise<ShardedParameterClient> {
  return ShardedParameterClient.connect({
    ...options.client,
    job: options.job,
    shards: options.shards,
    keys: options.model.network.params.block.length,
    connection: options.connection,
    specHash,
    worker: task.index * WORKERS_PER_TASK + WORKERS_PER_TASK - 1,
    name: `task ${task.index} (${task.name})${what}`,
    // A job going on from restored shards numbers its pushes above what their duplicate windows hold.
    continueSequences: true,
  });
}

/**
 * Trains `options.model` as one task of a Downpour job: joins the job (refused by name when another task has other
 * options), connects to the shards, fits its split in async mode against them, then waits for every task to finish
 * and pulls the final parameters into the model. Resolves with this task's reports; rejects with the join's, the
 * client's (ParameterServerError naming the shard) or the fit's errors. Trains the model in place; writes no file.
 */
export async function trainDownpour(options: DownpourOptions): Promise<DownpourResult> {
  const { model, data, tasks } = options;
  if (!Number.isInteger(options.shards) || options.shards < 1) throw new InvalidArgumentError(`trainDownpour: shards must be a positive integer, got ${String(options.shards)}`);
  const warmStart = options.warmStart ?? DOWNPOUR_DEFAULTS.warmStart;
  if (!Number.isInteger(warmStart) || warmStart < 0) throw new InvalidArgumentError(`trainDownpour: warmStart must be an integer >= 0 (mini-batches), got ${String(warmStart)}`);
  const train = downpourTrainOptions(model, options.train);
  const { consistency, bound } = readBound(options);
  const workers = options.workers ?? tasks * Math.max(1, train.threads ?? 1);
  if (!Number.isInteger(workers) || workers < 1) throw new InvalidArgumentError(`trainDownpour: workers must be a positive integer (threads over all tasks), got ${String(options.workers)}`);
  const readWaitMs = options.readWaitMs ?? DOWNPOUR_DEFAULTS.readWaitMs;
  if (!(readWaitMs > 0)) throw new InvalidArgumentError(`trainDownpour: readWaitMs must be a positive number, got ${String(options.readWaitMs)}`);
  const specHash = downpourSpecHash(model, data, options);
  const bsp = await BspPeer.join({ ...options.bsp, job: options.job, peers: tasks, connection: options.connection, name: options.name, index: options.index, specHash });
  try {
    const inner = await connectTaskClient(options, specHash, bsp);
    try {
      const part = splitDataset(data, tasks, bsp.index, options.split ?? DOWNPOUR_DEFAULTS.split);
      const onEpoch = async (report: EpochReport) => {
        inner.epoch = report.epoch;
        await options.hooks?.onEpoch?.(report);
      };
      const client = new TaskClient(inner, bsp.index, { bound, workers, waitMs: readWaitMs });
      const parameters = {
        client,
        nFetch: options.nFetch ?? DOWNPOUR_DEFAULTS.nFetch,
        nPush: options.nPush ?? DOWNPOUR_DEFAULTS.nPush,
        waitForReads: bound !== undefined,
        maxPushesInFlight: options.maxPushesInFlight ?? DOWNPOUR_DEFAULTS.maxPushesInFlight,
      };
      if (warmStart > 0) {
        // Task 0 alone first (its warm-up is not reported); the others wait at the barrier, then pull its parameters.
        if (bsp.index === 0) await model.fit(part, { ...train, epochs: 1, maxIterations: warmStart, signal: options.hooks?.signal, parameters });
        await client.pause();
        await bsp.sync();
        client.nextRun();
      }
      const reports = await model.fit(part, { ...train, ...options.hooks, onEpoch, parameters });
      await client.pause(); // no more pushes from this task: readers of the others no longer wait for its clocks
      await bsp.sync(); // every task's pushes are acknowledged: the shards hold the job's final parameters
      await inner.pull(model.network.params.block.f32());
      return {
        reports,
        task: { index: bsp.index, name: bsp.name },
        client: inner.stats,
        versions: inner.versions(),
        staleness: client.staleness.summary(),
        clockStaleness: client.clockStaleness.summary(),
        consistency,
        bound,
        model,
        specHash,
      };
    } finally {
      await inner.close();
    }
  } finally {
    await bsp.close();
  }
}

/** The shard's optimizer from the job's training options. */
function shardOptimizer(train: TrainOptions): ShardOptimizerOptions {
  const { optimizer, learningRate, learningRateDecay, momentum, l2, beta1, beta2, epsilon } = train;
  return { optimizer, learningRate, learningRateDecay, momentum, l2, beta1, beta2, epsilon };
}

/** Options of startDownpourShard: the job as its tasks see it, and which shard this is. */
export interface DownpourShardOptions
  extends Pick<DownpourOptions, "job" | "tasks" | "shards" | "model" | "data" | "split" | "nFetch" | "nPush" | "warmStart" | "consistency" | "staleness" | "train">,
    Pick<ParameterShardOptions, "onError" | "snapshots" | "snapshotEveryUpdates" | "snapshotEveryMs" | "resume" | "durability"> {
  shard: number;
  connection: NatsConnection;
}

/** Starts shard `shard` of a Downpour job with the model's initial parameters and the job's optimizer; the caller closes it. */
export function startDownpourShard(options: DownpourShardOptions): Promise<ParameterShard> {
  const train = downpourTrainOptions(options.model, options.train);
  const network = options.model.network;
  return ParameterShard.start({
    job: options.job,
    shard: options.shard,
    shards: options.shards,
    connection: options.connection,
    init: network.params.block.toArray(),
    segments: networkSegments(network),
    train: shardOptimizer(train),
    specHash: downpourSpecHash(options.model, options.data, options),
    onError: options.onError,
    snapshots: options.snapshots,
    snapshotEveryUpdates: options.snapshotEveryUpdates,
    snapshotEveryMs: options.snapshotEveryMs,
    resume: options.resume,
    durability: options.durability,
  });
}
