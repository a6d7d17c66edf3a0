// The training seam's GradientExchange over BSP supersteps (a PeerChannel: NATS through bsp-channel.ts, or one
// process through MemoryChannelGroup): each mini-batch, the rows-weighted mean of every peer's gradient, computed as
// MemoryExchangeGroup computes it (summed in peer-index order, so every peer gets the same bits), by a master (Hama's
// way) or by reduce-scatter and all-gather; f32 or f16 on the wire.
import type { Kernels } from "../core/kernels.js";
import { float16Slots, float16View } from "../core/convert.js";
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { BatchStats, GradientExchange, KeyRange } from "../train/exchange.js";
import { describeValue } from "../util/describe.js";
import type { ChannelBody, ChannelValue, PeerChannel } from "./channel.js";
import { accumulate, COMBINE_MODES, type CombineMode, meanWeights, sumStats } from "./combine.js";
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
}

/** The default of every optional ClusterExchangeOptions field: the one source of truth. */
export const CLUSTER_EXCHANGE_DEFAULTS = Object.freeze({ combine: "allreduce" as CombineMode, gradDtype: "f32" as GradDtype });

/** Counters of a span of an exchange's work: a step, or everything so far. */
export interface ExchangeCounters {
  /** Supersteps (channel syncs) taken. */
  supersteps: number;
  /** Bytes of gradient values sent to other peers (tensor data only: not the small stats objects, not framing). */
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
  /** allreduce() calls that resolved. */
  steps: number;
  /** The counters of the last allreduce() (zeros before the first). */
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

/** What one peer sent in one superstep, by kind. */
interface Inbox {
  value: Value | undefined;
  tensor: Exclude<ChannelBody, { kind: "value" }> | undefined;
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
 * Either way the result is bit-identical on every peer and equal to MemoryExchangeGroup's (f32), and the combined
 * stats are the losses summed in peer order and the rows summed.
 */
export class ClusterGradientExchange implements GradientExchange {
  readonly combine: CombineMode;
  readonly gradDtype: GradDtype;
  readonly #channel: PeerChannel;
  readonly #kernels: Kernels | undefined;
  readonly #totals = zeroCounters();
  #last = zeroCounters();
  #steps = 0;
  #busy = false;
  #failure: Error | undefined;
  #disposed = false;
  // Scratch kept between steps (never the caller's gradient): the sum, and the f16 conversion's slabs.
  #acc = new Float32Array(0);
  #stage: Slab | undefined;
  #half: Slab | undefined;

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
    this.#channel = channel;
    this.#kernels = options.kernels;
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
      this.#prepare(grads.length);
      const combined = this.combine === "master" ? await this.#master(c, grads, local, step) : await this.#allreduce(c, grads, local, step);
      this.#steps++;
      this.#last = counters;
      return combined;
    });
  }

  /** Returns the f16 scratch slabs to the kernels' arena; later calls are refused. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const slab of [this.#stage, this.#half]) if (slab && !slab.released) this.#kernels!.arena.release(slab);
    this.#stage = this.#half = undefined;
    this.#acc = new Float32Array(0);
  }

  // combine "allreduce": reduce-scatter over shardRanges, then all-gather.
  async #allreduce(c: ExchangeCounters, grads: Float32Array, local: BatchStats, step: number): Promise<BatchStats> {
    const { index: me, peers } = this.#channel;
    const ranges = shardRanges(grads.length, peers);
    const mine = ranges[me]!;
    const own = mine.end - mine.begin;
    this.#timed(c, "encodeMs", () => {
      for (let j = 0; j < peers; j++) {
        if (j === me) continue;
        this.#channel.send(j, statsValue(step, local, grads.length));
        this.#sendSlice(c, j, grads, ranges[j]!);
      }
    });
    const scattered = await this.#superstep(c, "reduce", step);
    const stats = this.#peerStats(scattered, step, local, grads.length);
    const weights = meanWeights(stats.map((s) => s.rows));
    const acc = this.#acc.subarray(0, own);
    this.#timed(c, "reduceMs", () => {
      acc.fill(0);
      for (let p = 0; p < peers; p++) {
        const part = p === me ? this.#own(grads.subarray(mine.begin, mine.end)) : this.#received(c, scattered, p, own, "reduce", step);
        accumulate(acc, part, weights[p]!);
      }
    });
    const others = Array.from({ length: peers }, (_, j) => j).filter((j) => j !== me);
    this.#broadcast(c, others, acc, (result) => grads.set(result, mine.begin));
    const gathered = await this.#superstep(c, "gather", step);
    this.#timed(c, "reduceMs", () => {
      for (let p = 0; p < peers; p++) {
        if (p === me) continue;
        const range = ranges[p]!;
        grads.set(this.#received(c, gathered, p, range.end - range.begin, "gather", step), range.begin);
      }
    });
    return sumStats(stats);
  }

  // combine "master": everyone to peer 0, which sums and sends the result to all.
  async #master(c: ExchangeCounters, grads: Float32Array, local: BatchStats, step: number): Promise<BatchStats> {
    const { index: me, peers } = this.#channel;
    if (me !== 0) {
      this.#timed(c, "encodeMs", () => {
        this.#channel.send(0, statsValue(step, local, grads.length));
        this.#sendSlice(c, 0, grads, { begin: 0, end: grads.length });
      });
      await this.#superstep(c, "reduce", step);
      const inbox = await this.#superstep(c, "gather", step);
      const value = this.#value(inbox, 0, "combined", "gather", step);
      const combined = readStats(value, 0, "gather", step, (p, f, ph, s, m) => this.#fail(p, f, ph, s, m));
      this.#timed(c, "reduceMs", () => grads.set(this.#received(c, inbox, 0, grads.length, "gather", step)));
      return combined;
    }
    const inbox = await this.#superstep(c, "reduce", step);
    const stats = this.#peerStats(inbox, step, local, grads.length);
    const combined = sumStats(stats);
    const weights = meanWeights(stats.map((s) => s.rows));
    const acc = this.#acc.subarray(0, grads.length);
    this.#timed(c, "reduceMs", () => {
      acc.fill(0);
      for (let p = 0; p < peers; p++) accumulate(acc, p === 0 ? this.#own(grads) : this.#received(c, inbox, p, grads.length, "reduce", step), weights[p]!);
    });
    const others = Array.from({ length: peers - 1 }, (_, j) => j + 1);
    for (const p of others) this.#channel.send(p, { x: "combined", step, loss: combined.loss, rows: combined.rows, keys: grads.length });
    this.#broadcast(c, others, acc, (result) => grads.set(result));
    await this.#superstep(c, "gather", step);
    return combined;
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

  /** sync(), timed; then this superstep's messages by sender (one value and one tensor at most each). */
  async #superstep(c: ExchangeCounters, phase: ExchangeErrorFields["phase"], step: number): Promise<Inbox[]> {
    const started = performance.now();
    await this.#channel.sync();
    c.waitMs += performance.now() - started;
    c.supersteps++;
    const inbox: Inbox[] = Array.from({ length: this.#channel.peers }, () => ({ value: undefined, tensor: undefined }));
    for (const message of this.#channel.messages()) {
      const slot = inbox[message.from];
      if (!slot) this.#fail(message.from, "from", phase, step, `a message from peer ${message.from}, not one of the ${this.#channel.peers} peers`);
      const key = message.kind === "value" ? "value" : "tensor";
      if (slot[key] !== undefined) this.#fail(message.from, "duplicate", phase, step, `peer ${message.from} sent a second ${key} (does something else send in the exchange's supersteps?)`);
      if (message.kind === "value") slot.value = message.data;
      else slot.tensor = message;
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
  #peerStats(inbox: Inbox[], step: number, local: BatchStats, keys: number): BatchStats[] {
    return Array.from({ length: this.#channel.peers }, (_, p) => {
      if (p === this.#channel.index) return local;
      const value = this.#value(inbox, p, "stats", "reduce", step);
      if (value.keys !== keys) this.#fail(p, "keys", "reduce", step, `peer ${p} has a gradient of ${describeValue(value.keys)} floats, this peer ${keys} (another model?)`);
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

  /** Scratch for a model of `keys` floats (grown, never shrunk). */
  #prepare(keys: number): void {
    if (this.#acc.length < keys) this.#acc = new Float32Array(keys);
    if (this.gradDtype === "f32") return;
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

function statsValue(step: number, local: BatchStats, keys: number): Value {
  return { x: "stats", step, loss: local.loss, rows: local.rows, keys };
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
