// `downpour export` and `downpour import` as a user runs them: models trained by the CLI on raw Pima rows (z-score and
// min-max scaling) export to ONNX files that onnxruntime-web runs on the same raw rows to the model's own
// predictions; importing the file back gives a model file that eval scores as the original; a file that is not
// ONNX, a truncated one, a missing one and an output that would overwrite the input are refused by name.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import * as ort from "onnxruntime-web";
import { runTrain } from "../../src/cli/commands/train.js";
import { loadTrainedModel } from "../../src/cli/model-file.js";
import { runCli } from "../../src/cli/program.js";
import { decodeOnnx } from "../../src/onnx/codec.js";
import { captureIO, csvRows, pimaCsv, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 120_000 };

async function downpour(cwd: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(cwd);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("downpour export / import", () => {
  const dir = tempDir("cli-onnx");
  let raw: Float32Array;

  before(async () => {
    const pima = pimaCsv();
    writeTemp(dir, "pima.csv", pima);
    raw = Float32Array.from(csvRows(pima).flatMap((fields) => fields.slice(0, 8).map(Number)));
    const common = { data: "pima.csv", batchSize: 16, epochs: 5, threads: 0, quiet: true, curves: false } as const;
    await runTrain({ ...common, model: "logistic", normalize: "zscore", save: "logistic.dpnn" }, captureIO(dir));
    await runTrain({ ...common, model: "mlp", hidden: [8], activation: "tanh", normalize: "minmax", save: "mlp.dpnn" }, captureIO(dir));
  }, TIMEOUT);

  for (const name of ["logistic", "mlp"]) {
    test(`${name}: the exported file runs in onnxruntime on raw rows to the model's predictions; import gives the same eval`, TIMEOUT, async () => {
      const exported = await downpour(dir, "export", "--model", `${name}.dpnn`, "--onnx", `${name}.onnx`);
      assert.equal(exported.code, 0, exported.err);
      assert.match(exported.out, /input features \[batch, 8\], output probabilities \[batch, 1\]/);
      const bytes = readFileSync(join(dir, `${name}.onnx`));
      assert.deepEqual(decodeOnnx(new Uint8Array(bytes)).graph.node.slice(0, 2).map((n) => n.op_type), ["Sub", "Div"], "the scaling is in the graph");
      const session = await ort.InferenceSession.create(bytes);
      const rows = raw.length / 8;
      const result = await session.run({ features: new ort.Tensor("float32", raw, [rows, 8]) });
      const theirs = result.probabilities!.data as Float32Array;
      const { model, preprocess } = await loadTrainedModel(join(dir, `${name}.dpnn`));
      assert.ok(preprocess.scaling, "the CLI recorded the scaling");
      model.inputScaling = preprocess.scaling; // so that predict takes raw rows, as the ONNX model does
      const ours = model.predict(raw);
      model.dispose();
      assert.equal(theirs.length, ours.length);
      for (let i = 0; i < ours.length; i++) assert.ok(Math.abs(ours[i]! - theirs[i]!) <= 1e-5 * Math.abs(ours[i]!) + 1e-7, `row ${i}: ${ours[i]} vs ${theirs[i]}`);

      const imported = await downpour(dir, "import", "--onnx", `${name}.onnx`, "--model", `${name}-back.dpnn`);
      assert.equal(imported.code, 0, imported.err);
      const evalOf = async (file: string) => JSON.parse((await downpour(dir, "eval", "--model", file, "--data", "pima.csv", "--json")).out) as { loss: number; accuracy: number };
      const [a, b] = [await evalOf(`${name}.dpnn`), await evalOf(`${name}-back.dpnn`)];
      assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `eval loss ${a.loss} vs imported ${b.loss}`);
      assert.equal(a.accuracy, b.accuracy);
    });
  }

  test("refused by name: a file that is not ONNX, a truncated one, a missing one, an output over the input", TIMEOUT, async () => {
    const notOnnx = await downpour(dir, "import", "--onnx", "logistic.dpnn", "--model", "x.dpnn");
    assert.equal(notOnnx.code, 1);
    assert.match(notOnnx.err, /logistic\.dpnn .*not an ONNX model/);
    const bytes = readFileSync(join(dir, "mlp.onnx"));
    writeFileSync(join(dir, "cut.onnx"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const cut = await downpour(dir, "import", "--onnx", "cut.onnx", "--model", "x.dpnn");
    assert.equal(cut.code, 1);
    assert.match(cut.err, /cut\.onnx .*truncated/);
    const missing = await downpour(dir, "import", "--onnx", "nowhere.onnx", "--model", "x.dpnn");
    assert.equal(missing.code, 1);
    assert.match(missing.err, /nowhere\.onnx/);
    const over = await downpour(dir, "export", "--model", "mlp.dpnn", "--onnx", "mlp.dpnn");
    assert.equal(over.code, 1);
    assert.match(over.err, /would overwrite the input/);
  });
});
