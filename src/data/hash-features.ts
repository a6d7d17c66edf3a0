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
   *  row's label must be one) or the label column is given by name, or when it is the header of `layout` (see
   *  also ignoreLabels). */
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
  /** The layout another file settled (the training file's, recorded in a model file), which this one must have:
   *  default none, the first line settles it. */
  readonly layout?: ExpectedLayout;
  /** The label fields are not read, each row's label is 0 (for predicting); default false. With `layout`, the rows
   *  may then also lack the label column: one field fewer, the other columns in their order. header "auto" then
   *  takes a first line for a header when it is the expected one (without the label's name) or has no number. */
  readonly ignoreLabels?: boolean;
}

/** The columns rows must have when another file settled them. */
export interface ExpectedLayout {
  /** Every line (the header too) has this many fields. */
  readonly fields: number;
  /** A first line with these fields is the header (even with header "auto"), and a header must be these names;
   *  absent: the other file had no header, and any header is taken as it is detected. */
  readonly header?: readonly string[];
  /** Where the layout comes from, in messages: "as in clicks.csv, the training file of m.dpnn". */
  readonly from: string;
}

/** What the first line of a file settles: the field count, the header, the label column and the hashed columns. */
export interface HashedLayout {
  readonly fields: number;
  readonly header?: readonly string[];
  /** 0-based. */
  readonly labelColumn: number;
  /** 0-based, the columns hashed (their positions are the hash keys). */
  readonly featureColumns: readonly number[];
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

/**
 * The layout the first non-blank, non-comment line of `path` settles under `options` (with the field count of
 * `options.layout` checked), reading no further: what a model file records so that other files hash the same way.
 */
export async function readHashedLayout(path: string, options: HashedCsvOptions): Promise<HashedLayout> {
  const hasher = new RowHasher(path, options);
  for await (const { line, text } of readLines(path)) {
    hasher.fields(text, line);
    const settled = hasher.settled();
    if (settled) return settled;
  }
  throw new DataError(`${path}: no data rows`, { file: path });
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
  /** The label column and the hashed columns, counted as the hash keys count them (with the label column). */
  readonly label: number;
  readonly columns: readonly number[];
  /** Per hashed column: its field in a line (its column, or one less past the label in rows without it). */
  readonly fieldOf: Int32Array;
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
      const expected = this.options.layout;
      const from = expected && expected.fields === this.layout.width ? expected.from : `as on line ${this.layout.firstLine}`;
      throw new DataError(`${describeLocation({ file: this.path, line })} has ${fields.length} fields, expected ${this.layout.width} (${from})`, { file: this.path, line });
    }
    return fields;
  }

  /** The layout once the first line has settled it. */
  settled(): HashedLayout | undefined {
    const layout = this.layout;
    if (!layout) return undefined;
    return { fields: layout.width, ...(layout.header ? { header: layout.header } : {}), labelColumn: layout.label, featureColumns: layout.columns };
  }

  /** Appends one row: its label, then its pairs merged by index, ascending. */
  hashRow(fields: readonly string[], line: number, rows: SparseRows): void {
    const layout = this.layout!;
    rows.startRow(this.options.ignoreLabels ? 0 : this.label(fields[layout.label]!, line), line);
    let count = 0;
    for (let k = 0; k < layout.columns.length; k++) {
      const column = layout.fieldOf[k]!;
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

  /** The layout from the first non-blank line (checked against options.layout when given). */
  private settle(fields: string[], line: number): Layout {
    const names = { labelColumn: "labelColumn", featureColumns: "featureColumns", ...this.options.optionNames };
    const given = this.options.labelColumn ?? HASHED_CSV_DEFAULTS.labelColumn;
    const unlabelled = this.isUnlabelled(fields.length, given, line);
    const width = unlabelled ? fields.length + 1 : fields.length; // the columns the hash keys count
    const byIndex = typeof given === "number" ? resolveIndex(this.path, given, width, names.labelColumn) : undefined;
    const header = this.headerOf(fields, line, byIndex, unlabelled);
    const label = byIndex ?? resolveName(this.path, given as string, header, names.labelColumn);
    const columns = this.options.featureColumns ?? Array.from({ length: width }, (_, j) => j).filter((j) => j !== label);
    checkColumns(this.path, line, columns, width, label, names);
    const size = Math.max(columns.length, 1);
    this.pairIndex = new Int32Array(size);
    this.pairValue = new Float64Array(size);
    return {
      width: fields.length, firstLine: line, ...(header ? { header } : {}), label, columns,
      fieldOf: Int32Array.from(columns, (c) => (unlabelled && c > label ? c - 1 : c)),
      numeric: Int32Array.from(columns, (c) => numericFeature(this.bits, this.seed, c)),
      categorySeed: Uint32Array.from(columns, (c) => hash2(this.seed, c)),
    };
  }

  /** Whether the first line's `count` fields are the expected layout's without its label column (ignoreLabels only);
   *  any count other than the expected one (or that) is a DataError naming the line. */
  private isUnlabelled(count: number, labelColumn: number | string, line: number): boolean {
    const expected = this.options.layout;
    if (!expected || count === expected.fields) return false;
    const optional = this.options.ignoreLabels === true && typeof labelColumn === "number";
    if (optional && count === expected.fields - 1) return true;
    const or = optional ? `, or ${expected.fields - 1} without its label column` : "";
    throw new DataError(`${describeLocation({ file: this.path, line })} has ${count} fields, expected ${expected.fields} (${expected.from})${or}`, { file: this.path, line });
  }

  /** The first line's fields when they are a header (checked against the expected one), else undefined. */
  private headerOf(fields: string[], line: number, labelIndex: number | undefined, unlabelled: boolean): string[] | undefined {
    const expected = this.options.layout;
    const names = expected?.header && (unlabelled ? expected.header.filter((_, j) => j !== labelIndex) : expected.header);
    const known = names !== undefined && sameFields(fields, names);
    const option = this.options.header ?? HASHED_CSV_DEFAULTS.header;
    const numberless = () => fields.every((field) => parseNumber(field) === undefined);
    const detected = known || (this.options.ignoreLabels ? numberless() : labelIndex === undefined || parseNumber(fields[labelIndex]!) === undefined);
    if (!(option === true || (option === "auto" && detected))) return undefined;
    if (names && !known) throw headerMismatch(this.path, line, fields, names, expected!.from);
    return fields;
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

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((field, j) => field === b[j]);
}

/** A header unlike the expected one: the first column whose name differs. */
function headerMismatch(path: string, line: number, header: readonly string[], expected: readonly string[], from: string): DataError {
  const j = header.findIndex((name, k) => name !== expected[k]);
  return dataErrorAt(
    { file: path, line, column: j + 1 },
    `the header names column ${j} ${JSON.stringify(header[j])}, expected ${JSON.stringify(expected[j])} (${from}); the columns are hashed by their position, so they must come in the same order`,
  );
}

function unquote(field: string): string {
  const trimmed = field.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1).trim() : trimmed;
}
