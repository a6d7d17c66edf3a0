// A shard's share of a sparse layer over NATS (issue 12): the rows whose rowOwner is this shard, kept in a
// SparseRowStore (grown lazily, Adagrad per row), answering pulls of a worker's keys and applying its pushes of row
// gradients once per (worker, seq). startSparseShard runs it beside a dense ParameterShard holding this shard's
// range of the network's dense tail (b0, w1, b1, ...), on one connection. Requests are handled one at a time.
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.js";
import { LITTLE_ENDIAN } from "./chunks.js";
import { type ClusterConnectionOptions, connectCluster, isNatsConnection } from "./connection.js";
import { type ClusterError, MessageError } from "./errors.js";
import { isUint32, readMeta, senderOf } from "./ps-protocol.js";
import { ParameterShard, type ParameterShardOptions } from "./ps-shard.js";
import { type SparseRowOptions, type SparseRowSnapshot, SparseRowStore } from "./sparse-rows.js";
import {
  bodyFloatsView,
  bodyKeys,
  MAX_SPARSE_FEATURES,
  ROWS_PROTOCOL_VERSION,
  type RowReplyMeta,
  type RowShardInfo,
  rowHeaders,
  rowOwner,
  rowSubjects,
} from "./sparse-protocol.js";

/** Options of SparseRowServer.start; defaults in SPARSE_SHARD_DEFAULTS. */
export interface SparseRowServerOptions {
  job: string;
  shard: number;
  shards: number;
  /** Rows of the whole sparse layer (features); keys are in [0, features). */
  features: number;
  /** An open connection (kept open by close()), or how to open one (closed by close()). */
  connection: NatsConnection | ClusterConnectionOptions;
  /** The rows' width, seed, initial scale and Adagrad settings. */
  rows: SparseRowOptions;
  /** The job's spec hash; requests with another are refused (default ""). */
  specHash?: string;
  /** Rows to start from (a snapshot of this shard's rows; default none). */
  restore?: SparseRowSnapshot;
  /** Where refused requests are reported (default: console.error of the message). */
  onError?: (error: ClusterError) => void;
}

export const SPARSE_SHARD_DEFAULTS = Object.freeze({
  specHash: "",
  /** (worker, seq) pairs remembered per worker for dedupe. */
  dedupeWindow: 4096,
  onError: (error: ClusterError): void => console.error(`downpour: ${error.message}`),
});

/** What a rows server has done. */
export interface SparseRowStats {
  /** Rows that exist. */
  rows: number;
  /** Bytes they and their table take. */
  bytes: number;
  pulls: number;
  pushes: number;
  rowsPulled: number;
  rowsPushed: number;
  deduped: number;
  refused: number;
}

/** A refusal's field and message. */
class Refusal extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** One shard's rows of one job's sparse layer, served until close(). */
export class SparseRowServer {
  readonly shard: number;
  private readonly store: SparseRowStore;
  private readonly subs: Subscription[] = [];
  private readonly applied = new Map<number, Set<number>>();
  private version = 0;
  private closed = false;
  private readonly counts = { pulls: 0, pushes: 0, rowsPulled: 0, rowsPushed: 0, deduped: 0, refused: 0 };

  private constructor(
    private readonly o: Required<Omit<SparseRowServerOptions, "restore" | "connection">>,
    private readonly nc: NatsConnection,
    private readonly ownConnection: boolean,
    restore: SparseRowSnapshot | undefined,
  ) {
    this.shard = o.shard;
    this.store = restore ? SparseRowStore.restore(o.rows, restore) : new SparseRowStore(o.rows);
  }

  /** Subscribes to this shard's rows subjects; resolves once the server has them. */
  static async start(options: SparseRowServerOptions): Promise<SparseRowServer> {
    if (!LITTLE_ENDIAN) throw new InvalidArgumentError("sparse rows travel little-endian; this engine is big-endian");
    const o = resolveServerOptions(options);
    const own = !isNatsConnection(options.connection);
    const nc = own ? await connectCluster({ name: `downpour-rows-${o.job}-${o.shard}`, ...(options.connection as ClusterConnectionOptions) }) : (options.connection as NatsConnection);
    const server = new SparseRowServer(o, nc, own, options.restore);
    server.subscribe();
    await nc.flush();
    return server;
  }

  get stats(): SparseRowStats {
    return { rows: this.store.size, bytes: this.store.bytes, ...this.counts };
  }

  /** The rows that exist (copies), keys ascending. */
  snapshot(): SparseRowSnapshot {
    return this.store.snapshot();
  }

  /** Unsubscribes (and closes the connection when it opened it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs) sub.unsubscribe();
    if (this.ownConnection) await this.nc.close();
  }

  private subscribe(): void {
    const s = rowSubjects(this.o.job, this.o.shard);
    const on = (subject: string, handle: (msg: Msg) => void) => this.subs.push(this.nc.subscribe(subject, { callback: (_e, msg) => handle(msg) }));
    on(s.pull, (msg) => this.answer(msg, () => this.pull(msg)));
    on(s.push, (msg) => this.answer(msg, () => this.push(msg)));
    on(s.info, (msg) => msg.respond(JSON.stringify(this.info())));
  }

  private info(): RowShardInfo {
    const { job, shard, shards, features, specHash } = this.o;
    return { v: ROWS_PROTOCOL_VERSION, job, shard, shards, features, units: this.store.units, spec: specHash, rows: this.store.size, version: this.version };
  }

  // Runs a handler; a refusal (or a malformed request) is answered with the error and reported.
  private answer(msg: Msg, handle: () => void): void {
    let meta: Record<string, unknown> = {};
    try {
      meta = readMeta(msg.headers, msg.subject, this.o.job);
      handle();
    } catch (error) {
      const field = error instanceof Refusal ? error.field : error instanceof MessageError ? "header" : "request";
      const message = `shard ${this.o.shard} refused rows from ${senderOf(meta) ?? "an unnamed sender"} on ${msg.subject}: ${(error as Error).message}`;
      this.counts.refused++;
      this.o.onError(new MessageError(message, { sender: senderOf(meta), field, subject: msg.subject }, this.o.job));
      const reply: RowReplyMeta = { v: ROWS_PROTOCOL_VERSION, shard: this.o.shard, id: isUint32(meta.id) ? meta.id : 0, count: 0, version: this.version, error: { message, field, sender: `shard ${this.o.shard}` } };
      if (msg.reply) msg.respond(new Uint8Array(0), { headers: rowHeaders(reply) });
    }
  }

  private pull(msg: Msg): void {
    const { id, count } = this.checkRequest(msg, 0);
    const keys = this.checkKeys(bodyKeys(msg.data, count));
    const rows = new Float32Array(count * this.store.units);
    this.store.pull(keys, rows);
    this.counts.pulls++;
    this.counts.rowsPulled += count;
    this.reply(msg, { id, count }, new Uint8Array(rows.buffer));
  }

  private push(msg: Msg): void {
    const { id, count, meta } = this.checkRequest(msg, this.store.units);
    if (!isUint32(meta.seq) || meta.seq === 0) throw new Refusal("seq", `seq is ${JSON.stringify(meta.seq)}, expected an integer in [1, 2^32)`);
    const worker = meta.worker as number;
    const seen = this.applied.get(worker) ?? new Set<number>();
    if (seen.has(meta.seq)) {
      this.counts.deduped++;
      this.reply(msg, { id, count, deduped: true });
      return;
    }
    const keys = this.checkKeys(bodyKeys(msg.data, count));
    try {
      this.store.push(keys, bodyFloatsView(msg.data, 4 * count, count * this.store.units));
    } catch (error) {
      throw new Refusal("key", (error as Error).message);
    }
    this.remember(worker, seen, meta.seq);
    this.version++;
    this.counts.pushes++;
    this.counts.rowsPushed += count;
    this.reply(msg, { id, count });
  }

  private remember(worker: number, seen: Set<number>, seq: number): void {
    seen.add(seq);
    if (seen.size > SPARSE_SHARD_DEFAULTS.dedupeWindow) seen.delete(seen.values().next().value as number);
    this.applied.set(worker, seen);
  }

  private reply(msg: Msg, fields: { id: number; count: number; deduped?: boolean }, body = new Uint8Array(0)): void {
    const meta: RowReplyMeta = { v: ROWS_PROTOCOL_VERSION, shard: this.o.shard, version: this.version, ...fields };
    msg.respond(body, { headers: rowHeaders(meta) });
  }

  // The request's id and row count, its version, job and spec checked, and its body's length for `units` floats a row.
  private checkRequest(msg: Msg, units: number): { id: number; count: number; meta: Record<string, unknown> } {
    const meta = readMeta(msg.headers, msg.subject, this.o.job);
    if (meta.v !== ROWS_PROTOCOL_VERSION) throw new Refusal("v", `protocol version ${JSON.stringify(meta.v)}, expected ${ROWS_PROTOCOL_VERSION}`);
    if (meta.job !== this.o.job) throw new Refusal("job", `job ${JSON.stringify(meta.job)}, expected ${JSON.stringify(this.o.job)}`);
    if (meta.spec !== this.o.specHash) throw new Refusal("spec", `spec hash ${JSON.stringify(meta.spec)}, expected ${JSON.stringify(this.o.specHash)} (a model built otherwise)`);
    if (!isUint32(meta.id) || !isUint32(meta.worker)) throw new Refusal("id", "id and worker must be integers in [0, 2^32)");
    if (!isUint32(meta.count)) throw new Refusal("count", `count is ${JSON.stringify(meta.count)}, expected a row count`);
    const expected = 4 * meta.count * (1 + units);
    if (msg.data.length !== expected) throw new Refusal("length", `a body of ${msg.data.length} bytes, expected ${expected} for ${meta.count} rows${units ? ` of ${units} floats` : ""}`);
    return { id: meta.id, count: meta.count, meta };
  }

  // Every key in [0, features) and owned by this shard.
  private checkKeys(keys: Int32Array): Int32Array {
    const { features, shards, shard } = this.o;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key < 0 || key >= features) throw new Refusal("key", `key ${key} at position ${i} is outside [0, ${features})`);
      if (rowOwner(key, shards) !== shard) throw new Refusal("key", `key ${key} at position ${i} belongs to shard ${rowOwner(key, shards)}, not ${shard}`);
    }
    return keys;
  }
}

function resolveServerOptions(options: SparseRowServerOptions): Required<Omit<SparseRowServerOptions, "restore" | "connection">> {
  const { shard, shards, features } = options;
  if (!(Number.isInteger(shards) && shards >= 1)) throw new InvalidArgumentError(`sparse shard: shards must be an integer >= 1, got ${shards}`);
  if (!(Number.isInteger(shard) && shard >= 0 && shard < shards)) throw new InvalidArgumentError(`sparse shard: shard must be an integer in [0, ${shards}), got ${shard}`);
  if (!(Number.isInteger(features) && features >= 1 && features <= MAX_SPARSE_FEATURES)) {
    throw new InvalidArgumentError(`sparse shard: features must be an integer in [1, 2^31 - 1], got ${features}`);
  }
  return {
    job: options.job, shard, shards, features, rows: options.rows,
    specHash: options.specHash ?? SPARSE_SHARD_DEFAULTS.specHash,
    onError: options.onError ?? SPARSE_SHARD_DEFAULTS.onError,
  };
}

/** Options of startSparseShard: the rows server's, and the dense ParameterShard's for the dense tail. */
export interface SparseShardOptions extends SparseRowServerOptions {
  /** The dense tail's shard: its init (the whole tail), segments and optimizer (see ParameterShardOptions). */
  dense: Omit<ParameterShardOptions, "job" | "shard" | "shards" | "connection" | "specHash" | "onError">;
}

/** A shard of a sparse-input model: its rows and its range of the dense tail. */
export interface SparseShard {
  readonly rows: SparseRowServer;
  readonly dense: ParameterShard;
  close(): Promise<void>;
}

/** Starts shard `shard`'s rows server and dense ParameterShard on one connection. */
export async function startSparseShard(options: SparseShardOptions): Promise<SparseShard> {
  const own = !isNatsConnection(options.connection);
  const nc = own ? await connectCluster({ name: `downpour-sparse-${options.job}-${options.shard}`, ...(options.connection as ClusterConnectionOptions) }) : (options.connection as NatsConnection);
  let rows: SparseRowServer | undefined;
  try {
    const common = { job: options.job, shard: options.shard, shards: options.shards, connection: nc, specHash: options.specHash ?? "", ...(options.onError ? { onError: options.onError } : {}) };
    rows = await SparseRowServer.start({ ...common, features: options.features, rows: options.rows, ...(options.restore ? { restore: options.restore } : {}) });
    const dense = await ParameterShard.start({ ...options.dense, ...common });
    const server = rows;
    return {
      rows: server,
      dense,
      close: async () => {
        await server.close();
        await dense.close();
        if (own) await nc.close();
      },
    };
  } catch (error) {
    await rows?.close();
    if (own) await nc.close();
    throw error;
  }
}

