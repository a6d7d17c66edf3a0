// Field checks shared by the encoder (the caller's contents) and the decoder (a file's header).
// Each check names the offending field (e.g. "tensors[2].shape") through a caller-supplied `fail`.
import { elementCount, type TensorDescriptor } from "./format.js";

/** Reports a bad field and throws; `problem` reads as a predicate, e.g. "must be a string, found 3". */
export type Fail = (field: string, problem: string) => never;

/** A short rendering of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function" || typeof value === "symbol") return `a ${typeof value}`;
  if (typeof value === "object" && value !== null && !isPlainObject(value) && !Array.isArray(value)) {
    return `a ${value.constructor?.name ?? "object"}`;
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? "an array" : "an object";
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** True for {} literals and Object.create(null) objects. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Fails saying `field` is missing or is not `expected` (e.g. "a non-empty string"). */
export function failExpected(value: unknown, field: string, expected: string, fail: Fail): never {
  return fail(field, value === undefined ? `is missing; expected ${expected}` : `must be ${expected}, found ${describeValue(value)}`);
}

export function checkString(value: unknown, field: string, fail: Fail): string {
  if (typeof value !== "string" || value.length === 0) failExpected(value, field, "a non-empty string", fail);
  return value;
}

export function checkRecord(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (!isPlainObject(value)) failExpected(value, field, "an object", fail);
  return value;
}

/** A copy of `value` if it is an array of non-negative integers whose element count is representable. */
export function checkShape(value: unknown, field: string, fail: Fail): number[] {
  const ok = Array.isArray(value) && value.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0);
  if (!ok) failExpected(value, field, "an array of non-negative integers", fail);
  const shape = [...(value as number[])];
  if (!Number.isSafeInteger(elementCount(shape) * 4)) fail(field, `${describeValue(shape)} holds too many values to store`);
  return shape;
}

/** The name, shape and group of `tensors[index]`, copied out of `entry`. */
export function checkTensorDescriptor(entry: unknown, index: number, fail: Fail): TensorDescriptor {
  const field = `tensors[${index}]`;
  const record = checkRecord(entry, field, fail);
  return {
    name: checkString(record.name, `${field}.name`, fail),
    shape: checkShape(record.shape, `${field}.shape`, fail),
    group: checkString(record.group, `${field}.group`, fail),
  };
}

/** Fails on the first tensor name used twice. */
export function checkUniqueNames(tensors: readonly { name: string }[], fail: Fail): void {
  const seen = new Map<string, number>();
  tensors.forEach(({ name }, index) => {
    const first = seen.get(name);
    if (first !== undefined) {
      fail(`tensors[${index}].name`, `repeats ${JSON.stringify(name)} of tensors[${first}]; tensor names must be unique`);
    }
    seen.set(name, index);
  });
}
