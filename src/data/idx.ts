// IDX reader (the MNIST format), raw or gzip, streaming records in chunks so a large file needs not fit in memory.
import { basename } from "node:path";
import type { Readable } from "node:stream";
import { createDataset, type Dataset } from "./dataset.js";
import { DataError, DataSizeError } from "./errors.js";
import { asDataError, openDataStream } from "./files.js";
import { checkDenseSize, type DenseSize, memoryLimit } from "./limits.js";
import { formatBytes } from "../util/bytes.js";

/** The unsigned-byte magics this reader accepts: 0x00000801 (1-D, labels) to 0x00000804; MNIST images are 0x00000803. */
export const IDX_UBYTE_MAGICS = [0x801, 0x802, 0x803, 0x804] as const;

const IDX_TYPES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** Dimensions and sizes read from an IDX header. */
export interface IdxHeader {
  readonly dims: readonly number[];
  readonly headerBytes: number;
  /** Bytes of one record: the product of every dimension after the first. */
  readonly recordBytes: number;
  readonly dataBytes: number;
}

/** `count` whole records starting at record `index`, as a fresh array the caller may keep. */
export interface IdxChunk {
  readonly index: number;
  readonly count: number;
  readonly data: Uint8Array;
  readonly dims: readonly number[];
}

export interface IdxReadOptions extends IdxSizeOptions {
  /** Records per chunk; default: as many as fit in 1 MiB. */
  readonly recordsPerChunk?: number;
}

/** How much memory reading an IDX file may take. */
export interface IdxSizeOptions {
  /** The most bytes the data read into memory may take (readIdx: the data bytes; readIdxRows: its floats; readIdxRecords:
   * one chunk); checked against the header's dimensions before the data is read. Default DEFAULT_MEMORY_LIMIT_BYTES. */
  readonly maxBytes?: number;
}

/** The whole file: its dimensions and every data byte (refused before reading when they are more than maxBytes). */
export async function readIdx(path: string, options: IdxSizeOptions = {}): Promise<{ dims: number[]; data: Uint8Array }> {
  const limit = memoryLimit(options.maxBytes, path);
  return readIdxData(path, (header) => checkBytes(path, header, header.dataBytes, limit));
}

/** The whole file read into memory, once `checkHeader` has accepted the header's dimensions. */
async function readIdxData(path: string, checkHeader: (header: IdxHeader) => void): Promise<{ dims: number[]; data: Uint8Array }> {
  const { header, body } = await openIdx(path, checkHeader);
  const data = new Filling(path, header.dataBytes);
  for await (const piece of body) data.write(piece);
  return { dims: [...header.dims], data: data.take() };
}

/** The first allocation of a Filling: what arrives first is held in at most this many bytes. */
const FILLING_START_BYTES = 1 << 16;

/**
 * A buffer of `size` bytes filled by the pieces that arrive, allocated as they arrive (doubling, never past `size`):
 * a header that claims gigabytes the file does not hold allocates about what the file does hold, not the claim.
 */
class Filling {
  #bytes: Uint8Array = new Uint8Array(0);
  #filled = 0;

  constructor(
    readonly path: string,
    readonly size: number,
  ) {}

  /** Bytes written so far. */
  get filled(): number {
    return this.#filled;
  }

  /** Appends `piece` (the caller keeps the total within `size`). */
  write(piece: Uint8Array): void {
    const needed = this.#filled + piece.length;
    if (needed > this.#bytes.length) {
      const grown = allocate(this.path, Math.min(this.size, Math.max(needed, 2 * this.#bytes.length, FILLING_START_BYTES)));
      grown.set(this.#bytes.subarray(0, this.#filled));
      this.#bytes = grown;
    }
    this.#bytes.set(piece, this.#filled);
    this.#filled = needed;
  }

  /** The `size` bytes (zero where nothing was written): the buffer itself when it is exactly that long. */
  take(): Uint8Array {
    if (this.#bytes.length === this.size) return this.#bytes;
    const whole = allocate(this.path, this.size);
    whole.set(this.#bytes.subarray(0, this.#filled));
    return whole;
  }
}

/** The records of the file in chunks of `recordsPerChunk` (the last may be shorter), read through a stream. */
export async function* readIdxRecords(path: string, options: IdxReadOptions = {}): AsyncGenerator<IdxChunk> {
  const limit = memoryLimit(options.maxBytes, path);
  const chunkBytes = (h: IdxHeader) => Math.min(recordsPerChunk(path, options, h.recordBytes), h.dims[0]!) * h.recordBytes;
  const { header, body } = await openIdx(path, (h) => checkBytes(path, h, chunkBytes(h), limit));
  const { dims, recordBytes } = header;
  const perChunk = recordsPerChunk(path, options, recordBytes);
  const totalRecords = dims[0]!;
  let index = 0;
  let chunk = new Filling(path, Math.min(perChunk, totalRecords) * recordBytes);
  for await (const piece of body) {
    for (let offset = 0; offset < piece.length; ) {
      const n = Math.min(chunk.size - chunk.filled, piece.length - offset);
      chunk.write(piece.subarray(offset, offset + n));
      offset += n;
      if (chunk.filled < chunk.size) continue;
      const count = chunk.size / recordBytes;
      yield { index, count, data: chunk.take(), dims };
      index += count;
      chunk = new Filling(path, Math.min(perChunk, totalRecords - index) * recordBytes);
    }
  }
}

/** Parses the 4-byte magic and the big-endian dimensions that follow it. */
export function parseIdxHeader(path: string, head: Uint8Array): IdxHeader | "need-more" {
  if (head.length < 4) return "need-more";
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = view.getUint32(0);
  const type = head[2]!;
  const ndims = head[3]!;
  if (head[0] !== 0 || head[1] !== 0 || !(type in IDX_TYPES) || ndims === 0) throw wrongMagic(path, magic);
  if (type !== 0x08) {
    throw new DataError(
      `${path}: IDX data type 0x${hex(type, 2)} (${IDX_TYPES[type]}) is not supported; only unsigned bytes (0x08) are`,
      { file: path },
    );
  }
  if (!IDX_UBYTE_MAGICS.includes(magic as (typeof IDX_UBYTE_MAGICS)[number])) throw wrongMagic(path, magic);
  const headerBytes = 4 + 4 * ndims;
  if (head.length < headerBytes) return "need-more";
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const recordBytes = dims.slice(1).reduce((a, b) => a * b, 1);
  return { dims, headerBytes, recordBytes, dataBytes: dims[0]! * recordBytes };
}

/** The parsed header (after `checkHeader` accepts it), and the data bytes after it as a stream checked to hold exactly dataBytes. */
async function openIdx(path: string, checkHeader: (header: IdxHeader) => void): Promise<{ header: IdxHeader; body: AsyncGenerator<Uint8Array> }> {
  const stream = await openDataStream(path);
  const pieces = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  try {
    let head: Uint8Array = new Uint8Array(0);
    let header = parseIdxHeader(path, head);
    while (header === "need-more") {
      const next = await pieces.next();
      if (next.done) throw truncatedHeader(path, head.length);
      head = concat(head, next.value);
      header = parseIdxHeader(path, head);
    }
    checkHeader(header);
    return { header, body: checkedBody(path, stream, pieces, head.subarray(header.headerBytes), header.dataBytes) };
  } catch (error) {
    stream.destroy();
    throw asDataError(path, error);
  }
}

async function* checkedBody(
  path: string,
  stream: Readable,
  pieces: AsyncIterator<Uint8Array>,
  first: Uint8Array,
  expected: number,
): AsyncGenerator<Uint8Array> {
  let received = 0;
  try {
    for (let piece: Uint8Array | undefined = first; piece; ) {
      received += piece.length;
      if (received > expected) {
        throw new DataError(`${path}: more bytes than the ${expected} bytes of data the header announces`, { file: path });
      }
      if (piece.length > 0) yield piece;
      const next = await pieces.next();
      piece = next.done ? undefined : next.value;
    }
    if (received < expected) {
      throw new DataError(`${path}: truncated: expected ${expected} bytes of data, got ${received}`, { file: path });
    }
  } catch (error) {
    throw asDataError(path, error);
  } finally {
    stream.destroy();
  }
}

function recordsPerChunk(path: string, options: IdxReadOptions, recordBytes: number): number {
  const value = options.recordsPerChunk ?? Math.max(1, Math.floor((1 << 20) / Math.max(recordBytes, 1)));
  if (!Number.isInteger(value) || value < 1) {
    throw new DataError(`${path}: recordsPerChunk is ${value}, expected an integer >= 1`, { file: path });
  }
  return value;
}

/** x and y of readIdxRows: a row of every value of a record, for each record; the header's dimensions imply it. */
function idxRowsSize(header: IdxHeader): DenseSize {
  const rows = header.dims[0]!;
  const values = header.recordBytes;
  return { rows, features: values, outputs: values, cause: `the header's dimensions ${header.dims.join("x")} imply ${rows} records of ${values} values (and as many targets)` };
}

/** Throws a DataSizeError naming the header's dimensions when reading needs more than limitBytes. */
function checkBytes(path: string, header: IdxHeader, neededBytes: number, limitBytes: number): void {
  if (neededBytes <= limitBytes) return;
  const dims = header.dims.join("x");
  throw new DataSizeError(
    `${path}: the header's dimensions ${dims} would need ${formatBytes(neededBytes)}, more than the memory limit of ${formatBytes(limitBytes)}`,
    { file: path },
    { neededBytes, limitBytes },
  );
}

function allocate(path: string, bytes: number): Uint8Array {
  try {
    return new Uint8Array(bytes);
  } catch (error) {
    throw new DataError(`${path}: ${bytes} bytes of data do not fit in one array; read it with readIdxRecords`, { file: path }, { cause: error });
  }
}

function wrongMagic(path: string, found: number): DataError {
  const expected = IDX_UBYTE_MAGICS.map((m) => `0x${hex(m, 8)}`).join(", ");
  return new DataError(`${path}: wrong magic 0x${hex(found, 8)}: expected one of ${expected} (unsigned-byte IDX)`, { file: path });
}

function truncatedHeader(path: string, got: number): DataError {
  return new DataError(`${path}: truncated: the IDX header ends after ${got} bytes`, { file: path });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

/**
 * An IDX file's records as unlabelled rows (each record flattened; raw values), y a copy of x (auto-encoder
 * targets). No `lines`: messages name a row by its record index. Refused before the data is read when x and y
 * (4 bytes a value each) would take more than maxBytes.
 */
export async function readIdxRows(path: string, options: IdxSizeOptions = {}): Promise<Dataset> {
  const limit = memoryLimit(options.maxBytes, path);
  const { dims, data } = await readIdxData(path, (header) => checkDenseSize(idxRowsSize(header), limit, { file: path }));
  const features = dims.slice(1).reduce((a, b) => a * b, 1);
  if (dims[0] === 0) throw new DataError(`${path}: no records`, { file: path });
  const x = Float32Array.from(data);
  return createDataset({ features, outputs: features, x, y: x.slice(), name: basename(path) });
}
