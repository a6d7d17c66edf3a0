// Validation of the caller's ModelFileContents before encoding: every field, shape/data agreement, unique names.
import { ModelFileError } from "./errors.js";
import { checkRecord, checkString, checkTensorDescriptor, checkUniqueNames, failExpected, type Fail } from "./fields.js";
import { elementCount, type ModelFileContents, type ModelFileHeader, type ModelFileTensor } from "./format.js";
import { checkJsonValue } from "./json-value.js";

/** A failure reporter whose errors say the model for `destination` cannot be encoded. */
function encodeFailure(destination: string): Fail {
  return (field, problem) => {
    throw new ModelFileError(destination, `cannot encode model for ${destination}: ${field} ${problem}`);
  };
}

function checkTensor(entry: unknown, index: number, fail: Fail): ModelFileTensor {
  const descriptor = checkTensorDescriptor(entry, index, fail);
  const data = (entry as { data?: unknown }).data;
  const field = `tensors[${index}].data`;
  if (!(data instanceof Float32Array)) failExpected(data, field, "a Float32Array", fail);
  const expected = elementCount(descriptor.shape);
  if (data.length !== expected) {
    fail(field, `has ${data.length} values; shape ${JSON.stringify(descriptor.shape)} needs ${expected}`);
  }
  return { ...descriptor, data };
}

/** The header to write and the tensors in order, or a ModelFileError naming the first bad field. */
export function checkContents(
  contents: ModelFileContents,
  destination: string,
): { header: ModelFileHeader; tensors: ModelFileTensor[] } {
  const fail = encodeFailure(destination);
  const record = checkRecord(contents, "contents", fail);
  const kind = checkString(record.kind, "kind", fail);
  checkJsonValue(record.spec, "spec", fail);
  const meta = checkRecord(record.meta, "meta", fail);
  checkJsonValue(meta, "meta", fail);
  if (!Array.isArray(record.tensors)) failExpected(record.tensors, "tensors", "an array", fail);
  const tensors = (record.tensors as unknown[]).map((entry, index) => checkTensor(entry, index, fail));
  checkUniqueNames(tensors, fail);
  const descriptors = tensors.map(({ name, shape, group }) => ({ name, shape, group }));
  return { header: { kind, spec: record.spec, meta, tensors: descriptors }, tensors };
}
