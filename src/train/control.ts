// The shared control block of a training run: commands from the main thread, the work queues' counters,
// a barrier, progress counters and per-batch losses, all in SharedArrayBuffers driven with Atomics.

export const enum Slot {
  CommandSeq = 0,
  Command,
  Epoch,
  Batches, // mini-batches (sync) or portions (async) in this command
  FirstStep, // global step of the command's first mini-batch
  PortionNext, // phase 1 queue
  UpdateNext, // phase 2 queue
  BarrierCount,
  BarrierGeneration,
  BatchesDone,
  SamplesDone,
  WorkersDone,
  StopRequested,
  Stopped,
  Failed,
  AsyncStep,
  Size,
}

export const enum Command {
  RunEpoch = 1,
  Quit = 2,
}

/** Views of one run's control memory. */
export interface ControlViews {
  i32: Int32Array;
  /** The epoch's learning rate, set by the main thread before each epoch. */
  learningRate: Float64Array;
  /** Loss sums per (worker, batch): lossSums[worker * maxBatches + batch]. */
  lossSums: Float64Array;
  maxBatches: number;
}

export interface ControlBuffers {
  control: SharedArrayBuffer;
  scalars: SharedArrayBuffer;
  losses: SharedArrayBuffer;
  maxBatches: number;
}

export function createControl(threads: number, maxBatches: number): ControlBuffers {
  return {
    control: new SharedArrayBuffer(Slot.Size * 4),
    scalars: new SharedArrayBuffer(8),
    losses: new SharedArrayBuffer(Math.max(1, threads) * maxBatches * 8),
    maxBatches,
  };
}

export function controlViews(buffers: ControlBuffers): ControlViews {
  return { i32: new Int32Array(buffers.control), learningRate: new Float64Array(buffers.scalars), lossSums: new Float64Array(buffers.losses), maxBatches: buffers.maxBatches };
}

const SPINS = 20000;

/**
 * Blocks until all `parties` threads have arrived; the last to arrive runs `atLast` before releasing the others.
 * Spins briefly before sleeping in Atomics.wait, since phases are short.
 */
export function barrier(i32: Int32Array, parties: number, atLast?: () => void): void {
  const generation = Atomics.load(i32, Slot.BarrierGeneration);
  if (Atomics.add(i32, Slot.BarrierCount, 1) === parties - 1) {
    atLast?.();
    Atomics.store(i32, Slot.BarrierCount, 0);
    Atomics.add(i32, Slot.BarrierGeneration, 1);
    Atomics.notify(i32, Slot.BarrierGeneration);
    return;
  }
  for (let spin = 0; spin < SPINS; spin++) if (Atomics.load(i32, Slot.BarrierGeneration) !== generation) return;
  while (Atomics.load(i32, Slot.BarrierGeneration) === generation) {
    if (Atomics.load(i32, Slot.Failed)) throw new Error("stopped: another worker failed");
    Atomics.wait(i32, Slot.BarrierGeneration, generation, 100);
  }
}

/** Marks the run failed and wakes every thread waiting at the barrier, so none waits forever. */
export function signalFailure(i32: Int32Array): void {
  Atomics.store(i32, Slot.Failed, 1);
  Atomics.add(i32, Slot.BarrierGeneration, 0);
  Atomics.notify(i32, Slot.BarrierGeneration);
}
