// Local training on all cores: puts the data and every buffer in the network's shared memory, starts worker
// threads that take work tickets from one queue, and drives epochs from the main thread, which serves the
// training seam (the exchange point of sync mode, the mailboxes of async mode), reports progress, makes the stop
// decisions, and turns any worker's failure into a rejected TrainingError.
import { DownpourError, InvalidStateError, ShapeError, WorkerError } from "../errors.js";
import type { Dataset } from "../data/dataset.js";
import type { Network } from "../model/network.js";
import { requireSharedMemory } from "../runtime/isolation.js";
import { detectPlatform, type Platform, type WorkerHandle } from "../runtime/platform.js";
import { startWorker } from "../runtime/spawn.js";
import { permutationInto } from "../util/random.js";
import { Command, controlViews, createControl, Mail, Party, ringDoorbell, signalFailure, Slot, Ticket, type ControlBuffers, type ControlViews } from "./control.js";
import { ConvergenceCheck } from "./convergence.js";
import { ParticipationGovernor } from "./governor.js";
import { newMailboxState, runEpoch, syncShape, type MailboxState } from "./engine.js";
import { evaluate, requireFits, type Evaluation } from "./evaluate.js";
import { LocalExchange, type GradientExchange, type ParameterClient, type ParameterOptions } from "./exchange.js";
import { resolveTrainOptions, TrainOptionsError, type ResolvedTrainOptions, type TrainOptions } from "./options.js";
import { OptimizerState, stateSlots } from "./state.js";
import { PlanBuilder, stateBlocks, updateItems, type StallFault, type TrainPlan, type WorkerBlocks } from "./plan.js";
import { StepRunner } from "./steps.js";
import type { TrainWorkerInit } from "./worker.js";

/** A training run failed: a worker threw, exited or was terminated, or the exchange or parameter client failed. */
export class TrainingError extends DownpourError {
  /** The worker thread that failed, when one did. */
  readonly worker: number | undefined;
  /** The epoch (1-based) that was running. */
  readonly epoch: number | undefined;

  constructor(message: string, options: { cause?: unknown; worker?: number; epoch?: number } = {}) {
    super(message, options);
    this.worker = options.worker;
    this.epoch = options.epoch;
  }
}

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
  /** Mean training loss over the epoch's samples (with the weights as they were when each was seen; combined over
   *  every replica when an exchange joins several). */
  loss: number;
  seconds: number;
  samplesPerSecond: number;
  validation?: Evaluation;
  /** Why training stops after this epoch, if it does before the last. */
  stop?: "converged" | "max-iterations";
  /** Sync mode: work items whose result came from a backup, recomputed by one thread because the thread holding
   *  them was descheduled for far longer than such items take. */
  backups: number;
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
  /** Sync mode: combines this replica's gradient with those of other replicas once per mini-batch.
   *  Default: none (this trainer alone; the same as LocalExchange). */
  exchange?: GradientExchange;
  /** Async mode: workers pull parameters from and push gradients to this client instead of updating the
   *  network's parameters in place; the network receives the client's parameters after every epoch. */
  parameters?: ParameterOptions;
  /** Tests only: makes one worker pause in the middle of some work items, as a descheduled thread would. */
  stall?: StallFault;
}

const PROGRESS_MS = 200;
/** How long to wait for a failed worker's report after it marked the run failed. */
const FAILURE_REPORT_MS = 1000;

/** How a worker's failure is described. */
interface Failure {
  worker: number | undefined;
  message: string;
  cause?: unknown;
}

/** Trains one network on one dataset with the options' threads; see TrainerHooks for the seam. */
export class LocalTrainer {
  private readonly control: ControlViews;
  private readonly runner: StepRunner;
  private readonly convergence: ConvergenceCheck | undefined;
  private readonly exchange: GradientExchange;
  private readonly client: ParameterClient | undefined;
  private readonly inlineMailbox: MailboxState = newMailboxState();
  private readonly failures: Failure[] = [];
  private readonly combinedLoss: Float64Array;
  /** Sync mode on several threads: how many take part (see governor.ts). */
  private readonly governor: ParticipationGovernor | undefined;
  private iterations = 0;
  private exchanged = 0;
  private epoch = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly network: Network,
    readonly options: ResolvedTrainOptions,
    private readonly plan: TrainPlan,
    private readonly builder: PlanBuilder,
    buffers: ControlBuffers,
    private readonly hooks: TrainerHooks,
    /** The optimizer state this run updates. */
    readonly state: OptimizerState,
  ) {
    this.control = controlViews(buffers);
    const core = network.kernels.core;
    this.runner = new StepRunner(core.exports, core.memory, plan, 0);
    const c = options.convergence;
    this.convergence = c ? new ConvergenceCheck(c.window, c.minImprovement) : undefined;
    this.exchange = hooks.exchange ?? new LocalExchange();
    this.client = hooks.parameters?.client;
    this.combinedLoss = new Float64Array(buffers.maxBatches);
    this.governor = options.mode === "sync" && options.threads > 1 ? new ParticipationGovernor(options.threads) : undefined;
  }

  private workers: WorkerHandle[] = [];

  /** Copies `train` into shared memory, allocates the run's buffers and starts the worker threads. */
  static async create(network: Network, train: Dataset, options: TrainOptions = {}, hooks: TrainerHooks = {}): Promise<LocalTrainer> {
    const platform = hooks.platform ?? (await detectPlatform());
    const resolved = resolveTrainOptions(options, platform.hardwareConcurrency());
    requireFits(network, train, "training data");
    if (hooks.validation) requireFits(network, hooks.validation, "validation data");
    if (train.size < 1) throw new ShapeError("training data has no samples");
    checkSeam(resolved, hooks);
    const core = network.kernels.core;
    if (resolved.threads > 0) requireSharedMemory(`training on ${resolved.threads} worker threads`);
    if (resolved.threads > 0 && !core.shared) {
      throw new WorkerError("training on worker threads needs the network in a shared-memory core: Kernels.load({ shared: true })");
    }
    const state = hooks.state ?? OptimizerState.create(network, resolved.optimizer, resolved.momentum);
    if (state.kind !== resolved.optimizer || state.network !== network || state.slots !== stateSlots(resolved.optimizer, resolved.momentum)) {
      throw new TrainOptionsError(
        `optimizer state is ${state.kind} state with ${state.slots} slots${state.network !== network ? " of another network" : ""}; options ask for ${resolved.optimizer} with momentum ${resolved.momentum}`,
      );
    }
    const builder = new PlanBuilder(network.kernels.arena);
    if (!hooks.state) builder.onRelease(() => state.dispose());
    let trainer: LocalTrainer | undefined;
    try {
      const plan = buildPlan(builder, network, train, resolved, state, hooks);
      const shape = resolved.mode === "sync" ? syncShape(plan) : { portions: 0, perBatch: 0 };
      const buffers = createControl(resolved.threads, Math.ceil(train.size / resolved.batchSize), shape.portions, shape.perBatch);
      trainer = new LocalTrainer(network, resolved, plan, builder, buffers, hooks, state);
      trainer.workers = await trainer.startWorkers(platform, buffers);
      return trainer;
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

  /** Runs every epoch; resolves with the reports. Rejects with TrainingError if a worker or the seam fails. */
  async train(): Promise<EpochReport[]> {
    const reports: EpochReport[] = [];
    for await (const report of this.epochs()) reports.push(report);
    return reports;
  }

  /** Stops the workers and releases the run's buffers (not the network); resolves when both are done. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.post(Command.Quit);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.builder.release();
  }

  private post(command: number): void {
    const i32 = this.control.i32;
    Atomics.store(i32, Slot.Command, command);
    Atomics.add(i32, Slot.CommandSeq, 1);
    Atomics.notify(i32, Slot.CommandSeq);
  }

  private async prepareEpoch(): Promise<{ batches: number; samples: number }> {
    const { options, plan } = this;
    const perm = new Int32Array(this.network.kernels.core.memory.buffer, plan.perm, plan.samples);
    // Seeded by the global step, so training in several fit() calls repeats one long run exactly.
    if (options.shuffle) permutationInto(perm, Math.imul(options.seed, 7919) + this.state.step);
    else for (let i = 0; i < perm.length; i++) perm[i] = i;
    let batches = Math.min(Math.ceil(plan.samples / options.batchSize), options.maxIterations - this.iterations);
    if (options.mode === "sync") batches = Math.min(batches, await this.exchange.epochBatches(batches, this.epoch));
    const samples = Math.min(plan.samples, batches * options.batchSize);
    const i32 = this.control.i32;
    for (const slot of [Slot.Backups, Slot.Next, Slot.Completed, Slot.ExchangeRequested, Slot.ExchangeDone, Slot.StopAfter, Slot.BatchesDone, Slot.SamplesDone, Slot.WorkersDone, Slot.StopRequested]) {
      Atomics.store(i32, slot, 0);
    }
    this.exchanged = 0;
    Atomics.store(i32, Slot.Active, this.governor?.active ?? Math.max(1, options.threads));
    Atomics.store(i32, Slot.FirstStep, this.state.step);
    Atomics.store(i32, Slot.AsyncStep, this.state.step);
    Atomics.store(i32, Slot.Batches, options.mode === "sync" ? batches : Math.ceil(samples / options.portion));
    this.control.lossSums.fill(0);
    this.control.tickets.fill(0);
    this.control.holders.fill(-1);
    this.combinedLoss.fill(0);
    this.control.learningRate[0] = options.learningRate * options.learningRateDecay ** this.state.epochs;
    if (options.mode === "sync") this.runner.packAll();
    return { batches, samples };
  }

  private async runOneEpoch(epoch: number): Promise<EpochReport> {
    if (this.closed) throw new InvalidStateError("the trainer is closed");
    this.epoch = epoch;
    this.throwIfFailed();
    const { samples } = await this.prepareEpoch();
    const started = performance.now();
    try {
      if (this.workers.length === 0) await this.runInline();
      else await this.runWithWorkers(samples, started);
      if (this.client) await this.client.pull(this.paramsView());
    } catch (error) {
      this.fail(undefined, `the training seam failed: ${(error as Error)?.message ?? error}`, error);
    }
    if (Atomics.load(this.control.i32, Slot.Failed)) await this.awaitFailureReport();
    this.throwIfFailed();
    return this.finishEpoch(epoch, started);
  }

  private finishEpoch(epoch: number, started: number): EpochReport {
    const i32 = this.control.i32;
    const sync = this.options.mode === "sync";
    const done = sync ? Atomics.load(i32, Slot.BatchesDone) : Math.ceil(Atomics.load(i32, Slot.SamplesDone) / this.options.batchSize);
    if (!sync) for (let b = 0; b < done; b++) if (this.convergence?.push(this.batchLoss(b))) Atomics.store(i32, Slot.StopRequested, 1);
    this.iterations += done;
    this.state.epochs++;
    this.state.step = sync ? this.state.step + done : Atomics.load(i32, Slot.AsyncStep);
    const seen = Atomics.load(i32, Slot.SamplesDone);
    const seconds = (performance.now() - started) / 1000;
    const stopped = Atomics.load(i32, Slot.StopAfter) !== 0 || Atomics.load(i32, Slot.StopRequested) !== 0;
    return {
      epoch,
      iterations: this.iterations,
      samples: seen,
      loss: this.totalLoss(done) / Math.max(1, this.totalRows(done)),
      seconds,
      samplesPerSecond: seen / seconds,
      validation: this.hooks.validation ? evaluate(this.network, this.hooks.validation) : undefined,
      stop: stopped ? "converged" : this.iterations >= this.options.maxIterations ? "max-iterations" : undefined,
      backups: Atomics.load(i32, Slot.Backups),
    };
  }

  // threads: 0 — the calling thread runs the engine and serves the seam whenever the engine waits.
  private async runInline(): Promise<void> {
    const epoch = runEpoch(this.runner, this.control, 0, this.inlineMailbox);
    for (let r = epoch.next(); !r.done; r = epoch.next()) await this.serve();
  }

  private async runWithWorkers(epochSamples: number, started: number): Promise<void> {
    const i32 = this.control.i32;
    this.post(Command.RunEpoch);
    this.governor?.epochStarted();
    let lastProgress = started;
    let governAt = started;
    for (;;) {
      if (this.failures.length) return;
      const bell = Atomics.load(i32, Slot.Doorbell);
      await this.serve();
      if (Atomics.load(i32, Slot.WorkersDone) >= this.workers.length) return;
      const now = performance.now();
      if (now - lastProgress >= PROGRESS_MS) {
        lastProgress = now;
        this.reportProgress(epochSamples, started);
      }
      if (this.governor && now >= governAt) governAt = now + this.govern(now);
      if (Atomics.load(i32, Slot.Doorbell) !== bell) continue;
      const wait = Math.max(1, Math.min(PROGRESS_MS, governAt - now));
      const waiting = Atomics.waitAsync(i32, Slot.Doorbell, bell, wait);
      if (waiting.async) await waiting.value;
    }
  }

  // Lets the governor set how many threads take work; returns when to ask it again (ms).
  private govern(now: number): number {
    const i32 = this.control.i32;
    let waited = 0;
    for (let p = 0; p < this.control.parties; p++) waited += this.control.waited[p * Party.f64]!;
    const { active, nextInMs } = this.governor!.tick({ now, batches: Atomics.load(i32, Slot.BatchesDone), waited });
    if (Atomics.load(i32, Slot.Active) !== active) {
      Atomics.store(i32, Slot.Active, active);
      Atomics.notify(i32, Slot.Active);
    }
    return nextInMs;
  }

  private reportProgress(epochSamples: number, started: number): void {
    const batchesDone = Atomics.load(this.control.i32, Slot.BatchesDone);
    const samples = Atomics.load(this.control.i32, Slot.SamplesDone);
    this.hooks.onProgress?.({
      epoch: this.epoch, samples, epochSamples,
      loss: this.recentLoss(batchesDone),
      samplesPerSecond: samples / ((performance.now() - started) / 1000),
    });
  }

  /** Serves what the engine waits for: pending exchange points, then the mailboxes. */
  private async serve(): Promise<void> {
    const requested = Atomics.load(this.control.i32, Slot.ExchangeRequested);
    while (this.exchanged < requested && !this.failures.length) await this.serveExchange(this.exchanged++);
    if (this.client) await this.serveMailboxes(this.client);
  }

  // The exchange point of batch b: combine the gradient, decide whether to stop, release the apply items.
  private async serveExchange(b: number): Promise<void> {
    const i32 = this.control.i32;
    const rows = this.batchRows(b);
    const local = { loss: this.localBatchLoss(b), rows };
    const step = Atomics.load(i32, Slot.FirstStep) + b;
    this.gatherGradient(b);
    const combined = await this.exchange.allreduce(this.view(this.plan.grads), local, step);
    this.combinedLoss[b] = combined.loss / Math.max(1, combined.rows);
    if (this.convergence?.push(this.combinedLoss[b]!)) Atomics.store(i32, Slot.StopAfter, b + 1);
    Atomics.store(i32, Slot.ExchangeDone, b + 1);
    Atomics.notify(i32, Slot.ExchangeDone);
  }

  // Batch b's gradient into the one gradient block: each item's band from the party that computed it.
  private gatherGradient(b: number): void {
    const { plan } = this;
    const shape = syncShape(plan);
    const f32 = this.network.kernels.core.f32();
    plan.updateItems.forEach((item, u) => {
      const party = this.control.tickets[b * shape.perBatch + shape.portions + u]! - Ticket.Done;
      const L = plan.layers[item.layer]!;
      const [off, n] = item.bias ? [L.bOff, L.units] : [L.wOff + 4 * item.r0 * L.units, (item.r1 - item.r0) * L.units];
      const from = (plan.partyGrads[party]! + off) >>> 2;
      f32.copyWithin((plan.grads + off) >>> 2, from, from + n);
    });
  }

  // Every worker's pending pushes (push n from accumulator (n - 1) % 2) and fetch.
  private async serveMailboxes(client: ParameterClient): Promise<void> {
    const { mail } = this.control;
    for (let w = 0; w < this.plan.blocks.length; w++) {
      const at = w * Mail.Size;
      const blocks = this.plan.blocks[w]!;
      for (let n = Atomics.load(mail, at + Mail.PushDone) + 1; n <= Atomics.load(mail, at + Mail.PushSeq); n++) {
        await client.push(this.view(blocks.grads[(n - 1) % 2]!), undefined, { worker: w, seq: n });
        Atomics.store(mail, at + Mail.PushDone, n);
        Atomics.notify(mail, at + Mail.PushDone);
      }
      const fetch = Atomics.load(mail, at + Mail.FetchSeq);
      if (Atomics.load(mail, at + Mail.FetchDone) < fetch) {
        await client.pull(this.view(blocks.replicas[Atomics.load(mail, at + Mail.FetchBuf)]!));
        Atomics.store(mail, at + Mail.FetchDone, fetch);
        Atomics.notify(mail, at + Mail.FetchDone);
      }
    }
  }

  /** A live view of one block of the parameter layout at `ptr`. */
  private view(ptr: number): Float32Array {
    return new Float32Array(this.network.kernels.core.memory.buffer, ptr, this.plan.keys);
  }

  private paramsView(): Float32Array {
    return this.view(this.plan.params);
  }

  private async startWorkers(platform: Platform, buffers: ControlBuffers): Promise<WorkerHandle[]> {
    // Both literal forms, so bundlers emit the worker module (the factory serves Web Workers).
    const entry = { url: new URL("./worker.js", import.meta.url), create: () => new Worker(new URL("./worker.js", import.meta.url), { type: "module" }) };
    const core = this.network.kernels.core;
    const starts = await Promise.allSettled(
      Array.from({ length: this.plan.threads }, (_, worker) => {
        const init: TrainWorkerInit = { type: "train-init", coreBytes: core.bytes, module: core.module, memory: core.memory, plan: this.plan, buffers, worker };
        return startWorker(platform, entry, init);
      }),
    );
    const handles = starts.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = starts.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      await Promise.all(handles.map((h) => h.terminate()));
      throw failed.reason;
    }
    for (const [worker, handle] of handles.entries()) this.watch(handle, worker);
    return handles;
  }

  private watch(handle: WorkerHandle, worker: number): void {
    handle.onMessage((message) => {
      const m = message as { type?: string; message?: string };
      if (m?.type === "train-error") this.fail(worker, String(m.message));
    });
    handle.onError((error) => this.fail(worker, error.message, error));
    handle.onExit((code) => {
      if (!this.closing) this.fail(worker, `the thread exited (code ${code})`);
    });
  }

  // Records a failure, marks the run failed so every worker stops, and wakes the main loop.
  private fail(worker: number | undefined, message: string, cause?: unknown): void {
    this.failures.push({ worker, message, cause });
    signalFailure(this.control.i32);
    ringDoorbell(this.control.i32);
  }

  // A worker marks the run failed in shared memory before its message arrives; wait briefly for the message.
  private async awaitFailureReport(): Promise<void> {
    for (let waited = 0; !this.failures.length && waited < FAILURE_REPORT_MS; waited += 10) await new Promise((r) => setTimeout(r, 10));
    if (!this.failures.length) this.failures.push({ worker: undefined, message: "a worker stopped the run without reporting why" });
  }

  // After a failure: stop every worker, release every buffer, and reject with the first failure.
  private throwIfFailed(): void {
    const first = this.failures[0];
    if (!first) return;
    void this.close();
    const who = first.worker === undefined ? "" : ` in worker ${first.worker}`;
    throw new TrainingError(`training failed${who} during epoch ${this.epoch}: ${first.message}`, { cause: first.cause, worker: first.worker, epoch: this.epoch });
  }

  private batchRows(b: number): number {
    return Math.min(this.options.batchSize, this.plan.samples - b * this.options.batchSize);
  }

  // This replica's summed loss of batch b, in portion order (the same whatever the thread count).
  private localBatchLoss(b: number): number {
    const { lossSums } = this.control;
    let sum = 0;
    if (this.options.mode === "sync") {
      const portions = syncShape(this.plan).portions;
      for (let p = 0; p < portions; p++) sum += lossSums[b * portions + p]!;
    } else {
      for (let w = 0; w < Math.max(1, this.workers.length); w++) sum += lossSums[w * this.control.maxBatches + b]!;
    }
    return sum;
  }

  // Mean loss of batch b (combined over replicas when an exchange served it).
  private batchLoss(b: number): number {
    if (this.plan.exchange && b < this.exchanged) return this.combinedLoss[b]!;
    return this.localBatchLoss(b) / this.batchRows(b);
  }

  private totalLoss(batches: number): number {
    let sum = 0;
    for (let b = 0; b < batches; b++) sum += this.batchLoss(b) * this.batchRows(b);
    return sum;
  }

  private totalRows(batches: number): number {
    let sum = 0;
    for (let b = 0; b < batches; b++) sum += this.batchRows(b);
    return sum;
  }

  private recentLoss(batchesDone: number): number {
    const from = Math.max(0, batchesDone - 20);
    let sum = 0;
    for (let b = from; b < batchesDone; b++) sum += this.batchLoss(b);
    return batchesDone > from ? sum / (batchesDone - from) : Number.NaN;
  }
}

function checkSeam(options: ResolvedTrainOptions, hooks: TrainerHooks): void {
  if (hooks.exchange && options.mode !== "sync") throw new TrainOptionsError(`a gradient exchange needs mode "sync"; mode is "${options.mode}"`);
  if (hooks.parameters && options.mode !== "async") throw new TrainOptionsError(`a parameter client needs mode "async"; mode is "${options.mode}"`);
  for (const field of ["nFetch", "nPush"] as const) {
    const n = hooks.parameters?.[field];
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new TrainOptionsError(`parameters.${field} must be a positive integer, got ${JSON.stringify(n)}`);
  }
}

function buildPlan(builder: PlanBuilder, network: Network, train: Dataset, options: ResolvedTrainOptions, state: OptimizerState, hooks: TrainerHooks): TrainPlan {
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
  const layers = builder.layers(network, sync, (n, k) => core.f32_gemm_packed_b_bytes(n, k));
  const sets = sync
    ? [builder.bufferSet(spec, options.batchSize)]
    : Array.from({ length: parties }, () => builder.bufferSet(spec, options.portion));
  const served = hooks.parameters !== undefined;
  const blocks: WorkerBlocks[] = sync
    ? []
    : Array.from({ length: parties }, (_, w) => ({
        grads: Array.from({ length: served ? 2 : 1 }, (_, k) => builder.block(network, `grads ${w}.${k}`)),
        replicas: served ? [0, 1].map((k) => builder.block(network, `replica ${w}.${k}`)) : [],
      }));
  const partyGrads = sync ? Array.from({ length: parties }, (_, p) => builder.block(network, `grads of party ${p}`)) : [];
  const portionSets = sync ? Array.from({ length: parties }, () => builder.bufferSet(spec, options.portion)) : [];
  const packedD = sync ? spec.layers.map((layer, l) => builder.alloc(core.f32_gemm_packed_b_bytes(layer.units, options.batchSize) / 4, `packed d${l}`)) : [];
  const mailbox = hooks.parameters ? { nFetch: hooks.parameters.nFetch ?? 1, nPush: hooks.parameters.nPush ?? 1 } : undefined;
  const workspaces = Array.from({ length: parties }, (_, i) => builder.alloc(maxGemmWorkspaceBytes(network) / 4, `workspace ${i}`));
  return {
    spec, options, threads: options.threads, samples: train.size, x, y, perm,
    keys: network.params.block.length,
    params: network.params.block.ptr,
    grads: sync ? builder.block(network, "gradients") : 0,
    partyGrads, portionSets, packedD,
    state: stateBlocks(state),
    layers, sets, blocks, workspaces,
    updateItems: updateItems(spec),
    exchange: sync && (hooks.exchange !== undefined || options.convergence !== undefined),
    mailbox,
    ...(hooks.stall ? { stall: hooks.stall } : {}),
  };
}

/** Workspace bytes of the largest GEMM any call can make (the workspace is bounded by the blocking sizes). */
function maxGemmWorkspaceBytes(network: Network): number {
  return network.kernels.core.exports.f32_gemm_workspace_bytes(1 << 20, 1 << 20, 1 << 20);
}
