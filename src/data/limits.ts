// How much memory data read into memory may take: the one default limit, and the size check readers make before
// allocating a dense buffer (rows x columns floats), refusing with a DataSizeError that names what implies the size.
import { DataError, type DataLocation, DataSizeError, describeLocation } from "./errors.js";

/** The default limit of the bytes one dataset read into memory may take (4 GiB); the CLI's --memory-limit raises it. */
export const DEFAULT_MEMORY_LIMIT_BYTES = 4 * 1024 ** 3;

/** Bytes of one stored value (x and y are Float32Array). */
export const VALUE_BYTES = 4;

/** What a dense buffer of `rows` x `columns` floats would take, and what in the file implies that size. */
export interface DenseSize {
  readonly rows: number;
  readonly columns: number;
  /** What implies the size, in plain words: "feature index 100000000 implies 100000000 features". */
  readonly cause: string;
}

/** The maxBytes option checked: undefined gives DEFAULT_MEMORY_LIMIT_BYTES; else a number > 0 (Infinity: no limit). */
export function memoryLimit(maxBytes: number | undefined, file?: string): number {
  if (maxBytes === undefined) return DEFAULT_MEMORY_LIMIT_BYTES;
  if (typeof maxBytes !== "number" || Number.isNaN(maxBytes) || maxBytes <= 0) {
    throw new DataError(`${file ?? "<data>"}: maxBytes is ${String(maxBytes)}, expected a number of bytes > 0`, { file });
  }
  return maxBytes;
}

/** Throws a DataSizeError when `size` needs more than `limitBytes` (the message names the location and the sizes). */
export function checkDenseSize(size: DenseSize, limitBytes: number, location: DataLocation): void {
  const neededBytes = size.rows * size.columns * VALUE_BYTES;
  if (neededBytes <= limitBytes) return;
  const rows = `${size.rows} row${size.rows === 1 ? "" : "s"}`;
  throw new DataSizeError(
    `${describeLocation(location)}: ${size.cause}; the ${rows} would need ${formatSize(neededBytes)}, more than the memory limit of ${formatSize(limitBytes)}`,
    location,
    { neededBytes, limitBytes },
  );
}

/** "1.2 GB", "512 MB", "3 kB" (powers of 1024, one decimal below 10). */
export function formatSize(bytes: number): string {
  const units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} bytes`;
  const text = value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value).toString();
  return `${text} ${units[unit]}`;
}
