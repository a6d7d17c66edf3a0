// Apache Horn's MNIST example (examples/horn/mnist.js) as a user runs it: its StandardNeuron in the per-neuron form
// reaches Horn's README figure (>= 95 % test accuracy after Horn's two epochs), and the same network with the
// sigmoid as a scalar type reaches the same accuracy. Node only (the example imports the package by its name).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { projectRoot, sharedData } from "../support/paths.js";

const run = promisify(execFile);

async function example(form: string): Promise<{ accuracy: number; epochs: number }> {
  const script = join(projectRoot(), "examples/horn/mnist.js");
  const { stdout } = await run(process.execPath, [script, "--form", form, "--json", "--data", sharedData("mnist")], { cwd: projectRoot(), timeout: 240_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as { accuracy: number; epochs: number };
}

describe("examples/horn/mnist.js", () => {
  test("StandardNeuron (per neuron) trains 784-100-10 to >= 95 %, and the scalar form to the same accuracy", { timeout: 300_000 }, async () => {
    const perNeuron = await example("per-neuron");
    const scalar = await example("scalar");
    assert.equal(perNeuron.epochs, 2);
    assert.ok(perNeuron.accuracy >= 0.95, `per-neuron test accuracy ${perNeuron.accuracy}`);
    assert.ok(scalar.accuracy >= 0.95, `scalar test accuracy ${scalar.accuracy}`);
    assert.ok(Math.abs(perNeuron.accuracy - scalar.accuracy) <= 0.005, `per-neuron ${perNeuron.accuracy} against scalar ${scalar.accuracy}`);
  });
});
