// The client of a job's parameter-server shards (ps-shard.ts), in the spirit of ps-lite's KVWorker: push and pull
// over key ranges of the flat parameter block, split by the shards' ranges and sent to every shard in parallel over
// NATS request/reply, bulk data as raw float32 frames; pushes carry (worker, seq) and are retried with the same seq
// on timeout, so a shard applies each once. It keeps the versions it saw per shard, so a worker knows its staleness.
// Connection losses: nats.js 3.x keeps what is published while disconnected in its outbound buffer and discards
// that buffer when it dials again (ProtocolHandler.prepare -> resetOutbound), and what was in flight when the socket
// died is gone too, so the client watches the connection's status: a disconnect ends every attempt in flight at
// once, the client waits (up to outageMs) for the reconnect and sends them again with the same (worker, seq), and
// such repeats, and "no responders" while the shards re-subscribe, do not use up the attempts.
import { createInbox, type Msg, type NatsConnection, NoRespondersError, type Subscription } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.js";
import { type KeyRange, keyRange, type ParameterClient, type PushInfo } from "../train/exchange.js";
import { describeValue } from "../util/describe.js";
import { bytesToFloat32, chunkBytesFor, decodeFrame, encodeFrames, float32Bytes, LITTLE_ENDIAN, specTag } from "./chunks.js";
import { type ClusterConnectionOptions, type ConnectionWatch, connectCluster, connectionLossError, isNatsConnection, watchConnection } from "./connection.js";
import { type ClusterError, MessageError } from "./errors.js";
import { DEFAULT_SHARD_ALIGN, shardRanges } from "./partition.js";
import {
  isSpecHash,
  isUint32,
  MAX_SHARDS,
  metaHeaders,
  ParameterServerError,
  type ParameterServerFailure,
  PS_HEADER_ROOM_BYTES,
  PS_PROTOCOL_VERSION,
  rangeText,
  type ReplyMeta,
  type RequestMeta,
  readReplyMeta,
  type ShardInfo,
  shardSubjects,
} from "./ps-protocol.js";
import { parseInfo } from "./ps-shard.js";
import { checkJobId, isPeerName } from "./subjects.js";

/** Fault injection for tests: what the client does to its own traffic. */
export interface ParameterClientFaults {
  /**
   * Called once per attempt of a push or pull to one shard; returning true makes the client ignore that attempt's
   * reply, as if it were lost on the wire (the shard still handles the request), so the attempt times out and the
   * request is retried: a push with the same (worker, seq).
   */
  dropReply?: (attempt: { shard: number; op: "push" | "pull" | "clock"; attempt: number; seq?: number }) => boolean;
  /** Called once per attempt: a positive result holds that attempt back this many ms before it is sent (a slow link;
   *  a push's gradient was copied already). */
  delayMs?: (attempt: { shard: number; op: "push" | "pull" | "clock"; attempt: number }) => number;
}

/** Options of ShardedParameterClient.connect. Defaults are in PARAMETER_CLIENT_DEFAULTS. */
export interface ParameterClientOptions {
  /** The job id. */
  job: string;
  /** How many shards serve the key space (as they were started). */
  shards: number;
  /** Length of the key space (one block of the parameter layout, in floats). */
  keys: number;
  /** An open connection (kept open by close()), or how to open one (closed by close()). */
  connection: NatsConnection | ClusterConnectionOptions;
  /** The job's spec hash; a shard with another is refused at connect (default ""). */
  specHash?: string;
  /** This worker's id, unique in the job (an integer in [0, 2^32)); pushes without PushInfo carry it. */
  worker: number;
  /** The name shards use for this client in error messages (default "worker <worker>"). */
  name?: string;
  /** Keys a shard boundary is a multiple of (default DEFAULT_SHARD_ALIGN, as the shards were started with). */
  align?: number;
  /** How long one attempt of a request waits for its whole reply, in ms (default 10 000). */
  requestTimeoutMs?: number;
  /** Attempts per request to one shard before it fails with ParameterServerError (default 3). */
  attempts?: number;
  /** The wait before retrying when no shard was subscribed (no responders), in ms (default 100). */
  retryDelayMs?: number;
  /** How long connect waits for every shard to answer, in ms (default 30 000). */
  connectTimeoutMs?: number;
  /** The most payload bytes per frame (default: the server's max_payload minus the frame and header room). */
  maxChunkBytes?: number;
  /** How long a request waits for a lost connection to come back, and keeps re-sending after a reconnect, in ms
   *  (default 60 000); past it the request fails with ParameterServerError "timeout" naming the outage. */
  outageMs?: number;
  /** How long "no responders" from a shard is taken for a shard re-subscribing (after a reconnect of its own or a
   *  fail-over) and retried without using up an attempt, in ms from the first one (default 5 000). */
  shardWaitMs?: number;
  /** Where a lost and regained connection is reported (a ConnectionLostError, or a SlowConsumerError when this
   *  process had stalled before; default: console.error of the message). */
  onError?: (error: ClusterError) => void;
  /**
   * Whether this client's sequence numbers go on above every version the shards reported at connect (default
   * false): a job that goes on from restored shards, whose duplicate windows hold its earlier run's (worker, seq)
   * pairs, must not have its new pushes taken for retries of those. A worker's earlier seqs never exceed a shard's
   * version then (each push of it was one update), so the new ones are all fresh.
   */
  continueSequences?: boolean;
  /** Fault injection, for tests (default none). */
  faults?: ParameterClientFaults;
}

/** The default of every optional ParameterClientOptions field. */
export const PARAMETER_CLIENT_DEFAULTS = Object.freeze({
  specHash: "",
  align: DEFAULT_SHARD_ALIGN,
  requestTimeoutMs: 10_000,
  attempts: 3,
  retryDelayMs: 100,
  connectTimeoutMs: 30_000,
  readWaitMs: 60_000,
  outageMs: 60_000,
  shardWaitMs: 5_000,
  onError: (error: ClusterError): void => console.error(`downpour: ${error.message}`),
});

/**
 * A read's clock condition (SSP, Ho et al. 2013; BSP with staleness 0): each shard answers only once at least
 * `workers` workers have pushed to it and every one not idle has a clock (pushes applied from it) >= minClock.
 */
export interface ReadCondition {
  minClock: number;
  /** The job's worker count (tasks x threads). */
  workers: number;
  /** How long a shard waits for the clocks before refusing (field "clock", naming the slowest worker), in ms
   *  (default PARAMETER_CLIENT_DEFAULTS.readWaitMs). */
  waitMs?: number;
}

/** What a read gives: the lowest version of the values and the lowest clock of the active workers when they were read
 *  (undefined when no worker not idle had pushed to a shard). */
export interface ReadResult {
  version: number;
  clock: number | undefined;
}

/** What the client knows of one shard's version clock. */
export interface ShardVersion {
  shard: number;
  /** The keys the shard owns. */
  range: KeyRange;
  /** The version of the values this client last pulled from the shard (0 before any pull). */
  pulled: number;
  /** The newest version any reply of the shard reported (its info at connect, acknowledgements, pulls). */
  latest: number;
}

/** What a client has sent and received. */
export interface ParameterClientStats {
  /** push() calls resolved. */
  pushes: number;
  /** pull() calls resolved. */
  pulls: number;
  /** Attempts repeated after a timeout, no responders or a connection loss (resent counts the last two kinds). */
  retries: number;
  /** Pushes a shard acknowledged as already applied (a retry whose first attempt had been applied). */
  deduped: number;
  /** Message bodies sent (frames and requests), in bytes. */
  bytesOut: number;
  /** Message bodies received (replies and frames), in bytes. */
  bytesIn: number;
  /** Times the connection came back after a loss (nats.js "reconnect" events seen). */
  reconnects: number;
  /** Attempts sent again because the connection was lost during them, or a shard was re-subscribing (these do not
   *  count against `attempts`; a push's repeat carries the same (worker, seq)). */
  resent: number;
}

/** One shard's part of a request. */
interface Part {
  shard: number;
  begin: number;
  end: number;
}

/** How one attempt ended, short of a refusal (which rejects). `lost`: the connection was lost during it. */
type Outcome = { reply: ReplyMeta } | { failure: ParameterServerFailure; cause: string; lost?: boolean };

/** A request awaiting its reply: handle() sees every message addressed to it. */
interface Waiting {
  handle(msg: Msg): void;
  fail(error: Error): void;
  /** The connection was lost: the attempt ends now (its frames or its reply may be gone). */
  interrupt(): void;
}

interface Config {
  job: string;
  shards: number;
  keys: number;
  specHash: string;
  worker: number;
  name: string;
  align: number;
  requestTimeoutMs: number;
  attempts: number;
  retryDelayMs: number;
  connectTimeoutMs: number;
  outageMs: number;
  shardWaitMs: number;
  onError: (error: ClusterError) => void;
  maxChunkBytes: number | undefined;
  faults: ParameterClientFaults;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A ParameterClient over a job's shards. Calls may overlap (several pushes and pulls in flight); each request to a
 * shard is independent, and a shard applies pushes in the order it receives them.
 */
export class ShardedParameterClient implements ParameterClient {
  readonly keys: number;
  readonly shards: number;
  readonly job: string;
  readonly worker: number;
  /** The key range each shard owns (shardRanges(keys, shards, align)). */
  readonly ranges: readonly KeyRange[];
  /**
   * The epoch pushes report (default 0): set it at each epoch when the shards decay the learning rate per epoch
   * (ShardOptimizerOptions.decayEvery "epoch"). A shard uses the highest epoch any push carried.
   */
  epoch = 0;
  readonly #inbox = createInbox();
  readonly #waiting = new Map<number, Waiting>();
  readonly #versions: { pulled: number; latest: number }[];
  /** continueSequences: added to every sequence number (0 otherwise). */
  #seqBase = 0;
  readonly #stats: ParameterClientStats = { pushes: 0, pulls: 0, retries: 0, deduped: 0, bytesOut: 0, bytesIn: 0, reconnects: 0, resent: 0 };
  readonly #tag: number;
  readonly #chunkBytes: number;
  readonly #names: string[];
  #nextId = 0;
  #seq = 0;
  #closed = false;
  #sub: Subscription | undefined;
  /** The connection's state as its status events tell: how many losses so far, since when it is down, when it came
   *  back last, and who waits for it to come back. */
  #losses = 0;
  #downSince: number | undefined;
  #upAt = 0;
  #upWaiters: (() => void)[] = [];
  #interrupted = 0;
  #watch: ConnectionWatch | undefined;

  private constructor(
    private readonly config: Config,
    private readonly nc: NatsConnection,
    private readonly ownConnection: boolean,
  ) {
    this.keys = config.keys;
    this.shards = config.shards;
    this.job = config.job;
    this.worker = config.worker;
    this.ranges = Object.freeze(shardRanges(config.keys, config.shards, config.align).map((r) => Object.freeze(r)));
    this.#versions = this.ranges.map(() => ({ pulled: 0, latest: 0 }));
    this.#tag = specTag(config.specHash);
    this.#chunkBytes = chunkBytesFor((nc.info?.max_payload ?? 1024 * 1024) - PS_HEADER_ROOM_BYTES, config.maxChunkBytes);
    this.#names = this.ranges.map((_, k) => `shard ${k}`);
  }

  /**
   * Checks the options (InvalidArgumentError naming the field), connects when given connection options, and asks
   * every shard for its info until each answered or connectTimeoutMs passed. Resolves with a client whose shards are
   * all up; rejects with ParameterServerError naming the shard: "timeout" / "no-responders" (not up in time), or
   * "mismatch" with the field (another spec hash, key count, shard count, range or job).
   */
  static async connect(options: ParameterClientOptions): Promise<ShardedParameterClient> {
    const config = resolveClientOptions(options);
    const ownConnection = !isNatsConnection(options.connection);
    const nc = ownConnection
      ? await connectCluster({ name: `downpour-${config.job}-worker-${config.worker}`, ...(options.connection as ClusterConnectionOptions) })
      : (options.connection as NatsConnection);
    const client = new ShardedParameterClient(config, nc, ownConnection);
    try {
      client.listen();
      client.watchConnection();
      await nc.flush();
      // Every shard asked in parallel; the lowest-numbered failure is the one reported.
      const answers = await Promise.allSettled(client.ranges.map((_, k) => client.describe(k)));
      const failed = answers.find((a) => a.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      if (options.continueSequences === true) client.#seqBase = Math.max(0, ...client.#versions.map((v) => v.latest));
      return client;
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /**
   * Sends `grads[begin..end)` (the whole key space when `range` is omitted; `grads` is laid out like the parameters,
   * indexed by key) to the shards that own those keys, in parallel, as one push of (worker, seq): `from`, or this
   * client's worker and its next sequence number.
   *
   * Copying: copies `grads` synchronously, before returning the promise; the caller may reuse it at once.
   * Completion: resolves once every shard involved has acknowledged (applied the part, or found it already applied),
   * with the lowest of their versions after it. A part that gets no reply in requestTimeoutMs is sent again with the
   * same (worker, seq), up to `attempts` times; rejects with ParameterServerError naming the shard, the range and the
   * cause after the last, or at once when a shard refuses the part (nothing applied on that shard; the other
   * shards' parts may have been applied). Rejects with InvalidArgumentError for a bad range, `grads` shorter than the
   * range's end or a bad `from`.
   */
  push(grads: Float32Array, range?: KeyRange, from?: PushInfo): Promise<number> {
    try {
      this.requireOpen("push");
      const r = keyRange(this.keys, range);
      if (!(grads instanceof Float32Array) || grads.length < r.end) {
        throw new InvalidArgumentError(`push: grads must be a Float32Array of at least ${r.end} floats (keys ${rangeText(r)}), got ${grads instanceof Float32Array ? `${grads.length} floats` : describeValue(grads)}`);
      }
      const info = this.pushInfo(from);
      const epoch = this.epoch;
      const sends = this.parts(r).map((part) => {
        const payload = float32Bytes(grads.subarray(part.begin, part.end));
        const frames = encodeFrames(payload, { kind: "f32", sender: info.worker, specTag: this.#tag, step: 0, seq: info.seq }, this.#chunkBytes);
        return () => this.request(part, "push", frames, { worker: info.worker, seq: info.seq, epoch }, undefined);
      });
      if (sends.length === 0) return Promise.resolve(this.lowest(this.parts({ begin: 0, end: this.keys }), "latest"));
      return Promise.all(sends.map((send) => send())).then((replies) => {
        this.#stats.pushes++;
        return Math.min(...replies.map((reply) => reply.version));
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes the shards' current values of keys [begin, end) (the whole key space when `range` is omitted) into
   * `into[begin..end)`, asking every shard involved in parallel.
   *
   * Copying: the values are written straight into `into` as their frames arrive; nothing else is kept.
   * Completion: resolves once every part of `into[begin..end)` holds its shard's values, with the lowest of the
   * shards' versions of them (versions() has each). The caller must not touch `into[begin..end)` until then; after a
   * rejection its contents there are undefined. Retried like push (a pull has no side effect on a shard); rejects
   * with ParameterServerError after the last attempt or on a refusal, InvalidArgumentError for a bad range or an
   * `into` shorter than its end.
   */
  pull(into: Float32Array, range?: KeyRange): Promise<number> {
    return this.read(into, range).then((result) => result.version);
  }

  /**
   * A pull (copying and completion as pull's) that each shard answers only once `condition` holds on it (none: at
   * once). Each attempt waits condition.waitMs longer than requestTimeoutMs for its reply. Rejects with
   * ParameterServerError "refused", field "clock", when a shard's wait ran out (the message names the slowest worker
   * and its clock).
   */
  read(into: Float32Array, range?: KeyRange, condition?: ReadCondition): Promise<ReadResult> {
    try {
      this.requireOpen("pull");
      const r = keyRange(this.keys, range);
      if (!(into instanceof Float32Array) || into.length < r.end) {
        throw new InvalidArgumentError(`pull: into must be a Float32Array of at least ${r.end} floats (keys ${rangeText(r)}), got ${into instanceof Float32Array ? `${into.length} floats` : describeValue(into)}`);
      }
      const parts = this.parts(r);
      if (parts.length === 0) return Promise.resolve({ version: this.lowest(this.parts({ begin: 0, end: this.keys }), "pulled"), clock: undefined });
      const extra: Partial<RequestMeta> = condition
        ? { minClock: condition.minClock, workers: condition.workers, waitMs: condition.waitMs ?? PARAMETER_CLIENT_DEFAULTS.readWaitMs }
        : {};
      return Promise.all(parts.map((part) => this.request(part, "pull", undefined, extra, into))).then((replies) => {
        this.#stats.pulls++;
        const clocks = replies.flatMap((reply) => (reply.clock === undefined ? [] : [reply.clock]));
        return { version: Math.min(...replies.map((reply) => reply.version)), clock: clocks.length ? Math.min(...clocks) : undefined };
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Tells every shard that `workers` push nothing more for now: their clocks hold no read back until their next push
   * (a task whose epoch or training ended). Resolves once every shard acknowledged; rejects like push.
   */
  idle(workers: readonly number[]): Promise<void> {
    try {
      this.requireOpen("clock");
      if (!workers.every(isUint32)) throw new InvalidArgumentError(`idle: workers must be worker ids in [0, 2^32), got ${describeValue(workers)}`);
      const parts = this.parts({ begin: 0, end: this.keys });
      return Promise.all(parts.map((part) => this.request(part, "clock", undefined, { idle: [...workers] }, undefined))).then(() => undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Per shard: the version of this client's last pull from it and the newest version it has seen (copies). */
  versions(): ShardVersion[] {
    return this.ranges.map((range, shard) => ({ shard, range: { ...range }, ...this.#versions[shard]! }));
  }

  /**
   * How many updates this client's copy of keys [begin, end) is behind, as far as it knows: the most, over the
   * shards owning them, of latest - pulled (0 right after a pull; grows with every acknowledged push seen).
   */
  staleness(range?: KeyRange): number {
    const parts = this.parts(keyRange(this.keys, range));
    return parts.reduce((most, p) => Math.max(most, this.#versions[p.shard]!.latest - this.#versions[p.shard]!.pulled), 0);
  }

  /** A snapshot of the counters. */
  get stats(): ParameterClientStats {
    return { ...this.#stats };
  }

  /**
   * Rejects every request in flight with ParameterServerError "closed", stops listening and closes the connection
   * when the client opened it. Later calls reject the same way. Does not touch the shards.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiting of [...this.#waiting.values()]) waiting.fail(new Error("the client was closed"));
    this.#waiting.clear();
    this.#watch?.stop();
    for (const wake of this.#upWaiters.splice(0)) wake();
    this.#sub?.unsubscribe();
    if (this.ownConnection) await this.nc.close().catch(() => {});
  }

  private requireOpen(op: "push" | "pull" | "clock"): void {
    if (this.#closed) {
      throw new ParameterServerError(`${op}: the parameter client of worker ${this.worker} (job "${this.job}") is closed`, {
        shard: -1, range: { begin: 0, end: this.keys }, op, reason: "closed", attempts: 0,
      }, this.job);
    }
  }

  private pushInfo(from: PushInfo | undefined): PushInfo {
    if (from === undefined) return { worker: this.worker, seq: this.#seqBase + ++this.#seq };
    if (typeof from !== "object" || from === null || !isUint32(from.worker) || !isUint32(from.seq) || from.seq === 0) {
      throw new InvalidArgumentError(`push: from must be { worker, seq } with a worker id in [0, 2^32) and a seq in [1, 2^32), got ${describeValue(from)}`);
    }
    if (!isUint32(this.#seqBase + from.seq)) throw new InvalidArgumentError(`push: seq ${from.seq} above the base ${this.#seqBase} (continueSequences) leaves [1, 2^32)`);
    return this.#seqBase === 0 ? from : { worker: from.worker, seq: this.#seqBase + from.seq };
  }

  /** The non-empty parts of `r` by shard. */
  private parts(r: KeyRange): Part[] {
    const parts: Part[] = [];
    this.ranges.forEach((owned, shard) => {
      const begin = Math.max(r.begin, owned.begin);
      const end = Math.min(r.end, owned.end);
      if (begin < end) parts.push({ shard, begin, end });
    });
    return parts;
  }

  private lowest(parts: Part[], which: "pulled" | "latest"): number {
    return parts.length === 0 ? 0 : Math.min(...parts.map((p) => this.#versions[p.shard]![which]));
  }

  /** One subscription for every reply: <inbox>.<request id>. */
  private listen(): void {
    this.#sub = this.nc.subscribe(`${this.#inbox}.*`, {
      callback: (error, msg) => {
        if (error) return;
        const id = Number(msg.subject.slice(this.#inbox.length + 1));
        this.#stats.bytesIn += msg.data.byteLength;
        this.#waiting.get(id)?.handle(msg);
      },
    });
  }

  /** Follows the connection: a loss ends the attempts in flight, a reconnect wakes the waiters and is reported. */
  private watchConnection(): void {
    this.#watch = watchConnection(this.nc, {
      lost: () => this.lost(),
      back: (loss, back) => {
        this.regained();
        const who = { client: `${this.config.name} (parameter client)`, subject: `${this.#inbox}.*`, recovery: `its ${this.#interrupted} request part(s) in flight are sent again` };
        this.config.onError(connectionLossError(loss, back, who, this.job));
      },
    });
  }

  private lost(): void {
    this.#losses++;
    this.#downSince ??= Date.now();
    this.#interrupted = this.#waiting.size;
    for (const waiting of [...this.#waiting.values()]) waiting.interrupt();
  }

  private regained(): void {
    if (this.#closed) return;
    this.#downSince = undefined;
    this.#upAt = Date.now();
    this.#stats.reconnects++;
    for (const wake of this.#upWaiters.splice(0)) wake();
  }

  /** Resolves once the connection is up (at once when it is); throws ParameterServerError "timeout" when it stayed
   *  down past the request's outage deadline. */
  private async connected(part: Part, op: "push" | "pull" | "clock", deadline: number, attempt: number): Promise<void> {
    while (this.#downSince !== undefined && !this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ParameterServerError(
          `${op} of keys ${rangeText(part)} to shard ${part.shard} of job "${this.job}" failed: the connection to NATS has been down for ${Date.now() - this.#downSince} ms (outageMs ${this.config.outageMs})`,
          { shard: part.shard, range: part, op, reason: "timeout", attempts: attempt },
          this.job,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 1_000));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#upWaiters.push(done);
      });
    }
  }

  /** Whether a failed attempt is repeated without using up one of the attempts: the connection was lost during it,
   *  or a shard had no responders while it may be re-subscribing (within shardWaitMs of the first, or within outageMs
   *  of this client's reconnect). Never past the request's outage deadline. */
  private excused(outcome: { failure: ParameterServerFailure; lost?: boolean }, losses: number, deadline: number, firstNoResponders: number): boolean {
    const now = Date.now();
    if (now >= deadline) return false;
    if (outcome.lost || losses !== this.#losses || this.#downSince !== undefined) return true;
    if (outcome.failure !== "no-responders") return false;
    return now - firstNoResponders < this.config.shardWaitMs || (this.#upAt > 0 && now - this.#upAt < this.config.outageMs);
  }

  /** A part's request, attempt after attempt; resolves with the reply, rejects with ParameterServerError. */
  private async request(part: Part, op: "push" | "pull" | "clock", frames: Uint8Array[] | undefined, extra: Partial<RequestMeta>, into: Float32Array | undefined): Promise<ReplyMeta> {
    const { attempts, outageMs, retryDelayMs } = this.config;
    const deadline = Date.now() + outageMs;
    let last: Outcome = { failure: "timeout", cause: "no attempt" };
    let counted = 0;
    let firstNoResponders = Number.POSITIVE_INFINITY;
    // Bounded: every pass either uses up an attempt or is excused, and excuses end at the deadline.
    for (let attempt = 1; counted < attempts; attempt++) {
      this.requireOpen(op);
      await this.connected(part, op, deadline, attempt);
      this.requireOpen(op);
      const losses = this.#losses;
      last = await this.attempt(part, op, attempt, frames, extra, into);
      if ("reply" in last) {
        const v = this.#versions[part.shard]!;
        v.latest = Math.max(v.latest, last.reply.version);
        if (op === "pull") v.pulled = last.reply.version;
        if (last.reply.deduped) this.#stats.deduped++;
        return last.reply;
      }
      if (last.failure === "no-responders") firstNoResponders = Math.min(firstNoResponders, Date.now());
      if (this.excused(last, losses, deadline, firstNoResponders)) this.#stats.resent++;
      else counted++;
      if (counted < attempts) {
        this.#stats.retries++;
        if (last.failure === "no-responders" || last.lost) await sleep(retryDelayMs);
      }
    }
    const failure = last as { failure: ParameterServerFailure; cause: string };
    throw new ParameterServerError(
      `${op} of keys ${rangeText(part)} to shard ${part.shard} of job "${this.job}" failed after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${failure.cause}`,
      { shard: part.shard, range: part, op, reason: failure.failure, attempts },
      this.job,
    );
  }

  /** Sends one attempt and waits for its reply (or its timeout). A refusal rejects (ParameterServerError "refused"). */
  private attempt(part: Part, op: "push" | "pull" | "clock", attempt: number, frames: Uint8Array[] | undefined, extra: Partial<RequestMeta>, into: Float32Array | undefined): Promise<Outcome> {
    this.#nextId = (this.#nextId + 1) >>> 0;
    const id = this.#nextId;
    const c = this.config;
    const meta: RequestMeta = { v: PS_PROTOCOL_VERSION, job: c.job, spec: c.specHash, from: c.name, worker: c.worker, begin: part.begin, end: part.end, id, ...extra };
    const dropped = c.faults.dropReply?.({ shard: part.shard, op, attempt, seq: extra.seq }) === true;
    return new Promise<Outcome>((resolve, reject) => {
      const timeout = c.requestTimeoutMs + (extra.waitMs ?? 0);
      const timer = setTimeout(() => settle(() => resolve({ failure: "timeout", cause: `no reply within ${timeout} ms` })), timeout);
      const settle = (done: () => void) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        done();
      };
      const receive = op === "pull" ? this.pullReceiver(part, id, into!) : undefined;
      this.#waiting.set(id, {
        handle: (msg) => {
          if (dropped) return;
          try {
            if (msg.headers?.code === 503) return settle(() => resolve({ failure: "no-responders", cause: `no shard ${part.shard} is subscribed to ${this.subject(part.shard, op)}` }));
            const reply = this.replyOf(msg, part, op, attempt);
            if (receive === undefined) return settle(() => resolve({ reply }));
            if (receive(msg, reply)) settle(() => resolve({ reply }));
          } catch (error) {
            settle(() => reject(error));
          }
        },
        fail: (error) => settle(() => reject(this.closedError(part, op, attempt, error))),
        interrupt: () => settle(() => resolve({ failure: "timeout", cause: "the connection to NATS was lost during the attempt", lost: true })),
      });
      const send = () => {
        try {
          if (!this.#closed) this.send(part, op, id, meta, frames, attempt);
        } catch (error) {
          settle(() => reject(error));
        }
      };
      const delay = c.faults.delayMs?.({ shard: part.shard, op, attempt }) ?? 0;
      if (delay > 0) setTimeout(send, delay);
      else send();
    });
  }

  private subject(shard: number, op: "push" | "pull" | "clock"): string {
    const subjects = shardSubjects(this.job, shard);
    return op === "push" ? subjects.push : op === "pull" ? subjects.pull : subjects.clock;
  }

  /** Publishes an attempt: the push's frames (request id as their superstep field; copies for a retry) or the pull. */
  private send(part: Part, op: "push" | "pull" | "clock", id: number, meta: RequestMeta, frames: Uint8Array[] | undefined, attempt: number): void {
    const options = { reply: `${this.#inbox}.${id}`, headers: metaHeaders(meta) };
    const subject = this.subject(part.shard, op);
    if (frames === undefined) {
      this.nc.publish(subject, new Uint8Array(0), options);
      return;
    }
    for (const original of frames) {
      // The first attempt's frames are not published yet when their id is set; a retry's are, so it sends copies.
      const frame = attempt === 1 ? original : original.slice();
      new DataView(frame.buffer, frame.byteOffset).setUint32(12, id, true);
      this.#stats.bytesOut += frame.byteLength;
      this.nc.publish(subject, frame, options);
    }
  }

  /** A reply's metadata, checked; a refusal throws ParameterServerError "refused" naming the shard's field. */
  private replyOf(msg: Msg, part: Part, op: "push" | "pull" | "clock", attempt: number): ReplyMeta {
    // Checked field by field (a refusal's error fields are strings; the others well typed): MessageError otherwise.
    const meta = readReplyMeta(msg.headers, msg.subject, this.job, this.#names[part.shard]);
    if (meta.error !== undefined) {
      const e = meta.error;
      throw new ParameterServerError(
        `${op} of keys ${rangeText(part)} was refused by shard ${part.shard} of job "${this.job}" (${e.field}): ${e.message}`,
        { shard: part.shard, range: part, op, reason: "refused", field: e.field, attempts: attempt },
        this.job,
      );
    }
    if (meta.v !== PS_PROTOCOL_VERSION || meta.shard !== part.shard || !Number.isSafeInteger(meta.version)) {
      throw new MessageError(`a reply that is not shard ${part.shard}'s (v ${describeValue(meta.v)}, shard ${describeValue(meta.shard)}, version ${describeValue(meta.version)})`, {
        sender: this.#names[part.shard], field: "header", subject: msg.subject,
      }, this.job);
    }
    return meta;
  }

  /** The frame handler of one pull attempt: writes each chunk into `into`; returns true once every chunk is in. */
  private pullReceiver(part: Part, id: number, into: Float32Array): (msg: Msg, reply: ReplyMeta) => boolean {
    const expected = (part.end - part.begin) * 4;
    let seen: Uint8Array | undefined;
    let got = 0;
    return (msg) => {
      const frame = decodeFrame(msg.data, msg.subject, this.#names, this.job);
      const refuse = (field: string, what: string): never => {
        throw new MessageError(what, { sender: this.#names[part.shard], field, subject: msg.subject }, this.job);
      };
      if (frame.kind !== "f32" || frame.sender !== part.shard || frame.step !== id) refuse("frame", `a ${frame.kind} frame of shard ${frame.sender}, request ${frame.step}; expected f32 from shard ${part.shard}, request ${id}`);
      if (frame.total !== expected) refuse("length", `${frame.total} bytes for keys ${rangeText(part)} (expected ${expected})`);
      seen ??= new Uint8Array(frame.count);
      if (seen.length !== frame.count || seen[frame.index]) return false;
      seen[frame.index] = 1;
      got++;
      const offset = part.begin * 4 + frame.index * frame.chunkBytes;
      if (LITTLE_ENDIAN) new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(frame.payload, offset);
      else into.set(bytesToFloat32(new Uint8Array(frame.payload)), offset / 4);
      return got === frame.count;
    };
  }

  private closedError(part: Part, op: "push" | "pull" | "clock", attempt: number, cause: Error): ParameterServerError {
    return new ParameterServerError(`${op} of keys ${rangeText(part)} to shard ${part.shard} of job "${this.job}" did not finish: ${cause.message}`, {
      shard: part.shard, range: part, op, reason: "closed", attempts: attempt,
    }, this.job, { cause });
  }

  /** Asks shard k for its info until it answers (bounded by connectTimeoutMs) and checks it is the shard expected. */
  private async describe(k: number): Promise<void> {
    const c = this.config;
    const range = this.ranges[k]!;
    const deadline = Date.now() + c.connectTimeoutMs;
    let failure: ParameterServerFailure = "timeout";
    let attempts = 0;
    for (;;) {
      attempts++;
      const wait = Math.max(1, Math.min(c.requestTimeoutMs, deadline - Date.now()));
      try {
        const msg = await this.nc.request(shardSubjects(c.job, k).info, new Uint8Array(0), { timeout: wait });
        return this.checkInfo(k, parseInfo(msg.data), attempts);
      } catch (error) {
        if (error instanceof ParameterServerError) throw error;
        failure = isNoResponders(error) ? "no-responders" : "timeout";
      }
      if (this.#closed || Date.now() >= deadline) break;
      await sleep(c.retryDelayMs);
    }
    const what = failure === "no-responders" ? "no shard is subscribed" : "no reply";
    throw new ParameterServerError(`shard ${k} of job "${c.job}" (keys ${rangeText(range)}) did not answer within ${c.connectTimeoutMs} ms: ${what}`, {
      shard: k, range, op: "info", reason: failure, attempts,
    }, c.job);
  }

  private checkInfo(k: number, info: ShardInfo | undefined, attempts: number): void {
    const c = this.config;
    const range = this.ranges[k]!;
    const mismatch = (field: string, what: string): never => {
      throw new ParameterServerError(`shard ${k} of job "${c.job}" is not the shard this client expects: ${what}`, {
        shard: k, range, op: "info", reason: "mismatch", field, attempts,
      }, c.job);
    };
    if (info === undefined) {
      mismatch("info", "its description is unreadable");
      return;
    }
    if (info.job !== c.job) mismatch("job", `it serves job ${JSON.stringify(info.job)}`);
    if (info.spec !== c.specHash) mismatch("spec", `its spec hash is ${JSON.stringify(info.spec)}, this client's ${JSON.stringify(c.specHash)}`);
    if (info.keys !== c.keys) mismatch("keys", `it serves a key space of ${info.keys}, this client ${c.keys}`);
    if (info.shards !== c.shards || info.shard !== k) mismatch("shards", `it is shard ${info.shard} of ${info.shards}, this client expects shard ${k} of ${c.shards}`);
    if (info.begin !== range.begin || info.end !== range.end) mismatch("range", `it owns ${rangeText(info)}, this client expects ${rangeText(range)}`);
    const v = this.#versions[k]!;
    v.latest = Math.max(v.latest, info.version);
  }
}

function isNoResponders(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof NoRespondersError || e.name === "NoRespondersError" || /no responders/i.test(e.message)) return true;
  }
  return false;
}


/** Checks the options and applies the defaults; throws InvalidArgumentError naming the field. */
function resolveClientOptions(options: ParameterClientOptions): Config {
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new InvalidArgumentError(`ShardedParameterClient.connect: ${field} must be ${expected}, got ${describeValue(value)}`);
  };
  if (typeof options !== "object" || options === null) bad("options", "an object", options);
  const job = checkJobId(options.job);
  const D = PARAMETER_CLIENT_DEFAULTS;
  if (!Number.isInteger(options.shards) || options.shards < 1 || options.shards > MAX_SHARDS) bad("shards", `an integer in [1, ${MAX_SHARDS}]`, options.shards);
  if (!Number.isSafeInteger(options.keys) || options.keys < 0) bad("keys", "an integer >= 0", options.keys);
  if (typeof options.connection !== "object" || options.connection === null) bad("connection", "a NatsConnection or connection options", options.connection);
  if (!isUint32(options.worker)) bad("worker", "an integer in [0, 2^32)", options.worker);
  const specHash = options.specHash ?? D.specHash;
  if (!isSpecHash(specHash)) bad("specHash", "a string of at most 256 characters", specHash);
  const name = options.name ?? `worker ${options.worker}`;
  if (!isPeerName(name)) bad("name", "1 to 128 characters without control characters", name);
  const int = (field: keyof ParameterClientOptions, fallback: number, min: number) => {
    const value = options[field] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) < min) bad(field, `an integer >= ${min}`, value);
    return value as number;
  };
  const faults = options.faults ?? {};
  if (typeof faults !== "object" || faults === null) bad("faults", "an object", faults);
  return {
    job,
    shards: options.shards,
    keys: options.keys,
    specHash,
    worker: options.worker,
    name,
    align: int("align", D.align, 1),
    requestTimeoutMs: int("requestTimeoutMs", D.requestTimeoutMs, 1),
    attempts: int("attempts", D.attempts, 1),
    retryDelayMs: int("retryDelayMs", D.retryDelayMs, 0),
    connectTimeoutMs: int("connectTimeoutMs", D.connectTimeoutMs, 1),
    outageMs: int("outageMs", D.outageMs, 1),
    shardWaitMs: int("shardWaitMs", D.shardWaitMs, 0),
    onError: typeof options.onError === "function" ? options.onError : options.onError === undefined ? D.onError : bad("onError", "a function", options.onError),
    maxChunkBytes: options.maxChunkBytes === undefined ? undefined : int("maxChunkBytes", 0, 4),
    faults,
  };
}
