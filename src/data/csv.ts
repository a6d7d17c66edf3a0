// Numeric CSV reader streaming by lines: header detection, a label column by index or name, one-hot classes.
import { basename } from "node:path";
import { createDataset, type Dataset } from "./dataset.js";
import { dataErrorAt, DataError, describeLocation } from "./errors.js";
import { readLines } from "./files.js";
import { Growable } from "./growable.js";
import { checkClasses, checkClassLabel, parseNumber, targetsFrom } from "./targets.js";

/** How to read the rows of a numeric CSV file. */
export interface CsvRowOptions {
  /** true: the first line is a header; "auto" (default): it is one when its fields are not all numbers. */
  readonly header?: boolean | "auto";
  /** Field separator, "," by default. */
  readonly delimiter?: string;
}

/** How to turn a numeric CSV file into a Dataset. */
export interface CsvOptions extends CsvRowOptions {
  /** 0-based index (negative counts from the end) or header name of the label column; default -1, the last. */
  readonly labelColumn?: number | string;
  /** When set, labels are class indices in [0, classes) and y is one-hot; otherwise y is the label value. */
  readonly classes?: number;
}

/** One data line: its 1-based number in the file and its fields as numbers. */
export interface CsvRow {
  readonly line: number;
  readonly values: number[];
}

type CsvRecord = { kind: "header"; line: number; names: string[] } | ({ kind: "row" } & CsvRow);

/** The data rows, streamed; every row has as many fields as the first line, each a number. */
export async function* readCsvRows(path: string, options: CsvRowOptions = {}): AsyncGenerator<CsvRow> {
  for await (const record of csvRecords(path, options)) {
    if (record.kind === "row") yield { line: record.line, values: record.values };
  }
}

/** The whole file as a Dataset: every column but the label column are features. */
export async function readCsv(path: string, options: CsvOptions = {}): Promise<Dataset> {
  checkClasses(path, options.classes);
  const x = new Growable((n) => new Float32Array(n));
  const raw = new Growable((n) => new Float64Array(n));
  let header: string[] | undefined;
  let labelIndex = -1;
  for await (const record of csvRecords(path, options)) {
    if (record.kind === "header") {
      header = record.names;
      continue;
    }
    const { line, values } = record;
    if (labelIndex < 0) labelIndex = resolveLabelColumn(path, options.labelColumn ?? -1, values.length, header);
    const label = values[labelIndex]!;
    if (options.classes !== undefined) {
      checkClassLabel(label, options.classes, { file: path, line, column: labelIndex + 1, ...fieldName(header, labelIndex) });
    }
    raw.push(label);
    for (let j = 0; j < values.length; j++) if (j !== labelIndex) x.push(values[j]!);
  }
  if (raw.length === 0) throw new DataError(`${path}: no data rows`, { file: path });
  const features = x.length / raw.length;
  return createDataset({ features, x: x.toArray(), ...targetsFrom(raw.toArray(), options.classes), name: basename(path) });
}

/** The header (if any) then each data row, checked for field count and numbers; blank lines are skipped. */
async function* csvRecords(path: string, options: CsvRowOptions): AsyncGenerator<CsvRecord> {
  const delimiter = options.delimiter ?? ",";
  const headerOption = options.header ?? "auto";
  let width: { fields: number; line: number } | undefined;
  let header: string[] | undefined;
  for await (const { line, text } of readLines(path)) {
    if (text.trim() === "") continue;
    const fields = text.split(delimiter).map(unquote);
    if (!width) {
      width = { fields: fields.length, line };
      if (fields.length < 2) throw dataErrorAt({ file: path, line }, `has 1 field, expected at least 2 (features and a label)`);
      if (headerOption === true || (headerOption === "auto" && !fields.every((f) => parseNumber(f) !== undefined))) {
        header = fields;
        yield { kind: "header", line, names: fields };
        continue;
      }
    }
    if (fields.length !== width.fields) {
      throw new DataError(
        `${describeLocation({ file: path, line })} has ${fields.length} fields, expected ${width.fields} (as on line ${width.line})`,
        { file: path, line },
      );
    }
    yield { kind: "row", line, values: fields.map((field, j) => toNumber(field, { path, line, column: j, header })) };
  }
}

function toNumber(field: string, at: { path: string; line: number; column: number; header: string[] | undefined }): number {
  const value = parseNumber(field);
  if (value === undefined) {
    const location = { file: at.path, line: at.line, column: at.column + 1, ...fieldName(at.header, at.column) };
    throw dataErrorAt(location, `expected a number, got ${JSON.stringify(field)}`);
  }
  return value;
}

/** The 0-based label column from an index (negative from the end) or a header name. */
function resolveLabelColumn(path: string, column: number | string, fields: number, header: string[] | undefined): number {
  if (typeof column === "string") {
    if (!header) throw new DataError(`${path}: labelColumn ${JSON.stringify(column)} names a header column, but the file has no header`, { file: path });
    const index = header.indexOf(column);
    if (index < 0) {
      throw new DataError(`${path}: no header column is named ${JSON.stringify(column)}; the header has ${header.map((h) => JSON.stringify(h)).join(", ")}`, { file: path });
    }
    return index;
  }
  if (!Number.isInteger(column) || column < -fields || column >= fields) {
    throw new DataError(`${path}: labelColumn is ${column}, expected an integer in [${-fields}, ${fields - 1}] for ${fields} fields`, { file: path });
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
