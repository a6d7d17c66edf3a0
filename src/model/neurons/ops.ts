// What one hidden layer's neuron type does at run time, over byte pointers into the arena: the built-ins call the
// core's kernels; scalar and block types run the user's function over the layer's block (the weighted sums stay
// GEMM calls); per-neuron types run Horn's forward/backward per unit and sample, reading synapses in place.
import type { CoreExports } from "../../runtime/exports.js";
import { activationBackward, activationForward } from "../activations.js";
import type { Activation } from "./builtin-names.js";
import { BackwardSynapses, ForwardSynapses, type Neuron, NeuronCursor, type NeuronClass } from "./neuron.js";
import { neuronEntry } from "./registry.js";
import { SpecError } from "../spec.js";
import { SQUASHING_FUNCTIONS } from "./squash.js";
import { NeuronRunError, type BlockNeuronType, type NeuronForm, type NeuronRef, type ScalarNeuronType } from "./types.js";

/** The core and a fresh view of its memory. */
export interface OpsContext {
  core: CoreExports;
  f32(): Float32Array;
}

/** A layer as its ops need it. */
export interface OpsLayer {
  units: number;
  activation: Activation;
  dropout: number;
  neuron?: NeuronRef;
}

/** One hidden layer's neuron type at run time. out, z, dz, dout: byte pointers to rows x cols blocks. */
export interface LayerOps {
  readonly form: NeuronForm;
  readonly name: string;
  /** Backward reads the weighted sums z, so they must be kept apart from the outputs. */
  readonly keepsZ: boolean;
  /** Backward needs dLoss/dout in its own buffer (dz is written apart from it). */
  readonly needsDout: boolean;
  /** out = f(z); out may be z unless keepsZ. Not for per-neuron types. */
  forward(ctx: OpsContext, out: number, z: number, rows: number, cols: number): void;
  /** dz = f'(.) * dout; dz may be dout unless needsDout. */
  backward(ctx: OpsContext, dz: number, dout: number, out: number, z: number, rows: number, cols: number): void;
}

class KernelOps implements LayerOps {
  readonly form = "kernel";
  readonly keepsZ = false;
  readonly needsDout = false;
  constructor(readonly name: Activation) {}

  forward(ctx: OpsContext, out: number, z: number, rows: number, cols: number): void {
    activationForward[this.name](ctx.core, out, z, rows, cols);
  }

  backward(ctx: OpsContext, dz: number, dout: number, out: number, _z: number, rows: number, cols: number): void {
    activationBackward[this.name](ctx.core, dz, dout, out, rows, cols);
  }
}

class ScalarOps implements LayerOps {
  readonly form = "scalar";
  readonly needsDout = false;
  readonly keepsZ: boolean;
  constructor(readonly name: string, private readonly type: ScalarNeuronType, private readonly uses: "output" | "input" | "both") {
    this.keepsZ = uses !== "output";
  }

  forward(ctx: OpsContext, out: number, z: number, rows: number, cols: number): void {
    const f32 = ctx.f32();
    const t = this.type;
    const n = rows * cols;
    for (let i = z >>> 2, o = out >>> 2, end = (z >>> 2) + n; i < end; i++, o++) f32[o] = t.f(f32[i]!);
  }

  backward(ctx: OpsContext, dz: number, dout: number, out: number, z: number, rows: number, cols: number): void {
    const f32 = ctx.f32();
    const t = this.type;
    const n = rows * cols;
    const d = dz >>> 2, g = dout >>> 2, y = out >>> 2, x = z >>> 2;
    if (this.uses === "output") for (let i = 0; i < n; i++) f32[d + i] = f32[g + i]! * t.derivativeFromOutput!(f32[y + i]!);
    else if (this.uses === "input") for (let i = 0; i < n; i++) f32[d + i] = f32[g + i]! * t.derivativeFromInput!(f32[x + i]!);
    else for (let i = 0; i < n; i++) f32[d + i] = f32[g + i]! * t.derivative!(f32[x + i]!, f32[y + i]!);
  }
}

class BlockOps implements LayerOps {
  readonly form = "block";
  readonly keepsZ = true;
  readonly needsDout = true;
  private copy = new Float32Array(0);
  constructor(readonly name: string, private readonly type: BlockNeuronType) {}

  forward(ctx: OpsContext, out: number, z: number, rows: number, cols: number): void {
    const f32 = ctx.f32();
    const n = rows * cols;
    let zs = f32.subarray(z >>> 2, (z >>> 2) + n);
    if (out === z) {
      if (this.copy.length < n) this.copy = new Float32Array(n);
      this.copy.set(zs);
      zs = this.copy.subarray(0, n);
    }
    this.type.forward(f32.subarray(out >>> 2, (out >>> 2) + n), zs, rows, cols);
  }

  backward(ctx: OpsContext, dz: number, dout: number, out: number, z: number, rows: number, cols: number): void {
    const f32 = ctx.f32();
    const n = rows * cols;
    const view = (p: number) => f32.subarray(p >>> 2, (p >>> 2) + n);
    this.type.backward(view(dz), view(dout), view(out), view(z), rows, cols);
  }
}

/** Per-neuron (Horn) ops: one instance of the class per unit on this thread. */
export class PerNeuronOps implements LayerOps {
  readonly form = "per-neuron";
  readonly keepsZ = false;
  readonly needsDout = false;
  private instances: Neuron[] = [];
  private readonly cursor = new NeuronCursor();
  private readonly incoming = new ForwardSynapses();
  private readonly outgoing = new BackwardSynapses();

  constructor(
    readonly name: string,
    private readonly type: NeuronClass,
    private readonly layer: number,
    private readonly units: number,
    private readonly squash: Activation,
  ) {}

  forward(): void {
    throw new Error("PerNeuronOps.forward: per-neuron layers compute their own sums; call forwardNeurons");
  }

  backward(): void {
    throw new Error("PerNeuronOps.backward: per-neuron layers read outgoing synapses; call backwardNeurons");
  }

  /** out (rows x units) from input (rows x fanIn), w (fanIn x units) and b, one forward() per unit and row. */
  forwardNeurons(ctx: OpsContext, out: number, input: number, fanIn: number, w: number, b: number, rows: number): void {
    const neurons = this.neurons();
    const c = this.cursor;
    const s = this.incoming;
    const f32 = ctx.f32();
    c.f32 = f32;
    s.f32 = f32;
    s.fanIn = fanIn;
    s.weightStride = this.units;
    for (let r = 0; r < rows; r++) {
      s.inputAt = (input >>> 2) + r * fanIn;
      for (let j = 0; j < this.units; j++) {
        c.outAt = (out >>> 2) + r * this.units + j;
        c.fed = false;
        s.weightAt = (w >>> 2) + j;
        s.biasAt = (b >>> 2) + j;
        neurons[j]!.forward(s);
        if (!c.fed) throw this.runError(j, "forward() returned without calling feedforward(output)");
      }
    }
  }

  /**
   * dz (rows x units) and the pushed gradients (rows x units x next) from the next layer's deltas dNext
   * (rows x next) and weights wNext (units x next), one backward() per unit and row.
   */
  backwardNeurons(ctx: OpsContext, dz: number, pushes: number, out: number, dNext: number, wNext: number, next: number, rows: number): void {
    const neurons = this.neurons();
    const c = this.cursor;
    const s = this.outgoing;
    const f32 = ctx.f32();
    c.f32 = f32;
    s.f32 = f32;
    c.pushLimit = next;
    s.size = next;
    for (let r = 0; r < rows; r++) {
      s.deltaAt = (dNext >>> 2) + r * next;
      for (let j = 0; j < this.units; j++) {
        const at = r * this.units + j;
        c.outAt = (out >>> 2) + at;
        c.deltaAt = (dz >>> 2) + at;
        c.pushAt = (pushes >>> 2) + at * next;
        c.pushes = 0;
        c.backpropagated = false;
        s.ownOutput = f32[c.outAt]!;
        s.weightAt = (wNext >>> 2) + j * next;
        neurons[j]!.backward(s);
        if (c.pushes !== next) throw this.runError(j, `backward() pushed ${c.pushes} weight gradients for its ${next} outgoing synapses; push(gradient) once per synapse, in order`);
        if (!c.backpropagated) throw this.runError(j, "backward() returned without calling backpropagate(delta)");
      }
    }
  }

  private runError(unit: number, what: string): NeuronRunError {
    return new NeuronRunError(`neuron type ${this.name} (layer ${this.layer}, unit ${unit}): ${what}`);
  }

  private neurons(): Neuron[] {
    if (this.instances.length) return this.instances;
    const squash = SQUASHING_FUNCTIONS[this.squash as keyof typeof SQUASHING_FUNCTIONS];
    this.instances = Array.from({ length: this.units }, (_, j) => {
      const neuron = new this.type();
      neuron.squashingFunction = squash;
      neuron.cursor = this.cursor;
      neuron.layerIndex = this.layer;
      neuron.unitIndex = j;
      return neuron;
    });
    return this.instances;
  }
}

/** The ops of layer `l` (its neuron type must be loaded on this thread). */
export function layerOps(layer: OpsLayer, l: number): LayerOps {
  const classified = neuronEntry(layer, layer.neuron ? `layers[${l}].neuron` : `layers[${l}].activation`);
  if (classified.form === "kernel") return new KernelOps(classified.name);
  const name = classified.name;
  if (classified.form === "scalar") return new ScalarOps(name, classified.type, classified.uses);
  if (classified.form === "block") return new BlockOps(name, classified.type);
  if (layer.activation === "softmax") {
    throw new SpecError(`layers[${l}]: the per-neuron type ${name} squashes each unit alone; softmax is not elementwise (use identity, sigmoid, tanh or relu as its activation)`);
  }
  if (layer.dropout > 0) throw new SpecError(`layers[${l}]: dropout is not supported on a per-neuron layer (${name}); use a scalar or block type, or dropout 0`);
  return new PerNeuronOps(name, classified.type, l, layer.units, layer.activation);
}

/** Whether a layer's ops are per-neuron. */
export function isPerNeuron(ops: LayerOps | undefined): ops is PerNeuronOps {
  return ops?.form === "per-neuron";
}
