// One parameter-server shard of a job (DistBelief's parameter server, one key range of it): it holds its range of
// the flat parameter block, the optimizer state of those keys and a version clock, on its own kernels; it applies
// every pushed gradient once (per worker and sequence number) with the job's optimizer and learning-rate schedule,
// exactly as MemoryParameterStore does in one process, and answers pulls with raw float32 frames. With a snapshot
// store it snapshots itself (snapshot.ts, snapshot-store.ts) every N updates, every T ms, on demand and at close, and
// can resume from its latest complete snapshot; with durability "log" (durability.ts) it writes every push to the
// job's JetStream log before applying and acknowledging it, and a resumed shard replays the log after its snapshot.
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { Kernels } from "../core/kernels.js";
import { InvalidArgumentError, MemoryLimitError } from "../errors.js";
import type { Network } from "../model/network.js";
import type { Slab } from "../runtime/arena.js";
import type { KeyRange } from "../train/exchange.js";
import { type ResolvedTrainOptions, resolveTrainOptions, type TrainOptions } from "../train/options.js";
import { stateSlots } from "../train/state.js";
import { describeValue } from "../util/describe.js";
import {
  chunkBytesFor,
  decodeFrame,
  encodeFrames,
  type Frame,
  float32Bytes,
  specTag,
} from "./chunks.js";
import { type ClusterConnectionOptions, type ConnectionWatch, connectCluster, connectionLossError, isNatsConnection, watchConnection } from "./connection.js";
import { ClusterError, describeValue as shown, MessageError } from "./errors.js";
import { DEFAULT_SHARD_ALIGN, shardRanges } from "./partition.js";
import {
  isSpecHash,
  isUint32,
  MAX_SHARDS,
  metaHeaders,
  ParameterServerError,
  PS_HEADER_ROOM_BYTES,
  PS_PROTOCOL_VERSION,
  rangeText,
  type ReplyMeta,
  type RequestMeta,
  readMeta,
  senderOf,
  type ShardInfo,
  type ShardSubjects,
  shardSubjects,
} from "./ps-protocol.js";
import { checkJobId, SUBJECT_ROOT } from "./subjects.js";
import { type ShardDurability, SHARD_DURABILITY_DEFAULTS, ShardLog, type ShardLogOptions, snapshotSubject } from "./durability.js";
import { type AppliedWindow, type ShardSnapshot, SnapshotError } from "./snapshot.js";
import type { SnapshotEntry, SnapshotStore } from "./snapshot-store.js";

/** One optimizer segment of the key space: a tensor, with L2 decay (a weight) or without (a bias). */
export interface ParameterSegment {
  /** First key, in keys of the whole parameter block. */
  begin: number;
  length: number;
  decay: boolean;
}

/** The optimizer of a shard: the TrainOptions that shape an update, plus when the learning rate decays. */
export interface ShardOptimizerOptions
  extends Pick<TrainOptions, "optimizer" | "learningRate" | "learningRateDecay" | "momentum" | "l2" | "beta1" | "beta2" | "epsilon"> {
  /**
   * When learningRateDecay is applied: "epoch" (rate = learningRate * decay^epoch, epoch the highest one a push
   * carried) or a positive integer N (rate = learningRate * decay^floor(updates / N), updates applied on this shard).
   * Default "epoch".
   */
  decayEvery?: "epoch" | number;
}

/** Options of ParameterShard.start. Defaults are in PARAMETER_SHARD_DEFAULTS. */
export interface ParameterShardOptions {
  /** The job id (subjects live under downpour.<job>.ps.<shard>.). */
  job: string;
  /** This shard's index, 0 <= shard < shards. */
  shard: number;
  /** How many shards the job's key space is cut into (shardRanges). */
  shards: number;
  /** An open connection (kept open by close()), or how to open one (closed by close()). */
  connection: NatsConnection | ClusterConnectionOptions;
  /** The initial parameters: the whole block (length keys) or just this shard's range. Copied at start. */
  init: Float32Array;
  /** Length of the whole key space (default init.length, i.e. init is the whole block). */
  keys?: number;
  /** Weight and bias tensors (networkSegments); keys outside every segment (layout padding) are never updated.
   *  Default: one segment over the whole key space without decay (then l2 must be 0). */
  segments?: readonly ParameterSegment[];
  /** The optimizer (TrainOptions defaults: sgd, momentum 0.9, ...). */
  train?: ShardOptimizerOptions;
  /** The job's spec hash; requests with another are refused (default ""). */
  specHash?: string;
  /** Kernels to allocate on and compute with (default: a core of this shard's own, Kernels.load()). */
  kernels?: Kernels;
  /** Keys a shard boundary is a multiple of (default DEFAULT_SHARD_ALIGN, as every client must use). */
  align?: number;
  /** How long a push missing chunks is kept before it is dropped (and reported), in ms (default 30 000). */
  partialTimeoutMs?: number;
  /** Staging the incomplete pushes (chunks missing) may hold, in bytes; beyond it (and MIN_PENDING pushes) a new
   *  push's first chunk is refused, field "pending" (default PENDING_BYTES, 256 MiB). */
  pendingBytes?: number;
  /** How long start() waits for each other shard of the job to describe itself, in ms (default 1000). */
  peerCheckMs?: number;
  /** Where refused requests are reported (default: console.error of the message). */
  onError?: (error: ClusterError) => void;
  /** The longest a read (a pull with minClock) may wait for the clocks, whatever it asks for, in ms (default 120 000). */
  maxReadWaitMs?: number;
  /** Where snapshots go (DirectorySnapshotStore, NatsSnapshotStore; default none: no snapshots). Not closed by close(). */
  snapshots?: SnapshotStore;
  /** A snapshot after this many updates since the last one; 0: never by count (default 1000). */
  snapshotEveryUpdates?: number;
  /** A snapshot this often (ms) when updates were applied since the last one; 0: never by time (default 30 000). */
  snapshotEveryMs?: number;
  /** A snapshot at close() when updates were applied since the last one (default true). */
  snapshotOnClose?: boolean;
  /**
   * Restore this shard's latest complete snapshot from `snapshots` at start (a corrupt or truncated newer one is
   * reported through onError and skipped), then, with durability "log", replay the log after it (default false: start
   * from `init`, write a first snapshot, and with "log" empty this shard's log).
   */
  resume?: boolean;
  /** "snapshot" (default: updates since the last snapshot may be lost on a crash) or "log" (acknowledged once in the
   *  job's JetStream log; nothing acknowledged is lost). */
  durability?: ShardDurability;
  /** The log stream's options (durability "log"; defaults in SHARD_DURABILITY_DEFAULTS). */
  log?: ShardLogOptions;
}

/** The default of every optional ParameterShardOptions field. */
export const PARAMETER_SHARD_DEFAULTS = Object.freeze({
  specHash: "",
  align: DEFAULT_SHARD_ALIGN,
  decayEvery: "epoch" as const,
  partialTimeoutMs: 30_000,
  pendingBytes: 256 * 2 ** 20,
  peerCheckMs: 1_000,
  maxReadWaitMs: 120_000,
  onError: (error: ClusterError): void => console.error(`downpour: ${error.message}`),
});

/** Free staging slabs a shard keeps for the next pushes (more in flight at once are allocated and released). */
const STAGING_KEPT = 4;

/** A push being reassembled: its first frame's metadata and chunking, and the slab its chunks are written into. */
interface PendingPush {
  meta: RequestMeta;
  frame: Frame;
  slab: Slab;
  seen: Uint8Array;
  got: number;
  since: number;
}

/** A pull waiting for the clocks (SSP / BSP): answered by answerReads() once they allow, or refused at its timer. */
interface WaitingRead {
  msg: Msg;
  meta: RequestMeta;
  timer: ReturnType<typeof setTimeout>;
}

/** Incomplete pushes a shard keeps at least, whatever pendingBytes allows. */
export const MIN_PENDING = 8;

/** A push's sequence numbers further than this below the newest from its worker count as applied. */
export const DEDUPE_WINDOW = 4096;

/** What a resumed shard restored at start. */
export interface ShardRestore {
  /** The snapshot restored (its name in the store), or "" when there was none (started from init). */
  from: string;
  /** The version the snapshot held. */
  snapshotVersion: number;
  /** The version after the log's replay (= snapshotVersion with durability "snapshot"). */
  version: number;
  /** How old the snapshot was when restored, in ms. */
  ageMs: number;
  /** Log entries replayed and applied; those dropped as already applied (in the snapshot's dedupe state). */
  replayed: number;
  replayDeduped: number;
  /** Newer snapshots skipped as corrupt or truncated (their names). */
  skipped: string[];
  /** How long the restore (reading the snapshot, replaying the log) took, in ms. */
  tookMs: number;
  /** When the shard started answering again (ms since the epoch). */
  at: number;
}

/** What a shard has done so far. */
export interface ShardStats {
  /** Updates applied (the version). */
  updates: number;
  /** Pushes received whole (applied, deduplicated or refused after reassembly). */
  pushes: number;
  /** Pushes acknowledged without applying: a retry of a (worker, seq) applied before. */
  deduped: number;
  /** Requests (or frames) refused. */
  refused: number;
  /** Pull requests answered. */
  pulls: number;
  /** Pulls with a clock condition that had to wait for other workers' pushes before they were answered. */
  waitedReads: number;
  /** Bytes received (message bodies of every request). */
  bytesIn: number;
  /** Bytes sent (message bodies of every reply). */
  bytesOut: number;
  /** Updates per second between the first and the last update applied (0 before two updates). */
  updatesPerSecond: number;
  /** The learning rate the next update would use. */
  learningRate: number;
  /** Snapshots saved since start; the version of the newest saved or restored (0 for none). */
  snapshots: number;
  snapshotVersion: number;
  /** Durability "log": pushes written to the log; log writes that failed (those pushes were not acknowledged). */
  logged: number;
  logFailures: number;
  /** Set when the shard resumed: what it restored. Updates lost to a crash with durability "snapshot" = the version
   *  the clients had seen acknowledged (ShardedParameterClient.versions()[k].latest) minus restored.version. */
  restored?: ShardRestore;
  /** When the first update after start was applied, replays not counted (ms since the epoch; 0 before one). */
  firstUpdateAt: number;
}

/** The optimizer segments of a network's parameter block (weights decay, biases do not), as MemoryParameterStore has them. */
export function networkSegments(network: Network): ParameterSegment[] {
  const block = network.params.block;
  return network.params.slabs.map((slab) => ({ begin: (slab.ptr - block.ptr) / 4, length: slab.length, decay: slab.name.startsWith("w") }));
}

/** The resolved options a shard runs with. */
interface ShardConfig {
  job: string;
  shard: number;
  shards: number;
  keys: number;
  range: KeyRange;
  align: number;
  specHash: string;
  optimizer: ResolvedTrainOptions;
  decayEvery: "epoch" | number;
  partialTimeoutMs: number;
  pendingBytes: number;
  peerCheckMs: number;
  maxReadWaitMs: number;
  onError: (error: ClusterError) => void;
  durability: ShardDurability;
  snapshotEveryUpdates: number;
  snapshotEveryMs: number;
  snapshotOnClose: boolean;
  resume: boolean;
}

/** A push being written to the log (durability "log"): applied and acknowledged once stored, in log order. */
interface LoggedPush {
  key: string;
  meta: RequestMeta;
  gradient: Uint8Array;
  /** The requests to acknowledge (the push and retries of it that arrived while it was being logged). */
  replies: { msg: Msg; meta: RequestMeta }[];
  done: boolean;
  logSeq: number;
  error?: ClusterError;
}

/** Per worker: the newest sequence number applied and the recent ones (a window of DEDUPE_WINDOW). */
interface Applied {
  max: number;
  recent: Set<number>;
}

/**
 * A parameter-server shard serving one key range of one job over NATS until close(). Requests are handled one at a
 * time, in arrival order, on the connection's callbacks: an update is applied whole before the next request is read.
 */
export class ParameterShard {
  readonly job: string;
  readonly shard: number;
  readonly shards: number;
  /** Length of the whole key space. */
  readonly keys: number;
  /** The keys this shard owns. */
  readonly range: KeyRange;
  readonly specHash: string;
  readonly subjects: ShardSubjects;
  #version = 0;
  #epoch = 0;
  #closed = false;
  /** performance.now() at the first and the latest update applied. */
  #firstUpdateAt = 0;
  #lastUpdateAt = 0;
  readonly #stats = { pushes: 0, deduped: 0, refused: 0, pulls: 0, waitedReads: 0, bytesIn: 0, bytesOut: 0 };
  readonly #applied = new Map<number, Applied>();
  /** Per worker that pushed: its clock, the pushes applied from it (retries counted once). */
  readonly #clocks = new Map<number, number>();
  /** Workers that said they push nothing more for now (until their next push). */
  readonly #idle = new Set<number>();
  #reads: WaitingRead[] = [];
  readonly #pending = new Map<string, PendingPush>();
  #watch: ConnectionWatch | undefined;
  /** Free staging slabs (a gradient is reassembled in one, in the core's memory, and applied from there). */
  readonly #staging: Slab[] = [];
  #lastSweep = Date.now();
  readonly #tag: number;
  readonly #chunkBytes: number;
  #subs: Subscription[] = [];
  /** Durability: the store, the log, pushes being logged (in log order, and by worker/seq). */
  #store: SnapshotStore | undefined;
  #log: ShardLog | undefined;
  readonly #logQueue: LoggedPush[] = [];
  readonly #logging = new Map<string, LoggedPush>();
  /** The last log sequence whose update is applied here. */
  #logSeq = 0;
  #snapshotTimer: ReturnType<typeof setInterval> | undefined;
  /** The version of the newest snapshot saved or restored; snapshots saved; whether one is being saved or asked for. */
  #snapshotVersion = 0;
  #snapshotsSaved = 0;
  #saving: Promise<SnapshotEntry> | undefined;
  #saveAgain = false;
  /** Log sequences of the snapshots saved since start (newest last), for purging the log below what they all cover. */
  readonly #savedLogSeqs: number[] = [];
  readonly #durable = { logged: 0, logFailures: 0, firstUpdateAt: 0 };
  #restored: ShardRestore | undefined;
  /** True while the log is replayed at start (updates then are not the first live one). */
  #replaying = false;

  private constructor(
    private readonly config: ShardConfig,
    private readonly nc: NatsConnection,
    private readonly ownConnection: boolean,
    private readonly kernels: Kernels,
    private readonly params: Slab,
    private readonly state: Slab[],
    /** Segments clipped to this shard's range, in local keys. */
    private readonly segments: ParameterSegment[],
  ) {
    this.job = config.job;
    this.shard = config.shard;
    this.shards = config.shards;
    this.keys = config.keys;
    this.range = { ...config.range };
    this.specHash = config.specHash;
    this.subjects = shardSubjects(config.job, config.shard);
    this.#tag = specTag(config.specHash);
    this.#chunkBytes = chunkBytesFor((nc.info?.max_payload ?? 1024 * 1024) - PS_HEADER_ROOM_BYTES);
  }

  /**
   * Checks the options (InvalidArgumentError naming the field), connects when given connection options, asks the
   * job's other shards who they are (ParameterServerError "mismatch" naming the shard and field when one serves this
   * index already or has another spec hash, key count or shard count), copies this shard's range of `init` into its
   * kernels' memory and subscribes. Resolves once the shard answers requests.
   */
  static async start(options: ParameterShardOptions): Promise<ParameterShard> {
    const config = resolveShardOptions(options);
    const ownConnection = !isNatsConnection(options.connection);
    const nc = ownConnection
      ? await connectCluster({ name: `downpour-ps-${config.job}-${config.shard}`, ...(options.connection as ClusterConnectionOptions) })
      : (options.connection as NatsConnection);
    const kernels = options.kernels ?? (await Kernels.load());
    let shard: ParameterShard | undefined;
    try {
      await checkPeers(nc, config);
      shard = ParameterShard.allocate(config, nc, ownConnection, kernels, options);
      await shard.recover(options);
      shard.subscribe();
      await nc.flush();
      if (shard.#restored) shard.#restored.at = Date.now();
      shard.startSnapshotTimer();
      shard.watchOwnConnection();
      return shard;
    } catch (error) {
      if (shard) await shard.close();
      else if (ownConnection) await nc.close();
      throw error;
    }
  }

  private static allocate(
    config: ShardConfig,
    nc: NatsConnection,
    ownConnection: boolean,
    kernels: Kernels,
    options: ParameterShardOptions,
  ): ParameterShard {
    const { range, keys } = config;
    const n = range.end - range.begin;
    const arena = kernels.arena;
    const slabs: Slab[] = [];
    try {
      const params = arena.alloc(Math.max(1, n), `shard ${config.shard} parameters`);
      slabs.push(params);
      params.f32().set(options.init.length === keys ? options.init.subarray(range.begin, range.end) : options.init);
      const state = Array.from({ length: stateSlots(config.optimizer.optimizer, config.optimizer.momentum) }, (_, s) => {
        const slab = arena.alloc(Math.max(1, n), `shard ${config.shard} state ${s}`);
        slabs.push(slab);
        slab.f32().fill(0);
        return slab;
      });
      const segments = localSegments(options.segments ?? [{ begin: 0, length: keys, decay: false }], range);
      return new ParameterShard(config, nc, ownConnection, kernels, params, state, segments);
    } catch (error) {
      for (const slab of slabs) arena.release(slab);
      throw error;
    }
  }

  /** Updates applied so far. */
  get version(): number {
    return this.#version;
  }

  /** What this shard restored at start (resume), or undefined when it started from init. */
  get restored(): ShardRestore | undefined {
    return this.#restored ? { ...this.#restored, skipped: [...this.#restored.skipped] } : undefined;
  }

  /** A snapshot of the counters. */
  get stats(): ShardStats {
    const span = (this.#lastUpdateAt - this.#firstUpdateAt) / 1000;
    const updatesPerSecond = this.#version > 1 && span > 0 ? (this.#version - 1) / span : 0;
    const stats: ShardStats = {
      updates: this.#version,
      ...this.#stats,
      updatesPerSecond,
      learningRate: this.learningRate(),
      snapshots: this.#snapshotsSaved,
      snapshotVersion: this.#snapshotVersion,
      ...this.#durable,
    };
    if (this.#restored) stats.restored = { ...this.#restored, skipped: [...this.#restored.skipped] };
    return stats;
  }

  /** A copy of this shard's parameters (its range, in key order). */
  values(): Float32Array {
    return this.params.f32().slice(0, this.range.end - this.range.begin);
  }

  /** What the info subject answers. */
  info(): ShardInfo {
    const c = this.config;
    return {
      v: PS_PROTOCOL_VERSION,
      job: c.job,
      shard: c.shard,
      shards: c.shards,
      keys: c.keys,
      begin: c.range.begin,
      end: c.range.end,
      spec: c.specHash,
      version: this.#version,
      optimizer: c.optimizer.optimizer,
    };
  }

  /**
   * Stops answering (requests already read were handled; pushes still being logged are not acknowledged), saves a
   * last snapshot (snapshotOnClose, when updates were applied since the last), releases the memory, closes a
   * connection it opened.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.stop();
    for (const sub of this.#subs.splice(0)) sub.unsubscribe();
    for (const read of this.#reads.splice(0)) clearTimeout(read.timer);
    if (this.#snapshotTimer !== undefined) clearInterval(this.#snapshotTimer);
    this.#logQueue.length = 0;
    this.#logging.clear();
    await this.#saving?.catch(() => {});
    if (this.#store && this.config.snapshotOnClose && this.#version !== this.#snapshotVersion && !this.nc.isClosed()) {
      await this.save().catch((error) => this.report(error));
    }
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => {});
    const staging = [...this.#staging.splice(0), ...[...this.#pending.values()].map((p) => p.slab)];
    this.#pending.clear();
    for (const slab of [this.params, ...this.state, ...staging]) this.kernels.arena.release(slab);
    if (this.ownConnection) await this.nc.close().catch(() => {});
  }

  private subscribe(): void {
    const on = (subject: string, handle: (msg: Msg) => void) =>
      this.nc.subscribe(subject, {
        callback: (error, msg) => {
          if (error || this.#closed) return;
          handle(msg);
        },
      });
    this.#subs = [
      on(this.subjects.push, (msg) => this.guard(msg, () => this.onPush(msg))),
      on(this.subjects.pull, (msg) => this.guard(msg, () => this.onPull(msg))),
      on(this.subjects.clock, (msg) => this.guard(msg, () => this.onIdle(msg))),
      on(this.subjects.info, (msg) => {
        this.count(msg);
        this.reply(msg, new TextEncoder().encode(JSON.stringify(this.info())));
      }),
      on(snapshotSubject(this.job, this.shard), (msg) => this.onSnapshotRequest(msg)),
    ];
  }

  // "Snapshot now": answers {name, version, generation} once saved, or {error} (JSON).
  private onSnapshotRequest(msg: Msg): void {
    this.count(msg);
    const answer = (body: unknown) => this.reply(msg, new TextEncoder().encode(JSON.stringify(body)));
    this.snapshot().then(
      (entry) => answer({ name: entry.name, generation: entry.generation, version: this.#snapshotVersion }),
      (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
    );
  }

  /**
   * Runs a handler; a refusal is counted, reported and answered (the state is unchanged: checks come first). Any
   * other failure (a bug) is reported and answered the same way, as field "internal", rather than thrown into the
   * connection's callback.
   */
  private guard(msg: Msg, handle: () => void, count = true): void {
    if (count) this.count(msg);
    try {
      handle();
    } catch (thrown) {
      const error =
        thrown instanceof MessageError
          ? thrown
          : new MessageError(`shard ${this.shard} failed: ${thrown instanceof Error ? thrown.message : String(thrown)}`, {
              sender: senderOf(safeMeta(msg)), field: "internal", subject: msg.subject,
            }, this.job, { cause: thrown });
      this.#stats.refused++;
      this.config.onError(error);
      const meta = safeMeta(msg);
      const reply: ReplyMeta = {
        v: PS_PROTOCOL_VERSION,
        shard: this.shard,
        id: isUint32(meta.id) ? meta.id : 0,
        version: this.#version,
        begin: Number.isInteger(meta.begin) ? (meta.begin as number) : -1,
        end: Number.isInteger(meta.end) ? (meta.end as number) : -1,
        error: { message: error.message, field: error.field, sender: error.sender ?? "" },
      };
      this.reply(msg, new Uint8Array(0), reply);
    }
  }

  private count(msg: Msg): void {
    this.#stats.bytesIn += msg.data.byteLength;
  }

  private reply(msg: Msg, body: Uint8Array, meta?: ReplyMeta): void {
    if (!msg.reply || this.nc.isClosed()) return;
    this.#stats.bytesOut += body.byteLength;
    this.nc.publish(msg.reply, body, meta ? { headers: metaHeaders(meta) } : undefined);
  }

  // A push frame: checked, reassembled in a staging slab, then applied once (or acknowledged as a retry).
  private onPush(msg: Msg): void {
    const meta = this.checkRequest(msg, "push");
    const frame = this.checkFrame(msg, meta);
    this.sweep(msg.subject);
    const key = `${frame.sender}/${frame.step}`;
    const entry = this.#pending.get(key) ?? this.openPush(key, meta, frame);
    this.checkChunk(entry, meta, frame, msg.subject);
    const g = entry.slab.f32();
    new Uint8Array(g.buffer, g.byteOffset, frame.total).set(frame.payload, frame.index * frame.chunkBytes);
    entry.seen[frame.index] = 1;
    if (++entry.got < frame.count) return;
    this.#pending.delete(key);
    this.dropEarlierAttempts(meta.worker, meta.seq!);
    this.#stats.pushes++;
    const deduped = this.isApplied(meta.worker, meta.seq!);
    if (!deduped && this.#log !== undefined) {
      this.logPush(msg, meta, entry.slab);
      return;
    }
    try {
      if (deduped) this.#stats.deduped++;
      else this.applyPush(meta.worker, meta.seq!, meta.epoch, meta.begin, meta.end, entry.slab);
    } finally {
      this.giveStaging(entry.slab);
    }
    this.reply(msg, new Uint8Array(0), this.replyMeta(meta, deduped));
    if (!deduped) this.afterUpdate();
  }

  /** Applies a push (not applied before) from the gradient in `slab`: dedupe state, epoch, update, clocks. */
  private applyPush(worker: number, seq: number, epoch: number | undefined, begin: number, end: number, slab: Slab): void {
    this.record(worker, seq);
    if (epoch !== undefined && epoch > this.#epoch) this.#epoch = epoch;
    this.apply(begin, end, slab);
    this.#lastUpdateAt = performance.now();
    if (this.#version === 1) this.#firstUpdateAt = this.#lastUpdateAt;
    if (this.#durable.firstUpdateAt === 0 && !this.#replaying) this.#durable.firstUpdateAt = Date.now();
    this.#clocks.set(worker, (this.#clocks.get(worker) ?? 0) + 1);
    this.#idle.delete(worker);
  }

  /** After an update: waiting reads the clocks now allow, and a snapshot when N updates passed. */
  private afterUpdate(): void {
    this.answerReads();
    const every = this.config.snapshotEveryUpdates;
    if (this.#store && every > 0 && this.#version - this.#snapshotVersion >= every) this.snapshotSoon();
  }

  // Durability "log": a push (not applied before) goes to the log; it is applied and acknowledged once stored, in log
  // order. A retry arriving meanwhile waits for the same write.
  private logPush(msg: Msg, meta: RequestMeta, slab: Slab): void {
    const key = `${meta.worker}/${meta.seq}`;
    const n = meta.end - meta.begin;
    const waiting = this.#logging.get(key);
    if (waiting !== undefined) {
      this.giveStaging(slab);
      waiting.replies.push({ msg, meta });
      return;
    }
    const g = slab.f32();
    const gradient = new Uint8Array(g.buffer, g.byteOffset, n * 4).slice();
    this.giveStaging(slab);
    const item: LoggedPush = { key, meta, gradient, replies: [{ msg, meta }], done: false, logSeq: 0 };
    this.#logging.set(key, item);
    this.#logQueue.push(item);
    this.#log!.append({ worker: meta.worker, seq: meta.seq!, begin: meta.begin, end: meta.end, epoch: meta.epoch, gradient }).then(
      (ack) => {
        item.logSeq = ack.seq;
        item.done = true;
        this.drainLog();
      },
      (error: ClusterError) => {
        item.error = error;
        item.done = true;
        this.drainLog();
      },
    );
  }

  /** Applies and acknowledges the logged pushes at the head of the queue that are stored (a failed write: reported,
   *  not acknowledged, so the client retries it). */
  private drainLog(): void {
    while (!this.#closed && this.#logQueue[0]?.done) {
      const item = this.#logQueue.shift()!;
      this.#logging.delete(item.key);
      if (item.error !== undefined) {
        this.#durable.logFailures++;
        this.report(item.error);
        continue;
      }
      this.#durable.logged++;
      const { meta } = item;
      const deduped = this.isApplied(meta.worker, meta.seq!);
      try {
        if (!deduped) this.applyBytes(meta.worker, meta.seq!, meta.epoch, meta.begin, meta.end, item.gradient);
        this.#logSeq = Math.max(this.#logSeq, item.logSeq);
        item.replies.forEach(({ msg, meta: m }, i) => {
          this.reply(msg, new Uint8Array(0), this.replyMeta(m, deduped || i > 0));
        });
        if (deduped) this.#stats.deduped++;
        this.#stats.deduped += item.replies.length - 1;
        if (!deduped) this.afterUpdate();
      } catch (error) {
        this.report(error);
      }
    }
  }

  /** Applies a push whose gradient is in bytes (a logged or replayed one), through a staging slab. */
  private applyBytes(worker: number, seq: number, epoch: number | undefined, begin: number, end: number, gradient: Uint8Array): void {
    const slab = this.takeStaging();
    try {
      const g = slab.f32();
      new Uint8Array(g.buffer, g.byteOffset, gradient.length).set(gradient);
      this.applyPush(worker, seq, epoch, begin, end, slab);
    } finally {
      this.giveStaging(slab);
    }
  }

  /** Reports an error through onError (wrapping one that is not a ClusterError). */
  private report(error: unknown): void {
    const e = error instanceof ClusterError ? error : new ClusterError(`shard ${this.shard}: ${error instanceof Error ? error.message : String(error)}`, this.job, { cause: error });
    this.config.onError(e);
  }

  /** Saves a snapshot now (after the one being saved, if any); resolves with its entry. Throws without a store. */
  snapshot(): Promise<SnapshotEntry> {
    if (this.#store === undefined) {
      return Promise.reject(new InvalidArgumentError(`shard ${this.shard} of job "${this.job}" has no snapshot store (ParameterShard.start's snapshots option)`));
    }
    const previous = this.#saving ?? Promise.resolve(undefined);
    const next = previous.catch(() => undefined).then(() => this.save());
    this.#saving = next;
    void next.finally(() => {
      if (this.#saving === next) this.#saving = undefined;
    }).catch(() => {});
    return next;
  }

  /** A periodic snapshot: one now unless one is being saved (then one more after it). */
  private snapshotSoon(): void {
    if (this.#closed) return;
    if (this.#saving !== undefined) {
      this.#saveAgain = true;
      return;
    }
    this.snapshot().then(
      () => {
        if (this.#saveAgain && !this.#closed && this.#version !== this.#snapshotVersion) {
          this.#saveAgain = false;
          this.snapshotSoon();
        }
      },
      (error) => this.report(error),
    );
  }

  private startSnapshotTimer(): void {
    const ms = this.config.snapshotEveryMs;
    if (this.#store === undefined || ms <= 0) return;
    this.#snapshotTimer = setInterval(() => {
      if (this.#version !== this.#snapshotVersion) this.snapshotSoon();
    }, ms);
    (this.#snapshotTimer as { unref?: () => void }).unref?.();
  }

  /** Takes the state now (copies) and stores it; with a log, then purges the log below what every kept snapshot covers. */
  private async save(): Promise<SnapshotEntry> {
    const snapshot = this.capture();
    const entry = await this.#store!.save(snapshot);
    this.#snapshotsSaved++;
    this.#snapshotVersion = Math.max(this.#snapshotVersion, snapshot.version);
    if (this.#log !== undefined) {
      this.#savedLogSeqs.push(snapshot.logSeq);
      const keep = this.#store!.keep;
      if (this.#savedLogSeqs.length > keep) this.#savedLogSeqs.splice(0, this.#savedLogSeqs.length - keep);
      if (this.#savedLogSeqs.length === keep) await this.#log.purgeBelow(Math.min(...this.#savedLogSeqs) + 1).catch((error) => this.report(error));
    }
    return entry;
  }

  /** This shard's state as a snapshot (copies of the floats). */
  capture(): ShardSnapshot {
    const n = this.range.end - this.range.begin;
    const applied: AppliedWindow[] = [];
    for (const [worker, entry] of this.#applied) {
      const recent = [...entry.recent].filter((s) => s > entry.max - DEDUPE_WINDOW).sort((a, b) => a - b);
      applied.push({ worker, max: entry.max, recent });
    }
    return {
      job: this.job,
      shard: this.shard,
      shards: this.shards,
      keys: this.keys,
      begin: this.range.begin,
      end: this.range.end,
      specHash: this.specHash,
      optimizer: this.config.optimizer.optimizer,
      version: this.#version,
      epoch: this.#epoch,
      logSeq: this.#logSeq,
      createdAt: Date.now(),
      clocks: [...this.#clocks],
      applied,
      params: this.params.f32().slice(0, n),
      state: this.state.map((slab) => slab.f32().slice(0, n)),
    };
  }

  /**
   * At start, before answering: opens the log (durability "log"); with resume, restores the latest complete snapshot
   * (checked against this shard) and replays the log after it; without, empties this shard's log and saves a first
   * snapshot, so that a later resume never picks up an earlier run's state.
   */
  private async recover(options: ParameterShardOptions): Promise<void> {
    const c = this.config;
    this.#store = options.snapshots;
    if (c.durability === "log") this.#log = await ShardLog.open(this.nc, this.job, this.shard, options.log);
    if (!c.resume) {
      await this.#log?.purgeAll();
      if (this.#log) this.#logSeq = await this.#log.lastSeq();
      if (this.#store) await this.save();
      return;
    }
    const began = Date.now();
    const found = await this.#store?.latest(this.shard);
    for (const skipped of found?.skipped ?? []) this.report(skipped);
    const restored: ShardRestore = { from: "", snapshotVersion: 0, version: 0, ageMs: 0, replayed: 0, replayDeduped: 0, skipped: (found?.skipped ?? []).map((e) => e.snapshot), tookMs: 0, at: 0 };
    if (found !== undefined) {
      this.load(found.snapshot, found.entry.name);
      Object.assign(restored, { from: found.entry.name, snapshotVersion: found.snapshot.version, ageMs: Math.max(0, began - found.snapshot.createdAt) });
      this.#snapshotVersion = found.snapshot.version;
    }
    if (this.#log !== undefined) {
      const { begin, end } = this.range;
      this.#replaying = true;
      const result = await this.#log.replay(this.#logSeq + 1, (entry, seq) => {
        this.#logSeq = seq;
        if (entry.begin < begin || entry.end > end) {
          this.report(new SnapshotError(`log entry ${seq} (worker ${entry.worker} seq ${entry.seq}) is for keys ${rangeText(entry)}, outside this shard's ${rangeText(this.range)}: skipped`, { snapshot: this.#log!.subject, reason: "mismatch", field: "range" }, this.job));
          return;
        }
        if (this.isApplied(entry.worker, entry.seq)) restored.replayDeduped++;
        else {
          this.applyBytes(entry.worker, entry.seq, entry.epoch, entry.begin, entry.end, entry.gradient);
          restored.replayed++;
        }
      });
      this.#replaying = false;
      this.#logSeq = Math.max(this.#logSeq, result.lastSeq);
    }
    restored.version = this.#version;
    restored.tookMs = Date.now() - began;
    this.#restored = restored;
  }

  /** Loads a snapshot's state, after checking it is this shard's of this job (SnapshotError "mismatch" naming the field). */
  private load(snapshot: ShardSnapshot, name: string): void {
    const mismatch = (field: string, theirs: unknown, ours: unknown): never => {
      throw new SnapshotError(
        `belongs to another shard or job: its ${field} is ${JSON.stringify(theirs)}, shard ${this.shard} of job "${this.job}" has ${JSON.stringify(ours)}; refused`,
        { snapshot: name, reason: "mismatch", field },
        this.job,
      );
    };
    const checks: [string, unknown, unknown][] = [
      ["job", snapshot.job, this.job],
      ["shard", snapshot.shard, this.shard],
      ["shards", snapshot.shards, this.shards],
      ["keys", snapshot.keys, this.keys],
      ["begin", snapshot.begin, this.range.begin],
      ["end", snapshot.end, this.range.end],
      ["specHash", snapshot.specHash, this.specHash],
      ["optimizer", snapshot.optimizer, this.config.optimizer.optimizer],
      ["state slots", snapshot.state.length, this.state.length],
    ];
    for (const [field, theirs, ours] of checks) if (theirs !== ours) mismatch(field, theirs, ours);
    this.params.f32().set(snapshot.params);
    snapshot.state.forEach((slot, s) => {
      this.state[s]!.f32().set(slot);
    });
    this.#version = snapshot.version;
    this.#epoch = snapshot.epoch;
    this.#logSeq = snapshot.logSeq;
    this.#clocks.clear();
    for (const [worker, clock] of snapshot.clocks) this.#clocks.set(worker, clock);
    this.#applied.clear();
    for (const a of snapshot.applied) this.#applied.set(a.worker, { max: a.max, recent: new Set(a.recent) });
  }

  /** The clocks applied so far, per worker that pushed (a copy). */
  clocks(): Map<number, number> {
    return new Map(this.#clocks);
  }

  // "These workers push nothing more for now": their clocks no longer hold reads back, until their next push.
  private onIdle(msg: Msg): void {
    const meta = this.checkRequest(msg, "clock");
    const idle = meta.idle;
    if (!Array.isArray(idle) || !idle.every(isUint32)) {
      throw new MessageError(`idle ${shown(idle)} is not a list of worker ids`, { sender: meta.from, field: "idle", subject: msg.subject }, this.job);
    }
    for (const worker of idle) this.#idle.add(worker);
    this.reply(msg, new Uint8Array(0), this.replyMeta(meta, undefined));
    this.answerReads();
  }

  /** The slowest worker that is not idle and its clock (clock Infinity when every worker is idle or none pushed). */
  private slowest(): { worker: number; clock: number } {
    let slowest = { worker: -1, clock: Number.POSITIVE_INFINITY };
    for (const [worker, clock] of this.#clocks) if (clock < slowest.clock && !this.#idle.has(worker)) slowest = { worker, clock };
    return slowest;
  }

  /** Whether a read's clock condition holds: enough workers known, and every one not idle at minClock or beyond. */
  private readable(meta: RequestMeta): boolean {
    if (meta.minClock === undefined || meta.minClock <= 0) return true;
    if (this.#clocks.size < (meta.workers ?? 0)) return false;
    return this.slowest().clock >= meta.minClock;
  }

  /** Answers the waiting reads the clocks now allow, in arrival order. */
  private answerReads(): void {
    if (this.#reads.length === 0) return;
    const still: WaitingRead[] = [];
    for (const read of this.#reads) {
      if (!this.readable(read.meta)) {
        still.push(read);
        continue;
      }
      clearTimeout(read.timer);
      this.#stats.waitedReads++;
      this.guard(read.msg, () => this.answerPull(read.msg, read.meta), false);
    }
    this.#reads = still;
  }

  // A read that waited waitMs: refused, naming the slowest worker and its clock (or how many workers are unknown).
  private expire(read: WaitingRead): void {
    this.#reads = this.#reads.filter((r) => r !== read);
    const { meta } = read;
    this.guard(read.msg, () => {
      const known = this.#clocks.size;
      const { worker, clock } = this.slowest();
      const who = worker < 0 ? "no worker that is not idle has pushed" : `the slowest is worker ${worker} at clock ${clock}`;
      const missing = known < (meta.workers ?? 0) ? `; only ${known} of the ${meta.workers} workers have pushed` : "";
      throw new MessageError(
        `a read of ${meta.from} waited ${meta.waitMs} ms for every worker to reach clock ${meta.minClock} on shard ${this.shard}: ${who}${missing}`,
        { sender: meta.from, field: "clock", subject: read.msg.subject },
        this.job,
      );
    }, false);
  }

  /** Reports each loss of this shard's connection (a restarted server, a fail-over, or the server cutting it as a slow
   *  consumer) through onError once it is back: ConnectionLostError or SlowConsumerError. The clients re-send. */
  private watchOwnConnection(): void {
    this.#watch = watchConnection(this.nc, {
      back: (loss, back) => {
        const client = `shard ${this.shard} of job "${this.job}"`;
        this.config.onError(connectionLossError(loss, back, { client, subject: `${SUBJECT_ROOT}.${this.job}.ps.${this.shard}.>`, recovery: "the clients send again what got no reply" }, this.job));
      },
    });
  }

  /** Once a push is whole: earlier attempts of the same (worker, seq) still missing chunks (their chunks were lost
   *  before a retry) are dropped silently, their staging returned: the retry stands for them. */
  private dropEarlierAttempts(worker: number, seq: number): void {
    for (const [key, pending] of this.#pending) {
      if (pending.meta.worker !== worker || pending.meta.seq !== seq) continue;
      this.#pending.delete(key);
      this.giveStaging(pending.slab);
    }
  }

  /**
   * A push's first frame (in arrival order): a staging slab for it, kept while chunks are missing. Refused (field
   * "pending", the shard unchanged) while the incomplete pushes already hold pendingBytes of staging (at least
   * MIN_PENDING pushes), and (field "memory") when the memory cannot grow for one more: first chunks alone never
   * exhaust the shard.
   */
  private openPush(key: string, meta: RequestMeta, frame: Frame): PendingPush {
    const rangeBytes = 4 * Math.max(1, this.range.end - this.range.begin);
    const limit = Math.max(MIN_PENDING, Math.floor(this.config.pendingBytes / rangeBytes));
    const refuse = (field: string, what: string): never => {
      throw new MessageError(what, { sender: meta.from, field, subject: this.subjects.push }, this.job);
    };
    if (this.#pending.size >= limit) {
      refuse("pending", `${this.#pending.size} pushes to shard ${this.shard} are incomplete (chunks missing); another is refused until they complete or expire (partialTimeoutMs)`);
    }
    let slab: Slab;
    try {
      slab = this.takeStaging();
    } catch (error) {
      if (!(error instanceof MemoryLimitError)) throw error;
      return refuse("memory", `shard ${this.shard} has no memory for another push's staging (${this.#pending.size} incomplete): ${error.message}`);
    }
    const entry: PendingPush = { meta, frame, slab, seen: new Uint8Array(frame.count), got: 0, since: Date.now() };
    this.#pending.set(key, entry);
    return entry;
  }

  /** A later frame of a push agrees with its first: same keys, sequence number and chunking, not seen before. */
  private checkChunk(entry: PendingPush, meta: RequestMeta, frame: Frame, subject: string): void {
    const first = entry.frame;
    const refuse = (field: string, what: string): never => {
      throw new MessageError(`${what} (keys ${rangeText(meta)})`, { sender: meta.from, field, subject }, this.job);
    };
    if (entry.meta.begin !== meta.begin || entry.meta.end !== meta.end || entry.meta.seq !== meta.seq) {
      refuse("range", `chunk ${frame.index} is for keys ${rangeText(meta)} seq ${meta.seq}, chunk ${first.index} of the same push was for ${rangeText(entry.meta)} seq ${entry.meta.seq}`);
    }
    for (const field of ["count", "total", "chunkBytes"] as const) {
      if (frame[field] !== first[field]) refuse(field, `chunk ${frame.index} says ${field} ${frame[field]}, chunk ${first.index} of the same push said ${first[field]}`);
    }
    if (entry.seen[frame.index]) refuse("index", `chunk ${frame.index} of ${frame.count} arrived twice`);
  }

  private takeStaging(): Slab {
    return this.#staging.pop() ?? this.kernels.arena.alloc(Math.max(1, this.range.end - this.range.begin), `shard ${this.shard} gradients`);
  }

  /** Returns a staging slab to the pool (a few are kept; more are released). */
  private giveStaging(slab: Slab): void {
    if (this.#staging.length < STAGING_KEPT) this.#staging.push(slab);
    else this.kernels.arena.release(slab);
  }

  // A pull: this shard's values of [begin, end) as f32 frames to the reply subject, each with the version.
  private onPull(msg: Msg): void {
    const meta = this.checkRequest(msg, "pull");
    if (!msg.reply) return;
    if (this.readable(meta)) {
      this.answerPull(msg, meta);
      return;
    }
    const wait = Math.min(meta.waitMs ?? this.config.maxReadWaitMs, this.config.maxReadWaitMs);
    const read: WaitingRead = { msg, meta: { ...meta, waitMs: wait }, timer: setTimeout(() => this.expire(read), wait) };
    this.#reads.push(read);
  }

  private answerPull(msg: Msg, meta: RequestMeta): void {
    const { begin } = this.range;
    const values = this.params.f32().subarray(meta.begin - begin, meta.end - begin);
    const header = { kind: "f32" as const, sender: this.shard, specTag: this.#tag, step: meta.id, seq: 0 };
    const frames = encodeFrames(float32Bytes(values), header, this.#chunkBytes);
    const reply = this.replyMeta(meta, undefined);
    const slowest = this.slowest().clock;
    if (meta.minClock !== undefined && Number.isFinite(slowest)) reply.clock = slowest;
    this.#stats.pulls++;
    for (const frame of frames) this.reply(msg, frame, reply);
  }

  private replyMeta(meta: RequestMeta, deduped: boolean | undefined): ReplyMeta {
    const reply: ReplyMeta = { v: PS_PROTOCOL_VERSION, shard: this.shard, id: meta.id, version: this.#version, begin: meta.begin, end: meta.end };
    if (deduped !== undefined) reply.deduped = deduped;
    return reply;
  }

  /** The request's metadata, checked: version, job, spec, sender, range within this shard, seq and epoch (push). */
  private checkRequest(msg: Msg, op: "push" | "pull" | "clock"): RequestMeta {
    const c = this.config;
    const meta = readMeta(msg.headers, msg.subject, c.job);
    const sender = senderOf(meta);
    const refuse = (field: string, what: string): never => {
      throw new MessageError(what, { sender, field, subject: msg.subject }, c.job);
    };
    if (meta.v !== PS_PROTOCOL_VERSION) refuse("v", `protocol version ${shown(meta.v)}, this shard speaks version ${PS_PROTOCOL_VERSION}`);
    if (meta.job !== c.job) refuse("job", `a ${op} for job ${shown(meta.job)} reached shard ${c.shard} of job "${c.job}"`);
    if (meta.spec !== c.specHash) {
      refuse("spec", `spec hash ${shown(meta.spec)} differs from the job's ${JSON.stringify(c.specHash)} (another model or optimizer)`);
    }
    if (!isUint32(meta.worker)) refuse("worker", `worker ${shown(meta.worker)} is not a worker id (an integer in [0, 2^32))`);
    if (!isUint32(meta.id)) refuse("id", `request id ${shown(meta.id)} is not an integer in [0, 2^32)`);
    const { begin, end } = meta;
    const owned = rangeText(c.range);
    if (!Number.isInteger(begin) || !Number.isInteger(end) || (begin as number) > (end as number)) {
      refuse("range", `range [${shown(begin)}, ${shown(end)}) is not a key range; shard ${c.shard} owns ${owned}`);
    }
    if ((begin as number) < c.range.begin || (end as number) > c.range.end) {
      refuse("range", `keys [${begin}, ${end}) are not all owned by shard ${c.shard}, which owns ${owned}`);
    }
    if (op === "push") {
      if (!isUint32(meta.seq) || meta.seq === 0) refuse("seq", `sequence number ${shown(meta.seq)} is not an integer in [1, 2^32)`);
      if (meta.epoch !== undefined && !isUint32(meta.epoch)) refuse("epoch", `epoch ${shown(meta.epoch)} is not an integer >= 0`);
    }
    if (op === "pull" && meta.minClock !== undefined) {
      if (!Number.isSafeInteger(meta.minClock)) refuse("minClock", `minClock ${shown(meta.minClock)} is not an integer`);
      if (!isUint32(meta.workers)) refuse("workers", `workers ${shown(meta.workers)} is not a worker count (an integer >= 0)`);
      if (meta.waitMs !== undefined && !(typeof meta.waitMs === "number" && meta.waitMs > 0)) refuse("waitMs", `waitMs ${shown(meta.waitMs)} is not a positive number`);
    }
    return { ...(meta as unknown as RequestMeta), from: sender! };
  }

  /** The push body's frame, checked against the metadata: f32, this worker, this spec, this request, the range's length. */
  private checkFrame(msg: Msg, meta: RequestMeta): Frame {
    const c = this.config;
    const refuse = (field: string, what: string): never => {
      throw new MessageError(`${what} (keys ${rangeText(meta)})`, { sender: meta.from, field, subject: msg.subject }, c.job);
    };
    let frame: Frame;
    try {
      frame = decodeFrame(msg.data, msg.subject, undefined, c.job);
    } catch (error) {
      if (!(error instanceof MessageError)) throw error;
      throw new MessageError(`${error.message} (keys ${rangeText(meta)})`, { sender: meta.from, field: error.field, subject: msg.subject }, c.job);
    }
    if (frame.kind !== "f32") refuse("kind", `a ${frame.kind} body, expected float32 gradients`);
    if (frame.sender !== meta.worker) refuse("from", `frame sender ${frame.sender}, the header says worker ${meta.worker}`);
    if (frame.specTag !== this.#tag) refuse("spec", "the frame's spec tag is not the job's spec hash's");
    if (frame.step !== meta.id || frame.seq !== meta.seq) refuse("id", `frame of request ${frame.step} seq ${frame.seq}, the header says ${meta.id} seq ${meta.seq}`);
    const expected = (meta.end - meta.begin) * 4;
    if (frame.total !== expected) {
      refuse("length", `${frame.total / 4} floats for ${meta.end - meta.begin} keys (expected ${expected} bytes, got ${frame.total})`);
    }
    return frame;
  }

  /** Drops pushes that have waited for their missing chunks longer than partialTimeoutMs (checked once a second). */
  private sweep(subject: string): void {
    const now = Date.now();
    if (now - this.#lastSweep < 1_000 || this.#pending.size === 0) return;
    this.#lastSweep = now;
    for (const [key, entry] of this.#pending) {
      if (now - entry.since <= this.config.partialTimeoutMs) continue;
      this.#pending.delete(key);
      this.giveStaging(entry.slab);
      const { count } = entry.frame;
      const missing: number[] = [];
      for (let i = 0; i < count && missing.length < 8; i++) if (!entry.seen[i]) missing.push(i);
      const list = missing.join(", ") + (count - entry.got > missing.length ? ", ..." : "");
      const what = `push ${entry.meta.seq} (request ${entry.meta.id}) of keys ${rangeText(entry.meta)} is missing ${count - entry.got} of its ${count} chunks (${list}) after ${this.config.partialTimeoutMs} ms: dropped, not applied`;
      this.config.onError(new MessageError(what, { sender: entry.meta.from, field: "chunks", subject }, this.job));
    }
  }

  private isApplied(worker: number, seq: number): boolean {
    const entry = this.#applied.get(worker);
    return entry !== undefined && (entry.recent.has(seq) || seq <= entry.max - DEDUPE_WINDOW);
  }

  private record(worker: number, seq: number): void {
    let entry = this.#applied.get(worker);
    if (entry === undefined) {
      entry = { max: 0, recent: new Set() };
      this.#applied.set(worker, entry);
    }
    entry.recent.add(seq);
    entry.max = Math.max(entry.max, seq);
    if (entry.recent.size > 2 * DEDUPE_WINDOW) {
      for (const s of entry.recent) if (s <= entry.max - DEDUPE_WINDOW) entry.recent.delete(s);
    }
  }

  /** The learning rate of the next update: the schedule runs here, per epoch pushed or per N updates applied. */
  private learningRate(): number {
    const o = this.config.optimizer;
    const every = this.config.decayEvery;
    const steps = every === "epoch" ? this.#epoch : Math.floor(this.#version / every);
    return o.learningRate * o.learningRateDecay ** steps;
  }

  /** Applies one update from the gradient of keys [begin, end) in `staging` (its first float is key begin's). */
  private apply(begin: number, end: number, staging: Slab): void {
    const local = begin - this.range.begin;
    const n = end - begin;
    // The gradient of local key k sits at gBase + 4k.
    const gBase = staging.ptr - 4 * local;
    const lr = this.learningRate();
    for (const segment of this.segments) {
      const from = Math.max(local, segment.begin);
      const to = Math.min(local + n, segment.begin + segment.length);
      if (from < to) this.update(from, to - from, gBase, segment.decay ? this.config.optimizer.l2 : 0, lr);
    }
    this.#version++;
  }

  private update(key: number, n: number, gBase: number, l2: number, lr: number): void {
    const core = this.kernels.core.exports;
    const o = this.config.optimizer;
    const off = 4 * key;
    const [w, g] = [this.params.ptr + off, gBase + off];
    const s = this.state.map((slab) => slab.ptr + off);
    if (o.optimizer === "sgd") core.f32_sgd_update(w, s[0] ?? 0, g, n, lr, o.momentum, l2);
    else if (o.optimizer === "adagrad") core.f32_adagrad_update(w, s[0]!, g, n, lr, o.epsilon, l2);
    else core.f32_adam_update(w, s[0]!, s[1]!, g, n, lr, o.beta1, o.beta2, o.epsilon, l2, this.#version + 1);
  }
}

/** A request's metadata as far as it parses (for a refusal's reply), else {}. */
function safeMeta(msg: Msg): Record<string, unknown> {
  try {
    return readMeta(msg.headers, msg.subject, undefined);
  } catch {
    return {};
  }
}

/** Segments clipped to `range`, shifted to local keys; empty ones dropped. */
function localSegments(segments: readonly ParameterSegment[], range: KeyRange): ParameterSegment[] {
  const result: ParameterSegment[] = [];
  for (const s of segments) {
    const begin = Math.max(range.begin, s.begin);
    const end = Math.min(range.end, s.begin + s.length);
    if (begin < end) result.push({ begin: begin - range.begin, length: end - begin, decay: s.decay });
  }
  return result;
}


/** Checks the options and applies the defaults; throws InvalidArgumentError naming the field. */
function resolveShardOptions(options: ParameterShardOptions): ShardConfig {
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new InvalidArgumentError(`ParameterShard.start: ${field} must be ${expected}, got ${describeValue(value)}`);
  };
  if (typeof options !== "object" || options === null) bad("options", "an object", options);
  const job = checkJobId(options.job);
  const shards = options.shards;
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) bad("shards", `an integer in [1, ${MAX_SHARDS}]`, shards);
  if (!Number.isInteger(options.shard) || options.shard < 0 || options.shard >= shards) bad("shard", `an integer in [0, ${shards - 1}]`, options.shard);
  if (typeof options.connection !== "object" || options.connection === null) bad("connection", "a NatsConnection or connection options", options.connection);
  if (!(options.init instanceof Float32Array)) bad("init", "a Float32Array of the initial parameters", options.init);
  const keys = options.keys ?? options.init.length;
  if (!Number.isSafeInteger(keys) || keys < 0) bad("keys", "an integer >= 0", keys);
  const align = options.align ?? PARAMETER_SHARD_DEFAULTS.align;
  const range = shardRanges(keys, shards, align)[options.shard]!;
  const n = range.end - range.begin;
  if (options.init.length !== keys && options.init.length !== n) {
    bad("init", `the whole block (${keys} floats) or shard ${options.shard}'s range ${rangeText(range)} (${n} floats)`, `${options.init.length} floats`);
  }
  const specHash = options.specHash ?? PARAMETER_SHARD_DEFAULTS.specHash;
  if (!isSpecHash(specHash)) bad("specHash", "a string of at most 256 characters", specHash);
  const { decayEvery = PARAMETER_SHARD_DEFAULTS.decayEvery, ...train } = options.train ?? {};
  if (decayEvery !== "epoch" && !(Number.isSafeInteger(decayEvery) && decayEvery >= 1)) bad("train.decayEvery", '"epoch" or a positive integer', decayEvery);
  const optimizer = resolveTrainOptions(train, 1);
  checkSegments(options.segments, keys, optimizer.l2, bad);
  const positive = (field: keyof ParameterShardOptions, fallback: number) => {
    const value = options[field] ?? fallback;
    if (typeof value !== "number" || !(value > 0)) bad(field, "a positive number", value);
    return value as number;
  };
  const onError = options.onError ?? PARAMETER_SHARD_DEFAULTS.onError;
  if (typeof onError !== "function") bad("onError", "a function", onError);
  return {
    job,
    shard: options.shard,
    shards,
    keys,
    range,
    align,
    specHash,
    optimizer,
    decayEvery,
    partialTimeoutMs: positive("partialTimeoutMs", PARAMETER_SHARD_DEFAULTS.partialTimeoutMs),
    pendingBytes: positive("pendingBytes", PARAMETER_SHARD_DEFAULTS.pendingBytes),
    peerCheckMs: positive("peerCheckMs", PARAMETER_SHARD_DEFAULTS.peerCheckMs),
    maxReadWaitMs: positive("maxReadWaitMs", PARAMETER_SHARD_DEFAULTS.maxReadWaitMs),
    onError,
    ...resolveDurability(options, bad),
  };
}

/** The durability options, checked (defaults in SHARD_DURABILITY_DEFAULTS). */
function resolveDurability(options: ParameterShardOptions, bad: (f: string, e: string, v: unknown) => never): Pick<ShardConfig, "durability" | "snapshotEveryUpdates" | "snapshotEveryMs" | "snapshotOnClose" | "resume"> {
  const d = SHARD_DURABILITY_DEFAULTS;
  const durability = options.durability ?? d.durability;
  if (durability !== "snapshot" && durability !== "log") bad("durability", '"snapshot" or "log"', durability);
  const store = options.snapshots;
  if (store !== undefined && (typeof store !== "object" || store === null || typeof (store as SnapshotStore).latest !== "function")) bad("snapshots", "a SnapshotStore", store);
  if (store !== undefined && store.job !== options.job) bad("snapshots", `a store of job "${options.job}" (a store's job id)`, store.job);
  const count = (field: "snapshotEveryUpdates" | "snapshotEveryMs", fallback: number) => {
    const value = options[field] ?? fallback;
    if (!Number.isSafeInteger(value) || value < 0) bad(field, "an integer >= 0", value);
    return value;
  };
  const flag = (field: "snapshotOnClose" | "resume", fallback: boolean) => {
    const value = options[field] ?? fallback;
    if (typeof value !== "boolean") bad(field, "a boolean", value);
    return value;
  };
  const resume = flag("resume", false);
  if (resume && store === undefined && durability !== "log") bad("resume", "set with a snapshots store (or durability \"log\")", resume);
  return {
    durability,
    snapshotEveryUpdates: count("snapshotEveryUpdates", d.snapshotEveryUpdates),
    snapshotEveryMs: count("snapshotEveryMs", d.snapshotEveryMs),
    snapshotOnClose: flag("snapshotOnClose", d.snapshotOnClose),
    resume,
  };
}

function checkSegments(segments: readonly ParameterSegment[] | undefined, keys: number, l2: number, bad: (f: string, e: string, v: unknown) => never): void {
  if (segments === undefined) {
    if (l2 > 0) bad("segments", "given when train.l2 > 0 (L2 decays weights only: networkSegments(network) names them)", segments);
    return;
  }
  if (!Array.isArray(segments)) bad("segments", "an array of { begin, length, decay }", segments);
  segments.forEach((s, i) => {
    const ok =
      typeof s === "object" && s !== null && Number.isSafeInteger(s.begin) && Number.isSafeInteger(s.length) && s.begin >= 0 && s.length >= 0 &&
      s.begin + s.length <= keys && typeof s.decay === "boolean";
    if (!ok) bad(`segments[${i}]`, `{ begin, length, decay } within [0, ${keys})`, s);
  });
}

/**
 * Asks every shard index of the job (this one included) for its info: a shard already serving this index, or one
 * with another spec hash, key count or shard count, is a ParameterServerError "mismatch". Shards not up are skipped.
 */
async function checkPeers(nc: NatsConnection, c: ShardConfig): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: c.shards }, (_, k) =>
      nc.request(shardSubjects(c.job, k).info, new Uint8Array(0), { timeout: c.peerCheckMs }).then(
        (msg) => ({ k, info: parseInfo(msg.data) }),
        () => undefined,
      ),
    ),
  );
  for (const answer of answers) {
    if (answer === undefined) continue;
    const { k, info } = answer;
    const mismatch = (field: string, what: string): never => {
      const range = shardRanges(c.keys, c.shards, c.align)[k] ?? { begin: 0, end: 0 };
      throw new ParameterServerError(`shard ${c.shard} of job "${c.job}" cannot start: ${what}`, { shard: k, range, op: "start", reason: "mismatch", field, attempts: 1 }, c.job);
    };
    if (info === undefined) mismatch("info", `shard ${k} answered with an unreadable description`);
    if (k === c.shard) mismatch("shard", `shard ${k} is already served (version ${info!.version}, range ${rangeText(info!)})`);
    if (info!.spec !== c.specHash) mismatch("spec", `shard ${k} runs spec hash ${JSON.stringify(info!.spec)}, this shard ${JSON.stringify(c.specHash)}`);
    if (info!.keys !== c.keys) mismatch("keys", `shard ${k} serves a key space of ${info!.keys}, this shard ${c.keys}`);
    if (info!.shards !== c.shards) mismatch("shards", `shard ${k} is one of ${info!.shards} shards, this shard one of ${c.shards}`);
  }
}

/** A ShardInfo from its JSON, or undefined when it is not one. */
export function parseInfo(data: Uint8Array): ShardInfo | undefined {
  try {
    const info = JSON.parse(new TextDecoder().decode(data)) as ShardInfo;
    const ints = [info.shard, info.shards, info.keys, info.begin, info.end, info.version];
    if (info.v !== PS_PROTOCOL_VERSION || typeof info.job !== "string" || typeof info.spec !== "string" || !ints.every(Number.isSafeInteger)) return undefined;
    return info;
  } catch {
    return undefined;
  }
}
