// Subjects, control messages and tensor frames: job ids checked, every control field checked on decode (refused
// with MessageError naming the sender and the field), frames reassembled and checked (index, count, length, CRC-32),
// and a 4 MB tensor crossing a real server whose max_payload is 256 KB.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Packr } from "msgpackr";
import {
  type Assembled,
  bytesToFloat32,
  chunkBytesFor,
  chunkChecksum,
  decodeFrame,
  encodeFrames,
  FRAME_HEADER_BYTES,
  float32Bytes,
  isFrame,
  Reassembler,
  specTag,
} from "../../src/cluster/chunks.js";
import { type ControlMessage, decodeControl, encodeControl, PROTOCOL_VERSION } from "../../src/cluster/codec.js";
import { InvalidJobIdError, MessageError } from "../../src/cluster/errors.js";
import { checkJobId, jobSubjects } from "../../src/cluster/subjects.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { crc32 } from "../../src/model/file/crc32.js";
import { closeAll, connectAll, seededFloats, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 30_000 };
const SUBJECT = "downpour.t.peer.x";
const plain = new Packr({ useRecords: false, mapsAsObjects: true });

const marker = (fields: Partial<Record<string, unknown>> = {}): Record<string, unknown> => ({
  type: "marker", v: PROTOCOL_VERSION, from: "p1", index: 1, spec: "h", step: 3, count: 2, frames: 2, ...fields,
});

/** The MessageError `fn` throws (asserting it throws one). */
function refusal(fn: () => unknown): MessageError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MessageError, `expected a MessageError, got ${error}`);
    return error;
  }
  assert.fail("expected a MessageError, nothing was thrown");
}

describe("job ids and subjects", () => {
  test("every subject is under downpour.<job>.", () => {
    const s = jobSubjects("train-01_a");
    assert.equal(s.all, "downpour.train-01_a.>");
    for (const subject of [s.join, s.control, s.peer("abc")]) assert.ok(subject.startsWith("downpour.train-01_a."), subject);
  });

  test("ids with subject characters, spaces, nothing or too much are refused naming the id and the rule", () => {
    for (const bad of ["a.b", "a*", "a>", "a b", "", "x".repeat(65), "é", "a\tb", 7, undefined]) {
      assert.throws(
        () => checkJobId(bad),
        (error: unknown) => {
          assert.ok(error instanceof InvalidJobIdError && error instanceof InvalidArgumentError);
          assert.equal(error.jobId, bad);
          assert.match(error.message, /letters, digits, "-" or "_"/);
          if (typeof bad === "string" && bad.length < 60) assert.ok(error.message.includes(JSON.stringify(bad)), error.message);
          return true;
        },
      );
    }
    assert.equal(checkJobId("x".repeat(64)), "x".repeat(64));
  });
});

describe("control messages", () => {
  test("every type round-trips", () => {
    const base = { v: PROTOCOL_VERSION, from: "peer-a", index: 0, spec: "abc" };
    const messages: ControlMessage[] = [
      { ...base, index: -1, type: "hello", uid: "u1", peers: 2 },
      { ...base, type: "ready", uid: "u1", peers: 2, running: false, roster: ["peer-a", "peer-b"], uids: ["u1", "u2"] },
      { ...base, type: "marker", step: 7, count: 3, frames: 40 },
      { ...base, type: "heartbeat", step: 7 },
      { ...base, type: "abort", step: 7, kind: "lost", reason: "boom", lost: "peer-b", loss: "heartbeat", missing: [] },
      { ...base, type: "done", steps: 8 },
    ];
    for (const message of messages) assert.deepEqual(decodeControl(encodeControl(message), SUBJECT), message);
  });

  test("garbage, non-maps and trailing bytes are refused as encoding errors", () => {
    for (const bytes of [new Uint8Array([0xc1, 1, 2]), new Uint8Array(0), plain.pack([1, 2]), plain.pack("hi"), new Uint8Array([0x81, 0xa1]), Buffer.concat([plain.pack(marker()), new Uint8Array([0])])]) {
      const error = refusal(() => decodeControl(bytes, SUBJECT));
      assert.equal(error.field, "encoding");
      assert.equal(error.sender, undefined);
      assert.equal(error.subject, SUBJECT);
    }
  });

  test("each wrong field is named, with the sender", () => {
    const cases: [Record<string, unknown>, string][] = [
      [marker({ v: 2 }), "v"],
      [marker({ type: "gossip" }), "type"],
      [marker({ index: 1.5 }), "index"],
      [marker({ spec: 42 }), "spec"],
      [marker({ step: -1 }), "step"],
      [marker({ count: "2" }), "count"],
      [marker({ frames: undefined }), "frames"],
      [{ ...marker(), type: "ready", uid: "u", peers: 2, running: false, roster: ["a"], uids: ["u", "v"] }, "roster"],
      [{ ...marker(), type: "ready", uid: "u", peers: 2, running: false, roster: ["a", "a"], uids: ["u", "v"] }, "roster"],
      [{ ...marker(), type: "hello", uid: "not a token!", peers: 2 }, "uid"],
      [{ ...marker(), type: "abort", kind: "error", reason: "x", lost: "", loss: "maybe", missing: [] }, "loss"],
    ];
    for (const [message, field] of cases) {
      const error = refusal(() => decodeControl(plain.pack(message), SUBJECT));
      assert.equal(error.field, field, error.message);
      assert.equal(error.sender, "p1");
      assert.ok(error.message.includes('"p1"') && error.message.includes(field), error.message);
    }
    const anonymous = refusal(() => decodeControl(plain.pack(marker({ from: "" })), SUBJECT));
    assert.equal(anonymous.field, "from");
    assert.equal(anonymous.sender, undefined);
  });
});

const header = { kind: "f32" as const, sender: 1, specTag: specTag("spec"), step: 4, seq: 2 };

/** Frames of `values` decoded back and fed to a reassembler; returns the message, or undefined if incomplete. */
function reassemble(frames: Uint8Array[], reassembler = new Reassembler()): Assembled | undefined {
  let whole: Assembled | undefined;
  for (const frame of frames) whole = reassembler.add(decodeFrame(frame, SUBJECT), SUBJECT, "p1") ?? whole;
  return whole;
}

describe("frames", () => {
  test("a tensor splits into chunks and reassembles bit for bit, in any order", () => {
    const values = seededFloats(10_001, 1);
    const frames = encodeFrames(float32Bytes(values), header, 4096);
    assert.equal(frames.length, Math.ceil(40_004 / 4096));
    assert.ok(frames.every((f) => isFrame(f) && f.byteLength <= 4096 + FRAME_HEADER_BYTES));
    const whole = reassemble([...frames].reverse())!;
    assert.deepEqual({ ...whole, payload: undefined }, { ...header, payload: undefined });
    assert.deepEqual(bytesToFloat32(whole.payload), values);
    assert.equal(reassemble(encodeFrames(new Uint8Array(0), { ...header, kind: "bytes" }, 64))!.payload.byteLength, 0);
  });

  test("the sender's buffer can change as soon as encodeFrames returns", () => {
    const values = new Float32Array([1, 2, 3]);
    const frames = encodeFrames(float32Bytes(values), header, 8);
    values.fill(0);
    assert.deepEqual(bytesToFloat32(reassemble(frames)!.payload), new Float32Array([1, 2, 3]));
  });

  test("a corrupted chunk is refused (crc32) and the rest of the message stays", () => {
    const frames = encodeFrames(float32Bytes(seededFloats(1000, 2)), header, 1024);
    const damaged = frames[1]!.slice();
    damaged[FRAME_HEADER_BYTES + 10]! ^= 0x40;
    const error = refusal(() => decodeFrame(damaged, SUBJECT, ["p0", "p1"]));
    assert.deepEqual([error.field, error.sender], ["crc32", "p1"]);
    const reassembler = new Reassembler();
    assert.equal(reassemble([frames[0]!, frames[2]!, frames[3]!], reassembler), undefined);
    assert.deepEqual(bytesToFloat32(reassembler.add(decodeFrame(frames[1]!, SUBJECT), SUBJECT, "p1")!.payload), seededFloats(1000, 2));
  });

  test("wrong lengths and inconsistent geometry are refused, naming the field", () => {
    const frames = encodeFrames(float32Bytes(seededFloats(100, 3)), header, 128);
    const cut = refusal(() => decodeFrame(frames[0]!.subarray(0, frames[0]!.byteLength - 4), SUBJECT));
    assert.equal(cut.field, "length");
    assert.equal(refusal(() => decodeFrame(frames[0]!.subarray(0, 12), SUBJECT)).field, "length");
    const patched = (offset: number, value: number) => {
      const copy = frames[0]!.slice();
      new DataView(copy.buffer).setUint32(offset, value, true);
      return copy;
    };
    assert.equal(refusal(() => decodeFrame(patched(24, 9), SUBJECT)).field, "count");
    assert.equal(refusal(() => decodeFrame(patched(20, 4), SUBJECT)).field, "index");
    assert.equal(refusal(() => decodeFrame(patched(28, 600), SUBJECT)).field, "count");
    assert.equal(refusal(() => decodeFrame(patched(28, 402), SUBJECT)).field, "total", "402 bytes are not whole floats");
    const twice = new Reassembler();
    twice.add(decodeFrame(frames[0]!, SUBJECT), SUBJECT, "p1");
    assert.equal(refusal(() => twice.add(decodeFrame(frames[0]!, SUBJECT), SUBJECT, "p1")).field, "index");
    const small = new Reassembler(100);
    assert.equal(refusal(() => small.add(decodeFrame(frames[0]!, SUBJECT), SUBJECT, "p1")).field, "total");
  });

  test("a message missing a chunk is refused when expired, naming the sender and the chunk", () => {
    const frames = encodeFrames(float32Bytes(seededFloats(1000, 4)), header, 512);
    const reassembler = new Reassembler();
    assert.equal(reassemble(frames.filter((_, i) => i !== 3), reassembler), undefined);
    assert.equal(reassembler.pending, 1);
    assert.deepEqual(reassembler.expire((_s, step) => step < 4, SUBJECT), []);
    const [error, ...rest] = reassembler.expire((sender, step) => sender === 1 && step === 4, SUBJECT, ["p0", "p1"]);
    assert.equal(rest.length, 0);
    assert.deepEqual([error!.field, error!.sender], ["chunks", "p1"]);
    assert.match(error!.message, /missing 1 of its 8 chunks \(3\)/);
    assert.equal(reassembler.pending, 0);
  });

  test("the chunk checksum is the CRC-32 of the model files (native or not)", () => {
    const bytes = float32Bytes(seededFloats(25_000, 9));
    for (const [start, end] of [[0, 0], [0, 1], [3, 1001], [0, bytes.byteLength]]) {
      assert.equal(chunkChecksum(bytes.subarray(start, end)), crc32(bytes.subarray(start, end)));
    }
    assert.equal(chunkChecksum(new TextEncoder().encode("123456789")), 0xcbf43926);
  });

  test("chunk sizes leave header room under max_payload and keep whole floats", () => {
    assert.equal(chunkBytesFor(262_144), 262_080);
    assert.equal(chunkBytesFor(262_144, 1001), 1000);
    assert.throws(() => chunkBytesFor(60), InvalidArgumentError);
  });
});

test("a 4 MB tensor crosses a server with max_payload 256 KB intact", TIMEOUT, async () => {
  await withServer(
    async (server) => {
      const [a, b] = await connectAll(server.url, 2);
      try {
        const maxPayload = a!.info!.max_payload;
        assert.equal(maxPayload, 256 * 1024);
        const values = seededFloats(1024 * 1024, 5);
        const frames = encodeFrames(float32Bytes(values), header, chunkBytesFor(maxPayload));
        assert.equal(frames.length, 17);
        const reassembler = new Reassembler();
        const received = new Promise<Float32Array>((resolve, reject) => {
          b!.subscribe("t.tensor", {
            callback: (_error, msg) => {
              try {
                const whole = reassembler.add(decodeFrame(msg.data, msg.subject), msg.subject, "a");
                if (whole) resolve(bytesToFloat32(whole.payload));
              } catch (error) {
                reject(error);
              }
            },
          });
        });
        await b!.flush();
        for (const frame of frames) a!.publish("t.tensor", frame);
        assert.throws(() => a!.publish("t.tensor", new Uint8Array(maxPayload + 1)), "a bigger payload is refused by the client");
        const got = await received;
        assert.equal(got.length, values.length);
        assert.ok(Buffer.from(got.buffer).equals(Buffer.from(values.buffer)), "bit-identical");
      } finally {
        await closeAll([a!, b!]);
      }
    },
    { maxPayload: 256 * 1024 },
  );
});
