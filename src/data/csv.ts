// Numeric CSV reader streaming by lines: header detection, delimiter and comment lines, a label column by index or
// name (or none), the feature columns to keep, one-hot classes.
import { basename } from "node:path";
import { createDataset, type Dataset } from "./dataset.js";
import { dataErrorAt, DataError, describeLocation } from "./errors.js";
import { readLines } from "./files.js";
import { Growable } from "./growable.js";
import { checkDenseSize, type DenseSize, memoryLimit } from "./limits.js";
import { checkClasses, checkClassLabel, parseNumber, storableNumber, targetsFrom } from "./targets.js";

/** How to read the rows of a numeric CSV file. */
export interface CsvRowOptions {
  /** true: the first line is a header; "auto" (default): it is one when its fields are not all numbers. */
  readonly header?: boolean | "auto";
  /** Field separator: one character, "," by default ("\t" for tab-separated files). */
  readonly delimiter?: string;
  /** Lines starting with this (after leading blanks) are skipped, like blank lines; default: none. */
  readonly comment?: string;
  /** How messages name the options (e.g. the CLI's flags "--delimiter", "--features"); default: the option names. */
  readonly optionNames?: Partial<Record<"delimiter" | "comment" | "labelColumn" | "featureColumns" | "classes", string>>;
}

/** How to turn a numeric CSV file into a Dataset. */
export interface CsvOptions extends CsvRowOptions {
  /** 0-based index (negative counts from the end) or header name of the label column; default -1, the last;
   * null: no label column (every column may be a feature, and y is a copy of x, as an auto-encoder's targets). */
  readonly labelColumn?: number | string | null;
  /** 0-based indices of the feature columns, in order; default: every column but the label column. */
  readonly featureColumns?: readonly number[];
  /** When set, labels are class indices in [0, classes) and y is one-hot; otherwise y is the label value. */
  readonly classes?: number;
  /** The most bytes x and y may take (4 bytes a value); default DEFAULT_MEMORY_LIMIT_BYTES (src/data/limits.ts). */
  readonly maxBytes?: number;
}

/** One data line: its 1-based number in the file and its fields as numbers. */
export interface CsvRow {
  readonly line: number;
  readonly values: number[];
}

type CsvRecord = { kind: "header"; line: number; names: string[] } | ({ kind: "row"; text: string } & CsvRow);

/** Numbers joined by another separator ("1 2 3", "1;2"): data read with the wrong delimiter, not a header name. */
const OTHER_SEPARATOR = /^[-+\d.eE]+(?:\s*[\s;|:]\s*[-+\d.eE]+)+$/;

/** True when a first line's fields make it a header: not all of them are numbers (nor numbers joined by another separator). */
export function isHeaderRow(fields: readonly string[]): boolean {
  return !fields.every((f) => parseNumber(f) !== undefined || OTHER_SEPARATOR.test(f));
}

/** The data rows, streamed; every row has as many fields as the first line, each a number. */
export async function* readCsvRows(path: string, options: CsvRowOptions = {}): AsyncGenerator<CsvRow> {
  for await (const record of csvRecords(path, options)) {
    if (record.kind === "row") yield { line: record.line, values: record.values };
  }
}

/** The header's names, or undefined when the file has none (as `header` says, or detected as readCsvRows does). */
export async function readCsvHeader(path: string, options: CsvRowOptions = {}): Promise<string[] | undefined> {
  for await (const record of csvRecords(path, options)) return record.kind === "header" ? record.names : undefined;
  return undefined;
}

/**
 * The whole file as a Dataset: the feature columns (default: every column but the label column) and the label;
 * `lines` holds each row's line. Refuses (DataSizeError, as soon as the growing rows pass it) data whose x and y
 * would need more than `maxBytes`.
 */
export async function readCsv(path: string, options: CsvOptions = {}): Promise<Dataset> {
  checkClasses(path, options.classes);
  const limit = memoryLimit(options.maxBytes, path);
  const noLabel = options.labelColumn === null;
  const x = new Growable((n) => new Float32Array(n));
  const raw = new Growable((n) => new Float64Array(n));
  const lines = new Growable((n) => new Int32Array(n));
  let header: string[] | undefined;
  let columns: { label: number; features: readonly number[] } | undefined;
  for await (const record of csvRecords(path, options)) {
    if (record.kind === "header") {
      header = record.names;
      continue;
    }
    const { line, values } = record;
    columns ??= resolveColumns(path, line, options, values.length, header, record.text);
    checkDenseSize(rowsSize(lines.length + 1, columns.features.length, noLabel, options), limit, { file: path, line });
    if (!noLabel) {
      const label = values[columns.label]!;
      if (options.classes !== undefined) {
        checkClassLabel(label, options.classes, { file: path, line, column: columns.label + 1, ...fieldName(header, columns.label) });
      }
      raw.push(label);
    }
    for (const j of columns.features) x.push(values[j]!);
    lines.push(line);
  }
  if (!columns) throw new DataError(`${path}: no data rows`, { file: path });
  const features = columns.features.length;
  const name = basename(path);
  const xs = x.toArray();
  const common = { features, x: xs, lines: lines.toArray(), name };
  if (noLabel) return createDataset({ ...common, outputs: features, y: xs.slice() });
  return createDataset({ ...common, ...targetsFrom(raw.toArray(), options.classes) });
}

/** The dense size of `rows` rows; the cause names the classes option when its one-hot outputs outweigh the features. */
function rowsSize(rows: number, features: number, noLabel: boolean, options: CsvOptions): DenseSize {
  const outputs = noLabel ? features : (options.classes ?? 1);
  const classes = options.optionNames?.classes ?? "classes";
  return { rows, features, outputs, ...(outputs > features && !noLabel ? { cause: `${classes} ${outputs} implies ${outputs} outputs per row` } : {}) };
}

/** The header (if any) then each data row, checked for field count and numbers; blank and comment lines are skipped. */
async function* csvRecords(path: string, options: CsvRowOptions): AsyncGenerator<CsvRecord> {
  const delimiter = checkDelimiter(path, options);
  const comment = options.comment === undefined || options.comment === "" ? undefined : options.comment;
  const headerOption = options.header ?? "auto";
  let width: { fields: number; line: number; text: string } | undefined;
  let header: string[] | undefined;
  for await (const { line, text } of readLines(path)) {
    const trimmed = text.trim();
    if (trimmed === "" || (comment !== undefined && trimmed.startsWith(comment))) continue;
    const fields = text.split(delimiter).map(unquote);
    if (!width) {
      width = { fields: fields.length, line, text: trimmed };
      if (headerOption === true || (headerOption === "auto" && isHeaderRow(fields))) {
        header = fields;
        yield { kind: "header", line, names: fields };
        continue;
      }
    }
    if (fields.length !== width.fields) {
      throw new DataError(
        `${describeLocation({ file: path, line })} has ${fields.length} fields, expected ${width.fields} (as on line ${width.line})${commentHint(width, options)}`,
        { file: path, line },
      );
    }
    yield { kind: "row", line, text, values: fields.map((field, j) => toNumber(field, { path, line, column: j, header, options })) };
  }
}

function commentHint(first: { line: number; text: string }, options: CsvRowOptions): string {
  return options.comment === undefined && /^[#%;/]/.test(first.text) ? ` (line ${first.line} looks like a comment: set ${options.optionNames?.comment ?? "comment"})` : "";
}

function checkDelimiter(path: string, options: CsvRowOptions): string {
  const delimiter = options.delimiter ?? ",";
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === "\n" || delimiter === "\r") {
    throw new DataError(`${path}: ${options.optionNames?.delimiter ?? "delimiter"} is ${JSON.stringify(delimiter)}, expected one character (not a quote or a line break)`, { file: path });
  }
  return delimiter;
}

function delimiterHint(sample: string, options: CsvRowOptions): string {
  return /[\t;| ]/.test(sample.trim()) ? ` (fields separated by something else than ${JSON.stringify(options.delimiter ?? ",")}? set ${options.optionNames?.delimiter ?? "delimiter"})` : "";
}

function toNumber(field: string, at: { path: string; line: number; column: number; header: string[] | undefined; options: CsvRowOptions }): number {
  const value = storableNumber(field);
  if (typeof value === "number") return value;
  const location = { file: at.path, line: at.line, column: at.column + 1, ...fieldName(at.header, at.column) };
  if (value.nonFinite) throw dataErrorAt(location, `expected ${value.expected}`);
  const comment = at.column === 0 && at.options.comment === undefined && /^[#%;/]/.test(field);
  const hint = comment ? ` (a comment line? set ${at.options.optionNames?.comment ?? "comment"})` : delimiterHint(field, at.options);
  const missing = field === "" ? " (an empty field: missing values are not supported; fill them in or drop the row)" : "";
  throw dataErrorAt(location, `expected ${value.expected}${missing || hint}`);
}

/** The 0-based label column (-1 for none) and feature columns, checked against the first data row's width. */
function resolveColumns(path: string, line: number, options: CsvOptions, fields: number, header: string[] | undefined, firstField: string): { label: number; features: readonly number[] } {
  const names = { labelColumn: "labelColumn", featureColumns: "featureColumns", ...options.optionNames };
  const label = options.labelColumn === null ? -1 : resolveLabelColumn(path, options.labelColumn ?? -1, fields, header, names.labelColumn);
  if (label >= 0 && fields < 2 && options.featureColumns === undefined) {
    throw dataErrorAt({ file: path, line }, `has 1 field, expected at least 2 (features and a label)${delimiterHint(firstField, options)}`);
  }
  if (options.featureColumns === undefined) return { label, features: Array.from({ length: fields }, (_, j) => j).filter((j) => j !== label) };
  const features = options.featureColumns;
  if (features.length === 0) throw new DataError(`${path}: ${names.featureColumns} names no column`, { file: path });
  for (const j of features) {
    if (!Number.isInteger(j) || j < 0 || j >= fields) {
      throw dataErrorAt({ file: path, line }, `${names.featureColumns} names column ${j}, but the rows have ${fields} column${fields === 1 ? "" : "s"} (0-${fields - 1})`);
    }
    if (j === label) {
      throw dataErrorAt({ file: path, line, column: j + 1, ...fieldName(header, j) }, `${names.featureColumns} includes column ${j}, the label column (${names.labelColumn})`);
    }
  }
  return { label, features };
}

/** The 0-based label column from an index (negative from the end) or a header name. */
function resolveLabelColumn(path: string, column: number | string, fields: number, header: string[] | undefined, flag: string): number {
  if (typeof column === "string") {
    if (!header) throw new DataError(`${path}: ${flag} ${JSON.stringify(column)} names a header column, but the file has no header`, { file: path });
    const index = header.indexOf(column);
    if (index < 0) {
      throw new DataError(`${path}: ${flag}: no header column is named ${JSON.stringify(column)}; the header has ${header.map((h) => JSON.stringify(h)).join(", ")}`, { file: path });
    }
    return index;
  }
  if (!Number.isInteger(column) || column < -fields || column >= fields) {
    throw new DataError(`${path}: ${flag} is ${column}, expected an integer in [${-fields}, ${fields - 1}] for ${fields} fields`, { file: path });
  }
  return column < 0 ? fields + column : column;
}

function fieldName(header: string[] | undefined, column: number): { field?: string } {
  return header?.[column] !== undefined ? { field: header[column] } : {};
}

function unquote(field: string): string {
  const trimmed = field.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1).trim() : trimmed;
}
