// Sparse datasets: each row a list of (feature index, value) pairs in CSR form, for inputs too wide to store dense
// (click logs, hashed n-grams: 2^20 features and more, a few dozen present per row). Construction checks every
// array; row slices share the arrays; a small one can be made dense.
import { InvalidArgumentError } from "../errors.js";
import { createDataset, type Dataset } from "./dataset.js";
import { DataError } from "./errors.js";

/** The arrays of a SparseDataset (before createSparseDataset checks them). */
export interface SparseDatasetParts {
  /** The input width: every index is in [0, features). */
  readonly features: number;
  readonly outputs: number;
  /** Row count + 1 offsets, non-decreasing; rowPtr[0] may be above 0 (a slice of a larger set). */
  readonly rowPtr: Int32Array;
  /** 0-based feature indices; repeated indices in a row add up. */
  readonly indices: Int32Array;
  readonly values: Float32Array;
  /** Rows x outputs targets, row-major. */
  readonly y: Float32Array;
  readonly labels?: Int32Array;
  readonly lines?: Int32Array;
  readonly name?: string;
}

/** Rows of (index, value) pairs: row r's pairs are positions [rowPtr[r], rowPtr[r + 1]) of indices and values. */
export interface SparseDataset extends SparseDatasetParts {
  readonly sparse: true;
  readonly size: number;
}

/** Whether a dataset is sparse. */
export function isSparse(data: Dataset | SparseDataset): data is SparseDataset {
  return (data as SparseDataset).sparse === true;
}

const isInt = (v: unknown, min: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min;

/**
 * A SparseDataset after checking the parts: features and outputs integers >= 1 (InvalidArgumentError); rowPtr
 * non-decreasing and within indices; indices in [0, features) and values finite, naming the row and the position
 * (and the source line when known) otherwise (DataError); y, labels and lines one per row. Arrays are kept, not copied.
 */
export function createSparseDataset(parts: SparseDatasetParts): SparseDataset {
  const what = parts.name ?? "sparse dataset";
  if (!isInt(parts.features, 1)) throw new InvalidArgumentError(`${what}: features must be an integer >= 1, got ${parts.features}`);
  if (!isInt(parts.outputs, 1)) throw new InvalidArgumentError(`${what}: outputs must be an integer >= 1, got ${parts.outputs}`);
  for (const [name, array, type] of [["rowPtr", parts.rowPtr, Int32Array], ["indices", parts.indices, Int32Array], ["values", parts.values, Float32Array], ["y", parts.y, Float32Array]] as const) {
    if (!(array instanceof type)) throw new InvalidArgumentError(`${what}: ${name} must be a ${type.name}`);
  }
  const size = parts.rowPtr.length - 1;
  if (size < 0) throw new InvalidArgumentError(`${what}: rowPtr must hold size + 1 offsets, got an empty array`);
  if (parts.indices.length !== parts.values.length) {
    throw new InvalidArgumentError(`${what}: indices has ${parts.indices.length} entries but values ${parts.values.length}`);
  }
  if (parts.y.length !== size * parts.outputs) {
    throw new InvalidArgumentError(`${what}: y has ${parts.y.length} values; expected ${size} rows x ${parts.outputs} outputs = ${size * parts.outputs}`);
  }
  for (const [name, array] of [["labels", parts.labels], ["lines", parts.lines]] as const) {
    if (array !== undefined && (!(array instanceof Int32Array) || array.length !== size)) throw new InvalidArgumentError(`${what}: ${name} must be an Int32Array of one entry per row (${size})`);
  }
  checkRows(parts, size, what);
  for (let i = 0; i < parts.y.length; i++) {
    if (!Number.isFinite(parts.y[i]!)) throw rowError(parts, Math.floor(i / parts.outputs), what, `target ${i % parts.outputs} is ${parts.y[i]}`);
  }
  return { sparse: true, size, ...parts };
}

function rowError(parts: SparseDatasetParts, row: number, what: string, problem: string): DataError {
  const line = parts.lines?.[row];
  return new DataError(`${what}: row ${row}${line !== undefined ? ` (line ${line})` : ""}: ${problem}`, line !== undefined ? { line } : {});
}

function checkRows(parts: SparseDatasetParts, size: number, what: string): void {
  const { rowPtr, indices, values, features } = parts;
  if (rowPtr[0]! < 0 || rowPtr[size]! > indices.length) {
    throw new InvalidArgumentError(`${what}: rowPtr spans [${rowPtr[0]}, ${rowPtr[size]}), outside the ${indices.length} entries`);
  }
  for (let r = 0; r < size; r++) {
    const start = rowPtr[r]!;
    const end = rowPtr[r + 1]!;
    if (end < start) throw new InvalidArgumentError(`${what}: rowPtr decreases at row ${r} (${start} then ${end})`);
    for (let k = start; k < end; k++) {
      const index = indices[k]!;
      if (!(index >= 0 && index < features)) throw rowError(parts, r, what, `feature index ${index} at position ${k - start} is outside [0, ${features})`);
      if (!Number.isFinite(values[k]!)) throw rowError(parts, r, what, `the value of feature ${index} is ${values[k]}`);
    }
  }
}

/** Rows [start, end) sharing the arrays (rowPtr is a view; the offsets stay absolute). */
export function sparseRows(data: SparseDataset, start: number, end: number): SparseDataset {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= data.size)) {
    throw new InvalidArgumentError(`sparseRows: rows ${start}..${end} are not a range of the ${data.size} rows`);
  }
  return {
    ...data,
    size: end - start,
    rowPtr: data.rowPtr.subarray(start, end + 1),
    y: data.y.subarray(start * data.outputs, end * data.outputs),
    ...(data.labels ? { labels: data.labels.subarray(start, end) } : {}),
    ...(data.lines ? { lines: data.lines.subarray(start, end) } : {}),
  };
}

/** Present pairs per row, on average. */
export function meanRowLength(data: SparseDataset): number {
  return data.size === 0 ? 0 : (data.rowPtr[data.size]! - data.rowPtr[0]!) / data.size;
}

/** The same rows as a dense Dataset; refuses (InvalidArgumentError) more than `maxValues` inputs (default 2^26). */
export function sparseToDense(data: SparseDataset, maxValues = 2 ** 26): Dataset {
  const cells = data.size * data.features;
  if (cells > maxValues) {
    throw new InvalidArgumentError(`sparseToDense: ${data.size} rows x ${data.features} features = ${cells} values, more than ${maxValues}; keep the data sparse`);
  }
  const x = new Float32Array(cells);
  for (let r = 0; r < data.size; r++) {
    for (let k = data.rowPtr[r]!; k < data.rowPtr[r + 1]!; k++) {
      const at = r * data.features + data.indices[k]!;
      x[at] = x[at]! + data.values[k]!;
    }
  }
  return createDataset({
    features: data.features, outputs: data.outputs, x, y: data.y,
    ...(data.labels ? { labels: data.labels } : {}), ...(data.lines ? { lines: data.lines } : {}), ...(data.name ? { name: data.name } : {}),
  });
}
