// Saving and loading models: identical outputs after a round trip, resumed training equal to an unbroken run,
// and clear errors for files that are not models of ours.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { ModelFileError } from "../../src/model/file/index.js";
import { AutoEncoder, LayeredANN, LinearRegression, LogisticRegression, MultiLayerPerceptron, Perceptron, type Model } from "../../src/api/models.js";
import { loadModel, saveModel } from "../../src/api/persist.js";

const data = syntheticClassification({ size: 300, features: 6, classes: 3, seed: 2 });
const dir = await mkdtemp(join(tmpdir(), "downpour-persist-"));
after(() => rm(dir, { recursive: true, force: true }));

async function roundTrip(model: Model, name: string): Promise<Model> {
  const path = join(dir, `${name}.dpnn`);
  await saveModel(model, path);
  return loadModel(path);
}

describe("model files", () => {
  test("every model class round-trips to identical outputs and keeps its class", { timeout: 60_000 }, async () => {
    const models: Model[] = [
      await MultiLayerPerceptron.create({ inputs: 6, hidden: [7, 5], outputs: 3, seed: 1 }),
      await LayeredANN.create({ inputs: 6, layers: [{ units: 4, activation: "tanh" }, { units: 2, activation: "identity" }], seed: 2 }),
      await Perceptron.create({ inputs: 6, outputs: 2, seed: 3 }),
      await LinearRegression.create({ inputs: 6, seed: 4 }),
      await LogisticRegression.create({ inputs: 6, seed: 5 }),
      await AutoEncoder.create({ inputs: 6, hidden: 3, seed: 6 }),
    ];
    for (const model of models) {
      const loaded = await roundTrip(model, model.kind);
      assert.equal(loaded.kind, model.kind);
      assert.equal(loaded.constructor, model.constructor);
      assert.deepEqual(loaded.network.spec, model.network.spec);
      assert.deepEqual(loaded.predict(data.x), model.predict(data.x));
      loaded.dispose();
      model.dispose();
    }
  });

  for (const optimizer of ["sgd", "adagrad", "adam"] as const) {
    test(`training 1 epoch, saving, loading and training 1 more equals 2 epochs straight (${optimizer})`, { timeout: 120_000 }, async () => {
      const options = { optimizer, epochs: 1, batchSize: 20, threads: 2, learningRateDecay: 0.5 };
      const config = { inputs: 6, hidden: [8], outputs: 3, seed: 7 };
      const straight = await MultiLayerPerceptron.create(config);
      await straight.fit(data, { ...options, epochs: 2 });
      const first = await MultiLayerPerceptron.create(config);
      await first.fit(data, options);
      const resumed = await roundTrip(first, `resume-${optimizer}`);
      assert.equal(resumed.state?.step, 15);
      await resumed.fit(data, options);
      assert.deepEqual(resumed.network.tensors(), straight.network.tensors());
      for (const m of [straight, first, resumed]) m.dispose();
    });
  }

  test("files that are not good models are refused with ModelFileError naming the file", { timeout: 60_000 }, async () => {
    const model = await MultiLayerPerceptron.create({ inputs: 6, hidden: [4], outputs: 3, seed: 1 });
    const path = join(dir, "good.dpnn");
    await saveModel(model, path);
    const bytes = await readFile(path);
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["truncated", bytes.subarray(0, bytes.length - 10), /truncated|shorter|past the end/],
      ["corrupted", Uint8Array.from(bytes, (b, i) => (i === bytes.length - 20 ? b ^ 0xff : b)), /checksum/],
      ["wrong-version", Uint8Array.from(bytes, (b, i) => (i === 8 ? 9 : b)), /version 9/],
      ["empty", new Uint8Array(0), /not a downpour model file|too short|shorter/],
    ];
    for (const [name, content, pattern] of cases) {
      const bad = join(dir, `${name}.dpnn`);
      await writeFile(bad, content);
      await assert.rejects(loadModel(bad), (e: Error) => e instanceof ModelFileError && e.message.includes(bad) && pattern.test(e.message), name);
    }
    await assert.rejects(loadModel(join(dir, "missing.dpnn")), ModelFileError);
    model.dispose();
  });
});
