// The entry `downpour/onnx`: models to and from ONNX, the format onnxruntime (Node, browsers, Python, C++, Java)
// serves and tfjs, Keras and PyTorch export to. exportOnnx writes a model as standard operators; importOnnx reads a
// chain of dense layers and activations back as a model that evaluates and trains further. Needs protobufjs (a
// dependency), so it is an entry of its own: the runtime-free `downpour` does not load it.
export { DOWNPOUR_VERSION, exportOnnx, ONNX_METADATA_KEYS, ONNX_NAMES, onnxOutputName, type OnnxExportOptions } from "./export.js";
export { importOnnx, type OnnxImportOptions } from "./import.js";
export {
  decodeOnnx, encodeOnnx, ONNX_IR_VERSION, ONNX_OPSET, OnnxExportError, OnnxImportError,
  type OnnxGraph, type OnnxImportFailure, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo,
} from "./codec.js";
