// Optimizer state (SGD velocity, Adagrad squares, Adam moments) kept beside a network's parameters, so that
// training can stop, be saved, and resume exactly. Each slot is one block laid out exactly like the parameters
// (as llm.c's m_memory and v_memory), so a flat offset names the same key in parameters, gradients and state.
import { ShapeError } from "../errors.js";
import type { Layout, Slab } from "../runtime/arena.js";
import type { Network, Tensor } from "../model/network.js";
import { fanIn } from "../model/spec.js";
import type { OptimizerKind } from "./options.js";

const SLOTS: Record<OptimizerKind, number> = { sgd: 1, adagrad: 1, adam: 2 };

/** The state slots an optimizer keeps: velocity (sgd with momentum), squares (adagrad), m and v (adam). */
export function stateSlots(kind: OptimizerKind, momentum: number): number {
  return kind === "sgd" && momentum === 0 ? 0 : SLOTS[kind];
}

/** Optimizer state of one network: a step and epoch count and `slots` blocks shaped like its parameters. */
export class OptimizerState {
  /** Updates applied so far (Adam's bias correction counts from here). */
  step = 0;
  /** Epochs trained so far (the learning-rate decay counts from here). */
  epochs = 0;

  private constructor(
    readonly network: Network,
    readonly kind: OptimizerKind,
    readonly slots: number,
    private readonly layouts: Layout[],
  ) {}

  /** Zeroed state for `kind` (plain SGD without momentum keeps none). Tensors are named `${kind}${slot}.w0` etc. */
  static create(network: Network, kind: OptimizerKind, momentum = 0.9): OptimizerState {
    const slots = stateSlots(kind, momentum);
    const layouts = Array.from({ length: slots }, (_, s) =>
      network.kernels.arena.layout(
        network.spec.layers.flatMap((layer, l) => [
          { name: `${kind}${s}.w${l}`, length: fanIn(network.spec, l) * layer.units },
          { name: `${kind}${s}.b${l}`, length: layer.units },
        ]),
      ),
    );
    return new OptimizerState(network, kind, slots, layouts);
  }

  /** Slot s's whole block (same length and layout as network.params.block). Live memory, not a copy. */
  slot(s: number): Slab {
    const layout = this.layouts[s];
    if (!layout) throw new ShapeError(`optimizer state has ${this.slots} slots; there is no slot ${s}`);
    return layout.block;
  }

  /** Copies of every state tensor. */
  tensors(): Tensor[] {
    return this.layouts.flatMap((layout) => layout.slabs.map((slab) => ({ name: slab.name, shape: [slab.length], data: slab.toArray() })));
  }

  /** Copies state tensors in by name (any order, as older model files stored them); all must be present with matching lengths. */
  setTensors(tensors: ReadonlyArray<Tensor>): void {
    for (const slab of this.layouts.flatMap((layout) => layout.slabs)) {
      const t = tensors.find((x) => x.name === slab.name);
      if (!t || t.data.length !== slab.length) throw new ShapeError(`optimizer state ${slab.name} is missing or has the wrong length`);
      slab.set(t.data);
    }
  }

  dispose(): void {
    for (const layout of this.layouts.splice(0)) this.network.kernels.arena.release(layout.block);
  }
}
