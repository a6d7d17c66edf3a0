// A layered ANN's parameters in the core's arena (one layout table: w0, b0, w1, b1, ...), their seeded
// initialization, batched inference through the core's kernels, and the guards on its public arguments and lifetime.
import { NOPACK_MAX_ROWS } from "../core/gemm-nopack.js";
import { Kernels } from "../core/kernels.js";
import { InvalidArgumentError, InvalidStateError, MemoryLimitError, ShapeError } from "../errors.js";
import { layoutBytes, raiseLimitHint, type Layout, type LayoutEntry, type Slab } from "../runtime/arena.js";
import { formatBytes, formatCount } from "../util/bytes.js";
import { describeValue } from "../util/describe.js";
import { mulberry32, normalFrom } from "../util/random.js";
import { isPerNeuron, layerOps, type LayerOps, type OpsContext } from "./neurons/ops.js";
import { fanIn, outputsOf, resolveSpec, SpecError, type NetworkSpec, type ResolvedSpec } from "./spec.js";

/** A named copy of one parameter tensor. */
export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Rows per chunk of inference, so scratch stays small whatever the input size. */
const INFERENCE_ROWS = 256;

/** The parameter tensors of a spec, in layout order: w0 (fanIn x units), b0, w1, b1, ... */
export function parameterEntries(spec: ResolvedSpec): LayoutEntry[] {
  return spec.layers.flatMap((layer, l) => [
    { name: `w${l}`, length: fanIn(spec, l) * layer.units },
    { name: `b${l}`, length: layer.units },
  ]);
}

/** "784-128-10": the inputs, then each layer's units. */
export function describeShape(spec: ResolvedSpec): string {
  return [spec.inputs, ...spec.layers.map((layer) => layer.units)].join("-");
}

// Throws MemoryLimitError, before anything is allocated, when the parameters alone need more than the limit.
function requireParametersFit(spec: ResolvedSpec, entries: LayoutEntry[], limitBytes: number): string {
  const count = entries.reduce((sum, e) => sum + e.length, 0);
  const what = `the network ${describeShape(spec)} (${formatCount(count)} parameters)`;
  const neededBytes = layoutBytes(entries);
  if (neededBytes > limitBytes) {
    throw new MemoryLimitError(
      `the network ${describeShape(spec)} has ${formatCount(count)} parameters (${formatBytes(4 * count)} as 32-bit floats), more than the memory limit of ${formatBytes(limitBytes)}${raiseLimitHint(limitBytes)}`,
      { neededBytes, limitBytes, what },
    );
  }
  return what;
}

/**
 * Parameters of a layered network, living in a Kernels arena. After dispose(), every call that reads or writes
 * the parameters (predict, forwardRange, forwardRaw, tensors, setTensors, weights, bias, params, initialize,
 * workspaceBytes) throws InvalidStateError; `spec`, `inputs`, `outputs` and `disposed` stay readable.
 */
export class Network {
  readonly spec: ResolvedSpec;
  private readonly layout: Layout;
  private isDisposed = false;
  /** Each layer's neuron type at run time (on this thread). */
  private readonly ops: LayerOps[];
  private readonly ctx: OpsContext;

  private constructor(
    readonly kernels: Kernels,
    spec: ResolvedSpec,
  ) {
    this.spec = spec;
    this.ops = spec.layers.map((layer, l) => layerOps(layer, l));
    if (spec.sparseInputs && isPerNeuron(this.ops[0])) {
      throw new SpecError(`layers[0]: the per-neuron type ${this.ops[0].name} reads dense inputs; a sparse first layer takes a built-in, scalar or block type`);
    }
    this.ctx = { core: kernels.core.exports, f32: () => kernels.core.f32() };
    const entries = parameterEntries(spec);
    const what = requireParametersFit(spec, entries, kernels.arena.maxBytes);
    this.layout = kernels.arena.layout(entries, what);
  }

  /**
   * Allocates the parameters in `kernels`' arena and initializes them from the spec's seed. Throws SpecError for
   * a bad spec, MemoryLimitError (before allocating) when the parameters need more than the arena's maxBytes,
   * NeuronTypeError when a user neuron type is not loaded on this thread (await loadNeuronTypes(spec) first).
   */
  static create(kernels: Kernels, spec: NetworkSpec | ResolvedSpec): Network {
    if (!(kernels instanceof Kernels)) {
      throw new InvalidArgumentError(`Network.create: kernels must be a Kernels (from Kernels.load()), got ${describeValue(kernels)}`);
    }
    const network = new Network(kernels, resolveSpec(spec));
    network.initialize(network.spec.seed);
    return network;
  }

  /** Whether dispose() was called: the network's memory is freed and every use throws. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /** The parameters' layout table (w0, b0, w1, b1, ...): live memory, not a copy. */
  get params(): Layout {
    this.requireLive("params");
    return this.layout;
  }

  get inputs(): number {
    return this.spec.inputs;
  }

  get outputs(): number {
    return outputsOf(this.spec);
  }

  /** Weights of layer l: fanIn x units, row-major (live memory). */
  weights(l: number): Slab {
    this.requireLayer("weights", l);
    return this.layout.get(`w${l}`);
  }

  /** Biases of layer l (live memory). */
  bias(l: number): Slab {
    this.requireLayer("bias", l);
    return this.layout.get(`b${l}`);
  }

  /** Seeded Xavier (Glorot uniform) or He (normal) weights, zero biases. */
  initialize(seed: number): void {
    this.requireLive("initialize");
    if (!Number.isInteger(seed)) throw new InvalidArgumentError(`initialize: seed must be an integer, got ${describeValue(seed)}`);
    const uniform = mulberry32(seed);
    const normal = normalFrom(uniform);
    this.spec.layers.forEach((layer, l) => {
      const n = fanIn(this.spec, l);
      // "auto": He before relu units (a per-neuron type squashes with its activation; scalar and block types have their own f).
      const form = this.ops[l]!.form;
      const he = this.spec.init === "he" || (this.spec.init === "auto" && layer.activation === "relu" && (form === "kernel" || form === "per-neuron"));
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
    this.requireLive("tensors");
    return this.spec.layers.flatMap((layer, l) => [
      { name: `w${l}`, shape: [fanIn(this.spec, l), layer.units], data: this.weights(l).toArray() },
      { name: `b${l}`, shape: [layer.units], data: this.bias(l).toArray() },
    ]);
  }

  /**
   * Copies tensors in by name; every parameter must be present with its exact length (ShapeError), its data a
   * Float32Array or an array of numbers (InvalidArgumentError). Tensors of other names are ignored.
   */
  setTensors(tensors: ReadonlyArray<Tensor>): void {
    this.requireLive("setTensors");
    if (!Array.isArray(tensors)) {
      throw new InvalidArgumentError(`setTensors: tensors must be an array of { name, shape, data } (as tensors() returns), got ${describeValue(tensors)}`);
    }
    for (const slab of this.layout.slabs) {
      const tensor = tensors.find((t) => t?.name === slab.name);
      if (!tensor) throw new ShapeError(`parameter ${slab.name} is missing`);
      const data = numbers(`setTensors: parameter ${slab.name}'s data`, tensor.data);
      if (data.length !== slab.length) {
        throw new ShapeError(`parameter ${slab.name} has ${data.length} values, the network needs ${slab.length}`);
      }
      slab.set(data);
    }
  }

  /**
   * Outputs for `rows` samples of `inputs` values each (row-major); copies in and out. `x` is a Float32Array, or
   * an array of numbers (copied into one first); `rows` defaults to x.length / inputs.
   */
  predict(x: Float32Array | ReadonlyArray<number>, rows?: number): Float32Array {
    this.requireLive("predict");
    return this.forward("predict", x, 0, this.spec.layers.length - 1, rows);
  }

  /**
   * Runs layers from..to (inclusive) on `rows` samples whose width is layer `from`'s fan-in, e.g. an
   * auto-encoder's encoder (0..k) or decoder (k+1..last). Copies in and out; works in chunks of 256 rows.
   * `x` as for predict.
   */
  forwardRange(x: Float32Array | ReadonlyArray<number>, from: number, to: number, rows?: number): Float32Array {
    this.requireLive("forwardRange");
    const last = this.spec.layers.length - 1;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= last)) {
      throw new InvalidArgumentError(`forwardRange: layers ${describeIndex(from)}..${describeIndex(to)} are not a range of this network's layers 0..${last}`);
    }
    return this.forward("forwardRange", x, from, to, rows);
  }

  /** Workspace bytes one forward pass of `rows` samples needs (next to none up to NOPACK_MAX_ROWS rows: the
   *  unpacked kernel forwardRaw uses for them reads the weights in place). */
  workspaceBytes(rows: number): number {
    this.requireLive("workspaceBytes");
    if (rows <= NOPACK_MAX_ROWS) return 64;
    const core = this.kernels.core.exports;
    return Math.max(...this.spec.layers.map((layer, l) => core.f32_gemm_workspace_bytes(rows, layer.units, fanIn(this.spec, l))));
  }

  /**
   * Forward pass over raw pointers, alternating two scratch buffers; returns the pointer of the result. Chunks of
   * up to NOPACK_MAX_ROWS rows multiply by the unpacked small-m kernel (ws unused), larger ones by f32_gemm.
   */
  forwardRaw(input: number, rows: number, scratch: [number, number], ws: number, upTo = this.spec.layers.length - 1, activateLast = true, from = 0): number {
    this.requireLive("forwardRaw");
    const core = this.kernels.core.exports;
    let x = input;
    for (let l = from; l <= upTo; l++) {
      const layer = this.spec.layers[l]!;
      const n = fanIn(this.spec, l);
      const y = scratch[l % 2]!;
      const ops = this.ops[l]!;
      if (isPerNeuron(ops)) {
        ops.forwardNeurons(this.ctx, y, x, n, this.weights(l).ptr, this.bias(l).ptr, rows);
      } else {
        const w = this.weights(l).ptr;
        const b = this.bias(l).ptr;
        // A few rows: the unpacked kernel (packing W would cost more than the product); more: the packed GEMM.
        if (rows <= NOPACK_MAX_ROWS) core.f32_gemm_nopack(y, layer.units, x, n, w, layer.units, rows, layer.units, n, b);
        else core.f32_gemm(y, layer.units, x, n, w, layer.units, rows, layer.units, n, 0, 0, 1, 0, b, ws);
        if (l < upTo || activateLast) ops.forward(this.ctx, y, y, rows, layer.units);
      }
      x = y;
    }
    return x;
  }

  /**
   * Forward pass of `rows` sparse samples: CSR offsets at `rowPtr` (rows + 1 Int32, absolute into `indices` and
   * `values`), the first layer by the sparse-by-dense kernel into scratch[0], the rest as forwardRaw. Returns the
   * pointer of the result. Throws RangeError naming the position of a feature index outside the inputs.
   */
  forwardSparseRaw(rowPtr: number, indices: number, values: number, rows: number, scratch: [number, number], ws: number, upTo = this.spec.layers.length - 1, activateLast = true): number {
    this.requireLive("forwardSparseRaw");
    const layer = this.spec.layers[0]!;
    const y = scratch[0];
    const bad = this.kernels.core.exports.f32_csr_gemm(y, layer.units, rowPtr, indices, values, this.weights(0).ptr, layer.units, this.spec.inputs, rows, layer.units, this.bias(0).ptr, 0);
    if (bad >= 0) throw new RangeError(`a feature index at position ${bad} is outside [0, ${this.spec.inputs})`);
    if (0 < upTo || activateLast) this.ops[0]!.forward(this.ctx, y, y, rows, layer.units);
    return upTo === 0 ? y : this.forwardRaw(y, rows, scratch, ws, upTo, activateLast, 1);
  }

  /** Releases the parameters' memory. Idempotent: a second call does nothing. Every later use throws InvalidStateError. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.kernels.arena.release(this.layout.block);
  }

  // Runs layers from..to over x after checking x and rows; `kernel` names the public call in errors.
  private forward(kernel: string, input: Float32Array | ReadonlyArray<number>, from: number, to: number, rows: number | undefined): Float32Array {
    const width = fanIn(this.spec, from);
    const widthWords = from === 0 ? `${width} inputs` : `${width} values (the inputs of layer ${from})`;
    const x = numbers(`${kernel}: x`, input, `of rows × ${widthWords}`);
    if (rows !== undefined && !(Number.isInteger(rows) && rows >= 0)) {
      throw new InvalidArgumentError(`${kernel}: rows must be a non-negative integer (the number of samples in x), got ${describeValue(rows)}`);
    }
    const count = rows ?? x.length / width;
    if (!Number.isInteger(count) || x.length !== count * width) {
      const expected = rows === undefined ? `a multiple of ${width}` : `${rows} rows × ${width} = ${rows * width}`;
      throw new ShapeError(`${kernel}: x has ${x.length} values; expected ${expected} (rows of ${widthWords})`);
    }
    const units = this.spec.layers[to]!.units;
    const out = new Float32Array(count * units);
    const chunk = Math.max(1, Math.min(count, INFERENCE_ROWS));
    const widest = Math.max(this.inputs, ...this.spec.layers.map((l) => l.units));
    const scratch = [chunk * width, chunk * widest, chunk * widest, Math.ceil(this.workspaceBytes(chunk) / 4)].map((n) =>
      this.kernels.arena.alloc(n, "", `the scratch space of ${kernel} (${chunk} rows)`),
    );
    const [inputSlab, ping, pong, ws] = scratch as [Slab, Slab, Slab, Slab];
    try {
      for (let r0 = 0; r0 < count; r0 += chunk) {
        const n = Math.min(chunk, count - r0);
        inputSlab.set(x.subarray(r0 * width, (r0 + n) * width));
        const result = this.forwardRaw(inputSlab.ptr, n, [ping.ptr, pong.ptr], ws.ptr, to, true, from);
        out.set(this.kernels.core.f32().subarray(result >>> 2, (result >>> 2) + n * units), r0 * units);
      }
    } finally {
      for (const slab of scratch) this.kernels.arena.release(slab);
    }
    return out;
  }

  // Throws InvalidStateError once the network is disposed: the one boolean every public call checks first.
  private requireLive(use: string): void {
    if (this.isDisposed) throw new InvalidStateError(`${use}: the network was disposed; its memory is freed and may hold another network's data`);
  }

  private requireLayer(use: string, l: number): void {
    this.requireLive(use);
    const last = this.spec.layers.length - 1;
    if (!(Number.isInteger(l) && l >= 0 && l <= last)) {
      throw new InvalidArgumentError(`${use}: layer ${describeIndex(l)} is not one of this network's layers 0..${last}`);
    }
  }
}

// "3", or "the string "a"" for what is not a number: a layer index in messages.
function describeIndex(value: unknown): string {
  return typeof value === "number" ? String(value) : describeValue(value);
}

/**
 * `value` as a Float32Array: itself when it is one, a copy when it is an array of numbers; else InvalidArgumentError
 * "<what> must be a Float32Array <shape>, got ...".
 */
function numbers(what: string, value: unknown, shape = ""): Float32Array {
  if (value instanceof Float32Array) return value;
  const expected = `${what} must be a Float32Array${shape ? ` ${shape}` : ""} (or an array of numbers)`;
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${expected}, got ${describeValue(value)}`);
  const bad = value.findIndex((v) => typeof v !== "number");
  if (bad >= 0) throw new InvalidArgumentError(`${expected}, got an array whose element ${bad} is ${describeValue(value[bad])}`);
  return Float32Array.from(value);
}
