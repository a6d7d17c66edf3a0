// What a value is, in a few plain words, for the "expected X, got Y" part of argument errors. A leaf module.

function article(word: string): string {
  return /^[AEIOaeio]/.test(word) ? `an ${word}` : `a ${word}`;
}

/**
 * A short description of `value`: "undefined", "null", "the number 3", "a string", "true", "an array of 4",
 * "a Float32Array of 12", "a Map", "an object", "a function". Never the value's whole contents.
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined || typeof value === "boolean") return String(value);
  if (typeof value === "number") return `the number ${value}`;
  if (typeof value === "string") return value.length <= 20 ? `the string ${JSON.stringify(value)}` : "a string";
  if (typeof value === "function") return "a function";
  if (typeof value !== "object") return article(typeof value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const length = (value as { length?: number }).length ?? value.byteLength;
    return `${article(value.constructor.name)} of ${length}`;
  }
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== "Object" ? article(name) : "an object";
}
