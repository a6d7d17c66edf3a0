// Reading the fixed preamble (magic, version, header length) and the JSON header of a model file.
import { ModelFileError } from "./errors.js";
import { checkRecord, checkString, checkTensorDescriptor, checkUniqueNames, failExpected, type Fail } from "./fields.js";
import { MODEL_FILE_MAGIC, MODEL_FILE_VERSION, PREAMBLE_BYTES, magicBytes, type ModelFileHeader } from "./format.js";

/** Hex bytes separated by spaces: "44 50 4f". */
export function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Printable ASCII as is, everything else as \xNN, in double quotes. */
function quotedAscii(bytes: Uint8Array): string {
  const chars = Array.from(bytes, (b) =>
    b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`,
  );
  return `"${chars.join("")}"`;
}

function checkMagic(bytes: Uint8Array, source: string): void {
  const expected = magicBytes();
  const found = bytes.subarray(0, expected.length);
  if (found.every((b, i) => b === expected[i])) return;
  throw new ModelFileError(
    source,
    `${source} is not a downpour model file: expected magic ${MODEL_FILE_MAGIC.slice(0, -1)} (${hexBytes(expected)}), ` +
      `found ${quotedAscii(found)} (${hexBytes(found)})`,
  );
}

/** Checks magic and version; returns the header's byte length, which is known to fit in the file. */
export function readPreamble(bytes: Uint8Array, view: DataView, source: string): number {
  if (bytes.length < PREAMBLE_BYTES) {
    throw new ModelFileError(
      source,
      `${source} is too short to be a downpour model file: ${bytes.length} bytes, expected at least ${PREAMBLE_BYTES} ` +
        `(magic, format version, header length)`,
    );
  }
  checkMagic(bytes, source);
  const version = view.getUint32(8, true);
  if (version !== MODEL_FILE_VERSION) {
    throw new ModelFileError(source, `model file ${source} has format version ${version}; this downpour reads version ${MODEL_FILE_VERSION}`);
  }
  const headerLength = view.getUint32(12, true);
  if (PREAMBLE_BYTES + headerLength > bytes.length) {
    throw new ModelFileError(
      source,
      `model file ${source} is truncated or corrupted: its header length ${headerLength} runs past the end of the file ` +
        `(the header would end at byte ${PREAMBLE_BYTES + headerLength}, the file has ${bytes.length} bytes)`,
    );
  }
  return headerLength;
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ModelFileError(
      source,
      `model file ${source} has a header that is not valid UTF-8 JSON (${(error as Error).message}); ` +
        `expected a JSON object with kind, spec, meta and tensors`,
      { cause: error },
    );
  }
}

/** The validated header held in the `headerLength` bytes after the preamble. */
export function readHeader(bytes: Uint8Array, headerLength: number, source: string): ModelFileHeader {
  const json = parseJson(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength), source);
  const fail: Fail = (field, problem) => {
    throw new ModelFileError(source, `model file ${source} has a bad header: field ${field} ${problem}`);
  };
  const header = checkRecord(json, "(header)", fail);
  const kind = checkString(header.kind, "kind", fail);
  if (!("spec" in header)) fail("spec", "is missing; expected the model's layer spec");
  const meta = checkRecord(header.meta, "meta", fail);
  if (!Array.isArray(header.tensors)) failExpected(header.tensors, "tensors", "an array", fail);
  const tensors = (header.tensors as unknown[]).map((entry, index) => checkTensorDescriptor(entry, index, fail));
  checkUniqueNames(tensors, fail);
  return { kind, spec: header.spec, meta, tensors };
}
