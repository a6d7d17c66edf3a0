// Seeded fuzzing of the cluster's decoders (issue 10): msgpack control messages (decodeControl), tensor frames
// (decodeFrame + Reassembler), parameter-server metadata (readMeta, and a real shard over a real nats-server) and
// portion-queue requests (checkPortionRequest + PortionQueue). Each gets at least 10,000 random, truncated,
// bit-flipped, oversized and type-confused inputs; each must decode to a value that checks again, or be refused
// with a MessageError (PortionRequestError for the queue's own state checks), never a TypeError/RangeError, a hang,
// or an allocation beyond the declared limit (a frame claiming a 4 GiB or 10^12-element payload allocates nothing).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import type { NatsConnection } from "@nats-io/transport-node";
import { chunkChecksum, decodeFrame, encodeFrames, FRAME_HEADER_BYTES, type Frame, float32Bytes, type PayloadKind, Reassembler, specTag } from "../../src/cluster/chunks.js";
import { type ControlMessage, decodeControl, encodeControl, PROTOCOL_VERSION, packValue, unpackValue } from "../../src/cluster/codec.js";
import { MessageError } from "../../src/cluster/errors.js";
import { checkPortionRequest, PORTION_PROTOCOL_VERSION, PortionQueue, PortionQueueServer, type PortionRequest, PortionRequestError } from "../../src/cluster/portion-queue.js";
import { PS_HEADER, PS_PROTOCOL_VERSION, readMeta, readReplyMeta, shardSubjects } from "../../src/cluster/ps-protocol.js";
import { ParameterShard } from "../../src/cluster/ps-shard.js";
import { closeAll, connectAll, withServer } from "./fixtures/peers.js";
import { Fuzz as SeededFuzz } from "../support/fuzz.js";

/** Cases per decoder. */
const CASES = 10_000;
const TIMEOUT = { timeout: 60_000 };
const SUBJECT = "downpour.fuzz.peer.x";
const JOB = "fuzz";
const SPEC = "spec-hash-0123";

/** The shared seeded source, and peer names of every kind. */
class Fuzz extends SeededFuzz {
  name(): string {
    return this.pick(["peer-0", "w1", "shard 3", "x".repeat(1 + this.int(128)), "ü名"]);
  }
}

/** Declared sizes that must never be allocated. */
const HUGE = [2 ** 31, 2 ** 32, 2 ** 32 - 1, 1e12, 2 ** 53, 2 ** 53 + 2, 4e12];

/** A value of every wrong type (and out-of-range numbers) to put in place of a field. */
function wrongValue(fuzz: Fuzz): unknown {
  const nested: unknown = fuzz.int(5) === 0 ? { a: { b: { c: [1, { d: null }] } } } : [[[[[]]]]];
  return fuzz.pick<unknown>([
    "",
    "x",
    "1",
    "x".repeat(5000),
    "a\u0000b",
    -1,
    -0.5,
    0.5,
    -(2 ** 31),
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    ...HUGE,
    -1e12,
    {},
    { v: 1 },
    [],
    [1, 2, 3],
    ["peer-0", 7],
    nested,
    null,
    true,
    false,
    new Uint8Array(3),
    new Date(0),
  ]);
}

/** What happened to one input: decoded to a value, or refused with an error of an expected class. */
type Outcome<T> = { value: T } | { error: Error };

/** Runs `decode`; an error of one of `expected` is the refusal, any other error fails naming the case. */
function outcome<T>(what: () => string, decode: () => T, expected: readonly (abstract new (...args: never[]) => Error)[]): Outcome<T> {
  try {
    return { value: decode() };
  } catch (error) {
    if (expected.some((Class) => error instanceof Class)) return { error: error as Error };
    const shown = error instanceof Error ? `${error.constructor.name}: ${error.message}\n${error.stack}` : String(error);
    assert.fail(`${what()}: expected a value or ${expected.map((c) => c.name).join("/")}, got ${shown}`);
  }
}

const hex = (bytes: Uint8Array, max = 64) => Buffer.from(bytes.subarray(0, max)).toString("hex") + (bytes.byteLength > max ? `...(${bytes.byteLength} bytes)` : "");

/** msgpack headers that declare a huge string, binary, array, map or extension of `n` items/bytes (u32). */
function hugeMsgpackHeader(fuzz: Fuzz): Uint8Array {
  const n = fuzz.pick([0xffffffff, 0x80000000, 0x7fffffff, 1e9, 65536 + fuzz.int(2 ** 31)]);
  const marker = fuzz.pick([0xdb, 0xc6, 0xdd, 0xdf, 0xc9]);
  const out = new Uint8Array(5 + (marker === 0xc9 ? 1 : 0));
  out[0] = marker;
  new DataView(out.buffer).setUint32(1, n >>> 0);
  if (marker === 0xc9) out[5] = fuzz.int(256);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** A cut of `bytes` at a position of each class: empty, one byte, the middle, one short, random. */
function truncated(fuzz: Fuzz, bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength;
  return bytes.subarray(0, fuzz.pick([0, 1, n >> 1, Math.max(0, n - 1), fuzz.int(n + 1)]));
}

/** `bytes` with 1 to 4 random bits flipped. */
function flipped(fuzz: Fuzz, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.byteLength === 0) return out;
  for (let i = 1 + fuzz.int(4); i > 0; i--) out[fuzz.int(out.byteLength)]! ^= 1 << fuzz.int(8);
  return out;
}

/** The byte-level mutations every binary decoder gets; `valid` is a well-formed input. */
function mutateBytes(fuzz: Fuzz, valid: Uint8Array, kind = fuzz.int(7)): Uint8Array {
  switch (kind) {
    case 0:
      return fuzz.bytes(fuzz.pick([0, 1, 2, 5, 16, 40, 41, 100, fuzz.int(600)]));
    case 1:
      return truncated(fuzz, valid);
    case 2:
      return flipped(fuzz, valid);
    case 3:
      return concat(valid, fuzz.bytes(1 + fuzz.int(32)));
    case 4:
      return concat(truncated(fuzz, valid), hugeMsgpackHeader(fuzz), fuzz.bytes(fuzz.int(8)));
    case 5: {
      const out = valid.slice();
      const piece = fuzz.bytes(Math.min(out.byteLength, 1 + fuzz.int(8)));
      out.set(piece, fuzz.int(out.byteLength - piece.byteLength + 1));
      return out;
    }
    default:
      return concat(valid.subarray(0, fuzz.int(valid.byteLength + 1)), valid);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Control messages

/** A random valid control message of a random type. */
function controlMessage(fuzz: Fuzz): ControlMessage {
  const peers = 1 + fuzz.int(4);
  const envelope = { v: PROTOCOL_VERSION, from: fuzz.name(), index: fuzz.int(peers + 1) - 1, spec: fuzz.pick(["", SPEC, "f".repeat(256)]) };
  const uid = () => fuzz.pick(["abc", "Z9", "q".repeat(64)]) + fuzz.int(10);
  const step = fuzz.pick([0, 1, fuzz.int(1000), 0xffffffff]);
  switch (fuzz.int(6)) {
    case 0:
      return { ...envelope, type: "hello", uid: uid(), peers };
    case 1:
      return {
        ...envelope,
        type: "ready",
        uid: uid(),
        peers,
        running: fuzz.chance(0.5),
        roster: Array.from({ length: peers }, (_, i) => `peer-${i}`),
        uids: Array.from({ length: peers }, uid),
      };
    case 2:
      return { ...envelope, type: "marker", step, count: fuzz.int(100), frames: fuzz.int(100) };
    case 3:
      return { ...envelope, type: "heartbeat", step };
    case 4:
      return {
        ...envelope,
        type: "abort",
        step,
        kind: fuzz.pick(["error", "lost", "timeout"] as const),
        reason: fuzz.pick(["", "boom", "r".repeat(4096)]),
        lost: fuzz.pick(["", "peer-1"]),
        loss: fuzz.pick(["", "heartbeat", "aborted", "left"] as const),
        missing: fuzz.pick([[], ["peer-1", "peer-2"]]),
      };
    default:
      return { ...envelope, type: "done", steps: step };
  }
}

/** A control message as a plain map with one field replaced by a wrong value, removed, or added. */
function confusedControl(fuzz: Fuzz): Record<string, unknown> {
  const map: Record<string, unknown> = { ...controlMessage(fuzz) };
  const fields = Object.keys(map);
  const field = fuzz.pick(fields);
  const kind = fuzz.int(4);
  if (kind === 0) delete map[field];
  else if (kind === 1) Object.defineProperty(map, fuzz.pick(["extra", "__proto__", "constructor", "toString"]), { value: wrongValue(fuzz), enumerable: true, writable: true, configurable: true });
  else if (kind === 2 && Array.isArray(map[field])) (map[field] as unknown[]).push(wrongValue(fuzz));
  else map[field] = wrongValue(fuzz);
  return map;
}

/** Checks one control-message input: refused with MessageError, or a message that re-encodes to itself. */
function checkControlInput(bytes: Uint8Array, what: () => string): boolean {
  const result = outcome(what, () => decodeControl(bytes, SUBJECT, JOB), [MessageError]);
  if ("error" in result) {
    assert.equal((result.error as MessageError).subject, SUBJECT, what());
    return false;
  }
  const again = outcome(what, () => decodeControl(encodeControl(result.value), SUBJECT, JOB), []);
  assert.deepEqual("value" in again ? again.value : undefined, result.value, what());
  return true;
}

describe("control message decoder fuzz (decodeControl)", () => {
  test(`${CASES} valid, truncated, flipped, oversized and type-confused control messages`, TIMEOUT, () => {
    const fuzz = new Fuzz(1001);
    let decoded = 0;
    for (let i = 0; i < CASES; i++) {
      const valid = packValue(controlMessage(fuzz));
      const kind = fuzz.int(10);
      let bytes: Uint8Array;
      if (kind < 7) bytes = kind === 0 ? valid : mutateBytes(fuzz, valid, kind - 1);
      else if (kind === 7) bytes = packValue(confusedControl(fuzz));
      else if (kind === 8) bytes = packValue(fuzz.pick<unknown>([null, 1, "hello", [1, 2], [controlMessage(fuzz)], new Uint8Array(9), wrongValue(fuzz)]));
      else bytes = concat(Uint8Array.of(0x8f), valid.subarray(1)); // a map header declaring 15 entries
      if (checkControlInput(bytes, () => `control case ${i} (kind ${kind}): ${hex(bytes)}`)) decoded++;
      if (kind === 0) assert.ok(decoded > 0, `control case ${i}: a valid message was refused`);
    }
    assert.ok(decoded >= CASES / 20, `only ${decoded} inputs decoded: the valid ones must`);
  });

  test("huge declared strings, arrays, maps and binaries allocate nothing", TIMEOUT, () => {
    const fuzz = new Fuzz(1002);
    assertBoundedMemory("control messages", () => {
      for (let i = 0; i < 2000; i++) {
        const valid = packValue(controlMessage(fuzz));
        const bytes = concat(valid.subarray(0, fuzz.int(valid.byteLength)), hugeMsgpackHeader(fuzz), fuzz.bytes(fuzz.int(16)));
        assert.equal(checkControlInput(bytes, () => `huge control case ${i}: ${hex(bytes)}`), false);
      }
    });
  });
});

/** Runs `batch` and asserts heap and array-buffer memory grew by less than `limit` bytes (default 64 MiB). */
function assertBoundedMemory(what: string, batch: () => void, limit = 64 * 2 ** 20): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  batch();
  gc?.();
  const after = process.memoryUsage();
  const grew = Math.max(after.arrayBuffers - before.arrayBuffers, after.heapUsed - before.heapUsed);
  assert.ok(grew < limit, `${what}: memory grew by ${grew} bytes (limit ${limit}): an oversized claim was allocated`);
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor frames

const KINDS: readonly PayloadKind[] = ["bytes", "f32", "value"];

/** The frames of a random valid message (payload 0 to 300 bytes, chunks of 4 to 64 bytes). */
function validFrames(fuzz: Fuzz): { frames: Uint8Array[]; payload: Uint8Array; kind: PayloadKind } {
  const kind = fuzz.pick(KINDS);
  const payload = kind === "f32" ? float32Bytes(Float32Array.from({ length: fuzz.int(75) }, () => fuzz.int(1000) - 500)) : fuzz.bytes(fuzz.int(300));
  const header = { kind, sender: fuzz.int(4), specTag: specTag(SPEC), step: fuzz.int(5), seq: fuzz.int(3) };
  return { frames: encodeFrames(payload, header, 4 * (1 + fuzz.int(16))), payload, kind };
}

/** A frame with one u32 header field replaced (offsets 4..32), its CRC-32 recomputed or not. */
function rewrittenFrame(fuzz: Fuzz, frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  const view = new DataView(out.buffer);
  const offset = fuzz.pick([4, 8, 12, 16, 20, 24, 28, 32]);
  view.setUint32(offset, fuzz.pick([0, 1, 3, 0x7fffffff, 0x80000000, 0xffffffff, fuzz.int(2 ** 32), view.getUint32(offset, true) + 1]) >>> 0, true);
  if (fuzz.chance(0.3)) out[fuzz.pick([1, 2, 3])] = fuzz.int(256);
  return out;
}

/**
 * A frame that is consistent in itself (right CRC, right geometry) but claims a huge message: total up to 4 GiB - 1
 * bytes (a 10^9-float tensor; 10^12 elements cannot be said in a u32), carried by one small chunk.
 */
function oversizedClaim(fuzz: Fuzz): Uint8Array {
  const chunkBytes = 4 * (1 + fuzz.int(64));
  const total = fuzz.pick([0xfffffffc, 0x80000000, 2 ** 31 + 4 * fuzz.int(2 ** 28), 4 * (2 ** 20 + fuzz.int(2 ** 29))]);
  const count = Math.ceil(total / chunkBytes);
  const index = fuzz.chance(0.5) ? 0 : count - 1;
  const last = total - (count - 1) * chunkBytes;
  const payload = fuzz.bytes(index < count - 1 ? chunkBytes : last);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  const view = new DataView(out.buffer);
  out.set([0xc1, 1, fuzz.pick([1, 2, 3]), 0]);
  const fields = [fuzz.int(4), specTag(SPEC), fuzz.int(5), fuzz.int(1000), index, count, total, chunkBytes, chunkChecksum(payload)];
  for (const [i, value] of fields.entries()) view.setUint32(4 + 4 * i, value >>> 0, true);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Feeds a decoded frame to `reassembler`; a whole message must be exactly `total` bytes (f32: whole floats). */
function feed(reassembler: Reassembler, frame: Frame, what: () => string): void {
  const result = outcome(what, () => reassembler.add(frame, SUBJECT, `#${frame.sender}`), [MessageError]);
  if ("value" in result && result.value !== undefined) {
    assert.equal(result.value.payload.byteLength, frame.total, what());
    if (frame.kind === "f32") assert.equal(frame.total % 4, 0, what());
  }
}

/** The declared message limit of the fuzzed receivers: 1 MiB. */
const MAX_MESSAGE = 2 ** 20;

describe("tensor frame decoder fuzz (decodeFrame, Reassembler)", () => {
  test(`${CASES} valid, truncated, flipped, rewritten and random frames`, TIMEOUT, () => {
    const fuzz = new Fuzz(2001);
    let reassembler = new Reassembler(MAX_MESSAGE, JOB);
    let whole = 0;
    for (let i = 0; i < CASES; i++) {
      if (i % 100 === 0) reassembler = new Reassembler(MAX_MESSAGE, JOB);
      const { frames, payload } = validFrames(fuzz);
      const kind = fuzz.int(10);
      const what = (bytes: Uint8Array) => () => `frame case ${i} (kind ${kind}): ${hex(bytes)}`;
      if (kind === 0) {
        // every chunk, in a random order, some twice (a repeated chunk of a multi-chunk message is refused; a
        // single-chunk message is whole each time): the message comes back whole and equal, once
        const order = frames.map((_, j) => j).sort(() => fuzz.int(3) - 1);
        const fresh = new Reassembler(MAX_MESSAGE, JOB);
        let got: Uint8Array | undefined;
        for (const j of [...order, ...(frames.length > 1 && fuzz.chance(0.3) ? [order[0]!] : [])]) {
          const frame = decodeFrame(frames[j]!, SUBJECT, undefined, JOB);
          const result = outcome(what(frames[j]!), () => fresh.add(frame, SUBJECT, "#0"), [MessageError]);
          if ("value" in result && result.value) {
            assert.equal(got, undefined, `frame case ${i}: a message came back twice`);
            got = result.value.payload;
          }
        }
        assert.deepEqual(got, payload, `frame case ${i}: reassembled payload`);
        whole++;
        continue;
      }
      const base = fuzz.pick(frames);
      let bytes: Uint8Array;
      if (kind < 6) bytes = mutateBytes(fuzz, base, kind - 1);
      else if (kind < 8) bytes = rewrittenFrame(fuzz, base);
      else if (kind === 8) bytes = oversizedClaim(fuzz);
      else bytes = concat(Uint8Array.of(0xc1, 1, fuzz.int(4), 0), fuzz.bytes(fuzz.int(80)));
      const result = outcome(what(bytes), () => decodeFrame(bytes, SUBJECT, ["peer-0"], JOB), [MessageError]);
      if ("value" in result) {
        const f = result.value;
        assert.ok(f.index < f.count && f.payload.byteLength <= f.chunkBytes, what(bytes)());
        feed(reassembler, f, what(bytes));
      }
    }
    assert.ok(whole > CASES / 20, `${whole} whole messages`);
  });

  test("frames claiming a 2 GiB to 4 GiB message are refused by the receiver's limit before allocating", TIMEOUT, () => {
    const fuzz = new Fuzz(2002);
    const reassembler = new Reassembler(MAX_MESSAGE, JOB);
    assertBoundedMemory("oversized frames", () => {
      for (let i = 0; i < 3000; i++) {
        const bytes = oversizedClaim(fuzz);
        const frame = decodeFrame(bytes, SUBJECT, undefined, JOB);
        assert.throws(() => reassembler.add(frame, SUBJECT, "#0"), (e: unknown) => e instanceof MessageError && e.field === "total", `claim case ${i}: ${hex(bytes)}`);
      }
    });
    assert.equal(reassembler.pending, 0);
  });

  test("first chunks of many messages within the message limit stop at the pending limit", TIMEOUT, () => {
    const fuzz = new Fuzz(2003);
    const limit = 8 * MAX_MESSAGE;
    const reassembler = new Reassembler(MAX_MESSAGE, JOB, undefined, limit);
    let refused = 0;
    assertBoundedMemory("pending messages", () => {
      for (let seq = 0; seq < 3000; seq++) {
        const total = 4 * (2 ** 16 + fuzz.int(2 ** 18 - 2 ** 16));
        const payload = fuzz.bytes(64);
        const frame: Frame = { kind: "f32", sender: 0, specTag: specTag(SPEC), step: 0, seq, index: 0, count: Math.ceil(total / 64), total, chunkBytes: 64, payload };
        const result = outcome(() => `pending case ${seq}`, () => reassembler.add(frame, SUBJECT, "#0"), [MessageError]);
        if ("error" in result) refused++;
        assert.ok(reassembler.pendingBytes <= limit, `pending case ${seq}: ${reassembler.pendingBytes} bytes held`);
      }
    }, 4 * limit);
    assert.ok(refused > 2900, `${refused} refused`);
    const dropped = reassembler.expire(() => true, SUBJECT).length;
    assert.ok(dropped >= 8 && dropped <= 32, `${dropped} incomplete messages held`);
    assert.equal(reassembler.pendingBytes, 0, "expired messages give their bytes back");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Parameter-server metadata

/** A valid request's metadata (push, pull or clock) for shard 0 of JOB, keys [0, 64). */
function requestMeta(fuzz: Fuzz, op: "push" | "pull" | "clock"): Record<string, unknown> {
  const begin = fuzz.int(64);
  const meta: Record<string, unknown> = { v: PS_PROTOCOL_VERSION, job: JOB, spec: SPEC, from: fuzz.name(), worker: fuzz.int(4), begin, end: begin + fuzz.int(65 - begin), id: fuzz.int(2 ** 32) };
  if (op === "push") Object.assign(meta, { seq: 1 + fuzz.int(1000), epoch: fuzz.int(10) });
  if (op === "pull" && fuzz.chance(0.3)) Object.assign(meta, { minClock: 0, workers: 0, waitMs: 10 });
  if (op === "clock") meta.idle = [fuzz.int(4)];
  return meta;
}

/** A metadata JSON text, valid or spoiled: truncated, random, type-confused, huge, deeply nested, repeated keys. */
function metaText(fuzz: Fuzz, op: "push" | "pull" | "clock"): string {
  const meta = requestMeta(fuzz, op);
  const json = JSON.stringify(meta);
  switch (fuzz.int(8)) {
    case 0:
      return json;
    case 1:
      return json.slice(0, fuzz.int(json.length));
    case 2: {
      const field = fuzz.pick(Object.keys(meta));
      if (fuzz.chance(0.2)) delete meta[field];
      else meta[field] = wrongValue(fuzz);
      return JSON.stringify(meta);
    }
    case 3:
      return `${json.slice(0, -1)},${JSON.stringify(fuzz.pick(Object.keys(meta)))}:${JSON.stringify(wrongValue(fuzz)) ?? "null"}}`;
    case 4:
      return fuzz.pick(["null", "1", '"x"', "[]", "[{}]", "true", "{", "}", " ", "\u0000", "1e999", '{"v":1e999}']);
    case 5:
      return "[".repeat(1 + fuzz.int(20_000));
    case 6:
      return Buffer.from(fuzz.bytes(fuzz.int(200))).toString("latin1");
    default:
      return `{"v":1,"begin":${fuzz.pick(HUGE)},"end":${fuzz.pick(HUGE)},"idle":[${Array(1 + fuzz.int(50)).fill(fuzz.pick(HUGE)).join(",")}]}`;
  }
}

/** A reply's metadata JSON text (an acknowledgement, a pull reply or a refusal), valid or spoiled as metaText does. */
function replyText(fuzz: Fuzz): string {
  const reply: Record<string, unknown> = { v: PS_PROTOCOL_VERSION, shard: 0, id: fuzz.int(2 ** 32), version: fuzz.int(1000), begin: 0, end: fuzz.int(64) };
  if (fuzz.chance(0.3)) reply.deduped = fuzz.chance(0.5);
  if (fuzz.chance(0.2)) reply.clock = fuzz.int(10);
  if (fuzz.chance(0.3)) reply.error = { message: "refused", field: "range", sender: fuzz.name() };
  const kind = fuzz.int(5);
  if (kind === 0) return JSON.stringify(reply);
  if (kind === 1) return JSON.stringify(reply).slice(0, fuzz.int(JSON.stringify(reply).length));
  if (kind === 2) {
    const error = reply.error as Record<string, unknown> | undefined;
    if (error && fuzz.chance(0.5)) error[fuzz.pick(["message", "field", "sender"])] = wrongValue(fuzz);
    else reply[fuzz.pick([...Object.keys(reply), "error", "deduped", "clock"])] = wrongValue(fuzz);
    return JSON.stringify(reply);
  }
  if (kind === 3) {
    delete reply[fuzz.pick(Object.keys(reply))];
    return JSON.stringify(reply);
  }
  return fuzz.pick(['{"error":null}', '{"error":"x"}', '{"error":[]}', '{"error":{}}', "{}", "[]", "null", Buffer.from(fuzz.bytes(fuzz.int(40))).toString("latin1")]);
}

/** Headers holding `text` as the metadata value (a header line cannot hold CR or LF: those are cut out). */
function rawHeaders(text: string): MsgHdrs {
  const h = headers();
  h.set(PS_HEADER, text.replace(/[\r\n]/g, ""));
  return h;
}

describe("parameter-server metadata fuzz", () => {
  test(`${CASES} metadata headers: readMeta parses an object or refuses with MessageError`, TIMEOUT, () => {
    const fuzz = new Fuzz(3001);
    let objects = 0;
    for (let i = 0; i < CASES; i++) {
      const text = metaText(fuzz, fuzz.pick(["push", "pull", "clock"] as const));
      const hdrs = fuzz.int(50) === 0 ? undefined : rawHeaders(text);
      const what = () => `meta case ${i}: ${JSON.stringify(text.slice(0, 200))}`;
      const result = outcome(what, () => readMeta(hdrs, SUBJECT, JOB), [MessageError]);
      if ("value" in result) {
        assert.ok(typeof result.value === "object" && result.value !== null && !Array.isArray(result.value), what());
        objects++;
      } else assert.equal((result.error as MessageError).field, "header", what());
    }
    assert.ok(objects > CASES / 10, `${objects} objects parsed`);
  });

  test(`${CASES} reply headers: readReplyMeta gives a typed reply or refuses with MessageError`, TIMEOUT, () => {
    const fuzz = new Fuzz(3003);
    let replies = 0;
    for (let i = 0; i < CASES; i++) {
      const text = replyText(fuzz);
      const what = () => `reply case ${i}: ${JSON.stringify(text.slice(0, 200))}`;
      const result = outcome(what, () => readReplyMeta(rawHeaders(text), SUBJECT, JOB, "shard-0"), [MessageError]);
      if ("error" in result) continue;
      replies++;
      const r = result.value;
      if (r.error !== undefined) assert.ok(typeof r.error.message === "string" && typeof r.error.field === "string", what());
      else assert.ok(r.v === PS_PROTOCOL_VERSION && Number.isSafeInteger(r.version) && r.version >= 0 && Number.isSafeInteger(r.begin) && Number.isSafeInteger(r.end), what());
    }
    assert.ok(replies > CASES / 10, `${replies} replies`);
  });

  test(`${CASES} spoiled requests to a real shard: each is answered, refusals name a field, none is "internal"`, TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 2);
      const errors: MessageError[] = [];
      const shard = await ParameterShard.start({
        job: JOB, shard: 0, shards: 1, connection: ncs[0]!, init: new Float32Array(64), specHash: SPEC, align: 1,
        train: { optimizer: "sgd", learningRate: 0.001, momentum: 0, l2: 0 }, partialTimeoutMs: 1_000, onError: (e) => errors.push(e as MessageError),
      });
      try {
        const applied = await fuzzShard(ncs[1]!, new Fuzz(3002));
        assert.deepEqual(errors.filter((e) => e.field === "internal").map((e) => `${e.message}\n${(e.cause as Error)?.stack}`), []);
        assert.ok(errors.every((e) => e instanceof MessageError), "every refusal is a MessageError");
        assert.equal(shard.version, applied, "the shard applied exactly the pushes it acknowledged as applied");
        const fields = [...new Set(errors.map((e) => e.field))].sort();
        assert.ok(applied >= 100 && fields.length >= 8, `the cases reach every check: ${applied} applied, refused fields ${fields.join(", ")}`);
      } finally {
        await shard.close();
        await closeAll(ncs);
      }
    });
  });
});

/** The frames of a push body for `meta` (when it gives a usable range), in one or several chunks; else random bytes. */
function pushBody(fuzz: Fuzz, meta: Record<string, unknown> | undefined): Uint8Array[] {
  const keys = Number.isInteger(meta?.end) && Number.isInteger(meta?.begin) ? Math.max(0, Math.min(64, (meta!.end as number) - (meta!.begin as number))) : fuzz.int(64);
  const header = { kind: "f32" as const, sender: Number(meta?.worker) >>> 0, specTag: specTag(SPEC), step: Number(meta?.id) >>> 0, seq: Number(meta?.seq) >>> 0 };
  const frames = encodeFrames(float32Bytes(new Float32Array(keys).fill(1)), header, fuzz.chance(0.5) ? 4096 : 4 * (4 + fuzz.int(29)));
  // Chunks shuffled; one repeated, or one spoiled (never one left out: every case gets at least one reply).
  frames.sort(() => fuzz.int(3) - 1);
  if (fuzz.chance(0.15)) frames.push(fuzz.pick(frames));
  if (fuzz.chance(0.3)) {
    const at = fuzz.int(frames.length);
    frames[at] = fuzz.chance(0.4) ? oversizedClaim(fuzz) : mutateBytes(fuzz, frames[at]!, fuzz.int(7));
  }
  return frames;
}

/**
 * Sends CASES spoiled requests (64 in flight; a push in one or several frames) to shard 0 of JOB, each waiting for
 * its first reply; returns how many pushes were acknowledged as applied, counting every reply that came.
 */
async function fuzzShard(nc: NatsConnection, fuzz: Fuzz): Promise<number> {
  const subjects = shardSubjects(JOB, 0);
  const inbox = `_fuzz.${JOB}.replies`;
  const waiting = new Map<number, () => void>();
  const ops: string[] = [];
  const problems: string[] = [];
  let applied = 0;
  const sub = nc.subscribe(`${inbox}.>`, {
    callback: (error, msg) => {
      if (error) return;
      const i = Number(msg.subject.slice(inbox.length + 1));
      try {
        const answer = readReplyMeta(msg.headers, msg.subject, JOB, "shard 0");
        if (answer.error?.field === "internal") problems.push(`shard case ${i}: ${answer.error.message}`);
        else if (!answer.error && ops[i] === "push" && answer.deduped === false) applied++;
      } catch (error) {
        problems.push(`shard case ${i}: unreadable reply (${error})`);
      }
      waiting.get(i)?.();
    },
  });
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const op = fuzz.pick(["push", "push", "pull", "clock"] as const);
    ops[i] = op;
    const text = fuzz.chance(0.3) ? JSON.stringify(requestMeta(fuzz, op)) : metaText(fuzz, op);
    let meta: Record<string, unknown> | undefined;
    try {
      meta = JSON.parse(text) as Record<string, unknown>;
    } catch {}
    const frames = op === "push" && fuzz.chance(0.7) ? pushBody(fuzz, meta) : [fuzz.bytes(fuzz.int(64))];
    const what = `shard case ${i} (${op}): ${JSON.stringify(text.slice(0, 200))} body ${frames.map((f) => hex(f, 48)).join(" ")}`;
    const replied = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      waiting.set(i, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    for (const frame of frames) nc.publish(subjects[op], frame, { headers: rawHeaders(text), reply: `${inbox}.${i}` });
    if (!(await replied)) problems.push(`${what}: no reply`);
    waiting.delete(i);
  };
  const lane = async (): Promise<void> => {
    while (next < CASES && problems.length === 0) await one(next++);
  };
  await Promise.all(Array.from({ length: 64 }, lane));
  await nc.flush();
  await new Promise((resolve) => setTimeout(resolve, 200)); // the replies of pushes completed after a refused chunk
  sub.unsubscribe();
  assert.deepEqual(problems, []);
  return applied;
}

// ---------------------------------------------------------------------------------------------------------------
// Portion-queue requests

/** A valid portion request (lease, complete or stats) for JOB. */
function portionRequest(fuzz: Fuzz): Record<string, unknown> {
  const op = fuzz.pick(["lease", "lease", "complete", "stats"]);
  const request: Record<string, unknown> = { v: PORTION_PROTOCOL_VERSION, job: JOB, spec: SPEC, from: fuzz.name(), op, task: fuzz.int(3) };
  if (op !== "stats") request.epoch = fuzz.int(3);
  if (op === "complete") Object.assign(request, { unit: fuzz.int(6), rows: 1 + fuzz.int(10), loss: fuzz.int(100) / 7 });
  return request;
}

/** What the queue server does with a decoded request (portion-queue.ts answer): check it, then ask the queue. */
function answer(queue: PortionQueue, value: unknown): unknown {
  const request: PortionRequest = checkPortionRequest(value, SUBJECT, JOB, SPEC);
  if (request.op === "stats") return queue.counters();
  if (request.op === "lease") return queue.lease(request.task, request.epoch!);
  return queue.complete(request.task, request.epoch!, request.unit!, request.loss!, request.rows!);
}

describe("portion-queue request fuzz (checkPortionRequest, PortionQueue)", () => {
  test(`${CASES} valid, spoiled and type-confused requests: answered, or refused by field`, TIMEOUT, () => {
    const fuzz = new Fuzz(4001);
    const queue = new PortionQueue({ tasks: 3, rows: 50, unitRows: 10, leaseMs: 1e9 });
    let answered = 0;
    for (let i = 0; i < CASES; i++) {
      const request = portionRequest(fuzz);
      const kind = fuzz.int(6);
      if (kind === 1) request[fuzz.pick(Object.keys(request))] = wrongValue(fuzz);
      else if (kind === 2) delete request[fuzz.pick(Object.keys(request))];
      else if (kind === 3) request[fuzz.pick(["task", "epoch", "unit", "rows"])] = fuzz.pick(HUGE);
      let bytes = packValue(kind === 4 ? fuzz.pick<unknown>([null, [], 5, "lease", [request], wrongValue(fuzz)]) : request);
      if (kind === 5) bytes = mutateBytes(fuzz, bytes);
      const what = () => `portion case ${i} (kind ${kind}): ${hex(bytes)}`;
      const result = outcome(
        what,
        () => {
          let value: unknown;
          try {
            value = unpackValue(bytes);
          } catch (error) {
            throw new MessageError("not one msgpack value", { sender: undefined, field: "encoding", subject: SUBJECT }, JOB, { cause: error });
          }
          return answer(queue, value);
        },
        [MessageError, PortionRequestError],
      );
      if ("value" in result) answered++;
    }
    assert.ok(answered > CASES / 10, `${answered} answered`);
  });

  test(`${CASES} spoiled requests to a real portion queue: each is answered, none refused as "internal"`, TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 2);
      const errors: MessageError[] = [];
      const queue = await PortionQueueServer.start({ job: JOB, specHash: SPEC, connection: ncs[0]!, tasks: 3, rows: 50, unitRows: 10, leaseMs: 60_000, onError: (e) => errors.push(e as MessageError) });
      try {
        const fuzz = new Fuzz(4002);
        let next = 0;
        let answered = 0;
        const lane = async (): Promise<void> => {
          for (let i = next++; i < CASES; i = next++) {
            const request = portionRequest(fuzz);
            if (fuzz.chance(0.5)) request[fuzz.pick([...Object.keys(request), "unit", "rows", "loss"])] = fuzz.chance(0.5) ? wrongValue(fuzz) : fuzz.pick(HUGE);
            const bytes = fuzz.chance(0.2) ? mutateBytes(fuzz, packValue(request)) : packValue(request);
            const what = `queue case ${i}: ${hex(bytes)}`;
            const msg = await ncs[1]!.request(queue.subject, bytes, { timeout: 10_000 }).catch((e: unknown) => assert.fail(`${what}: no reply (${e})`));
            const reply = unpackValue(msg.data) as { v: number; error?: { field: string; message: string } };
            assert.equal(reply.v, PORTION_PROTOCOL_VERSION, what);
            if (reply.error) assert.notEqual(reply.error.field, "internal", `${what}: ${reply.error.message}`);
            else answered++;
          }
        };
        await Promise.all(Array.from({ length: 32 }, lane));
        assert.deepEqual(errors.filter((e) => e.field === "internal").map((e) => e.message), []);
        assert.equal(queue.refused, errors.length);
        assert.ok(answered > CASES / 20 && new Set(errors.map((e) => e.field)).size >= 6, `${answered} answered, refused fields ${[...new Set(errors.map((e) => e.field))].join(", ")}`);
      } finally {
        await queue.close();
        await closeAll(ncs);
      }
    });
  });
});
