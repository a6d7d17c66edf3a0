// A shard's sparse rows as bytes (issue 12): only the rows that exist, keys ascending, with their values and Adagrad
// accumulators, behind a fixed header (magic "DPSR", version, units, rows, shard, shards, features) and followed by a
// checksum, so a truncated or corrupt file is refused by name instead of restoring wrong rows. Runtime-free.
import { LITTLE_ENDIAN } from "./chunks.js";
import { ClusterError } from "./errors.js";
import { rowOwner } from "./sparse-protocol.js";
import type { SparseRowSnapshot } from "./sparse-rows.js";

const MAGIC = 0x52535044; // "DPSR" little-endian
export const ROW_SNAPSHOT_VERSION = 1;
const HEADER_WORDS = 7;

/** Whose rows a snapshot holds. */
export interface RowSnapshotOwner {
  shard: number;
  shards: number;
  features: number;
}

/** A row snapshot that cannot be read: the message names the file (or "snapshot") and what is wrong. */
export class RowSnapshotError extends ClusterError {
  constructor(
    message: string,
    readonly source: string,
    job?: string,
  ) {
    super(`${source}: ${message}`, job);
  }
}

function checksum(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** The bytes of `snapshot`, the rows of `owner`. */
export function encodeRowSnapshot(snapshot: SparseRowSnapshot, owner: RowSnapshotOwner): Uint8Array {
  if (!LITTLE_ENDIAN) throw new RowSnapshotError("row snapshots are little-endian; this engine is big-endian", "snapshot");
  const rows = snapshot.keys.length;
  const floats = rows * snapshot.units;
  const bytes = new Uint8Array(4 * (HEADER_WORDS + rows + 2 * floats + 1));
  const header = new Uint32Array(bytes.buffer, 0, HEADER_WORDS);
  header.set([MAGIC, ROW_SNAPSHOT_VERSION, snapshot.units, rows, owner.shard, owner.shards, owner.features]);
  let at = 4 * HEADER_WORDS;
  for (const part of [snapshot.keys, snapshot.values, snapshot.accumulators]) {
    bytes.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), at);
    at += part.byteLength;
  }
  new DataView(bytes.buffer).setUint32(at, checksum(bytes.subarray(0, at)), true);
  return bytes;
}

/** The snapshot in `bytes`, checked against `owner` (the shard restoring it); `source` names it in errors. */
export function decodeRowSnapshot(bytes: Uint8Array, owner: RowSnapshotOwner & { units: number }, source = "snapshot"): SparseRowSnapshot {
  const refuse = (what: string): never => {
    throw new RowSnapshotError(what, source);
  };
  if (bytes.length < 4 * (HEADER_WORDS + 1)) refuse(`${bytes.length} bytes, too short for a row snapshot`);
  const copy = bytes.slice();
  const header = new Uint32Array(copy.buffer, 0, HEADER_WORDS);
  const [magic, version, units, rows, shard, shards, features] = Array.from(header);
  if (magic !== MAGIC) refuse("not a sparse row snapshot (no DPSR magic)");
  if (version !== ROW_SNAPSHOT_VERSION) refuse(`version ${version}, expected ${ROW_SNAPSHOT_VERSION}`);
  const expected = 4 * (HEADER_WORDS + rows! + 2 * rows! * units! + 1);
  if (copy.length !== expected) refuse(`${copy.length} bytes, expected ${expected} for ${rows} rows of ${units} floats (truncated?)`);
  const end = copy.length - 4;
  if (new DataView(copy.buffer).getUint32(end, true) !== checksum(copy.subarray(0, end))) refuse("the checksum does not match (corrupt)");
  const mine: [string, number, number][] = [["units", units!, owner.units], ["shard", shard!, owner.shard], ["shards", shards!, owner.shards], ["features", features!, owner.features]];
  for (const [field, got, want] of mine) if (got !== want) refuse(`holds ${field} ${got}, this shard has ${want}`);
  let at = 4 * HEADER_WORDS;
  const keys = new Int32Array(copy.buffer, at, rows);
  at += 4 * rows!;
  const values = new Float32Array(copy.buffer, at, rows! * units!);
  at += 4 * rows! * units!;
  const accumulators = new Float32Array(copy.buffer, at, rows! * units!);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (key < 0 || key >= owner.features || (i > 0 && key <= keys[i - 1]!)) refuse(`key ${key} at position ${i} is out of range or order`);
    if (rowOwner(key, owner.shards) !== owner.shard) refuse(`key ${key} at position ${i} belongs to shard ${rowOwner(key, owner.shards)}`);
  }
  return { units: units!, keys, values, accumulators };
}
