// Early stopping (patience) on the validation loss, which needs a validation set; the validation time is reported
// apart from the training time.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MultiLayerPerceptron } from "../../src/api/models.js";
import { createDataset, type Dataset, oneHot } from "../../src/data/dataset.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { TrainOptionsError } from "../../src/train/options.js";
import type { EpochReport } from "../../src/train/trainer.js";

const TIMEOUT = { timeout: 60_000 };
const train = syntheticClassification({ size: 400, features: 6, classes: 2, seed: 3 });

/** The same rows with the other class: the better the model learns `train`, the worse its loss here. */
function flipped(data: Dataset): Dataset {
  const labels = data.labels!.map((l) => 1 - l);
  return createDataset({ features: data.features, outputs: 2, x: data.x, y: oneHot(labels, 2), labels, name: "flipped" });
}

/** The 1-based epoch after which `patience` epochs in a row had no lower validation loss than the best before. */
function expectedStop(reports: EpochReport[], patience: number): number | undefined {
  let best = Number.POSITIVE_INFINITY;
  let since = 0;
  for (const r of reports) {
    const loss = r.validation!.loss;
    if (loss < best) [best, since] = [loss, 0];
    else if (++since >= patience) return r.epoch;
  }
  return undefined;
}

async function fitted(options: Parameters<MultiLayerPerceptron["fit"]>[1]): Promise<EpochReport[]> {
  const model = await MultiLayerPerceptron.create({ inputs: 6, hidden: [8], outputs: 2, seed: 1 });
  try {
    return await model.fit(train, { batchSize: 20, learningRate: 0.1, threads: 2, ...options });
  } finally {
    model.dispose();
  }
}

describe("early stopping", () => {
  test("patience 2 stops after two epochs without a better validation loss (stop: early-stopped)", TIMEOUT, async () => {
    const validation = flipped(train);
    const all = await fitted({ epochs: 12, validation });
    const stopAt = expectedStop(all, 2);
    assert.ok(stopAt !== undefined && stopAt < 12, "the validation loss kept improving: the test data does not exercise patience");
    const reports = await fitted({ epochs: 12, validation, patience: 2 });
    assert.equal(reports.length, stopAt);
    assert.equal(reports.at(-1)!.stop, "early-stopped");
    assert.ok(reports.slice(0, -1).every((r) => r.stop === undefined));
    // Up to the stop, the same run.
    assert.deepEqual(
      reports.map((r) => r.validation!.loss),
      all.slice(0, stopAt).map((r) => r.validation!.loss),
    );
  });

  test("patience without a validation set, or not a positive integer, is a TrainOptionsError naming patience", TIMEOUT, async () => {
    await assert.rejects(
      fitted({ epochs: 2, patience: 3 }),
      (e: Error) => e instanceof TrainOptionsError && /patience .*needs a validation set/.test(e.message),
    );
    await assert.rejects(fitted({ epochs: 2, patience: 0, validation: train }), /patience must be a positive integer, got 0/);
    await assert.rejects(fitted({ epochs: 2, patience: 1.5, validation: train }), /patience must be a positive integer, got 1.5/);
  });

  test("validation time is reported apart (validationSeconds); seconds and samplesPerSecond count training only", TIMEOUT, async () => {
    const with_ = await fitted({ epochs: 2, validation: train });
    for (const r of with_) {
      assert.equal(typeof r.validationSeconds, "number");
      assert.ok(r.validationSeconds! >= 0 && Number.isFinite(r.validationSeconds!));
      assert.ok(Math.abs(r.samplesPerSecond * r.seconds - r.samples) < 1e-6 * r.samples);
    }
    const without = await fitted({ epochs: 1 });
    assert.equal(without[0]!.validationSeconds, undefined);
    assert.equal(without[0]!.validation, undefined);
  });
});
