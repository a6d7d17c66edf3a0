// Bulk payloads (Float32 tensors as raw little-endian bytes, byte arrays, msgpack values) split into frames no larger
// than the server's max_payload, and reassembled and checked (index, count, length, CRC-32 of every chunk).
//
// A frame is a 40-byte little-endian header, then up to `chunkBytes` payload bytes:
//   0 u8 0xC1 (a byte msgpack never uses, so frames and msgpack control messages share a subject)
//   1 u8 frame version (1)         2 u8 kind (1 bytes, 2 f32, 3 msgpack value)    3 u8 reserved (0)
//   4 u32 sender index             8 u32 spec tag (CRC-32 of the job's spec hash)  12 u32 superstep
//  16 u32 sequence number of the message in (sender, superstep)                    20 u32 chunk index
//  24 u32 chunk count             28 u32 total payload bytes                      32 u32 nominal chunk bytes
//  36 u32 CRC-32 of this chunk's payload
// Chunk i holds bytes [i * chunkBytes, min(total, (i + 1) * chunkBytes)); count = max(1, ceil(total / chunkBytes)).
import { Buffer } from "node:buffer";
import * as zlib from "node:zlib";
import { InvalidArgumentError } from "../errors.js";
import { crc32 } from "../model/file/crc32.js";
import { MessageError } from "./errors.js";

/** The first byte of every frame: 0xC1 is never used by msgpack. */
export const FRAME_MARK = 0xc1;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 40;
/** What a chunk leaves free below max_payload: the frame header plus spare room. */
export const CHUNK_HEADROOM_BYTES = 64;
/** The largest message (reassembled payload) a receiver accepts by default: 1 GiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 2 ** 30;

/** What a frame's payload is. */
export type PayloadKind = "bytes" | "f32" | "value";
const KIND_CODE: Record<PayloadKind, number> = { bytes: 1, f32: 2, value: 3 };
const KIND_OF: readonly (PayloadKind | undefined)[] = [undefined, "bytes", "f32", "value"];

/** The header fields the sender chooses (the chunking fields are derived). */
export interface FrameHeader {
  kind: PayloadKind;
  sender: number;
  specTag: number;
  step: number;
  seq: number;
}

/** A decoded, checked frame; `payload` is a view into the received bytes (copy it to keep it). */
export interface Frame extends FrameHeader {
  index: number;
  count: number;
  total: number;
  chunkBytes: number;
  payload: Uint8Array;
}

/**
 * The CRC-32 of a chunk: node:zlib's native crc32 where the runtime has it (Node >= 20.15, Bun, Deno: GB/s), else the
 * table-driven crc32 of the model files (about 350 MB/s). Both are the same IEEE CRC-32, so peers may mix runtimes.
 */
export const chunkChecksum: (bytes: Uint8Array) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === "function" ? (bytes) => zlib.crc32(bytes) >>> 0 : (bytes) => crc32(bytes);

/** Whether this host stores numbers little-endian (then Float32Array bytes go on the wire as they are). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The tag of a spec hash carried by every frame: the CRC-32 of its UTF-8 bytes. */
export function specTag(specHash: string): number {
  return crc32(new TextEncoder().encode(specHash));
}

/**
 * The payload bytes per chunk for a server's max_payload: max_payload minus CHUNK_HEADROOM_BYTES, rounded down to a
 * multiple of 4 (whole floats), and at most `limit` when given. Throws InvalidArgumentError when nothing fits.
 */
export function chunkBytesFor(maxPayload: number, limit?: number): number {
  let bytes = Math.floor((maxPayload - CHUNK_HEADROOM_BYTES) / 4) * 4;
  if (limit !== undefined) bytes = Math.min(bytes, Math.floor(limit / 4) * 4);
  if (!Number.isFinite(bytes) || bytes < 4) {
    throw new InvalidArgumentError(`no chunk fits: max_payload ${maxPayload} bytes, chunk limit ${limit ?? "none"} (need at least ${CHUNK_HEADROOM_BYTES + 4} bytes)`);
  }
  return bytes;
}

/** How many chunks `total` bytes take at `chunkBytes` each (at least one, for an empty payload). */
export function chunkCount(total: number, chunkBytes: number): number {
  return Math.max(1, Math.ceil(total / chunkBytes));
}

/** From this size up, byte buffers that are wholly overwritten before use are allocated without zeroing. */
const UNZEROED_MIN_BYTES = 64 * 1024;

/**
 * A fresh buffer of `bytes` bytes of its own (a plain Uint8Array over a whole ArrayBuffer) whose contents are
 * unspecified from UNZEROED_MIN_BYTES up (not zeroed: the caller must write every byte before anyone reads it).
 */
export function uninitializedBytes(bytes: number): Uint8Array {
  if (bytes < UNZEROED_MIN_BYTES) return new Uint8Array(bytes);
  const buffer = Buffer.allocUnsafeSlow(bytes);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, bytes);
}

/** Options of a FramePool. Defaults are in FRAME_POOL_DEFAULTS. */
export interface FramePoolOptions {
  /** The most bytes of idle buffers kept for reuse (default 64 MiB); buffers given back beyond it are dropped. */
  maxBytes?: number;
}

/** The default of every FramePoolOptions field. */
export const FRAME_POOL_DEFAULTS = Object.freeze({ maxBytes: 64 * 1024 * 1024 });

/**
 * Frame buffers reused once the transport is done with them (a NATS client keeps a reference to a published buffer
 * until it writes its outbound queue, so a buffer may be given back only once the client has flushed past it).
 * take() hands out an idle buffer of exactly the size asked for, else a fresh unzeroed one.
 */
export class FramePool {
  readonly maxBytes: number;
  readonly #idle = new Map<number, Uint8Array[]>();
  #idleBytes = 0;

  constructor(options: FramePoolOptions = {}) {
    this.maxBytes = options.maxBytes ?? FRAME_POOL_DEFAULTS.maxBytes;
  }

  /** A buffer of `bytes` bytes with unspecified contents: an idle one when there is one, else fresh. */
  take(bytes: number): Uint8Array {
    const reused = this.#idle.get(bytes)?.pop();
    if (reused === undefined) return uninitializedBytes(bytes);
    this.#idleBytes -= bytes;
    return reused;
  }

  /** Gives back buffers nothing reads any more (each taken from this pool or not); keeps at most maxBytes of them. */
  give(buffers: readonly Uint8Array[]): void {
    for (const buffer of buffers) {
      const bytes = buffer.byteLength;
      if (bytes < UNZEROED_MIN_BYTES || this.#idleBytes + bytes > this.maxBytes) continue;
      const list = this.#idle.get(bytes);
      if (list === undefined) this.#idle.set(bytes, [buffer]);
      else list.push(buffer);
      this.#idleBytes += bytes;
    }
  }

  /** Bytes of idle buffers held. */
  get idleBytes(): number {
    return this.#idleBytes;
  }
}

/**
 * Splits `payload` into frames of at most `chunkBytes` payload bytes each (FRAME_HEADER_BYTES more on the wire).
 * Copies: every frame is a buffer of its own (fresh, or from `pool`), so the caller may reuse `payload` as soon as
 * this returns. Frames from a pool must be given back only when nothing reads them any more.
 */
export function encodeFrames(payload: Uint8Array, header: FrameHeader, chunkBytes: number, pool?: FramePool): Uint8Array[] {
  const total = payload.byteLength;
  if (total > 0xffffffff) throw new InvalidArgumentError(`a message of ${total} bytes is too large: at most 4 GiB - 1`);
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new InvalidArgumentError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  const count = chunkCount(total, chunkBytes);
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const start = index * chunkBytes;
    const piece = payload.subarray(start, Math.min(total, start + chunkBytes));
    const bytes = FRAME_HEADER_BYTES + piece.byteLength;
    // Every byte is written below (the buffer may hold an older frame, or be unzeroed).
    const frame = pool ? pool.take(bytes) : uninitializedBytes(bytes);
    const view = new DataView(frame.buffer, frame.byteOffset, bytes);
    frame[0] = FRAME_MARK;
    frame[1] = FRAME_VERSION;
    frame[2] = KIND_CODE[header.kind];
    frame[3] = 0;
    view.setUint32(4, header.sender, true);
    view.setUint32(8, header.specTag >>> 0, true);
    view.setUint32(12, header.step, true);
    view.setUint32(16, header.seq, true);
    view.setUint32(20, index, true);
    view.setUint32(24, count, true);
    view.setUint32(28, total, true);
    view.setUint32(32, chunkBytes, true);
    view.setUint32(36, chunkChecksum(piece), true);
    frame.set(piece, FRAME_HEADER_BYTES);
    frames.push(frame);
  }
  return frames;
}

/** Whether `bytes` is a frame (by its first byte) rather than a msgpack control message. */
export function isFrame(bytes: Uint8Array): boolean {
  return bytes.byteLength > 0 && bytes[0] === FRAME_MARK;
}

/** A peer's name for messages from its index: `names[index]` when known, else "#index". */
function senderName(index: number, names: readonly string[] | undefined): string {
  return names?.[index] ?? `#${index}`;
}

/**
 * Decodes and checks one frame received on `subject`: header, chunk geometry, payload length and the chunk's CRC-32.
 * Throws MessageError naming the sender (by `names[index]`, else "#index") and the field. Does not copy.
 */
export function decodeFrame(bytes: Uint8Array, subject: string, names?: readonly string[], job?: string): Frame {
  if (bytes.byteLength < FRAME_HEADER_BYTES) {
    throw new MessageError(`a frame of ${bytes.byteLength} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`, { sender: undefined, field: "length", subject }, job);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (offset: number) => view.getUint32(offset, true);
  const sender = u32(4);
  const name = senderName(sender, names);
  const refuse = (field: string, what: string): never => {
    throw new MessageError(what, { sender: name, field, subject }, job);
  };
  if (bytes[0] !== FRAME_MARK) refuse("encoding", `not a frame (first byte 0x${bytes[0]!.toString(16)})`);
  if (bytes[1] !== FRAME_VERSION) refuse("v", `frame version ${bytes[1]}, this peer reads version ${FRAME_VERSION}`);
  const kind = KIND_OF[bytes[2]!];
  if (kind === undefined) refuse("kind", `unknown payload kind ${bytes[2]}`);
  const [index, count, total, chunkBytes] = [u32(20), u32(24), u32(28), u32(32)];
  if (chunkBytes < 1) refuse("chunkBytes", "chunk size 0");
  if (count !== chunkCount(total, chunkBytes)) refuse("count", `${count} chunks for ${total} bytes in chunks of ${chunkBytes} (expected ${chunkCount(total, chunkBytes)})`);
  if (index >= count) refuse("index", `chunk ${index} of ${count}`);
  if (kind === "f32" && total % 4 !== 0) refuse("total", `${total} bytes is not a whole number of float32 values`);
  const expected = index < count - 1 ? chunkBytes : total - (count - 1) * chunkBytes;
  const payload = bytes.subarray(FRAME_HEADER_BYTES);
  if (payload.byteLength !== expected) refuse("length", `chunk ${index} of ${count} holds ${payload.byteLength} bytes, expected ${expected}`);
  if (chunkChecksum(payload) !== u32(36)) refuse("crc32", `chunk ${index} of ${count} fails its CRC-32 check (damaged)`);
  return { kind: kind!, sender, specTag: u32(8), step: u32(12), seq: u32(16), index, count, total, chunkBytes, payload };
}

/** A message being reassembled. */
interface Pending {
  readonly frame: Frame;
  readonly bytes: Uint8Array;
  readonly seen: Uint8Array;
  got: number;
}

/** A reassembled message: its header and its payload, in a buffer of its own (fresh or pooled) of exactly `total` bytes. */
export interface Assembled extends FrameHeader {
  payload: Uint8Array;
}

/**
 * Collects the frames of many messages (keyed by sender, superstep and sequence number) and hands each back whole
 * once its last chunk arrives. Refuses (MessageError) frames that disagree with the first frame of their message,
 * duplicates, messages over `maxBytes`, and a new incomplete message that would take the bytes held for incomplete
 * messages over `maxPendingBytes` (default: no limit; one small chunk makes the receiver allocate its whole
 * message, so a receiver that expects at most P messages at once can pass P x maxBytes); a refused frame leaves the
 * other chunks in place.
 */
export class Reassembler {
  readonly #pending = new Map<string, Pending>();
  #pendingBytes = 0;

  /** `pool`, when given, supplies the message buffers (the receiver gives them back when done with a message). */
  constructor(
    readonly maxBytes = DEFAULT_MAX_MESSAGE_BYTES,
    readonly job?: string,
    readonly pool?: FramePool,
    readonly maxPendingBytes = Number.POSITIVE_INFINITY,
  ) {}

  #buffer(bytes: number): Uint8Array {
    return this.pool ? this.pool.take(bytes) : uninitializedBytes(bytes);
  }

  /** Adds a checked frame; returns the whole message when this was its last chunk (a copy), else undefined. */
  add(frame: Frame, subject: string, sender: string): Assembled | undefined {
    const refuse = (field: string, what: string): never => {
      throw new MessageError(what, { sender, field, subject }, this.job);
    };
    if (frame.total > this.maxBytes) refuse("total", `a message of ${frame.total} bytes is over this peer's limit of ${this.maxBytes} bytes`);
    if (!(frame.index < frame.count)) refuse("index", `chunk ${frame.index} of ${frame.count}`);
    const expected = frame.index < frame.count - 1 ? frame.chunkBytes : frame.total - (frame.count - 1) * frame.chunkBytes;
    if (frame.payload.byteLength !== expected) refuse("length", `chunk ${frame.index} of ${frame.count} holds ${frame.payload.byteLength} bytes, expected ${expected}`);
    const header = { kind: frame.kind, sender: frame.sender, specTag: frame.specTag, step: frame.step, seq: frame.seq };
    // Each chunk's length is checked and each index taken once, so the chunks cover the unzeroed buffer before use.
    if (frame.count === 1) {
      const payload = this.#buffer(frame.total);
      payload.set(frame.payload);
      return { ...header, payload };
    }
    const key = `${frame.sender}/${frame.step}/${frame.seq}`;
    let entry = this.#pending.get(key);
    if (entry === undefined) {
      const held = this.#pendingBytes + frame.total + frame.count;
      if (held > this.maxPendingBytes) {
        refuse("total", `a message of ${frame.total} bytes would take the incomplete messages held to ${held} bytes, over this peer's limit of ${this.maxPendingBytes} bytes`);
      }
      entry = { frame, bytes: this.#buffer(frame.total), seen: new Uint8Array(frame.count), got: 0 };
      this.#pending.set(key, entry);
      this.#pendingBytes = held;
    } else {
      const first = entry.frame;
      for (const field of ["kind", "specTag", "count", "total", "chunkBytes"] as const) {
        if (frame[field] !== first[field]) refuse(field, `chunk ${frame.index} says ${field} ${frame[field]}, chunk ${first.index} of the same message said ${first[field]}`);
      }
      if (entry.seen[frame.index]) refuse("index", `chunk ${frame.index} of ${frame.count} arrived twice`);
    }
    entry.bytes.set(frame.payload, frame.index * frame.chunkBytes);
    entry.seen[frame.index] = 1;
    entry.got++;
    if (entry.got < frame.count) return undefined;
    this.#drop(key, entry);
    return { ...header, payload: entry.bytes };
  }

  #drop(key: string, entry: Pending): void {
    this.#pending.delete(key);
    this.#pendingBytes -= entry.frame.total + entry.frame.count;
  }

  /** Messages still missing chunks. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Bytes held for messages still missing chunks (their buffers and chunk maps). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Drops the incomplete messages `which` selects (by sender index and superstep) and returns one MessageError per
   * message, naming the sender (through `names`), field "chunks" and the missing chunk indices.
   */
  expire(which: (sender: number, step: number) => boolean, subject: string, names?: readonly string[]): MessageError[] {
    const errors: MessageError[] = [];
    for (const [key, entry] of this.#pending) {
      const { sender, step, seq, count } = entry.frame;
      if (!which(sender, step)) continue;
      this.#drop(key, entry);
      const missing: number[] = [];
      for (let i = 0; i < count && missing.length < 8; i++) if (!entry.seen[i]) missing.push(i);
      const list = missing.join(", ") + (count - entry.got > missing.length ? ", ..." : "");
      errors.push(
        new MessageError(
          `message ${seq} of superstep ${step} is missing ${count - entry.got} of its ${count} chunks (${list})`,
          { sender: senderName(sender, names), field: "chunks", subject },
          this.job,
        ),
      );
    }
    return errors;
  }
}

/** The little-endian bytes of a Float32Array: a view of the same memory on little-endian hosts, a converted copy else. */
export function float32Bytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = new Uint8Array(values.byteLength);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
}

/**
 * The Float32Array in little-endian `bytes` (a length multiple of 4). On little-endian hosts a view of the same
 * memory when it is 4-byte aligned (reassembled payloads are), else a copy; converted in place on big-endian hosts.
 */
export function bytesToFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new InvalidArgumentError(`${bytes.byteLength} bytes is not a whole number of float32 values`);
  const own = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  const values = new Float32Array(own.buffer, own.byteOffset, own.byteLength / 4);
  if (!LITTLE_ENDIAN) {
    const view = new DataView(own.buffer, own.byteOffset, own.byteLength);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(i * 4, true);
  }
  return values;
}
