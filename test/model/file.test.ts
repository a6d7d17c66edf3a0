// Model file encode/decode: byte layout, bit-exact round trips, and validation of the contents being encoded.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { DownpourError } from "../../src/errors.js";
import {
  MODEL_FILE_VERSION,
  ModelFileError,
  decodeModel,
  encodeModel,
  type ModelFileContents,
} from "../../src/model/file/index.js";
import { bitsOf, headerOf, layoutOf, sampleBytes, sampleContents } from "./fixtures.js";

function assertSameContents(actual: ModelFileContents, expected: ModelFileContents): void {
  assert.equal(actual.kind, expected.kind);
  assert.deepEqual(actual.spec, expected.spec);
  assert.deepEqual(actual.meta, expected.meta);
  assert.equal(actual.tensors.length, expected.tensors.length);
  actual.tensors.forEach((t, i) => {
    const e = expected.tensors[i]!;
    assert.deepEqual({ name: t.name, shape: t.shape, group: t.group }, { name: e.name, shape: e.shape, group: e.group });
    assert.ok(t.data instanceof Float32Array, `${t.name} is a Float32Array`);
    assert.deepEqual(bitsOf(t.data), bitsOf(e.data), `${t.name} is bit-identical`);
  });
}

describe("model file layout", () => {
  test("preamble, JSON header, aligned data and trailing CRC are where the format says", () => {
    const bytes = sampleBytes();
    const view = new DataView(bytes.buffer);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "DPOURNN\0");
    assert.equal(view.getUint32(8, true), MODEL_FILE_VERSION);
    const { headerEnd, dataStart, checksumOffset } = layoutOf(bytes);
    assert.equal(dataStart % 4, 0);
    assert.ok(bytes.subarray(headerEnd, dataStart).every((b) => b === 0), "padding is zero");
    assert.deepEqual(headerOf(bytes).tensors, sampleContents().tensors.map(({ name, shape, group }) => ({ name, shape, group })));
    assert.equal(checksumOffset - dataStart, (15 + 7 + 15 + 1) * 4);
    const first = sampleContents().tensors[0]!.data;
    assert.equal(view.getFloat32(dataStart, true), first[0]);
    assert.equal(view.getFloat32(dataStart + 4, true), first[1]);
    const gz = gzipSync(bytes.subarray(0, checksumOffset));
    assert.equal(view.getUint32(checksumOffset, true), new DataView(gz.buffer, gz.byteOffset).getUint32(gz.length - 8, true));
  });

  test("encoding is deterministic", () => {
    assert.deepEqual(sampleBytes(), sampleBytes());
  });
});

describe("model file round trip", () => {
  test("tensors are bit-identical (NaN payloads, -0, Infinity); kind, spec and meta are preserved", () => {
    const contents = sampleContents();
    assertSameContents(decodeModel(encodeModel(contents)), contents);
  });

  test("a model without tensors, with null spec and empty meta", () => {
    const contents: ModelFileContents = { kind: "Empty", spec: null, meta: {}, tensors: [] };
    assertSameContents(decodeModel(encodeModel(contents)), contents);
  });

  test("decodes from an unaligned view and copies tensors out of the input", () => {
    const bytes = sampleBytes();
    const backing = new Uint8Array(bytes.length + 3);
    backing.set(bytes, 1);
    const view = backing.subarray(1, 1 + bytes.length);
    const decoded = decodeModel(view);
    assertSameContents(decoded, sampleContents());
    backing.fill(0);
    assertSameContents(decoded, sampleContents());
    for (const t of decoded.tensors) {
      assert.equal(t.data.byteOffset, 0);
      assert.equal(t.data.buffer.byteLength, t.data.byteLength, `${t.name} owns its buffer`);
    }
  });

  test("encoding reads subarray views correctly and leaves the contents untouched", () => {
    const contents = sampleContents();
    const big = new Float32Array(20).map((_, i) => i);
    contents.tensors[0]!.data = big.subarray(3, 18);
    const before = structuredClone(contents);
    const decoded = decodeModel(encodeModel(contents));
    assert.deepEqual(Array.from(decoded.tensors[0]!.data), Array.from(big.subarray(3, 18)));
    assert.deepEqual(contents, before);
  });
});

describe("encodeModel validation", () => {
  const cases: Array<[string, (c: ModelFileContents) => void, RegExp[]]> = [
    ["data shorter than the shape", (c) => (c.tensors[0]!.data = new Float32Array(14)), [/tensors\[0\]\.data has 14 values/, /shape \[3,5\] needs 15/]],
    ["data longer than the shape", (c) => (c.tensors[2]!.data = new Float32Array(1)), [/tensors\[2\]\.data has 1 values/, /needs 0/]],
    ["duplicate names", (c) => (c.tensors[3]!.name = "w1"), [/tensors\[3\]\.name repeats "w1" of tensors\[0\]/, /unique/]],
    ["negative dimension", (c) => (c.tensors[0]!.shape = [-3, -5]), [/tensors\[0\]\.shape must be an array of non-negative integers, found \[-3,-5\]/]],
    ["fractional dimension", (c) => (c.tensors[1]!.shape = [3.5, 2]), [/tensors\[1\]\.shape must be an array of non-negative integers/]],
    ["NaN dimension", (c) => (c.tensors[1]!.shape = [NaN]), [/tensors\[1\]\.shape must be/]],
    ["shape not an array", (c) => ((c.tensors[1] as any).shape = 7), [/tensors\[1\]\.shape must be an array/, /found 7/]],
    ["data not Float32Array", (c) => ((c.tensors[1] as any).data = new Float64Array(7)), [/tensors\[1\]\.data must be a Float32Array, found a Float64Array/]],
    ["empty name", (c) => (c.tensors[1]!.name = ""), [/tensors\[1\]\.name must be a non-empty string/]],
    ["missing group", (c) => delete (c.tensors[1] as any).group, [/tensors\[1\]\.group is missing; expected a non-empty string/]],
    ["missing kind", (c) => delete (c as any).kind, [/kind is missing/]],
    ["undefined spec", (c) => (c.spec = undefined), [/spec is undefined/, /only strings, finite numbers/]],
    ["NaN in meta", (c) => (c.meta.loss = NaN), [/meta\.loss is NaN/]],
    ["Infinity nested in spec", (c) => ((c.spec as any).layers[1].scale = Infinity), [/spec\.layers\[1\]\.scale is Infinity/]],
    ["Date in meta", (c) => (c.meta.savedAt = new Date(0)), [/meta\.savedAt is a Date/]],
    ["cycle in meta", (c) => (c.meta.self = c.meta), [/meta\.self refers back/, /cycle/]],
    ["meta an array", (c) => ((c as any).meta = []), [/meta must be an object, found \[\]/]],
    ["tensors not an array", (c) => ((c as any).tensors = {}), [/tensors must be an array/]],
  ];
  for (const [name, mutate, patterns] of cases) {
    test(`rejects ${name}`, () => {
      const contents = sampleContents();
      mutate(contents);
      assert.throws(
        () => encodeModel(contents, "/models/net.dpnn"),
        (error: unknown) => {
          assert.ok(error instanceof ModelFileError && error instanceof DownpourError);
          assert.equal(error.file, "/models/net.dpnn");
          assert.match(error.message, /^cannot encode model for \/models\/net\.dpnn: /);
          for (const pattern of patterns) assert.match(error.message, pattern);
          return true;
        },
      );
    });
  }
});
