// In-process implementations of the training seam, for replicas that share one process: a group of
// GradientExchange members that average their gradients in rank order (and, with syncEvery k, their models every k
// batches), and a parameter store that applies pushed gradients with the run's optimizer on the core's kernels.
// They define the semantics the cluster versions keep.
import type { Network } from "../model/network.js";
import type { Slab } from "../runtime/arena.js";
import { InvalidStateError } from "../errors.js";
import {
  type BatchStats,
  type GradientExchange,
  isSyncBatch,
  type KeyRange,
  keyRange,
  type ParameterClient,
  type PushInfo,
  type ReplicaBlocks,
  requireSyncEvery,
} from "./exchange.js";
import { resolveTrainOptions, type ResolvedTrainOptions, type TrainOptions } from "./options.js";
import { stateSlots } from "./state.js";

interface Arrival {
  grads: Float32Array;
  local: BatchStats;
  resolve: (combined: BatchStats) => void;
  reject: (error: Error) => void;
}

/** Options of a MemoryExchangeGroup. Defaults are in MEMORY_EXCHANGE_DEFAULTS. */
export interface MemoryExchangeOptions {
  /**
   * Mini-batches per sync point (see isSyncBatch; default 1, every batch's gradient combined). With k > 1 the
   * batches between sync points are trained locally, and at a sync point every member's parameters and optimizer
   * state (attached by its trainer) are replaced by their mean over the members before the gradient is combined.
   */
  syncEvery?: number;
}

/** The default of every optional MemoryExchangeOptions field. */
export const MEMORY_EXCHANGE_DEFAULTS = Object.freeze({ syncEvery: 1 });

/** One member's place in the schedule. */
interface MemberState {
  blocks: ReplicaBlocks | undefined;
  /** The next allreduce's batch within the epoch. */
  batch: number;
  /** The epoch's agreed batch count (Infinity before the first epochBatches). */
  batches: number;
  /** Whether a batch was trained locally since the last sync point (the members' models then differ). */
  dirty: boolean;
}

/**
 * `size` replicas in one process, joined once per mini-batch (or per sync point: options.syncEvery); member(rank) is
 * replica rank's exchange. Throws InvalidArgumentError naming syncEvery unless it is a positive integer.
 */
export class MemoryExchangeGroup {
  readonly syncEvery: number;
  private arrivals = new Map<number, Arrival>();
  private batchCounts = new Map<number, { batches: number; resolve: (n: number) => void }>();
  private readonly states: MemberState[];

  constructor(
    readonly size: number,
    options: MemoryExchangeOptions = {},
  ) {
    this.syncEvery = requireSyncEvery(options.syncEvery ?? MEMORY_EXCHANGE_DEFAULTS.syncEvery, "MemoryExchangeGroup");
    this.states = Array.from({ length: size }, () => ({ blocks: undefined, batch: 0, batches: Number.POSITIVE_INFINITY, dirty: false }));
  }

  member(rank: number): GradientExchange {
    const state = this.states[rank]!;
    return {
      epochBatches: (batches) =>
        new Promise((resolve) => {
          this.batchCounts.set(rank, { batches, resolve });
          if (this.batchCounts.size < this.size) return;
          const agreed = Math.min(...[...this.batchCounts.values()].map((c) => c.batches));
          for (const s of this.states) Object.assign(s, { batch: 0, batches: agreed });
          for (const c of this.batchCounts.values()) c.resolve(agreed);
          this.batchCounts.clear();
        }),
      allreduce: (grads, local) => {
        if (!isSyncBatch(state.batch++, this.syncEvery, state.batches)) {
          state.dirty = true;
          return Promise.resolve({ ...local, local: true });
        }
        return new Promise((resolve, reject) => {
          this.arrivals.set(rank, { grads, local, resolve, reject });
          if (this.arrivals.size === this.size) this.combine();
        });
      },
      attach: (blocks) => {
        state.blocks = blocks;
      },
    };
  }

  // At a sync point after local batches, the members' models averaged; then the rows-weighted mean of every
  // member's gradient, summed in rank order, written back into each.
  private combine(): void {
    const members = Array.from({ length: this.size }, (_, rank) => this.arrivals.get(rank)!);
    this.arrivals = new Map();
    try {
      if (this.states[0]!.dirty && this.size > 1) this.averageModels();
    } catch (error) {
      for (const m of members) m.reject(error as Error);
      return;
    }
    for (const s of this.states) s.dirty = false;
    const rows = members.reduce((n, m) => n + m.local.rows, 0);
    const loss = members.reduce((n, m) => n + m.local.loss, 0);
    const mean = new Float32Array(members[0]!.grads.length);
    for (const m of members) {
      const weight = m.local.rows / rows;
      for (let i = 0; i < mean.length; i++) mean[i]! += weight * m.grads[i]!;
    }
    for (const m of members) {
      m.grads.set(mean);
      m.resolve({ loss, rows });
    }
  }

  // Every block (parameters, each state slot) replaced on every member by the members' mean, summed in rank order
  // with weight 1 / size (as ClusterGradientExchange sums it).
  private averageModels(): void {
    const blocks = this.states.map((s, rank) => {
      if (!s.blocks) throw new InvalidStateError(`MemoryExchangeGroup: syncEvery ${this.syncEvery} averages models, but member ${rank} has no blocks attached (train it with a LocalTrainer, which attaches them)`);
      return [s.blocks.params(), ...s.blocks.state()];
    });
    const weight = 1 / this.size;
    for (let k = 0; k < blocks[0]!.length; k++) {
      const mean = new Float32Array(blocks[0]![k]!.length);
      for (const member of blocks) {
        const block = member[k]!;
        for (let i = 0; i < mean.length; i++) mean[i]! += weight * block[i]!;
      }
      for (const member of blocks) member[k]!.set(mean);
    }
  }
}

/** One optimizer segment of the key space: a tensor, with or without L2 decay (weights decay, biases not). */
interface Segment {
  begin: number;
  length: number;
  decay: boolean;
}

/**
 * A parameter store in this process: the parameters (initialized from a network's), the optimizer state and a
 * version clock, all on the network's kernels. push applies at once (copying the gradient into the core);
 * pull copies out. Both resolve after the copy is done.
 */
export class MemoryParameterStore implements ParameterClient {
  /** Updates applied so far. */
  version = 0;
  readonly keys: number;
  private readonly applied = new Map<number, number>();

  private constructor(
    private readonly network: Network,
    private readonly options: ResolvedTrainOptions,
    private readonly params: Slab,
    private readonly grads: Slab,
    private readonly state: Slab[],
    private readonly segments: Segment[],
  ) {
    this.keys = params.length;
  }

  /** A store holding a copy of `network`'s parameters, updated with `options`' optimizer and learning rate. */
  static create(network: Network, options: TrainOptions = {}): MemoryParameterStore {
    const resolved = resolveTrainOptions(options, 1);
    const arena = network.kernels.arena;
    const block = network.params.block;
    const params = arena.alloc(block.length, "store parameters");
    params.set(block.f32());
    const grads = arena.alloc(block.length, "store gradients");
    const state = Array.from({ length: stateSlots(resolved.optimizer, resolved.momentum) }, (_, s) => arena.alloc(block.length, `store state ${s}`));
    const segments = network.params.slabs.map((slab) => ({ begin: (slab.ptr - block.ptr) / 4, length: slab.length, decay: slab.name.startsWith("w") }));
    return new MemoryParameterStore(network, resolved, params, grads, state, segments);
  }

  async push(grads: Float32Array, range?: KeyRange, from?: PushInfo): Promise<number> {
    const r = keyRange(this.keys, range);
    if (from) {
      if ((this.applied.get(from.worker) ?? 0) >= from.seq) return this.version;
      this.applied.set(from.worker, from.seq);
    }
    this.grads.f32().set(grads.subarray(r.begin, r.end), r.begin);
    for (const segment of this.segments) {
      const begin = Math.max(r.begin, segment.begin);
      const end = Math.min(r.end, segment.begin + segment.length);
      if (begin < end) this.apply(begin, end - begin, segment.decay ? this.options.l2 : 0);
    }
    return ++this.version;
  }

  async pull(into: Float32Array, range?: KeyRange): Promise<number> {
    const r = keyRange(this.keys, range);
    into.set(this.params.f32().subarray(r.begin, r.end), r.begin);
    return this.version;
  }

  /** Releases the store's memory. */
  dispose(): void {
    for (const slab of [this.params, this.grads, ...this.state]) this.network.kernels.arena.release(slab);
  }

  private apply(key: number, n: number, l2: number): void {
    const core = this.network.kernels.core.exports;
    const o = this.options;
    const off = 4 * key;
    const [w, g] = [this.params.ptr + off, this.grads.ptr + off];
    const s = this.state.map((slab) => slab.ptr + off);
    if (o.optimizer === "sgd") core.f32_sgd_update(w, s[0] ?? 0, g, n, o.learningRate, o.momentum, l2);
    else if (o.optimizer === "adagrad") core.f32_adagrad_update(w, s[0]!, g, n, o.learningRate, o.epsilon, l2);
    else core.f32_adam_update(w, s[0]!, s[1]!, g, n, o.learningRate, o.beta1, o.beta2, o.epsilon, l2, this.version + 1);
  }
}
