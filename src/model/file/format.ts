// The downpour model file format, version 1: layout constants, the contents type and the header type.
//
// Layout (little-endian): magic "DPOURNN\0" | u32 version | u32 header byte length H | H bytes UTF-8 JSON header |
// zero padding to a multiple of 4 from the file start | each tensor's float32 data in header order |
// u32 CRC-32 (IEEE) of every byte before it.

/** The eight bytes every model file starts with: "DPOURNN\0". */
export const MODEL_FILE_MAGIC = "DPOURNN\0";

/** The format version this code writes and reads. */
export const MODEL_FILE_VERSION = 1;

/** Magic, version and header length. */
export const PREAMBLE_BYTES = 16;

/** The trailing CRC-32. */
export const CHECKSUM_BYTES = 4;

/** One named tensor of a model file. */
export interface ModelFileTensor {
  name: string;
  /** Non-negative integer dimensions; the data holds their product of values ([] is a scalar). */
  shape: number[];
  /** "param", "optimizer" or any other grouping the model uses. */
  group: string;
  data: Float32Array;
}

/** Everything a model file stores; `spec` and `meta` are opaque JSON to this module. */
export interface ModelFileContents {
  /** The model class, e.g. "MultiLayerPerceptron". */
  kind: string;
  /** The layer spec. */
  spec: unknown;
  /** Training state: step, epoch, optimizer name and hyper-parameters, ... */
  meta: Record<string, unknown>;
  tensors: ModelFileTensor[];
}

/** A tensor as the header describes it, without its data. */
export type TensorDescriptor = Omit<ModelFileTensor, "data">;

/** The JSON header of a model file. */
export interface ModelFileHeader {
  kind: string;
  spec: unknown;
  meta: Record<string, unknown>;
  tensors: TensorDescriptor[];
}

/** The magic as bytes. */
export function magicBytes(): Uint8Array {
  return Uint8Array.from(MODEL_FILE_MAGIC, (c) => c.charCodeAt(0));
}

/** `offset` rounded up to a multiple of 4. */
export function alignTo4(offset: number): number {
  return Math.ceil(offset / 4) * 4;
}

/** Number of values a tensor of `shape` holds. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}
