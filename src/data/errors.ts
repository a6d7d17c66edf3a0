// Errors of the data layer: each names the file, the 1-based line and the column or field when there is one.
import { DownpourError } from "../errors.js";

/** Where in a data file a problem was found. */
export interface DataLocation {
  readonly file?: string;
  readonly line?: number;
  /** 1-based column (CSV field, libsvm token). */
  readonly column?: number;
  /** The column's name, when the file has a header. */
  readonly field?: string;
  /** 0-based row of a dataset (for data not read from a file, or beside its line). */
  readonly row?: number;
}

/** A data file or dataset that cannot be read or used as it is. */
export class DataError extends DownpourError {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly field?: string;
  readonly row?: number;

  constructor(message: string, location: DataLocation = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.file = location.file;
    this.line = location.line;
    this.column = location.column;
    this.field = location.field;
    this.row = location.row;
  }
}

/** Data that would take more memory than the limit (the maxBytes read option): what it needs and what is allowed. */
export class DataSizeError extends DataError {
  readonly neededBytes: number;
  readonly limitBytes: number;

  constructor(message: string, location: DataLocation, sizes: { neededBytes: number; limitBytes: number }, options?: { cause?: unknown }) {
    super(message, location, options);
    this.neededBytes = sizes.neededBytes;
    this.limitBytes = sizes.limitBytes;
  }
}

/** Content whose size or sha256 differs from the published one. */
export class ChecksumError extends DataError {}

/** A file that no URL of the list delivered intact; `attempts` says what each URL answered. */
export class DownloadError extends DataError {
  readonly attempts: readonly DownloadAttempt[];

  constructor(message: string, attempts: readonly DownloadAttempt[], location: DataLocation = {}) {
    super(message, location);
    this.attempts = attempts;
  }
}

/** What one URL answered when a download was tried. */
export interface DownloadAttempt {
  readonly url: string;
  readonly problem: string;
}

/** "pima.csv line 17, column 3" (then ' ("Glucose")' when the column has a name): the prefix of located messages. */
export function describeLocation({ file, line, column, field }: DataLocation): string {
  let text = file ?? "<data>";
  if (line !== undefined) text += ` line ${line}`;
  if (column !== undefined) text += `${line !== undefined ? "," : ""} column ${column}`;
  if (field !== undefined) text += ` (${JSON.stringify(field)})`;
  return text;
}

/** A DataError whose message starts with the location: "f.csv line 3, column 2: <detail>". */
export function dataErrorAt(location: DataLocation, detail: string, options?: { cause?: unknown }): DataError {
  return new DataError(`${describeLocation(location)}: ${detail}`, location, options);
}
