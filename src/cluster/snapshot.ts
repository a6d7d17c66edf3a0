// The snapshot format of a parameter-server shard (ps-shard.ts): everything a restarted shard needs to carry on as if
// it had not stopped — its parameters, every optimizer-state slot, the version clock, the learning-rate schedule's
// epoch, the per-worker clocks and the dedupe state (newest seq + the recent window per worker, so a push retried
// after a restore is still applied once) and the log sequence it covers (durability "log").
//
// Layout (little-endian):
//   0  8 bytes  magic "DPSNAP\r\n"
//   8  u32      format version (SNAPSHOT_FORMAT_VERSION)
//  12  u32      metadata bytes M
//  16  M bytes  metadata, JSON (UTF-8), keys exactly as SnapshotMeta
//      zero padding to a multiple of 4
//      (1 + slots) blocks of `floats` float32 each: the parameters, then optimizer-state slot 0, 1, ...
//  end-4 u32    CRC-32 of every byte before it
// decodeSnapshot refuses anything else with a SnapshotError naming the snapshot and the field; it never allocates
// more than the bytes it was given, and refuses a declared size beyond its limit before looking further.
import { ClusterError } from "./errors.js";
import { crc32 } from "../model/file/crc32.js";

/** "DPSNAP\r\n": the first 8 bytes of every snapshot. */
export const SNAPSHOT_MAGIC = Uint8Array.from([0x44, 0x50, 0x53, 0x4e, 0x41, 0x50, 0x0d, 0x0a]);
/** The format version written; decodeSnapshot refuses another. */
export const SNAPSHOT_FORMAT_VERSION = 1;
/** Bytes before the metadata: magic, version, metadata length. */
export const SNAPSHOT_HEADER_BYTES = 16;

/** The limits of decodeSnapshot (the one place their defaults are written). */
export const SNAPSHOT_LIMITS = Object.freeze({
  /** The most bytes a snapshot may have (what a store reads before decoding): 4 GiB. */
  maxBytes: 4 * 1024 ** 3,
  /** The most metadata bytes (the clocks and dedupe windows of many workers): 64 MiB. */
  maxMetaBytes: 64 * 1024 ** 2,
  /** The most optimizer-state slots (Adam has 2). */
  maxSlots: 4,
  /** The most sequence numbers kept per worker in the dedupe window. */
  maxRecent: 1 << 16,
});

/** Per worker: the newest sequence number applied and the recent ones (the shard's dedupe window). */
export interface AppliedWindow {
  worker: number;
  max: number;
  /** Sequence numbers applied that are still inside the window (ascending). */
  recent: number[];
}

/** Everything a shard's snapshot holds. */
export interface ShardSnapshot {
  job: string;
  shard: number;
  shards: number;
  /** Length of the whole key space. */
  keys: number;
  /** The shard's key range [begin, end). */
  begin: number;
  end: number;
  specHash: string;
  /** The optimizer ("sgd", "adagrad", "adam"): its state slots follow the parameters. */
  optimizer: string;
  /** Updates applied (the version clock). */
  version: number;
  /** The highest epoch a push carried (the learning-rate schedule's position). */
  epoch: number;
  /** The last log sequence (JetStream stream seq) whose update is in this snapshot; 0 without a log. */
  logSeq: number;
  /** When the snapshot was taken (ms since the epoch). */
  createdAt: number;
  /** Per worker that pushed: [worker, clock (pushes applied from it)]. */
  clocks: [number, number][];
  /** The dedupe state per worker. */
  applied: AppliedWindow[];
  /** The shard's parameters, end - begin floats. */
  params: Float32Array;
  /** The optimizer-state slots, each end - begin floats. */
  state: Float32Array[];
}

/** The metadata as stored (JSON): every field of ShardSnapshot but the floats, plus their shape. */
interface SnapshotMeta {
  job: string;
  shard: number;
  shards: number;
  keys: number;
  begin: number;
  end: number;
  spec: string;
  optimizer: string;
  version: number;
  epoch: number;
  logSeq: number;
  createdAt: number;
  /** Floats per block (end - begin). */
  floats: number;
  /** Optimizer-state slots (blocks after the parameters). */
  slots: number;
  clocks: [number, number][];
  applied: [number, number, number[]][];
}

const META_KEYS: readonly (keyof SnapshotMeta)[] = [
  "job", "shard", "shards", "keys", "begin", "end", "spec", "optimizer", "version", "epoch", "logSeq", "createdAt", "floats", "slots", "clocks", "applied",
];

/** Why a snapshot was refused. */
export type SnapshotFailure = "magic" | "version" | "truncated" | "length" | "limit" | "meta" | "crc32" | "mismatch" | "store";

/** What a SnapshotError says, as fields. */
export interface SnapshotErrorFields {
  /** The snapshot's name (a file path, an object name, or "<bytes>"). */
  snapshot: string;
  reason: SnapshotFailure;
  /** The metadata field at fault (reason "meta", "mismatch", "limit"), when there is one. */
  field?: string;
}

/**
 * A snapshot that cannot be decoded (bad magic or version, truncated, over a limit, malformed metadata, a CRC-32
 * mismatch), that does not belong to the shard restoring it ("mismatch"), or that a store could not read or write
 * ("store"). The message names the snapshot and what was expected.
 */
export class SnapshotError extends ClusterError {
  readonly snapshot: string;
  readonly reason: SnapshotFailure;
  readonly field: string | undefined;

  constructor(message: string, fields: SnapshotErrorFields, job?: string, options?: { cause?: unknown }) {
    super(`snapshot ${fields.snapshot}: ${message}`, job, options);
    this.snapshot = fields.snapshot;
    this.reason = fields.reason;
    this.field = fields.field;
  }
}

/** Options of decodeSnapshot (defaults in SNAPSHOT_LIMITS). */
export interface DecodeSnapshotOptions {
  /** The name errors give (default "<bytes>"). */
  name?: string;
  /** The most bytes a snapshot may declare (default SNAPSHOT_LIMITS.maxBytes). */
  maxBytes?: number;
  /** The most metadata bytes (default SNAPSHOT_LIMITS.maxMetaBytes). */
  maxMetaBytes?: number;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** The snapshot's bytes (see the layout at the top). The floats are copied; `snapshot` is not kept. */
export function encodeSnapshot(snapshot: ShardSnapshot): Uint8Array {
  const floats = snapshot.end - snapshot.begin;
  const meta: SnapshotMeta = {
    job: snapshot.job,
    shard: snapshot.shard,
    shards: snapshot.shards,
    keys: snapshot.keys,
    begin: snapshot.begin,
    end: snapshot.end,
    spec: snapshot.specHash,
    optimizer: snapshot.optimizer,
    version: snapshot.version,
    epoch: snapshot.epoch,
    logSeq: snapshot.logSeq,
    createdAt: snapshot.createdAt,
    floats,
    slots: snapshot.state.length,
    clocks: snapshot.clocks.map(([w, c]) => [w, c]),
    applied: snapshot.applied.map((a) => [a.worker, a.max, a.recent]),
  };
  const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
  const blocks = [snapshot.params, ...snapshot.state];
  const start = pad4(SNAPSHOT_HEADER_BYTES + metaBytes.length);
  const total = start + blocks.length * floats * 4 + 4;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set(SNAPSHOT_MAGIC, 0);
  view.setUint32(8, SNAPSHOT_FORMAT_VERSION, true);
  view.setUint32(12, metaBytes.length, true);
  bytes.set(metaBytes, SNAPSHOT_HEADER_BYTES);
  blocks.forEach((block, b) => {
    if (block.length !== floats) throw new RangeError(`encodeSnapshot: block ${b} has ${block.length} floats, the range ${floats}`);
    const at = start + b * floats * 4;
    for (let i = 0; i < floats; i++) view.setFloat32(at + 4 * i, block[i]!, true);
  });
  view.setUint32(total - 4, crc32(bytes.subarray(0, total - 4)), true);
  return bytes;
}

/**
 * The snapshot in `bytes`, checked: magic, format version, metadata length within the limit and the bytes, metadata
 * fields (types, ranges, the exact set of keys), the declared float blocks within the limit and exactly filling the
 * bytes, then the CRC-32. Throws SnapshotError (reason and field set) otherwise.
 */
export function decodeSnapshot(bytes: Uint8Array, options: DecodeSnapshotOptions = {}): ShardSnapshot {
  const name = options.name ?? "<bytes>";
  const maxBytes = options.maxBytes ?? SNAPSHOT_LIMITS.maxBytes;
  const maxMetaBytes = options.maxMetaBytes ?? SNAPSHOT_LIMITS.maxMetaBytes;
  const refuse = (reason: SnapshotFailure, what: string, field?: string): never => {
    throw new SnapshotError(what, { snapshot: name, reason, field });
  };
  if (!(bytes instanceof Uint8Array)) refuse("meta", "not bytes");
  if (bytes.length > maxBytes) refuse("limit", `${bytes.length} bytes, more than the limit of ${maxBytes}`);
  if (bytes.length < SNAPSHOT_HEADER_BYTES + 4) refuse("truncated", `${bytes.length} bytes, shorter than a snapshot's header (${SNAPSHOT_HEADER_BYTES + 4})`);
  for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) if (bytes[i] !== SNAPSHOT_MAGIC[i]) refuse("magic", 'not a downpour snapshot (no "DPSNAP" magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint32(8, true);
  if (format !== SNAPSHOT_FORMAT_VERSION) refuse("version", `format version ${format}, this build reads version ${SNAPSHOT_FORMAT_VERSION}`);
  const metaLength = view.getUint32(12, true);
  if (metaLength > maxMetaBytes) refuse("limit", `declares ${metaLength} metadata bytes, more than the limit of ${maxMetaBytes}`, "meta");
  if (SNAPSHOT_HEADER_BYTES + metaLength + 4 > bytes.length) {
    refuse("truncated", `declares ${metaLength} metadata bytes, only ${bytes.length - SNAPSHOT_HEADER_BYTES - 4} follow the header`);
  }
  const meta = parseMeta(bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + metaLength), refuse);
  const start = pad4(SNAPSHOT_HEADER_BYTES + metaLength);
  const blockBytes = (1 + meta.slots) * meta.floats * 4;
  if (blockBytes > maxBytes) refuse("limit", `declares ${1 + meta.slots} blocks of ${meta.floats} floats (${blockBytes} bytes), more than the limit of ${maxBytes}`, "floats");
  const total = start + blockBytes + 4;
  if (bytes.length < total) refuse("truncated", `${bytes.length} bytes, the header declares ${total}`);
  if (bytes.length > total) refuse("length", `${bytes.length} bytes, the header declares ${total} (trailing bytes)`);
  const stored = view.getUint32(total - 4, true);
  const actual = crc32(bytes.subarray(0, total - 4));
  if (stored !== actual) refuse("crc32", `CRC-32 ${hex(actual)} of the contents, the snapshot says ${hex(stored)} (corrupt)`);
  const block = (b: number): Float32Array => {
    const out = new Float32Array(meta.floats);
    const at = start + b * meta.floats * 4;
    for (let i = 0; i < meta.floats; i++) out[i] = view.getFloat32(at + 4 * i, true);
    return out;
  };
  return {
    job: meta.job,
    shard: meta.shard,
    shards: meta.shards,
    keys: meta.keys,
    begin: meta.begin,
    end: meta.end,
    specHash: meta.spec,
    optimizer: meta.optimizer,
    version: meta.version,
    epoch: meta.epoch,
    logSeq: meta.logSeq,
    createdAt: meta.createdAt,
    clocks: meta.clocks,
    applied: meta.applied.map(([worker, max, recent]) => ({ worker, max, recent })),
    params: block(0),
    state: Array.from({ length: meta.slots }, (_, s) => block(1 + s)),
  };
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

type Refuse = (reason: SnapshotFailure, what: string, field?: string) => never;

/** The metadata JSON, every field checked (types, ranges, no other keys). */
function parseMeta(bytes: Uint8Array, refuse: Refuse): SnapshotMeta {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    refuse("meta", "the metadata is not UTF-8 JSON", "meta");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) refuse("meta", "the metadata is not a JSON object", "meta");
  const meta = value as Record<string, unknown>;
  for (const key of Object.keys(meta)) if (!(META_KEYS as readonly string[]).includes(key)) refuse("meta", `unknown metadata field ${JSON.stringify(key.slice(0, 40))}`, key);
  const bad = (field: string, expected: string): never => refuse("meta", `metadata field ${field} must be ${expected}, got ${shown(meta[field])}`, field);
  for (const field of ["job", "spec", "optimizer"] as const) if (typeof meta[field] !== "string") bad(field, "a string");
  for (const field of ["shard", "shards", "keys", "begin", "end", "version", "epoch", "logSeq", "createdAt", "floats", "slots"] as const) {
    if (!isCount(meta[field])) bad(field, "an integer >= 0");
  }
  const m = meta as unknown as SnapshotMeta;
  if (m.shard >= m.shards) bad("shard", `below shards (${m.shards})`);
  if (!(m.begin <= m.end && m.end <= m.keys)) bad("end", `within [begin ${m.begin}, keys ${m.keys}]`);
  if (m.floats !== m.end - m.begin) bad("floats", `end - begin (${m.end - m.begin})`);
  if (m.slots > SNAPSHOT_LIMITS.maxSlots) bad("slots", `at most ${SNAPSHOT_LIMITS.maxSlots}`);
  checkClocks(meta.clocks, bad);
  checkApplied(meta.applied, bad);
  return m;
}

function checkClocks(clocks: unknown, bad: (field: string, expected: string) => never): void {
  if (!Array.isArray(clocks)) bad("clocks", "an array of [worker, clock]");
  const seen = new Set<number>();
  for (const entry of clocks as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2 || !isU32(entry[0]) || !isCount(entry[1]) || seen.has(entry[0])) {
      bad("clocks", "an array of distinct [worker (u32), clock (integer >= 0)]");
    }
    seen.add((entry as number[])[0]!);
  }
}

function checkApplied(applied: unknown, bad: (field: string, expected: string) => never): void {
  const what = "an array of distinct [worker (u32), max seq (u32), recent seqs (ascending u32 <= max)]";
  if (!Array.isArray(applied)) bad("applied", what);
  const seen = new Set<number>();
  for (const entry of applied as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 3 || !isU32(entry[0]) || !isU32(entry[1]) || !Array.isArray(entry[2]) || seen.has(entry[0])) bad("applied", what);
    const [worker, max, recent] = entry as [number, number, unknown[]];
    seen.add(worker);
    if (recent.length > SNAPSHOT_LIMITS.maxRecent) bad("applied", `at most ${SNAPSHOT_LIMITS.maxRecent} recent seqs per worker`);
    let previous = -1;
    for (const seq of recent) {
      if (!isU32(seq) || seq <= previous || seq > max) bad("applied", what);
      previous = seq as number;
    }
  }
}

function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null || typeof value !== "object") return String(value);
  return "an object";
}
