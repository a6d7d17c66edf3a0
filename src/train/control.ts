// The shared control block of a training run: commands from the main thread, the work queue's tickets and
// completion count, the exchange point's handshake, a doorbell that wakes the main thread, progress counters,
// per-portion losses and the per-worker mailboxes of async mode, all in (Shared)ArrayBuffers driven with Atomics.
// Without worker threads the same block lives in plain ArrayBuffers (no SharedArrayBuffer needed).

export const Slot = {
  CommandSeq: 0,
  Command: 1,
  Batches: 2, // mini-batches (sync) or portions (async) in this epoch
  FirstStep: 3, // global step of the epoch's first mini-batch
  Next: 4, // the next ticket to hand out
  Completed: 5, // tickets completed (sync); every ticket's dependencies are a prefix of this count
  ExchangeRequested: 6, // sync: batches (1-based) whose gradient waits at the exchange point
  ExchangeDone: 7, // sync: batches whose exchange the main thread finished
  StopAfter: 8, // sync: 1 + the mini-batches to complete before stopping (see requestStopAfter), 0 = no stop
  BatchesDone: 9,
  SamplesDone: 10,
  WorkersDone: 11,
  StopRequested: 12, // stop at the next mini-batch boundary (sync: the next batch whose portions end; async: the next portion)
  Failed: 13,
  AsyncStep: 14,
  Doorbell: 15, // incremented (and notified) whenever the main thread has something to serve
  Backups: 16, // sync: tickets whose result came from a backup (a party that recomputed another's overdue ticket)
  Active: 17, // sync: parties 0 .. Active-1 take work; the others wait (set by the main thread's governor)
  PortionsDone: 18, // sync: portion tickets finished this epoch (the one finishing a batch's last portion decides on a stop)
  Diverged: 19, // 1 + the first mini-batch whose loss was NaN or infinite (with nonFiniteLoss "error"), 0 = none
  Size: 20,
} as const;

export const Command = { RunEpoch: 1, Quit: 2 } as const;

/** Slots of one worker's async mailbox (Int32 indices from the worker's base). */
export const Mail = {
  PushSeq: 0, // pushes posted (push n comes from accumulator (n - 1) % 2)
  PushDone: 2, // pushes the main thread finished
  FetchSeq: 3,
  FetchBuf: 4, // replica the last posted fetch fills
  FetchDone: 5,
  IdleTenthsMs: 6, // this epoch's time the worker was blocked on its mailbox (a push or fetch not yet served), in 0.1 ms
  Size: 8,
} as const;

/** Views of one run's control memory. */
export interface ControlViews {
  i32: Int32Array;
  /** The epoch's learning rate, set by the main thread before each epoch. */
  learningRate: Float64Array;
  /** Loss sums: sync per (batch, portion) at batch * portionsPerBatch + portion; async per (worker, batch). */
  lossSums: Float64Array;
  maxBatches: number;
  /** Async mailboxes: worker w's slots start at w * Mail.Size. */
  mail: Int32Array;
  /** Sync: per ticket of the epoch, 0 (not finished), Ticket.Publishing, or Ticket.Done + the winning party. */
  tickets: Int32Array;
  /** Parties (worker threads, or 1 for the calling thread). */
  parties: number;
  /** Per party, one cache line apart (see Party): the sync ticket it is executing (-1: none) and since when (ms,
   *  performance.timeOrigin + now()), and the milliseconds it has spent waiting, ever. */
  holders: Int32Array;
  since: Float64Array;
  waited: Float64Array;
}

/** Per-party slots sit a cache line apart, so that parties writing their own do not slow each other down. */
export const Party = { i32: 16, f64: 8 } as const;

/** States of a sync ticket: a party that finished computing one claims it with compareExchange(0 -> Publishing). */
export const Ticket = { Publishing: 1, Done: 2 } as const;

export interface ControlBuffers {
  control: ArrayBufferLike;
  scalars: ArrayBufferLike;
  losses: ArrayBufferLike;
  mail: ArrayBufferLike;
  tickets: ArrayBufferLike;
  holders: ArrayBufferLike;
  since: ArrayBufferLike;
  waited: ArrayBufferLike;
  maxBatches: number;
}

/** Control memory for `threads` workers; shared only when there are worker threads. */
export function createControl(threads: number, maxBatches: number, lossSlotsPerBatch: number, ticketsPerBatch: number): ControlBuffers {
  const make = (bytes: number): ArrayBufferLike => (threads > 0 ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  return {
    control: make(Slot.Size * 4),
    scalars: make(8),
    losses: make(Math.max(1, threads, lossSlotsPerBatch) * maxBatches * 8),
    mail: make(Math.max(1, threads) * Mail.Size * 4),
    tickets: make(Math.max(1, maxBatches * ticketsPerBatch) * 4),
    holders: make(Math.max(1, threads) * 64),
    since: make(Math.max(1, threads) * 64),
    waited: make(Math.max(1, threads) * 64),
    maxBatches,
  };
}

export function controlViews(buffers: ControlBuffers): ControlViews {
  return {
    i32: new Int32Array(buffers.control),
    learningRate: new Float64Array(buffers.scalars),
    lossSums: new Float64Array(buffers.losses),
    maxBatches: buffers.maxBatches,
    mail: new Int32Array(buffers.mail),
    tickets: new Int32Array(buffers.tickets),
    parties: buffers.holders.byteLength / 64,
    holders: new Int32Array(buffers.holders),
    since: new Float64Array(buffers.since),
    waited: new Float64Array(buffers.waited),
  };
}

/** Thrown in a worker that stops because another worker (or the main thread) marked the run failed. */
export class RunFailedSignal extends Error {}

/** Loads before a waiting thread sleeps: a few microseconds, so a descheduled peer gets the core back quickly. */
const SPINS = 2000;
const WAIT_MS = 50;

/**
 * Blocks a worker thread until `view[index] >= target` or `timeoutMs` (default 50 ms) have passed: spins briefly, then sleeps in
 * Atomics.wait (so a descheduled peer gets the core back quickly). Throws RunFailedSignal once the run is failed.
 */
export function waitAWhile(i32: Int32Array, view: Int32Array, index: number, target: number, timeoutMs = WAIT_MS): void {
  for (let spin = 0; spin < SPINS; spin++) if (Atomics.load(view, index) >= target) return;
  const seen = Atomics.load(view, index);
  if (seen >= target) return;
  if (Atomics.load(i32, Slot.Failed)) throw new RunFailedSignal("stopped: another worker failed");
  Atomics.wait(view, index, seen, timeoutMs);
  if (Atomics.load(i32, Slot.Failed)) throw new RunFailedSignal("stopped: another worker failed");
}

/** Adds `delta` to a slot and wakes its waiters. */
export function addAndNotify(i32: Int32Array, slot: number, delta = 1): number {
  const before = Atomics.add(i32, slot, delta);
  Atomics.notify(i32, slot);
  return before;
}

/** Wakes the main thread: something is waiting to be served. */
export function ringDoorbell(i32: Int32Array): void {
  addAndNotify(i32, Slot.Doorbell);
}

/** Marks the run failed and wakes every waiting thread, so none waits forever. */
export function signalFailure(i32: Int32Array): void {
  Atomics.store(i32, Slot.Failed, 1);
  for (const slot of [Slot.Completed, Slot.ExchangeDone, Slot.Doorbell]) Atomics.notify(i32, slot);
}

/** Stores `value` (>= 1) in a slot where 0 means unset, unless the slot already holds a smaller value. */
export function storeEarliest(i32: Int32Array, slot: number, value: number): void {
  for (let seen = Atomics.load(i32, slot); seen === 0 || value < seen; ) {
    const was = Atomics.compareExchange(i32, slot, seen, value);
    if (was === seen) return;
    seen = was;
  }
}

/** Sync: stop once the epoch's first `batches` mini-batches are complete (the earliest stop asked for wins). A stop
 *  is only asked for where no later batch has begun to change the parameters, so every batch runs whole or not. */
export function requestStopAfter(i32: Int32Array, batches: number): void {
  storeEarliest(i32, Slot.StopAfter, batches + 1);
}

/** Sync: how many of the epoch's mini-batches run before the stop (Infinity: no stop asked for). */
export function batchesBeforeStop(i32: Int32Array): number {
  const stop = Atomics.load(i32, Slot.StopAfter);
  return stop === 0 ? Number.POSITIVE_INFINITY : stop - 1;
}

/** A mini-batch's loss was NaN or infinite: remember the first such batch (0-based) and stop at the next boundary. */
export function reportDivergence(i32: Int32Array, batch: number): void {
  storeEarliest(i32, Slot.Diverged, batch + 1);
  Atomics.store(i32, Slot.StopRequested, 1);
}
