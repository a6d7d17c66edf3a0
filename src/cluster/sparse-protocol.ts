// The wire protocol of a sparse layer's rows (issue 12) between the shards that hold them (sparse-shard.ts) and
// the workers (sparse-client.ts): row `key` (a feature id) lives on shard rowOwner(key, shards); per shard the
// subjects downpour.<job>.ps.<k>.rows.pull | push | info; metadata as JSON in the Downpour-Ps header (as the dense
// protocol, ps-protocol.ts), bodies raw little-endian: a pull's keys (Int32) and its reply's rows (Float32, count x
// units); a push's keys then its gradient rows. Nothing here opens a connection.
import type { MsgHdrs } from "@nats-io/nats-core";
import { hash2 } from "../util/hash.js";
import { ClusterError } from "./errors.js";
import { metaHeaders, type ReplyError } from "./ps-protocol.js";
import { checkJobId, SUBJECT_ROOT } from "./subjects.js";

/** The version every rows request and reply carries. */
export const ROWS_PROTOCOL_VERSION = 1;
/** The most features a sparse layer can have (keys are non-negative Int32). */
export const MAX_SPARSE_FEATURES = 2 ** 31 - 1;

/** The rows subjects of one shard of one job. */
export interface RowSubjects {
  readonly pull: string;
  readonly push: string;
  readonly info: string;
}

/** The rows subjects of shard `shard` of `job`. */
export function rowSubjects(job: string, shard: number): RowSubjects {
  checkJobId(job);
  const root = `${SUBJECT_ROOT}.${job}.ps.${shard}.rows`;
  return { pull: `${root}.pull`, push: `${root}.push`, info: `${root}.info` };
}

/** The shard holding row `key` of `shards`: by hash, so a power-law's frequent low ids spread over every shard. */
export function rowOwner(key: number, shards: number): number {
  return hash2(key, 0x0d0e) % shards;
}

/** A rows request's metadata. */
export interface RowRequestMeta {
  v: number;
  job: string;
  spec: string;
  /** The sender's name, for messages. */
  from: string;
  worker: number;
  /** Request id (u32), new per attempt. */
  id: number;
  /** Rows in the body. */
  count: number;
  /** Push only: (worker, seq) is applied once. */
  seq?: number;
}

/** A rows reply's metadata (a pull's rows, a push's acknowledgement, or a refusal). */
export interface RowReplyMeta {
  v: number;
  shard: number;
  id: number;
  count: number;
  /** Pushes applied by the shard so far. */
  version: number;
  deduped?: boolean;
  error?: ReplyError;
}

/** What a shard says of its rows on the info subject. */
export interface RowShardInfo {
  v: number;
  job: string;
  shard: number;
  shards: number;
  features: number;
  units: number;
  spec: string;
  /** Rows that exist (pushed at least once). */
  rows: number;
  version: number;
}

/** Headers holding `meta` as JSON (the dense protocol's header). */
export function rowHeaders(meta: RowRequestMeta | RowReplyMeta): MsgHdrs {
  return metaHeaders(meta);
}

/** Bytes of a body of `count` keys and, when `units` > 0, count x units floats after them. */
export function rowBodyBytes(count: number, units: number): number {
  return 4 * count + 4 * count * units;
}

/** A pull body: the keys (a copy). */
export function encodeRowKeys(keys: Int32Array): Uint8Array {
  return new Uint8Array(keys.buffer, keys.byteOffset, 4 * keys.length).slice();
}

/** Int32 keys of a body's first 4 x count bytes (aligned copy when needed). */
export function bodyKeys(body: Uint8Array, count: number): Int32Array {
  return new Int32Array(alignedCopy(body, 0, 4 * count));
}

/** Float32 rows of body bytes [offset, offset + 4 x length). */
export function bodyFloats(body: Uint8Array, offset: number, length: number): Float32Array {
  return new Float32Array(alignedCopy(body, offset, 4 * length));
}

function alignedCopy(body: Uint8Array, offset: number, bytes: number): ArrayBuffer {
  return body.buffer.slice(body.byteOffset + offset, body.byteOffset + offset + bytes) as ArrayBuffer;
}

/** Float32 rows of body bytes [offset, offset + 4 x length): a view when aligned, else a copy (read only: the
 *  view shares the message's memory). */
export function bodyFloatsView(body: Uint8Array, offset: number, length: number): Float32Array {
  const at = body.byteOffset + offset;
  return at % 4 === 0 ? new Float32Array(body.buffer, at, length) : bodyFloats(body, offset, length);
}

/** Why a rows request failed. */
export type RowFailure = "timeout" | "no-responders" | "refused" | "mismatch" | "closed";

/** What a SparseRowError says, as fields. */
export interface SparseRowErrorFields {
  shard: number;
  op: "pull" | "push" | "info";
  reason: RowFailure;
  /** For "refused" and "mismatch": the field at fault ("key", "count", "spec", "units", ...). */
  field?: string;
  /** Rows the request was about. */
  rows: number;
  attempts: number;
}

/** A rows pull, push or connect that failed; the message names the shard, the operation and the cause. */
export class SparseRowError extends ClusterError {
  readonly shard: number;
  readonly op: SparseRowErrorFields["op"];
  readonly reason: RowFailure;
  readonly field: string | undefined;
  readonly rows: number;
  readonly attempts: number;

  constructor(message: string, fields: SparseRowErrorFields, job: string, options?: { cause?: unknown }) {
    super(message, job, options);
    this.shard = fields.shard;
    this.op = fields.op;
    this.reason = fields.reason;
    this.field = fields.field;
    this.rows = fields.rows;
    this.attempts = fields.attempts;
  }
}
