// Whole-network gradients from the training steps (both the prepacked and the plain GEMM path) against central
// finite differences of the mean loss, for every activation and every cost: checkNeuron's gradient check
// (src/api/neuron-check.ts) on the built-in types, with every output activation and cost.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createDataset, type Dataset } from "../../src/data/dataset.js";
import { Network } from "../../src/model/network.js";
import type { Activation, Cost } from "../../src/model/spec.js";
import { gradientCheck } from "../../src/api/neuron-check.js";
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
        const result = gradientCheck(network, dataFor(c, random));
        assert.equal(result.pathsDiffer, undefined, `prepacked and plain paths differ in ${result.pathsDiffer}`);
        assert.deepEqual(result.failures, []);
        assert.ok(result.kinks <= 2, `${result.kinks} parameters at kinks`);
        assert.equal(result.checked + result.kinks, 4 * 5 + 5 + 5 * 3 + 3);
      } finally {
        network.dispose();
      }
    });
  });
});
