// How much memory data read into memory may take: the one default limit, and the size check readers make before
// allocating a dense buffer (rows x columns floats), refusing with a DataSizeError that names what implies the size.
import { formatBytes } from "../util/bytes.js";
import { DataError, type DataLocation, DataSizeError, describeLocation } from "./errors.js";

/** The default limit of the bytes one dataset read into memory may take (4 GiB); the CLI's --memory-limit raises it. */
export const DEFAULT_MEMORY_LIMIT_BYTES = 4 * 1024 ** 3;

/** Bytes of one stored value (x and y are Float32Array). */
export const VALUE_BYTES = 4;

/** The shape of a dataset's dense arrays (x: rows x features, y: rows x outputs, floats), and what implies it. */
export interface DenseSize {
  readonly rows: number;
  readonly features: number;
  readonly outputs: number;
  /** What in the file implies the size, in plain words: "feature index 100000000 implies 100000000 features". */
  readonly cause?: string;
}

/** Bytes of x and y for `size`. */
export function denseBytes(size: DenseSize): number {
  return size.rows * (size.features + size.outputs) * VALUE_BYTES;
}

/** The maxBytes option checked: undefined gives DEFAULT_MEMORY_LIMIT_BYTES; else a number > 0 (Infinity: no limit). */
export function memoryLimit(maxBytes: number | undefined, file?: string): number {
  if (maxBytes === undefined) return DEFAULT_MEMORY_LIMIT_BYTES;
  if (typeof maxBytes !== "number" || Number.isNaN(maxBytes) || maxBytes <= 0) {
    throw new DataError(`${file ?? "<data>"}: maxBytes is ${String(maxBytes)}, expected a number of bytes > 0`, { file });
  }
  return maxBytes;
}

/**
 * Throws a DataSizeError at `location` when `size` needs more than `limitBytes`: "big.libsvm line 3: feature index
 * 100000000 implies 100000000 features; the 3 rows would need 1.2 GB, more than the memory limit of 4 GiB".
 */
export function checkDenseSize(size: DenseSize, limitBytes: number, location: DataLocation): void {
  const neededBytes = denseBytes(size);
  if (neededBytes <= limitBytes) return;
  const rows = `${size.rows} row${size.rows === 1 ? "" : "s"}`;
  const shape =
    size.cause === undefined
      ? `the ${rows} of ${plural(size.features, "feature")} and ${plural(size.outputs, "output")}`
      : `${size.cause}; the ${rows}`;
  throw new DataSizeError(
    `${describeLocation(location)}: ${shape} would need ${formatBytes(neededBytes)}, more than the memory limit of ${formatBytes(limitBytes)}`,
    location,
    { neededBytes, limitBytes },
  );
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** A zeroed Float32Array of `count` values, or a DataError naming `file` when the engine cannot allocate it. */
export function allocateFloats(count: number, file?: string): Float32Array {
  try {
    return new Float32Array(count);
  } catch (error) {
    const needs = formatBytes(count * VALUE_BYTES);
    throw new DataError(
      `${file ?? "<data>"}: the data would need ${needs} in one array, more than this engine can allocate`,
      file === undefined ? {} : { file },
      {
        cause: error,
      },
    );
  }
}
