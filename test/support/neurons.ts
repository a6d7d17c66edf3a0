// Neuron types the tests import by module and export name: a sigmoid in each of the three forms, Swish, Horn's
// StandardNeuron, and broken types whose errors the tests check. Those that are standard-operator expressions carry
// an ONNX composition (onnx); WinnerTakeAll has none (ties aside, it is no elementwise expression), so its export is refused.
import { Neuron, type Synapse } from "../../src/model/neurons/neuron.js";
import { blockNeuron, type OnnxComposition, scalarNeuron } from "../../src/model/neurons/types.js";

export const MODULE = import.meta.url;

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Form 1: sigmoid with its derivative from the output. */
export const SigmoidScalar = scalarNeuron({ f: sigmoid, derivativeFromOutput: (y) => y * (1 - y), onnx: (g, z) => g.op("Sigmoid", [z]), module: MODULE });

/** Form 1: swish z * sigmoid(z), derivative from both. */
export const Swish = scalarNeuron({
  f: (z) => z * sigmoid(z),
  derivative: (z, y) => {
    const s = sigmoid(z);
    return y + s * (1 - y);
  },
  onnx: (g, z) => g.op("Mul", [z, g.op("Sigmoid", [z])]),
  module: MODULE,
});

/** Form 2: sigmoid over the layer's block. */
export const SigmoidBlock = blockNeuron({
  forward(out, z) {
    for (let i = 0; i < z.length; i++) out[i] = sigmoid(z[i]!);
  },
  backward(dz, dout, out) {
    for (let i = 0; i < dz.length; i++) dz[i] = dout[i]! * out[i]! * (1 - out[i]!);
  },
  onnx: (g, z) => g.op("Sigmoid", [z]),
  module: MODULE,
});

/** Form 2: winner-take-all per row (only each row's largest sum passes, unchanged). */
export const WinnerTakeAll = blockNeuron({
  forward(out, z, rows, cols) {
    for (let r = 0; r < rows; r++) {
      let best = r * cols;
      for (let j = 1; j < cols; j++) if (z[r * cols + j]! > z[best]!) best = r * cols + j;
      for (let j = 0; j < cols; j++) out[r * cols + j] = r * cols + j === best ? z[best]! : 0;
    }
  },
  backward(dz, dout, out) {
    for (let i = 0; i < dz.length; i++) dz[i] = out[i] !== 0 ? dout[i]! : 0;
  },
  module: MODULE,
});

/** Form 3: a sigmoid neuron written out (Horn's StandardNeuron with the sigmoid inlined). */
export class SigmoidNeuron extends Neuron {
  static module = MODULE;
  static onnx: OnnxComposition = (g, z) => g.op("Sigmoid", [z]);
  forward(synapses: Iterable<Synapse>): void {
    let sum = 0;
    for (const m of synapses) sum += m.getInput() * m.getWeight();
    this.feedforward(sigmoid(sum));
  }
  backward(synapses: Iterable<Synapse>): void {
    let gradient = 0;
    const output = this.getOutput();
    for (const m of synapses) {
      gradient += m.getDelta() * m.getWeight();
      this.push(output * m.getDelta());
    }
    this.backpropagate(gradient * output * (1 - output));
  }
}

/** Form 3: Horn's StandardNeuron, squashing with the layer's activation. */
export class StandardNeuron extends Neuron {
  static module = MODULE;
  static onnx: OnnxComposition = (g, z) => g.squash(z);
  forward(synapses: Iterable<Synapse>): void {
    let sum = 0;
    for (const m of synapses) sum += m.getInput() * m.getWeight();
    this.feedforward(this.squashingFunction.apply(sum));
  }
  backward(synapses: Iterable<Synapse>): void {
    let gradient = 0;
    for (const m of synapses) {
      gradient += m.getDelta() * m.getWeight();
      this.push(this.getOutput() * m.getDelta());
    }
    this.backpropagate(gradient * this.squashingFunction.applyDerivative(this.getOutput()));
  }
}

/** Broken: forward never calls feedforward. */
export class Silent extends Neuron {
  static module = MODULE;
  forward(): void {}
  backward(): void {
    this.backpropagate(0);
  }
}

/** Broken: pushes one gradient too few. */
export class ShortPush extends StandardNeuron {
  static override module = MODULE;
  override backward(synapses: Iterable<Synapse>): void {
    let first = true;
    for (const m of synapses) {
      if (!first) this.push(m.getDelta());
      first = false;
    }
    this.backpropagate(0);
  }
}

/** Broken: overflows to infinity for large sums. */
export const Exploding = scalarNeuron({ f: (z) => Math.exp(z), derivativeFromOutput: (y) => y, onnx: (g, z) => g.op("Exp", [z]), module: MODULE });

/** Not a neuron type. */
export const NotANeuron = { hello: "world" };
