// A user-defined sigmoid in each of the three forms (scalar, block, per-neuron) against the built-in sigmoid: the
// same whole-network gradients within 1e-5, and the same learning on XOR, Pima and an MNIST subset (each form
// reaches the threshold the built-in does, and lands within a point of its accuracy), trained on worker threads
// that import the types themselves.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MultiLayerPerceptron } from "../../src/api/models.js";
import { createDataset, holdOut, sliceRows, type Dataset } from "../../src/data/dataset.js";
import { readCsv } from "../../src/data/csv.js";
import { loadMnist } from "../../src/data/mnist.js";
import { minMaxNormalize } from "../../src/data/normalize.js";
import { Network } from "../../src/model/network.js";
import { loadNeuronTypes } from "../../src/model/neurons/registry.js";
import { resolveSpec, type LayerSpec, type NetworkSpec } from "../../src/model/spec.js";
import { computeGradients } from "../../src/train/gradients.js";
import { kernelsFor, randomArray, seededRandom } from "../helpers.js";
import { MODULE } from "../support/neurons.js";
import { sharedData } from "../support/paths.js";

const TIMEOUT = { timeout: 120_000 };

/** The built-in sigmoid and the user's sigmoid in each form, as a hidden layer's fields. */
const FORMS: Array<{ name: string; layer: Omit<LayerSpec, "units"> }> = [
  { name: "built-in", layer: { activation: "sigmoid" } },
  { name: "form 1 (scalar)", layer: { activation: "sigmoid", neuron: `${MODULE}#SigmoidScalar` } },
  { name: "form 2 (block)", layer: { activation: "sigmoid", neuron: `${MODULE}#SigmoidBlock` } },
  { name: "form 3 (per neuron)", layer: { activation: "sigmoid", neuron: `${MODULE}#SigmoidNeuron` } },
  { name: "form 3 (Horn's StandardNeuron, sigmoid)", layer: { activation: "sigmoid", neuron: `${MODULE}#StandardNeuron` } },
];

async function gradientsOf(spec: NetworkSpec, data: Dataset, packed: boolean): Promise<Float32Array[]> {
  const resolved = resolveSpec(spec);
  await loadNeuronTypes(resolved);
  const network = Network.create(await kernelsFor("simd"), resolved);
  try {
    return computeGradients(network, data, { packed, portion: 3 }).tensors.map((t) => t.data);
  } finally {
    network.dispose();
  }
}

function randomData(seed: number, rows: number, features: number, outputs: number): Dataset {
  const random = seededRandom(seed);
  const y = new Float32Array(rows * outputs);
  for (let r = 0; r < rows; r++) y[r * outputs + Math.floor(random() * outputs)] = 1;
  return createDataset({ features, outputs, x: randomArray(random, rows * features, -2, 2), y });
}

async function trainedAccuracy(form: Omit<LayerSpec, "units">, units: number, train: Dataset, held: Dataset, fit: Parameters<MultiLayerPerceptron["fit"]>[1]): Promise<number> {
  const model = await MultiLayerPerceptron.create({
    inputs: train.features, outputs: train.outputs, hidden: [units], hiddenActivation: "sigmoid", hiddenNeuron: form.neuron, seed: 3,
  });
  try {
    await model.fit(train, fit);
    return model.evaluate(held).accuracy!;
  } finally {
    model.dispose();
  }
}

describe("a user sigmoid in each form matches the built-in", () => {
  test("whole-network gradients within 1e-5 (one and two hidden layers of the type, both GEMM paths)", TIMEOUT, async () => {
    const shapes = [
      { hidden: [5], data: randomData(11, 9, 4, 3) },
      { hidden: [6, 5], data: randomData(12, 9, 4, 3) },
    ];
    for (const { hidden, data } of shapes) {
      for (const packed of [true, false]) {
        const specOf = (layer: Omit<LayerSpec, "units">): NetworkSpec => ({
          inputs: 4, layers: [...hidden.map((units) => ({ units, ...layer })), { units: 3, activation: "softmax" }], init: "xavier", seed: 5,
        });
        const reference = await gradientsOf(specOf(FORMS[0]!.layer), data, packed);
        for (const form of FORMS.slice(1)) {
          const grads = await gradientsOf(specOf(form.layer), data, packed);
          grads.forEach((g, t) => {
            g.forEach((v, i) => {
              assert.ok(Math.abs(v - reference[t]![i]!) <= 1e-5, `${form.name}, hidden ${hidden}, tensor ${t}[${i}]: ${v} vs built-in ${reference[t]![i]}`);
            });
          });
        }
      }
    }
  });

  test("XOR: every form gets each output within 0.1 of its target (2-3-1, 2 threads)", TIMEOUT, async () => {
    const xor = createDataset({ features: 2, outputs: 1, x: new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]), y: new Float32Array([0, 1, 1, 0]) });
    for (const form of FORMS) {
      const model = await MultiLayerPerceptron.create({ inputs: 2, hidden: [3], outputs: 1, hiddenActivation: "sigmoid", hiddenNeuron: form.layer.neuron, cost: "squared-error", seed: 3 });
      try {
        await model.fit(xor, { epochs: 2000, batchSize: 4, portion: 1, learningRate: 2, momentum: 0.9, threads: 2 });
        model.predict(xor.x).forEach((v, i) => {
          assert.ok(Math.abs(v - xor.y[i]!) < 0.1, `${form.name}: XOR output ${i} is ${v}, target ${xor.y[i]}`);
        });
      } finally {
        model.dispose();
      }
    }
  });

  test("Pima: every form reaches >= 0.74 held-out accuracy (8-8-1, 2 threads), within 0.01 of the built-in", TIMEOUT, async () => {
    const pima = await readCsv(sharedData("pima-diabetes.csv"), { header: false });
    const { train, test: held } = holdOut(pima, 100);
    const { dataset: trainN, stats } = minMaxNormalize(train);
    const { dataset: heldN } = minMaxNormalize(held, stats);
    const fit = { epochs: 150, batchSize: 32, portion: 8, learningRate: 0.5, momentum: 0.9, threads: 2 };
    const accuracies: number[] = [];
    for (const form of FORMS) accuracies.push(await trainedAccuracy(form.layer, 8, trainN, heldN, fit));
    accuracies.forEach((a, i) => {
      assert.ok(a >= 0.74, `${FORMS[i]!.name}: held-out accuracy ${a}`);
      assert.ok(Math.abs(a - accuracies[0]!) <= 0.01, `${FORMS[i]!.name}: ${a} against the built-in's ${accuracies[0]}`);
    });
  });

  test("an MNIST subset: every form reaches >= 0.87 test accuracy (784-32-10, 6000 rows, 3 epochs, 2 threads), within 0.01 of the built-in", TIMEOUT, async () => {
    const { train, test: testSet } = await loadMnist(sharedData("mnist"));
    const subset = sliceRows(train, 0, 6000);
    const held = sliceRows(testSet, 0, 2000);
    const fit = { epochs: 3, batchSize: 32, learningRate: 0.1, momentum: 0.9, threads: 2 };
    const accuracies: number[] = [];
    for (const form of FORMS.slice(0, 4)) accuracies.push(await trainedAccuracy(form.layer, 32, subset, held, fit));
    accuracies.forEach((a, i) => {
      assert.ok(a >= 0.87, `${FORMS[i]!.name}: MNIST subset test accuracy ${a}`);
      assert.ok(Math.abs(a - accuracies[0]!) <= 0.01, `${FORMS[i]!.name}: ${a} against the built-in's ${accuracies[0]}`);
    });
  });
});
