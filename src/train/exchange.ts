// The training seam, where gradients leave a trainer and parameters arrive: GradientExchange combines the
// gradients of data-parallel replicas once per mini-batch (sync, as Hama's master merges its grooms' updates);
// ParameterClient pulls parameters and pushes accumulated gradients over key ranges of the flat parameter
// vector (async, as Downpour SGD's workers talk to parameter-server shards). The local trainer uses the trivial
// LocalExchange; in-memory implementations join replicas in one process for tests. An exchange may instead combine
// whole models every k mini-batches (model averaging, Hama's superstep): the trainer attaches its blocks to it.
import { InvalidArgumentError } from "../errors.js";
import { describeValue } from "../util/describe.js";

/**
 * A range [begin, end) of keys: float offsets into one block of the parameter layout (w0, b0, w1, b1, ...
 * each padded to 64 bytes; the padding keys exist and stay zero). Keys name the same parameter in the
 * parameters, the gradients and every optimizer-state slot.
 */
export interface KeyRange {
  begin: number;
  end: number;
}

/** A replica's contribution to one mini-batch, or the combined one. */
export interface BatchStats {
  /** Summed loss of the samples. */
  loss: number;
  /** Samples. */
  rows: number;
  /**
   * Set (true) by an exchange on a batch it did not combine: one trained locally between the sync points of model
   * averaging, whose stats are this replica's own and differ across replicas. The trainer reports such a loss as
   * the batch's, but feeds only combined losses to the convergence check, so that every replica stops on the same
   * batch. Absent (or false) on a combined batch.
   */
  local?: boolean;
}

/**
 * Fresh views of one replica's training blocks, for an exchange that averages models. Views of shared WASM memory
 * detach when the memory grows: take new ones at each use, and keep none past the call that took them.
 */
export interface ReplicaBlocks {
  /** Floats per block (the parameter layout's length; every block below has it). */
  readonly keys: number;
  /** The parameter block, laid out as the gradients are. */
  params(): Float32Array;
  /** Every optimizer-state slot (none for plain SGD, 1 for momentum or Adagrad, 2 for Adam), laid out likewise. */
  state(): Float32Array[];
}

/**
 * Combines the gradients of every data-parallel replica once per mini-batch. Called on the main thread only, one
 * call at a time, in step order; training threads wait at the exchange point until the call resolves.
 */
export interface GradientExchange {
  /**
   * Called once before each epoch with this replica's mini-batch count; resolves with the count every replica
   * runs (the minimum), so all replicas stop on the same batch. The local exchange returns `batches`.
   */
  epochBatches(batches: number, epoch: number): Promise<number>;
  /**
   * `grads` is this replica's mean gradient over `local.rows` samples, laid out like the parameters (a live view
   * of shared memory: copy it before it crosses a thread or a socket). Resolves once `grads` holds the mean over
   * every replica's samples (rows-weighted), with the combined stats; the caller may not touch `grads` meanwhile,
   * and the exchange must not keep it after resolving. Rejecting fails the training run.
   */
  allreduce(grads: Float32Array, local: BatchStats, step: number): Promise<BatchStats>;
  /**
   * Optional. Called by the trainer once, before its first epoch, with its parameters and optimizer state (a later
   * call, from another trainer, replaces them). An exchange that trains locally between sync points (syncEvery > 1)
   * averages these blocks across the replicas inside allreduce: the trainer waits at the exchange point meanwhile,
   * and the blocks then hold the updates through the previous batch. Exchanges that combine every batch ignore it.
   */
  attach?(blocks: ReplicaBlocks): void;
}

/**
 * The sync points of model averaging: batch `b` (0-based, within an epoch of `batches`) is combined when
 * (b + 1) % syncEvery == 0 or it is the epoch's last; syncEvery 1 combines every batch. Infinity: batches unknown.
 */
export function isSyncBatch(b: number, syncEvery: number, batches: number): boolean {
  return syncEvery === 1 || (b + 1) % syncEvery === 0 || b + 1 >= batches;
}

/** Throws InvalidArgumentError naming `syncEvery` (and `who`) unless it is a positive integer; returns it. */
export function requireSyncEvery(syncEvery: unknown, who: string): number {
  if (typeof syncEvery === "number" && Number.isSafeInteger(syncEvery) && syncEvery >= 1) return syncEvery;
  throw new InvalidArgumentError(
    `${who}: syncEvery (local mini-batches per superstep) must be a positive integer, got ${describeValue(syncEvery)}`,
  );
}

/** One replica alone: its gradient is already the mean. */
export class LocalExchange implements GradientExchange {
  async epochBatches(batches: number): Promise<number> {
    return batches;
  }

  async allreduce(_grads: Float32Array, local: BatchStats): Promise<BatchStats> {
    return local;
  }
}

/** Who is pushing: a retried push (same worker and sequence) must be applied once. */
export interface PushInfo {
  worker: number;
  /** 1, 2, 3, ... per worker. */
  seq: number;
}

/** Who is reading: the worker whose fetch this pull serves (its clock bounds an SSP read). */
export interface PullInfo {
  worker: number;
}

/**
 * A client of a parameter store sharded by key ranges of the flat parameter vector. Called on the main thread;
 * several calls may be in flight at once.
 */
export interface ParameterClient {
  /** Length of the key space (one block of the parameter layout, in floats). */
  readonly keys: number;
  /**
   * Sends `grads[begin..end)` (the whole vector when `range` is omitted), a gradient summed over portions, to be
   * applied by the store's optimizer. Copies what it needs before returning (the caller may reuse `grads` at once);
   * resolves with the version (updates applied) of the range once the store applied it.
   */
  push(grads: Float32Array, range?: KeyRange, from?: PushInfo): Promise<number>;
  /**
   * Resolves once `into[begin..end)` holds the store's current values, with their version. The caller must not
   * touch that part of `into` until it resolves.
   */
  pull(into: Float32Array, range?: KeyRange, from?: PullInfo): Promise<number>;
  /**
   * Optional. Called once the epoch's portions are all taken, and again after every later push: this trainer's
   * workers push nothing more until its next epoch, so their clocks must hold no other reader back.
   */
  pause?(): Promise<void>;
}

/** Options of async training against a parameter client (Downpour SGD's nFetch and nPush). */
export interface ParameterOptions {
  client: ParameterClient;
  /** Portions between a worker's requests for fresh parameters; it computes on its copy meanwhile. Default 1. */
  nFetch?: number;
  /** Portions whose gradients a worker accumulates before handing them over. Default 1. */
  nPush?: number;
  /**
   * Whether a worker's pushes beyond its pending fetch wait for that fetch (bounded staleness, SSP and BSP: the store
   * holds a read back until the other workers caught up, and the reader computes at most one more portion push
   * meanwhile). Default false: a worker never waits for a fetch (async, as Downpour SGD).
   */
  waitForReads?: boolean;
  /**
   * At most this many of a worker's pushes may be unapplied (handed to the client, not yet resolved) while it goes on
   * computing; its next hand-over waits for the oldest to be applied (flow control: it bounds how far a worker's
   * gradients run ahead of the store). Default unbounded: pushes are fire-and-forget, limited only by the client.
   */
  maxPushesInFlight?: number;
  /**
   * Whether the trainer pulls the store's parameters into the network once an epoch's pushes are applied (default
   * true). False leaves the network holding its last fetched copy: for callers that pull when they need to (a
   * Downpour portion, whose next unit fetches its own parameters).
   */
  pullAtEpochEnd?: boolean;
}

/** The whole key space, or `range` checked against it. */
export function keyRange(keys: number, range?: KeyRange): KeyRange {
  const r = range ?? { begin: 0, end: keys };
  if (!(Number.isInteger(r.begin) && Number.isInteger(r.end) && 0 <= r.begin && r.begin <= r.end && r.end <= keys)) {
    throw new InvalidArgumentError(`key range [${r.begin}, ${r.end}) is not within [0, ${keys})`);
  }
  return r;
}
