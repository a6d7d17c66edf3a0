// Train settings: precedence of defaults < config file < flags, config file errors naming the key and the file,
// library errors naming the field and where it was set, and the flag value parsers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidArgumentError } from "commander";
import { checkModelSettings } from "../../src/cli/build-model.js";
import { runTrain } from "../../src/cli/commands/train.js";
import { checkConfig, mergeSettings, readConfigFile, resolveSettings } from "../../src/cli/config.js";
import { CliError, ConfigError } from "../../src/cli/errors.js";
import { parseColumn, parseHoldout, parseIntegerList } from "../../src/cli/parse.js";
import { checkTrainOptions, trainOptionsOf } from "../../src/cli/train-options.js";
import { SpecError } from "../../src/model/spec.js";
import { TrainOptionsError } from "../../src/train/options.js";
import { captureIO, tempDir, writeTemp } from "./helpers.js";

const dir = tempDir("cli-config");

describe("merging settings", () => {
  test("flags override the config file, which overrides the defaults; sources say who set what", () => {
    const file = { name: "run.json", values: checkConfig({ epochs: 30, hidden: [800], data: "synthetic" }, "run.json") };
    const { settings, sources } = mergeSettings(file, { epochs: 5, save: false, quiet: undefined });
    assert.equal(settings.epochs, 5);
    assert.deepEqual(settings.hidden, [800]);
    assert.equal(settings.data, "synthetic");
    assert.equal(settings.model, "mlp");
    assert.equal(settings.save, false);
    assert.equal(settings.quiet, false);
    assert.equal(sources.epochs, "--epochs");
    assert.equal(sources.hidden, 'config file run.json, "hidden"');
    assert.equal(sources.save, "--no-save");
    assert.equal(sources.model, undefined);
  });

  test("the flat training keys override the config's train object, whose fields beat the library defaults", async () => {
    const path = writeTemp(dir, "train.json", JSON.stringify({ train: { epochs: 3, beta1: 0.8, convergence: { window: 9, minImprovement: 0.02 } }, learningRate: 0.5 }));
    const fromFile = trainOptionsOf((await resolveSettings({ config: path }, dir)).settings);
    assert.deepEqual(fromFile, { epochs: 3, beta1: 0.8, convergence: { window: 9, minImprovement: 0.02 }, learningRate: 0.5 });
    const withFlags = trainOptionsOf((await resolveSettings({ config: path, epochs: 7, convergenceWindow: 4, learningRateDecay: 0.9 }, dir)).settings);
    assert.equal(withFlags.learningRateDecay, 0.9);
    assert.equal(withFlags.epochs, 7);
    assert.deepEqual(withFlags.convergence, { window: 4, minImprovement: 0.02 });
  });

  test("a config file is read relative to the working directory", async () => {
    writeTemp(dir, "relative.json", JSON.stringify({ model: "logistic" }));
    const { settings } = await resolveSettings({ config: "relative.json" }, dir);
    assert.equal(settings.model, "logistic");
  });
});

describe("config file errors", () => {
  test("an unknown key names the key and the file, and suggests the camelCase key", () => {
    assert.throws(() => checkConfig({ "batch-size": 8 }, "run.json"), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /config file run\.json: unknown key "batch-size" \(did you mean "batchSize"\?\)/);
      return true;
    });
    assert.throws(() => checkConfig({ epochz: 8 }, "a.json"), /a\.json: unknown key "epochz" \(did you mean "epochs"\?\)/);
    assert.throws(() => checkConfig({ lr: 0.1 }, "a.json"), /a\.json: unknown key "lr" \(did you mean "learningRate"\?\)/);
  });

  test("unknown keys inside train and spec are named with their path", () => {
    assert.throws(() => checkConfig({ train: { epoch: 3 } }, "t.json"), /t\.json: unknown key "train\.epoch"/);
    assert.doesNotThrow(() => checkConfig({ train: { learningRateDecay: 0.9, beta2: 0.99, shuffle: false } }, "t.json"));
    assert.throws(() => checkConfig({ spec: { layers: [{ units: 3, activaton: "relu" }] } }, "s.json"), /s\.json: unknown key "spec\.layers\[0\]\.activaton"/);
  });

  test("a value of the wrong type names the key, what was expected and what was given", () => {
    assert.throws(() => checkConfig({ epochs: "ten" }, "run.json"), /run\.json: "epochs" must be an integer, got "ten"/);
    assert.throws(() => checkConfig({ model: "svm" }, "run.json"), /"model" must be one of "mlp", "perceptron", "linear", "logistic", "autoencoder", got "svm"/);
    assert.throws(() => checkConfig({ hidden: "128" }, "run.json"), /"hidden" must be an array of integers/);
    assert.throws(() => checkConfig({ holdout: 1.5 }, "run.json"), /"holdout" must be a count of rows/);
    assert.throws(() => checkConfig([1, 2], "run.json"), /run\.json: expected a JSON object of settings/);
  });

  test("a file that is missing or not JSON is a ConfigError naming it", async () => {
    await assert.rejects(readConfigFile(`${dir}/absent.json`, "absent.json"), /config file absent\.json: cannot read it/);
    const broken = writeTemp(dir, "broken.json", "{ epochs: 3 }");
    await assert.rejects(readConfigFile(broken, "broken.json"), (error: Error) => error instanceof ConfigError && /broken\.json: not valid JSON/.test(error.message));
  });

  test("train fails on a bad config key before reading any data", { timeout: 60_000 }, async () => {
    const path = writeTemp(dir, "bad.json", JSON.stringify({ data: "absent.csv", learning_rate: 0.1 }));
    const io = captureIO(dir);
    await assert.rejects(runTrain({ config: path }, io), /unknown key "learning_rate" \(did you mean "learningRate"\?\)/);
    assert.equal(io.out(), "");
  });
});

describe("invalid values surface the library's errors with their source", () => {
  test("TrainOptionsError names the field and the flag or file that set it", async () => {
    const fromFlag = mergeSettings(undefined, { epochs: 0 });
    assert.throws(() => checkTrainOptions(trainOptionsOf(fromFlag.settings), fromFlag.sources, 2), (error: Error) => {
      assert.ok(error instanceof TrainOptionsError);
      assert.equal(error.message, "--epochs must be a positive integer, got 0");
      return true;
    });
    const file = { name: "r.json", values: checkConfig({ train: { momentum: 1.5 } }, "r.json") };
    const fromFile = mergeSettings(file, {});
    assert.throws(() => checkTrainOptions(trainOptionsOf(fromFile.settings), fromFile.sources, 2), /^TrainOptionsError: config file r\.json, "train\.momentum" must be in \[0, 1\)/);
  });

  test("SpecError names the layer field and the flag that set it", () => {
    const { settings, sources } = mergeSettings(undefined, { dropout: 1.5 });
    assert.throws(() => checkModelSettings(settings, sources), (error: Error) => {
      assert.ok(error instanceof SpecError);
      assert.equal(error.message, "--dropout: layers[0].dropout must be in [0, 1), got 1.5");
      return true;
    });
    const cost = mergeSettings(undefined, { outputActivation: "relu", cost: "cross-entropy" });
    assert.throws(() => checkModelSettings(cost.settings, cost.sources), /^SpecError: --cost: cost cross-entropy needs sigmoid/);
  });

  test("a full spec cannot be combined with layer flags or another model kind", () => {
    const file = { name: "s.json", values: checkConfig({ spec: { layers: [{ units: 4, activation: "softmax" }] } }, "s.json") };
    const withHidden = mergeSettings(file, { hidden: [8] });
    assert.throws(() => checkModelSettings(withHidden.settings, withHidden.sources), (error: Error) => error instanceof CliError && /--hidden cannot change the layers of the full spec \(config file s\.json, "spec"\)/.test(error.message));
    const withModel = mergeSettings(file, { model: "logistic" });
    assert.throws(() => checkModelSettings(withModel.settings, withModel.sources), /a full spec builds an mlp, but --model asks for logistic/);
    const ok = mergeSettings(file, { cost: "softmax-cross-entropy", seed: 3 });
    assert.doesNotThrow(() => checkModelSettings(ok.settings, ok.sources));
  });
});

describe("flag parsers", () => {
  test("holdout is a count or a fraction", () => {
    assert.equal(parseHoldout("0.2"), 0.2);
    assert.equal(parseHoldout("500"), 500);
    assert.equal(parseHoldout("0"), 0);
    for (const bad of ["1.5", "-3", "abc", ""]) assert.throws(() => parseHoldout(bad), InvalidArgumentError, bad);
  });

  test("layer sizes are comma-separated integers; a label column is an index or a name", () => {
    assert.deepEqual(parseIntegerList("256, 128"), [256, 128]);
    assert.throws(() => parseIntegerList("256;128"), InvalidArgumentError);
    assert.equal(parseColumn("-1"), -1);
    assert.equal(parseColumn("Outcome"), "Outcome");
  });
});
