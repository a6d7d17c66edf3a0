// A NaN or infinite mini-batch loss stops training with a TrainingError (reason "diverged") naming the epoch and
// mini-batch, in sync and async mode on 0, 1 and 2 threads; nonFiniteLoss "continue" trains on and reports NaN.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { Network } from "../../src/model/network.js";
import type { GradientExchange } from "../../src/train/exchange.js";
import type { TrainMode, TrainOptions } from "../../src/train/options.js";
import { LocalTrainer, type TrainerHooks, TrainingError } from "../../src/train/trainer.js";

const TIMEOUT = { timeout: 60_000 };
const data = syntheticClassification({ size: 600, features: 8, classes: 3, seed: 5 });
const SPEC = {
  inputs: 8,
  layers: [
    { units: 16, activation: "relu" as const },
    { units: 3, activation: "softmax" as const },
  ],
  seed: 2,
};
const BATCHES_PER_EPOCH = Math.ceil(600 / 20);

async function train(
  options: TrainOptions,
  hooks: TrainerHooks = {},
): Promise<{ result: Awaited<ReturnType<LocalTrainer["train"]>> | TrainingError; network: Network }> {
  const kernels = await Kernels.load({ shared: true });
  const network = Network.create(kernels, SPEC);
  const trainer = await LocalTrainer.create(
    network,
    data,
    { epochs: 3, batchSize: 20, portion: 5, learningRate: 1e30, momentum: 0, ...options },
    hooks,
  );
  try {
    return { result: await trainer.train(), network };
  } catch (error) {
    if (!(error instanceof TrainingError)) throw error;
    return { result: error, network };
  } finally {
    await trainer.close();
  }
}

function assertDiverged(result: unknown, label: string, rate = "1e\\+30"): TrainingError {
  assert.ok(result instanceof TrainingError, `${label}: training went on without an error`);
  assert.equal(result.reason, "diverged", label);
  assert.equal(result.epoch, 1, label);
  assert.ok(Number.isInteger(result.batch) && result.batch! >= 1 && result.batch! <= BATCHES_PER_EPOCH, `${label}: batch ${result.batch}`);
  const expected = new RegExp(
    `^training diverged: the loss of epoch 1, mini-batch \\d+ is (NaN|infinite); try a smaller learning rate \\(it is ${rate}\\)$`,
  );
  assert.match(result.message, expected, label);
  assert.ok(result.message.includes(`mini-batch ${result.batch} `), label);
  return result;
}

describe("divergence", () => {
  for (const mode of ["sync", "async"] as TrainMode[]) {
    test(`${mode}: learning rate 1e30 stops with a TrainingError naming the epoch and batch, on 0, 1 and 2 threads`, TIMEOUT, async () => {
      const batches: number[] = [];
      for (const threads of [0, 1, 2]) {
        const { result, network } = await train({ mode, threads });
        batches.push(assertDiverged(result, `${mode}, ${threads} threads`).batch!);
        network.dispose();
      }
      // Sync training is deterministic: every thread count diverges at the same mini-batch.
      if (mode === "sync") assert.deepEqual(batches, [batches[0], batches[0], batches[0]]);
    });
  }

  test("sync: the mini-batch whose loss went non-finite is not applied (the parameters hold whole, earlier updates)", TIMEOUT, async () => {
    const { result, network } = await train({ threads: 2 });
    const error = assertDiverged(result, "sync");
    // Re-run the first batch - 1 mini-batches exactly: the same parameters.
    const kernels = await Kernels.load({ shared: true });
    const again = Network.create(kernels, SPEC);
    if (error.batch! > 1) {
      const trainer = await LocalTrainer.create(again, data, {
        epochs: 1,
        batchSize: 20,
        portion: 5,
        learningRate: 1e30,
        momentum: 0,
        maxIterations: error.batch! - 1,
        threads: 2,
        nonFiniteLoss: "continue",
      });
      await trainer.train();
      await trainer.close();
    }
    assert.deepEqual(
      network.tensors().map((t) => t.data),
      again.tensors().map((t) => t.data),
    );
    network.dispose();
    again.dispose();
  });

  for (const mode of ["sync", "async"] as TrainMode[]) {
    test(`${mode}: nonFiniteLoss "continue" trains every epoch and reports the loss as NaN`, TIMEOUT, async () => {
      const { result, network } = await train({ mode, threads: 2, nonFiniteLoss: "continue" });
      assert.ok(Array.isArray(result), String(result));
      assert.equal(result.length, 3);
      assert.ok(Number.isNaN(result[2]!.loss), `loss ${result[2]!.loss}`);
      assert.equal(result[2]!.samples, 600);
      network.dispose();
    });
  }

  test('nonFiniteLoss "continue" with a convergence check: a NaN loss is not taken for convergence', TIMEOUT, async () => {
    const { result, network } = await train({ threads: 2, nonFiniteLoss: "continue", convergence: { window: 3 } });
    assert.ok(Array.isArray(result), String(result));
    assert.equal(result.length, 3);
    assert.ok(result.every((r) => r.stop === undefined));
    network.dispose();
  });

  test("a sensible learning rate trains without a divergence error", TIMEOUT, async () => {
    const { result, network } = await train({ threads: 2, learningRate: 0.1 });
    assert.ok(Array.isArray(result), String(result));
    assert.ok(result.every((r) => Number.isFinite(r.loss)));
    network.dispose();
  });

  test("a combined loss that another replica made NaN stops the run at that batch (the exchange point)", TIMEOUT, async () => {
    let calls = 0;
    const exchange: GradientExchange = {
      epochBatches: async (batches) => batches,
      allreduce: async (_grads, local) => (++calls === 4 ? { loss: Number.NaN, rows: local.rows } : local),
    };
    const { result, network } = await train({ threads: 2, learningRate: 0.1 }, { exchange });
    const error = assertDiverged(result, "exchange", "0\\.1");
    assert.equal(error.batch, 4);
    network.dispose();
  });

  test("nonFiniteLoss must be error or continue", async () => {
    await assert.rejects(train({ nonFiniteLoss: "ignore" as "error" }), /nonFiniteLoss must be "error" or "continue", got "ignore"/);
  });
});
