// One worker's compact copy of a sparse-input network, a portion at a time (issue 12): the portion's distinct
// features get local row ids 0 .. m-1, so the first layer's weights in the arena are only those m rows (pulled
// from the shards) and never the whole sparse layer; the dense layers after it (b0, w1, b1, ...) are one
// contiguous "dense tail" of the parameter layout. The passes are the trainer's own StepRunner over a plan built
// once (and again, larger, when a portion has more distinct features than the capacity).
import type { Kernels } from "../core/kernels.js";
import type { SparseDataset } from "../data/sparse.js";
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import { Network } from "../model/network.js";
import { outputsOf, type ResolvedSpec } from "../model/spec.js";
import { resolveTrainOptions } from "./options.js";
import { PlanBuilder, type TrainPlan, updateItems } from "./plan.js";
import { StepRunner } from "./steps.js";

/** Options of SparsePortionStep.create; defaults in SPARSE_PORTION_DEFAULTS. */
export interface SparsePortionOptions {
  /** The most rows of one portion. */
  rows: number;
  /** Distinct features (and feature pairs) one portion may hold before it is cut short; default 64 per row. */
  capacity?: number;
}

export const SPARSE_PORTION_DEFAULTS = Object.freeze({ pairsPerRow: 64 });

/** A tensor of the dense tail, for the shards' optimizer (the shape of ps-shard.ts's ParameterSegment). */
export interface TailSegment {
  begin: number;
  length: number;
  decay: boolean;
}

/** The dense tail of a sparse-input spec: what the shards' dense key space is. */
export interface DenseTail {
  /** Floats of the tail (b0 to the end of the layout, with its padding). */
  keys: number;
  /** Its optimizer segments (weights decay, biases do not), offsets within the tail. */
  segments: TailSegment[];
  /** Its seeded initial values (the same on every machine whatever the sparse layer's size). */
  init: Float32Array;
}

/** The spec with `inputs` inputs (the compact copies' feature capacity). */
function withInputs(spec: ResolvedSpec, inputs: number): ResolvedSpec {
  return { ...spec, inputs };
}

/** Where the dense tail starts in `network`'s parameter block, in floats. */
function tailOffset(network: Network): number {
  return (network.bias(0).ptr - network.params.block.ptr) / 4;
}

/** The dense tail of `spec` (built from a one-input copy, so its initial values do not depend on the inputs). */
export function denseTail(kernels: Kernels, spec: ResolvedSpec): DenseTail {
  requireSparseSpec(spec);
  const network = Network.create(kernels, withInputs(spec, 1));
  try {
    const offset = tailOffset(network);
    const block = network.params.block;
    const segments = network.params.slabs
      .map((slab) => ({ begin: (slab.ptr - block.ptr) / 4 - offset, length: slab.length, decay: slab.name.startsWith("w") }))
      .filter((s) => s.begin >= 0);
    return { keys: block.length - offset, segments, init: block.f32().slice(offset) };
  } finally {
    network.dispose();
  }
}

function requireSparseSpec(spec: ResolvedSpec): void {
  if (spec.sparseInputs !== true) throw new InvalidArgumentError("a sparse portion step needs a spec with sparseInputs: true");
}

/** Feature id -> local row id for one portion: open addressing over stamps, so starting a portion costs nothing. */
class LocalIds {
  keys = new Int32Array(0);
  private tableKeys = new Int32Array(0);
  private tableIds = new Int32Array(0);
  private stamps = new Int32Array(0);
  private stamp = 0;
  count = 0;

  start(capacity: number): void {
    if (this.keys.length < capacity) {
      const size = 2 ** Math.ceil(Math.log2(2 * capacity + 2));
      this.keys = new Int32Array(capacity);
      this.tableKeys = new Int32Array(size);
      this.tableIds = new Int32Array(size);
      this.stamps = new Int32Array(size);
      this.stamp = 0;
    }
    if (++this.stamp === 0x7fffffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    this.count = 0;
  }

  /** The local id of `key`, a new one when unseen (the caller keeps count < capacity). */
  idOf(key: number): number {
    const mask = this.tableKeys.length - 1;
    let t = Math.imul(key, 0x9e3779b1) >>> 0 & mask;
    while (this.stamps[t] === this.stamp) {
      if (this.tableKeys[t] === key) return this.tableIds[t]!;
      t = (t + 1) & mask;
    }
    this.stamps[t] = this.stamp;
    this.tableKeys[t] = key;
    this.tableIds[t] = this.count;
    this.keys[this.count] = key;
    return this.count++;
  }
}

/** A portion ready to load: its rows, distinct features (local-id order) and each pair's local id. */
export interface PortionPlan {
  start: number;
  count: number;
  keys: Int32Array;
  local: Int32Array;
}

/** The compact network and plan of one capacity. */
interface Compact {
  network: Network;
  builder: PlanBuilder;
  plan: TrainPlan;
  runner: StepRunner;
  capacity: number;
}

/**
 * A compact network for portions of at most `rows` rows and `capacity` feature pairs. Use: load() a portion, write
 * its rows (rowsView) and the dense tail (denseView) from the shards, then train() or loss(); read rowGradients() and
 * denseGradients(). plan() a portion first to pull its rows while another computes, then loadPlan() it. Not
 * thread-safe; one per worker.
 */
export class SparsePortionStep {
  readonly spec: ResolvedSpec;
  /** Floats per sparse row (the first layer's units). */
  readonly units: number;
  readonly outputs: number;
  readonly rows: number;
  private compact: Compact;
  private readonly planIds = new LocalIds();
  private loadedKeys: Int32Array = new Int32Array(0);
  private loaded = 0;
  private disposed = false;

  private constructor(
    private readonly kernels: Kernels,
    spec: ResolvedSpec,
    rows: number,
    capacity: number,
  ) {
    this.spec = spec;
    this.units = spec.layers[0]!.units;
    this.outputs = outputsOf(spec);
    this.rows = rows;
    this.compact = this.build(capacity);
  }

  /** A step on `kernels` (whose arena holds capacity x units floats twice, plus the portion's buffers). */
  static create(kernels: Kernels, spec: ResolvedSpec, options: SparsePortionOptions): SparsePortionStep {
    requireSparseSpec(spec);
    if (!(Number.isInteger(options.rows) && options.rows >= 1)) throw new InvalidArgumentError(`SparsePortionStep: rows must be an integer >= 1, got ${options.rows}`);
    const capacity = options.capacity ?? options.rows * SPARSE_PORTION_DEFAULTS.pairsPerRow;
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new InvalidArgumentError(`SparsePortionStep: capacity must be an integer >= 1, got ${capacity}`);
    return new SparsePortionStep(kernels, spec, options.rows, capacity);
  }

  /** Feature pairs (and so distinct features) one portion may hold now. */
  get capacity(): number {
    return this.compact.capacity;
  }

  /** Floats of the dense tail. */
  get denseKeys(): number {
    return this.compact.network.params.block.length - tailOffset(this.compact.network);
  }

  private build(capacity: number): Compact {
    const network = Network.create(this.kernels, withInputs(this.spec, capacity));
    const builder = new PlanBuilder(this.kernels.arena);
    const core = this.kernels.core;
    const rows = this.rows;
    const sparse = { rowPtr: builder.alloc(rows + 1, "portion row offsets"), indices: builder.alloc(capacity, "portion local ids"), values: builder.alloc(capacity, "portion values") };
    const perm = builder.alloc(rows, "portion order");
    const order = new Int32Array(core.memory.buffer, perm, rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    const resolved = resolveTrainOptions({ threads: 0, batchSize: rows, portion: rows, seed: 1 }, 1);
    const plan: TrainPlan = {
      spec: network.spec, options: resolved, threads: 0, samples: rows, x: 0, sparse, y: builder.alloc(rows * this.outputs, "portion targets"), perm,
      keys: network.params.block.length, params: network.params.block.ptr, grads: builder.block(network, "portion gradients"), partyGrads: [], portionSets: [], packedD: [], state: [],
      layers: builder.layers(network, false, () => 0), sets: [builder.bufferSet(network.spec, rows)], blocks: [],
      workspaces: [builder.alloc(core.exports.f32_gemm_workspace_bytes(1 << 20, 1 << 20, 1 << 20) / 4, "workspace")],
      updateItems: updateItems(network.spec), exchange: false, mailbox: undefined,
    };
    for (const layer of plan.layers) layer.keep = 1;
    return { network, builder, plan, runner: new StepRunner(core.exports, core.memory, plan, 0), capacity };
  }

  // A larger compact copy, keeping the dense tail's parameters.
  private rebuild(capacity: number): void {
    const dense = this.denseView().slice();
    this.release();
    this.compact = this.build(capacity);
    this.denseView().set(dense);
  }

  private release(): void {
    this.compact.builder.release();
    this.compact.network.dispose();
  }

  /**
   * How many rows from `start` one portion takes: at most maxRows (and `rows`) whose pairs fit the capacity; at least
   * one (a row longer than the capacity grows it at load()).
   */
  span(data: SparseDataset, start: number, maxRows = this.rows): number {
    const end = Math.min(data.size, start + Math.min(maxRows, this.rows));
    if (start >= end) throw new InvalidArgumentError(`SparsePortionStep: no rows at ${start} of ${data.size}`);
    let count = 1;
    while (start + count < end && data.rowPtr[start + count + 1]! - data.rowPtr[start]! <= this.capacity) count++;
    return count;
  }

  /**
   * Portion `start` of `data` (span(data, start) rows) planned without touching the arena: its distinct features in
   * local-id order, and each pair's local id (new arrays, so several planned portions can wait for their rows).
   */
  plan(data: SparseDataset, start: number, maxRows = this.rows): PortionPlan {
    const count = this.span(data, start, maxRows);
    const from = data.rowPtr[start]!;
    const nnz = data.rowPtr[start + count]! - from;
    const ids = this.planIds;
    ids.start(Math.max(1, nnz));
    const local = new Int32Array(nnz);
    for (let k = 0; k < nnz; k++) local[k] = ids.idOf(data.indices[from + k]!);
    return { start, count, keys: ids.keys.slice(0, ids.count), local };
  }

  /**
   * Loads a planned portion of `data` with its targets, growing the capacity when its pairs need it (the dense
   * tail is kept). keys() are then the plan's keys.
   */
  loadPlan(data: SparseDataset, plan: PortionPlan): void {
    this.requireLive();
    const { start, count } = plan;
    if (!(count >= 1 && start + count <= data.size)) throw new InvalidArgumentError(`SparsePortionStep.load: rows [${start}, ${start + count}) are not rows of ${data.size}`);
    if (count > this.rows) throw new InvalidArgumentError(`SparsePortionStep.load: ${count} rows, more than the step's ${this.rows}`);
    if (plan.local.length !== data.rowPtr[start + count]! - data.rowPtr[start]!) throw new InvalidArgumentError("SparsePortionStep.load: the plan is of other rows");
    if (plan.local.length > this.capacity) this.rebuild(2 ** Math.ceil(Math.log2(plan.local.length)));
    this.fill(data, plan);
  }

  /** plan(data, start) then loadPlan; returns the rows loaded. */
  load(data: SparseDataset, start: number): number {
    const plan = this.plan(data, start);
    this.loadPlan(data, plan);
    return plan.count;
  }

  private fill(data: SparseDataset, { start, count, keys, local }: PortionPlan): void {
    const { plan } = this.compact;
    const buffer = this.kernels.core.memory.buffer;
    const sparse = plan.sparse!;
    const from = data.rowPtr[start]!;
    const nnz = local.length;
    const offsets = new Int32Array(buffer, sparse.rowPtr, count + 1);
    for (let r = 0; r <= count; r++) offsets[r] = data.rowPtr[start + r]! - from;
    new Int32Array(buffer, sparse.indices, nnz).set(local);
    new Float32Array(buffer, sparse.values, nnz).set(data.values.subarray(from, from + nnz));
    new Float32Array(buffer, plan.y, count * this.outputs).set(data.y.subarray(start * this.outputs, (start + count) * this.outputs));
    this.loadedKeys = keys;
    this.loaded = count;
  }

  /** The loaded portion's distinct features (valid until the next load). */
  keys(): Int32Array {
    return this.loadedKeys;
  }

  /** Live view of the compact first-layer rows of keys() (keys().length x units): write the pulled rows here. */
  rowsView(): Float32Array {
    const w = this.compact.network.weights(0);
    return new Float32Array(this.kernels.core.memory.buffer, w.ptr, this.loadedKeys.length * this.units);
  }

  /** Live view of the dense tail's parameters (denseKeys floats). */
  denseView(): Float32Array {
    const n = this.compact.network;
    return new Float32Array(this.kernels.core.memory.buffer, n.bias(0).ptr, this.denseKeys);
  }

  /** Forward and backward over the loaded rows; returns their summed loss. Gradients are of the portion's mean loss. */
  train(): number {
    const { runner, plan } = this.requireLoaded("train");
    const set = plan.sets[0]!;
    runner.refreshViews();
    runner.gather(set, 0, 0, this.loaded);
    const loss = runner.forwardBackward(set, 0, this.loaded, this.loaded, 0, false);
    runner.gradients(set, this.loaded);
    return loss;
  }

  /** The loaded rows' summed loss, without gradients. */
  loss(): number {
    const { runner, plan } = this.requireLoaded("loss");
    const set = plan.sets[0]!;
    runner.refreshViews();
    runner.gather(set, 0, 0, this.loaded);
    return runner.forwardBackward(set, 0, this.loaded, this.loaded, 0, false);
  }

  /** The loaded rows' outputs (rows x outputs), after loss() or train() (a copy). */
  predictions(): Float32Array {
    const { plan } = this.requireLoaded("outputs");
    const last = plan.sets[0]!.layers[plan.layers.length - 1]!;
    return new Float32Array(this.kernels.core.memory.buffer, last.out, this.loaded * this.outputs).slice();
  }

  /** Live view of the first layer's gradient rows after train() (keys().length x units). */
  rowGradients(): Float32Array {
    const { plan } = this.compact;
    return new Float32Array(this.kernels.core.memory.buffer, plan.grads + plan.layers[0]!.wOff, this.loadedKeys.length * this.units);
  }

  /** Live view of the dense tail's gradient after train() (denseKeys floats). */
  denseGradients(): Float32Array {
    const { plan } = this.compact;
    return new Float32Array(this.kernels.core.memory.buffer, plan.grads + plan.layers[0]!.bOff, this.denseKeys);
  }

  /** Frees the compact network and plan. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.release();
  }

  private requireLive(): void {
    if (this.disposed) throw new InvalidStateError("SparsePortionStep: used after dispose()");
  }

  private requireLoaded(use: string): Compact {
    this.requireLive();
    if (this.loaded === 0) throw new InvalidArgumentError(`SparsePortionStep.${use}: load() a portion first`);
    return this.compact;
  }
}
