// A trainer never closed does not keep the process alive: its workers are unref'd between epochs and ref'd while
// an epoch runs (so training not awaited still finishes). Checked in a child process of this runtime.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runChildScript } from "../support/child.js";

/** Node's and Bun's workers have unref; Deno's have none (the trainer documents: close it there), and Deno's
 *  process.execPath does not run a plain script. */
const skip = (globalThis as { Deno?: unknown }).Deno !== undefined && "Deno workers have no unref: a trainer must be closed there";

const CHILD_LIMIT_MS = 20_000;

const moduleUrl = (path: string): string => new URL(`../../src/${path}`, import.meta.url).href;

// A child script over this build: a 2-thread trainer on a small seeded dataset, then `body`; it never closes it.
function script(body: string): string {
  return `
import { Kernels } from ${JSON.stringify(moduleUrl("core/kernels.js"))};
import { Network } from ${JSON.stringify(moduleUrl("model/network.js"))};
import { syntheticClassification } from ${JSON.stringify(moduleUrl("data/synthetic.js"))};
import { LocalTrainer } from ${JSON.stringify(moduleUrl("train/trainer.js"))};
const kernels = await Kernels.load({ shared: true });
const network = Network.create(kernels, { inputs: 8, layers: [{ units: 32, activation: "relu" }, { units: 3, activation: "softmax" }], seed: 1 });
const data = syntheticClassification({ size: 4000, features: 8, classes: 3, seed: 2 });
const trainer = await LocalTrainer.create(network, data, { epochs: 2, batchSize: 16, threads: 2 });
${body}
`;
}

// Runs the script with this runtime; a child that outlives the limit is killed (killed: true).
const runChild = (source: string) => runChildScript("trainer-lifetime", source, CHILD_LIMIT_MS);

describe("trainer lifetime", { skip }, () => {
  const timeout = { timeout: CHILD_LIMIT_MS + 10_000 };

  test("a trainer never closed lets the process exit after its epochs", timeout, async () => {
    const child = await runChild(script(`const reports = await trainer.train(); console.log("trained", reports.length);`));
    assert.equal(child.killed, false, `the child was still alive after ${CHILD_LIMIT_MS} ms: the idle trainer kept it alive`);
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /^trained 2$/m);
  });

  test("a trainer left after one epoch (its generator not finished) lets the process exit", timeout, async () => {
    const child = await runChild(
      script(`const epochs = trainer.epochs(); const first = await epochs.next(); console.log("epoch", first.value.epoch);`),
    );
    assert.equal(child.killed, false, "the child did not exit");
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /^epoch 1$/m);
  });

  test("training not awaited keeps the process alive until it is done", timeout, async () => {
    const child = await runChild(script(`trainer.train().then((reports) => console.log("trained", reports.length));`));
    assert.equal(child.killed, false, "the child did not exit");
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /^trained 2$/m, "the process ended before training finished");
  });
});
