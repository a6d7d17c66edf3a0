// The memory plan of a training run: every buffer the workers touch, allocated in the shared arena and
// described by byte pointers, so the plan can be posted to worker threads as plain data. Parameters, gradients,
// optimizer-state slots and replicas are blocks of one layout (w0, b0, w1, b1, ...): a layer's tensor sits at the
// same offset in each, so one flat key names the same parameter everywhere.
import type { Arena, Slab } from "../runtime/arena.js";
import type { Network } from "../model/network.js";
import { layerOps } from "../model/neurons/ops.js";
import { fanIn, type ResolvedSpec } from "../model/spec.js";
import type { ResolvedTrainOptions } from "./options.js";
import type { OptimizerState } from "./state.js";

/** A layer's shape, its tensors' offsets in the parameter layout, and (sync mode) its prepacked weights. */
export interface LayerPlan {
  inputs: number;
  units: number;
  keep: number; // 1 - dropout
  /** The first layer of a sparse-input network: its inputs are CSR rows of the data, its weights are never packed. */
  sparse: boolean;
  /** Byte offsets of w_l and b_l from the start of any block of the parameter layout. */
  wOff: number;
  bOff: number;
  packedW: number; // op(B) = W, for the forward pass (sync mode)
  packedWT: number; // op(B) = W^T, for the backward pass (sync mode, layers after the first)
}

/** Per-layer activations, dropout mask and deltas for `rows` samples. */
export interface BufferSet {
  rows: number;
  /** Dense inputs (0 for sparse inputs, which stay in the data's CSR and are read through `ids`). */
  xb: number;
  /** The sample index of each row (Int32), so a sparse layer finds the row's pairs. */
  ids: number;
  tb: number;
  /** z: weighted sums; out: outputs (z itself unless the neuron type keeps z); a: out after dropout; d: dLoss/dz;
   *  dout: dLoss/dout (d itself unless the type needs it apart); pushes: per row, the gradients of this layer's
   *  weights that a per-neuron previous layer pushed (fanIn x units per row), else 0. */
  layers: Array<{ z: number; out: number; a: number; mask: number; d: number; dout: number; pushes: number }>;
}

/** One worker's blocks of the parameter layout in async mode. */
export interface WorkerBlocks {
  /** Gradient accumulators (two when a parameter client is served: one fills while the other is pushed). */
  grads: number[];
  /** The worker's own copies of the parameters (two when served by a client: one is computed on, one is fetched
   *  into); empty when the worker trains on the shared parameters in place. */
  replicas: number[];
}

/** One update work item of sync mode's second phase: rows [r0, r1) of a layer's weights, or its bias. */
export interface UpdateItem {
  layer: number;
  r0: number;
  r1: number;
  bias: boolean;
  /** The sparse first layer's weights: only the rows of the features the batch holds. */
  sparse?: true;
}

/** A sparse training set in the arena: CSR offsets (samples + 1, from 0), feature indices (Int32) and values. */
export interface SparsePlanInputs {
  rowPtr: number;
  indices: number;
  values: number;
}

/** Everything a worker needs to train, as byte pointers and numbers. */
export interface TrainPlan {
  spec: ResolvedSpec;
  options: ResolvedTrainOptions;
  threads: number;
  samples: number;
  /** Dense inputs (0 when sparse). */
  x: number;
  /** Sparse inputs, when the network's are. */
  sparse?: SparsePlanInputs;
  y: number;
  perm: number;
  /** Floats in one block of the parameter layout (with its 64-byte padding): the length of the key space. */
  keys: number;
  /** The network's parameter block. */
  params: number;
  /** The sync gradient block (layout = params) that the exchange point and split apply items use; async: unused. */
  grads: number;
  /** Sync: each party's own gradient block (layout = params): update items compute into the party's block, so an
   *  item a descheduled party holds can be recomputed by another (a backup) without the two writing one place. */
  partyGrads: number[];
  /** Sync: each party's private rows for one portion; the winner of a portion publishes them into sets[0]. */
  portionSets: BufferSet[];
  /** Sync: per layer, the batch's deltas packed as the weight gradient's B operand (each portion packs its rows),
   *  so the update items do not pack them again; 0 where unused. */
  packedD: number[];
  /** Optimizer-state blocks, one per slot (layout = params). */
  state: number[];
  layers: LayerPlan[];
  sets: BufferSet[];
  /** Async mode: per worker. */
  blocks: WorkerBlocks[];
  workspaces: number[];
  updateItems: UpdateItem[];
  /** Sync mode: whether the engine stops at the exchange point after each mini-batch's gradient. */
  exchange: boolean;
  /** Async mode: whether workers hand gradients to and take parameters from the main thread's mailboxes. */
  mailbox: { nFetch: number; nPush: number } | undefined;
  /** Tests only: a worker that pauses in the middle of some tickets, as if the OS had descheduled it. */
  stall?: StallFault;
}

/** Worker `party` sleeps `ms` after starting every `every`-th ticket (tests of backups). */
export interface StallFault {
  party: number;
  every: number;
  ms: number;
}

/** Rows of weights per sync update item (a multiple of 8, so W^T panels can be repacked band by band). */
export const UPDATE_ROWS = 64;

/** Allocates a plan's buffers; `slabs` collects them so the caller can release them. */
export class PlanBuilder {
  readonly slabs: Slab[] = [];
  private readonly cleanups: Array<() => void> = [];

  constructor(private readonly arena: Arena) {}

  alloc(length: number, name: string): number {
    const slab = this.arena.alloc(Math.max(1, length), name);
    this.slabs.push(slab);
    return slab.ptr;
  }

  /** A zeroed block of the network's parameter layout (gradients, a replica). */
  block(network: Network, name: string): number {
    return this.alloc(network.params.block.length, name);
  }

  /** Runs `cleanup` on release (for memory the plan uses but did not allocate itself). */
  onRelease(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  release(): void {
    for (const slab of this.slabs.splice(0)) this.arena.release(slab);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }

  layers(network: Network, sync: boolean, packedBytes: (n: number, k: number) => number): LayerPlan[] {
    const spec = network.spec;
    const base = network.params.block.ptr;
    return spec.layers.map((layer, l) => {
      const inputs = fanIn(spec, l);
      const units = layer.units;
      const sparse = l === 0 && spec.sparseInputs === true;
      return {
        inputs, units, keep: 1 - layer.dropout, sparse,
        wOff: network.weights(l).ptr - base,
        bOff: network.bias(l).ptr - base,
        packedW: sync && !sparse ? this.alloc(packedBytes(units, inputs) / 4, `packed w${l}`) : 0,
        packedWT: sync && l > 0 ? this.alloc(packedBytes(inputs, units) / 4, `packed w${l}^T`) : 0,
      };
    });
  }

  bufferSet(spec: ResolvedSpec, rows: number): BufferSet {
    const last = spec.layers.length - 1;
    return {
      rows,
      xb: spec.sparseInputs ? 0 : this.alloc(rows * spec.inputs, "batch inputs"),
      ids: this.alloc(rows, "batch sample ids"),
      tb: this.alloc(rows * spec.layers[last]!.units, "batch targets"),
      layers: spec.layers.map((layer, l) => {
        const n = rows * layer.units;
        const ops = layerOps(layer, l);
        const z = this.alloc(n, `z${l}`);
        const dropout = layer.dropout > 0;
        const out = l === last || ops.keepsZ ? this.alloc(n, `out${l}`) : z;
        const d = this.alloc(n, `d${l}`);
        const pushedBy = l > 0 && spec.layers[l - 1]!.neuron ? layerOps(spec.layers[l - 1]!, l - 1) : undefined;
        return {
          z, out, d,
          a: dropout ? this.alloc(n, `a${l}`) : out,
          mask: dropout ? this.alloc(n, `mask${l}`) : 0,
          dout: ops.needsDout ? this.alloc(n, `dout${l}`) : d,
          pushes: pushedBy?.form === "per-neuron" ? this.alloc(rows * fanIn(spec, l) * layer.units, `pushed gradients of w${l}`) : 0,
        };
      }),
    };
  }
}

/** Pointers of the optimizer state's slot blocks, each laid out like the parameters. */
export function stateBlocks(state: OptimizerState): number[] {
  return Array.from({ length: state.slots }, (_, s) => state.slot(s).ptr);
}

/** Sync mode's update items: bands of UPDATE_ROWS weight rows per layer, then one bias item per layer. */
export function updateItems(spec: ResolvedSpec): UpdateItem[] {
  const items: UpdateItem[] = [];
  spec.layers.forEach((_, l) => {
    const rows = fanIn(spec, l);
    if (l === 0 && spec.sparseInputs) items.push({ layer: 0, r0: 0, r1: rows, bias: false, sparse: true });
    else for (let r0 = 0; r0 < rows; r0 += UPDATE_ROWS) items.push({ layer: l, r0, r1: Math.min(rows, r0 + UPDATE_ROWS), bias: false });
    items.push({ layer: l, r0: 0, r1: 0, bias: true });
  });
  // Largest bands first, so the queue ends with small items and threads finish together.
  return items.sort((a, b) => cost(b, spec) - cost(a, spec));
}

function cost(item: UpdateItem, spec: ResolvedSpec): number {
  return item.bias ? spec.layers[item.layer]!.units : (item.r1 - item.r0) * spec.layers[item.layer]!.units;
}
