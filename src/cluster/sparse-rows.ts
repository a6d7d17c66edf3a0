// A shard's rows of a sparse layer (issue 12): keys are feature ids (0 .. 2^31-1), each row `units` floats. A row
// that was never pushed is its initial value, computed from (seed, key) whenever it is read, so a shard of a
// 2^27-row layer allocates nothing up front; a push creates the row and steps it with Adagrad (per row, so rare
// features keep large steps). Rows live in an open-addressing table over growable pages; snapshots hold only the
// rows that exist. Runtime-free; not yet wired into the shard protocol.
import { InvalidArgumentError } from "../errors.js";
import { hash2 } from "../util/hash.js";

/** Options of SparseRowStore; defaults in SPARSE_ROW_DEFAULTS. */
export interface SparseRowOptions {
  /** Floats per row (the first layer's units). */
  units: number;
  /** Seed of the initial rows. Default 1. */
  seed?: number;
  /** Initial values are uniform in [-initScale, initScale]. Default 0.01. */
  initScale?: number;
  /** Adagrad's learning rate. Default 0.05. */
  learningRate?: number;
  /** Adagrad's epsilon. Default 1e-8. */
  epsilon?: number;
}

export const SPARSE_ROW_DEFAULTS = { seed: 1, initScale: 0.01, learningRate: 0.05, epsilon: 1e-8 } as const;

/** The rows that exist, by key (ascending), with their values and Adagrad accumulators (rows x units each). */
export interface SparseRowSnapshot {
  units: number;
  keys: Int32Array;
  values: Float32Array;
  accumulators: Float32Array;
}

/** Rows per page: pages grow the storage without copying what exists. */
const PAGE_ROWS = 4096;
const EMPTY = -1;

/** Writes key's initial row (uniform in [-scale, scale] from (seed, key, j)) into out[offset ..]. */
export function initialRow(seed: number, key: number, units: number, scale: number, out: Float32Array, offset: number): void {
  const base = hash2(seed, key);
  for (let j = 0; j < units; j++) out[offset + j] = scale * ((hash2(base, j) / 2 ** 31) - 1);
}

/** One Adagrad step of one row: h += g^2; w -= lr g / (sqrt(h) + eps) (a plain function, so it stays monomorphic). */
function adagradRow(w: Float32Array, h: Float32Array, at: number, grads: Float32Array, gi: number, u: number, lr: number, eps: number): void {
  for (let j = 0; j < u; j++) {
    const g = grads[gi + j]!;
    const acc = h[at + j]! + g * g;
    h[at + j] = acc;
    w[at + j] = w[at + j]! - (lr * g) / (Math.sqrt(acc) + eps);
  }
}

/** One shard's rows of a sparse layer. */
export class SparseRowStore {
  readonly units: number;
  private readonly o: Required<SparseRowOptions>;
  private tableKeys = new Int32Array(1024).fill(EMPTY);
  private tableSlots = new Int32Array(1024);
  private rows = 0;
  private readonly valuePages: Float32Array[] = [];
  private readonly accumulatorPages: Float32Array[] = [];

  constructor(options: SparseRowOptions) {
    if (!(Number.isInteger(options.units) && options.units >= 1)) throw new InvalidArgumentError(`SparseRowStore: units must be an integer >= 1, got ${options.units}`);
    this.o = { ...SPARSE_ROW_DEFAULTS, ...options };
    this.units = options.units;
  }

  /** Rows that exist (were pushed at least once). */
  get size(): number {
    return this.rows;
  }

  /** Bytes the rows and the table hold. */
  get bytes(): number {
    return 8 * this.valuePages.length * PAGE_ROWS * this.units + 8 * this.tableKeys.length;
  }

  /** Copies the rows of `keys` into `into` (keys.length x units); a row never pushed reads as its initial value. */
  pull(keys: Int32Array, into: Float32Array): void {
    this.requireShape("pull", keys, into);
    const u = this.units;
    for (let i = 0; i < keys.length; i++) {
      const key = this.requireKey("pull", keys, i);
      const slot = this.find(key);
      if (slot === EMPTY) initialRow(this.o.seed, key, u, this.o.initScale, into, i * u);
      else {
        const page = this.page(this.valuePages, slot);
        const at = this.offset(slot);
        for (let j = 0; j < u; j++) into[i * u + j] = page[at + j]!;
      }
    }
  }

  /**
   * One Adagrad step per row of `keys` with `grads` (keys.length x units): h += g^2; w -= lr g / (sqrt(h) + eps).
   * Creates rows on first push. Keys must be distinct within a push (InvalidArgumentError naming the position).
   */
  push(keys: Int32Array, grads: Float32Array): void {
    this.requireShape("push", keys, grads);
    this.checkDistinct(keys);
    const { learningRate, epsilon } = this.o;
    const u = this.units;
    for (let i = 0; i < keys.length; i++) {
      const slot = this.slotFor(keys[i]!);
      adagradRow(this.page(this.valuePages, slot), this.page(this.accumulatorPages, slot), this.offset(slot), grads, i * u, u, learningRate, epsilon);
    }
  }

  /** The rows that exist, keys ascending (copies). */
  snapshot(): SparseRowSnapshot {
    const order: number[] = [];
    for (let t = 0; t < this.tableKeys.length; t++) if (this.tableKeys[t] !== EMPTY) order.push(t);
    order.sort((a, b) => this.tableKeys[a]! - this.tableKeys[b]!);
    const u = this.units;
    const keys = new Int32Array(order.length);
    const values = new Float32Array(order.length * u);
    const accumulators = new Float32Array(order.length * u);
    order.forEach((t, i) => {
      const slot = this.tableSlots[t]!;
      const at = this.offset(slot);
      keys[i] = this.tableKeys[t]!;
      values.set(this.page(this.valuePages, slot).subarray(at, at + u), i * u);
      accumulators.set(this.page(this.accumulatorPages, slot).subarray(at, at + u), i * u);
    });
    return { units: u, keys, values, accumulators };
  }

  /** A store holding a snapshot's rows (options as for the constructor; the snapshot's units must match). */
  static restore(options: SparseRowOptions, snapshot: SparseRowSnapshot): SparseRowStore {
    const store = new SparseRowStore(options);
    if (snapshot.units !== store.units) throw new InvalidArgumentError(`SparseRowStore.restore: the snapshot has rows of ${snapshot.units} floats, the store ${store.units}`);
    const u = store.units;
    if (snapshot.values.length !== snapshot.keys.length * u || snapshot.accumulators.length !== snapshot.keys.length * u) {
      throw new InvalidArgumentError(`SparseRowStore.restore: ${snapshot.keys.length} keys need ${snapshot.keys.length * u} values and accumulators`);
    }
    for (let i = 0; i < snapshot.keys.length; i++) {
      const slot = store.slotFor(snapshot.keys[i]!);
      const at = store.offset(slot);
      store.page(store.valuePages, slot).set(snapshot.values.subarray(i * u, (i + 1) * u), at);
      store.page(store.accumulatorPages, slot).set(snapshot.accumulators.subarray(i * u, (i + 1) * u), at);
    }
    return store;
  }

  private requireShape(use: string, keys: Int32Array, values: Float32Array): void {
    if (!(keys instanceof Int32Array) || !(values instanceof Float32Array)) throw new InvalidArgumentError(`SparseRowStore.${use}: keys must be an Int32Array and the rows a Float32Array`);
    if (values.length !== keys.length * this.units) {
      throw new InvalidArgumentError(`SparseRowStore.${use}: ${keys.length} keys need ${keys.length * this.units} floats (${this.units} per row), got ${values.length}`);
    }
  }

  private requireKey(use: string, keys: Int32Array, i: number): number {
    const key = keys[i]!;
    if (key < 0) throw new InvalidArgumentError(`SparseRowStore.${use}: key ${key} at position ${i} is negative; keys are feature ids >= 0`);
    return key;
  }

  // Distinct keys within one push (a sorted copy: keys not in the table yet must be caught too).
  private checkDistinct(keys: Int32Array): void {
    for (let i = 0; i < keys.length; i++) this.requireKey("push", keys, i);
    const sorted = Int32Array.from(keys).sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) throw new InvalidArgumentError(`SparseRowStore.push: key ${sorted[i]} appears twice; sum a row's gradients before pushing it`);
    }
  }

  private offset(slot: number): number {
    return (slot % PAGE_ROWS) * this.units;
  }

  private page(pages: Float32Array[], slot: number): Float32Array {
    return pages[Math.floor(slot / PAGE_ROWS)]!;
  }

  private probe(key: number): number {
    const mask = this.tableKeys.length - 1;
    let t = hash2(key, 0x5eed) & mask;
    while (this.tableKeys[t] !== EMPTY && this.tableKeys[t] !== key) t = (t + 1) & mask;
    return t;
  }

  private find(key: number): number {
    const t = this.probe(key);
    return this.tableKeys[t] === key ? this.tableSlots[t]! : EMPTY;
  }

  // The slot of key's row, creating the row (its initial value, zero accumulators) when it does not exist.
  private slotFor(key: number): number {
    let t = this.probe(key);
    if (this.tableKeys[t] === key) return this.tableSlots[t]!;
    if (10 * (this.rows + 1) > 7 * this.tableKeys.length) {
      this.grow();
      t = this.probe(key);
    }
    const slot = this.rows++;
    if (slot % PAGE_ROWS === 0) {
      this.valuePages.push(new Float32Array(PAGE_ROWS * this.units));
      this.accumulatorPages.push(new Float32Array(PAGE_ROWS * this.units));
    }
    this.tableKeys[t] = key;
    this.tableSlots[t] = slot;
    initialRow(this.o.seed, key, this.units, this.o.initScale, this.page(this.valuePages, slot), this.offset(slot));
    return slot;
  }

  private grow(): void {
    const keys = this.tableKeys;
    const slots = this.tableSlots;
    this.tableKeys = new Int32Array(2 * keys.length).fill(EMPTY);
    this.tableSlots = new Int32Array(2 * keys.length);
    for (let t = 0; t < keys.length; t++) {
      if (keys[t] === EMPTY) continue;
      const n = this.probe(keys[t]!);
      this.tableKeys[n] = keys[t]!;
      this.tableSlots[n] = slots[t]!;
    }
  }
}
