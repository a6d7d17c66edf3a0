// Control messages of the BSP protocol (membership, barrier markers, heartbeats, abort, done), encoded with msgpack.
// Decoding checks every field and refuses anything else with a MessageError naming the sender and the field; it
// never returns a partly checked message. Bulk data (tensors, bytes, values) travels in frames: see chunks.ts.
import { Packr } from "msgpackr";
import { MessageError } from "./errors.js";
import { isPeerName } from "./subjects.js";

/** The protocol version every message carries; a peer refuses messages of another version. */
export const PROTOCOL_VERSION = 1;
/** The longest spec hash accepted (any string; the training layer uses a hex digest). */
export const MAX_SPEC_HASH_LENGTH = 256;
/** The most peers a job can have (indices travel as u16 in frames). */
export const MAX_PEERS = 65_535;

/** Fields every control message has: the version, the sender's name and index, and the job's spec hash. */
interface Envelope {
  v: number;
  /** The sender's peer name. */
  from: string;
  /** The sender's index in the job (in a hello: the index it asks for, or -1). */
  index: number;
  /** The sender's model spec / options hash. */
  spec: string;
}

/** A peer announcing itself while the job gathers (and answered by running peers). */
export interface Hello extends Envelope {
  type: "hello";
  /** The sender's inbox token (random, per process and join). */
  uid: string;
  /** The job's peer count as the sender knows it. */
  peers: number;
}

/** A peer that has fixed the roster (names and inbox tokens by index); `running` once it has started. */
export interface Ready extends Envelope {
  type: "ready";
  uid: string;
  peers: number;
  running: boolean;
  roster: string[];
  uids: string[];
}

/** "Superstep `step` is done here; I sent you `count` messages in `frames` frames." */
export interface Marker extends Envelope {
  type: "marker";
  step: number;
  count: number;
  frames: number;
}

/** "I am alive, in superstep `step`." */
export interface Heartbeat extends Envelope {
  type: "heartbeat";
  step: number;
  /** The sender's reconnects so far (absent from peers that do not count them). */
  link?: number;
}

/**
 * "I failed in superstep `step`", and why: `kind` "error" (this peer's own failure, `reason` its message), "lost" (it
 * lost peer `lost` for `loss`) or "timeout" (its barrier timed out waiting for `missing`). Unused fields are empty.
 */
export interface Abort extends Envelope {
  type: "abort";
  step: number;
  kind: "error" | "lost" | "timeout";
  reason: string;
  lost: string;
  loss: "" | "heartbeat" | "aborted" | "left";
  missing: string[];
}

/** "I left the job after `steps` supersteps." */
export interface Done extends Envelope {
  type: "done";
  steps: number;
}

/** Every control message, discriminated by `type`. */
export type ControlMessage = Hello | Ready | Marker | Heartbeat | Abort | Done;
/** The `type` values. */
export type ControlType = ControlMessage["type"];

// Plain msgpack maps (no msgpackr records or shared structures): any msgpack reader can read them.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: "number" });

/** Encodes a control message (checked first: a malformed one is a programming error and throws MessageError). A fresh buffer. */
export function encodeControl(message: ControlMessage): Uint8Array {
  checkControl(message as unknown as Record<string, unknown>, "(outgoing)");
  return packr.pack(message);
}

/**
 * Decodes and checks a control message received on `subject`; throws MessageError naming the sender (when its
 * `from` could be read) and the first wrong field. Checks the shape only: whether the sender belongs to the job
 * and runs its spec is the receiver's check (see checkSender in bsp.ts).
 */
export function decodeControl(bytes: Uint8Array, subject: string, job?: string): ControlMessage {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    throw new MessageError(`${bytes.byteLength} bytes that are not one msgpack value`, { sender: undefined, field: "encoding", subject }, job, {
      cause: error,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new MessageError("not a msgpack map", { sender: undefined, field: "encoding", subject }, job);
  }
  return checkControl(value as Record<string, unknown>, subject, job);
}

/** The checks of each message type beyond the envelope: field name → predicate and what it must be. */
type FieldRule = [field: string, ok: (value: unknown, message: Record<string, unknown>) => boolean, expected: string];

const uint32 = (value: unknown) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;
const peerCount = (value: unknown) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_PEERS;
const token = (value: unknown) => typeof value === "string" && /^[A-Za-z0-9]{1,64}$/.test(value);
const text = (max: number) => (value: unknown) => typeof value === "string" && value.length <= max;
const listOf = (ok: (item: unknown) => boolean) => (value: unknown, message: Record<string, unknown>) =>
  Array.isArray(value) && value.length === message.peers && value.every(ok);

const RULES: Record<ControlType, FieldRule[]> = {
  hello: [
    ["uid", token, "an inbox token (1 to 64 letters or digits)"],
    ["peers", peerCount, `a peer count from 1 to ${MAX_PEERS}`],
  ],
  ready: [
    ["uid", token, "an inbox token (1 to 64 letters or digits)"],
    ["peers", peerCount, `a peer count from 1 to ${MAX_PEERS}`],
    ["running", (value) => typeof value === "boolean", "a boolean"],
    ["roster", (value, message) => listOf(isPeerName)(value, message) && new Set(value as string[]).size === (value as string[]).length, "one distinct peer name per peer"],
    ["uids", listOf(token), "one inbox token per peer"],
  ],
  marker: [
    ["step", uint32, "a superstep number"],
    ["count", uint32, "a message count"],
    ["frames", uint32, "a frame count"],
  ],
  heartbeat: [
    ["step", uint32, "a superstep number"],
    // The sender's reconnect count (bsp.ts re-sends a superstep's frames to a peer whose link grew); optional.
    ["link", (value) => value === undefined || uint32(value), "a reconnect count (optional)"],
  ],
  abort: [
    ["step", uint32, "a superstep number"],
    ["reason", text(4096), "a string (at most 4096 characters)"],
    ["kind", (value) => value === "error" || value === "lost" || value === "timeout", '"error", "lost" or "timeout"'],
    ["lost", (value) => value === "" || isPeerName(value), 'a peer name or ""'],
    ["loss", (value) => ["", "heartbeat", "aborted", "left"].includes(value as string), '"", "heartbeat", "aborted" or "left"'],
    ["missing", (value) => Array.isArray(value) && value.length <= MAX_PEERS && value.every((name) => isPeerName(name)), "a list of peer names"],
  ],
  done: [["steps", uint32, "a superstep count"]],
};

/** Checks the envelope and the type's fields of a decoded map; returns it typed, or throws MessageError. */
function checkControl(message: Record<string, unknown>, subject: string, job?: string): ControlMessage {
  const from = message.from;
  const sender = isPeerName(from) ? from : undefined;
  const refuse = (field: string, expected: string): never => {
    const got = describe(message[field]);
    throw new MessageError(`field "${field}" is ${got}, expected ${expected}`, { sender, field, subject }, job);
  };
  if (message.v !== PROTOCOL_VERSION) refuse("v", `protocol version ${PROTOCOL_VERSION}`);
  const type = message.type;
  if (typeof type !== "string" || !Object.hasOwn(RULES, type)) refuse("type", `one of ${Object.keys(RULES).join(", ")}`);
  if (sender === undefined) refuse("from", "a peer name (1 to 128 characters, no control characters)");
  const index = message.index;
  if (!Number.isInteger(index) || (index as number) < -1 || (index as number) >= MAX_PEERS) refuse("index", "a peer index (or -1)");
  if (!text(MAX_SPEC_HASH_LENGTH)(message.spec)) refuse("spec", `a spec hash (a string of at most ${MAX_SPEC_HASH_LENGTH} characters)`);
  for (const [field, ok, expected] of RULES[type as ControlType]) {
    if (!ok(message[field], message)) refuse(field, expected);
  }
  return message as unknown as ControlMessage;
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object" && value !== null) return "a map";
  return String(value);
}

/** The msgpack codec of user values (BspPeer.send of a plain object): plain maps, no records. */
export function packValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes a user value packed by packValue; throws what msgpackr throws (the caller wraps it in a MessageError). */
export function unpackValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
