// Hashed features from CSV columns (the hashing trick): every row becomes sparse (index, value) pairs in [0, 2^bits),
// read whole (readCsvHashed) or as a stream of chunks (streamCsvHashed) for files larger than memory. A numeric
// field v of column c is the pair (hash2(seed, c) mod 2^bits, v); any other field is the category (c, v): the pair
// (hashString(hash2(seed, c), v) mod 2^bits, 1). Pairs of a row that land on one index add up (one pair each, in
// ascending index order). Columns are hashed by their 0-based position, so a file with a header hashes as without.
import { basename } from "node:path";
import { hash2, hashString } from "../util/hash.js";
import { dataErrorAt, DataError, DataSizeError, describeLocation, type DataLocation } from "./errors.js";
import { readLines } from "./files.js";
import { SparseRows } from "./libsvm.js";
import { LIBSVM_STREAM_DEFAULTS } from "./libsvm-stream.js";
import { memoryLimit } from "./limits.js";
import type { SparseDataset } from "./sparse.js";
import { checkClasses, checkClassLabel, parseNumber, storableNumber } from "./targets.js";

/** Defaults of HashedCsvOptions. */
export const HASHED_CSV_DEFAULTS = {
  labelColumn: -1,
  header: "auto",
  delimiter: ",",
  seed: 0,
  chunkRows: LIBSVM_STREAM_DEFAULTS.chunkRows,
} as const;

/** The most hash bits: indices stay below 2^31, a 32-bit index. */
export const MAX_HASH_BITS = 31;

/** How to hash a CSV file's columns into sparse rows. */
export interface HashedCsvOptions {
  /** The width: features are [0, 2^bits); an integer in [1, MAX_HASH_BITS]. */
  readonly bits: number;
  /** 0-based index (negative counts from the end) or header name of the label column; default -1, the last. */
  readonly labelColumn?: number | string;
  /** 0-based indices of the columns to hash; default every column but the label. */
  readonly featureColumns?: readonly number[];
  /** When set, labels are class indices in [0, classes) and y is one-hot; otherwise y is the label value. */
  readonly classes?: number;
  /** true: the first line is a header; "auto" (default): it is one when its label field is not a number (a data
   *  row's label must be one) or the label column is given by name. */
  readonly header?: boolean | "auto";
  /** Field separator, one character; default ",". */
  readonly delimiter?: string;
  /** Lines starting with this (after leading blanks) are skipped, like blank lines; default: none. */
  readonly comment?: string;
  /** Seeds the hashes; default 0. */
  readonly seed?: number;
  /** readCsvHashed: the most bytes the rows may take (8 a pair, 4 a target value, 12 a row); default
   *  DEFAULT_MEMORY_LIMIT_BYTES (src/data/limits.ts). */
  readonly maxBytes?: number;
  /** How messages name the options (e.g. the CLI's flags); default: the option names. */
  readonly optionNames?: Partial<Record<"bits" | "labelColumn" | "featureColumns" | "classes", string>>;
}

/** How to stream a CSV file as hashed sparse chunks. */
export interface HashedCsvStreamOptions extends HashedCsvOptions {
  /** The most rows a chunk holds; default HASHED_CSV_DEFAULTS.chunkRows. */
  readonly chunkRows?: number;
  /** Which data rows to keep, by their 0-based number among the data rows (the header, blank and comment lines do
   *  not count); a row not kept is not hashed. Default: every row. */
  readonly select?: (row: number) => boolean;
}

/** The feature index of numeric values of column `column`. */
export function numericFeature(bits: number, seed: number, column: number): number {
  return hash2(seed, column) & mask(bits);
}

/** The feature index of the category `value` of column `column`. */
export function categoryFeature(bits: number, seed: number, column: number, value: string): number {
  return hashString(hash2(seed, column), value) & mask(bits);
}

/** The low `bits` bits (bits <= MAX_HASH_BITS, so an index stays a non-negative 32-bit integer). */
const mask = (bits: number): number => 2 ** bits - 1;

/**
 * The whole file as a SparseDataset of 2^bits features; `lines` holds each row's line. Refuses (DataSizeError
 * naming the line) rows that would need more than `maxBytes`, and (DataError naming the file, line and column)
 * a field count unlike the first line's, a label that is not a number (or not a class index with `classes`), a
 * number beyond the float range.
 */
export async function readCsvHashed(path: string, options: HashedCsvOptions): Promise<SparseDataset> {
  const limit = memoryLimit(options.maxBytes, path);
  const outputs = options.classes ?? 1;
  const check = (rows: SparseRows, at: DataLocation) => {
    const neededBytes = 8 * rows.indices.length + (4 * outputs + 12) * rows.size;
    if (neededBytes > limit) {
      throw new DataSizeError(`${describeLocation(at)}: the hashed rows read so far need ${neededBytes} bytes, more than the limit of ${limit}`, at, { neededBytes, limitBytes: limit });
    }
  };
  const hasher = new RowHasher(path, options);
  for await (const rows of hashedChunks(path, hasher, Number.POSITIVE_INFINITY, undefined, check)) return hasher.build(rows);
  throw new DataError(`${path}: no data rows`, { file: path });
}

/**
 * The file's data rows hashed, as SparseDatasets of at most `chunkRows` rows (none empty) in file order, each with
 * its rows' `lines`; memory holds one chunk. Errors as readCsvHashed's, at the first bad row (earlier chunks have
 * been yielded); a file without data rows is a DataError (a `select` keeping none yields nothing).
 */
export async function* streamCsvHashed(path: string, options: HashedCsvStreamOptions): AsyncGenerator<SparseDataset> {
  const chunkRows = options.chunkRows ?? HASHED_CSV_DEFAULTS.chunkRows;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new DataError(`${path}: chunkRows is ${chunkRows}, expected an integer >= 1`, { file: path });
  const hasher = new RowHasher(path, options);
  for await (const rows of hashedChunks(path, hasher, chunkRows, options.select)) yield hasher.build(rows);
}

/** Reads the lines, hashing the selected data rows into chunks of `chunkRows` rows; `check` runs after each row. */
async function* hashedChunks(
  path: string, hasher: RowHasher, chunkRows: number, select: ((row: number) => boolean) | undefined, check?: (rows: SparseRows, at: DataLocation) => void,
): AsyncGenerator<SparseRows> {
  let rows = new SparseRows();
  let dataRows = 0;
  for await (const { line, text } of readLines(path)) {
    const fields = hasher.fields(text, line);
    if (fields === undefined) continue;
    const row = dataRows++;
    if (select && !select(row)) continue;
    hasher.hashRow(fields, line, rows);
    check?.(rows, { file: path, line });
    if (rows.size === chunkRows) {
      yield rows;
      rows = new SparseRows();
    }
  }
  if (dataRows === 0) throw new DataError(`${path}: no data rows`, { file: path });
  if (rows.size > 0) yield rows;
}

/** The columns of a file, settled by its first line: the width, the header, the label column and the hashed columns. */
interface Layout {
  readonly width: number;
  readonly firstLine: number;
  readonly header?: readonly string[];
  readonly label: number;
  readonly columns: readonly number[];
  /** Per hashed column: its numeric feature index and its category hash seed. */
  readonly numeric: Int32Array;
  readonly categorySeed: Uint32Array;
}

/** Splits lines into fields and hashes rows once the first line has settled the layout. */
class RowHasher {
  private readonly bits: number;
  private readonly seed: number;
  private readonly delimiter: string;
  private layout: Layout | undefined;
  private pairIndex = new Int32Array(16);
  private pairValue = new Float64Array(16);

  constructor(
    private readonly path: string,
    private readonly options: HashedCsvOptions,
  ) {
    this.bits = checkBits(path, options);
    checkClasses(path, options.classes);
    this.seed = (options.seed ?? HASHED_CSV_DEFAULTS.seed) >>> 0;
    this.delimiter = options.delimiter ?? HASHED_CSV_DEFAULTS.delimiter;
    if (this.delimiter.length !== 1 || ['"', "\n", "\r"].includes(this.delimiter)) {
      throw new DataError(`${path}: delimiter is ${JSON.stringify(this.delimiter)}, expected one character (not a quote or a line break)`, { file: path });
    }
  }

  /** A data line's fields (unquoted); undefined for a blank, comment or header line. */
  fields(text: string, line: number): string[] | undefined {
    const trimmed = text.trim();
    const comment = this.options.comment;
    if (trimmed === "" || (comment !== undefined && comment !== "" && trimmed.startsWith(comment))) return undefined;
    const fields = text.split(this.delimiter).map(unquote);
    if (!this.layout) {
      this.layout = this.settle(fields, line);
      if (this.layout.header) return undefined;
    }
    if (fields.length !== this.layout.width) {
      throw new DataError(`${describeLocation({ file: this.path, line })} has ${fields.length} fields, expected ${this.layout.width} (as on line ${this.layout.firstLine})`, { file: this.path, line });
    }
    return fields;
  }

  /** Appends one row: its label, then its pairs merged by index, ascending. */
  hashRow(fields: readonly string[], line: number, rows: SparseRows): void {
    const layout = this.layout!;
    rows.startRow(this.label(fields[layout.label]!, line), line);
    let count = 0;
    for (let k = 0; k < layout.columns.length; k++) {
      const column = layout.columns[k]!;
      const field = fields[column]!;
      if (field === "") continue; // missing: no pair
      const value = parseNumber(field) === undefined ? undefined : storableNumber(field);
      if (typeof value === "object") throw dataErrorAt(this.at(line, column), `expected ${value.expected}`);
      if (value === 0) continue;
      this.pairIndex[count] = value === undefined ? hashString(layout.categorySeed[k]!, field) & mask(this.bits) : layout.numeric[k]!;
      this.pairValue[count++] = value ?? 1;
    }
    mergeSorted(this.pairIndex, this.pairValue, count, rows);
  }

  /** The rows read as a SparseDataset of 2^bits features. */
  build(rows: SparseRows): SparseDataset {
    return rows.build(2 ** this.bits, this.options.classes, basename(this.path), 0);
  }

  private label(field: string, line: number): number {
    const label = storableNumber(field);
    const at = this.at(line, this.layout!.label);
    if (typeof label !== "number") throw dataErrorAt(at, `expected a numeric label: ${label.expected}`);
    if (this.options.classes !== undefined) checkClassLabel(label, this.options.classes, at);
    return label;
  }

  private at(line: number, column: number): DataLocation {
    const name = this.layout?.header?.[column];
    return { file: this.path, line, column: column + 1, ...(name !== undefined ? { field: name } : {}) };
  }

  /** The layout from the first non-blank line. */
  private settle(fields: string[], line: number): Layout {
    const width = fields.length;
    const names = { labelColumn: "labelColumn", featureColumns: "featureColumns", ...this.options.optionNames };
    const given = this.options.labelColumn ?? HASHED_CSV_DEFAULTS.labelColumn;
    const headerOption = this.options.header ?? HASHED_CSV_DEFAULTS.header;
    const byIndex = typeof given === "number" ? resolveIndex(this.path, given, width, names.labelColumn) : undefined;
    const isHeader = headerOption === true || (headerOption === "auto" && (byIndex === undefined || parseNumber(fields[byIndex]!) === undefined));
    const header = isHeader ? fields : undefined;
    const label = byIndex ?? resolveName(this.path, given as string, header, names.labelColumn);
    const columns = this.options.featureColumns ?? Array.from({ length: width }, (_, j) => j).filter((j) => j !== label);
    checkColumns(this.path, line, columns, width, label, names);
    const size = Math.max(columns.length, 1);
    this.pairIndex = new Int32Array(size);
    this.pairValue = new Float64Array(size);
    return {
      width, firstLine: line, ...(header ? { header } : {}), label, columns,
      numeric: Int32Array.from(columns, (c) => numericFeature(this.bits, this.seed, c)),
      categorySeed: Uint32Array.from(columns, (c) => hash2(this.seed, c)),
    };
  }
}

/** Pushes the first `count` pairs sorted by index, those of one index as one pair of their summed values. */
function mergeSorted(index: Int32Array, value: Float64Array, count: number, rows: SparseRows): void {
  for (let i = 1; i < count; i++) {
    const ki = index[i]!;
    const vi = value[i]!;
    let j = i - 1;
    for (; j >= 0 && index[j]! > ki; j--) {
      index[j + 1] = index[j]!;
      value[j + 1] = value[j]!;
    }
    index[j + 1] = ki;
    value[j + 1] = vi;
  }
  for (let i = 0; i < count; ) {
    let sum = value[i]!;
    let j = i + 1;
    for (; j < count && index[j] === index[i]; j++) sum += value[j]!;
    rows.push(index[i]!, sum);
    i = j;
  }
}

function checkBits(path: string, options: HashedCsvOptions): number {
  const { bits } = options;
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_HASH_BITS) {
    throw new DataError(`${path}: ${options.optionNames?.bits ?? "bits"} is ${bits}, expected an integer in [1, ${MAX_HASH_BITS}] (2^bits features)`, { file: path });
  }
  return bits;
}

function resolveIndex(path: string, column: number, fields: number, flag: string): number {
  if (!Number.isInteger(column) || column < -fields || column >= fields) {
    throw new DataError(`${path}: ${flag} is ${column}, expected an integer in [${-fields}, ${fields - 1}] for ${fields} fields`, { file: path });
  }
  return column < 0 ? fields + column : column;
}

function resolveName(path: string, name: string, header: readonly string[] | undefined, flag: string): number {
  if (!header) throw new DataError(`${path}: ${flag} ${JSON.stringify(name)} names a header column, but the file has no header`, { file: path });
  const index = header.indexOf(name);
  if (index < 0) throw new DataError(`${path}: ${flag}: no header column is named ${JSON.stringify(name)}; the header has ${header.map((h) => JSON.stringify(h)).join(", ")}`, { file: path });
  return index;
}

function checkColumns(path: string, line: number, columns: readonly number[], width: number, label: number, names: { labelColumn: string; featureColumns: string }): void {
  if (columns.length === 0) throw dataErrorAt({ file: path, line }, `no column to hash: the rows have ${width} field${width === 1 ? "" : "s"}, one the label (${names.labelColumn})`);
  for (const j of columns) {
    if (!Number.isInteger(j) || j < 0 || j >= width) throw dataErrorAt({ file: path, line }, `${names.featureColumns} names column ${j}, but the rows have ${width} columns (0-${width - 1})`);
    if (j === label) throw dataErrorAt({ file: path, line }, `${names.featureColumns} includes column ${j}, the label column (${names.labelColumn})`);
  }
}

function unquote(field: string): string {
  const trimmed = field.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1).trim() : trimmed;
}
