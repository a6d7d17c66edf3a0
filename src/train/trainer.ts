// Local training on all cores: puts the data and every buffer in the network's shared memory, starts worker
// threads that each take work portions from a queue, and drives epochs, progress, convergence and evaluation.
import { DownpourError, ShapeError, WorkerError } from "../errors.js";
import type { Dataset } from "../data/dataset.js";
import type { Network } from "../model/network.js";
import { detectPlatform, type Platform, type WorkerHandle } from "../runtime/platform.js";
import { startWorker } from "../runtime/spawn.js";
import { permutationInto } from "../util/random.js";
import { Command, controlViews, createControl, Slot, type ControlBuffers, type ControlViews } from "./control.js";
import { ConvergenceCheck } from "./convergence.js";
import { runEpoch } from "./engine.js";
import { evaluate, requireFits, type Evaluation } from "./evaluate.js";
import { resolveTrainOptions, TrainOptionsError, type ResolvedTrainOptions, type TrainOptions } from "./options.js";
import { OptimizerState } from "./state.js";
import { PlanBuilder, updateItems, type TrainPlan } from "./plan.js";
import { StepRunner } from "./steps.js";
import type { TrainWorkerInit } from "./worker.js";

/** A training run failed in a worker; the message carries the worker's error. */
export class TrainingError extends DownpourError {}

/** Reported while an epoch runs (about five times a second). */
export interface TrainProgress {
  epoch: number;
  samples: number;
  epochSamples: number;
  /** Mean loss of the most recent mini-batches. */
  loss: number;
  samplesPerSecond: number;
}

/** Reported after each epoch. */
export interface EpochReport {
  epoch: number;
  /** Mini-batches (updates) so far, over all epochs. */
  iterations: number;
  samples: number;
  /** Mean training loss over the epoch's samples (with the weights as they were when each was seen). */
  loss: number;
  seconds: number;
  samplesPerSecond: number;
  validation?: Evaluation;
  /** Why training stops after this epoch, if it does before the last. */
  stop?: "converged" | "max-iterations";
}

/** Hooks and data beside the hyper-parameters. */
export interface TrainerHooks {
  /** Evaluated after each epoch. */
  validation?: Dataset;
  onProgress?: (progress: TrainProgress) => void;
  platform?: Platform;
  /** Optimizer state to continue from (and to keep updated); it must be of the options' optimizer.
   *  Default: fresh state, released with the trainer. */
  state?: OptimizerState;
}

const PROGRESS_MS = 200;

export class LocalTrainer {
  private readonly control: ControlViews;
  private readonly runner: StepRunner;
  private readonly convergence: ConvergenceCheck | undefined;
  private iterations = 0;
  private closed = false;

  private constructor(
    readonly network: Network,
    readonly options: ResolvedTrainOptions,
    private readonly plan: TrainPlan,
    private readonly builder: PlanBuilder,
    buffers: ControlBuffers,
    private readonly workers: WorkerHandle[],
    private readonly hooks: TrainerHooks,
    private readonly failures: string[],
    /** The optimizer state this run updates. */
    readonly state: OptimizerState,
  ) {
    this.control = controlViews(buffers);
    const core = network.kernels.core;
    this.runner = new StepRunner(core.exports, core.memory, plan, 0);
    const c = options.convergence;
    this.convergence = c ? new ConvergenceCheck(c.window, c.minImprovement) : undefined;
  }

  /** Copies `train` into shared memory, allocates the run's buffers and starts the worker threads. */
  static async create(network: Network, train: Dataset, options: TrainOptions = {}, hooks: TrainerHooks = {}): Promise<LocalTrainer> {
    const platform = hooks.platform ?? (await detectPlatform());
    const resolved = resolveTrainOptions(options, platform.hardwareConcurrency());
    requireFits(network, train, "training data");
    if (hooks.validation) requireFits(network, hooks.validation, "validation data");
    if (train.size < 1) throw new ShapeError("training data has no samples");
    const core = network.kernels.core;
    if (resolved.threads > 0 && !core.shared) {
      throw new WorkerError("training on worker threads needs the network in a shared-memory core: Kernels.load({ shared: true })");
    }
    const state = hooks.state ?? OptimizerState.create(network, resolved.optimizer, resolved.momentum);
    if (state.kind !== resolved.optimizer || state.network !== network) {
      throw new TrainOptionsError(`optimizer state is ${state.kind} state of another run; options.optimizer is ${resolved.optimizer}`);
    }
    const builder = new PlanBuilder(network.kernels.arena);
    if (!hooks.state) builder.onRelease(() => state.dispose());
    try {
      const plan = buildPlan(builder, network, train, resolved, state);
      const buffers = createControl(resolved.threads, Math.ceil(train.size / resolved.batchSize));
      const failures: string[] = [];
      const workers = await startWorkers(platform, network, plan, buffers, failures);
      return new LocalTrainer(network, resolved, plan, builder, buffers, workers, hooks, failures, state);
    } catch (error) {
      builder.release();
      throw error;
    }
  }

  /** Runs epochs one by one, yielding a report after each; stops early on convergence or max iterations. */
  async *epochs(): AsyncGenerator<EpochReport> {
    for (let epoch = 1; epoch <= this.options.epochs && this.iterations < this.options.maxIterations; epoch++) {
      const report = await this.runOneEpoch(epoch);
      yield report;
      if (report.stop) return;
    }
  }

  /** Runs every epoch; resolves with the reports. */
  async train(): Promise<EpochReport[]> {
    const reports: EpochReport[] = [];
    for await (const report of this.epochs()) reports.push(report);
    return reports;
  }

  /** Stops the workers and releases the run's buffers (not the network). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.post(Command.Quit);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.builder.release();
  }

  private post(command: Command): void {
    const i32 = this.control.i32;
    Atomics.store(i32, Slot.Command, command);
    Atomics.add(i32, Slot.CommandSeq, 1);
    Atomics.notify(i32, Slot.CommandSeq);
  }

  private prepareEpoch(epoch: number): { batches: number; samples: number } {
    const { options, plan } = this;
    const perm = new Int32Array(this.network.kernels.core.memory.buffer, plan.perm, plan.samples);
    // Seeded by the global step, so training in several fit() calls repeats one long run exactly.
    if (options.shuffle) permutationInto(perm, Math.imul(options.seed, 7919) + this.state.step);
    else for (let i = 0; i < perm.length; i++) perm[i] = i;
    const batches = Math.min(Math.ceil(plan.samples / options.batchSize), options.maxIterations - this.iterations);
    const samples = Math.min(plan.samples, batches * options.batchSize);
    const i32 = this.control.i32;
    for (const slot of [Slot.PortionNext, Slot.UpdateNext, Slot.BatchesDone, Slot.SamplesDone, Slot.WorkersDone, Slot.StopRequested, Slot.Stopped, Slot.Failed]) {
      Atomics.store(i32, slot, 0);
    }
    Atomics.store(i32, Slot.Epoch, epoch);
    Atomics.store(i32, Slot.FirstStep, this.state.step);
    Atomics.store(i32, Slot.AsyncStep, this.state.step);
    Atomics.store(i32, Slot.Batches, options.mode === "sync" ? batches : Math.ceil(samples / options.portion));
    this.control.lossSums.fill(0);
    this.control.learningRate[0] = options.learningRate * options.learningRateDecay ** this.state.epochs;
    if (options.mode === "sync") this.runner.packAll();
    return { batches, samples };
  }

  private async runOneEpoch(epoch: number): Promise<EpochReport> {
    if (this.closed) throw new TrainingError("the trainer is closed");
    const { samples } = this.prepareEpoch(epoch);
    const started = performance.now();
    let fed = 0;
    const feed = (upTo: number): void => {
      for (; fed < upTo; fed++) if (this.convergence?.push(this.batchLoss(fed))) Atomics.store(this.control.i32, Slot.StopRequested, 1);
    };
    if (this.workers.length === 0) runEpoch(this.runner, this.control, 0, 1);
    else await this.waitForWorkers(epoch, samples, started, this.options.mode === "sync" ? feed : () => undefined);
    if (Atomics.load(this.control.i32, Slot.Failed)) throw new TrainingError(`training failed in a worker: ${this.failures.join("\n") || "unknown error"}`);
    const i32 = this.control.i32;
    const done = this.options.mode === "sync" ? Atomics.load(i32, Slot.BatchesDone) : Math.ceil(Atomics.load(i32, Slot.SamplesDone) / this.options.batchSize);
    feed(done);
    this.iterations += done;
    this.state.epochs++;
    this.state.step = this.options.mode === "sync" ? this.state.step + done : Atomics.load(i32, Slot.AsyncStep);
    const seen = Atomics.load(i32, Slot.SamplesDone);
    const seconds = (performance.now() - started) / 1000;
    const stopped = Atomics.load(i32, Slot.Stopped) !== 0 || Atomics.load(i32, Slot.StopRequested) !== 0;
    return {
      epoch,
      iterations: this.iterations,
      samples: seen,
      loss: this.totalLoss(done) / Math.max(1, seen),
      seconds,
      samplesPerSecond: seen / seconds,
      validation: this.hooks.validation ? evaluate(this.network, this.hooks.validation) : undefined,
      stop: stopped ? "converged" : this.iterations >= this.options.maxIterations ? "max-iterations" : undefined,
    };
  }

  private async waitForWorkers(epoch: number, epochSamples: number, started: number, feed: (batches: number) => void): Promise<void> {
    const i32 = this.control.i32;
    this.post(Command.RunEpoch);
    for (;;) {
      const finished = Atomics.load(i32, Slot.WorkersDone);
      if (finished >= this.workers.length) return;
      const waiting = Atomics.waitAsync(i32, Slot.WorkersDone, finished, PROGRESS_MS);
      if (waiting.async) await waiting.value;
      const batchesDone = Atomics.load(i32, Slot.BatchesDone);
      feed(batchesDone);
      const samples = Atomics.load(i32, Slot.SamplesDone);
      this.hooks.onProgress?.({
        epoch, samples, epochSamples,
        loss: this.recentLoss(batchesDone),
        samplesPerSecond: samples / ((performance.now() - started) / 1000),
      });
    }
  }

  private batchRows(b: number): number {
    return Math.min(this.options.batchSize, this.plan.samples - b * this.options.batchSize);
  }

  private batchLoss(b: number): number {
    let sum = 0;
    for (let w = 0; w < Math.max(1, this.workers.length); w++) sum += this.control.lossSums[w * this.control.maxBatches + b]!;
    return sum / this.batchRows(b);
  }

  private totalLoss(batches: number): number {
    let sum = 0;
    for (let b = 0; b < batches; b++) sum += this.batchLoss(b) * this.batchRows(b);
    return sum;
  }

  private recentLoss(batchesDone: number): number {
    const from = Math.max(0, batchesDone - 20);
    let sum = 0;
    for (let b = from; b < batchesDone; b++) sum += this.batchLoss(b);
    return batchesDone > from ? sum / (batchesDone - from) : Number.NaN;
  }
}

function buildPlan(builder: PlanBuilder, network: Network, train: Dataset, options: ResolvedTrainOptions, state: OptimizerState): TrainPlan {
  const core = network.kernels.core.exports;
  const spec = network.spec;
  const sync = options.mode === "sync";
  const parties = Math.max(1, options.threads);
  const x = builder.alloc(train.size * train.features, "training inputs");
  const y = builder.alloc(train.size * train.outputs, "training targets");
  const perm = builder.alloc(train.size, "permutation");
  const f32 = network.kernels.core.f32();
  f32.set(train.x.subarray(0, train.size * train.features), x >>> 2);
  f32.set(train.y.subarray(0, train.size * train.outputs), y >>> 2);
  const layers = builder.layers(network, state, sync, (n, k) => core.f32_gemm_packed_b_bytes(n, k));
  const sets = sync
    ? [builder.bufferSet(spec, options.batchSize)]
    : Array.from({ length: parties }, () => builder.bufferSet(spec, options.portion));
  const wsBytes = core.f32_gemm_workspace_bytes(1 << 20, 1 << 20, 1 << 20);
  const workspaces = Array.from({ length: parties }, (_, i) => builder.alloc(wsBytes / 4, `workspace ${i}`));
  return { spec, options, threads: options.threads, samples: train.size, x, y, perm, layers, sets, workspaces, updateItems: updateItems(spec) };
}

async function startWorkers(platform: Platform, network: Network, plan: TrainPlan, buffers: ControlBuffers, failures: string[]): Promise<WorkerHandle[]> {
  const url = new URL("./worker.js", import.meta.url);
  const core = network.kernels.core;
  const handles = await Promise.all(
    Array.from({ length: plan.threads }, (_, worker) => {
      const init: TrainWorkerInit = { type: "train-init", coreBytes: core.bytes, module: core.module, memory: core.memory, plan, buffers, worker, parties: plan.threads };
      return startWorker(platform, url, init);
    }),
  );
  for (const handle of handles) {
    handle.onMessage((message) => {
      const m = message as { type?: string; message?: string; worker?: number };
      if (m?.type === "train-error") failures.push(`worker ${m.worker}: ${m.message}`);
    });
    handle.onError((error) => failures.push(error.message));
  }
  return handles;
}
