// libsvm / svmlight reader ("label index:value ...", 1-based increasing indices, # comments), streaming by lines,
// into a dense Dataset or a SparseDataset.
import { basename } from "node:path";
import { createDataset, type Dataset } from "./dataset.js";
import { dataErrorAt, DataError, DataSizeError, type DataLocation } from "./errors.js";
import { readLines } from "./files.js";
import { Growable } from "./growable.js";
import { allocateFloats, checkDenseSize, type DenseSize, memoryLimit } from "./limits.js";
import { createSparseDataset, type SparseDataset } from "./sparse.js";
import { checkClasses, checkClassLabel, storableNumber, targetsFrom } from "./targets.js";

/** How to turn a libsvm file into a dense Dataset. */
export interface LibsvmOptions {
  /** Feature count; default: the largest index seen. An index above it is an error. */
  readonly features?: number;
  /** When set, labels are class indices in [0, classes) and y is one-hot; otherwise y is the label value. */
  readonly classes?: number;
  /** The most bytes the dense x and y may take (4 bytes a value); default DEFAULT_MEMORY_LIMIT_BYTES (src/data/limits.ts). */
  readonly maxBytes?: number;
  /** How messages name the options (e.g. the CLI's flags "--classes"); default: the option names. */
  readonly optionNames?: Partial<Record<"classes" | "features", string>>;
}

/** The largest feature index: the dense column count must fit a 32-bit index. */
const MAX_INDEX = 2 ** 31 - 1;

/**
 * Sparse rows as they are read (shared by the libsvm readers, whole and streamed, and the hashed-CSV reader): entries
 * of row r are [rowStart[r], rowStart[r + 1]); indices as pushed (1-based for libsvm, see `build`).
 */
export class SparseRows {
  readonly labels = new Growable((n) => new Float64Array(n));
  readonly rowStart = new Growable((n) => new Int32Array(n));
  readonly indices = new Growable((n) => new Int32Array(n));
  readonly values = new Growable((n) => new Float32Array(n));
  readonly lines = new Growable((n) => new Int32Array(n));
  /** The largest index pushed. */
  maxIndex = 0;

  get size(): number {
    return this.labels.length;
  }

  /** Starts a row of `label` read from `line`; its pairs follow with push(). */
  startRow(label: number, line: number): void {
    this.labels.push(label);
    this.rowStart.push(this.indices.length);
    this.lines.push(line);
  }

  push(index: number, value: number): void {
    this.indices.push(index);
    this.values.push(value);
    if (index > this.maxIndex) this.maxIndex = index;
  }

  /** The rows as a SparseDataset of `features` columns; index i pushed is column i - indexBase; targets as targetsFrom. */
  build(features: number, classes: number | undefined, name: string, indexBase = 1): SparseDataset {
    const count = this.size;
    const rowPtr = new Int32Array(count + 1);
    for (let r = 0; r < count; r++) rowPtr[r] = this.rowStart.at(r);
    rowPtr[count] = this.indices.length;
    const indices = this.indices.toArray();
    if (indexBase !== 0) for (let k = 0; k < indices.length; k++) indices[k] = indices[k]! - indexBase;
    const targets = targetsFrom(this.labels.toArray(), classes);
    return createSparseDataset({ features, rowPtr, indices, values: this.values.toArray(), ...targets, lines: this.lines.toArray(), name });
  }
}

/**
 * The whole file as a dense Dataset; column j holds feature index j + 1, and `lines` each row's line. Before the
 * dense arrays exist, refuses (DataSizeError naming the line and the token) data whose x and y would need more than
 * `maxBytes`, as one huge feature index would.
 */
export async function readLibsvm(path: string, options: LibsvmOptions = {}): Promise<Dataset> {
  const limit = memoryLimit(options.maxBytes, path);
  const { rows, features } = await readRows(path, options, (rows, before, at) => checkDenseSize(denseSize(rows, options, before), limit, at));
  const targets = targetsFrom(rows.labels.toArray(), options.classes);
  return createDataset({ features, x: densify(rows, features, path), ...targets, lines: rows.lines.toArray(), name: basename(path) });
}

/**
 * The whole file as a SparseDataset: feature index i (1-based in the file) is column i - 1, nothing is made dense,
 * so 2^20 features or more cost only the pairs present. Refuses (DataSizeError naming the line) files whose pairs and
 * targets would need more than `maxBytes` (8 bytes a pair, 4 a target value).
 */
export async function readLibsvmSparse(path: string, options: LibsvmOptions = {}): Promise<SparseDataset> {
  const limit = memoryLimit(options.maxBytes, path);
  const outputs = options.classes ?? 1;
  const { rows, features } = await readRows(path, options, (rows, _before, at) => {
    const neededBytes = 8 * rows.indices.length + 4 * outputs * rows.labels.length + 12 * rows.labels.length;
    if (neededBytes > limit) {
      throw new DataSizeError(`${path}: line ${at.line}: the sparse rows read so far need ${neededBytes} bytes, more than the limit of ${limit}`, at, { neededBytes, limitBytes: limit });
    }
  });
  return rows.build(features, options.classes, basename(path));
}

// Reads every row, calling `check` after each (size limits); then the feature count.
async function readRows(
  path: string,
  options: LibsvmOptions,
  check: (rows: SparseRows, maxIndexBefore: number, at: DataLocation) => void,
): Promise<{ rows: SparseRows; features: number }> {
  checkLibsvmOptions(path, options);
  const rows = new SparseRows();
  for await (const { line, text } of readLines(path)) {
    const tokens = libsvmTokens(text);
    if (tokens.length === 0) continue;
    const before = rows.maxIndex;
    parseLibsvmRow(tokens, { file: path, line }, options, rows);
    check(rows, before, { file: path, line });
  }
  if (rows.size === 0) throw new DataError(`${path}: no data rows`, { file: path });
  const features = options.features ?? rows.maxIndex;
  if (features === 0) throw new DataError(`${path}: no feature values in any row; pass the features option`, { file: path });
  return { rows, features };
}

/** The tokens of a libsvm line without its # comment; none for a blank or comment line (not a data row). */
export function libsvmTokens(text: string): string[] {
  return text.split("#", 1)[0]!.trim().split(/\s+/).filter((t) => t !== "");
}

/** Checks the classes and features options (DataError naming the file). */
export function checkLibsvmOptions(path: string, options: Pick<LibsvmOptions, "classes" | "features">): void {
  checkClasses(path, options.classes);
  checkFeatures(path, options.features);
}

/** The dense size of the rows read so far; its cause names what grew: a feature index beyond all before, or the classes. */
function denseSize(rows: SparseRows, options: LibsvmOptions, maxIndexBefore: number): DenseSize {
  const features = options.features ?? rows.maxIndex;
  const outputs = options.classes ?? 1;
  const size = { rows: rows.labels.length, features, outputs };
  if (outputs > features) return { ...size, cause: `${options.optionNames?.classes ?? "classes"} ${outputs} implies ${outputs} outputs per row` };
  if (options.features === undefined && rows.maxIndex > maxIndexBefore) {
    return { ...size, cause: `feature index ${rows.maxIndex} implies ${rows.maxIndex} features` };
  }
  return size;
}

/** Appends one "label index:value ..." line (its tokens, from libsvmTokens) to rows, checking every token. */
export function parseLibsvmRow(tokens: string[], at: DataLocation, options: Pick<LibsvmOptions, "classes" | "features">, rows: SparseRows): void {
  const label = storableNumber(tokens[0]!);
  if (typeof label !== "number") {
    throw dataErrorAt({ ...at, column: 1 }, label.nonFinite ? `expected a label that is ${label.expected}` : `expected a numeric label, got ${JSON.stringify(tokens[0])}`);
  }
  if (options.classes !== undefined) checkClassLabel(label, options.classes, { ...at, column: 1 });
  rows.startRow(label, at.line!);
  const maxIndex = Math.min(options.features ?? MAX_INDEX, MAX_INDEX);
  let previous = 0;
  for (let t = 1; t < tokens.length; t++) {
    const token = tokens[t]!;
    if (t === 1 && token.startsWith("qid:")) continue; // svmlight query id: not a feature
    let index = entryIndex(token);
    let value = index === undefined ? undefined : entryValue(token);
    if (index === undefined || value === undefined || index <= previous || index > maxIndex) {
      [index, value] = checkedEntry(token, { ...at, column: t + 1, field: token }, previous, options.features);
    }
    rows.push(index, value);
    previous = index;
  }
}

/** The plain decimal index of "index:value" (digits only, below 2^50), else undefined (then checkedEntry decides). */
function entryIndex(token: string): number | undefined {
  const colon = token.indexOf(":");
  if (colon < 1 || colon > 15) return undefined;
  let index = 0;
  for (let i = 0; i < colon; i++) {
    const digit = token.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    index = index * 10 + digit;
  }
  return index;
}

/** The value of "index:value" when a Float32Array can hold it, else undefined (then checkedEntry says why). */
function entryValue(token: string): number | undefined {
  const value = storableNumber(token.slice(token.indexOf(":") + 1));
  return typeof value === "number" ? value : undefined;
}

/** A token the fast path did not take, checked in full: its index and value, or the DataError saying what is wrong. */
function checkedEntry(token: string, where: DataLocation, previous: number, features: number | undefined): [number, number] {
  const [index, value] = parseEntry(token, where);
  if (index <= previous) {
    throw dataErrorAt(where, previous === 0 ? `index ${index} is not >= 1` : `index ${index} does not increase (previous ${previous})`);
  }
  if (features !== undefined && index > features) throw dataErrorAt(where, `index ${index} is above the ${features} features`);
  if (index > MAX_INDEX) throw dataErrorAt(where, `index ${index} is above ${MAX_INDEX}, the largest feature index`);
  return [index, value];
}

function parseEntry(token: string, where: DataLocation): [number, number] {
  const colon = token.indexOf(":");
  const indexText = token.slice(0, Math.max(colon, 0));
  const index = /^[+-]?\d+$/.test(indexText) ? Number(indexText) : undefined;
  const value = colon < 0 ? undefined : storableNumber(token.slice(colon + 1));
  if (typeof value === "object" && value.nonFinite && index !== undefined) throw dataErrorAt(where, `expected a value that is ${value.expected}`);
  if (index === undefined || typeof value !== "number") throw dataErrorAt(where, "expected index:value (an integer index, a number value)");
  return [index, value];
}

function densify(rows: SparseRows, features: number, path: string): Float32Array {
  const size = rows.size;
  const x = allocateFloats(size * features, path);
  for (let r = 0; r < size; r++) {
    const end = r + 1 < size ? rows.rowStart.at(r + 1) : rows.indices.length;
    for (let e = rows.rowStart.at(r); e < end; e++) x[r * features + rows.indices.at(e) - 1] = rows.values.at(e);
  }
  return x;
}

function checkFeatures(path: string, features: number | undefined): void {
  if (features !== undefined && (!Number.isInteger(features) || features < 1)) {
    throw new DataError(`${path}: features is ${features}, expected an integer >= 1`, { file: path });
  }
}
