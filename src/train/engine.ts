// One party's share of an epoch, as a generator that yields whenever it must wait for something.
// Sync mode hands out tickets from one queue: per mini-batch, the row portions (forward and backward), then the
// update items' gradients, then (with an exchange point) the same items' optimizer steps. A ticket waits only
// for the tickets it depends on (a prefix of the completion count), so a thread that is descheduled holds up only
// the item it holds, and joins whatever batch is current when it runs again. Async mode runs portions back to
// back; each applies its gradient in place, or accumulates it and hands it over through the worker's mailbox.
// Worker threads drive the generator by blocking (Atomics.wait); the calling thread drives it by awaiting the
// main thread's service (the exchange point, the mailboxes): one engine for both. A stop (an abort, a NaN or
// infinite loss) takes effect at a mini-batch boundary, so the parameters always hold whole mini-batches' updates.
import {
  batchesBeforeStop,
  type ControlViews,
  Mail,
  Party,
  reportDivergence,
  requestStopAfter,
  ringDoorbell,
  Slot,
  Ticket,
} from "./control.js";
import type { TrainPlan } from "./plan.js";
import type { StepRunner } from "./steps.js";

/** What a party waits for: `view[index] >= target`; it looks again after `timeoutMs` at the latest. */
export interface WaitFor {
  view: Int32Array;
  index: number;
  target: number;
  timeoutMs?: number;
  /** Not a wait (the target is met): the calling thread's party (threads: 0) yields this at each mini-batch, so that
   *  the main thread can report progress and let the event loop run (an abort, a dispose). */
  checkpoint?: true;
}

/** The checkpoint the calling thread's party yields at each mini-batch. */
function checkpointOf(i32: Int32Array): WaitFor {
  return { view: i32, index: Slot.Next, target: Number.NEGATIVE_INFINITY, checkpoint: true };
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

export function syncShape(plan: TrainPlan): SyncShape {
  const { options, updateItems, exchange } = plan;
  const portions = Math.ceil(options.batchSize / options.portion);
  const items = updateItems.length;
  return { portions, items, split: exchange, perBatch: portions + items * (exchange ? 2 : 1) };
}

/** Runs party `party`'s share of the epoch described in the control block. */
export function runEpoch(runner: StepRunner, control: ControlViews, party: number, mailbox: MailboxState): Generator<WaitFor, void, void> {
  runner.refreshViews();
  runner.learningRate = control.learningRate[0]!;
  return runner.plan.options.mode === "async" ? asyncEpoch(runner, control, party, mailbox) : new SyncEpoch(runner, control, party).run();
}

function* waitUntil(view: Int32Array, index: number, target: number, abandoned: () => boolean): Generator<WaitFor, boolean, void> {
  while (Atomics.load(view, index) < target) {
    yield { view, index, target };
    if (abandoned()) return false;
  }
  return true;
}

/** A ticket: batch b's i-th, in phase 0 (portions), 1 (gradient or fused items) or 2 (split apply items). */
interface TicketInfo {
  t: number;
  b: number;
  i: number;
  phase: 0 | 1 | 2;
}

/** Time in ms that every thread reads alike. */
const now = (): number => performance.timeOrigin + performance.now();

/** A party waiting this many times longer than a ticket usually takes recomputes it (a backup), and not sooner. */
const BACKUP_FACTOR = 4;
const BACKUP_MIN_MS = 0.25;
/** How often a waiting party looks for a ticket to back up. */
const BACKUP_POLL_MS = 0.25;
/** How often a parked party looks whether the epoch ended. */
const PARKED_POLL_MS = 5;

/**
 * One party's share of a sync epoch. Portions and gradient items are computed into the party's private memory and
 * then claimed (compareExchange on the ticket): only the first to claim publishes, so when a party that holds a
 * ticket is descheduled, a waiting party recomputes the ticket and the batch goes on; the late party's result is
 * dropped. Apply items update in place and are never run twice.
 */
class SyncEpoch {
  private readonly shape: SyncShape;
  private readonly total: number;
  private readonly firstStep: number;
  /** This party's recent execution time per phase, in ms. */
  private readonly usualMs = [0.1, 0.1, 0.1];
  /** Whether this is the only party (no backups: results go straight to the shared buffers). */
  private readonly alone: boolean;
  /** Whether the ticket being executed goes straight to the shared buffers (see execute). */
  private direct = false;
  /** On the calling thread (threads: 0): what it yields at each mini-batch; otherwise undefined. */
  private readonly checkpoint: WaitFor | undefined;
  private readonly stopOnNonFinite: boolean;

  constructor(
    private readonly runner: StepRunner,
    private readonly control: ControlViews,
    private readonly party: number,
  ) {
    this.shape = syncShape(runner.plan);
    this.total = Atomics.load(control.i32, Slot.Batches) * this.shape.perBatch;
    this.firstStep = Atomics.load(control.i32, Slot.FirstStep);
    this.alone = control.parties < 2;
    this.checkpoint = runner.plan.threads === 0 ? checkpointOf(control.i32) : undefined;
    this.stopOnNonFinite = runner.plan.options.nonFiniteLoss === "error";
  }

  *run(): Generator<WaitFor, void, void> {
    const { i32 } = this.control;
    for (;;) {
      // A party the governor parked takes no ticket (so it holds none) until it is let back in.
      while (this.party >= Atomics.load(i32, Slot.Active)) {
        if (Atomics.load(i32, Slot.Next) >= this.total || Atomics.load(i32, Slot.StopAfter) > 0) return;
        yield { view: i32, index: Slot.Active, target: this.party + 1, timeoutMs: PARKED_POLL_MS };
      }
      const t = Atomics.add(i32, Slot.Next, 1);
      if (t >= this.total) return;
      const ticket = this.info(t);
      if (this.checkpoint && ticket.i === 0) yield this.checkpoint;
      const abandoned = (): boolean => this.abandoned(ticket.b);
      if (abandoned()) return;
      // (The checks before yield* spare a generator per ticket when nothing needs waiting for.)
      const needs = this.phaseStart(ticket.b, ticket.phase);
      if (Atomics.load(i32, Slot.Completed) < needs && !(yield* this.awaitDependencies(needs, abandoned))) return;
      const exchanged = ticket.phase !== 2 || Atomics.load(i32, Slot.ExchangeDone) > ticket.b;
      if (!exchanged && !(yield* waitUntil(i32, Slot.ExchangeDone, ticket.b + 1, abandoned))) return;
      // Again: a stop may have been decided while the dependencies completed (see portionDone).
      if (abandoned()) return;
      this.execute(ticket, false);
    }
  }

  private info(t: number): TicketInfo {
    const { portions, items, perBatch } = this.shape;
    const b = Math.floor(t / perBatch);
    const i = t - b * perBatch;
    return { t, b, i, phase: i < portions ? 0 : i < portions + items ? 1 : 2 };
  }

  private phaseStart(b: number, phase: number): number {
    const { portions, items, perBatch } = this.shape;
    return b * perBatch + (phase === 0 ? 0 : phase === 1 ? portions : portions + items);
  }

  private abandoned(b: number): boolean {
    return b >= batchesBeforeStop(this.control.i32);
  }

  // Waits until the tickets before `target` (this ticket's phase) are complete, backing up overdue ones meanwhile.
  private *awaitDependencies(target: number, abandoned: () => boolean): Generator<WaitFor, boolean, void> {
    const { i32 } = this.control;
    while (Atomics.load(i32, Slot.Completed) < target) {
      yield { view: i32, index: Slot.Completed, target, timeoutMs: BACKUP_POLL_MS };
      if (abandoned()) return false;
      if (Atomics.load(i32, Slot.Completed) < target) this.backUpOverdue(target);
    }
    return true;
  }

  // Recomputes a ticket before `target` that another party has held for far longer than such tickets take.
  private backUpOverdue(target: number): void {
    const { holders, since, tickets } = this.control;
    for (let p = 0; p < this.control.parties; p++) {
      if (p === this.party) continue;
      const t = Atomics.load(holders, p * Party.i32);
      if (t < 0 || t >= target || Atomics.load(tickets, t) !== 0) continue;
      const ticket = this.info(t);
      if (ticket.phase === 2) continue;
      if (now() - since[p * Party.f64]! < Math.max(BACKUP_MIN_MS, BACKUP_FACTOR * this.usualMs[ticket.phase]!)) continue;
      this.execute(ticket, true);
      return;
    }
  }

  private execute(ticket: TicketInfo, backup: boolean): void {
    const { holders, since, i32 } = this.control;
    const started = now();
    // Alone (no other party, or the only one the governor lets work), a party computes straight into the shared
    // rows and does not show its ticket to others: no one backs it up.
    this.direct = this.alone || (Atomics.load(i32, Slot.Active) === 1 && !backup);
    since[this.party * Party.f64] = started;
    if (!this.direct) Atomics.store(holders, this.party * Party.i32, ticket.t);
    this.maybeStall(ticket);
    const won = ticket.phase === 0 ? this.runPortion(ticket) : ticket.phase === 1 ? this.runGradient(ticket) : this.runApply(ticket);
    if (backup && won) Atomics.add(this.control.i32, Slot.Backups, 1);
    Atomics.store(holders, this.party * Party.i32, -1);
    this.usualMs[ticket.phase] = 0.75 * this.usualMs[ticket.phase]! + 0.25 * (now() - started);
  }

  private batchRows(b: number): { first: number; rows: number } {
    const { samples, options } = this.runner.plan;
    const first = b * options.batchSize;
    return { first, rows: Math.min(options.batchSize, samples - first) };
  }

  // Tests only: pause here as a descheduled thread would (never on the calling thread, which must not block).
  private maybeStall(ticket: TicketInfo): void {
    const stall = this.runner.plan.stall;
    if (!stall || stall.party !== this.party || this.runner.plan.threads === 0 || ticket.phase === 2 || ticket.t % stall.every !== 0)
      return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stall.ms);
  }

  // Each run* returns whether this party's result counted (it won the claim).
  private runPortion({ t, b, i }: TicketInfo): boolean {
    const { runner } = this;
    const { options, sets, portionSets } = runner.plan;
    const { first, rows } = this.batchRows(b);
    const r0 = i * options.portion;
    const count = Math.min(options.portion, rows - r0);
    if (count <= 0) {
      if (!this.claim(t)) return false;
      this.portionDone(b);
      this.finish(t, b, rows);
      return true;
    }
    let loss: number;
    if (this.direct) {
      // Nobody can back this party up: compute straight into the batch's rows.
      runner.gather(sets[0]!, r0, first + r0, count);
      loss = runner.forwardBackward(sets[0]!, r0, count, rows, this.firstStep + b, true);
      this.claim(t);
      runner.packDeltas(sets[0]!, r0, count, rows);
    } else {
      const own = portionSets[this.party]!;
      runner.gather(own, 0, first + r0, count);
      loss = runner.forwardBackward(own, 0, count, rows, this.firstStep + b, true, r0);
      if (!this.claim(t)) return false;
      runner.publish(own, sets[0]!, r0, count);
      runner.packDeltas(sets[0]!, r0, count, rows);
    }
    this.control.lossSums[b * this.shape.portions + i] = loss;
    if (this.stopOnNonFinite && !Number.isFinite(loss)) reportDivergence(this.control.i32, b);
    this.portionDone(b);
    this.finish(t, b, rows);
    return true;
  }

  // Counts a finished portion (before finish() counts its ticket complete). The party that finishes batch b's last
  // portion stops the epoch before b if a stop was requested: nothing of b has changed the parameters yet, since
  // b's gradient and apply items wait for this ticket's completion, and they look for the stop after that wait.
  private portionDone(b: number): void {
    const { i32 } = this.control;
    const done = Atomics.add(i32, Slot.PortionsDone, 1) + 1;
    if (done === (b + 1) * this.shape.portions && Atomics.load(i32, Slot.StopRequested)) requestStopAfter(i32, b);
  }

  private runGradient({ t, b, i }: TicketInfo): boolean {
    const { runner } = this;
    const { plan } = runner;
    const { rows } = this.batchRows(b);
    const item = plan.updateItems[i - this.shape.portions]!;
    runner.gradsBase = plan.partyGrads[this.party]!;
    runner.gradientItem(plan.sets[0]!, item, rows);
    if (!this.claim(t)) return false;
    if (!this.shape.split) runner.applyItem(item, this.firstStep + b);
    this.finish(t, b, rows);
    return true;
  }

  private runApply({ t, b, i }: TicketInfo): boolean {
    const { runner } = this;
    runner.gradsBase = runner.plan.grads;
    runner.applyItem(runner.plan.updateItems[i - this.shape.portions - this.shape.items]!, this.firstStep + b);
    this.finish(t, b, this.batchRows(b).rows);
    return true;
  }

  private claim(t: number): boolean {
    return Atomics.compareExchange(this.control.tickets, t, 0, Ticket.Publishing) === 0;
  }

  // Marks a ticket done by this party (its claimer, or the only party that runs apply items) and counts it; at the
  // phase boundaries, requests the exchange or closes the batch, and wakes the waiters.
  private finish(t: number, b: number, rows: number): void {
    const { i32, tickets } = this.control;
    const shape = this.shape;
    Atomics.store(tickets, t, Ticket.Done + this.party);
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
  const checkpoint = runner.plan.threads === 0 ? checkpointOf(i32) : undefined;
  const portionsPerBatch = Math.ceil(options.batchSize / options.portion);
  const stopOnNonFinite = options.nonFiniteLoss === "error";
  runner.gradsBase = blocks.grads[state.accumulator]!;
  const idle = { ms: 0 };
  if (mailbox) {
    // Start the epoch on the server's current parameters.
    postFetch(i32, mail, state, blocks.replicas.length);
    yield* waitMail(mail, Mail.FetchDone, Atomics.load(mail, Mail.FetchSeq), idle);
    swapIfFetched(runner, mail, state, blocks.replicas);
  } else if (blocks.replicas.length === 0) {
    runner.paramsBase = runner.plan.params;
  }
  const portions = Atomics.load(i32, Slot.Batches);
  for (let p = Atomics.add(i32, Slot.Next, 1); p < portions; p = Atomics.add(i32, Slot.Next, 1)) {
    if (checkpoint && p % portionsPerBatch === 0) yield checkpoint;
    if (Atomics.load(i32, Slot.StopRequested)) break;
    const first = p * options.portion;
    const count = Math.min(options.portion, samples - first);
    const step = Atomics.add(i32, Slot.AsyncStep, 1);
    if (mailbox) swapIfFetched(runner, mail, state, blocks.replicas);
    runner.gather(set, 0, first, count);
    const loss = runner.forwardBackward(set, 0, count, options.batchSize, step, false);
    if (stopOnNonFinite && !Number.isFinite(loss)) {
      // Not applied: the other workers stop after their current portion.
      lossSums[worker * maxBatches + Math.floor(first / options.batchSize)]! += loss;
      reportDivergence(i32, Math.floor(first / options.batchSize));
      break;
    }
    if (!mailbox) {
      runner.gradients(set, count);
      runner.applyAll(step);
    } else {
      runner.gradients(set, count, state.accumulated > 0);
      state.accumulated++;
      if (state.accumulated >= mailbox.nPush) yield* postPush(runner, i32, mail, state, blocks.grads, idle);
      if (++state.sinceFetch >= mailbox.nFetch && !state.fetchPending) postFetch(i32, mail, state, blocks.replicas.length);
    }
    lossSums[worker * maxBatches + Math.floor(first / options.batchSize)]! += loss;
    Atomics.add(i32, Slot.SamplesDone, count);
  }
  if (!mailbox) return;
  if (state.accumulated > 0) yield* postPush(runner, i32, mail, state, blocks.grads, idle);
  // The epoch ends once every push of this worker has been applied.
  yield* waitMail(mail, Mail.PushDone, Atomics.load(mail, Mail.PushSeq), idle);
  if (state.fetchPending) {
    yield* waitMail(mail, Mail.FetchDone, Atomics.load(mail, Mail.FetchSeq), idle);
    swapIfFetched(runner, mail, state, blocks.replicas);
  }
  Atomics.store(mail, Mail.IdleTenthsMs, Math.min(2 ** 31 - 1, Math.round(idle.ms * 10)));
}

// Waits for a mailbox slot, adding the time blocked to `idle.ms`.
function* waitMail(mail: Int32Array, index: number, target: number, idle: { ms: number }): Generator<WaitFor, void, void> {
  if (Atomics.load(mail, index) >= target) return;
  const from = now();
  yield* waitUntil(mail, index, target, () => false);
  idle.ms += now() - from;
}

// Hands the filling accumulator over (push number n comes from accumulator (n - 1) % 2) and switches to the other
// one, waiting only if the main thread has not yet finished the push made from it before.
function* postPush(
  runner: StepRunner,
  i32: Int32Array,
  mail: Int32Array,
  state: MailboxState,
  grads: number[],
  idle: { ms: number },
): Generator<WaitFor, void, void> {
  const posted = Atomics.add(mail, Mail.PushSeq, 1) + 1;
  ringDoorbell(i32);
  state.accumulator = posted % 2;
  state.accumulated = 0;
  yield* waitMail(mail, Mail.PushDone, posted - 1, idle);
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
