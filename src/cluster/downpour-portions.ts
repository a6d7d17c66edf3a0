// Downpour SGD with portions across processes (issue 9): instead of fitting a fixed split, every task holds the whole
// training set and takes "units" (blocks of unitRows rows of the epoch's seeded order; the same rows on every task)
// from the job's portion queue, served by task 0 (portion-queue.ts): lease, train, complete, until the epoch is
// done, so faster tasks train more units; near an epoch's end an idle task trains a backup copy of a unit another
// task still holds. Each unit is one fit() in async mode on the calling thread whose pushes go to the shards as
// worker id unitWorker(epoch, unit) with the fit's own sequence numbers 1, 2, ...: a backup's pushes of the same
// (unit, step) are the same (worker, seq), so the shards apply whichever arrives first and drop the other (their
// per-worker dedupe): the first result counts, never applied twice. `fixed` runs the fixed-equal-splits baseline
// (task t trains units u % tasks == t, no backups) over the same queue and per-unit fits.
import { seededPermutation, selectRows } from "../data/dataset.js";
import { InvalidArgumentError } from "../errors.js";
import type { KeyRange, ParameterClient, PullInfo, PushInfo } from "../train/exchange.js";
import { resolveTrainOptions, type TrainOptions } from "../train/options.js";
import type { EpochReport } from "../train/trainer.js";
import { describeValue } from "../util/describe.js";
import { BspPeer } from "./bsp.js";
import { connectTaskClient, DOWNPOUR_DEFAULTS, type DownpourOptions, type DownpourResult, downpourSpecHash, downpourTrainOptions, jobFields, readBound } from "./downpour-training.js";
import { peerSpecHash } from "./peer-training.js";
import {
  type EpochSummary,
  type PortionCounters,
  PortionQueueClient,
  PortionQueueError,
  PortionQueueServer,
  PORTION_QUEUE_DEFAULTS,
} from "./portion-queue.js";
import type { ShardedParameterClient } from "./ps-client.js";
import { StalenessHistogram } from "./staleness.js";

/** Options of the portions. Defaults are in PORTION_DEFAULTS. */
export interface PortionOptions {
  /** Rows per unit (default unitBatches x train.batchSize). Part of the job's spec. */
  unitRows?: number;
  /** Backup copies of units still out near an epoch's end (default true). Part of the job's spec. */
  backups?: boolean;
  /** The fixed-equal-splits baseline: task t trains units u % tasks == t, no backups (default false). Part of the spec. */
  fixed?: boolean;
  /** A lease held longer than this returns its unit to the queue, in ms (default 60 000). Part of the spec. */
  leaseMs?: number;
  /** A test and benchmark hook, this task's own: after each unit, wait (slowdown - 1) x the unit's fit time before
   *  completing it (a machine `slowdown` times slower; default 1). */
  slowdown?: number;
  /** How long a task told "wait" waits before asking again, in ms (default 5). */
  pollMs?: number;
}

/** The default of every optional PortionOptions field. */
export const PORTION_DEFAULTS = Object.freeze({
  /** unitRows = unitBatches x batchSize when unitRows is not given. */
  unitBatches: 8,
  backups: true,
  fixed: false,
  leaseMs: PORTION_QUEUE_DEFAULTS.leaseMs,
  slowdown: 1,
  pollMs: 5,
});

/** Options of trainDownpourPortions: trainDownpour's (consistency "async" only, no warm start) and the portions'. */
export interface DownpourPortionsOptions extends Omit<DownpourOptions, "split"> {
  portions?: PortionOptions;
}

/** An epoch as the job saw it (loss and samples over the first completion of every unit; seconds from its first
 *  lease to its last completion), with this task's share. */
export interface PortionEpochReport extends EpochReport {
  /** Units this task trained in the epoch (backups included) and those of them that counted (first completions). */
  unitsTrained: number;
  unitsFirst: number;
  /** This task's wall time in the epoch (from its first lease to being told the epoch is done). */
  taskSeconds: number;
}

/** What trainDownpourPortions gives: trainDownpour's result and the portions'. */
export interface DownpourPortionsResult extends Omit<DownpourResult, "reports" | "clockStaleness" | "bound"> {
  reports: PortionEpochReport[];
  /** The queue's counters at the end (every task's completions in), as task 0 served them. */
  queue: PortionCounters;
  /** This task over every epoch: units trained (backups included), backups among them, first completions. */
  units: { trained: number; backups: number; first: number };
  /** Units per epoch and rows per unit. */
  unitsPerEpoch: number;
  unitRows: number;
  /** Mean ms per unit of this task's fit() calls (LocalTrainer set-up, the start and end pulls and the training). */
  msPerUnit: number;
  /** Pushes this task made, and how many the shards acknowledged as already applied (a backup's, or the loser's). */
  pushes: number;
  dedupedPushes: number;
  /** Task 0 only: tasks that never reported their end (they died; their units were trained by the others). */
  missingTasks?: number[];
}

/** Worker ids of units start here; task threads (trainDownpour) use ids below 2^31. */
export const UNIT_WORKER_BASE = 2 ** 31;

/**
 * The worker id every push of unit `unit` of `epoch` carries: 2^31 + epoch x unitsPerEpoch + unit, below 2^32 (the
 * shards' worker ids are uint32). Throws InvalidArgumentError when the job's epochs x units do not fit.
 */
export function unitWorker(epoch: number, unitsPerEpoch: number, unit: number): number {
  const id = UNIT_WORKER_BASE + epoch * unitsPerEpoch + unit;
  if (!Number.isSafeInteger(id) || id > 0xffffffff) {
    throw new InvalidArgumentError(`unit worker id of epoch ${epoch}, unit ${unit} (${unitsPerEpoch} units per epoch) is past 2^32: use fewer epochs or larger units`);
  }
  return id;
}

/** The rows of epoch `epoch` in training order: a permutation seeded by the job's seed and the epoch (identity
 *  without shuffle). The same on every task. */
export function epochOrder(rows: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  if (!shuffle) return Int32Array.from({ length: rows }, (_, i) => i);
  return seededPermutation(rows, (Math.imul(seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) | 0);
}

/** A unit's client: pushes as the unit's worker id with the fit's own sequence numbers. */
class UnitClient implements ParameterClient {
  worker = 0;
  /** Pushes of the current unit, and over every unit. */
  pushes = 0;
  total = 0;
  readonly staleness = new StalenessHistogram();

  constructor(private readonly inner: ShardedParameterClient) {}

  get keys(): number {
    return this.inner.keys;
  }

  push(grads: Float32Array, range?: KeyRange, from?: PushInfo): Promise<number> {
    this.pushes++;
    this.total++;
    this.staleness.record(this.inner.staleness(range));
    return this.inner.push(grads, range, { worker: this.worker, seq: from?.seq ?? this.pushes });
  }

  /** A worker's fetch from the shards (units train with pullAtEpochEnd false: the next unit fetches its own). */
  pull(into: Float32Array, range?: KeyRange, _from?: PullInfo): Promise<number> {
    return this.inner.pull(into, range);
  }

  /** The shards' current parameters into `into` (the model's block). */
  pullModel(into: Float32Array): Promise<number> {
    return this.inner.pull(into);
  }
}

/** The checked options and what follows from them. */
interface Plan {
  train: TrainOptions;
  epochs: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
  unitRows: number;
  units: number;
  backups: boolean;
  fixed: boolean;
  leaseMs: number;
  slowdown: number;
  pollMs: number;
  nFetch: number;
  nPush: number;
  maxPushesInFlight: number;
}

/** Checks the options (InvalidArgumentError naming the field) and resolves the defaults. */
function planOf(options: DownpourPortionsOptions): Plan {
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new InvalidArgumentError(`trainDownpourPortions: ${field} must be ${expected}, got ${describeValue(value)}`);
  };
  const { consistency } = readBound(options);
  if (consistency !== "async") bad("consistency", '"async" (portions are not read under a staleness bound; use trainDownpour for ssp and bsp)', consistency);
  if ((options.warmStart ?? 0) !== 0) bad("warmStart", "0 (no warm start with portions)", options.warmStart);
  if ((options as { split?: unknown }).split !== undefined) bad("split", "absent (every task holds the whole data set; units replace splits)", (options as { split?: unknown }).split);
  if (!Number.isInteger(options.shards) || options.shards < 1) bad("shards", "a positive integer", options.shards);
  const train = downpourTrainOptions(options.model, options.train);
  for (const field of ["maxIterations", "convergence", "patience"] as const) {
    if (train[field] !== undefined) bad(`train.${field}`, "absent (not supported with portions)", train[field]);
  }
  if (train.threads !== undefined && train.threads !== 0 && train.threads !== 1) {
    bad("train.threads", "0 or 1 (each unit runs on one thread, so that its pushes are numbered 1, 2, ... as one worker's)", train.threads);
  }
  const resolved = resolveTrainOptions({ ...train, threads: 0 }, 1);
  const p = options.portions ?? {};
  const unitRows = p.unitRows ?? PORTION_DEFAULTS.unitBatches * resolved.batchSize;
  if (!Number.isInteger(unitRows) || unitRows < 1) bad("portions.unitRows", "a positive integer", p.unitRows);
  const slowdown = p.slowdown ?? PORTION_DEFAULTS.slowdown;
  if (!(typeof slowdown === "number" && slowdown >= 1 && Number.isFinite(slowdown))) bad("portions.slowdown", "a finite number >= 1", p.slowdown);
  const pollMs = p.pollMs ?? PORTION_DEFAULTS.pollMs;
  if (!(typeof pollMs === "number" && pollMs >= 0 && Number.isFinite(pollMs))) bad("portions.pollMs", "a number >= 0 (ms)", p.pollMs);
  const leaseMs = p.leaseMs ?? PORTION_DEFAULTS.leaseMs;
  if (!(typeof leaseMs === "number" && leaseMs > 0)) bad("portions.leaseMs", "a positive number (ms)", p.leaseMs);
  for (const field of ["backups", "fixed"] as const) if (p[field] !== undefined && typeof p[field] !== "boolean") bad(`portions.${field}`, "a boolean", p[field]);
  const units = Math.ceil(options.data.size / unitRows);
  unitWorker(resolved.epochs - 1, units, units - 1);
  return {
    train, epochs: resolved.epochs, batchSize: resolved.batchSize, seed: resolved.seed, shuffle: resolved.shuffle, unitRows, units,
    fixed: p.fixed ?? PORTION_DEFAULTS.fixed, backups: !(p.fixed ?? false) && (p.backups ?? PORTION_DEFAULTS.backups), leaseMs, slowdown, pollMs,
    nFetch: options.nFetch ?? DOWNPOUR_DEFAULTS.nFetch, nPush: options.nPush ?? DOWNPOUR_DEFAULTS.nPush,
    maxPushesInFlight: options.maxPushesInFlight ?? DOWNPOUR_DEFAULTS.maxPushesInFlight,
  };
}

/** The BSP join's hash: the shards' job fields and the portion options every task must share. */
function joinSpecHash(options: DownpourPortionsOptions, plan: Plan): string {
  const portions = { unitRows: plan.unitRows, backups: plan.backups, fixed: plan.fixed, leaseMs: plan.leaseMs };
  return peerSpecHash(options.model, options.data, { ...jobFields(options, plan.train), portions });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What one task's epochs count up, over the run. */
interface Tally {
  trained: number;
  backups: number;
  first: number;
  fitMs: number;
  iterations: number;
}

/**
 * Trains `options.model` as one task of a Downpour job with portions (see the file's comment): joins the job (the
 * spec hash covers the portion options), task 0 serves the portion queue, every task trains units until each epoch is
 * done, then all meet, pull the shards' final parameters into the model, read the queue's counters, and meet again
 * (task 0 stops the queue). The shards must run the job as startDownpourShard with these options starts them
 * (split absent). Rejects with InvalidArgumentError (options), the join's, the queue's (PortionQueueError), the
 * client's (ParameterServerError) or a unit's fit errors. Trains the model in place; writes no file.
 */
export async function trainDownpourPortions(options: DownpourPortionsOptions): Promise<DownpourPortionsResult> {
  const plan = planOf(options);
  const { model, data, tasks } = options;
  const shardSpec = downpourSpecHash(model, data, options);
  const specHash = joinSpecHash(options, plan);
  const bsp = await BspPeer.join({ ...options.bsp, job: options.job, peers: tasks, connection: options.connection, name: options.name, index: options.index, specHash });
  let server: PortionQueueServer | undefined;
  try {
    const inner = await connectTaskClient(options, shardSpec, bsp);
    try {
      if (bsp.index === 0) {
        const queue = { tasks, rows: data.size, unitRows: plan.unitRows, backups: plan.backups, fixed: plan.fixed, leaseMs: plan.leaseMs };
        server = await PortionQueueServer.start({ ...queue, job: options.job, specHash, connection: options.connection });
      }
      await bsp.sync(); // the queue serves
      const queue = new PortionQueueClient({ job: options.job, specHash, connection: options.connection, task: bsp.index, name: `task ${bsp.index} (${bsp.name})` });
      const client = new UnitClient(inner);
      const tally: Tally = { trained: 0, backups: 0, first: 0, fitMs: 0, iterations: 0 };
      const reports: PortionEpochReport[] = [];
      for (let epoch = 0; epoch < plan.epochs && !options.hooks?.signal?.aborted; epoch++) {
        inner.epoch = epoch;
        const report = await runEpoch(options, plan, epoch, queue, client, tally);
        reports.push(report);
        await options.hooks?.onEpoch?.(report);
      }
      // The end needs no barrier, so that a task that died mid-run (its leases expired and its units were trained
      // again) does not stop the others: once the last epoch is done, every unit's first result was acknowledged, so
      // the shards hold the job's parameters. Each task asks for the counters; task 0 waits (bounded) for the others'
      // requests before it stops serving.
      await inner.pull(model.network.params.block.f32());
      let counters = await queue.stats();
      const missing = server ? await server.waitForReports(tasks, plan.leaseMs) : [];
      if (server) counters = server.queue.counters();
      const stats = inner.stats;
      return {
        reports,
        task: { index: bsp.index, name: bsp.name },
        client: stats,
        versions: inner.versions(),
        staleness: client.staleness.summary(),
        consistency: "async",
        model,
        specHash,
        queue: counters,
        units: { trained: tally.trained, backups: tally.backups, first: tally.first },
        unitsPerEpoch: plan.units,
        unitRows: plan.unitRows,
        msPerUnit: tally.trained ? tally.fitMs / tally.trained : 0,
        pushes: client.total,
        dedupedPushes: stats.deduped,
        ...(server ? { missingTasks: missing } : {}),
      };
    } finally {
      await server?.close();
      await inner.close();
    }
  } finally {
    await bsp.close();
  }
}

/** One epoch of this task: lease, train, complete until the queue says the epoch is done. */
async function runEpoch(
  options: DownpourPortionsOptions,
  plan: Plan,
  epoch: number,
  queue: PortionQueueClient,
  client: UnitClient,
  tally: Tally,
): Promise<PortionEpochReport> {
  const { model, data } = options;
  const order = epochOrder(data.size, plan.seed, epoch, plan.shuffle);
  const started = performance.now();
  let trained = 0;
  let first = 0;
  let idle = 0;
  let summary: EpochSummary | undefined;
  let waitingSince: number | undefined;
  while (summary === undefined) {
    const answer = await queue.lease(epoch);
    if (answer.kind === "done") {
      summary = answer.summary;
      break;
    }
    if (answer.kind === "wait") {
      // Every unit out is held by another task: within leaseMs it is completed, or its lease expires and it is ours.
      waitingSince ??= performance.now();
      if (performance.now() - waitingSince > 2 * plan.leaseMs) {
        throw new PortionQueueError(`${queue.name} waited ${2 * plan.leaseMs} ms for a unit of epoch ${epoch}: the queue hands out none`, "wait", options.job);
      }
      await sleep(plan.pollMs);
      continue;
    }
    waitingSince = undefined;
    const unitData = selectRows(data, order.subarray(answer.begin, answer.end));
    client.worker = unitWorker(epoch, plan.units, answer.unit);
    client.pushes = 0;
    const t0 = performance.now();
    const [report] = await model.fit(unitData, {
      ...plan.train, epochs: 1, threads: 0, shuffle: false, signal: options.hooks?.signal,
      // No pull into the model after each unit: the next unit starts with a fetch of its own, and the task pulls
      // before validating and at the end of the job (one model-sized round trip less per unit).
      parameters: { client, nFetch: plan.nFetch, nPush: plan.nPush, pullAtEpochEnd: false, maxPushesInFlight: plan.maxPushesInFlight },
    });
    const fitMs = performance.now() - t0;
    tally.fitMs += fitMs;
    idle += report?.idleSeconds?.[0] ?? 0;
    if (plan.slowdown > 1) await sleep((plan.slowdown - 1) * fitMs);
    trained++;
    if (answer.kind === "backup") tally.backups++;
    const rows = answer.end - answer.begin;
    if (report === undefined || report.stop === "aborted") break; // aborted: the unit is left to its lease's expiry
    if (await queue.complete(epoch, answer.unit, report.loss * rows, rows)) first++;
  }
  tally.trained += trained;
  tally.first += first;
  const samples = summary?.rows ?? 0;
  tally.iterations += Math.ceil(samples / plan.batchSize);
  const seconds = summary?.seconds ?? (performance.now() - started) / 1000;
  const report: PortionEpochReport = {
    epoch: epoch + 1, iterations: tally.iterations, samples, loss: samples ? summary!.lossSum / samples : Number.NaN, seconds,
    samplesPerSecond: samples / Math.max(seconds, 1e-9), backups: 0, unitsTrained: trained, unitsFirst: first,
    taskSeconds: (performance.now() - started) / 1000, idleSeconds: [idle],
  };
  if (summary === undefined) report.stop = "aborted";
  if (summary !== undefined && options.hooks?.validation) {
    await client.pullModel(model.network.params.block.f32());
    const from = performance.now();
    report.validation = model.evaluate(options.hooks.validation);
    report.validationSeconds = (performance.now() - from) / 1000;
  }
  return report;
}

