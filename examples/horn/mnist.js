// Apache Horn's MNIST example in downpour: a 784-100-10 MLP whose hidden layer is Horn's StandardNeuron (the
// per-neuron form, examples/horn/neurons.js), configured with the Job builder as Horn's HornJob, with Horn's
// layout (784-100-10, momentum 0.9, mini-batches of 10, 2 epochs = its 12000 iterations); Horn averaged nothing, so its learning rate 0.01 on summed updates is 0.1 on our mean gradient, and L2 is 0.0001. `--form scalar` runs the
// same network with the sigmoid as a scalar type; `--form builtin` with the core's sigmoid kernel.
// Run: node examples/horn/mnist.js [--form per-neuron|scalar|builtin] [--epochs 2] [--threads N] [--data DIR] [--json]
// (data: `npx downpour data get mnist`, or DOWNPOUR_DATA=<folder holding mnist/>).
import { parseArgs } from "node:util";
import { job } from "downpour";
import { findMnist, loadMnist } from "downpour/node";
import { Sigmoid, StandardNeuron } from "./neurons.js";

const { values } = parseArgs({
  options: {
    form: { type: "string", default: "per-neuron" },
    epochs: { type: "string", default: "2" },
    threads: { type: "string" },
    data: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const HIDDEN = { "per-neuron": StandardNeuron, scalar: Sigmoid, builtin: undefined };
if (!(values.form in HIDDEN)) throw new Error(`--form must be one of ${Object.keys(HIDDEN).join(", ")}, got ${values.form}`);
const dir = values.data ?? findMnist();
if (!dir) throw new Error("MNIST not found: run `npx downpour data get mnist`, or pass --data DIR");
const { train, test } = await loadMnist(dir);

const started = performance.now();
const { model, reports } = await job()
  .inputLayer(784)
  .addLayer(100, "sigmoid", HIDDEN[values.form])
  .outputLayer(10, "softmax")
  .cost("softmax-cross-entropy")
  .learningRate(0.1)
  .momentum(0.9)
  .set({ l2: 0.0001, seed: 1, portion: 2, ...(values.threads === undefined ? {} : { threads: Number(values.threads) }) })
  .batchSize(10)
  .epochs(Number(values.epochs))
  .init("xavier", 1)
  .train(train);
const seconds = (performance.now() - started) / 1000;
const accuracy = model.evaluate(test).accuracy;
const samplesPerSecond = reports.reduce((sum, r) => sum + r.samplesPerSecond, 0) / reports.length;
model.dispose();
const result = { form: values.form, epochs: reports.length, accuracy, seconds, samplesPerSecond };
if (values.json) console.log(JSON.stringify(result));
else console.log(`${values.form}: test accuracy ${(100 * accuracy).toFixed(2)}% after ${reports.length} epochs, ${seconds.toFixed(1)} s (${Math.round(samplesPerSecond)} samples/s)`);
