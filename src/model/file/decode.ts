// Decoding the bytes of a version-1 model file into ModelFileContents, with a named error for every defect.
import { crc32 } from "./crc32.js";
import { ModelFileError } from "./errors.js";
import { readFloat32LE } from "./float-bytes.js";
import { CHECKSUM_BYTES, PREAMBLE_BYTES, alignTo4, elementCount, type ModelFileContents, type ModelFileHeader } from "./format.js";
import { readHeader, readPreamble } from "./header.js";

/** Where the tensor data, each tensor and the checksum start, as the header implies. */
interface Layout {
  dataStart: number;
  offsets: number[];
  checksumOffset: number;
  fileLength: number;
}

function planLayout(header: ModelFileHeader, headerLength: number): Layout {
  const dataStart = alignTo4(PREAMBLE_BYTES + headerLength);
  const offsets: number[] = [];
  let offset = dataStart;
  for (const tensor of header.tensors) {
    offsets.push(offset);
    offset += elementCount(tensor.shape) * 4;
  }
  return { dataStart, offsets, checksumOffset: offset, fileLength: offset + CHECKSUM_BYTES };
}

/** Fails when the file is shorter (naming the first incomplete part) or longer than the header implies. */
function checkLength(length: number, header: ModelFileHeader, layout: Layout, source: string): void {
  const truncated = (what: string) => new ModelFileError(source, `model file ${source} is truncated: ${what}`);
  if (length < layout.dataStart) {
    throw truncated(`it ends at byte ${length}, inside the padding after the header; tensor data starts at byte ${layout.dataStart}`);
  }
  header.tensors.forEach((tensor, i) => {
    const start = layout.offsets[i]!;
    const expected = elementCount(tensor.shape) * 4;
    if (start + expected > length) {
      throw truncated(
        `tensor ${JSON.stringify(tensor.name)} (shape ${JSON.stringify(tensor.shape)}) needs ${expected} bytes ` +
          `from byte ${start}, but only ${length - start} are present`,
      );
    }
  });
  if (length < layout.fileLength) {
    throw truncated(`expected a ${CHECKSUM_BYTES}-byte CRC-32 at byte ${layout.checksumOffset}, but only ${length - layout.checksumOffset} bytes are present`);
  }
  if (length > layout.fileLength) {
    const extra = length - layout.fileLength;
    throw new ModelFileError(
      source,
      `model file ${source} has ${extra} trailing byte${extra === 1 ? "" : "s"} after its CRC-32: ` +
        `expected the file to end at byte ${layout.fileLength}, but it is ${length} bytes long`,
    );
  }
}

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

function checkChecksum(bytes: Uint8Array, view: DataView, checksumOffset: number, source: string): void {
  const stored = view.getUint32(checksumOffset, true);
  const computed = crc32(bytes.subarray(0, checksumOffset));
  if (stored !== computed) {
    throw new ModelFileError(
      source,
      `model file ${source} is corrupted: checksum mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`,
    );
  }
}

function checkPadding(bytes: Uint8Array, headerLength: number, dataStart: number, source: string): void {
  for (let i = PREAMBLE_BYTES + headerLength; i < dataStart; i++) {
    if (bytes[i] !== 0) {
      throw new ModelFileError(
        source,
        `model file ${source} has byte 0x${bytes[i]!.toString(16).padStart(2, "0")} at offset ${i} in the header padding; ` +
          `expected zero bytes up to byte ${dataStart}`,
      );
    }
  }
}

/**
 * The contents of the model file `bytes` (tensors copied into fresh Float32Arrays). Throws ModelFileError naming
 * `source` and the defect: too short, wrong magic, unsupported version, bad header, truncation, trailing bytes,
 * checksum mismatch.
 */
export function decodeModel(bytes: Uint8Array, source = "<bytes>"): ModelFileContents {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = readPreamble(bytes, view, source);
  const header = readHeader(bytes, headerLength, source);
  const layout = planLayout(header, headerLength);
  checkLength(bytes.length, header, layout, source);
  checkChecksum(bytes, view, layout.checksumOffset, source);
  checkPadding(bytes, headerLength, layout.dataStart, source);
  const tensors = header.tensors.map((tensor, i) => ({
    ...tensor,
    data: readFloat32LE(bytes, layout.offsets[i]!, elementCount(tensor.shape)),
  }));
  return { kind: header.kind, spec: header.spec, meta: header.meta, tensors };
}
