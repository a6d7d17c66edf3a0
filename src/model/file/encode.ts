// Encoding ModelFileContents into the bytes of a version-1 model file.
import { checkContents } from "./contents.js";
import { crc32 } from "./crc32.js";
import { writeFloat32LE } from "./float-bytes.js";
import {
  CHECKSUM_BYTES,
  MODEL_FILE_VERSION,
  PREAMBLE_BYTES,
  alignTo4,
  magicBytes,
  type ModelFileContents,
} from "./format.js";

/**
 * The model file bytes for `contents`. Throws ModelFileError (naming `destination` and the bad field) when a
 * tensor's data length differs from its shape's product, a shape is not non-negative integers, names repeat,
 * or spec/meta hold values JSON would not round-trip.
 */
export function encodeModel(contents: ModelFileContents, destination = "<bytes>"): Uint8Array {
  const { header, tensors } = checkContents(contents, destination);
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = alignTo4(PREAMBLE_BYTES + headerBytes.length);
  const dataBytes = tensors.reduce((sum, t) => sum + t.data.byteLength, 0);
  const bytes = new Uint8Array(dataStart + dataBytes + CHECKSUM_BYTES); // zero-filled, so padding is zero
  const view = new DataView(bytes.buffer);
  bytes.set(magicBytes(), 0);
  view.setUint32(8, MODEL_FILE_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  bytes.set(headerBytes, PREAMBLE_BYTES);
  let offset = dataStart;
  for (const tensor of tensors) {
    writeFloat32LE(bytes, offset, tensor.data);
    offset += tensor.data.byteLength;
  }
  view.setUint32(offset, crc32(bytes.subarray(0, offset)), true);
  return bytes;
}
