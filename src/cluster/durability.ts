// Durability of a parameter-server shard: the job option (SHARD_DURABILITY_DEFAULTS, the one place its defaults are
// written) and the update log of durability "log" — a JetStream stream of the job (DOWNPOUR_PSLOG_<job>, subjects
// downpour.<job>.pslog.<shard>) into which a shard writes every push before it applies and acknowledges it, so that a
// restarted shard restores its snapshot (which records the last log sequence it covers) and replays the log after
// it, losing nothing.
//
// A log entry is the push's reassembled float32 gradient (its keys [begin, end)), cut into chunks of at most the
// server's max_payload minus LOG_HEADER_ROOM_BYTES, one message each, with the entry's metadata as JSON in the
// Downpour-Pslog header. An entry of one chunk has the message id "<shard>-<worker>-<seq>", so JetStream's duplicate
// window drops a re-log of the same push; a chunk of a longer entry has "<shard>-<worker>-<seq>-<incarnation>-<i>" (a
// chunk re-logged by a later incarnation of the shard is a new message: an entry is replayed only once all its chunks
// of one incarnation are read, so a partly logged entry is never applied). Replays of a (worker, seq) the shard
// applied already are dropped by its dedupe state.
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { ClusterError } from "./errors.js";
import { checkJobId, SUBJECT_ROOT } from "./subjects.js";

/** How a shard keeps its updates: "snapshot" (updates since the last snapshot may be lost on a crash) or "log". */
export type ShardDurability = "snapshot" | "log";

/** The defaults of the durability options of ParameterShard.start (the one place they are written). */
export const SHARD_DURABILITY_DEFAULTS = Object.freeze({
  durability: "snapshot" as ShardDurability,
  /** A snapshot after this many updates since the last one (0: never by count). */
  snapshotEveryUpdates: 1000,
  /** A snapshot this often when updates were applied since the last one, in ms (0: never by time). */
  snapshotEveryMs: 30_000,
  /** A snapshot at close() when updates were applied since the last one. */
  snapshotOnClose: true,
  /** Replicas of the log stream when it is created. */
  logReplicas: 1,
  /** JetStream's duplicate window of the log stream, in ms. */
  duplicateWindowMs: 120_000,
  /** How long one log write waits for JetStream's acknowledgement, in ms (then the push is not acknowledged). */
  logTimeoutMs: 10_000,
  /** How long a replay waits for the next log message before it fails, in ms. */
  replayIdleMs: 10_000,
});

/** Bytes of max_payload left to the headers of a log message (message id and the entry's JSON). */
export const LOG_HEADER_ROOM_BYTES = 2048;
/** The header holding a log message's entry metadata. */
export const LOG_HEADER = "Downpour-Pslog";

/** The stream of a job's update log. */
export function logStreamName(job: string): string {
  return `DOWNPOUR_PSLOG_${checkJobId(job)}`;
}

/** downpour.<job>.pslog.<shard>: the log subject of one shard. */
export function logSubject(job: string, shard: number): string {
  return `${SUBJECT_ROOT}.${checkJobId(job)}.pslog.${shard}`;
}

/** downpour.<job>.ps.<shard>.snapshot: a request in, the saved snapshot's name and version (JSON) out. */
export function snapshotSubject(job: string, shard: number): string {
  return `${SUBJECT_ROOT}.${checkJobId(job)}.ps.${shard}.snapshot`;
}

/** One push as the log holds it. */
export interface LogEntry {
  worker: number;
  seq: number;
  begin: number;
  end: number;
  epoch: number | undefined;
  /** The gradient of keys [begin, end), float32 little-endian bytes. */
  gradient: Uint8Array;
}

/** Where a log write landed: the stream sequence of its last chunk; duplicate when JetStream had it already. */
export interface LogAck {
  seq: number;
  duplicate: boolean;
}

/** What a replay read. */
export interface ReplayResult {
  /** Log messages read. */
  messages: number;
  /** Whole entries handed to the callback. */
  entries: number;
  /** Entries left incomplete at the end (never acknowledged; their pushes are retried). */
  incomplete: number;
  /** The last stream sequence read (fromSeq - 1 when nothing was). */
  lastSeq: number;
}

/** A log that cannot be opened, written or replayed; names the stream and subject. */
export class ShardLogError extends ClusterError {
  readonly stream: string;
  readonly subject: string;

  constructor(message: string, fields: { stream: string; subject: string }, job: string, options?: { cause?: unknown }) {
    super(`update log ${fields.stream} (${fields.subject}): ${message}`, job, options);
    this.stream = fields.stream;
    this.subject = fields.subject;
  }
}

/** The metadata header of one log message. */
interface ChunkMeta {
  w: number;
  s: number;
  b: number;
  e: number;
  ep?: number;
  /** Chunk index and count, the chunk's byte offset, bytes of the whole entry. */
  i: number;
  n: number;
  o: number;
  t: number;
  /** The incarnation that wrote it. */
  inc: string;
}

/** Options of ShardLog.open (defaults in SHARD_DURABILITY_DEFAULTS). */
export interface ShardLogOptions {
  replicas?: number;
  duplicateWindowMs?: number;
  logTimeoutMs?: number;
  replayIdleMs?: number;
}

/** The update log of one shard. */
export class ShardLog {
  readonly stream: string;
  readonly subject: string;
  /** Random per opened log: tells chunks of one incarnation of the shard from a later one's. */
  readonly incarnation = Math.random().toString(36).slice(2, 10);
  readonly #chunkBytes: number;

  private constructor(
    readonly job: string,
    readonly shard: number,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    maxPayload: number,
    private readonly options: Required<ShardLogOptions>,
  ) {
    this.stream = logStreamName(job);
    this.subject = logSubject(job, shard);
    this.#chunkBytes = Math.max(1024, maxPayload - LOG_HEADER_ROOM_BYTES) & ~3;
  }

  /** Opens the job's log stream (created when missing) for `shard`. */
  static async open(nc: NatsConnection, job: string, shard: number, options: ShardLogOptions = {}): Promise<ShardLog> {
    const d = SHARD_DURABILITY_DEFAULTS;
    const resolved: Required<ShardLogOptions> = {
      replicas: options.replicas ?? d.logReplicas,
      duplicateWindowMs: options.duplicateWindowMs ?? d.duplicateWindowMs,
      logTimeoutMs: options.logTimeoutMs ?? d.logTimeoutMs,
      replayIdleMs: options.replayIdleMs ?? d.replayIdleMs,
    };
    const stream = logStreamName(job);
    const where = { stream, subject: logSubject(job, shard) };
    try {
      const jsm = await jetstreamManager(nc);
      const exists = await jsm.streams.info(stream).then(() => true, () => false);
      if (!exists) {
        await jsm.streams.add({
          name: stream,
          subjects: [`${SUBJECT_ROOT}.${job}.pslog.*`],
          num_replicas: resolved.replicas,
          duplicate_window: resolved.duplicateWindowMs * 1_000_000,
        });
      }
      return new ShardLog(job, shard, jetstream(nc), jsm, nc.info?.max_payload ?? 1024 * 1024, resolved);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new ShardLogError(`cannot open (durability "log" needs JetStream on the server): ${message}`, where, job, { cause: error });
    }
  }

  /** The stream sequence of this shard's newest log message (0 when it has none). */
  async lastSeq(): Promise<number> {
    try {
      const msg = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject });
      return msg?.seq ?? 0;
    } catch (error) {
      if (/no message found/i.test((error as Error)?.message ?? "") || (error as { code?: number })?.code === 404) return 0;
      throw this.error("cannot read the last sequence", error);
    }
  }

  /** Removes this shard's messages below stream sequence `seq` (those every kept snapshot covers). */
  async purgeBelow(seq: number): Promise<void> {
    if (seq <= 1) return;
    await this.jsm.streams.purge(this.stream, { filter: this.subject, seq }).catch((error) => {
      throw this.error(`cannot purge below sequence ${seq}`, error);
    });
  }

  /** Removes every message of this shard (a fresh start of the job's shard). */
  async purgeAll(): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: this.subject }).catch((error) => {
      throw this.error("cannot purge", error);
    });
  }

  /** Writes one entry (its chunks in order); resolves once JetStream has stored every chunk. The gradient is read now. */
  append(entry: LogEntry): Promise<LogAck> {
    const { gradient } = entry;
    const count = Math.max(1, Math.ceil(gradient.length / this.#chunkBytes));
    const sends: Promise<{ seq: number; duplicate: boolean }>[] = [];
    for (let i = 0; i < count; i++) {
      const meta: ChunkMeta = { w: entry.worker, s: entry.seq, b: entry.begin, e: entry.end, i, n: count, o: i * this.#chunkBytes, t: gradient.length, inc: this.incarnation };
      if (entry.epoch !== undefined) meta.ep = entry.epoch;
      const h = headers();
      h.set(LOG_HEADER, JSON.stringify(meta));
      const base = `${this.shard}-${entry.worker}-${entry.seq}`;
      const msgID = count === 1 ? base : `${base}-${this.incarnation}-${i}`;
      // A copy: the publish may keep the bytes until they are written out, and the caller reuses its buffer.
      const chunk = gradient.slice(i * this.#chunkBytes, Math.min(gradient.length, (i + 1) * this.#chunkBytes));
      sends.push(this.js.publish(this.subject, chunk, { msgID, headers: h, timeout: this.options.logTimeoutMs }));
    }
    return Promise.all(sends).then(
      (acks) => ({ seq: Math.max(...acks.map((a) => a.seq)), duplicate: acks.every((a) => a.duplicate) }),
      (error) => {
        throw this.error(`push ${entry.seq} of worker ${entry.worker} was not stored`, error);
      },
    );
  }

  /**
   * Reads this shard's log from stream sequence `fromSeq` up to its newest message, handing each whole entry to
   * `onEntry` in log order (the sequence of its last chunk). Entries whose chunks are not all there are skipped.
   */
  async replay(fromSeq: number, onEntry: (entry: LogEntry, seq: number) => void): Promise<ReplayResult> {
    const target = await this.lastSeq();
    const result: ReplayResult = { messages: 0, entries: 0, incomplete: 0, lastSeq: Math.max(0, fromSeq - 1) };
    if (target < fromSeq) return result;
    const partial = new Map<string, { meta: ChunkMeta; bytes: Uint8Array; got: Set<number> }>();
    let consumer: Awaited<ReturnType<JetStreamClient["consumers"]["get"]>>;
    try {
      consumer = await this.js.consumers.get(this.stream, {
        filter_subjects: this.subject,
        ...(fromSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : { deliver_policy: DeliverPolicy.All }),
      });
    } catch (error) {
      throw this.error("cannot start the replay", error);
    }
    // Bounded: every fetch either reads a message or counts towards the idle limit.
    const fetchMs = 1000;
    let idle = 0;
    while (result.lastSeq < target) {
      const batch = await consumer.fetch({ max_messages: 256, expires: fetchMs }).catch((error) => {
        throw this.error("the replay's fetch failed", error);
      });
      let read = 0;
      for await (const msg of batch) {
        read++;
        result.messages++;
        result.lastSeq = msg.seq;
        const entry = this.take(partial, msg.headers?.get(LOG_HEADER) ?? "", msg.data);
        if (entry !== undefined) {
          result.entries++;
          onEntry(entry, msg.seq);
        }
        if (msg.seq >= target) break;
      }
      idle = read > 0 ? 0 : idle + fetchMs;
      if (idle >= this.options.replayIdleMs) {
        throw this.error(`the replay read nothing for ${this.options.replayIdleMs} ms at sequence ${result.lastSeq} of ${target}`, undefined);
      }
    }
    await consumer.delete?.().catch(() => {});
    result.incomplete = partial.size;
    return result;
  }

  /** Adds a chunk to its entry; returns the entry once whole. A message that is not a log chunk is skipped. */
  private take(partial: Map<string, { meta: ChunkMeta; bytes: Uint8Array; got: Set<number> }>, header: string, data: Uint8Array): LogEntry | undefined {
    const meta = parseChunkMeta(header);
    if (meta === undefined) return undefined;
    const key = `${meta.w}/${meta.s}/${meta.b}/${meta.inc}`;
    let entry = partial.get(key);
    if (entry === undefined) {
      entry = { meta, bytes: new Uint8Array(meta.t), got: new Set() };
      partial.set(key, entry);
    }
    if (entry.meta.t !== meta.t || entry.meta.n !== meta.n || meta.o + data.length > meta.t || entry.got.has(meta.i)) return undefined;
    entry.bytes.set(data, meta.o);
    entry.got.add(meta.i);
    if (entry.got.size < meta.n) return undefined;
    partial.delete(key);
    return { worker: meta.w, seq: meta.s, begin: meta.b, end: meta.e, epoch: meta.ep, gradient: entry.bytes };
  }

  private error(what: string, cause: unknown): ShardLogError {
    const detail = cause instanceof Error ? `: ${cause.message}` : "";
    return new ShardLogError(`${what}${detail}`, { stream: this.stream, subject: this.subject }, this.job, { cause });
  }
}

/** The chunk metadata in a log message's header, or undefined when it is not one. */
function parseChunkMeta(text: string): ChunkMeta | undefined {
  try {
    const m = JSON.parse(text) as ChunkMeta;
    const ints = [m.w, m.s, m.b, m.e, m.i, m.n, m.o, m.t];
    if (!ints.every((v) => Number.isSafeInteger(v) && v >= 0) || typeof m.inc !== "string") return undefined;
    if (m.i >= m.n || m.e < m.b || m.t !== (m.e - m.b) * 4 || (m.ep !== undefined && !Number.isSafeInteger(m.ep))) return undefined;
    return m;
  } catch {
    return undefined;
  }
}
