// Parsers of flag values: each accepts the text commander hands over or throws InvalidArgumentError (a usage error).
import { InvalidArgumentError } from "commander";

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
