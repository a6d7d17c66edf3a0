// The training seam's GradientExchange over BSP supersteps (a PeerChannel: NATS through bsp-channel.ts, or one
// process through MemoryChannelGroup): each mini-batch, the rows-weighted mean of every peer's gradient, computed as
// MemoryExchangeGroup computes it (summed in peer-index order, so every peer gets the same bits), by a master (Hama's
// way) or by reduce-scatter and all-gather; f32 or f16 on the wire. With syncEvery k, only every k-th batch is
// combined, after the peers' parameters and optimizer state are averaged in the same supersteps (model averaging).
import type { Kernels } from "../core/kernels.js";
import { float16Slots, float16View } from "../core/convert.js";
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import { type BatchStats, type GradientExchange, isSyncBatch, type KeyRange, type ReplicaBlocks, requireSyncEvery } from "../train/exchange.js";
import { describeValue } from "../util/describe.js";
import type { ChannelBody, ChannelValue, PeerChannel } from "./channel.js";
import { accumulate, COMBINE_MODES, type CombineMode, meanWeights, sumStats, weightedSum } from "./combine.js";
import { ClusterError } from "./errors.js";
import { shardRanges } from "./partition.js";

export type { CombineMode } from "./combine.js";

/**
 * The type gradient values travel in. `f16` halves the bytes: each peer's contribution is rounded to IEEE binary16
 * (nearest even) before it is sent, summed in f32 on receipt, and the combined value rounded to f16 again for the
 * way back (every peer, its owner too, uses the rounded value, so the peers stay identical). Per key the combined
 * gradient is then off the f32 one by at most 2^-11 * (sum_p w_p |g_p| + |g|) + 2^-24 (relative 2^-11 per rounding
 * in f16's normal range, 6.1e-5 to 65504; absolute 2^-25 per rounding below it, where small gradients lose bits or
 * flush to zero; beyond 65504 a value becomes infinite, and the step's loss check sees it).
 */
export type GradDtype = "f32" | "f16";

/** The gradient dtypes, for option checks. */
export const GRAD_DTYPES: readonly GradDtype[] = ["f32", "f16"];

/** Options of a ClusterGradientExchange. Defaults are in CLUSTER_EXCHANGE_DEFAULTS. */
export interface ClusterExchangeOptions {
  /** How the peers' gradients are combined (default "allreduce"). Every peer of a job must use the same. */
  combine?: CombineMode;
  /** The type gradients travel in (default "f32"). Every peer of a job must use the same. */
  gradDtype?: GradDtype;
  /**
   * The kernels that convert to and from f16 (required with gradDtype "f16"; unused with "f32"). The exchange takes
   * two scratch slabs (keys f32 values and keys f16 values) from their arena at its first step; dispose() returns them.
   */
  kernels?: Kernels;
  /**
   * Local mini-batches per superstep (default 1). 1: every batch's gradient is combined (2 supersteps a batch).
   * k > 1 (model averaging, Hama's superstep): batch b of an epoch is combined only when (b + 1) % k == 0 or it is
   * the epoch's last (see isSyncBatch); the others are trained locally (no network; their stats come back marked
   * `local`). At a sync batch after local ones, the same 2 supersteps first replace every peer's parameters and
   * optimizer state (attached by the trainer) with their mean over the peers (in f32 whatever gradDtype), then the
   * gradient is combined as with 1, so every peer leaves the batch with bit-identical parameters. Every peer of a
   * job must use the same.
   */
  syncEvery?: number;
}

/** The default of every optional ClusterExchangeOptions field: the one source of truth. */
export const CLUSTER_EXCHANGE_DEFAULTS = Object.freeze({ combine: "allreduce" as CombineMode, gradDtype: "f32" as GradDtype, syncEvery: 1 });

/** Counters of a span of an exchange's work: a step, or everything so far. */
export interface ExchangeCounters {
  /** Supersteps (channel syncs) taken. */
  supersteps: number;
  /** Bytes of gradient values (and averaged parameters and state) sent to other peers (tensor data only: not the
   *  small stats objects, not framing). */
  bytesSent: number;
  /** Bytes of gradient values received from other peers (as bytesSent). */
  bytesReceived: number;
  /** Time inside the channel's sync(), waiting for the other peers and the wire, in ms. */
  waitMs: number;
  /** Time converting slices for the wire and handing them to send() (f16 rounding, copying into frames), in ms. */
  encodeMs: number;
  /** Time reading received slices (f16 decoding), summing them and writing the result back, in ms. */
  reduceMs: number;
}

/** What `exchange.stats` returns: totals since creation (epochBatches included) and the last allreduce step's. */
export interface ExchangeStats extends ExchangeCounters {
  /** allreduce() calls that resolved (local batches of syncEvery > 1 included). */
  steps: number;
  /** The counters of the last allreduce() (zeros before the first, and after a local batch). */
  last: ExchangeCounters;
}

/** What an ExchangeError says, as fields. */
export interface ExchangeErrorFields {
  /** The peer whose message was wrong or missing (this peer's index for a local misuse). */
  peer: number;
  /** What was wrong: "missing", "duplicate", "kind", "x", "step", "epoch", "keys", "length", "dtype", "rows", "loss", ... */
  field: string;
  /** Which exchange: "batches" (epochBatches), "reduce" and "gather" (the two supersteps of a step). */
  phase: "batches" | "reduce" | "gather";
  /** The training step (or the epoch, in phase "batches"). */
  step: number;
}

/** The peers of a job disagree (another combine mode, dtype, model size or step) or a message is missing or wrong. */
export class ExchangeError extends ClusterError {
  readonly peer: number;
  readonly field: string;
  readonly phase: ExchangeErrorFields["phase"];
  readonly step: number;

  constructor(message: string, fields: ExchangeErrorFields, options?: { cause?: unknown }) {
    super(message, undefined, options);
    this.peer = fields.peer;
    this.field = fields.field;
    this.phase = fields.phase;
    this.step = fields.step;
  }
}

type Value = { readonly [key: string]: ChannelValue };

type Tensor = Exclude<ChannelBody, { kind: "value" }>;

/** What one peer sent in one superstep, by kind: a value, a gradient tensor and, when models are averaged, theirs. */
interface Inbox {
  value: Value | undefined;
  tensor: Tensor | undefined;
  models: Tensor | undefined;
}

/**
 * The blocks averaged at a sync point, as fresh views taken at each use (parameters, then every state slot; all of
 * one layout, so one key range cuts each). Their slices of a range travel concatenated, in f32, as one tensor.
 */
interface Models {
  /** Blocks per replica. */
  count: number;
  views(): Float32Array[];
}

const zeroCounters = (): ExchangeCounters => ({ supersteps: 0, bytesSent: 0, bytesReceived: 0, waitMs: 0, encodeMs: 0, reduceMs: 0 });

/**
 * A GradientExchange for one peer of a BSP job, over `channel`. Every peer of the job makes one with the same options
 * and passes it to its LocalTrainer (mode "sync"); each call takes whole supersteps of the channel, so nothing else
 * may send in them. Calls come one at a time (the trainer's main thread); a second call while one runs is refused.
 *
 * - epochBatches: every peer sends its batch count to all; each takes the minimum (1 superstep).
 * - allreduce, combine "allreduce": the keys are cut by shardRanges(keys, peers). Superstep 1: peer p sends slice j of
 *   its gradient, and its stats, to each peer j != p; peer j sums the peers' slices in index order, weighted by rows.
 *   Superstep 2: each peer sends its summed slice to all others and writes the received ones into its gradient.
 *   Each way a peer moves keys - own + (peers - 1) * own values, about 2 (peers - 1) / peers models.
 * - allreduce, combine "master": superstep 1: every peer sends its gradient and stats to peer 0, which sums them in
 *   index order; superstep 2: peer 0 sends the combined gradient and stats to all. Hama's master applied the update
 *   and broadcast parameters; here every peer applies the same combined gradient with the same optimizer from the
 *   same parameters (same seed), so the parameters stay identical and only gradients travel. Peer 0 moves
 *   (peers - 1) models each way.
 *
 * - syncEvery k > 1: only sync batches (isSyncBatch) take supersteps; the others resolve at once with the local
 *   stats marked `local`. At a sync batch after local ones, the same two supersteps also carry the peers' models:
 *   the parameters and every optimizer-state slot, cut by the same key ranges, concatenated in f32 as a second
 *   tensor beside the gradient's; each is replaced by its plain mean over the peers (weight 1 / peers) before the
 *   trainer applies the combined gradient. That adds (1 + slots) times the f32 gradient traffic at such a batch.
 *
 * Either way the result is bit-identical on every peer and equal to MemoryExchangeGroup's (f32), and the combined
 * stats are the losses summed in peer order and the rows summed.
 */
export class ClusterGradientExchange implements GradientExchange {
  readonly combine: CombineMode;
  readonly gradDtype: GradDtype;
  readonly syncEvery: number;
  readonly #channel: PeerChannel;
  readonly #kernels: Kernels | undefined;
  readonly #totals = zeroCounters();
  #last = zeroCounters();
  #steps = 0;
  #busy = false;
  #failure: Error | undefined;
  #disposed = false;
  // Scratch kept between steps (never the caller's gradient): the f16 path's sum (f32 sums straight into the
  // gradient), and the f16 conversion's slabs.
  #acc = new Float32Array(0);
  #stage: Slab | undefined;
  #half: Slab | undefined;
  // Model averaging: the trainer's blocks, the batch within the epoch, the epoch's batches, local batches since a sync.
  #blocks: ReplicaBlocks | undefined;
  #batch = 0;
  #batches = Number.POSITIVE_INFINITY;
  #dirty = false;
  #modelAcc = new Float32Array(0);
  #modelStage = new Float32Array(0);

  /** Checks the options (InvalidArgumentError naming the option). Allocates nothing until the first step. */
  constructor(channel: PeerChannel, options: ClusterExchangeOptions = {}) {
    if (typeof channel !== "object" || channel === null || typeof channel.send !== "function" || typeof channel.sync !== "function") {
      throw new InvalidArgumentError(`ClusterGradientExchange: channel must be a PeerChannel, got ${describeValue(channel)}`);
    }
    if (typeof options !== "object" || options === null) throw new InvalidArgumentError(`ClusterGradientExchange: options must be an object, got ${describeValue(options)}`);
    this.combine = options.combine ?? CLUSTER_EXCHANGE_DEFAULTS.combine;
    this.gradDtype = options.gradDtype ?? CLUSTER_EXCHANGE_DEFAULTS.gradDtype;
    if (!COMBINE_MODES.includes(this.combine)) throw new InvalidArgumentError(`ClusterGradientExchange: combine must be "master" or "allreduce", got ${describeValue(this.combine)}`);
    if (!GRAD_DTYPES.includes(this.gradDtype)) throw new InvalidArgumentError(`ClusterGradientExchange: gradDtype must be "f32" or "f16", got ${describeValue(this.gradDtype)}`);
    if (this.gradDtype === "f16" && (typeof options.kernels !== "object" || options.kernels === null || typeof options.kernels.toFloat16 !== "function")) {
      throw new InvalidArgumentError(`ClusterGradientExchange: gradDtype "f16" needs kernels (a Kernels, for the f16 conversion), got ${describeValue(options.kernels)}`);
    }
    this.syncEvery = requireSyncEvery(options.syncEvery ?? CLUSTER_EXCHANGE_DEFAULTS.syncEvery, "ClusterGradientExchange");
    this.#channel = channel;
    this.#kernels = options.kernels;
  }

  /** Keeps the trainer's blocks for model averaging (syncEvery > 1; see GradientExchange.attach). */
  attach(blocks: ReplicaBlocks): void {
    this.#blocks = blocks;
  }

  /** The counters so far: a new plain object each time it is read (see ExchangeStats). */
  get stats(): ExchangeStats {
    return { ...this.#totals, steps: this.#steps, last: { ...this.#last } };
  }

  /**
   * Sends `batches` to every other peer and resolves, after one superstep, with the smallest count of any peer.
   * Rejects as allreduce does (ExchangeError field "epoch" when a peer is in another epoch).
   */
  epochBatches(batches: number, epoch: number): Promise<number> {
    if (!Number.isSafeInteger(batches) || batches < 0) return Promise.reject(new InvalidArgumentError(`epochBatches: batches must be an integer >= 0, got ${describeValue(batches)}`));
    return this.#run(zeroCounters(), async (c) => {
      const channel = this.#channel;
      for (let p = 0; p < channel.peers; p++) if (p !== channel.index) channel.send(p, { x: "batches", epoch, batches });
      const inbox = await this.#superstep(c, "batches", epoch);
      let agreed = batches;
      for (let p = 0; p < channel.peers; p++) {
        if (p === channel.index) continue;
        const value = this.#value(inbox, p, "batches", "batches", epoch);
        if (value.epoch !== epoch) this.#fail(p, "epoch", "batches", epoch, `peer ${p} is in epoch ${describeValue(value.epoch)}, this peer in epoch ${epoch}`);
        const theirs = value.batches;
        if (typeof theirs !== "number" || !Number.isSafeInteger(theirs) || theirs < 0) this.#fail(p, "batches", "batches", epoch, `peer ${p} sent ${describeValue(theirs)} batches`);
        agreed = Math.min(agreed, theirs);
      }
      this.#batch = 0;
      this.#batches = agreed;
      return agreed;
    });
  }

  /**
   * Writes the rows-weighted mean of every peer's `grads` into `grads` and resolves with the combined stats (2
   * supersteps). Copies what it sends (the channel's send copies); reads and writes `grads` only while the call runs,
   * the combined values are in it before the promise resolves, and no reference to it is kept. Rejects with ExchangeError when the peers disagree or
   * a message is missing, with the channel's error when the job fails; after such a rejection every later call
   * rejects with the same error (the peers are out of step). Bad arguments reject with InvalidArgumentError before
   * anything is sent, and leave the exchange usable.
   */
  allreduce(grads: Float32Array, local: BatchStats, step: number): Promise<BatchStats> {
    const problem = stepProblem(grads, local, step);
    if (problem) return Promise.reject(new InvalidArgumentError(`allreduce: ${problem}`));
    const counters = zeroCounters();
    return this.#run(counters, async (c) => {
      if (!isSyncBatch(this.#batch++, this.syncEvery, this.#batches)) {
        this.#dirty = true;
        this.#steps++;
        this.#last = counters;
        return { ...local, local: true };
      }
      const models = this.#dirty && this.#channel.peers > 1 ? this.#models(step) : undefined;
      this.#prepare(grads.length, models ? models.count * grads.length : 0);
      const combined =
        this.combine === "master" ? await this.#master(c, grads, local, step, models) : await this.#allreduce(c, grads, local, step, models);
      this.#dirty = false;
      this.#steps++;
      this.#last = counters;
      return combined;
    });
  }

  /** The attached blocks as Models; InvalidStateError when the trainer attached none. */
  #models(step: number): Models {
    const blocks = this.#blocks;
    if (!blocks) {
      throw new InvalidStateError(
        `gradient exchange of peer ${this.#channel.index}, step ${step}: syncEvery ${this.syncEvery} averages the peers' models, but no parameters are attached (train with a LocalTrainer, which attaches them)`,
      );
    }
    return { count: 1 + blocks.state().length, views: () => [blocks.params(), ...blocks.state()] };
  }

  /** Returns the f16 scratch slabs to the kernels' arena; later calls are refused. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const slab of [this.#stage, this.#half]) if (slab && !slab.released) this.#kernels!.arena.release(slab);
    this.#stage = this.#half = undefined;
    this.#acc = new Float32Array(0);
    this.#modelAcc = this.#modelStage = new Float32Array(0);
    this.#blocks = undefined;
  }

  // combine "allreduce": reduce-scatter over shardRanges, then all-gather (the models' slices beside the gradient's).
  async #allreduce(c: ExchangeCounters, grads: Float32Array, local: BatchStats, step: number, models?: Models): Promise<BatchStats> {
    const { index: me, peers } = this.#channel;
    const ranges = shardRanges(grads.length, peers);
    const mine = ranges[me]!;
    this.#timed(c, "encodeMs", () => {
      for (let j = 0; j < peers; j++) {
        if (j === me) continue;
        this.#channel.send(j, statsValue(step, local, grads.length, models));
        this.#sendSlice(c, j, grads, ranges[j]!);
        if (models) this.#sendModels(c, j, models, ranges[j]!);
      }
    });
    const scattered = await this.#superstep(c, "reduce", step, models !== undefined);
    const stats = this.#peerStats(scattered, step, local, grads.length, models);
    const weights = meanWeights(stats.map((s) => s.rows));
    const sum = this.#reduce(c, scattered, grads.subarray(mine.begin, mine.end), weights, "reduce", step);
    const mean = models ? this.#averageModels(c, scattered, models, mine, "reduce", step) : undefined;
    const others = Array.from({ length: peers }, (_, j) => j).filter((j) => j !== me);
    this.#broadcast(c, others, sum, (result) => {
      if (result !== sum) grads.set(result, mine.begin);
    });
    if (models && mean) this.#broadcastModels(c, others, models, mean, mine);
    this.#channel.recycle?.();
    const gathered = await this.#superstep(c, "gather", step, models !== undefined);
    this.#timed(c, "reduceMs", () => {
      for (let p = 0; p < peers; p++) {
        if (p === me) continue;
        const range = ranges[p]!;
        grads.set(this.#received(c, gathered, p, range.end - range.begin, "gather", step), range.begin);
        if (models) this.#writeModels(models, this.#receivedModels(c, gathered, p, models.count * (range.end - range.begin), "gather", step), range);
      }
    });
    this.#channel.recycle?.();
    return sumStats(stats);
  }

  // combine "master": everyone to peer 0, which sums and sends the result to all (the models beside the gradient).
  async #master(c: ExchangeCounters, grads: Float32Array, local: BatchStats, step: number, models?: Models): Promise<BatchStats> {
    const { index: me, peers } = this.#channel;
    const all = { begin: 0, end: grads.length };
    if (me !== 0) {
      this.#timed(c, "encodeMs", () => {
        this.#channel.send(0, statsValue(step, local, grads.length, models));
        this.#sendSlice(c, 0, grads, all);
        if (models) this.#sendModels(c, 0, models, all);
      });
      await this.#superstep(c, "reduce", step);
      const inbox = await this.#superstep(c, "gather", step, models !== undefined);
      const value = this.#value(inbox, 0, "combined", "gather", step);
      const combined = readStats(value, 0, "gather", step, (p, f, ph, s, m) => this.#fail(p, f, ph, s, m));
      this.#timed(c, "reduceMs", () => {
        grads.set(this.#received(c, inbox, 0, grads.length, "gather", step));
        if (models) this.#writeModels(models, this.#receivedModels(c, inbox, 0, models.count * grads.length, "gather", step), all);
      });
      this.#channel.recycle?.();
      return combined;
    }
    const inbox = await this.#superstep(c, "reduce", step, models !== undefined);
    const stats = this.#peerStats(inbox, step, local, grads.length, models);
    const combined = sumStats(stats);
    const weights = meanWeights(stats.map((s) => s.rows));
    const sum = this.#reduce(c, inbox, grads, weights, "reduce", step);
    const mean = models ? this.#averageModels(c, inbox, models, all, "reduce", step) : undefined;
    const others = Array.from({ length: peers - 1 }, (_, j) => j + 1);
    for (const p of others) this.#channel.send(p, { x: "combined", step, loss: combined.loss, rows: combined.rows, keys: grads.length });
    this.#broadcast(c, others, sum, (result) => {
      if (result !== sum) grads.set(result);
    });
    if (models && mean) this.#broadcastModels(c, others, models, mean, all);
    this.#channel.recycle?.();
    await this.#superstep(c, "gather", step);
    return combined;
  }

  /**
   * The mean over every peer (weight 1 / peers, summed in index order from zero, as MemoryExchangeGroup sums it) of
   * the models' slices of `range`, this peer's own read from its blocks: concatenated, in the model scratch.
   */
  #averageModels(c: ExchangeCounters, inbox: Inbox[], models: Models, range: KeyRange, phase: ExchangeErrorFields["phase"], step: number): Float32Array {
    const { index: me, peers } = this.#channel;
    const length = models.count * (range.end - range.begin);
    const mean = this.#modelAcc.subarray(0, length);
    this.#timed(c, "reduceMs", () => {
      const parts = Array.from({ length: peers }, (_, p) => (p === me ? this.#modelSlices(models, range) : this.#receivedModels(c, inbox, p, length, phase, step)));
      weightedSum(mean, parts, new Array<number>(peers).fill(1 / peers));
    });
    return mean;
  }

  /**
   * The rows-weighted sum of every peer's slice (this peer's own is `own`, a view of its gradient), summed in index
   * order from zero. f32: computed in one pass straight into `own` (every part is checked first) and returned, so
   * the gradient already holds the result. f16: each part is decoded and added in turn into the accumulator scratch
   * (the decoded views share one slab), which is returned; `own` is left as it was.
   */
  #reduce(c: ExchangeCounters, inbox: Inbox[], own: Float32Array, weights: readonly number[], phase: ExchangeErrorFields["phase"], step: number): Float32Array {
    const { index: me, peers } = this.#channel;
    const n = own.length;
    if (this.gradDtype === "f32") {
      const parts = Array.from({ length: peers }, (_, p) => (p === me ? own : this.#received(c, inbox, p, n, phase, step)));
      this.#timed(c, "reduceMs", () => weightedSum(own, parts, weights));
      return own;
    }
    const acc = this.#acc.subarray(0, n);
    this.#timed(c, "reduceMs", () => {
      acc.fill(0);
      for (let p = 0; p < peers; p++) accumulate(acc, p === me ? this.#own(own) : this.#received(c, inbox, p, n, phase, step), weights[p]!);
    });
    return acc;
  }

  /** Sends the averaged slices of `range` to `to` (f32, nothing for an empty range), then writes them into this peer's blocks. */
  #broadcastModels(c: ExchangeCounters, to: readonly number[], models: Models, mean: Float32Array, range: KeyRange): void {
    if (mean.length === 0) return;
    this.#timed(c, "encodeMs", () => {
      for (const p of to) {
        this.#channel.send(p, mean);
        c.bytesSent += mean.byteLength;
      }
    });
    this.#timed(c, "reduceMs", () => this.#writeModels(models, mean, range));
  }

  /** Sends the models' slices of `range` to peer `to`, concatenated (f32; nothing for an empty range), counting the bytes. */
  #sendModels(c: ExchangeCounters, to: number, models: Models, range: KeyRange): void {
    if (range.end === range.begin) return;
    const payload = this.#modelSlices(models, range);
    this.#channel.send(to, payload);
    c.bytesSent += payload.byteLength;
  }

  /** The blocks' slices of `range`, concatenated in block order, in the model stage (a view valid until the next call). */
  #modelSlices(models: Models, range: KeyRange): Float32Array {
    const n = range.end - range.begin;
    const out = this.#modelStage.subarray(0, models.count * n);
    models.views().forEach((block, k) => {
      out.set(block.subarray(range.begin, range.end), k * n);
    });
    return out;
  }

  /** Writes concatenated slices of `range` (as #modelSlices makes them) into this peer's blocks. */
  #writeModels(models: Models, values: Float32Array, range: KeyRange): void {
    const n = range.end - range.begin;
    models.views().forEach((block, k) => {
      block.set(values.subarray(k * n, (k + 1) * n), range.begin);
    });
  }

  /** Peer p's concatenated model slices (`length` f32 values; none expected for 0), counting their bytes. */
  #receivedModels(c: ExchangeCounters, inbox: Inbox[], p: number, length: number, phase: ExchangeErrorFields["phase"], step: number): Float32Array {
    if (length === 0) return new Float32Array(0);
    const body = inbox[p]!.models;
    if (body === undefined) this.#fail(p, "missing", phase, step, `peer ${p} sent no model slices (${length} values expected; another syncEvery?)`);
    if (body.kind !== "f32") this.#fail(p, "dtype", phase, step, `peer ${p} sent its model slices as ${body.kind}, f32 expected`);
    if (body.data.length !== length) this.#fail(p, "length", phase, step, `peer ${p} sent ${body.data.length} model values, ${length} expected (another optimizer?)`);
    c.bytesReceived += body.data.byteLength;
    return body.data;
  }

  /** Runs one call: refuses overlap and use after a failure or dispose(); adds its counters to the totals. */
  async #run<T>(c: ExchangeCounters, work: (c: ExchangeCounters) => Promise<T>): Promise<T> {
    if (this.#failure) throw this.#failure;
    if (this.#disposed) throw new InvalidStateError("the gradient exchange was disposed");
    if (this.#busy) throw new InvalidStateError("a gradient exchange call while another runs: calls come one at a time, in step order");
    this.#busy = true;
    try {
      return await work(c);
    } catch (error) {
      this.#failure = error instanceof Error ? error : new ClusterError(String(error), undefined);
      throw error;
    } finally {
      this.#busy = false;
      for (const key of Object.keys(c) as (keyof ExchangeCounters)[]) this.#totals[key] += c[key];
    }
  }

  /**
   * sync(), timed; then this superstep's messages by sender (one value and one tensor at most each; with `models`, a
   * second tensor: the sender's model slices).
   */
  async #superstep(c: ExchangeCounters, phase: ExchangeErrorFields["phase"], step: number, models = false): Promise<Inbox[]> {
    const started = performance.now();
    await this.#channel.sync();
    c.waitMs += performance.now() - started;
    c.supersteps++;
    const inbox: Inbox[] = Array.from({ length: this.#channel.peers }, () => ({ value: undefined, tensor: undefined, models: undefined }));
    for (const message of this.#channel.messages()) {
      const slot = inbox[message.from];
      if (!slot) this.#fail(message.from, "from", phase, step, `a message from peer ${message.from}, not one of the ${this.#channel.peers} peers`);
      const key = message.kind === "value" ? "value" : slot.tensor !== undefined && models ? "models" : "tensor";
      if (slot[key] !== undefined) this.#fail(message.from, "duplicate", phase, step, `peer ${message.from} sent a second ${key} (does something else send in the exchange's supersteps?)`);
      if (message.kind === "value") slot.value = message.data;
      else slot[key as "tensor" | "models"] = message;
    }
    return inbox;
  }

  /** Peer p's value of type `x`, checked for its step. */
  #value(inbox: Inbox[], p: number, x: string, phase: ExchangeErrorFields["phase"], step: number): Value {
    const value = inbox[p]!.value;
    if (value === undefined) this.#fail(p, "missing", phase, step, `peer ${p} sent no "${x}" message`);
    if (value.x !== x) this.#fail(p, "x", phase, step, `peer ${p} sent a ${describeValue(value.x)} message where "${x}" belongs (another combine mode?)`);
    if (phase !== "batches" && value.step !== step) this.#fail(p, "step", phase, step, `peer ${p} is at step ${describeValue(value.step)}, this peer at step ${step}`);
    return value;
  }

  /** Every peer's stats (this peer's own at its index), after checking each agrees on the model's size. */
  #peerStats(inbox: Inbox[], step: number, local: BatchStats, keys: number, models?: Models): BatchStats[] {
    return Array.from({ length: this.#channel.peers }, (_, p) => {
      if (p === this.#channel.index) return local;
      const value = this.#value(inbox, p, "stats", "reduce", step);
      if (value.keys !== keys) this.#fail(p, "keys", "reduce", step, `peer ${p} has a gradient of ${describeValue(value.keys)} floats, this peer ${keys} (another model?)`);
      if ((value.models ?? 0) !== (models?.count ?? 0)) {
        this.#fail(p, "models", "reduce", step, `peer ${p} averages ${describeValue(value.models ?? 0)} blocks, this peer ${models?.count ?? 0} (another syncEvery or optimizer?)`);
      }
      return readStats(value, p, "reduce", step, (q, f, ph, s, m) => this.#fail(q, f, ph, s, m));
    });
  }

  /** Peer p's tensor of `length` values as f32 (a view valid until the next call), counting its bytes. */
  #received(c: ExchangeCounters, inbox: Inbox[], p: number, length: number, phase: ExchangeErrorFields["phase"], step: number): Float32Array {
    const body = inbox[p]!.tensor;
    if (length === 0) return new Float32Array(0);
    if (body === undefined) this.#fail(p, "missing", phase, step, `peer ${p} sent no gradient slice (${length} values expected)`);
    const kind = this.gradDtype;
    if (body.kind !== kind) this.#fail(p, "dtype", phase, step, `peer ${p} sent ${body.kind} values, this peer expects ${kind} (another gradDtype?)`);
    if (body.data.length !== length) this.#fail(p, "length", phase, step, `peer ${p} sent ${body.data.length} values, ${length} expected`);
    c.bytesReceived += body.data.byteLength;
    if (body.kind === "f32") return body.data;
    return this.#fromF16(body.data);
  }

  /** Sends `values[range]` to peer `to` in the wire dtype (nothing for an empty range), counting its bytes. */
  #sendSlice(c: ExchangeCounters, to: number, values: Float32Array, range: KeyRange): void {
    if (range.end === range.begin) return;
    const slice = values.subarray(range.begin, range.end);
    const payload = this.gradDtype === "f32" ? slice : this.#toF16(slice);
    this.#channel.send(to, payload);
    c.bytesSent += payload.byteLength;
  }

  /**
   * Sends `values` to every peer of `to` in the wire dtype, converted once, then hands `write` the values as the
   * receivers will read them (values itself for f32, the f16-rounded values for f16).
   */
  #broadcast(c: ExchangeCounters, to: readonly number[], values: Float32Array, write: (result: Float32Array) => void): void {
    if (values.length === 0) return;
    let payload: Float32Array | Uint16Array = values;
    this.#timed(c, "encodeMs", () => {
      if (this.gradDtype === "f16") payload = this.#toF16(values);
      for (const p of to) {
        this.#channel.send(p, payload);
        c.bytesSent += payload.byteLength;
      }
    });
    this.#timed(c, "reduceMs", () => write(payload instanceof Uint16Array ? this.#fromF16(payload) : values));
  }

  /** This peer's own contribution as the others see theirs: itself (f32), or rounded through f16. */
  #own(values: Float32Array): Float32Array {
    return this.gradDtype === "f32" ? values : this.#fromF16(this.#toF16(values));
  }

  /** f16 bits of `values`, in the half slab (a view valid until the next conversion). */
  #toF16(values: Float32Array): Uint16Array {
    const kernels = this.#kernels!;
    const n = values.length;
    this.#stage!.f32().set(values);
    kernels.toFloat16(this.#half!, this.#stage!, { count: n });
    return float16View(this.#half!, 0, n);
  }

  /** f32 values of f16 bits, in the stage slab (a view valid until the next conversion). */
  #fromF16(bits: Uint16Array): Float32Array {
    const n = bits.length;
    const view = float16View(this.#half!, 0, n);
    if (view.buffer !== bits.buffer || view.byteOffset !== bits.byteOffset) view.set(bits);
    this.#kernels!.fromFloat16(this.#stage!, this.#half!, { count: n });
    return this.#stage!.f32().subarray(0, n);
  }

  /** Scratch for a model of `keys` floats and `modelFloats` averaged block floats (grown, never shrunk). */
  #prepare(keys: number, modelFloats: number): void {
    if (this.#modelAcc.length < modelFloats) this.#modelAcc = new Float32Array(modelFloats);
    if (this.#modelStage.length < modelFloats) this.#modelStage = new Float32Array(modelFloats);
    if (this.gradDtype === "f32") return;
    if (this.#acc.length < keys) this.#acc = new Float32Array(keys);
    const arena = this.#kernels!.arena;
    if (!this.#stage || this.#stage.length < keys) {
      if (this.#stage) arena.release(this.#stage);
      this.#stage = arena.alloc(keys, "exchange f16 stage", "the f32 staging slab of an f16 gradient exchange");
    }
    if (!this.#half || this.#half.length < float16Slots(keys)) {
      if (this.#half) arena.release(this.#half);
      this.#half = arena.alloc(float16Slots(keys), "exchange f16 bits", "the f16 slab of an f16 gradient exchange");
    }
  }

  #timed(c: ExchangeCounters, key: "encodeMs" | "reduceMs", work: () => void): void {
    const started = performance.now();
    try {
      work();
    } finally {
      c[key] += performance.now() - started;
    }
  }

  #fail(peer: number, field: string, phase: ExchangeErrorFields["phase"], step: number, what: string): never {
    const at = phase === "batches" ? `epoch ${step}` : `step ${step} (${phase})`;
    throw new ExchangeError(`gradient exchange of peer ${this.#channel.index}, ${at}: ${what}`, { peer, field, phase, step });
  }
}

/** The stats message; `models` (the blocks averaged, when they are) only when it is. */
function statsValue(step: number, local: BatchStats, keys: number, models?: Models): Value {
  const value = { x: "stats", step, loss: local.loss, rows: local.rows, keys };
  return models ? { ...value, models: models.count } : value;
}

/** The BatchStats in a "stats" or "combined" value, checked. */
function readStats(
  value: Value,
  p: number,
  phase: ExchangeErrorFields["phase"],
  step: number,
  fail: (p: number, field: string, phase: ExchangeErrorFields["phase"], step: number, what: string) => never,
): BatchStats {
  const { loss, rows } = value;
  if (typeof rows !== "number" || !Number.isSafeInteger(rows) || rows < 0) fail(p, "rows", phase, step, `peer ${p} sent ${describeValue(rows)} rows`);
  if (typeof loss !== "number") fail(p, "loss", phase, step, `peer ${p} sent the loss ${describeValue(loss)}`);
  return { loss, rows };
}

/** What is wrong with allreduce's arguments, if anything. */
function stepProblem(grads: Float32Array, local: BatchStats, step: number): string | undefined {
  if (!(grads instanceof Float32Array)) return `grads must be a Float32Array, got ${describeValue(grads)}`;
  if (typeof local !== "object" || local === null || typeof local.loss !== "number" || !Number.isSafeInteger(local.rows) || local.rows < 0) {
    return `local must be { loss: number, rows: integer >= 0 }, got ${describeValue(local)}`;
  }
  if (!Number.isSafeInteger(step)) return `step must be an integer, got ${describeValue(step)}`;
  return undefined;
}
