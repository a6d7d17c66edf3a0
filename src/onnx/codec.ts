// ONNX models as plain objects (field names as in onnx.proto) and bytes: encoding through protobufjs with the
// schema subset (schema.ts), decoding with every failure turned into an OnnxImportError that says whether the bytes
// are not ONNX at all or a truncated file; float tensors to and from raw little-endian data.
import { DownpourError } from "../errors.js";
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

/** The bytes of `model` (checked against the schema first). */
export function encodeOnnx(model: OnnxModel): Uint8Array {
  const type = modelProtoType();
  const problem = type.verify(model);
  if (problem) throw new OnnxExportError(`the ONNX model does not fit the schema: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/**
 * The model in `bytes`; `source` names them in errors. A protobuf that ends early is "truncated"; bytes that are
 * not a protobuf, or a protobuf without an IR version and a graph, are "not-onnx".
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
    const truncated = /index out of range|premature|truncated/i.test(message);
    const what = truncated ? "ends in the middle of a field (a truncated file?)" : "is not an ONNX model (not a protobuf ModelProto)";
    throw new OnnxImportError(`${source} ${what}: ${message}`, { reason: truncated ? "truncated" : "not-onnx" }, { cause: error });
  }
  const graph = decoded.graph as OnnxGraph | undefined;
  if (!(typeof decoded.ir_version === "number" && decoded.ir_version > 0) || graph === undefined) {
    throw new OnnxImportError(`${source} is not an ONNX model: it has no ${graph === undefined ? "graph" : "IR version"}`, { reason: "not-onnx" });
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

/** A float tensor with raw little-endian data. */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  const data = Float32Array.from(values);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
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
    const view = new DataView(tensor.raw_data.buffer, tensor.raw_data.byteOffset, tensor.raw_data.length);
    return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  }
  const floats = tensor.float_data ?? [];
  if (floats.length !== count) throw new OnnxImportError(`initializer ${name}: ${floats.length} floats for dims [${tensor.dims}] (${count})`, { reason: "malformed" });
  return Float32Array.from(floats);
}
