// The versioned binary model file format: encode/decode contents, atomic write and read, CRC-32, errors.
export { crc32 } from "./crc32.js";
export { decodeModel } from "./decode.js";
export { encodeModel } from "./encode.js";
export { ModelFileError } from "./errors.js";
export {
  MODEL_FILE_MAGIC,
  MODEL_FILE_VERSION,
  type ModelFileContents,
  type ModelFileHeader,
  type ModelFileTensor,
  type TensorDescriptor,
} from "./format.js";
export { readModelFile, writeModelFile } from "./io.js";
