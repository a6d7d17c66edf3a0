// One layout for parameters, gradients and optimizer state: every block has the parameters' length and offsets,
// so a flat key names the same parameter everywhere; model files that stored the state in the older order (per
// layer, then per slot) still load; the public gradient equals what a sync step applies.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { modelContents, modelFromContents } from "../../src/api/model-bytes.js";
import { MultiLayerPerceptron } from "../../src/api/models.js";
import { Kernels } from "../../src/core/kernels.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { Network } from "../../src/model/network.js";
import { computeGradients } from "../../src/train/gradients.js";
import { LocalTrainer } from "../../src/train/trainer.js";
import { OptimizerState } from "../../src/train/state.js";

const SPEC = { inputs: 5, layers: [{ units: 3, activation: "tanh" as const }, { units: 2, activation: "softmax" as const }], seed: 2 };

describe("the parameter layout", () => {
  test("every optimizer-state slot is a block shaped and ordered like the parameters", async () => {
    const kernels = await Kernels.load();
    const network = Network.create(kernels, SPEC);
    const state = OptimizerState.create(network, "adam");
    const params = network.params;
    for (let s = 0; s < 2; s++) {
      const block = state.slot(s);
      assert.equal(block.length, params.block.length);
      for (const slab of params.slabs) {
        const twin = state.tensors().find((t) => t.name === `adam${s}.${slab.name}`);
        assert.ok(twin, `adam${s}.${slab.name} is missing`);
        assert.equal(twin.data.length, slab.length);
      }
    }
    // Write a recognisable value per key into slot 1 and read it back through the named tensors.
    const keys = state.slot(1).f32();
    for (let i = 0; i < keys.length; i++) keys[i] = i;
    for (const slab of params.slabs) {
      const offset = (slab.ptr - params.block.ptr) / 4;
      const tensor = state.tensors().find((t) => t.name === `adam1.${slab.name}`)!;
      assert.equal(tensor.data[0], offset, `adam1.${slab.name} does not start at its parameter's key ${offset}`);
    }
    state.dispose();
    network.dispose();
  });

  test("a model file with the state tensors in the older per-layer order loads with the same state", async () => {
    const kernels = await Kernels.load();
    const model = await MultiLayerPerceptron.create({ inputs: 5, hidden: [3], outputs: 2, seed: 2 }, { kernels });
    const data = syntheticClassification({ size: 40, features: 5, classes: 2, seed: 1 });
    await model.fit(data, { epochs: 2, batchSize: 8, threads: 0, optimizer: "adam", learningRate: 0.01 });
    // Reorder the optimizer tensors as files written before the layout change had them: per layer, then per slot.
    const contents = modelContents(model);
    const rank = (name: string): number => {
      const [, slot, , layer] = /^adam(\d)\.(w|b)(\d)$/.exec(name) ?? [];
      return slot === undefined ? -1 : Number(layer) * 10 + Number(slot);
    };
    const older = { ...contents, tensors: [...contents.tensors].sort((a, b) => (a.group === b.group ? rank(a.name) - rank(b.name) : 0)) };
    assert.notDeepEqual(older.tensors.map((t) => t.name), contents.tensors.map((t) => t.name));
    const loaded = await modelFromContents(older, "an older model file", { kernels });
    assert.deepEqual(loaded.state!.tensors().sort((a, b) => a.name.localeCompare(b.name)), model.state!.tensors().sort((a, b) => a.name.localeCompare(b.name)));
    assert.equal(loaded.state!.step, model.state!.step);
    loaded.dispose();
    model.dispose();
  });

  test("computeGradients is the step sync training applies: w1 = w0 - lr * g for plain SGD", async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, SPEC);
    const data = syntheticClassification({ size: 24, features: 5, classes: 2, seed: 3 });
    const before = network.tensors();
    const { tensors, loss } = computeGradients(network, data);
    assert.ok(loss > 0 && Number.isFinite(loss));
    assert.deepEqual(network.tensors(), before, "computeGradients changed the parameters");
    const trainer = await LocalTrainer.create(network, data, { epochs: 1, batchSize: 24, shuffle: false, momentum: 0, learningRate: 0.5, threads: 0 });
    await trainer.train();
    await trainer.close();
    network.tensors().forEach((after, i) => {
      after.data.forEach((v, j) => {
        const expected = before[i]!.data[j]! - 0.5 * tensors[i]!.data[j]!;
        assert.ok(Math.abs(v - expected) <= 1e-6, `${after.name}[${j}]: ${v}, expected ${expected}`);
      });
    });
    network.dispose();
  });
});
