// Turning the label read from each row into targets: a class index with one-hot y, or the raw value as one output.
import { oneHot } from "./dataset.js";
import { dataErrorAt, DataError, type DataLocation } from "./errors.js";

/** A strict decimal number: no empty strings, hex, "Infinity" or trailing text. */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Infinity and NaN as words ("inf", "-Infinity", "NaN"), which some writers put in data files. */
const NON_FINITE_WORD = /^[+-]?(?:inf|infinity|nan)$/i;

/** The number a field spells, or undefined when it is not a plain decimal number (it may be out of range: see storableNumber). */
export function parseNumber(text: string): number | undefined {
  return NUMBER.test(text) ? Number(text) : undefined;
}

/**
 * The number `text` spells when a Float32Array can hold it (finite, within about ±3.4e38; tinier values round to
 * 0 as floats do), else why not, as the end of "expected ...": "a number, got \"abc\"", "a finite number, got
 * \"inf\"", "a finite number; 1e400 is beyond the 32-bit float range (about ±3.4e38)".
 */
export function storableNumber(text: string): number | NumberProblem {
  const value = parseNumber(text);
  if (value === undefined) {
    if (NON_FINITE_WORD.test(text)) return { expected: `a finite number, got ${JSON.stringify(text)}`, nonFinite: true };
    return { expected: `a number, got ${JSON.stringify(text)}`, nonFinite: false };
  }
  if (!Number.isFinite(Math.fround(value))) return { expected: `a finite number; ${text} is beyond the 32-bit float range (about ±3.4e38)`, nonFinite: true };
  return value;
}

/** Why a field is not a storable number: `expected` ends "expected ..."; `nonFinite` when it spells an infinity or a NaN. */
export interface NumberProblem {
  readonly expected: string;
  readonly nonFinite: boolean;
}

/** Checks the `classes` option: undefined (regression) or an integer >= 1. */
export function checkClasses(file: string, classes: number | undefined): void {
  if (classes !== undefined && (!Number.isInteger(classes) || classes < 1)) {
    throw new DataError(`${file}: classes is ${classes}, expected an integer >= 1`, { file });
  }
}

/** Throws unless `value` is an integer class index in [0, classes). */
export function checkClassLabel(value: number, classes: number, location: DataLocation): void {
  if (!Number.isInteger(value) || value < 0 || value >= classes) {
    throw dataErrorAt(location, `expected a class index in [0, ${classes}), got ${value}`);
  }
}

/** y and labels from the raw labels: one-hot over `classes`, or the raw value as one output. */
export function targetsFrom(raw: Float64Array, classes: number | undefined): { y: Float32Array; outputs: number; labels?: Int32Array } {
  if (classes === undefined) return { y: Float32Array.from(raw), outputs: 1 };
  const labels = Int32Array.from(raw);
  return { y: oneHot(labels, classes), outputs: classes, labels };
}
