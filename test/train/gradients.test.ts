// Whole-network gradients from the training steps (both the prepacked and the plain GEMM path) against central
// finite differences of the mean loss, for every activation and every cost.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createDataset, type Dataset } from "../../src/data/dataset.js";
import { Network } from "../../src/model/network.js";
import type { Activation, Cost } from "../../src/model/spec.js";
import { evaluate } from "../../src/train/evaluate.js";
import { computeGradients } from "../../src/train/gradients.js";
import { kernelsFor, randomArray, seededRandom } from "../helpers.js";

interface Case {
  hidden: Activation;
  output: Activation;
  cost: Cost;
}

const CASES: Case[] = [
  ...(["identity", "sigmoid", "tanh", "relu", "softmax"] as const).map((hidden) => ({ hidden, output: "identity" as const, cost: "squared-error" as const })),
  { hidden: "tanh", output: "sigmoid", cost: "squared-error" },
  { hidden: "sigmoid", output: "tanh", cost: "squared-error" },
  { hidden: "relu", output: "softmax", cost: "squared-error" },
  { hidden: "tanh", output: "sigmoid", cost: "cross-entropy" },
  { hidden: "sigmoid", output: "softmax", cost: "cross-entropy" },
  { hidden: "relu", output: "softmax", cost: "softmax-cross-entropy" },
];

function dataFor(c: Case, random: () => number): Dataset {
  const rows = 7;
  const x = randomArray(random, rows * 4, -1.5, 1.5);
  let y: Float32Array;
  if (c.output === "softmax") {
    y = new Float32Array(rows * 3);
    for (let i = 0; i < rows; i++) y[i * 3 + Math.floor(random() * 3)] = 1;
  } else if (c.output === "sigmoid") {
    y = randomArray(random, rows * 3, 0.05, 0.95);
  } else {
    y = randomArray(random, rows * 3, -0.9, 0.9);
  }
  return createDataset({ features: 4, outputs: 3, x, y });
}

// Analytic gradients of the mean loss over all rows, in layout order (w0, b0, w1, b1), through the public API.
function analyticGradients(network: Network, data: Dataset, packed: boolean): Float32Array[] {
  return computeGradients(network, data, { packed, portion: 3 }).tensors.map((t) => t.data);
}

function numericGradient(network: Network, data: Dataset, slabIndex: number, i: number, h: number): number {
  const view = () => network.params.slabs[slabIndex]!.f32();
  const original = view()[i]!;
  view()[i] = original + h;
  const up = evaluate(network, data).loss;
  view()[i] = original - h;
  const down = evaluate(network, data).loss;
  view()[i] = original;
  return (up - down) / (2 * h);
}

describe("whole-network gradients against finite differences", () => {
  CASES.forEach((c, n) => {
    test(`${c.hidden} hidden, ${c.output} output, ${c.cost}`, { timeout: 30_000 }, async () => {
      const kernels = await kernelsFor("simd");
      const random = seededRandom(500 + n);
      const network = Network.create(kernels, {
        inputs: 4,
        layers: [{ units: 5, activation: c.hidden }, { units: 3, activation: c.output }],
        cost: c.cost,
        init: "xavier",
        seed: 40 + n,
      });
      try {
        const data = dataFor(c, random);
        const plain = analyticGradients(network, data, false);
        const packed = analyticGradients(network, data, true);
        let checked = 0;
        plain.forEach((grads, slabIndex) => {
          assert.deepEqual(packed[slabIndex], grads, `prepacked and plain paths differ in ${network.params.slabs[slabIndex]!.name}`);
          for (let i = 0; i < grads.length; i++) {
            const numeric = numericGradient(network, data, slabIndex, i, 1e-2);
            const analytic = grads[i]!;
            const tolerance = 3e-3 + 3e-2 * Math.abs(numeric);
            assert.ok(Math.abs(numeric - analytic) <= tolerance,
              `${network.params.slabs[slabIndex]!.name}[${i}]: analytic ${analytic}, numeric ${numeric}`);
            checked++;
          }
        });
        assert.equal(checked, 4 * 5 + 5 + 5 * 3 + 3);
      } finally {
        network.dispose();
      }
    });
  });
});
