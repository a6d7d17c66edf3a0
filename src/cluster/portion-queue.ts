// The work queue of Downpour's portions across processes (DistBelief's Sandblaster, MapReduce's backup tasks): an
// epoch's order of rows is cut into "units" (contiguous blocks of unitRows rows), which task 0 of the job leases out
// over NATS request/reply on downpour.<job>.portions, so that faster tasks train more units. Once no unit is left
// unleased, an idle task gets a backup copy of a unit another task still holds (the oldest lease first, at most one
// backup per unit); the first completion of a unit counts, a later one is dropped. A lease held longer than leaseMs
// returns its unit to the queue (a task that died). `fixed` hands task t only the units u with u % tasks == t, with
// no backups: fixed equal splits, over the same requests. PortionQueue is the state (no I/O), PortionQueueServer
// serves it, PortionQueueClient asks it; messages are plain msgpack maps (codec.ts), every field checked.
import { type Msg, type NatsConnection, NoRespondersError, type Subscription } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.js";
import { MAX_SPEC_HASH_LENGTH, packValue, unpackValue } from "./codec.js";
import { ClusterError, describeValue, MessageError } from "./errors.js";
import { checkJobId, isPeerName, SUBJECT_ROOT } from "./subjects.js";

/** The version every request and reply carries; the queue refuses requests of another version. */
export const PORTION_PROTOCOL_VERSION = 1;

/** The subject a job's portion queue answers on: downpour.<job>.portions (the job id checked). */
export function portionSubject(job: string): string {
  return `${SUBJECT_ROOT}.${checkJobId(job)}.portions`;
}

/** Options of PortionQueue. Defaults are in PORTION_QUEUE_DEFAULTS. */
export interface PortionQueueOptions {
  /** Tasks of the job (task indices 0..tasks-1). */
  tasks: number;
  /** Rows of an epoch (the whole training set). */
  rows: number;
  /** Rows per unit (the last unit of an epoch may be shorter). */
  unitRows: number;
  /** Hand idle tasks backup copies of units still out (default true; never with fixed). */
  backups?: boolean;
  /** Fixed equal splits: task t gets only the units u with u % tasks == t, and no backups (default false). */
  fixed?: boolean;
  /** A lease held longer than this returns its unit to the queue, in ms (default 60 000). */
  leaseMs?: number;
  /** The clock, in ms (default performance.now; tests pass their own). */
  now?: () => number;
}

/** The default of every optional PortionQueueOptions field. */
export const PORTION_QUEUE_DEFAULTS = Object.freeze({
  backups: true,
  fixed: false,
  leaseMs: 60_000,
  now: (): number => performance.now(),
});

/** What one epoch gave, over the first completion of each of its units. */
export interface EpochSummary {
  epoch: number;
  /** Units of the epoch. */
  units: number;
  /** Summed loss and rows of the first completions. */
  lossSum: number;
  rows: number;
  /** From the epoch's first lease to its last unit's first completion. */
  seconds: number;
}

/** The answer to a lease: a unit, a backup copy of a unit `of` another task holds, "wait" (ask again), or "done". */
export type LeaseAnswer =
  | { kind: "unit"; unit: number; begin: number; end: number }
  | { kind: "backup"; unit: number; begin: number; end: number; of: number }
  | { kind: "wait" }
  | { kind: "done"; summary: EpochSummary };

/** One task's counts, over every epoch. */
export interface TaskCounters {
  /** Units leased to it (backups included). */
  leased: number;
  /** Backup copies it was given. */
  backups: number;
  /** Its completions that were first (the units it is credited with). */
  first: number;
  /** Its completions that came after another's (dropped). */
  duplicates: number;
}

/** The queue's counters, over every epoch. */
export interface PortionCounters {
  /** Leases handed out (units and backups). */
  leased: number;
  /** Backup copies handed out. */
  backupsIssued: number;
  /** Units whose first completion came from the backup copy. */
  backupsWon: number;
  /** Completions dropped because the unit was completed already. */
  duplicates: number;
  /** Leases that ran past leaseMs (their units returned to the queue unless another task still held them). */
  expired: number;
  /** Epochs opened so far. */
  epochs: number;
  perTask: TaskCounters[];
}

/** A lease of a unit: who holds it since when, and whether it is the backup copy. */
interface Holder {
  task: number;
  since: number;
  backup: boolean;
}

/** One epoch's state. */
interface EpochState {
  epoch: number;
  /** Unleased units: one queue, or one per task (fixed); returned units go to the front. */
  queues: number[][];
  /** Outstanding units and their holders (at most two: the lease and its backup). */
  holders: Map<number, Holder[]>;
  /** Per unit: the tasks it was ever leased to (bit t), and whether it had its backup. */
  leasedTo: Map<number, Set<number>>;
  backedUp: Set<number>;
  done: Uint8Array;
  remaining: number;
  lossSum: number;
  rows: number;
  opened: number;
  closed: number;
}

/** A request the queue refuses (its state unchanged); `field` names the request field at fault. */
export class PortionRequestError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/**
 * The portion queue's state: epochs are opened in order (epoch e + 1 once every unit of e was completed), units
 * leased and completed as the file's comment says. Throws PortionRequestError naming the field for a request it
 * refuses. No I/O; the clock is options.now.
 */
export class PortionQueue {
  readonly tasks: number;
  readonly rows: number;
  readonly unitRows: number;
  /** Units per epoch: ceil(rows / unitRows). */
  readonly units: number;
  readonly backups: boolean;
  readonly fixed: boolean;
  readonly leaseMs: number;
  readonly #now: () => number;
  #current: EpochState | undefined;
  /** Summaries of the epochs closed before the previous one, for tasks that ask late. */
  readonly #closed = new Map<number, EpochSummary>();
  #previous: EpochState | undefined;
  readonly #counters: PortionCounters;

  constructor(options: PortionQueueOptions) {
    const bad = (field: string, expected: string, value: unknown): never => {
      throw new InvalidArgumentError(`PortionQueue: ${field} must be ${expected}, got ${describeValue(value)}`);
    };
    if (!Number.isInteger(options.tasks) || options.tasks < 1) bad("tasks", "a positive integer", options.tasks);
    if (!Number.isInteger(options.rows) || options.rows < 1) bad("rows", "a positive integer", options.rows);
    if (!Number.isInteger(options.unitRows) || options.unitRows < 1) bad("unitRows", "a positive integer", options.unitRows);
    const leaseMs = options.leaseMs ?? PORTION_QUEUE_DEFAULTS.leaseMs;
    if (!(typeof leaseMs === "number" && leaseMs > 0)) bad("leaseMs", "a positive number (ms)", leaseMs);
    this.tasks = options.tasks;
    this.rows = options.rows;
    this.unitRows = options.unitRows;
    this.units = Math.ceil(options.rows / options.unitRows);
    this.fixed = options.fixed ?? PORTION_QUEUE_DEFAULTS.fixed;
    this.backups = !this.fixed && (options.backups ?? PORTION_QUEUE_DEFAULTS.backups);
    this.leaseMs = leaseMs;
    this.#now = options.now ?? PORTION_QUEUE_DEFAULTS.now;
    const perTask = Array.from({ length: this.tasks }, () => ({ leased: 0, backups: 0, first: 0, duplicates: 0 }));
    this.#counters = { leased: 0, backupsIssued: 0, backupsWon: 0, duplicates: 0, expired: 0, epochs: 0, perTask };
  }

  /** Rows [begin, end) of the epoch's order that unit `unit` covers. */
  unitRange(unit: number): { begin: number; end: number } {
    return { begin: unit * this.unitRows, end: Math.min(this.rows, (unit + 1) * this.unitRows) };
  }

  /** A copy of the counters. */
  counters(): PortionCounters {
    return { ...this.#counters, perTask: this.#counters.perTask.map((t) => ({ ...t })) };
  }

  /** The epoch open now (-1 before the first lease). */
  get epoch(): number {
    return this.#current?.epoch ?? -1;
  }

  /** Task `task` asks for work in epoch `epoch`. */
  lease(task: number, epoch: number): LeaseAnswer {
    this.checkTask(task);
    const closed = this.#closed.get(epoch);
    if (closed !== undefined) return { kind: "done", summary: closed };
    const state = this.openFor(epoch);
    if (state.remaining === 0) return { kind: "done", summary: summaryOf(state) };
    this.expire(state);
    const queue = state.queues[this.fixed ? task : 0]!;
    const unit = queue.shift();
    if (unit !== undefined) return this.give(state, unit, task, false);
    const backup = this.backups ? this.backupFor(state, task) : undefined;
    if (backup === undefined) return { kind: "wait" };
    const of = state.holders.get(backup)![0]!.task;
    const answer = this.give(state, backup, task, true);
    return { ...answer, kind: "backup", of } as LeaseAnswer;
  }

  /**
   * Task `task` trained unit `unit` of `epoch` (rows of it, loss summed over them): true when this is the unit's first
   * completion (it counts), false when another came first (dropped).
   */
  complete(task: number, epoch: number, unit: number, lossSum: number, rows: number): boolean {
    this.checkTask(task);
    const state = [this.#current, this.#previous].find((s) => s !== undefined && s.epoch === epoch);
    if (!Number.isInteger(unit) || unit < 0 || unit >= this.units) {
      throw new PortionRequestError(`unit ${describeValue(unit)} is not a unit of the epoch (an integer in [0, ${this.units}))`, "unit");
    }
    if (state === undefined && Number.isInteger(epoch) && epoch >= 0 && epoch < this.epoch) {
      // A slow copy of a unit of an epoch long closed (every unit of it was completed before the next opened): a
      // duplicate, dropped like any second result.
      this.#counters.perTask[task]!.duplicates++;
      this.#counters.duplicates++;
      return false;
    }
    if (state === undefined) throw new PortionRequestError(`epoch ${describeValue(epoch)} is not open (the queue is at epoch ${this.epoch})`, "epoch");
    if (!state.leasedTo.get(unit)?.has(task)) throw new PortionRequestError(`unit ${unit} of epoch ${epoch} was never leased to task ${task}`, "unit");
    const { begin, end } = this.unitRange(unit);
    if (rows !== end - begin) throw new PortionRequestError(`rows ${describeValue(rows)}: unit ${unit} has ${end - begin} rows`, "rows");
    if (typeof lossSum !== "number" || Number.isNaN(lossSum)) throw new PortionRequestError(`loss ${describeValue(lossSum)} is not a number`, "loss");
    const holders = state.holders.get(unit) ?? [];
    const mine = holders.find((h) => h.task === task);
    const counts = this.#counters.perTask[task]!;
    if (state.done[unit]) {
      if (mine) state.holders.set(unit, holders.filter((h) => h !== mine));
      counts.duplicates++;
      this.#counters.duplicates++;
      return false;
    }
    state.done[unit] = 1;
    state.holders.delete(unit);
    for (const queue of state.queues) {
      const at = queue.indexOf(unit);
      if (at >= 0) queue.splice(at, 1); // an expired lease's unit, completed after all
    }
    state.remaining--;
    state.lossSum += lossSum;
    state.rows += rows;
    if (state.remaining === 0) state.closed = this.#now();
    counts.first++;
    if (mine?.backup) this.#counters.backupsWon++;
    return true;
  }

  private checkTask(task: number): void {
    if (!Number.isInteger(task) || task < 0 || task >= this.tasks) {
      throw new PortionRequestError(`task ${describeValue(task)} is not a task of the job (an integer in [0, ${this.tasks}))`, "task");
    }
  }

  /** The state of `epoch`, opening it when it is the next one and the current one is done. */
  private openFor(epoch: number): EpochState {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new PortionRequestError(`epoch ${describeValue(epoch)} is not an integer >= 0`, "epoch");
    const current = this.#current;
    if (current?.epoch === epoch) return current;
    if (this.#previous?.epoch === epoch) return this.#previous;
    const next = current === undefined ? 0 : current.epoch + 1;
    if (epoch !== next) throw new PortionRequestError(`epoch ${epoch} cannot open: the queue is at epoch ${this.epoch}`, "epoch");
    if (current !== undefined && current.remaining > 0) {
      throw new PortionRequestError(`epoch ${epoch} cannot open: epoch ${current.epoch} has ${current.remaining} units not completed`, "epoch");
    }
    // The epoch before the previous one leaves; its summary stays for a slow task still asking about it.
    if (this.#previous !== undefined) this.#closed.set(this.#previous.epoch, summaryOf(this.#previous));
    this.#previous = current;
    this.#current = this.newEpoch(epoch);
    this.#counters.epochs++;
    return this.#current;
  }

  private newEpoch(epoch: number): EpochState {
    const queues = Array.from({ length: this.fixed ? this.tasks : 1 }, () => [] as number[]);
    for (let u = 0; u < this.units; u++) queues[this.fixed ? u % this.tasks : 0]!.push(u);
    return {
      epoch, queues, holders: new Map(), leasedTo: new Map(), backedUp: new Set(), done: new Uint8Array(this.units),
      remaining: this.units, lossSum: 0, rows: 0, opened: this.#now(), closed: Number.NaN,
    };
  }

  private give(state: EpochState, unit: number, task: number, backup: boolean): LeaseAnswer {
    const holders = state.holders.get(unit) ?? [];
    holders.push({ task, since: this.#now(), backup });
    state.holders.set(unit, holders);
    const ever = state.leasedTo.get(unit) ?? new Set<number>();
    ever.add(task);
    state.leasedTo.set(unit, ever);
    const counts = this.#counters.perTask[task]!;
    counts.leased++;
    this.#counters.leased++;
    if (backup) {
      state.backedUp.add(unit);
      counts.backups++;
      this.#counters.backupsIssued++;
    }
    return { kind: "unit", unit, ...this.unitRange(unit) };
  }

  /** The outstanding unit, held by one other task and never backed up, with the oldest lease (undefined: none). */
  private backupFor(state: EpochState, task: number): number | undefined {
    let best: number | undefined;
    let since = Number.POSITIVE_INFINITY;
    for (const [unit, holders] of state.holders) {
      if (holders.length !== 1 || state.backedUp.has(unit) || holders[0]!.task === task) continue;
      if (holders[0]!.since < since) {
        since = holders[0]!.since;
        best = unit;
      }
    }
    return best;
  }

  /** Drops leases older than leaseMs; a unit left without a holder goes back to the front of its queue. */
  private expire(state: EpochState): void {
    const now = this.#now();
    const returned: number[] = [];
    for (const [unit, holders] of state.holders) {
      const live = holders.filter((h) => now - h.since <= this.leaseMs);
      if (live.length === holders.length) continue;
      this.#counters.expired += holders.length - live.length;
      if (live.length > 0) state.holders.set(unit, live);
      else returned.push(unit);
    }
    // In unit order, ahead of the units never leased.
    for (const unit of returned.sort((a, b) => b - a)) {
      state.holders.delete(unit);
      state.queues[this.fixed ? unit % this.tasks : 0]!.unshift(unit);
    }
  }
}

function summaryOf(state: EpochState): EpochSummary {
  return { epoch: state.epoch, units: state.done.length, lossSum: state.lossSum, rows: state.rows, seconds: (state.closed - state.opened) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// The wire: requests and replies as msgpack maps.

/** The operations of a request. */
export type PortionOp = "lease" | "complete" | "stats";
const OPS: readonly PortionOp[] = ["lease", "complete", "stats"];

/** A request to the queue. */
export interface PortionRequest {
  v: number;
  job: string;
  /** The job's spec hash (the queue refuses another). */
  spec: string;
  /** The sender's name, for messages. */
  from: string;
  op: PortionOp;
  task: number;
  /** lease and complete. */
  epoch?: number;
  /** complete: the unit, its rows and the loss summed over them. */
  unit?: number;
  rows?: number;
  loss?: number;
}

/** A reply: the answer, or a refusal naming the field. */
export interface PortionReply {
  v: number;
  lease?: LeaseAnswer;
  first?: boolean;
  stats?: PortionCounters;
  error?: { field: string; message: string };
}

const isInt = (value: unknown, min: number): value is number => Number.isSafeInteger(value) && (value as number) >= min;

/** Checks a decoded request's fields (MessageError naming the first wrong one); returns it typed. */
export function checkPortionRequest(value: unknown, subject: string, job: string, spec: string): PortionRequest {
  const map = typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) ? (value as Record<string, unknown>) : undefined;
  const sender = map && isPeerName(map.from) ? map.from : undefined;
  const refuse = (field: string, what: string): never => {
    throw new MessageError(what, { sender, field, subject }, job);
  };
  if (map === undefined) return refuse("encoding", "not a msgpack map");
  if (map.v !== PORTION_PROTOCOL_VERSION) refuse("v", `protocol version ${describeValue(map.v)}, the queue speaks version ${PORTION_PROTOCOL_VERSION}`);
  if (map.job !== job) refuse("job", `a request for job ${describeValue(map.job)} reached the portion queue of job "${job}"`);
  if (typeof map.spec !== "string" || map.spec.length > MAX_SPEC_HASH_LENGTH) refuse("spec", `spec ${describeValue(map.spec)} is not a spec hash`);
  if (map.spec !== spec) refuse("spec", `spec hash ${describeValue(map.spec)} differs from the job's ${JSON.stringify(spec)}`);
  if (sender === undefined) refuse("from", `from ${describeValue(map.from)} is not a sender name (1 to 128 characters)`);
  if (!OPS.includes(map.op as PortionOp)) refuse("op", `op ${describeValue(map.op)} is not one of ${OPS.join(", ")}`);
  if (!isInt(map.task, 0)) refuse("task", `task ${describeValue(map.task)} is not a task index (an integer >= 0)`);
  if (map.op !== "stats" && !isInt(map.epoch, 0)) refuse("epoch", `epoch ${describeValue(map.epoch)} is not an integer >= 0`);
  if (map.op === "complete") {
    if (!isInt(map.unit, 0)) refuse("unit", `unit ${describeValue(map.unit)} is not an integer >= 0`);
    if (!isInt(map.rows, 1)) refuse("rows", `rows ${describeValue(map.rows)} is not a positive integer`);
    if (typeof map.loss !== "number" || Number.isNaN(map.loss)) refuse("loss", `loss ${describeValue(map.loss)} is not a number`);
  }
  return map as unknown as PortionRequest;
}

/** Options of PortionQueueServer.start. */
export interface PortionQueueServerOptions extends PortionQueueOptions {
  job: string;
  /** The job's spec hash; requests with another are refused. */
  specHash: string;
  connection: NatsConnection;
  /** Where refused requests are reported (default: none; the refusal is also the reply). */
  onError?: (error: ClusterError) => void;
}

/** Serves a PortionQueue on portionSubject(job) until close(); requests are handled one at a time, in arrival order. */
export class PortionQueueServer {
  readonly queue: PortionQueue;
  readonly subject: string;
  #sub: Subscription | undefined;
  #refused = 0;
  /** Tasks that asked for the counters (a task does so once it has trained its last epoch). */
  readonly #reported = new Set<number>();
  #onReport: (() => void) | undefined;

  private constructor(
    private readonly options: PortionQueueServerOptions,
    queue: PortionQueue,
  ) {
    this.queue = queue;
    this.subject = portionSubject(options.job);
  }

  /** Checks the options (InvalidArgumentError naming the field), subscribes and flushes: serving once resolved. */
  static async start(options: PortionQueueServerOptions): Promise<PortionQueueServer> {
    const server = new PortionQueueServer(options, new PortionQueue(options));
    server.#sub = options.connection.subscribe(server.subject, { callback: (error, msg) => {
      if (!error) server.handle(msg);
    } });
    await options.connection.flush();
    return server;
  }

  /** Requests refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Resolves once every task in [0, tasks) has asked for the counters, or after `timeoutMs`, with the tasks that did
   * not (a task that died: the job ends without it; its units came back through lease expiry).
   */
  async waitForReports(tasks: number, timeoutMs: number): Promise<number[]> {
    const missing = () => Array.from({ length: tasks }, (_, t) => t).filter((t) => !this.#reported.has(t));
    const until = performance.now() + timeoutMs;
    while (missing().length > 0 && performance.now() < until) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, until - performance.now()));
        this.#onReport = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#onReport = undefined;
    return missing();
  }

  /** Stops answering. */
  async close(): Promise<void> {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    if (!this.options.connection.isClosed()) await this.options.connection.flush().catch(() => {});
  }

  private handle(msg: Msg): void {
    let reply: PortionReply;
    try {
      reply = { v: PORTION_PROTOCOL_VERSION, ...this.answer(msg) };
    } catch (thrown) {
      const error = thrown instanceof MessageError ? thrown : new MessageError(
        thrown instanceof Error ? thrown.message : String(thrown),
        { sender: senderName(msg), field: thrown instanceof PortionRequestError ? thrown.field : "internal", subject: msg.subject },
        this.options.job,
        { cause: thrown },
      );
      this.#refused++;
      this.options.onError?.(error);
      reply = { v: PORTION_PROTOCOL_VERSION, error: { field: error.field, message: error.message } };
    }
    if (msg.reply) msg.respond(packValue(reply));
  }

  private answer(msg: Msg): Omit<PortionReply, "v"> {
    let value: unknown;
    try {
      value = unpackValue(msg.data);
    } catch (error) {
      throw new MessageError(`${msg.data.byteLength} bytes that are not one msgpack value`, { sender: undefined, field: "encoding", subject: msg.subject }, this.options.job, { cause: error });
    }
    const request = checkPortionRequest(value, msg.subject, this.options.job, this.options.specHash);
    const q = this.queue;
    if (request.op === "stats") {
      this.#reported.add(request.task);
      this.#onReport?.();
      return { stats: q.counters() };
    }
    if (request.op === "lease") return { lease: q.lease(request.task, request.epoch!) };
    return { first: q.complete(request.task, request.epoch!, request.unit!, request.loss!, request.rows!) };
  }
}

function senderName(msg: Msg): string | undefined {
  try {
    const from = (unpackValue(msg.data) as Record<string, unknown>)?.from;
    return isPeerName(from) ? from : undefined;
  } catch {
    return undefined;
  }
}

/** A request to the portion queue that failed: refused (field named), no answer, or an unreadable reply. */
export class PortionQueueError extends ClusterError {
  constructor(
    message: string,
    readonly field: string,
    job: string,
    options?: { cause?: unknown },
  ) {
    super(message, job, options);
  }
}

/** Options of PortionQueueClient. Defaults are in PORTION_CLIENT_DEFAULTS. */
export interface PortionQueueClientOptions {
  job: string;
  specHash: string;
  connection: NatsConnection;
  /** This task's index and its name. */
  task: number;
  name: string;
  /** How long one request waits for its reply, in ms (default 30 000; a lease is not retried after a timeout). */
  requestTimeoutMs?: number;
  /** How long requests go on while no queue is subscribed (no responders), in ms (default 30 000). */
  upTimeoutMs?: number;
}

export const PORTION_CLIENT_DEFAULTS = Object.freeze({ requestTimeoutMs: 30_000, upTimeoutMs: 30_000 });

/** A task's side of the portion queue. */
export class PortionQueueClient {
  readonly subject: string;
  /** The task's name, as its requests give it. */
  readonly name: string;

  constructor(private readonly options: PortionQueueClientOptions) {
    this.subject = portionSubject(options.job);
    this.name = options.name;
  }

  /** Asks for work in `epoch`. Rejects with PortionQueueError naming the field the queue refused, or "timeout". */
  async lease(epoch: number): Promise<LeaseAnswer> {
    return (await this.request({ op: "lease", epoch })).lease!;
  }

  /** Reports unit `unit` of `epoch` trained; resolves with whether this was its first completion. */
  async complete(epoch: number, unit: number, lossSum: number, rows: number): Promise<boolean> {
    return (await this.request({ op: "complete", epoch, unit, loss: lossSum, rows })).first!;
  }

  /** The queue's counters. */
  async stats(): Promise<PortionCounters> {
    return (await this.request({ op: "stats" })).stats!;
  }

  private async request(body: Partial<PortionRequest>): Promise<PortionReply> {
    const { job, specHash, connection, task, name } = this.options;
    const request: PortionRequest = { v: PORTION_PROTOCOL_VERSION, job, spec: specHash, from: name, task, op: "stats", ...body };
    const timeout = this.options.requestTimeoutMs ?? PORTION_CLIENT_DEFAULTS.requestTimeoutMs;
    const upUntil = performance.now() + (this.options.upTimeoutMs ?? PORTION_CLIENT_DEFAULTS.upTimeoutMs);
    for (;;) {
      let msg: Msg;
      try {
        msg = await connection.request(this.subject, packValue(request), { timeout });
      } catch (error) {
        const noResponders = error instanceof NoRespondersError || (error as { code?: string })?.code === "503";
        if (noResponders && performance.now() < upUntil) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        const what = noResponders ? "no portion queue is serving" : `no answer in ${timeout} ms`;
        throw new PortionQueueError(`${request.op} of ${name} on ${this.subject}: ${what}`, noResponders ? "no-responders" : "timeout", job, { cause: error });
      }
      return this.readReply(msg, request);
    }
  }

  private readReply(msg: Msg, request: PortionRequest): PortionReply {
    const { job, name } = this.options;
    let reply: PortionReply;
    try {
      reply = unpackValue(msg.data) as PortionReply;
    } catch (error) {
      throw new PortionQueueError(`${request.op} of ${name}: the queue's reply is not msgpack`, "encoding", job, { cause: error });
    }
    if (reply?.error) throw new PortionQueueError(`${request.op} of ${name} refused (${reply.error.field}): ${reply.error.message}`, reply.error.field, job);
    const ok = request.op === "lease" ? typeof reply?.lease?.kind === "string" : request.op === "complete" ? typeof reply?.first === "boolean" : typeof reply?.stats === "object";
    if (!ok || reply.v !== PORTION_PROTOCOL_VERSION) throw new PortionQueueError(`${request.op} of ${name}: the queue's reply is not a ${request.op} answer`, "reply", job);
    return reply;
  }
}
