// Neuron types for the Horn example and the training benchmark: Apache Horn's StandardNeuron written in
// downpour's per-neuron form (form 3), and the same sigmoid unit as a scalar type (form 1) and a block type (form 2).
import { blockNeuron, Neuron, scalarNeuron } from "downpour";

/**
 * Horn's StandardNeuron: the weighted sum of the incoming synapses, squashed by the layer's function; backward sums
 * the next layer's deltas through the outgoing weights and pushes each outgoing weight's gradient. (Horn pushes the
 * weight correction -learningRate * output * delta + momentum * prevWeight; downpour's optimizer applies the
 * learning rate and momentum, so the neuron pushes the gradient output * delta.)
 */
export class StandardNeuron extends Neuron {
  static module = import.meta.url;

  forward(synapses) {
    let sum = 0;
    for (const m of synapses) sum += m.getInput() * m.getWeight();
    this.feedforward(this.squashingFunction.apply(sum));
  }

  backward(synapses) {
    let gradient = 0;
    for (const m of synapses) {
      gradient += m.getDelta() * m.getWeight();
      this.push(this.getOutput() * m.getDelta());
    }
    this.backpropagate(gradient * this.squashingFunction.applyDerivative(this.getOutput()));
  }
}

const sigmoid = (z) => 1 / (1 + Math.exp(-z));

/** The sigmoid as a scalar type: f and its derivative from the output. */
export const Sigmoid = scalarNeuron({ name: "Sigmoid", f: sigmoid, derivativeFromOutput: (y) => y * (1 - y), module: import.meta.url });

/** The sigmoid as a block type over a layer's rows x cols block. */
export const SigmoidBlock = blockNeuron({
  name: "SigmoidBlock",
  forward(out, z) {
    for (let i = 0; i < z.length; i++) out[i] = 1 / (1 + Math.exp(-z[i]));
  },
  backward(dz, dout, out) {
    for (let i = 0; i < dz.length; i++) dz[i] = dout[i] * out[i] * (1 - out[i]);
  },
  module: import.meta.url,
});
