// ONNX models as plain objects (field names as in onnx.proto) and bytes: encoding through protobufjs with the
// schema subset (schema.ts), decoding with every failure turned into an OnnxImportError that says whether the bytes
// are not ONNX at all or a truncated file; float tensors to and from raw little-endian data.
import protobuf from "protobufjs";
import { DownpourError } from "../errors.js";
import { MODEL_FILE_MAGIC } from "../model/file/format.js";
import { modelProtoType } from "./schema.js";

/** The IR version exported models declare (ONNX 1.13+, onnxruntime 1.14+). */
export const ONNX_IR_VERSION = 8;
/** The default-domain opset exported models import (Gemm, Relu, Sigmoid, Tanh, Softmax over an axis, Identity). */
export const ONNX_OPSET = 17;
/** TensorProto.DataType.FLOAT. */
export const ONNX_FLOAT = 1;

export interface OnnxDimension {
  dim_value?: number;
  dim_param?: string;
}

export interface OnnxValueInfo {
  name: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: OnnxDimension[] } } };
  doc_string?: string;
}

export interface OnnxTensor {
  name?: string;
  dims?: number[];
  data_type?: number;
  raw_data?: Uint8Array;
  float_data?: number[];
  data_location?: number;
}

export interface OnnxAttribute {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
  /** A tensor attribute (a Constant node's value). */
  t?: OnnxTensor;
}

export interface OnnxNode {
  op_type: string;
  input: string[];
  output: string[];
  name?: string;
  domain?: string;
  attribute?: OnnxAttribute[];
}

export interface OnnxGraph {
  name?: string;
  node: OnnxNode[];
  initializer?: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  doc_string?: string;
}

export interface OnnxModel {
  ir_version: number;
  opset_import: { domain?: string; version: number }[];
  producer_name?: string;
  producer_version?: string;
  doc_string?: string;
  graph: OnnxGraph;
  metadata_props?: { key: string; value: string }[];
}

/** Why an ONNX file could not be taken. */
export type OnnxImportFailure = "not-onnx" | "truncated" | "unsupported" | "malformed";

/** An ONNX file that cannot become a downpour model; `node` and `opType` name the first node it cannot take. */
export class OnnxImportError extends DownpourError {
  readonly reason: OnnxImportFailure;
  readonly node: string | undefined;
  readonly opType: string | undefined;

  constructor(message: string, fields: { reason: OnnxImportFailure; node?: string; opType?: string }, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = fields.reason;
    this.node = fields.node;
    this.opType = fields.opType;
  }
}

/** A model that cannot be written as ONNX; `layer` names the layer at fault when there is one. */
export class OnnxExportError extends DownpourError {
  readonly layer: number | undefined;

  constructor(message: string, layer?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.layer = layer;
  }
}

/** The bytes of `model` (checked against the schema first), in an ArrayBuffer of their own. */
export function encodeOnnx(model: OnnxModel): Uint8Array {
  const type = modelProtoType();
  const problem = type.verify(model);
  if (problem) throw new OnnxExportError(`the ONNX model does not fit the schema: ${problem}`);
  const bytes = type.encode(type.fromObject(model)).finish();
  // Under Node protobufjs returns a Buffer, small ones a view into a shared pool: `bytes.buffer` would hold other data.
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes);
}

/**
 * The model in `bytes`; `source` names them in errors. Bytes that start as an ONNX ModelProto (ir_version, then
 * known top-level fields of the right wire types) but end in the middle of a field, before the graph or before the
 * opset imports (written after the graph) are "truncated"; anything else that does not decode to a model with an IR
 * version and a graph is "not-onnx" (the message says what the bytes look like when it can tell: a downpour model
 * file, gzip, zip, PNG, text).
 */
export function decodeOnnx(bytes: Uint8Array, source = "the ONNX bytes"): OnnxModel {
  if (!(bytes instanceof Uint8Array)) throw new OnnxImportError(`${source}: expected bytes (a Uint8Array)`, { reason: "not-onnx" });
  if (bytes.length === 0) throw new OnnxImportError(`${source}: empty, not an ONNX model`, { reason: "not-onnx" });
  const type = modelProtoType();
  let decoded: Record<string, unknown>;
  try {
    decoded = type.toObject(type.decode(bytes), { longs: Number, bytes: Uint8Array, defaults: false, arrays: true }) as Record<string, unknown>;
  } catch (error) {
    const message = (error as Error).message;
    const truncated = /index out of range|premature|truncated/i.test(message) && startsAsModelProto(bytes);
    const what = truncated ? "ends in the middle of a field (a truncated file?)" : `is not an ONNX model (${lookalike(bytes) ?? "not a protobuf ModelProto"})`;
    throw new OnnxImportError(`${source} ${what}: ${message}`, { reason: truncated ? "truncated" : "not-onnx" }, { cause: error });
  }
  const graph = decoded.graph as OnnxGraph | undefined;
  const hasIr = typeof decoded.ir_version === "number" && decoded.ir_version > 0;
  if (hasIr && graph === undefined) {
    throw new OnnxImportError(`${source} ends before its graph: an ONNX model header (IR version ${decoded.ir_version}) without a graph (a truncated file?)`, { reason: "truncated" });
  }
  // Serializers write fields in field-number order, the graph (7) before opset_import (8), which IR 3+ requires:
  // a model with a graph and no opsets ends early.
  if (hasIr && (decoded.ir_version as number) >= 3 && graph !== undefined && !(decoded.opset_import as unknown[] | undefined)?.length) {
    throw new OnnxImportError(`${source} ends after its graph, before the opset it imports (a truncated file?)`, { reason: "truncated" });
  }
  if (!hasIr || graph === undefined) {
    const looks = lookalike(bytes);
    throw new OnnxImportError(`${source} is not an ONNX model: ${looks ? `${looks}; ` : ""}it has no ${graph === undefined ? "graph" : "IR version"}`, { reason: "not-onnx" });
  }
  graph.node ??= [];
  graph.input ??= [];
  graph.output ??= [];
  for (const node of graph.node) {
    node.input ??= [];
    node.output ??= [];
  }
  return decoded as unknown as OnnxModel;
}

/** ModelProto's top-level field numbers (onnx.proto, all of them) and their wire types: 0 varint, 2 length-delimited. */
const MODEL_PROTO_WIRE_TYPES: ReadonlyMap<number, number> = new Map([
  [1, 0], [2, 2], [3, 2], [4, 2], [5, 0], [6, 2], [7, 2], [8, 2], [14, 2], [20, 2], [25, 2], [26, 2],
]);

/** The first byte of every ONNX file: the tag of ir_version (field 1, varint), which serializers write first. */
const IR_VERSION_TAG = 0x08;

/**
 * Whether the bytes start with ir_version and every top-level field up to where they run out is a ModelProto field
 * of its wire type (read with protobufjs's Reader): bytes that fail to decode only because they end early, not
 * bytes of another format.
 */
function startsAsModelProto(bytes: Uint8Array): boolean {
  if (bytes[0] !== IR_VERSION_TAG) return false;
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (MODEL_PROTO_WIRE_TYPES.get(tag >>> 3) !== (tag & 7)) return false;
      reader.skipType(tag & 7);
    }
  } catch {
    return true; // ran out inside a field whose tag was a ModelProto field's
  }
  return true;
}

/** What bytes that are not ONNX look like, when a magic number or text tells. */
function lookalike(bytes: Uint8Array): string | undefined {
  const starts = (magic: string) => bytes.length >= magic.length && [...magic].every((c, i) => bytes[i] === c.charCodeAt(0));
  if (starts(MODEL_FILE_MAGIC)) return "a downpour model file (.dpnn); load it with loadModel or decodeModel";
  if (starts("\x1f\x8b")) return "gzip-compressed data; decompress it first";
  if (starts("PK\x03\x04")) return "a zip archive; extract the .onnx file from it";
  if (starts("\x89PNG")) return "a PNG image";
  const head = bytes.subarray(0, 512);
  if (head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127))) return "text, not the binary protobuf an .onnx file is";
  return undefined;
}

/** Whether this host stores floats little-endian, as ONNX's raw_data does (then raw data is copied as bytes). */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A float tensor with raw little-endian data. */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  const data = Float32Array.from(values);
  const raw = new Uint8Array(data.length * 4);
  if (LITTLE_ENDIAN) raw.set(new Uint8Array(data.buffer));
  else {
    const view = new DataView(raw.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
  }
  return { name, dims, data_type: ONNX_FLOAT, raw_data: raw };
}

/** The values of a float tensor (raw_data or float_data); refuses other types and external data, naming the tensor. */
export function tensorFloats(tensor: OnnxTensor): Float32Array {
  const name = tensor.name ?? "(unnamed)";
  if ((tensor.data_type ?? 0) !== ONNX_FLOAT) throw new OnnxImportError(`initializer ${name}: data type ${tensor.data_type}, only FLOAT (1) tensors are taken`, { reason: "unsupported" });
  if (tensor.data_location === 1) throw new OnnxImportError(`initializer ${name}: its data is in an external file; save the model with its weights inside`, { reason: "unsupported" });
  const count = (tensor.dims ?? []).reduce((n, d) => n * d, 1);
  if (tensor.raw_data && tensor.raw_data.length > 0) {
    if (tensor.raw_data.length !== 4 * count) throw new OnnxImportError(`initializer ${name}: ${tensor.raw_data.length} bytes of data for dims [${tensor.dims}] (${count} floats)`, { reason: "malformed" });
    if (LITTLE_ENDIAN) {
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(tensor.raw_data);
      return out;
    }
    const view = new DataView(tensor.raw_data.buffer, tensor.raw_data.byteOffset, tensor.raw_data.length);
    return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  }
  const floats = tensor.float_data ?? [];
  if (floats.length !== count) throw new OnnxImportError(`initializer ${name}: ${floats.length} floats for dims [${tensor.dims}] (${count})`, { reason: "malformed" });
  return Float32Array.from(floats);
}
