// User neuron types from the command line: `train --neuron MODULE#EXPORT` (the module relative to the working
// directory, a config file's relative to its folder, stored as an absolute URL) trains an MLP whose saved model
// predicts and evaluates the same in a fresh process; `cluster` peers import the type themselves; a missing module or
// export fails before any data is read, naming the flag, the module and the export; `check-neuron` passes Swish and
// fails Exploding (finite) and NotANeuron. The types are the fixtures of test/support/neurons.ts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { before, describe, test } from "node:test";
import { loadModel } from "../../src/api/persist.js";
import { mlpSpec } from "../../src/cli/build-model.js";
import { resolveSettings } from "../../src/cli/config.js";
import { resolveSpec } from "../../src/model/spec.js";
import type { NeuronCheckReport } from "../../src/api/neuron-check.js";
import { cliMain, tempDir, writeTemp } from "./helpers.js";
import { cli, tinyCsv } from "./tiny-data.js";

const TIMEOUT = { timeout: 60_000 };
const dir = tempDir("cli-neurons");
/** The compiled fixtures (this file is <out>/test/cli/neurons.test.js) and their URL, as the model file stores it. */
const FIXTURE = fileURLToPath(new URL("../support/neurons.js", import.meta.url));
const FIXTURE_URL = pathToFileURL(FIXTURE).href;
const ROWS = 240;
/** Seeded, 20 epochs of a 3-6-1 Swish MLP on the tiny rows: 0.97 held out when measured (Node 20); a dead layer scores ~0.6. */
const MIN_ACCURACY = 0.85;
const NO_HIDDEN = ["train", "--data", "tiny.csv", "--epochs", "20", "--learning-rate", "0.3", "--seed", "3", "--threads", "1", "--quiet", "--no-curves"];
const TRAIN = [...NO_HIDDEN, "--hidden", "6"];

/** `path` relative to `from`, as a module specifier ("./" or "../" first). */
function specifierFrom(from: string, path: string): string {
  const rel = relative(from, path).replace(/\\/g, "/");
  return rel.startsWith("../") ? rel : `./${rel}`;
}

/** Runs the built CLI in a fresh process of this runtime in `dir` (killed after `limitMs`). */
function downpour(args: string[], limitMs = 50_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliMain(), ...args], { cwd: dir, env: { ...process.env, DOWNPOUR_CACHE: dir, DOWNPOUR_DEBUG: "" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The last epoch's held-out accuracy of a --json train or cluster run. */
function finalAccuracy(stdout: string): number {
  return (JSON.parse(stdout) as { reports: { validation: { accuracy: number } }[] }).reports.at(-1)!.validation.accuracy;
}

before(() => {
  const csv = tinyCsv(ROWS, 7);
  writeTemp(dir, "tiny.csv", csv);
  writeTemp(dir, "features.csv", csv.split("\n").filter(Boolean).map((line) => line.split(",").slice(0, 3).join(",")).join("\n") + "\n");
  mkdirSync(join(dir, "sub"));
});

describe("train --neuron", () => {
  test("an absolute MODULE#EXPORT trains; the model file names the module by URL; predict and eval in a fresh process agree with this one", TIMEOUT, async () => {
    const trained = await cli(dir, [...TRAIN, "--neuron", `${FIXTURE}#Swish`, "--save", "swish.dpnn", "--json"]);
    assert.equal(trained.code, 0, trained.err);
    const accuracy = finalAccuracy(trained.out);
    assert.ok(accuracy >= MIN_ACCURACY, `held-out accuracy ${accuracy}`);
    assert.match(trained.err, /training MultiLayerPerceptron 3-6-1 \(Swish, sigmoid; cross-entropy\)/);
    const model = await loadModel(join(dir, "swish.dpnn"));
    try {
      assert.deepEqual(model.network.spec.layers[0]!.neuron, { module: FIXTURE_URL, export: "Swish" });
    } finally {
      model.dispose();
    }

    const predictArgs = ["predict", "--model", "swish.dpnn", "--input", "features.csv", "--output", "-"];
    const here = await cli(dir, predictArgs);
    assert.equal(here.code, 0, here.err);
    const fresh = await downpour(predictArgs);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(fresh.stdout.split("\n").filter(Boolean).length, ROWS + 1, "a header and a row per input");
    assert.equal(fresh.stdout, here.out, "the fresh process predicts what this one does");
    const outputs = here.out.split("\n").slice(1).filter(Boolean).map(Number);
    assert.ok(outputs.every((v) => Number.isFinite(v) && v >= 0 && v <= 1), "probabilities");

    const evalArgs = ["eval", "--model", "swish.dpnn", "--data", "tiny.csv", "--json"];
    const evalHere = JSON.parse((await cli(dir, evalArgs)).out) as { accuracy: number; loss: number };
    const evalFresh = await downpour(evalArgs);
    assert.equal(evalFresh.code, 0, evalFresh.stderr);
    const scored = JSON.parse(evalFresh.stdout) as { accuracy: number; loss: number };
    assert.equal(scored.accuracy, evalHere.accuracy);
    assert.equal(scored.loss, evalHere.loss);
    assert.ok(scored.accuracy >= MIN_ACCURACY, `eval accuracy ${scored.accuracy}`);
  });

  test("--neuron is relative to the working directory; a config file's neuron (and spec.layers[i].neuron) to the file's folder", TIMEOUT, async () => {
    const fromFlag = await resolveSettings({ neuron: `${specifierFrom(dir, FIXTURE)}#Swish` }, dir);
    assert.equal(fromFlag.settings.neuron, `${FIXTURE_URL}#Swish`);
    assert.equal(fromFlag.sources.neuron, "--neuron");

    const sub = join(dir, "sub");
    writeFileSync(join(sub, "flat.json"), JSON.stringify({ neuron: `${specifierFrom(sub, FIXTURE)}#SigmoidScalar` }));
    const fromFile = await resolveSettings({ config: "sub/flat.json" }, dir);
    assert.equal(fromFile.settings.neuron, `${FIXTURE_URL}#SigmoidScalar`);
    assert.equal(fromFile.sources.neuron, 'config file sub/flat.json, "neuron"');

    const layers = [{ units: 4, neuron: `${specifierFrom(sub, FIXTURE)}#Swish` }, { units: 3, neuron: { module: specifierFrom(sub, FIXTURE), export: "SigmoidBlock" } }, { units: 2 }];
    writeFileSync(join(sub, "spec.json"), JSON.stringify({ spec: { layers } }));
    const spec = (await resolveSettings({ config: "sub/spec.json" }, dir)).settings.spec!;
    assert.equal(spec.layers![0]!.neuron, `${FIXTURE_URL}#Swish`);
    assert.deepEqual(spec.layers![1]!.neuron, { module: FIXTURE_URL, export: "SigmoidBlock" });
    assert.equal(spec.layers![2]!.neuron, undefined);
  });

  test("a built-in name acts as --activation; with a different --activation it is refused", TIMEOUT, async () => {
    const { settings } = await resolveSettings({ neuron: "tanh" }, dir);
    const layer = resolveSpec(mlpSpec(settings, { inputs: 3, outputs: 1 })).layers[0]!;
    assert.deepEqual({ activation: layer.activation, neuron: layer.neuron }, { activation: "tanh", neuron: undefined });
    const run = await cli(dir, [...TRAIN, "--neuron", "tanh", "--activation", "relu", "--no-save"]);
    assert.equal(run.code, 1);
    assert.match(run.err, /^downpour: --neuron names the built-in type tanh, .* but --activation asks for relu; keep one of them\n$/);
  });

  test("cluster: 2 peer processes import a config file's relative neuron (the job's settings hold its URL); the model evaluates in a fresh process", TIMEOUT, async () => {
    writeFileSync(join(dir, "sub", "cluster.json"), JSON.stringify({ neuron: `${specifierFrom(join(dir, "sub"), FIXTURE)}#Swish` }));
    const args = ["cluster", "--peers", "2", "--config", "sub/cluster.json", ...TRAIN.slice(1), "--save", "cluster.dpnn", "--json"];
    const run = await downpour(args);
    assert.equal(run.code, 0, run.stderr);
    const accuracy = finalAccuracy(run.stdout);
    assert.ok(accuracy >= MIN_ACCURACY, `cluster held-out accuracy ${accuracy}`);
    const evaluated = await downpour(["eval", "--model", "cluster.dpnn", "--data", "tiny.csv", "--json"]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.ok((JSON.parse(evaluated.stdout) as { accuracy: number }).accuracy >= MIN_ACCURACY);
  });

  test("a missing export or module is an error (exit 1) naming the flag, the module and the export, before the data is read", TIMEOUT, async () => {
    // missing.csv does not exist: the neuron type is loaded first.
    const noExport = await cli(dir, [...TRAIN, "--data", "missing.csv", "--neuron", `${FIXTURE}#Nope`, "--no-save"]);
    assert.equal(noExport.code, 1);
    assert.equal(noExport.out, "");
    assert.match(noExport.err, /^downpour: --neuron Nope: the module file:\/\/\S+\/test\/support\/neurons\.js has no export "Nope" \(it exports .*Swish/);
    const noModule = await cli(dir, [...TRAIN, "--data", "missing.csv", "--neuron", "./no-such-neurons.js#Swish", "--no-save"]);
    assert.equal(noModule.code, 1);
    assert.match(noModule.err, /^downpour: --neuron Swish: cannot import the module file:\/\/\S+\/no-such-neurons\.js/);
    writeFileSync(join(dir, "sub", "missing.json"), JSON.stringify({ neuron: "./none.js#Swish" }));
    const fromFile = await cli(dir, [...TRAIN, "--config", "sub/missing.json", "--no-save"]);
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.err, /^downpour: config file sub\/missing\.json, "neuron" Swish: cannot import the module file:\/\/\S+\/sub\/none\.js/);
    const notAType = await cli(dir, [...TRAIN, "--neuron", `${FIXTURE}#NotANeuron`, "--no-save"]);
    assert.equal(notAType.code, 1);
    assert.match(notAType.err, /^downpour: --neuron NotANeuron: the export "NotANeuron" of file:\/\/\S+\/neurons\.js is an object/);
  });

  test("a value that is neither MODULE#EXPORT nor a built-in, and --neuron where it does not apply, are named", TIMEOUT, async () => {
    const bad = await cli(dir, [...TRAIN, "--neuron", "swish", "--no-save"]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^downpour: --neuron: "swish" is not a neuron type; expected MODULE#EXPORT \(like \.\/neurons\.js#Swish\) or a built-in type/);
    writeFileSync(join(dir, "sub", "bad.json"), JSON.stringify({ spec: { layers: [{ units: 4, neuron: { module: "./n.js" } }, { units: 1 }] } }));
    const badSpec = await cli(dir, [...NO_HIDDEN, "--config", "sub/bad.json", "--no-save"]);
    assert.equal(badSpec.code, 1);
    assert.match(badSpec.err, /^downpour: config file sub\/bad\.json: "spec\.layers\[0\]\.neuron" must be MODULE#EXPORT/);
    writeFileSync(join(dir, "sub", "layers.json"), JSON.stringify({ spec: { layers: [{ units: 4 }, { units: 1 }] } }));
    const withSpec = await cli(dir, [...NO_HIDDEN, "--config", "sub/layers.json", "--neuron", `${FIXTURE}#Swish`, "--no-save"]);
    assert.equal(withSpec.code, 1);
    assert.match(withSpec.err, /^downpour: --neuron cannot change the layers of the full spec/);
    const linear = await cli(dir, [...NO_HIDDEN, "--model", "logistic", "--neuron", `${FIXTURE}#Swish`, "--epochs", "1", "--no-save"]);
    assert.equal(linear.code, 0, linear.err);
    assert.match(linear.err, /^downpour: warning: model logistic does not use --neuron$/m);
  });
});

describe("check-neuron", () => {
  const check = async (type: string) => {
    const run = await cli(dir, ["check-neuron", type, "--json"]);
    return { ...run, report: run.out ? (JSON.parse(run.out) as NeuronCheckReport) : undefined };
  };

  test("Swish passes its 3 checks (exit 0); the table names each", TIMEOUT, async () => {
    const run = await check(`${FIXTURE}#Swish`);
    assert.equal(run.code, 0, run.err);
    assert.equal(run.report!.type, `${FIXTURE_URL}#Swish`);
    assert.equal(run.report!.form, "scalar");
    assert.equal(run.report!.passed, true);
    assert.deepEqual(run.report!.checks.map((c) => [c.name, c.status]), [["gradients", "passed"], ["finite", "passed"], ["threads", "passed"]]);
    const table = await cli(dir, ["check-neuron", `${specifierFrom(dir, FIXTURE)}#Swish`, "--threads", "0,1"]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^neuron type file:\/\/\S+#Swish \(scalar form\)\n/);
    for (const name of ["gradients", "finite", "threads"]) assert.match(table.out, new RegExp(`│ ${name} +│ passed │`));
    assert.match(table.out, /\npassed\n$/);
  });

  test("Exploding fails the finite check: the report is printed, exit 1", TIMEOUT, async () => {
    const run = await check(`${FIXTURE}#Exploding`);
    assert.equal(run.code, 1);
    assert.equal(run.report!.passed, false);
    assert.equal(run.report!.checks.find((c) => c.name === "finite")!.status, "failed");
    assert.match(run.err, /^downpour: neuron type file:\/\/\S+#Exploding failed the finite check\n$/);
  });

  test("NotANeuron, a missing export and a missing module exit 1 naming the module and the export", TIMEOUT, async () => {
    const notAType = await check(`${FIXTURE}#NotANeuron`);
    assert.equal(notAType.code, 1);
    assert.equal(notAType.out, "");
    assert.match(notAType.err, /^downpour: check-neuron NotANeuron: the export "NotANeuron" of file:\/\/\S+\/neurons\.js is an object/);
    const noExport = await check(`${FIXTURE}#Nope`);
    assert.equal(noExport.code, 1);
    assert.match(noExport.err, /^downpour: check-neuron Nope: the module file:\/\/\S+\/neurons\.js has no export "Nope"/);
    const noModule = await check("./no-such-neurons.js#Swish");
    assert.equal(noModule.code, 1);
    assert.match(noModule.err, /^downpour: check-neuron Swish: cannot import the module file:\/\/\S+\/no-such-neurons\.js/);
    assert.equal((await cli(dir, ["check-neuron", "swish"])).code, 2, "neither MODULE#EXPORT nor a built-in: a usage error");
  });
});
