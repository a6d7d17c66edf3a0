// Parsers of flag values: each accepts the text commander hands over or throws InvalidArgumentError (a usage error).
import { InvalidArgumentError } from "commander";
import { parseBytes } from "../util/bytes.js";

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export function parseInteger(text: string): number {
  if (!INTEGER.test(text.trim())) throw new InvalidArgumentError("expected an integer.");
  return Number(text);
}

export function parseNumber(text: string): number {
  if (!NUMBER.test(text.trim())) throw new InvalidArgumentError("expected a number.");
  return Number(text);
}

/** "128" or "256,128": layer sizes. */
export function parseIntegerList(text: string): number[] {
  const items = text.split(",").map((s) => s.trim());
  if (items.some((s) => !INTEGER.test(s))) throw new InvalidArgumentError("expected integers separated by commas, like 256,128.");
  return items.map(Number);
}

/** A test-set size: a count (an integer >= 0) or a fraction in (0, 1). */
export function parseHoldout(text: string): number {
  const value = NUMBER.test(text.trim()) ? Number(text) : NaN;
  if (!isHoldout(value)) throw new InvalidArgumentError("expected a count of rows (an integer >= 0) or a fraction in (0, 1).");
  return value;
}

export function isHoldout(value: unknown): value is number {
  return typeof value === "number" && ((Number.isInteger(value) && value >= 0) || (value > 0 && value < 1));
}

/** A column by 0-based index (negative counts from the end) or by header name. */
export function parseColumn(text: string): number | string {
  return INTEGER.test(text.trim()) ? Number(text) : text;
}

/** Columns by 0-based index: "0-7", "1,2,5", or both ("0-3,7"); in the order given, each at most once. */
export function parseColumns(text: string): number[] {
  const columns: number[] = [];
  for (const item of text.split(",").map((s) => s.trim())) {
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(item);
    if (range) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      if (to < from) throw new InvalidArgumentError(`the range ${item} runs backwards; write ${to}-${from}.`);
      for (let j = from; j <= to; j++) columns.push(j);
    } else if (/^\d+$/.test(item)) columns.push(Number(item));
    else throw new InvalidArgumentError("expected 0-based column indices and ranges separated by commas, like 0-7 or 1,2,5.");
  }
  const repeated = columns.find((c, i) => columns.indexOf(c) !== i);
  if (repeated !== undefined) throw new InvalidArgumentError(`column ${repeated} is named twice.`);
  return columns;
}

/** One field-separator character; "\t" (backslash t) or "tab" for a tab. */
export function parseDelimiter(text: string): string {
  const delimiter = text === "\\t" || text.toLowerCase() === "tab" ? "\t" : text;
  if (!isDelimiter(delimiter)) throw new InvalidArgumentError('expected one character, like ";" or \\t for tab.');
  return delimiter;
}

export function isDelimiter(value: unknown): value is string {
  return typeof value === "string" && value.length === 1 && !['"', "\n", "\r"].includes(value);
}

/** A file path to write: anything but empty (an empty one would name the working directory). */
export function parseFilePath(text: string): string {
  if (text.trim() === "") throw new InvalidArgumentError("expected a file path, got an empty one.");
  return text;
}

/** A memory size: "512M", "8G", "1.5GB" (K, M, G, T are 1024-based) or a number of bytes; more than 0. */
export function parseByteSize(text: string): number {
  const bytes = parseBytes(text);
  if (bytes === undefined || bytes <= 0) throw new InvalidArgumentError("expected a size like 512M, 8G or 1.5GB, or a number of bytes.");
  return bytes;
}

/** The largest --hash-features width: indices stay 32-bit. */
export const MAX_HASH_WIDTH = 2 ** 31;

/** A hashed feature count: "2^20" or "1048576", a power of two in [2, 2^31]. */
export function parseHashWidth(text: string): number {
  const trimmed = text.trim();
  const power = /^2\s*(?:\^|\*\*)\s*(\d+)$/.exec(trimmed);
  const value = power ? 2 ** Number(power[1]) : INTEGER.test(trimmed) ? Number(trimmed) : NaN;
  if (!isHashWidth(value)) throw new InvalidArgumentError("expected a power of two like 2^20 or 1048576, from 2 to 2^31.");
  return value;
}

/** A power of two in [2, MAX_HASH_WIDTH]. */
export function isHashWidth(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 2 && value <= MAX_HASH_WIDTH && Number.isInteger(Math.log2(value));
}
