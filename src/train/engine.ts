// One worker's share of an epoch: in sync mode every mini-batch runs in two phases separated by barriers
// (portions of rows from a queue, then update items from a queue); in async mode portions run back to back and
// each applies its own gradient. The same loop runs in worker threads or, with one party, on the calling thread.
import { barrier, Slot, type ControlViews } from "./control.js";
import type { StepRunner } from "./steps.js";

/** Runs the epoch described in the control block as worker `worker` of `parties`. */
export function runEpoch(runner: StepRunner, control: ControlViews, worker: number, parties: number): void {
  runner.refreshViews();
  runner.learningRate = control.learningRate[0]!;
  if (runner.plan.options.mode === "async") runAsyncEpoch(runner, control, worker, parties);
  else runSyncEpoch(runner, control, worker, parties);
}

function runSyncEpoch(runner: StepRunner, control: ControlViews, worker: number, parties: number): void {
  const { i32, lossSums, maxBatches } = control;
  const { samples, options, updateItems } = runner.plan;
  const set = runner.plan.sets[0]!;
  const batches = Atomics.load(i32, Slot.Batches);
  const firstStep = Atomics.load(i32, Slot.FirstStep);
  for (let b = 0; b < batches; b++) {
    const first = b * options.batchSize;
    const rows = Math.min(options.batchSize, samples - first);
    const portions = Math.ceil(rows / options.portion);
    let loss = 0;
    for (let p = Atomics.add(i32, Slot.PortionNext, 1); p < portions; p = Atomics.add(i32, Slot.PortionNext, 1)) {
      const r0 = p * options.portion;
      const count = Math.min(options.portion, rows - r0);
      runner.gather(set, r0, first + r0, count);
      loss += runner.forwardBackward(set, r0, count, rows, firstStep + b, true);
    }
    lossSums[worker * maxBatches + b] = loss;
    barrier(i32, parties, () => Atomics.store(i32, Slot.PortionNext, 0));
    for (let u = Atomics.add(i32, Slot.UpdateNext, 1); u < updateItems.length; u = Atomics.add(i32, Slot.UpdateNext, 1)) {
      runner.runUpdate(set, updateItems[u]!, rows, firstStep + b);
    }
    let stop = false;
    barrier(i32, parties, () => {
      Atomics.store(i32, Slot.UpdateNext, 0);
      Atomics.add(i32, Slot.BatchesDone, 1);
      Atomics.add(i32, Slot.SamplesDone, rows);
      if (Atomics.load(i32, Slot.StopRequested)) Atomics.store(i32, Slot.Stopped, b + 1);
    });
    stop = Atomics.load(i32, Slot.Stopped) !== 0;
    if (stop) return;
  }
}

function runAsyncEpoch(runner: StepRunner, control: ControlViews, worker: number, parties: number): void {
  const { i32, lossSums, maxBatches } = control;
  const { samples, options } = runner.plan;
  const set = runner.plan.sets[worker]!;
  const portions = Atomics.load(i32, Slot.Batches);
  for (let p = Atomics.add(i32, Slot.PortionNext, 1); p < portions; p = Atomics.add(i32, Slot.PortionNext, 1)) {
    if (Atomics.load(i32, Slot.StopRequested)) break;
    const first = p * options.portion;
    const count = Math.min(options.portion, samples - first);
    const step = Atomics.add(i32, Slot.AsyncStep, 1);
    runner.gather(set, 0, first, count);
    const loss = runner.forwardBackward(set, 0, count, options.batchSize, step, false);
    runner.applyPortion(set, count, step);
    const batch = Math.floor(first / options.batchSize);
    lossSums[worker * maxBatches + batch]! += loss;
    Atomics.add(i32, Slot.SamplesDone, count);
  }
  barrier(i32, parties, () => {
    Atomics.store(i32, Slot.PortionNext, 0);
    if (Atomics.load(i32, Slot.StopRequested)) Atomics.store(i32, Slot.Stopped, 1);
  });
}
