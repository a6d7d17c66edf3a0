// One party's share of an epoch, as a generator that yields whenever it must wait for something.
// Sync mode hands out tickets from one queue: per mini-batch, the row portions (forward and backward), then the
// update items' gradients, then (with an exchange point) the same items' optimizer steps. A ticket waits only
// for the tickets it depends on (a prefix of the completion count), so a thread that is descheduled holds up only
// the item it holds, and joins whatever batch is current when it runs again. Async mode runs portions back to
// back; each applies its gradient in place, or accumulates it and hands it over through the worker's mailbox.
// Worker threads drive the generator by blocking (Atomics.wait); the calling thread drives it by awaiting the
// main thread's service (the exchange point, the mailboxes): one engine for both.
import { Mail, ringDoorbell, Slot, type ControlViews } from "./control.js";
import type { StepRunner } from "./steps.js";

/** What a party waits for: `view[index] >= target`. */
export interface WaitFor {
  view: Int32Array;
  index: number;
  target: number;
}

/** The ticket structure of a sync epoch. */
export interface SyncShape {
  /** Row portions per mini-batch (the last batch leaves its surplus portions empty). */
  portions: number;
  /** Update items per mini-batch. */
  items: number;
  /** Whether gradient and apply items are separate tickets, with the exchange point between them. */
  split: boolean;
  /** Tickets per mini-batch. */
  perBatch: number;
}

export function syncShape(runner: StepRunner): SyncShape {
  const { options, updateItems, exchange } = runner.plan;
  const portions = Math.ceil(options.batchSize / options.portion);
  const items = updateItems.length;
  return { portions, items, split: exchange, perBatch: portions + items * (exchange ? 2 : 1) };
}

/** Runs worker `worker`'s share of the epoch described in the control block. */
export function runEpoch(runner: StepRunner, control: ControlViews, worker: number, mailbox: MailboxState): Generator<WaitFor, void, void> {
  runner.refreshViews();
  runner.learningRate = control.learningRate[0]!;
  return runner.plan.options.mode === "async" ? asyncEpoch(runner, control, worker, mailbox) : syncEpoch(runner, control);
}

function* waitUntil(view: Int32Array, index: number, target: number, abandoned: () => boolean): Generator<WaitFor, boolean, void> {
  while (Atomics.load(view, index) < target) {
    yield { view, index, target };
    if (abandoned()) return false;
  }
  return true;
}

function* syncEpoch(runner: StepRunner, control: ControlViews): Generator<WaitFor, void, void> {
  const { i32, lossSums } = control;
  const { samples, options, updateItems } = runner.plan;
  const set = runner.plan.sets[0]!;
  const shape = syncShape(runner);
  const { portions, items, perBatch } = shape;
  const total = Atomics.load(i32, Slot.Batches) * perBatch;
  const firstStep = Atomics.load(i32, Slot.FirstStep);
  for (let t = Atomics.add(i32, Slot.Next, 1); t < total; t = Atomics.add(i32, Slot.Next, 1)) {
    const b = Math.floor(t / perBatch);
    const i = t - b * perBatch;
    const abandoned = (): boolean => {
      const stop = Atomics.load(i32, Slot.StopAfter);
      return stop > 0 && b >= stop;
    };
    if (abandoned()) return;
    const phase = i < portions ? 0 : i < portions + items ? 1 : 2;
    const needs = b * perBatch + (phase === 0 ? 0 : phase === 1 ? portions : portions + items);
    if (!(yield* waitUntil(i32, Slot.Completed, needs, abandoned))) return;
    if (phase === 2 && !(yield* waitUntil(i32, Slot.ExchangeDone, b + 1, abandoned))) return;
    const first = b * options.batchSize;
    const rows = Math.min(options.batchSize, samples - first);
    if (phase === 0) {
      const r0 = i * options.portion;
      if (r0 < rows) {
        const count = Math.min(options.portion, rows - r0);
        runner.gather(set, r0, first + r0, count);
        lossSums[b * portions + i] = runner.forwardBackward(set, r0, count, rows, firstStep + b, true);
      }
    } else if (phase === 1) {
      const item = updateItems[i - portions]!;
      runner.gradientItem(set, item, rows);
      if (!shape.split) runner.applyItem(item, firstStep + b);
    } else {
      runner.applyItem(updateItems[i - portions - items]!, firstStep + b);
    }
    complete(control, shape, b, rows);
  }
}

// Counts a ticket done; at the phase boundaries, requests the exchange or closes the batch, and wakes waiters.
function complete(control: ControlViews, shape: SyncShape, b: number, rows: number): void {
  const { i32 } = control;
  const done = Atomics.add(i32, Slot.Completed, 1) + 1 - b * shape.perBatch;
  if (done === shape.portions) Atomics.notify(i32, Slot.Completed);
  else if (done === shape.portions + shape.items && shape.split) {
    Atomics.store(i32, Slot.ExchangeRequested, b + 1);
    ringDoorbell(i32);
    Atomics.notify(i32, Slot.Completed);
  } else if (done === shape.perBatch) {
    Atomics.add(i32, Slot.BatchesDone, 1);
    Atomics.add(i32, Slot.SamplesDone, rows);
    Atomics.notify(i32, Slot.Completed);
  }
}

/** A worker's async hand-over state, kept across epochs: which replica it computes on, which accumulator fills. */
export interface MailboxState {
  replica: number;
  accumulator: number;
  /** Portions in the filling accumulator. */
  accumulated: number;
  fetchPending: boolean;
  sinceFetch: number;
}

export function newMailboxState(): MailboxState {
  return { replica: 0, accumulator: 0, accumulated: 0, fetchPending: false, sinceFetch: 0 };
}

function* asyncEpoch(runner: StepRunner, control: ControlViews, worker: number, state: MailboxState): Generator<WaitFor, void, void> {
  const { i32, lossSums, maxBatches } = control;
  const { samples, options, mailbox } = runner.plan;
  const set = runner.plan.sets[worker]!;
  const blocks = runner.plan.blocks[worker]!;
  const mail = control.mail.subarray(worker * Mail.Size, (worker + 1) * Mail.Size);
  const never = (): boolean => false;
  runner.gradsBase = blocks.grads[state.accumulator]!;
  if (mailbox) {
    // Start the epoch on the server's current parameters.
    postFetch(i32, mail, state, blocks.replicas.length);
    yield* waitUntil(mail, Mail.FetchDone, Atomics.load(mail, Mail.FetchSeq), never);
    swapIfFetched(runner, mail, state, blocks.replicas);
  } else if (blocks.replicas.length === 0) {
    runner.paramsBase = runner.plan.params;
  }
  const portions = Atomics.load(i32, Slot.Batches);
  for (let p = Atomics.add(i32, Slot.Next, 1); p < portions; p = Atomics.add(i32, Slot.Next, 1)) {
    if (Atomics.load(i32, Slot.StopRequested)) break;
    const first = p * options.portion;
    const count = Math.min(options.portion, samples - first);
    const step = Atomics.add(i32, Slot.AsyncStep, 1);
    if (mailbox) swapIfFetched(runner, mail, state, blocks.replicas);
    runner.gather(set, 0, first, count);
    const loss = runner.forwardBackward(set, 0, count, options.batchSize, step, false);
    if (!mailbox) {
      runner.gradients(set, count);
      runner.applyAll(step);
    } else {
      runner.gradients(set, count, state.accumulated > 0);
      state.accumulated++;
      if (state.accumulated >= mailbox.nPush) yield* postPush(runner, i32, mail, state, blocks.grads);
      if (++state.sinceFetch >= mailbox.nFetch && !state.fetchPending) postFetch(i32, mail, state, blocks.replicas.length);
    }
    lossSums[worker * maxBatches + Math.floor(first / options.batchSize)]! += loss;
    Atomics.add(i32, Slot.SamplesDone, count);
  }
  if (!mailbox) return;
  if (state.accumulated > 0) yield* postPush(runner, i32, mail, state, blocks.grads);
  // The epoch ends once every push of this worker has been applied.
  yield* waitUntil(mail, Mail.PushDone, Atomics.load(mail, Mail.PushSeq), never);
  if (state.fetchPending) {
    yield* waitUntil(mail, Mail.FetchDone, Atomics.load(mail, Mail.FetchSeq), never);
    swapIfFetched(runner, mail, state, blocks.replicas);
  }
}

// Hands the filling accumulator over (push number n comes from accumulator (n - 1) % 2) and switches to the other
// one, waiting only if the main thread has not yet finished the push made from it before.
function* postPush(runner: StepRunner, i32: Int32Array, mail: Int32Array, state: MailboxState, grads: number[]): Generator<WaitFor, void, void> {
  const posted = Atomics.add(mail, Mail.PushSeq, 1) + 1;
  ringDoorbell(i32);
  state.accumulator = posted % 2;
  state.accumulated = 0;
  yield* waitUntil(mail, Mail.PushDone, posted - 1, () => false);
  runner.gradsBase = grads[state.accumulator]!;
}

// Asks for fresh parameters in the replica not in use.
function postFetch(i32: Int32Array, mail: Int32Array, state: MailboxState, replicas: number): void {
  Atomics.store(mail, Mail.FetchBuf, replicas > 1 ? 1 - state.replica : state.replica);
  Atomics.add(mail, Mail.FetchSeq, 1);
  state.fetchPending = true;
  state.sinceFetch = 0;
  ringDoorbell(i32);
}

function swapIfFetched(runner: StepRunner, mail: Int32Array, state: MailboxState, replicas: number[]): void {
  if (!state.fetchPending || Atomics.load(mail, Mail.FetchDone) < Atomics.load(mail, Mail.FetchSeq)) return;
  state.replica = Atomics.load(mail, Mail.FetchBuf);
  state.fetchPending = false;
  runner.paramsBase = replicas[state.replica]!;
}
