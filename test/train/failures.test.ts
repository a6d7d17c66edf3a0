// Failures propagate: a worker that is terminated or throws mid-epoch makes train() reject with a TrainingError
// naming the worker, the other workers stop and every buffer is released; a worker that fails to start takes the
// others down with it; a failing exchange fails the run.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { WorkerError } from "../../src/errors.js";
import { Network } from "../../src/model/network.js";
import { detectPlatform, type Platform, type WorkerHandle } from "../../src/runtime/platform.js";
import type { GradientExchange } from "../../src/train/exchange.js";
import { LocalTrainer, TrainingError } from "../../src/train/trainer.js";
import type { TrainWorkerInit } from "../../src/train/worker.js";

const data = syntheticClassification({ size: 2000, features: 12, classes: 4, seed: 9 });
const SPEC = { inputs: 12, layers: [{ units: 32, activation: "relu" as const }, { units: 4, activation: "softmax" as const }], seed: 1 };

interface Recorded {
  platform: Platform;
  handles: WorkerHandle[];
  terminated: Set<number>;
}

// The runtime's platform, recording every worker it spawns and letting a test alter a worker's init message.
async function recordingPlatform(tamper?: (worker: number, init: TrainWorkerInit) => TrainWorkerInit): Promise<Recorded> {
  const base = await detectPlatform();
  const handles: WorkerHandle[] = [];
  const terminated = new Set<number>();
  const platform: Platform = {
    ...base,
    readCore: (name) => base.readCore(name),
    hardwareConcurrency: () => base.hardwareConcurrency(),
    spawnWorker(url) {
      const inner = base.spawnWorker(url);
      const index = handles.length;
      const handle: WorkerHandle = {
        ...inner,
        postMessage: (message) => {
          const init = message as TrainWorkerInit;
          inner.postMessage(init?.type === "train-init" && tamper ? tamper(init.worker, init) : message);
        },
        terminate: () => {
          terminated.add(index);
          return inner.terminate();
        },
      };
      handles.push(handle);
      return handle;
    },
  };
  return { platform, handles, terminated };
}

describe("failures propagate", () => {
  test("terminating a worker mid-epoch rejects train() within 2 s with a TrainingError naming it; buffers are released", { timeout: 30_000 }, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, SPEC);
    const before = kernels.arena.usedBytes;
    const { platform, handles } = await recordingPlatform();
    const trainer = await LocalTrainer.create(network, data, { threads: 2, epochs: 100_000, batchSize: 32 }, { platform });
    const training = trainer.train();
    await new Promise((resolve) => setTimeout(resolve, 150));
    const killed = performance.now();
    await handles[1]!.terminate();
    const error = await training.then(() => undefined, (e: unknown) => e);
    const seconds = (performance.now() - killed) / 1000;
    assert.ok(error instanceof TrainingError, `rejected with ${error}`);
    assert.equal(error.worker, 1);
    assert.match(error.message, /worker 1/);
    assert.ok(seconds < 2, `rejected after ${seconds} s`);
    await trainer.close();
    assert.equal(kernels.arena.usedBytes, before, "the run's buffers were not released");
    network.dispose();
  });

  test("a worker that throws mid-epoch rejects train() with its error; the other worker is stopped", { timeout: 30_000 }, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, SPEC);
    const before = kernels.arena.usedBytes;
    const { platform, terminated } = await recordingPlatform((worker, init) => {
      if (worker !== 0) return init;
      // Worker 0's first-layer weights point past the end of memory: its first GEMM traps mid-epoch.
      const layers = init.plan.layers.map((l, i) => (i === 0 ? { ...l, wOff: 0x7ff0_0000 } : l));
      return { ...init, plan: { ...init.plan, layers } };
    });
    const trainer = await LocalTrainer.create(network, data, { threads: 2, epochs: 3, batchSize: 32 }, { platform });
    await assert.rejects(trainer.train(), (e: unknown) => e instanceof TrainingError && e.worker === 0 && /worker 0/.test(e.message) && /out of bounds/i.test(e.message));
    await trainer.close();
    assert.deepEqual([...terminated].sort(), [0, 1]);
    assert.equal(kernels.arena.usedBytes, before);
    network.dispose();
  });

  test("if one worker fails to start, the ones that started are terminated and nothing is left allocated", { timeout: 30_000 }, async () => {
    const kernels = await Kernels.load({ shared: true });
    const network = Network.create(kernels, SPEC);
    const before = kernels.arena.usedBytes;
    const { platform, handles, terminated } = await recordingPlatform((worker, init) => {
      if (worker !== 1) return init;
      const { module: _module, ...rest } = init;
      return { ...rest, coreBytes: new Uint8Array([0, 97, 115, 109, 9]) } as TrainWorkerInit;
    });
    await assert.rejects(LocalTrainer.create(network, data, { threads: 2 }, { platform }), WorkerError);
    assert.equal(handles.length, 2);
    assert.deepEqual([...terminated].sort(), [0, 1]);
    assert.equal(kernels.arena.usedBytes, before);
    network.dispose();
  });

  for (const threads of [0, 2]) {
    test(`an exchange that rejects fails the run (${threads} threads) with the exchange's error as the cause`, { timeout: 30_000 }, async () => {
      const kernels = await Kernels.load({ shared: true });
      const network = Network.create(kernels, SPEC);
      const before = kernels.arena.usedBytes;
      const cause = new Error("peer 3 went away");
      let calls = 0;
      const exchange: GradientExchange = {
        epochBatches: async (batches) => batches,
        allreduce: async (_g, local) => {
          if (++calls === 5) throw cause;
          return local;
        },
      };
      const trainer = await LocalTrainer.create(network, data, { threads, epochs: 2, batchSize: 32 }, { exchange });
      await assert.rejects(trainer.train(), (e: unknown) => e instanceof TrainingError && e.cause === cause && /peer 3 went away/.test(e.message));
      await trainer.close();
      assert.equal(calls, 5);
      assert.equal(kernels.arena.usedBytes, before);
      network.dispose();
    });
  }
});
