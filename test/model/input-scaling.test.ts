// A model applies the input scaling it was trained with: loadModel restores the scaling the CLI records, so the
// library predicts what `downpour predict` prints for the same raw rows; a model's own inputScaling survives
// encode/decode and is applied by predict, evaluate and fit. Models holding NaN are neither saved nor loaded.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { decodeModel, encodeModel } from "../../src/api/model-bytes.js";
import { LogisticRegression } from "../../src/api/models.js";
import { loadModel, saveModel } from "../../src/api/persist.js";
import { createDataset } from "../../src/data/dataset.js";
import { ModelFileError } from "../../src/model/file/errors.js";
import { encodeModel as encodeContents } from "../../src/model/file/encode.js";
import { modelContents } from "../../src/api/model-bytes.js";
import { cli } from "../cli/tiny-data.js";
import { tempDir, writeTemp } from "../cli/helpers.js";

const dir = tempDir("input-scaling");
const TIMEOUT = { timeout: 60_000 };

/** Rows "a,b,label" with features far from [0, 1] (so min-max scaling changes them a lot); label: a > 50. */
function wideCsv(rows = 60): { text: string; x: number[][] } {
  const x: number[][] = [];
  for (let r = 0; r < rows; r++) x.push([10 + ((r * 37) % 90), 1000 + ((r * 53) % 400)]);
  return { text: `${x.map(([a, b]) => `${a},${b},${a! > 50 ? 1 : 0}`).join("\n")}\n`, x };
}

describe("input scaling stored with the model", () => {
  test("loadModel applies the CLI's stored scaling: the library predicts what downpour predict prints", TIMEOUT, async () => {
    const { text, x } = wideCsv();
    writeTemp(dir, "w.csv", text);
    writeTemp(dir, "wx.csv", `${x.map((r) => r.join(",")).join("\n")}\n`);
    const trained = await cli(dir, ["train", "--data", "w.csv", "--model", "logistic", "--epochs", "3", "--threads", "1", "--save", "w.dpnn", "--no-curves", "--quiet"]);
    assert.equal(trained.code, 0, trained.err);
    const predicted = await cli(dir, ["predict", "--model", "w.dpnn", "--input", "wx.csv"]);
    assert.equal(predicted.code, 0, predicted.err);
    const printed = predicted.out.trim().split("\n").slice(1).map(Number);
    const model = await loadModel(join(dir, "w.dpnn"));
    try {
      assert.equal(model.inputScaling?.kind, "min-max");
      const ours = model.predict(Float32Array.from(x.flat()), x.length);
      assert.equal(ours.length, printed.length);
      for (const [i, v] of ours.entries()) assert.ok(Math.abs(v - printed[i]!) < 1e-6, `row ${i}: library ${v}, CLI ${printed[i]}`);
      // Without the scaling the raw rows saturate the sigmoid: the check above could not pass by accident.
      const scaling = model.inputScaling;
      model.inputScaling = undefined;
      const raw = model.predict(Float32Array.from(x.flat()), x.length);
      model.inputScaling = scaling;
      assert.ok(raw.some((v, i) => Math.abs(v - printed[i]!) > 1e-3), "raw rows predict differently");
    } finally {
      model.dispose();
    }
  });

  test("a model's own inputScaling is saved, restored and applied by predict, evaluate and fit", TIMEOUT, async () => {
    const model = await LogisticRegression.create({ inputs: 2, seed: 3 });
    const { x } = wideCsv(40);
    const data = createDataset({ features: 2, outputs: 1, x: x.flat(), y: x.map(([a]) => (a! > 50 ? 1 : 0)) });
    try {
      model.inputScaling = { kind: "min-max", min: [10, 1000], max: [99, 1399] };
      const reports = await model.fit(data, { epochs: 20, threads: 0, learningRate: 0.5 });
      assert.ok(reports.at(-1)!.loss < reports[0]!.loss, "training on scaled inputs lowers the loss");
      const copy = await decodeModel(encodeModel(model));
      try {
        assert.deepEqual(copy.inputScaling, model.inputScaling);
        assert.deepEqual(copy.predict(data.x, data.size), model.predict(data.x, data.size));
        assert.deepEqual(copy.evaluate(data), model.evaluate(data));
        assert.ok((copy.evaluate(data).accuracy ?? 0) > 0.8, "the scaled model classifies its raw training rows");
      } finally {
        copy.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  test("a model holding NaN is not saved, and a file holding one is not loaded", TIMEOUT, async () => {
    const model = await LogisticRegression.create({ inputs: 2, seed: 3 });
    try {
      const contents = modelContents(model);
      const w0 = contents.tensors.find((t) => t.name === "w0")!;
      w0.data[1] = Number.NaN;
      model.network.setTensors(contents.tensors.filter((t) => t.group === "param"));
      assert.throws(() => encodeModel(model), (e: unknown) => e instanceof ModelFileError && /w0\[1\] is NaN/.test(e.message) && /smaller learning rate/.test(e.message));
      await assert.rejects(saveModel(model, join(dir, "nan.dpnn")), (e: unknown) => e instanceof ModelFileError && /not saved/.test(e.message));
      const bytes = encodeContents(contents); // the file format itself carries any float
      await assert.rejects(decodeModel(bytes), (e: unknown) => e instanceof ModelFileError && /w0\[1\] is NaN/.test(e.message) && /diverged/.test(e.message));
    } finally {
      model.dispose();
    }
  });
});
