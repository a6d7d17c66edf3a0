// A layered ANN's parameters in the core's arena (one layout table: w0, b0, w1, b1, ...), their seeded
// initialization, and batched inference through the core's kernels.
import { ShapeError } from "../errors.js";
import type { Kernels } from "../core/kernels.js";
import type { Layout, Slab } from "../runtime/arena.js";
import { mulberry32, normalFrom } from "../util/random.js";
import { activationForward } from "./activations.js";
import { fanIn, outputsOf, resolveSpec, type NetworkSpec, type ResolvedSpec } from "./spec.js";

/** A named copy of one parameter tensor. */
export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Rows per chunk of inference, so scratch stays small whatever the input size. */
const INFERENCE_ROWS = 256;

/** Parameters of a layered network, living in a Kernels arena. */
export class Network {
  readonly spec: ResolvedSpec;
  readonly params: Layout;

  private constructor(
    readonly kernels: Kernels,
    spec: ResolvedSpec,
  ) {
    this.spec = spec;
    this.params = kernels.arena.layout(
      spec.layers.flatMap((layer, l) => [
        { name: `w${l}`, length: fanIn(spec, l) * layer.units },
        { name: `b${l}`, length: layer.units },
      ]),
    );
  }

  /** Allocates the parameters in `kernels`' arena and initializes them from the spec's seed. */
  static create(kernels: Kernels, spec: NetworkSpec | ResolvedSpec): Network {
    const network = new Network(kernels, resolveSpec(spec));
    network.initialize(network.spec.seed);
    return network;
  }

  get inputs(): number {
    return this.spec.inputs;
  }

  get outputs(): number {
    return outputsOf(this.spec);
  }

  /** Weights of layer l: fanIn x units, row-major. */
  weights(l: number): Slab {
    return this.params.get(`w${l}`);
  }

  /** Biases of layer l. */
  bias(l: number): Slab {
    return this.params.get(`b${l}`);
  }

  /** Seeded Xavier (Glorot uniform) or He (normal) weights, zero biases. */
  initialize(seed: number): void {
    const uniform = mulberry32(seed);
    const normal = normalFrom(uniform);
    this.spec.layers.forEach((layer, l) => {
      const n = fanIn(this.spec, l);
      const he = this.spec.init === "he" || (this.spec.init === "auto" && layer.activation === "relu");
      const w = this.weights(l).f32();
      if (he) {
        const std = Math.sqrt(2 / n);
        for (let i = 0; i < w.length; i++) w[i] = std * normal();
      } else {
        const limit = Math.sqrt(6 / (n + layer.units));
        for (let i = 0; i < w.length; i++) w[i] = (2 * uniform() - 1) * limit;
      }
      this.bias(l).f32().fill(0);
    });
  }

  /** Copies of every parameter tensor (w0, b0, ...). */
  tensors(): Tensor[] {
    return this.spec.layers.flatMap((layer, l) => [
      { name: `w${l}`, shape: [fanIn(this.spec, l), layer.units], data: this.weights(l).toArray() },
      { name: `b${l}`, shape: [layer.units], data: this.bias(l).toArray() },
    ]);
  }

  /** Copies tensors in by name; every parameter must be present with its exact shape. */
  setTensors(tensors: ReadonlyArray<Tensor>): void {
    for (const slab of this.params.slabs) {
      const tensor = tensors.find((t) => t.name === slab.name);
      if (!tensor) throw new ShapeError(`parameter ${slab.name} is missing`);
      if (tensor.data.length !== slab.length) {
        throw new ShapeError(`parameter ${slab.name} has ${tensor.data.length} values, the network needs ${slab.length}`);
      }
      slab.set(tensor.data);
    }
  }

  /** Outputs for `rows` samples of `inputs` values each (row-major); copies in and out. */
  predict(x: Float32Array, rows?: number): Float32Array {
    return this.forwardRange(x, 0, this.spec.layers.length - 1, rows);
  }

  /**
   * Runs layers from..to (inclusive) on `rows` samples whose width is layer `from`'s fan-in, e.g. an
   * auto-encoder's encoder (0..k) or decoder (k+1..last). Copies in and out; works in chunks of 256 rows.
   */
  forwardRange(x: Float32Array, from: number, to: number, rows?: number): Float32Array {
    const last = this.spec.layers.length - 1;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= last)) {
      throw new ShapeError(`forward: layers ${from}..${to} are not a range of this network's layers 0..${last}`);
    }
    const width = fanIn(this.spec, from);
    const count = rows ?? x.length / width;
    if (!Number.isInteger(count) || x.length !== count * width) {
      throw new ShapeError(`forward: ${x.length} input values are not rows of ${width} values (the inputs of layer ${from})`);
    }
    const units = this.spec.layers[to]!.units;
    const out = new Float32Array(count * units);
    const chunk = Math.max(1, Math.min(count, INFERENCE_ROWS));
    const widest = Math.max(this.inputs, ...this.spec.layers.map((l) => l.units));
    const scratch = [chunk * width, chunk * widest, chunk * widest, Math.ceil(this.workspaceBytes(chunk) / 4)].map((n) => this.kernels.arena.alloc(n));
    const [input, ping, pong, ws] = scratch as [Slab, Slab, Slab, Slab];
    try {
      for (let r0 = 0; r0 < count; r0 += chunk) {
        const n = Math.min(chunk, count - r0);
        input.set(x.subarray(r0 * width, (r0 + n) * width));
        const result = this.forwardRaw(input.ptr, n, [ping.ptr, pong.ptr], ws.ptr, to, true, from);
        out.set(this.kernels.core.f32().subarray(result >>> 2, (result >>> 2) + n * units), r0 * units);
      }
    } finally {
      for (const slab of scratch) this.kernels.arena.release(slab);
    }
    return out;
  }

  /** Workspace bytes one forward pass of `rows` samples needs. */
  workspaceBytes(rows: number): number {
    const core = this.kernels.core.exports;
    return Math.max(...this.spec.layers.map((layer, l) => core.f32_gemm_workspace_bytes(rows, layer.units, fanIn(this.spec, l))));
  }

  /** Forward pass over raw pointers, alternating two scratch buffers; returns the pointer of the result. */
  forwardRaw(input: number, rows: number, scratch: [number, number], ws: number, upTo = this.spec.layers.length - 1, activateLast = true, from = 0): number {
    const core = this.kernels.core.exports;
    let x = input;
    for (let l = from; l <= upTo; l++) {
      const layer = this.spec.layers[l]!;
      const n = fanIn(this.spec, l);
      const y = scratch[l % 2]!;
      core.f32_gemm(y, layer.units, x, n, this.weights(l).ptr, layer.units, rows, layer.units, n, 0, 0, 1, 0, this.bias(l).ptr, ws);
      if (l < upTo || activateLast) activationForward[layer.activation](core, y, y, rows, layer.units);
      x = y;
    }
    return x;
  }

  /** Releases the parameters' memory; the network must not be used afterwards. */
  dispose(): void {
    this.kernels.arena.release(this.params.block);
  }
}
