// libsvm files read as a stream of SparseDatasets of at most chunkRows rows each, so a file larger than memory
// trains in one pass: the memory held is one chunk's. Rows are parsed as readLibsvmSparse parses them (one parser,
// src/data/libsvm.ts); the feature count must be given, since a stream cannot know the largest index ahead.
import { basename } from "node:path";
import { DataError } from "./errors.js";
import { readLines } from "./files.js";
import { checkLibsvmOptions, libsvmTokens, parseLibsvmRow, SparseRows } from "./libsvm.js";
import type { SparseDataset } from "./sparse.js";

/** Defaults of the stream options. */
export const LIBSVM_STREAM_DEFAULTS = {
  /** Rows per chunk: 65536 rows of 40 pairs hold about 21 MB. */
  chunkRows: 65536,
} as const;

/** How to stream a libsvm file. */
export interface LibsvmStreamOptions {
  /** The feature count (required): an index above it is a DataError naming the file and line. */
  readonly features: number;
  /** When set, labels are class indices in [0, classes) and y is one-hot; otherwise y is the label value. */
  readonly classes?: number;
  /** The most rows a chunk holds (an integer >= 1); default LIBSVM_STREAM_DEFAULTS.chunkRows. */
  readonly chunkRows?: number;
  /**
   * Which data rows to keep, by their 0-based number among the file's data rows (blank and comment lines do not
   * count): task t of T takes `(row) => row % T === t`. A row not kept is not parsed. Default: every row.
   */
  readonly select?: (row: number) => boolean;
}

/**
 * The file's data rows as SparseDatasets of at most `chunkRows` rows (the last may hold fewer; none is empty), in
 * file order; each chunk's `lines` are the rows' line numbers and its name the file's. Rejects with DataError at
 * the first bad row, naming the file and line (earlier chunks have been yielded), and when the file has no data
 * rows at all (a `select` keeping none yields nothing).
 */
export async function* streamLibsvmSparse(path: string, options: LibsvmStreamOptions): AsyncGenerator<SparseDataset> {
  const { features, classes, select } = options;
  const chunkRows = checkStreamOptions(path, options);
  const name = basename(path);
  let rows = new SparseRows();
  let dataRows = 0;
  for await (const { line, text } of readLines(path)) {
    const tokens = libsvmTokens(text);
    if (tokens.length === 0) continue;
    const row = dataRows++;
    if (select && !select(row)) continue;
    parseLibsvmRow(tokens, { file: path, line }, { features, classes }, rows);
    if (rows.size === chunkRows) {
      yield rows.build(features, classes, name);
      rows = new SparseRows();
    }
  }
  if (dataRows === 0) throw new DataError(`${path}: no data rows`, { file: path });
  if (rows.size > 0) yield rows.build(features, classes, name);
}

/** Checks features (required), classes and chunkRows; the chunk size in force. */
export function checkStreamOptions(path: string, options: { readonly features?: number; readonly classes?: number; readonly chunkRows?: number }): number {
  if (options.features === undefined) {
    throw new DataError(`${path}: a stream needs the features option (the feature count), since it cannot know the largest index ahead`, { file: path });
  }
  checkLibsvmOptions(path, options);
  const chunkRows = options.chunkRows ?? LIBSVM_STREAM_DEFAULTS.chunkRows;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) {
    throw new DataError(`${path}: chunkRows is ${chunkRows}, expected an integer >= 1`, { file: path });
  }
  return chunkRows;
}

/** What a scan of a libsvm file found: its data rows and its largest feature index (1-based, as in the file). */
export interface LibsvmScan {
  readonly rows: number;
  readonly maxIndex: number;
}

/**
 * Reads the whole file once, checking every row as the readers do (DataError naming the line), holding a few
 * thousand rows at a time: how many data rows there are and the largest index, the feature count a stream needs.
 */
export async function scanLibsvm(path: string, options: { readonly classes?: number } = {}): Promise<LibsvmScan> {
  checkLibsvmOptions(path, options);
  let rows = new SparseRows();
  let count = 0;
  let maxIndex = 0;
  for await (const { line, text } of readLines(path)) {
    const tokens = libsvmTokens(text);
    if (tokens.length === 0) continue;
    parseLibsvmRow(tokens, { file: path, line }, options, rows);
    count++;
    if (rows.size === SCAN_ROWS) {
      maxIndex = Math.max(maxIndex, rows.maxIndex);
      rows = new SparseRows();
    }
  }
  if (count === 0) throw new DataError(`${path}: no data rows`, { file: path });
  return { rows: count, maxIndex: Math.max(maxIndex, rows.maxIndex) };
}

/** Rows a scan holds at a time. */
const SCAN_ROWS = 4096;
