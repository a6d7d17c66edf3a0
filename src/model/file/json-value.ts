// Checks that a value survives JSON unchanged (no undefined, NaN, Infinity, class instances or cycles),
// so that a model's spec and meta read back exactly as they were written.
import { describeValue, isPlainObject, type Fail } from "./fields.js";

const EXPECTED = "the header holds only strings, finite numbers, booleans, null, arrays and plain objects";

/** Fails naming the first path under `field` whose value JSON would drop or alter. */
export function checkJsonValue(value: unknown, field: string, fail: Fail, ancestors = new Set<object>()): void {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(field, `is ${value}; ${EXPECTED}`);
    return;
  }
  if (typeof value !== "object" || (!Array.isArray(value) && !isPlainObject(value))) {
    fail(field, `is ${describeValue(value)}; ${EXPECTED}`);
  }
  if (ancestors.has(value)) fail(field, `refers back to an enclosing value (a cycle); ${EXPECTED}`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJsonValue(value[i], `${field}[${i}]`, fail, ancestors);
  } else {
    for (const [key, item] of Object.entries(value)) checkJsonValue(item, `${field}.${key}`, fail, ancestors);
  }
  ancestors.delete(value);
}
