// Shared fixtures for the model file tests: sample contents with awkward float values, and byte surgery on real files.
import { crc32, encodeModel, type ModelFileContents } from "../../src/model/file/index.js";

/** A Float32Array whose elements have exactly the given bit patterns. */
export function fromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** The bit patterns of a Float32Array's elements. */
export function bitsOf(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

/** Contents with odd-length, empty and scalar tensors and NaN payloads, -0, ±Infinity, a denormal. */
export function sampleContents(): ModelFileContents {
  const w1 = new Float32Array(15).map((_, i) => (i - 7) / 3);
  return {
    kind: "MultiLayerPerceptron",
    spec: { layers: [{ units: 5, activation: "relu" }, { units: 1, activation: "sigmoid" }], name: "μ-ß 🚀" },
    meta: { step: 1200, epoch: 3, optimizer: { name: "adam", lr: 0.001, betas: [0.9, 0.999] }, note: null, ok: true },
    tensors: [
      { name: "w1", shape: [3, 5], group: "param", data: w1 },
      {
        name: "b1",
        shape: [7],
        group: "param",
        // quiet NaN with payload, negative signalling NaN, -0, +Inf, -Inf, smallest denormal, largest finite
        data: fromBits([0x7fc00001, 0xff800005, 0x80000000, 0x7f800000, 0xff800000, 0x00000001, 0x7f7fffff]),
      },
      { name: "empty", shape: [0], group: "param", data: new Float32Array(0) },
      { name: "w1.m", shape: [3, 5], group: "optimizer", data: w1.map((v) => v * 0.5) },
      { name: "alsoEmpty", shape: [2, 0, 3], group: "optimizer", data: new Float32Array(0) },
      { name: "t", shape: [], group: "state", data: new Float32Array([42.5]) },
    ],
  };
}

/** Where the parts of an encoded model file lie. */
export function layoutOf(bytes: Uint8Array) {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  const headerEnd = 16 + headerLength;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  return { headerLength, headerEnd, dataStart, checksumOffset: bytes.length - 4 };
}

/** The parsed JSON header of encoded bytes. */
export function headerOf(bytes: Uint8Array): Record<string, unknown> {
  const { headerEnd } = layoutOf(bytes);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(16, headerEnd)));
}

/** A copy of `bytes` with its trailing CRC recomputed, so that only the intended defect remains. */
export function withValidChecksum(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const end = out.length - 4;
  new DataView(out.buffer).setUint32(end, crc32(out.subarray(0, end)), true);
  return out;
}

/** `bytes` rebuilt around a new header text (padding and CRC made valid), keeping the original tensor data. */
export function withHeaderText(bytes: Uint8Array, headerText: string): Uint8Array {
  const { dataStart, checksumOffset } = layoutOf(bytes);
  const header = new TextEncoder().encode(headerText);
  const newStart = Math.ceil((16 + header.length) / 4) * 4;
  const data = bytes.subarray(dataStart, checksumOffset);
  const out = new Uint8Array(newStart + data.length + 4);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(12, header.length, true);
  out.set(header, 16);
  out.set(data, newStart);
  return withValidChecksum(out);
}

/** `bytes` rebuilt with its parsed header transformed by `edit`: it returns a replacement, or mutates and returns nothing. */
export function withHeader(bytes: Uint8Array, edit: (header: any) => unknown): Uint8Array {
  const header = headerOf(bytes);
  const replaced = edit(header);
  return withHeaderText(bytes, JSON.stringify(replaced === undefined ? header : replaced));
}

/** The encoded sample file. */
export function sampleBytes(): Uint8Array {
  return encodeModel(sampleContents());
}

/** The sample contents, with meta.note lengthened until the header needs `padding` (1..3) zero bytes after it. */
export function contentsWithPadding(padding: 1 | 2 | 3): ModelFileContents {
  const contents = sampleContents();
  for (let note = ""; ; note += "x") {
    contents.meta.note = note;
    if (layoutOf(encodeModel(contents)).headerEnd % 4 === 4 - padding) return contents;
  }
}
