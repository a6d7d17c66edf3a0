// Optimizer state (SGD velocity, Adagrad squares, Adam moments) kept beside a network's parameters, so that
// training can stop, be saved, and resume exactly; one layout table in the network's arena.
import { ShapeError } from "../errors.js";
import type { Layout } from "../runtime/arena.js";
import type { Network, Tensor } from "../model/network.js";
import { fanIn } from "../model/spec.js";
import type { OptimizerKind } from "./options.js";

const SLOTS: Record<OptimizerKind, number> = { sgd: 1, adagrad: 1, adam: 2 };

export class OptimizerState {
  /** Updates applied so far (Adam's bias correction counts from here). */
  step = 0;
  /** Epochs trained so far (the learning-rate decay counts from here). */
  epochs = 0;

  private constructor(
    readonly network: Network,
    readonly kind: OptimizerKind,
    readonly slots: number,
    readonly layout: Layout | undefined,
  ) {}

  /** Zeroed state for `kind` (plain SGD without momentum keeps none). */
  static create(network: Network, kind: OptimizerKind, momentum = 0.9): OptimizerState {
    const slots = kind === "sgd" && momentum === 0 ? 0 : SLOTS[kind];
    const entries = network.spec.layers.flatMap((layer, l) =>
      Array.from({ length: slots }, (_, s) => [
        { name: `${kind}${s}.w${l}`, length: fanIn(network.spec, l) * layer.units },
        { name: `${kind}${s}.b${l}`, length: layer.units },
      ]).flat(),
    );
    const layout = entries.length ? network.kernels.arena.layout(entries) : undefined;
    return new OptimizerState(network, kind, slots, layout);
  }

  /** Pointers of layer l's weight state slabs. */
  weightState(l: number): number[] {
    return this.names(l, "w").map((n) => this.layout!.get(n).ptr);
  }

  /** Pointers of layer l's bias state slabs. */
  biasState(l: number): number[] {
    return this.names(l, "b").map((n) => this.layout!.get(n).ptr);
  }

  private names(l: number, what: "w" | "b"): string[] {
    return Array.from({ length: this.slots }, (_, s) => `${this.kind}${s}.${what}${l}`);
  }

  /** Copies of every state tensor. */
  tensors(): Tensor[] {
    return (this.layout?.slabs ?? []).map((slab) => ({ name: slab.name, shape: [slab.length], data: slab.toArray() }));
  }

  /** Copies state tensors in by name; all must be present with matching lengths. */
  setTensors(tensors: ReadonlyArray<Tensor>): void {
    for (const slab of this.layout?.slabs ?? []) {
      const t = tensors.find((x) => x.name === slab.name);
      if (!t || t.data.length !== slab.length) throw new ShapeError(`optimizer state ${slab.name} is missing or has the wrong length`);
      slab.set(t.data);
    }
  }

  dispose(): void {
    if (this.layout) this.network.kernels.arena.release(this.layout.block);
  }
}
