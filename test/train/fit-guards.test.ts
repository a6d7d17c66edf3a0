// Misuse of fit() and of a model: unknown or mistyped options (with the nearest name suggested), use after
// dispose(), dispose() during fit(), a second fit() while one runs, onEpoch returning a promise or throwing, and
// targets the output layer cannot produce.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AutoEncoder, LogisticRegression, type Model, MultiLayerPerceptron } from "../../src/api/models.js";
import { Kernels } from "../../src/core/kernels.js";
import { createDataset, type Dataset } from "../../src/data/dataset.js";
import { DataError } from "../../src/data/errors.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { InvalidArgumentError, InvalidStateError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import { detectPlatform, type Platform } from "../../src/runtime/platform.js";
import type { GradientExchange } from "../../src/train/exchange.js";
import { resolveTrainOptions, type TrainOptions, TrainOptionsError } from "../../src/train/options.js";
import { nearestName } from "../../src/train/suggest.js";
import { LocalTrainer, type TrainerHooks } from "../../src/train/trainer.js";

const TIMEOUT = { timeout: 60_000 };
const data = syntheticClassification({ size: 600, features: 8, classes: 3, seed: 5 });
const MLP = { inputs: 8, hidden: [16], outputs: 3, seed: 2 };
const OPTIONS: TrainOptions = { epochs: 3, batchSize: 20, portion: 5, threads: 2 };

const isOptionError = (pattern: RegExp, option?: string) => (e: unknown) =>
  e instanceof TrainOptionsError && pattern.test(e.message) && (option === undefined || e.option === option);

async function weightsOf(model: Model): Promise<Float32Array[]> {
  return model.network.tensors().map((t) => t.data);
}

/** The weights of a model with `MLP` trained with OPTIONS in a run of its own. */
async function referenceWeights(): Promise<Float32Array[]> {
  const model = await MultiLayerPerceptron.create(MLP);
  await model.fit(data, OPTIONS);
  const weights = await weightsOf(model);
  model.dispose();
  return weights;
}

describe("option names and types", () => {
  test("fit({ lr }) is a TrainOptionsError suggesting learningRate and listing the options", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      await assert.rejects(
        model.fit(data, { lr: 0.1 } as TrainOptions),
        isOptionError(
          /^unknown training option "lr" \(did you mean "learningRate"\?\); the options are optimizer, learningRate, .*; the hooks are validation, onProgress, onEpoch/,
          "lr",
        ),
      );
      await assert.rejects(
        model.fit(data, { onEpoc: () => {} } as TrainOptions),
        isOptionError(/unknown training option "onEpoc" \(did you mean "onEpoch"\?\)/),
      );
      assert.equal(model.history.length, 0);
    } finally {
      model.dispose();
    }
  });

  test("resolveTrainOptions refuses unknown names, with the nearest known one", () => {
    for (const [key, near] of [
      ["batchsize", "batchSize"],
      ["batch-size", "batchSize"],
      ["batch_size", "batchSize"],
      ["momentun", "momentum"],
      ["epoch", "epochs"],
      ["lrd", "learningRateDecay"],
    ]) {
      assert.throws(
        () => resolveTrainOptions({ [key!]: 8 } as TrainOptions, 1),
        isOptionError(new RegExp(`^unknown training option "${key}" \\(did you mean "${near}"\\?\\)`), key),
      );
    }
    assert.throws(
      () => resolveTrainOptions({ zzz: 1 } as TrainOptions, 1),
      isOptionError(/^unknown training option "zzz"; the options are optimizer, /),
    );
  });

  test("known options of the wrong type name the option and what it takes", () => {
    const cases: Array<[TrainOptions, RegExp, string]> = [
      [{ shuffle: "yes" as unknown as boolean }, /^shuffle must be true or false, got "yes"$/, "shuffle"],
      [{ mode: "fast" as "sync" }, /^mode must be "sync" or "async", got "fast"$/, "mode"],
      [{ epochs: "3" as unknown as number }, /^epochs must be a positive integer, got "3"$/, "epochs"],
      [{ convergence: 5 as unknown as { window: number } }, /^convergence must be an object/, "convergence"],
      [
        { convergence: { windw: 3 } as unknown as { window: number } },
        /unknown option "convergence.windw" \(did you mean "window"\?\)/,
        "convergence.windw",
      ],
      [{ nonFiniteLoss: "skip" as "error" }, /^nonFiniteLoss must be "error" or "continue", got "skip"$/, "nonFiniteLoss"],
      [{ epochs: Number.POSITIVE_INFINITY }, /^epochs must be a positive integer, got Infinity$/, "epochs"],
    ];
    for (const [options, pattern, option] of cases) assert.throws(() => resolveTrainOptions(options, 1), isOptionError(pattern, option));
    assert.throws(() => resolveTrainOptions("fast" as TrainOptions, 1), isOptionError(/^training options must be an object, got "fast"$/));
  });

  test("fit() without a Dataset (or with a validation that is none) says what it expected", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      const expected = (what: string, got: string) => (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.message === `fit(): ${what} must be a Dataset (from createDataset(), readCsv(), loadMnist(), ...), got ${got}`;
      await assert.rejects(model.fit(undefined as unknown as Dataset), expected("the training data", "undefined"));
      await assert.rejects(model.fit({} as Dataset), expected("the training data", "an object"));
      await assert.rejects(model.fit(data, { validation: 5 as unknown as Dataset }), expected("validation", "the number 5"));
      await assert.rejects(
        model.fit(data, null as unknown as TrainOptions),
        isOptionError(/^training options must be an object, got null$/),
      );
    } finally {
      model.dispose();
    }
  });

  test("LocalTrainer.create refuses an unknown hook, suggesting the nearest", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, { inputs: 8, layers: [{ units: 3, activation: "softmax" }] });
    try {
      await assert.rejects(
        LocalTrainer.create(network, data, OPTIONS, { validaton: data } as TrainerHooks),
        isOptionError(/^unknown trainer hook "validaton" \(did you mean "validation"\?\); the hooks are /),
      );
      await assert.rejects(
        LocalTrainer.create(network, data, OPTIONS, { signal: "stop" } as unknown as TrainerHooks),
        isOptionError(/^signal must be an AbortSignal/),
      );
    } finally {
      network.dispose();
    }
  });

  test("a model's train defaults are checked too; fit's hooks are accepted", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP, { train: { lr: 0.1 } as TrainOptions });
    try {
      await assert.rejects(model.fit(data, { epochs: 1 }), isOptionError(/unknown training option "lr"/));
      model.trainDefaults = { learningRate: 0.1 };
      const reports = await model.fit(data, {
        ...OPTIONS,
        epochs: 1,
        validation: data,
        onProgress: () => {},
        onEpoch: () => {},
        signal: new AbortController().signal,
        platform: await detectPlatform(),
      });
      assert.equal(reports.length, 1);
    } finally {
      model.dispose();
    }
  });

  test("nearestName: case, kebab and snake case, initials, prefixes, small typos; nothing for a far name", () => {
    const known = ["learningRate", "learningRateDecay", "batchSize", "epochs", "momentum"];
    assert.equal(nearestName("LEARNINGRATE", known), "learningRate");
    assert.equal(nearestName("learning-rate-decay", known), "learningRateDecay");
    assert.equal(nearestName("lr", known), "learningRate");
    assert.equal(nearestName("batch", known), "batchSize");
    assert.equal(nearestName("epohcs", known), "epochs");
    assert.equal(nearestName("seed", known), undefined);
    assert.equal(nearestName("", known), undefined);
  });
});

describe("model misuse", () => {
  test("every method of a disposed model throws InvalidStateError; dispose() again does nothing", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP);
    assert.equal(model.disposed, false);
    model.dispose();
    assert.equal(model.disposed, true);
    model.dispose();
    const disposed = /the model was disposed; create or load a new one/;
    const isDisposed = (e: unknown) => e instanceof InvalidStateError && disposed.test((e as Error).message);
    await assert.rejects(model.fit(data, OPTIONS), isDisposed);
    assert.throws(() => model.predict(data.x.subarray(0, 8)), isDisposed);
    assert.throws(() => model.evaluate(data), isDisposed);
    assert.throws(() => model.gradients(data), isDisposed);
    assert.throws(
      () => model.requireUsable("saveModel()"),
      (e: unknown) => isDisposed(e) && /^saveModel\(\): /.test((e as Error).message),
    );
    const auto = await AutoEncoder.create({ inputs: 8, hidden: 3 });
    auto.dispose();
    assert.throws(() => auto.encode(data.x.subarray(0, 8)), isDisposed);
    assert.throws(() => auto.decode(new Float32Array(3)), isDisposed);
  });

  test(
    "dispose() during fit() (2 threads) makes it reject; a model created next trains exactly as in a run of its own",
    TIMEOUT,
    async () => {
      const expected = await referenceWeights();
      const doomed = await MultiLayerPerceptron.create(MLP);
      let next: Promise<Model> | undefined;
      let batches = 0;
      // At the 5th exchange point of the doomed run: dispose it, and create and train the next model at once.
      const exchange: GradientExchange = {
        epochBatches: async (n) => n,
        allreduce: async (_grads, local) => {
          if (++batches === 5) {
            doomed.dispose();
            next = MultiLayerPerceptron.create(MLP).then(async (model) => {
              await model.fit(data, OPTIONS);
              return model;
            });
          }
          return local;
        },
      };
      await assert.rejects(
        doomed.fit(data, { ...OPTIONS, epochs: 50, exchange }),
        (e: unknown) => e instanceof InvalidStateError && /the model was disposed during fit\(\)/.test((e as Error).message),
      );
      assert.equal(doomed.network.disposed, true, "the disposed model's memory was not released");
      assert.ok(next, "the exchange point was never reached");
      const model = await next;
      assert.deepEqual(await weightsOf(model), expected);
      model.dispose();
    },
  );

  test("a second fit() while one runs is refused; the first trains as if alone", TIMEOUT, async () => {
    const expected = await referenceWeights();
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      const first = model.fit(data, OPTIONS);
      await assert.rejects(
        model.fit(data, { ...OPTIONS, learningRate: 5 }),
        (e: unknown) =>
          e instanceof InvalidStateError && /^fit\(\) is already running on this model; await it first$/.test((e as Error).message),
      );
      await first;
      assert.deepEqual(await weightsOf(model), expected);
      assert.equal(model.history.length, 3);
      // Once it is done, fit() may run again.
      assert.equal((await model.fit(data, { ...OPTIONS, epochs: 1 })).length, 1);
    } finally {
      model.dispose();
    }
  });

  test("a trainer refuses a second train() while one runs, and any epoch once closed", TIMEOUT, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, { inputs: 8, layers: [{ units: 3, activation: "softmax" }] });
    try {
      const trainer = await LocalTrainer.create(network, data, OPTIONS);
      const first = trainer.train();
      await assert.rejects(
        trainer.train(),
        (e: unknown) => e instanceof InvalidStateError && /an epoch of this trainer is already running/.test((e as Error).message),
      );
      assert.equal((await first).length, 3);
      await trainer.close();
      await assert.rejects(
        trainer.train(),
        (e: unknown) => e instanceof InvalidStateError && /the trainer is closed/.test((e as Error).message),
      );
    } finally {
      network.dispose();
    }
  });

  test("onEpoch may return a promise: the next epoch starts once it resolves", TIMEOUT, async () => {
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      let inside = false;
      let trainedInside = 0;
      let exchanges = 0;
      const exchange: GradientExchange = {
        epochBatches: async (n) => n,
        allreduce: async (_grads, local) => {
          exchanges++;
          if (inside) trainedInside++;
          return local;
        },
      };
      const onEpoch = async (): Promise<void> => {
        inside = true;
        await new Promise((resolve) => setTimeout(resolve, 30));
        inside = false;
      };
      await model.fit(data, { ...OPTIONS, exchange, onEpoch });
      assert.equal(exchanges, 3 * 30);
      assert.equal(trainedInside, 0, "training went on while onEpoch's promise was pending");
    } finally {
      model.dispose();
    }
  });

  test("onEpoch throwing (or rejecting) makes fit reject with that error after the workers stopped", TIMEOUT, async () => {
    const base = await detectPlatform();
    const live = new Set<number>();
    let spawned = 0;
    const platform: Platform = {
      ...base,
      readCore: (name) => base.readCore(name),
      hardwareConcurrency: () => base.hardwareConcurrency(),
      spawnWorker(url, create) {
        const handle = base.spawnWorker(url, create);
        const id = spawned++;
        live.add(id);
        return {
          ...handle,
          ref: () => handle.ref(),
          unref: () => handle.unref(),
          terminate: async () => {
            await handle.terminate();
            live.delete(id);
          },
        };
      },
    };
    const model = await MultiLayerPerceptron.create(MLP);
    try {
      const failure = new Error("checkpoint disk full");
      await assert.rejects(
        model.fit(data, { ...OPTIONS, platform, onEpoch: async () => Promise.reject(failure) }),
        (e: unknown) => e === failure,
      );
      assert.equal(spawned, 2);
      assert.equal(live.size, 0, "fit rejected before its workers were stopped");
      assert.equal(model.history.length, 1);
      // The model is free to train again.
      assert.equal((await model.fit(data, { ...OPTIONS, epochs: 1 })).length, 1);
    } finally {
      model.dispose();
    }
  });

  test(
    "labels a one-output sigmoid/cross-entropy model cannot produce are a DataError naming the dataset, row and line",
    TIMEOUT,
    async () => {
      const model = await LogisticRegression.create({ inputs: 2 });
      try {
        const x = new Float32Array([0, 1, 1, 0, 1, 1, 0, 0]);
        const bad = createDataset({
          features: 2,
          outputs: 1,
          x,
          y: new Float32Array([0, 1, 2, 1]),
          lines: new Int32Array([2, 3, 5, 6]),
          name: "three.csv",
        });
        await assert.rejects(
          model.fit(bad, { epochs: 1, threads: 0 }),
          (e: unknown) =>
            e instanceof DataError &&
            /row 3 of training data "three\.csv" \(line 5\): label 2 is outside \[0, 1\]/.test((e as Error).message) &&
            (e as DataError).line === 5,
        );
        const good = createDataset({ features: 2, outputs: 1, x, y: new Float32Array([0, 1, 1, 0]) });
        const badValidation = createDataset({ features: 2, outputs: 1, x, y: new Float32Array([0, -1, 1, 0]), name: "held-out" });
        await assert.rejects(
          model.fit(good, { epochs: 1, threads: 0, validation: badValidation }),
          /row 2 of validation data "held-out": label -1 is outside \[0, 1\]/,
        );
        assert.equal(model.history.length, 0);
      } finally {
        model.dispose();
      }
    },
  );
});
