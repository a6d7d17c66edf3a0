// The wire protocol between parameter-server shards (ps-shard.ts) and their clients (ps-client.ts): the subjects of
// shard k of a job (downpour.<job>.ps.<k>.push | pull | info), the request and reply metadata carried as JSON in one
// NATS header beside raw float32 frames (chunks.ts), the info a shard publishes about itself, and the error a client
// rejects with. Nothing here opens a connection.
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import type { KeyRange } from "../train/exchange.js";
import { MAX_SPEC_HASH_LENGTH } from "./codec.js";
import { ClusterError, describeValue, MessageError } from "./errors.js";
import { checkJobId, isPeerName, SUBJECT_ROOT } from "./subjects.js";

/** The version every request and reply carries; a shard refuses requests of another version. */
export const PS_PROTOCOL_VERSION = 1;
/** The NATS header holding a message's metadata (compact JSON). */
export const PS_HEADER = "Downpour-Ps";
/**
 * Bytes of max_payload left to the NATS header of every frame (the metadata is at most ~700 bytes: a 64-character
 * job, a 256-character spec hash and a 128-character sender name), on top of chunks.ts's own headroom.
 */
export const PS_HEADER_ROOM_BYTES = 1024;
/** The most shards a job can have (shard indices travel as u32 frame senders; this bounds the subjects). */
export const MAX_SHARDS = 4096;

/** The subjects of one shard of one job. */
export interface ShardSubjects {
  /** downpour.<job>.ps.<shard>.push : gradient frames in, an acknowledgement out. */
  readonly push: string;
  /** downpour.<job>.ps.<shard>.pull : a request in, parameter frames out. */
  readonly pull: string;
  /** downpour.<job>.ps.<shard>.info : a request in, the shard's ShardInfo (JSON) out. */
  readonly info: string;
  /** downpour.<job>.ps.<shard>.clock : "these workers are idle" (RequestMeta.idle) in, an acknowledgement out. */
  readonly clock: string;
}

/** The subjects of shard `shard` of `job` (the job id checked with checkJobId). */
export function shardSubjects(job: string, shard: number): ShardSubjects {
  checkJobId(job);
  const root = `${SUBJECT_ROOT}.${job}.ps.${shard}`;
  return { push: `${root}.push`, pull: `${root}.pull`, info: `${root}.info`, clock: `${root}.clock` };
}

/** The metadata of a push or pull request (one header value, on every frame of a push). */
export interface RequestMeta {
  v: number;
  /** The job the sender belongs to (the subject names one too; a shard refuses another). */
  job: string;
  /** The sender's spec hash (a shard refuses another). */
  spec: string;
  /** The sender's name, for error messages ("worker 3"). */
  from: string;
  /** The sender's worker id (u32); on a push the frames' sender index too. */
  worker: number;
  /** The key range [begin, end) the body holds (push) or asks for (pull), in keys of the whole parameter block. */
  begin: number;
  end: number;
  /** The request id (u32, new for every attempt): a push's frames carry it as their superstep field. */
  id: number;
  /** Push only: the worker's sequence number (1, 2, ...); (worker, seq) is applied once. */
  seq?: number;
  /** Push only: the epoch the worker is in (drives a per-epoch learning-rate decay). */
  epoch?: number;
  /**
   * Pull only (SSP / BSP reads): answer only once at least `workers` workers have pushed and every one of them that
   * is not idle has a clock (pushes applied from it) >= minClock, waiting at most waitMs (then refused, field
   * "clock", naming the slowest worker). Absent: answered at once.
   */
  minClock?: number;
  workers?: number;
  waitMs?: number;
  /** Clock subject only: worker ids that will push nothing more for now (their clocks hold no read back until their
   *  next push). */
  idle?: number[];
}

/** A refusal, as a reply carries it. */
export interface ReplyError {
  message: string;
  field: string;
  sender: string;
}

/** The metadata of a reply (an acknowledgement, every frame of a pull reply, or a refusal). */
export interface ReplyMeta {
  v: number;
  /** The shard that answers. */
  shard: number;
  /** The request id answered. */
  id: number;
  /** The shard's version (updates applied) after the push, or of the values pulled. */
  version: number;
  /** The range the reply is about. */
  begin: number;
  end: number;
  /** Push only: true when (worker, seq) had been applied before, so this one was acknowledged without applying. */
  deduped?: boolean;
  /** Pull with minClock only: the lowest clock of the workers not idle when the values were read. */
  clock?: number;
  /** Set on a refusal: nothing changed on the shard. */
  error?: ReplyError;
}

/** What a shard says about itself on its info subject. */
export interface ShardInfo {
  v: number;
  job: string;
  shard: number;
  shards: number;
  /** Length of the whole key space. */
  keys: number;
  /** The range this shard owns. */
  begin: number;
  end: number;
  spec: string;
  /** Updates applied so far. */
  version: number;
  optimizer: string;
}

/** Headers holding `meta` (a RequestMeta, ReplyMeta, or a sparse-rows one) as JSON (JSON escapes control characters,
 *  so the value is one header line). */
export function metaHeaders(meta: object): MsgHdrs {
  const h = headers();
  h.set(PS_HEADER, JSON.stringify(meta));
  return h;
}

/** The parsed JSON of a message's metadata header; throws MessageError (field "header") when absent or not JSON. */
export function readMeta(hdrs: MsgHdrs | undefined, subject: string, job: string | undefined): Record<string, unknown> {
  const text = hdrs?.get(PS_HEADER) ?? "";
  const refuse = (what: string): never => {
    throw new MessageError(what, { sender: undefined, field: "header", subject }, job);
  };
  if (text === "") refuse(`no ${PS_HEADER} header`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    refuse(`the ${PS_HEADER} header is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) refuse(`the ${PS_HEADER} header is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Checks the shape of a reply's parsed metadata (readMeta) and returns it typed: a refusal must carry an `error` of
 * string message, field and sender; any other reply v, shard, id (u32), version (an integer >= 0), begin and end
 * (integers), deduped (a boolean) and clock (a number) when present. Whether the reply is the one expected (this
 * shard, this request) is the caller's check. Throws MessageError (field "header") naming the reply field and
 * `sender` (the shard's name, when known).
 */
export function checkReplyMeta(meta: Record<string, unknown>, subject: string, job: string | undefined, sender?: string): ReplyMeta {
  const refuse = (field: string, expected: string): never => {
    throw new MessageError(`reply field "${field}" is ${describeValue(meta[field])}, expected ${expected}`, { sender, field: "header", subject }, job);
  };
  if (meta.error !== undefined) {
    const e = meta.error as Record<string, unknown> | null;
    const ok = typeof e === "object" && e !== null && !Array.isArray(e) && typeof e.message === "string" && typeof e.field === "string";
    if (!ok || (e.sender !== undefined && typeof e.sender !== "string")) refuse("error", "a refusal { message, field, sender } of strings");
    return meta as unknown as ReplyMeta;
  }
  if (meta.v !== PS_PROTOCOL_VERSION) refuse("v", `protocol version ${PS_PROTOCOL_VERSION}`);
  if (!isUint32(meta.shard)) refuse("shard", "a shard index");
  if (!isUint32(meta.id)) refuse("id", "a request id (an integer in [0, 2^32))");
  if (!Number.isSafeInteger(meta.version) || (meta.version as number) < 0) refuse("version", "a version (an integer >= 0)");
  if (!Number.isSafeInteger(meta.begin)) refuse("begin", "a key (an integer)");
  if (!Number.isSafeInteger(meta.end)) refuse("end", "a key (an integer)");
  if (meta.deduped !== undefined && typeof meta.deduped !== "boolean") refuse("deduped", "a boolean");
  if (meta.clock !== undefined && (typeof meta.clock !== "number" || Number.isNaN(meta.clock))) refuse("clock", "a clock (a number)");
  return meta as unknown as ReplyMeta;
}

/** readMeta, then checkReplyMeta: a reply's metadata, parsed and checked. */
export function readReplyMeta(hdrs: MsgHdrs | undefined, subject: string, job: string | undefined, sender?: string): ReplyMeta {
  return checkReplyMeta(readMeta(hdrs, subject, job), subject, job, sender);
}

export const isUint32 = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;

/** Checks that a spec hash can travel in the metadata; returns it. */
export function isSpecHash(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_SPEC_HASH_LENGTH;
}

/** The sender name a request's metadata gives, or "#worker" when it gives none that is usable. */
export function senderOf(meta: Record<string, unknown>): string | undefined {
  if (isPeerName(meta.from)) return meta.from;
  return isUint32(meta.worker) ? `#${meta.worker}` : undefined;
}

/** "[begin, end)". */
export function rangeText(range: KeyRange): string {
  return `[${range.begin}, ${range.end})`;
}

/** What a request to a shard was. */
export type ShardOp = "push" | "pull" | "clock" | "info" | "start";

/** Why a parameter-server request failed. */
export type ParameterServerFailure = "timeout" | "no-responders" | "refused" | "mismatch" | "closed";

/** What a ParameterServerError says, as fields. */
export interface ParameterServerErrorFields {
  /** The shard involved. */
  shard: number;
  /** The key range the request was about (the part of it this shard owns). */
  range: KeyRange;
  op: ShardOp;
  reason: ParameterServerFailure;
  /** For "refused" and "mismatch": the field at fault ("length", "range", "job", "spec", "keys", ...). */
  field?: string;
  /** Attempts made (1 when refused at once). */
  attempts: number;
}

/**
 * A push, pull or connect that failed: no answer after the last attempt ("timeout", "no-responders": no shard
 * subscribed), a shard that refused it ("refused": wrong length, range not owned, another job or spec; the shard's
 * state is unchanged), a shard that is not the one the client expects ("mismatch"), or a closed client ("closed").
 * The message names the shard, the range and the cause.
 */
export class ParameterServerError extends ClusterError {
  readonly shard: number;
  readonly range: KeyRange;
  readonly op: ShardOp;
  readonly reason: ParameterServerFailure;
  readonly field: string | undefined;
  readonly attempts: number;

  constructor(message: string, fields: ParameterServerErrorFields, job: string, options?: { cause?: unknown }) {
    super(message, job, options);
    this.shard = fields.shard;
    this.range = { begin: fields.range.begin, end: fields.range.end };
    this.op = fields.op;
    this.reason = fields.reason;
    this.field = fields.field;
    this.attempts = fields.attempts;
  }
}
