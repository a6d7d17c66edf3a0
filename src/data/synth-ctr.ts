// A seeded generator of click-log-like sparse examples with a known teacher: power-law (Zipf-like) feature
// frequencies over hash-permuted feature ids, a sparse logistic teacher whose weights derive from (seed, feature),
// a bias calibrated to a click rate, and label noise. Every row is a pure function of (settings, row index), so rows
// come in any order or in parallel chunks; the best log-loss any model can reach is computed alongside. Runtime-free
// (no file system): src/data/synth-ctr-file.ts writes libsvm files from it.
import { DataError } from "./errors.js";
import { mulberry32 } from "./random.js";
import { createSparseDataset, type SparseDataset } from "./sparse.js";
import { hash2 } from "../util/hash.js";

/** What to generate; each field's default is in SYNTH_CTR_DEFAULTS. */
export interface SynthCtrOptions {
  /** Seeds everything: the feature permutation, the teacher's weights and every row. */
  readonly seed?: number;
  /** Feature ids are 0..features-1 (an integer in [1, 2^30]; 2^k is typical). */
  readonly features?: number;
  /** Distinct active features per example: exactly this many, but when the features are too few to find them in
   *  4 x perExample draws (then fewer). */
  readonly perExample?: number;
  /** The power-law exponent s: the feature of frequency rank r is drawn with probability ~ r^-s (s > 0). */
  readonly zipfExponent?: number;
  /** The fraction of features with a nonzero teacher weight, in [0, 1]. */
  readonly teacherDensity?: number;
  /** The standard deviation of the nonzero teacher weights (Gaussian, mean 0), >= 0. */
  readonly teacherScale?: number;
  /** The target fraction of 1-labels (after noise), in (noise, 1 - noise); the bias is calibrated to it. */
  readonly clickRate?: number;
  /** The probability that a label is flipped, in [0, 0.5). */
  readonly noise?: number;
  /** "binary": every active feature has value 1; "real": values in (0, 1], in steps of 0.001. */
  readonly values?: "binary" | "real";
  /** The teacher's bias; when given, no calibration is done and clickRate is ignored. */
  readonly bias?: number;
}

/** The defaults of SynthCtrOptions. */
export const SYNTH_CTR_DEFAULTS = {
  seed: 1,
  features: 2 ** 20,
  perExample: 40,
  zipfExponent: 1.1,
  teacherDensity: 0.1,
  teacherScale: 1,
  clickRate: 0.2,
  noise: 0.05,
  values: "binary",
} as const satisfies Required<Omit<SynthCtrOptions, "bias">>;

/** The options in force (defaults filled in) and the teacher's bias. */
export interface SynthCtrSettings {
  readonly seed: number;
  readonly features: number;
  readonly perExample: number;
  readonly zipfExponent: number;
  readonly teacherDensity: number;
  readonly teacherScale: number;
  readonly clickRate: number;
  readonly noise: number;
  readonly values: "binary" | "real";
  readonly bias: number;
}

/** The largest feature count: ids fit a 30-bit permutation and the libsvm reader's 32-bit indices. */
export const SYNTH_CTR_MAX_FEATURES = 2 ** 30;

/** Rows drawn (from their own stream, not the data's) to calibrate the bias to the click rate. */
const CALIBRATION_ROWS = 4096;

/** One example: sorted 0-based feature ids, their values, the label, and the teacher's probability of a click. */
export interface SynthCtrRow {
  readonly index: number;
  readonly indices: Int32Array;
  readonly values: Float64Array;
  readonly label: 0 | 1;
  /** The teacher's p = sigmoid(bias + w.x), before label noise. */
  readonly probability: number;
}

/** Rows [start, start + rows) in CSR form: row r's entries are [rowStart[r], rowStart[r + 1]). */
export interface SynthCtrChunk {
  readonly start: number;
  readonly rows: number;
  readonly rowStart: Int32Array;
  /** 0-based feature ids, strictly increasing within a row. */
  readonly indices: Int32Array;
  readonly values: Float64Array;
  readonly labels: Uint8Array;
  /** The teacher's p per row, before label noise (noisyProbability gives the label's). */
  readonly probabilities: Float64Array;
}

/** The figures of generated rows against their teacher. */
export interface SynthCtrSummary {
  readonly rows: number;
  /** The fraction of 1-labels. */
  readonly clickRate: number;
  /** The mean binary entropy of p' = (1-noise)p + noise(1-p): the best expected log-loss of any model (nats). */
  readonly bestLogLoss: number;
  /** The teacher's own log-loss on the labels drawn (p' against each label); ~bestLogLoss up to sampling error. */
  readonly teacherLogLoss: number;
  /** The log-loss of always predicting the measured click rate: what a model must beat. */
  readonly constantLogLoss: number;
  /** Mean active features per row. */
  readonly meanActive: number;
}

/** The stream seed of row `index` (any safe integer >= 0) in the stream `seed`. */
function rowSeed(seed: number, index: number): number {
  return hash2(hash2(seed, index >>> 0), Math.floor(index / 2 ** 32));
}

/** The logistic function, without overflow for large |z|. */
function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** The probability of a 1-label when the teacher says p and labels flip with probability noise. */
export function noisyProbability(p: number, noise: number): number {
  return (1 - noise) * p + noise * (1 - p);
}

/** -p ln p - (1-p) ln(1-p), in nats (0 at 0 and 1). */
export function binaryEntropy(p: number): number {
  const a = p > 0 ? -p * Math.log(p) : 0;
  const b = p < 1 ? -(1 - p) * Math.log(1 - p) : 0;
  return a + b;
}

/** An integer option in [min, max], or a DataError naming it. */
function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DataError(`synthCtr: ${name} is ${value}, expected an integer in [${min}, ${max}]`);
  }
}

/** A finite number option within bounds (open or closed at each end), or a DataError naming it. */
function checkRange(name: string, value: number, min: number, max: number, open: "" | "min" | "max" | "both" = ""): void {
  const lowOk = open === "min" || open === "both" ? value > min : value >= min;
  const highOk = open === "max" || open === "both" ? value < max : value <= max;
  if (typeof value !== "number" || !Number.isFinite(value) || !lowOk || !highOk) {
    const low = open === "min" || open === "both" ? "(" : "[";
    const high = open === "max" || open === "both" ? ")" : "]";
    throw new DataError(`synthCtr: ${name} is ${value}, expected a number in ${low}${min}, ${max}${high}`);
  }
}

function checkOptions(o: Required<Omit<SynthCtrOptions, "bias">> & { bias?: number }): void {
  checkInteger("seed", o.seed, 0, 2 ** 32 - 1);
  checkInteger("features", o.features, 1, SYNTH_CTR_MAX_FEATURES);
  checkInteger("perExample", o.perExample, 1, 100_000);
  checkRange("zipfExponent", o.zipfExponent, 0, 10, "min");
  checkRange("teacherDensity", o.teacherDensity, 0, 1);
  checkRange("teacherScale", o.teacherScale, 0, 1000);
  checkRange("noise", o.noise, 0, 0.5, "max");
  if (o.bias === undefined) checkRange("clickRate", o.clickRate, o.noise, 1 - o.noise, "both");
  else checkRange("bias", o.bias, -1000, 1000);
  if (o.values !== "binary" && o.values !== "real") throw new DataError(`synthCtr: values is ${JSON.stringify(o.values)}, expected "binary" or "real"`);
}

/** A keyed bijection of [0, 2^bits): odd multiplies and xor-shifts mod 2^bits. */
class BitPermutation {
  private readonly mask: number;
  private readonly shift: number;
  private readonly keys: readonly number[];

  constructor(
    readonly bits: number,
    seed: number,
  ) {
    this.mask = 2 ** bits - 1; // bits <= 30: masks stay positive 32-bit integers
    this.shift = Math.max(1, Math.ceil(bits / 2));
    this.keys = [0, 1, 2, 3].map((i) => hash2(seed, 0x7e57 + i));
  }

  apply(x: number): number {
    const { mask, shift, keys } = this;
    if (mask === 0) return 0;
    x = (x ^ keys[0]!) & mask;
    x = Math.imul(x, keys[1]! | 1) & mask;
    x ^= x >>> shift;
    x = Math.imul(x, keys[2]! | 1) & mask;
    x ^= x >>> shift;
    return (x + keys[3]!) & mask;
  }
}

/**
 * The generator: `row(i)`, `chunk(start, rows)` and `chunks(...)` give the same rows whatever the order or split.
 * Construction builds the power-law table and calibrates the bias (unless given) on CALIBRATION_ROWS rows of a
 * separate stream: some tens of milliseconds.
 */
export class SynthCtr {
  readonly settings: SynthCtrSettings;
  /** The settings but the bias, set before the bias is calibrated. */
  private readonly config: Omit<SynthCtrSettings, "bias">;
  private readonly permutation: BitPermutation;
  private readonly zipf: (u: number) => number;
  private readonly teacherSeed: number;
  private readonly scratch: { indices: Int32Array; values: Float64Array; seen: DistinctSet };

  constructor(options: SynthCtrOptions = {}) {
    const { bias: given, ...filled } = { ...SYNTH_CTR_DEFAULTS, ...definedOnly(options) };
    checkOptions({ ...filled, bias: given });
    this.config = filled;
    const { features, zipfExponent, seed } = filled;
    this.permutation = new BitPermutation(Math.ceil(Math.log2(features)), hash2(seed, 1));
    this.zipf = zipfSampler(features, zipfExponent);
    this.teacherSeed = hash2(seed, 2);
    const width = Math.min(filled.perExample, features);
    this.scratch = { indices: new Int32Array(width), values: new Float64Array(width), seen: new DistinctSet(width) };
    this.settings = { ...filled, bias: given ?? this.calibrateBias() };
  }

  /** The bias; the teacher's p of a row is sigmoid(bias + sum of weight(j) * value(j)). */
  get bias(): number {
    return this.settings.bias;
  }

  /** The id of the feature of frequency rank `rank` (0 = the most frequent): a seeded bijection of [0, features). */
  featureOfRank(rank: number): number {
    const features = this.config.features;
    let x = this.permutation.apply(rank);
    while (x >= features) x = this.permutation.apply(x); // cycle-walking: stays a bijection of [0, features)
    return x;
  }

  /** The teacher's weight of feature `j`: 0 but for a teacherDensity fraction, those N(0, teacherScale^2). */
  weight(j: number): number {
    const { teacherDensity, teacherScale } = this.config;
    const h = hash2(this.teacherSeed, j);
    if (h / 4294967296 >= teacherDensity) return 0;
    const u = (hash2(h, 1) + 1) / 4294967297;
    const v = hash2(h, 2) / 4294967296;
    return teacherScale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** The teacher's p for any example (0-based ids and values, ones when values is omitted). */
  probability(indices: ArrayLike<number>, values?: ArrayLike<number>): number {
    return sigmoid(this.settings.bias + this.margin(indices, values, indices.length));
  }

  /** Row `index` (a safe integer >= 0). */
  row(index: number): SynthCtrRow {
    const chunk = this.chunk(index, 1);
    return {
      index,
      indices: chunk.indices.slice(),
      values: chunk.values.slice(),
      label: chunk.labels[0] as 0 | 1,
      probability: chunk.probabilities[0]!,
    };
  }

  /** Rows [start, start + rows) in CSR form. */
  chunk(start: number, rows: number): SynthCtrChunk {
    checkRows(start, rows);
    const width = this.scratch.indices.length;
    const rowStart = new Int32Array(rows + 1);
    const indices = new Int32Array(rows * width);
    const values = new Float64Array(rows * width);
    const labels = new Uint8Array(rows);
    const probabilities = new Float64Array(rows);
    const { seed, noise, bias } = this.settings;
    let at = 0;
    for (let r = 0; r < rows; r++) {
      const random = mulberry32(rowSeed(seed, start + r));
      const count = this.drawActive(random);
      indices.set(this.scratch.indices.subarray(0, count), at);
      values.set(this.scratch.values.subarray(0, count), at);
      const p = sigmoid(bias + this.margin(this.scratch.indices, this.scratch.values, count));
      const clean = random() < p ? 1 : 0;
      labels[r] = random() < noise ? 1 - clean : clean;
      probabilities[r] = p;
      at += count;
      rowStart[r + 1] = at;
    }
    return { start, rows, rowStart, indices: indices.slice(0, at), values: values.slice(0, at), labels, probabilities };
  }

  /** Rows [start, start + rows) in chunks of at most chunkRows: only one chunk is held at a time. */
  *chunks(start: number, rows: number, chunkRows = 8192): Generator<SynthCtrChunk> {
    checkInteger("start", start, 0, Number.MAX_SAFE_INTEGER);
    checkInteger("rows", rows, 0, Number.MAX_SAFE_INTEGER - start);
    checkInteger("chunkRows", chunkRows, 1, 2 ** 24);
    for (let done = 0; done < rows; done += chunkRows) yield this.chunk(start + done, Math.min(chunkRows, rows - done));
  }

  private margin(indices: ArrayLike<number>, values: ArrayLike<number> | undefined, count: number): number {
    let z = 0;
    for (let e = 0; e < count; e++) z += this.weight(indices[e]!) * (values === undefined ? 1 : values[e]!);
    return z;
  }

  /**
   * Draws power-law ranks into scratch until perExample distinct features are found (or 4x as many draws were
   * made), then sorts them by id; returns the count. Values: 1, or (0, 1] in steps of 0.001 in id order.
   */
  private drawActive(random: () => number): number {
    const { indices, values, seen } = this.scratch;
    const width = indices.length;
    seen.clear();
    let count = 0;
    for (let draw = 0; draw < 4 * width && count < width; draw++) {
      const id = this.featureOfRank(this.zipf(random()));
      if (seen.add(id)) indices[count++] = id;
    }
    indices.subarray(0, count).sort();
    const real = this.config.values === "real";
    for (let e = 0; e < count; e++) values[e] = real ? (1 + Math.floor(random() * 1000)) / 1000 : 1;
    return count;
  }

  /** The bias for which the expected 1-label rate of the calibration rows is clickRate (bisection). */
  private calibrateBias(): number {
    const { clickRate, noise } = this.config;
    const margins = new Float64Array(CALIBRATION_ROWS);
    const stream = hash2(this.teacherSeed, 3);
    for (let r = 0; r < CALIBRATION_ROWS; r++) {
      const random = mulberry32(rowSeed(stream, r));
      const count = this.drawActive(random);
      margins[r] = this.margin(this.scratch.indices, this.scratch.values, count);
    }
    let [low, high] = [-60, 60];
    for (let step = 0; step < 80; step++) {
      const mid = (low + high) / 2;
      let sum = 0;
      for (const m of margins) sum += noisyProbability(sigmoid(mid + m), noise);
      if (sum / CALIBRATION_ROWS < clickRate) low = mid;
      else high = mid;
    }
    return (low + high) / 2;
  }
}

/** A set of non-negative ids, open addressing in a power-of-two table at most half full, cleared in O(1). */
class DistinctSet {
  private readonly ids: Int32Array;
  private readonly stamps: Int32Array;
  private readonly mask: number;
  private stamp = 0;

  constructor(capacity: number) {
    const size = 2 ** Math.ceil(Math.log2(2 * capacity + 2));
    this.ids = new Int32Array(size);
    this.stamps = new Int32Array(size);
    this.mask = size - 1;
  }

  clear(): void {
    if (++this.stamp === 2 ** 31) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
  }

  /** Adds id; false when it was already in. */
  add(id: number): boolean {
    const { ids, stamps, mask, stamp } = this;
    let slot = Math.imul(id, 0x9e3779b1) & mask;
    while (stamps[slot] === stamp) {
      if (ids[slot] === id) return false;
      slot = (slot + 1) & mask;
    }
    stamps[slot] = stamp;
    ids[slot] = id;
    return true;
  }
}

/** The options with undefined fields dropped, so they do not hide the defaults. */
function definedOnly(options: SynthCtrOptions): SynthCtrOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as SynthCtrOptions;
}

/** A chunk's rows: start and start + rows safe integers, at most 2^24 rows at once. */
function checkRows(start: number, rows: number): void {
  checkInteger("start", start, 0, Number.MAX_SAFE_INTEGER);
  checkInteger("rows", rows, 0, Math.min(2 ** 24, Number.MAX_SAFE_INTEGER - start));
}

/** Bins of the power-law sampler's lookup table (2^16 + 1 ranks, 256 KiB). */
const ZIPF_TABLE_BINS = 2 ** 16;

/**
 * Ranks in [0, features) with P(rank r) ~ the integral of x^-s over [r + 1, r + 2): a continuous power law on
 * [1, features + 1) floored, by the inverse of its distribution function (O(1) a draw at any size). A table of the
 * ranks at u = k / ZIPF_TABLE_BINS answers the draws whose bin holds one rank (most of them: the frequent ranks)
 * without the exp and log.
 */
function zipfSampler(features: number, s: number): (u: number) => number {
  const top = features + 1;
  const a = 1 - s;
  const near1 = Math.abs(a) < 1e-9;
  const logTop = Math.log(top);
  const span = 1 - Math.exp(a * logTop);
  const inverse = 1 / a;
  const exact = near1
    ? (u: number) => Math.min(features - 1, Math.max(0, Math.floor(Math.exp(u * logTop)) - 1))
    : (u: number) => Math.min(features - 1, Math.max(0, Math.floor(Math.exp(Math.log(1 - u * span) * inverse)) - 1));
  const table = new Int32Array(ZIPF_TABLE_BINS + 1);
  for (let k = 0; k <= ZIPF_TABLE_BINS; k++) table[k] = exact(k / ZIPF_TABLE_BINS);
  return (u) => {
    const k = Math.floor(u * ZIPF_TABLE_BINS);
    const rank = table[k]!;
    return rank === table[k + 1] ? rank : exact(u);
  };
}

/** Running figures of generated chunks (add them in any order; sums are in the order added). */
export class SynthCtrStats {
  private rows = 0;
  private clicks = 0;
  private entropy = 0;
  private loss = 0;
  private active = 0;

  constructor(private readonly noise: number) {}

  add(chunk: SynthCtrChunk): void {
    for (let r = 0; r < chunk.rows; r++) {
      const q = noisyProbability(chunk.probabilities[r]!, this.noise);
      const label = chunk.labels[r]!;
      this.clicks += label;
      this.entropy += binaryEntropy(q);
      this.loss -= Math.log(label === 1 ? q : 1 - q);
    }
    this.rows += chunk.rows;
    this.active += chunk.indices.length;
  }

  summary(): SynthCtrSummary {
    const n = Math.max(this.rows, 1);
    const clickRate = this.clicks / n;
    return {
      rows: this.rows,
      clickRate,
      bestLogLoss: this.entropy / n,
      teacherLogLoss: this.loss / n,
      constantLogLoss: binaryEntropy(clickRate),
      meanActive: this.active / n,
    };
  }
}

/**
 * Rows [start, start + rows) of `generator` as a SparseDataset in memory (y the 0/1 label, one output; labels the
 * class indices), for tests and in-process training; files larger than memory are written with writeSynthCtrLibsvm.
 */
export function synthCtrDataset(generator: SynthCtr, start: number, rows: number): SparseDataset {
  const chunk = generator.chunk(start, rows);
  return createSparseDataset({
    features: generator.settings.features,
    outputs: 1,
    rowPtr: chunk.rowStart,
    indices: chunk.indices,
    values: Float32Array.from(chunk.values),
    y: Float32Array.from(chunk.labels),
    labels: Int32Array.from(chunk.labels),
    name: `synth-ctr rows ${start}..${start + rows - 1}`,
  });
}

/** A reusable byte buffer that grows as needed. */
class ByteSink {
  bytes = new Uint8Array(1 << 16);
  length = 0;

  reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** A non-negative integer below 2^31 in decimal. */
  integer(n: number): void {
    const bytes = this.bytes;
    let digits = 1;
    for (let t = n; t >= 10; t = (t / 10) | 0) digits++;
    let at = this.length + digits;
    this.length = at;
    do {
      const q = (n / 10) | 0;
      bytes[--at] = 48 + n - q * 10;
      n = q;
    } while (n > 0);
  }

  ascii(text: string): void {
    for (let i = 0; i < text.length; i++) this.bytes[this.length++] = text.charCodeAt(i);
  }

  byte(b: number): void {
    this.bytes[this.length++] = b;
  }
}

/**
 * Encodes chunks as libsvm lines, "label index:value ..." with 1-based indices (as src/data/libsvm.ts reads them),
 * into one reusable buffer: the bytes returned are valid until the next encode.
 */
export class SynthCtrLibsvmEncoder {
  private readonly sink = new ByteSink();

  encode(chunk: SynthCtrChunk): Uint8Array {
    const sink = this.sink;
    sink.length = 0;
    for (let r = 0; r < chunk.rows; r++) {
      const [from, to] = [chunk.rowStart[r]!, chunk.rowStart[r + 1]!];
      sink.reserve(2 + (to - from) * 40);
      sink.byte(48 + chunk.labels[r]!);
      for (let e = from; e < to; e++) {
        sink.byte(32);
        sink.integer(chunk.indices[e]! + 1);
        sink.byte(58);
        const value = chunk.values[e]!;
        if (value === 1) sink.byte(49);
        else sink.ascii(String(value));
      }
      sink.byte(10);
    }
    return sink.bytes.subarray(0, sink.length);
  }
}
