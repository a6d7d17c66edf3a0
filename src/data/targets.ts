// Turning the label read from each row into targets: a class index with one-hot y, or the raw value as one output.
import { oneHot } from "./dataset.js";
import { dataErrorAt, DataError, type DataLocation } from "./errors.js";

/** A strict decimal number: no empty strings, hex, "Infinity" or trailing text. */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The number a field spells, or undefined when it is not a plain decimal number. */
export function parseNumber(text: string): number | undefined {
  return NUMBER.test(text) ? Number(text) : undefined;
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
