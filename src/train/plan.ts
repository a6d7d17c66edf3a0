// The memory plan of a training run: every buffer the workers touch, allocated in the shared arena and
// described by byte pointers, so the plan can be posted to worker threads as plain data.
import type { Arena, Slab } from "../runtime/arena.js";
import type { Network } from "../model/network.js";
import { fanIn, type Activation, type ResolvedSpec } from "../model/spec.js";
import type { ResolvedTrainOptions } from "./options.js";
import type { OptimizerState } from "./state.js";

/** A layer's parameters, optimizer state and (sync mode) prepacked weights. */
export interface LayerPlan {
  inputs: number;
  units: number;
  activation: Activation;
  keep: number; // 1 - dropout
  w: number;
  b: number;
  /** Optimizer state slabs for w and b: [velocity] for sgd, [squares] for adagrad, [m, v] for adam. */
  stateW: number[];
  stateB: number[];
  packedW: number; // op(B) = W, for the forward pass (sync mode)
  packedWT: number; // op(B) = W^T, for the backward pass (sync mode, layers after the first)
}

/** Per-layer activations, dropout mask and deltas for `rows` samples, plus gradients. */
export interface BufferSet {
  rows: number;
  xb: number;
  tb: number;
  layers: Array<{ z: number; out: number; a: number; mask: number; d: number; gw: number; gb: number }>;
}

/** One update work item of sync mode's second phase: rows [r0, r1) of a layer's weights, or its bias. */
export interface UpdateItem {
  layer: number;
  r0: number;
  r1: number;
  bias: boolean;
}

/** Everything a worker needs to train, as byte pointers and numbers. */
export interface TrainPlan {
  spec: ResolvedSpec;
  options: ResolvedTrainOptions;
  threads: number;
  samples: number;
  x: number;
  y: number;
  perm: number;
  layers: LayerPlan[];
  sets: BufferSet[];
  workspaces: number[];
  updateItems: UpdateItem[];
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

  /** Runs `cleanup` on release (for memory the plan uses but did not allocate itself). */
  onRelease(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  release(): void {
    for (const slab of this.slabs.splice(0)) this.arena.release(slab);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }

  layers(network: Network, state: OptimizerState, sync: boolean, packedBytes: (n: number, k: number) => number): LayerPlan[] {
    const spec = network.spec;
    return spec.layers.map((layer, l) => {
      const inputs = fanIn(spec, l);
      const units = layer.units;
      return {
        inputs, units, activation: layer.activation, keep: 1 - layer.dropout,
        w: network.weights(l).ptr,
        b: network.bias(l).ptr,
        stateW: state.weightState(l),
        stateB: state.biasState(l),
        packedW: sync ? this.alloc(packedBytes(units, inputs) / 4, `packed w${l}`) : 0,
        packedWT: sync && l > 0 ? this.alloc(packedBytes(inputs, units) / 4, `packed w${l}^T`) : 0,
      };
    });
  }

  bufferSet(spec: ResolvedSpec, rows: number): BufferSet {
    const last = spec.layers.length - 1;
    return {
      rows,
      xb: this.alloc(rows * spec.inputs, "batch inputs"),
      tb: this.alloc(rows * spec.layers[last]!.units, "batch targets"),
      layers: spec.layers.map((layer, l) => {
        const n = rows * layer.units;
        const z = this.alloc(n, `z${l}`);
        const dropout = layer.dropout > 0;
        const out = l === last ? this.alloc(n, `out${l}`) : z;
        return {
          z, out,
          a: dropout ? this.alloc(n, `a${l}`) : out,
          mask: dropout ? this.alloc(n, `mask${l}`) : 0,
          d: this.alloc(n, `d${l}`),
          gw: this.alloc(fanIn(spec, l) * layer.units, `grad w${l}`),
          gb: this.alloc(layer.units, `grad b${l}`),
        };
      }),
    };
  }
}

/** Sync mode's update items: bands of UPDATE_ROWS weight rows per layer, then one bias item per layer. */
export function updateItems(spec: ResolvedSpec): UpdateItem[] {
  const items: UpdateItem[] = [];
  spec.layers.forEach((_, l) => {
    const rows = fanIn(spec, l);
    for (let r0 = 0; r0 < rows; r0 += UPDATE_ROWS) items.push({ layer: l, r0, r1: Math.min(rows, r0 + UPDATE_ROWS), bias: false });
    items.push({ layer: l, r0: 0, r1: 0, bias: true });
  });
  // Largest bands first, so the queue ends with small items and threads finish together.
  return items.sort((a, b) => cost(b, spec) - cost(a, spec));
}

function cost(item: UpdateItem, spec: ResolvedSpec): number {
  return item.bias ? spec.layers[item.layer]!.units : (item.r1 - item.r0) * spec.layers[item.layer]!.units;
}
