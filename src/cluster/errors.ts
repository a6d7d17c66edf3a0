// Errors of the cluster layer (transport, membership, BSP barrier): each names the job, the peer and the field or
// superstep involved as structured fields, and keeps the underlying cause.
import { DownpourError, InvalidArgumentError } from "../errors.js";

/** Base class of every error the cluster layer throws or reports on purpose. */
export class ClusterError extends DownpourError {
  /** The job id, when the error belongs to a job. */
  readonly job: string | undefined;

  constructor(message: string, job: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.job = job;
  }
}

/** A job id that cannot be a NATS subject token (or a JetStream bucket name); the message names it and the rule. */
export class InvalidJobIdError extends InvalidArgumentError {
  readonly jobId: unknown;
  readonly rule: string;

  constructor(jobId: unknown, rule: string) {
    super(`job id ${describeValue(jobId)} is not allowed: ${rule}`);
    this.jobId = jobId;
    this.rule = rule;
  }
}

/** What a MessageError says, as fields. */
export interface MessageErrorFields {
  /** The sender's peer name as far as it could be read ("#3" for a peer index, undefined when unreadable). */
  sender: string | undefined;
  /** The field that was wrong: "encoding", "type", "v", "from", "index", "spec", "step", "crc32", "total", ... */
  field: string;
  /** The subject the message arrived on. */
  subject: string;
}

/**
 * A message that was refused: it could not be decoded, had the wrong length or checksum, or came from an
 * unknown peer or another model spec. Refused messages never change state; most are reported (onError) and
 * dropped, and the peer goes on.
 */
export class MessageError extends ClusterError {
  readonly sender: string | undefined;
  readonly field: string;
  readonly subject: string;

  constructor(message: string, fields: MessageErrorFields, job?: string, options?: { cause?: unknown }) {
    const from = fields.sender === undefined ? "an unknown sender" : `peer ${JSON.stringify(fields.sender)}`;
    super(`message from ${from} on ${fields.subject} refused (${fields.field}): ${message}`, job, options);
    this.sender = fields.sender;
    this.field = fields.field;
    this.subject = fields.subject;
  }
}

/** What a MembershipError says, as fields. */
export interface MembershipErrorFields {
  /** The peer whose membership is refused (or who holds the conflicting name, index or spec). */
  peer: string;
  /** What conflicts: the spec hash, the peer count, the index, the name, or the roster (job full, disagreement). */
  field: "spec" | "peers" | "index" | "name" | "roster";
  /** The value this job (or this peer) has, when there is one. */
  expected?: unknown;
  /** The value the refused peer has. */
  actual?: unknown;
}

/** A peer refused by a job: another model spec or peer count, a name or index already taken, a full job. */
export class MembershipError extends ClusterError {
  readonly peer: string;
  readonly field: MembershipErrorFields["field"];
  readonly expected: unknown;
  readonly actual: unknown;

  constructor(message: string, fields: MembershipErrorFields, job: string, options?: { cause?: unknown }) {
    super(message, job, options);
    this.peer = fields.peer;
    this.field = fields.field;
    this.expected = fields.expected;
    this.actual = fields.actual;
  }
}

/** What a BarrierTimeoutError says, as fields. */
export interface BarrierTimeoutFields {
  /** "join" while the peers gather (superstep 0), "sync" in a superstep's barrier. */
  phase: "join" | "sync";
  /** The superstep whose barrier timed out (0 for the join). */
  superstep: number;
  /** The peers that did not arrive: names, or "index 2" / "1 more peer" when no name is known yet. */
  missing: string[];
  /** How long this peer waited, in ms. */
  waitedMs: number;
}

/** A barrier (or the join) that waited past its timeout; names the missing peers and the superstep. */
export class BarrierTimeoutError extends ClusterError {
  readonly phase: BarrierTimeoutFields["phase"];
  readonly superstep: number;
  readonly missing: string[];
  readonly waitedMs: number;

  constructor(message: string, fields: BarrierTimeoutFields, job: string) {
    super(message, job);
    this.phase = fields.phase;
    this.superstep = fields.superstep;
    this.missing = fields.missing;
    this.waitedMs = fields.waitedMs;
  }
}

/** Why a peer was lost: its heartbeats stopped, it failed and said so, or it left while others went on. */
export type PeerLossReason = "heartbeat" | "aborted" | "left";

/** What a PeerLostError says, as fields. */
export interface PeerLostFields {
  /** The lost peer's name. */
  peer: string;
  /** The lost peer's index. */
  index: number;
  /** The superstep this peer was in when the loss was known. */
  superstep: number;
  reason: PeerLossReason;
  /** The peer that saw the loss first and told the others (undefined when this peer saw it itself). */
  reportedBy?: string;
  /** What the lost peer said when it aborted (its error message), if it did. */
  detail?: string;
}

/** A peer of the job died, stopped answering, failed, or left: the whole job fails, on every peer. */
export class PeerLostError extends ClusterError {
  readonly peer: string;
  readonly index: number;
  readonly superstep: number;
  readonly reason: PeerLossReason;
  readonly reportedBy: string | undefined;
  readonly detail: string | undefined;

  constructor(message: string, fields: PeerLostFields, job: string, options?: { cause?: unknown }) {
    super(message, job, options);
    this.peer = fields.peer;
    this.index = fields.index;
    this.superstep = fields.superstep;
    this.reason = fields.reason;
    this.reportedBy = fields.reportedBy;
    this.detail = fields.detail;
  }
}

/** A short printable form of any value for messages (strings quoted, long ones cut). */
export function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = JSON.stringify(value);
  else if (typeof value === "bigint") text = `${value}n`;
  else if (value === undefined || typeof value === "number" || typeof value === "boolean" || value === null) text = String(value);
  else if (value instanceof Uint8Array) text = `${value.byteLength} bytes`;
  else if (Array.isArray(value)) text = `an array of ${value.length}`;
  else text = `a ${typeof value}`;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
