// Local training on all cores: puts the data and every buffer in the network's shared memory, starts worker
// threads that take work tickets from one queue, and drives epochs from the main thread, which serves the
// training seam (the exchange point of sync mode, the mailboxes of async mode), reports progress, makes the stop
// decisions (convergence, early stopping, an abort, a diverged loss), and turns any worker's failure into a
// rejected TrainingError.

import type { Dataset } from "../data/dataset.js";
import { isSparse, type SparseDataset } from "../data/sparse.js";
import { copyCsrRows } from "./sparse-inputs.js";
import { DataError } from "../data/errors.js";
import { DownpourError, InvalidArgumentError, InvalidStateError, ShapeError, WorkerError } from "../errors.js";
import type { Network } from "../model/network.js";
import { describeTargetProblem, targetProblem } from "../model/targets-check.js";
import { requireSharedMemory } from "../runtime/isolation.js";
import { detectPlatform, type Platform, type WorkerHandle } from "../runtime/platform.js";
import { startWorker } from "../runtime/spawn.js";
import { describeValue } from "../util/describe.js";
import { permutationInto } from "../util/random.js";
import {
  Command,
  type ControlBuffers,
  type ControlViews,
  controlViews,
  createControl,
  Mail,
  Party,
  reportDivergence,
  requestStopAfter,
  ringDoorbell,
  Slot,
  signalFailure,
  Ticket,
} from "./control.js";
import { ConvergenceCheck } from "./convergence.js";
import { type MailboxState, newMailboxState, runEpoch, syncShape } from "./engine.js";
import { type Evaluation, evaluate, requireFits } from "./evaluate.js";
import { type GradientExchange, LocalExchange, type ParameterClient, type ParameterOptions } from "./exchange.js";
import { ParticipationGovernor } from "./governor.js";
import { type ResolvedTrainOptions, resolveTrainOptions, type TrainOptions, TrainOptionsError } from "./options.js";
import { PlanBuilder, type StallFault, stateBlocks, type TrainPlan, updateItems, type WorkerBlocks } from "./plan.js";
import { OptimizerState, stateSlots } from "./state.js";
import { StepRunner } from "./steps.js";
import { didYouMean } from "./suggest.js";
import type { TrainWorkerInit } from "./worker.js";

/** Why a training run failed: the loss became NaN or infinite ("diverged", with nonFiniteLoss "error"), a worker
 *  thread threw, exited or was terminated ("worker"), or the exchange or parameter client failed ("seam"). */
export type TrainingFailure = "diverged" | "worker" | "seam";

/** A training run failed; `reason` says how. The trainer is closed when this is thrown. */
export class TrainingError extends DownpourError {
  readonly reason: TrainingFailure;
  /** The worker thread that failed, when one did. */
  readonly worker: number | undefined;
  /** The epoch (1-based, counted in this run) that was running. */
  readonly epoch: number | undefined;
  /** reason "diverged": the mini-batch (1-based, within the epoch) whose loss was NaN or infinite. */
  readonly batch: number | undefined;

  constructor(
    message: string,
    options: { cause?: unknown; reason?: TrainingFailure; worker?: number; epoch?: number; batch?: number } = {},
  ) {
    super(message, options);
    this.reason = options.reason ?? "worker";
    this.worker = options.worker;
    this.epoch = options.epoch;
    this.batch = options.batch;
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
   *  every replica when an exchange joins several; the local batches between an averaging exchange's sync points
   *  count this replica's own loss). */
  loss: number;
  /** Time spent training in this epoch (not validating). */
  seconds: number;
  /** Training samples per second of `seconds`. */
  samplesPerSecond: number;
  /** The validation set's evaluation after the epoch (absent after an abort). */
  validation?: Evaluation;
  /** Time spent evaluating the validation set after the epoch, when there is one. */
  validationSeconds?: number;
  /** Why training stops after this epoch, if it does: the convergence check; early stopping (patience epochs
   *  without a better validation loss); the maxIterations limit; or an abort (the signal, or close() while the
   *  epoch ran), in which case the epoch may be partial: it holds the mini-batches completed before the stop. */
  stop?: EpochStop;
  /** Async mode with a parameter client: per worker thread (one for threads 0), the seconds of this epoch it was
   *  blocked waiting for its mailbox (a push or fetch the main thread had not yet served). */
  idleSeconds?: number[];
  /** Sync mode: work items whose result came from a backup, recomputed by one thread because the thread holding
   *  them was descheduled for far longer than such items take. */
  backups: number;
}

/** Why training stopped after an epoch (see EpochReport.stop). */
export type EpochStop = "converged" | "early-stopped" | "max-iterations" | "aborted";

/** Hooks and data beside the hyper-parameters. */
export interface TrainerHooks {
  /** Evaluated after each epoch. */
  validation?: Dataset | SparseDataset;
  onProgress?: (progress: TrainProgress) => void;
  platform?: Platform;
  /** Aborting stops training at the next mini-batch boundary (the workers finish the work they hold): the epoch's
   *  report (stop "aborted") counts the completed mini-batches, and the parameters and optimizer state hold exactly
   *  those updates, so the model can be saved and trained on. Aborted before an epoch starts: no epoch runs. */
  signal?: AbortSignal;
  /** Optimizer state to continue from (and to keep updated); it must be of the options' optimizer.
   *  Default: fresh state, released with the trainer. */
  state?: OptimizerState;
  /** Sync mode: combines this replica's gradient with those of other replicas once per mini-batch (or, for an
   *  exchange that averages models every k batches, the parameters and optimizer state too: see
   *  GradientExchange.attach). Default: none (this trainer alone; the same as LocalExchange). */
  exchange?: GradientExchange;
  /** Async mode: workers pull parameters from and push gradients to this client instead of updating the
   *  network's parameters in place; the network receives the client's parameters after every epoch. */
  parameters?: ParameterOptions;
  /** Tests only: makes one worker pause in the middle of some work items, as a descheduled thread would. */
  stall?: StallFault;
}

/** Every field of TrainerHooks (a Record, so a field added to TrainerHooks fails the build until it is listed). */
const TRAINER_HOOK_FIELDS: Record<keyof TrainerHooks, true> = {
  validation: true,
  onProgress: true,
  platform: true,
  signal: true,
  state: true,
  exchange: true,
  parameters: true,
  stall: true,
};

/** The names of the TrainerHooks fields. */
export const TRAINER_HOOK_NAMES = Object.keys(TRAINER_HOOK_FIELDS) as readonly (keyof TrainerHooks)[];

const PROGRESS_MS = 200;
/** How long to wait for a failed worker's report after it marked the run failed. */
const FAILURE_REPORT_MS = 1000;

/** How a worker's failure is described. */
interface Failure {
  reason: TrainingFailure;
  worker: number | undefined;
  message: string;
  cause?: unknown;
}

/** Resolves on a later turn of the event loop (after pending timers and I/O), unlike a resolved promise. */
const nextTask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
/** A turn of the event loop (I/O included), as soon as the runtime allows. */
const yieldToIO = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0)));

/** Trains one network on one dataset with the options' threads; see TrainerHooks for the seam. */
export class LocalTrainer {
  private readonly control: ControlViews;
  private readonly runner: StepRunner;
  private readonly convergence: ConvergenceCheck | undefined;
  private readonly exchange: GradientExchange;
  private readonly client: ParameterClient | undefined;
  /** Async: pushes handed to the client and not yet applied, and the first push that failed. */
  private readonly pushesInFlight = new Set<Promise<unknown>>();
  private pushFailure: unknown;
  /** Async: per worker, the fetch in flight (at most one) and the pushes handed to the client so far. */
  private readonly fetching: (Promise<void> | undefined)[] = [];
  private readonly pushesSent: number[] = [];
  /** Async: per worker, the pushes the client has applied (resolved), counted like pushesSent. */
  private readonly pushesApplied: number[] = [];
  /** ParameterOptions.maxPushesInFlight (Infinity: unbounded). */
  private readonly maxPushesInFlight: number;
  /** ParameterOptions.waitForReads: fetches are served without blocking the service (see serveMailboxes). */
  private readonly waitForReads: boolean;
  /** Async: the pushes handed over when the client was last told the epoch's work is all taken. */
  private pausedAt = -1;
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
  /** The epoch being run (settled when it ends either way), so close() can wait for it. */
  private running: Promise<unknown> | undefined;
  /** Whether the convergence check stopped this epoch. */
  private converged = false;
  /** Early stopping: the best validation loss so far and the epochs since it. */
  private bestValidationLoss = Number.POSITIVE_INFINITY;
  private epochsSinceBest = 0;

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
    this.waitForReads = hooks.parameters?.waitForReads === true;
    this.maxPushesInFlight = hooks.parameters?.maxPushesInFlight ?? Number.POSITIVE_INFINITY;
    this.combinedLoss = new Float64Array(buffers.maxBatches);
    this.governor = options.mode === "sync" && options.threads > 1 ? new ParticipationGovernor(options.threads) : undefined;
    // Fresh views at each call (a view of WASM memory detaches when it grows).
    this.exchange.attach?.({ keys: plan.keys, params: () => this.paramsView(), state: () => plan.state.map((ptr) => this.view(ptr)) });
  }

  private workers: WorkerHandle[] = [];

  /**
   * Copies `train` into shared memory, allocates the run's buffers and starts the worker threads (unref'd while no
   * epoch runs, so a trainer never closed does not keep Node or Bun alive; close it anyway to free its memory).
   * Throws TrainOptionsError for an unknown or bad option or hook, ShapeError for data of the wrong shape, and
   * DataError for targets the network's output layer and cost cannot produce (naming the dataset's row and line).
   */
  static async create(network: Network, train: Dataset | SparseDataset, options: TrainOptions = {}, hooks: TrainerHooks = {}): Promise<LocalTrainer> {
    requireDataset(train, "training data");
    checkHookNames(hooks);
    if (hooks.validation !== undefined) requireDataset(hooks.validation, "validation data");
    const platform = hooks.platform ?? (await detectPlatform());
    const resolved = resolveTrainOptions(options, platform.hardwareConcurrency());
    requireFits(network, train, "training data");
    if (hooks.validation) requireFits(network, hooks.validation, "validation data");
    if (train.size < 1) throw new ShapeError("training data has no samples");
    requireLearnableTargets(network, train, "training data");
    if (hooks.validation) requireLearnableTargets(network, hooks.validation, "validation data");
    if (resolved.patience !== undefined && !hooks.validation) {
      throw new TrainOptionsError(`patience (early stopping) needs a validation set: give the validation hook, or leave patience unset`, {
        option: "patience",
      });
    }
    checkSeam(resolved, hooks);
    if (network.spec.sparseInputs) requireSparseSupported(resolved, hooks);
    const core = network.kernels.core;
    if (resolved.threads > 0) requireSharedMemory(`training on ${resolved.threads} worker threads`);
    if (resolved.threads > 0) requireImportableNeurons(network, resolved.threads);
    if (resolved.threads > 0 && !core.shared) {
      throw new WorkerError("training on worker threads needs the network in a shared-memory core: Kernels.load({ shared: true })");
    }
    const state = hooks.state ?? OptimizerState.create(network, resolved.optimizer, resolved.momentum);
    if (
      state.kind !== resolved.optimizer ||
      state.network !== network ||
      state.slots !== stateSlots(resolved.optimizer, resolved.momentum)
    ) {
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
      trainer.keepAlive(false);
      return trainer;
    } catch (error) {
      builder.release();
      throw error;
    }
  }

  /**
   * Runs epochs one by one, yielding a report after each; the next epoch starts when the consumer asks for it.
   * Stops after an epoch whose report has a stop (convergence, early stopping, max iterations, an abort), when the
   * signal is aborted or the trainer closed between epochs (the last report then gets stop "aborted"), and at once
   * when it was aborted before the first. Throws TrainingError if a worker or the seam fails or the loss diverges,
   * and InvalidStateError if the trainer is closed or another epochs() or train() is running an epoch.
   */
  async *epochs(): AsyncGenerator<EpochReport> {
    for (let epoch = 1; epoch <= this.options.epochs && this.iterations < this.options.maxIterations; epoch++) {
      if (this.hooks.signal?.aborted) return;
      if (this.running)
        throw new InvalidStateError("an epoch of this trainer is already running (two epochs() or train() at once); await it first");
      const run = this.runOneEpoch(epoch);
      this.running = run.catch(() => undefined);
      const report = await run.finally(() => {
        this.running = undefined;
      });
      yield report;
      if (report.stop) return;
      if (this.stopRequested()) {
        report.stop = "aborted";
        return;
      }
    }
  }

  /** Runs every epoch; resolves with the reports. Rejects with TrainingError if a worker or the seam fails. */
  async train(): Promise<EpochReport[]> {
    const reports: EpochReport[] = [];
    for await (const report of this.epochs()) reports.push(report);
    return reports;
  }

  /**
   * Stops the workers and releases the run's buffers (not the network); resolves when both are done. Called while
   * an epoch runs, it stops that epoch at the next mini-batch boundary first (its report says stop "aborted").
   */
  close(): Promise<void> {
    this.closed = true;
    this.requestStop();
    this.closing ??= (this.running ?? Promise.resolve()).then(() => this.shutDown());
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.keepAlive(true); // until every thread is gone, so that awaiting close() does not let the process end first
    this.post(Command.Quit);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.builder.release();
  }

  private stopRequested(): boolean {
    return this.closed || this.hooks.signal?.aborted === true;
  }

  // Asks the running epoch (if any) to stop at the next mini-batch boundary (see engine.ts).
  private requestStop(): void {
    Atomics.store(this.control.i32, Slot.StopRequested, 1);
  }

  // Workers keep the process alive only while an epoch runs or the trainer is closing (see create).
  private keepAlive(alive: boolean): void {
    for (const worker of this.workers) {
      if (alive) worker.ref();
      else worker.unref();
    }
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
    for (const slot of [
      Slot.Backups,
      Slot.Next,
      Slot.Completed,
      Slot.ExchangeRequested,
      Slot.ExchangeDone,
      Slot.StopAfter,
      Slot.BatchesDone,
      Slot.SamplesDone,
      Slot.WorkersDone,
      Slot.StopRequested,
      Slot.PortionsDone,
      Slot.Diverged,
    ]) {
      Atomics.store(i32, slot, 0);
    }
    if (this.stopRequested()) this.requestStop();
    this.exchanged = 0;
    this.converged = false;
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
    this.pausedAt = -1;
    const started = performance.now();
    const onAbort = (): void => this.requestStop();
    this.hooks.signal?.addEventListener("abort", onAbort);
    this.keepAlive(true);
    try {
      if (this.workers.length === 0) await this.runInline(samples, started);
      else await this.runWithWorkers(samples, started);
      if (this.client) {
        await this.drainPushes();
        if (this.hooks.parameters?.pullAtEpochEnd !== false) await this.client.pull(this.paramsView());
      }
    } catch (error) {
      this.fail(undefined, `the training seam failed: ${(error as Error)?.message ?? error}`, error, "seam");
    } finally {
      this.hooks.signal?.removeEventListener("abort", onAbort);
      if (!this.closing) this.keepAlive(false);
    }
    if (Atomics.load(this.control.i32, Slot.Failed)) await this.awaitFailureReport();
    this.throwIfFailed();
    return this.finishEpoch(epoch, started);
  }

  private finishEpoch(epoch: number, started: number): EpochReport {
    const i32 = this.control.i32;
    const sync = this.options.mode === "sync";
    const done = sync ? Atomics.load(i32, Slot.BatchesDone) : Math.ceil(Atomics.load(i32, Slot.SamplesDone) / this.options.batchSize);
    if (!sync && this.convergence)
      for (let b = 0; b < done && !this.converged; b++) this.converged = this.convergence.push(this.batchLoss(b));
    this.iterations += done;
    this.state.epochs++;
    this.state.step = sync ? this.state.step + done : Atomics.load(i32, Slot.AsyncStep);
    const seconds = (performance.now() - started) / 1000;
    this.throwIfDiverged();
    const seen = Atomics.load(i32, Slot.SamplesDone);
    const aborted = this.stopRequested();
    const validated = aborted ? undefined : this.validate();
    const report: EpochReport = {
      epoch,
      iterations: this.iterations,
      samples: seen,
      loss: this.totalLoss(done) / Math.max(1, this.totalRows(done)),
      seconds,
      samplesPerSecond: seen / seconds,
      ...validated,
      ...(this.client ? { idleSeconds: this.idleSeconds() } : {}),
      backups: Atomics.load(i32, Slot.Backups),
    };
    const stop = aborted ? "aborted" : this.stopAfterEpoch(validated?.validation);
    if (stop) report.stop = stop;
    return report;
  }

  // Async with a client: the epoch's time each worker was blocked on its mailbox, in seconds.
  private idleSeconds(): number[] {
    const { mail } = this.control;
    return this.plan.blocks.map((_, w) => Atomics.load(mail, w * Mail.Size + Mail.IdleTenthsMs) / 10_000);
  }

  // The validation set's evaluation and the time it took (undefined without a validation set).
  private validate(): { validation: Evaluation; validationSeconds: number } | undefined {
    if (!this.hooks.validation) return undefined;
    const from = performance.now();
    const validation = evaluate(this.network, this.hooks.validation);
    return { validation, validationSeconds: (performance.now() - from) / 1000 };
  }

  // Why training stops after a whole epoch, if it does (early stopping counts epochs without a better loss).
  private stopAfterEpoch(validation: Evaluation | undefined): EpochStop | undefined {
    let earlyStopped = false;
    if (validation && this.options.patience !== undefined) {
      if (validation.loss < this.bestValidationLoss) {
        this.bestValidationLoss = validation.loss;
        this.epochsSinceBest = 0;
      } else {
        earlyStopped = ++this.epochsSinceBest >= this.options.patience;
      }
    }
    if (this.converged) return "converged";
    if (earlyStopped) return "early-stopped";
    return this.iterations >= this.options.maxIterations ? "max-iterations" : undefined;
  }

  // With nonFiniteLoss "error": a mini-batch's loss was NaN or infinite. Closes the trainer and throws.
  private throwIfDiverged(): void {
    const diverged = Atomics.load(this.control.i32, Slot.Diverged);
    if (!diverged) return;
    const batch = diverged;
    const loss = this.batchLoss(batch - 1);
    const what = Number.isNaN(loss) ? "NaN" : Number.isFinite(loss) ? String(loss) : "infinite";
    void this.close().catch(() => undefined);
    throw new TrainingError(
      `training diverged: the loss of epoch ${this.epoch}, mini-batch ${batch} is ${what}; try a smaller learning rate (it is ${this.options.learningRate})`,
      { reason: "diverged", epoch: this.epoch, batch },
    );
  }

  // threads: 0 — the calling thread runs the engine and serves the seam whenever the engine waits; at each
  // mini-batch (a checkpoint) it reports progress and lets the event loop run, every PROGRESS_MS.
  private async runInline(epochSamples: number, started: number): Promise<void> {
    const epoch = runEpoch(this.runner, this.control, 0, this.inlineMailbox);
    let breakAt = started + PROGRESS_MS;
    for (let r = epoch.next(); !r.done; r = epoch.next()) {
      if (!r.value.checkpoint) {
        await this.serve();
        // The one party is this thread: it takes its fetch in as soon as it is served (as a worker thread would swap it
        // in at its next portion; here the reply needs the event loop, so it would come in at checkpoints only). A fetch
        // waits only for other tasks' pushes (this party's were served first), so the wait cannot deadlock. Pushes in
        // flight complete on the event loop too: let it run before looking again.
        const fetch = this.fetching.find((f) => f !== undefined);
        if (fetch) await fetch.catch(() => undefined);
        else if ((this.waitForReads || Number.isFinite(this.maxPushesInFlight)) && Atomics.load(r.value.view, r.value.index) < r.value.target) await yieldToIO();
        continue;
      }
      const now = performance.now();
      if (now < breakAt) continue;
      this.reportProgress(epochSamples, started);
      await nextTask();
      breakAt = performance.now() + PROGRESS_MS;
    }
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
      if (Atomics.load(i32, Slot.Doorbell) !== bell) {
        // Fetches in flight complete on the event loop (socket reads): a loop of microtasks alone would starve them.
        if (this.waitForReads) await yieldToIO();
        continue;
      }
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
      epoch: this.epoch,
      samples,
      epochSamples,
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
    const loss = combined.loss / Math.max(1, combined.rows);
    this.combinedLoss[b] = loss;
    if (!Number.isFinite(loss) && this.options.nonFiniteLoss === "error") {
      // Another replica's loss diverged: stop before this batch's update (its apply items wait for ExchangeDone).
      reportDivergence(i32, b);
      requestStopAfter(i32, b);
      Atomics.notify(i32, Slot.ExchangeDone);
      return;
    }
    // Only combined losses, which every replica shares, so that all stop on the same batch.
    if (!combined.local && this.convergence?.push(loss)) {
      this.converged = true;
      requestStopAfter(i32, b + 1);
    }
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

  /** Keeps a push in flight; its failure fails the next service of the seam (or the epoch's drain). */
  private track(push: Promise<unknown>): void {
    this.pushesInFlight.add(push);
    push.then(
      () => this.pushesInFlight.delete(push),
      (error: unknown) => {
        this.pushesInFlight.delete(push);
        this.pushFailure ??= error;
      },
    );
  }

  /** Resolves once every push in flight was applied; rejects with the first that failed. */
  private async drainPushes(): Promise<void> {
    while (this.pushesInFlight.size > 0) await Promise.allSettled([...this.pushesInFlight]);
    if (this.pushFailure !== undefined) throw this.pushFailure;
  }

  // Every worker's pending pushes (push n from accumulator (n - 1) % 2) and fetch.
  // Async: worker by worker, each fetch awaited (a pull is answered at once; while it travels, the pushes of the other
  // workers wait, which keeps them from running far ahead of their parameters: without it, an MLP on MNIST trained
  // with 2 threads against 2 shards fell from 0.9 to 0.54 held-out accuracy).
  // waitForReads (SSP, BSP): every worker's pushes, then every worker's fetch, none awaited: a fetch may wait at the
  // store for other workers' pushes, among them this trainer's own, which must not sit unserved behind it. Each worker
  // has at most one fetch in flight; its completion wakes the worker and rings the doorbell.
  private async serveMailboxes(client: ParameterClient): Promise<void> {
    if (this.pushFailure !== undefined) throw this.pushFailure;
    const workers = this.plan.blocks.length;
    if (!this.waitForReads) {
      for (let w = 0; w < workers; w++) {
        this.servePushes(client, w);
        this.serveFetch(client, w);
        await this.fetching[w];
      }
      return;
    }
    for (let w = 0; w < workers; w++) this.servePushes(client, w);
    for (let w = 0; w < workers; w++) this.serveFetch(client, w);
    this.maybePause(client);
  }

  private servePushes(client: ParameterClient, w: number): void {
    const { mail } = this.control;
    const at = w * Mail.Size;
    const blocks = this.plan.blocks[w]!;
    let sent = this.pushesSent[w] ?? Atomics.load(mail, at + Mail.PushDone);
    this.pushesApplied[w] ??= sent;
    for (let n = sent + 1; n <= Atomics.load(mail, at + Mail.PushSeq); n++) {
      // The client copies the gradient before push() returns, so the accumulator is free at once; the push stays in
      // flight (several may, up to maxPushesInFlight) while the next ones and the fetches are served. drainPushes()
      // awaits them.
      const push = client.push(this.view(blocks.grads[(n - 1) % 2]!), undefined, { worker: w, seq: n });
      this.track(Number.isFinite(this.maxPushesInFlight) ? push.then(() => this.pushApplied(w)) : push);
      sent = n;
    }
    this.pushesSent[w] = sent;
    // With waitForReads, a worker whose fetch is pending learns of its pushes only once the fetch is in, so it computes
    // at most one portion push beyond its pending read (postPush waits for the push before the last).
    const reading = Atomics.load(mail, at + Mail.FetchDone) < Atomics.load(mail, at + Mail.FetchSeq);
    if (!(reading && this.waitForReads)) this.acknowledgePushes(w);
  }

  // A worker posting push n goes on once PushDone >= n - 1: with maxPushesInFlight K, PushDone stays K - 1 beyond the
  // pushes applied, so at most K of its pushes are unapplied while it computes.
  private acknowledgePushes(w: number): void {
    const { mail } = this.control;
    const at = w * Mail.Size;
    const sent = Math.min(this.pushesSent[w] ?? 0, (this.pushesApplied[w] ?? 0) + this.maxPushesInFlight - 1);
    if (Atomics.load(mail, at + Mail.PushDone) >= sent) return;
    Atomics.store(mail, at + Mail.PushDone, sent);
    Atomics.notify(mail, at + Mail.PushDone);
  }

  private pushApplied(w: number): void {
    this.pushesApplied[w] = (this.pushesApplied[w] ?? 0) + 1;
    const { mail } = this.control;
    const at = w * Mail.Size;
    const reading = Atomics.load(mail, at + Mail.FetchDone) < Atomics.load(mail, at + Mail.FetchSeq);
    if (!(reading && this.waitForReads)) this.acknowledgePushes(w);
    ringDoorbell(this.control.i32);
  }

  private serveFetch(client: ParameterClient, w: number): void {
    const { mail } = this.control;
    const at = w * Mail.Size;
    const fetch = Atomics.load(mail, at + Mail.FetchSeq);
    if (this.fetching[w] !== undefined || Atomics.load(mail, at + Mail.FetchDone) >= fetch) return;
    const into = this.view(this.plan.blocks[w]!.replicas[Atomics.load(mail, at + Mail.FetchBuf)]!);
    const done = (): void => {
      this.fetching[w] = undefined;
      Atomics.store(mail, at + Mail.FetchDone, fetch);
      Atomics.notify(mail, at + Mail.FetchDone);
      this.acknowledgePushes(w);
      // The main loop may sleep on the doorbell: what was posted while this fetch was in flight is served now.
      if (this.waitForReads) ringDoorbell(this.control.i32);
    };
    const pull = client.pull(into, undefined, { worker: w }).then(done);
    this.fetching[w] = pull;
    this.track(pull);
  }

  // Once the epoch's portions are all taken, tells the client, and again after each push handed over since: a worker
  // that waits for a read before its last push (waitForReads) must not hold up, through its clock, the reads of others
  // its own task's epoch end waits for.
  private maybePause(client: ParameterClient): void {
    if (!client.pause) return;
    const i32 = this.control.i32;
    if (Atomics.load(i32, Slot.Next) < Atomics.load(i32, Slot.Batches) && !Atomics.load(i32, Slot.StopRequested)) return;
    const sent = this.pushesSent.reduce((n, s) => n + (s ?? 0), 0);
    if (sent === this.pausedAt) return;
    this.pausedAt = sent;
    this.track(client.pause());
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
    const entry = {
      url: new URL("./worker.js", import.meta.url),
      create: () => new Worker(new URL("./worker.js", import.meta.url), { type: "module" }),
    };
    const core = this.network.kernels.core;
    const starts = await Promise.allSettled(
      Array.from({ length: this.plan.threads }, (_, worker) => {
        const init: TrainWorkerInit = {
          type: "train-init",
          coreBytes: core.bytes,
          module: core.module,
          memory: core.memory,
          plan: this.plan,
          buffers,
          worker,
        };
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
  private fail(worker: number | undefined, message: string, cause?: unknown, reason: TrainingFailure = "worker"): void {
    this.failures.push({ reason, worker, message, cause });
    signalFailure(this.control.i32);
    ringDoorbell(this.control.i32);
  }

  // A worker marks the run failed in shared memory before its message arrives; wait briefly for the message.
  private async awaitFailureReport(): Promise<void> {
    for (let waited = 0; !this.failures.length && waited < FAILURE_REPORT_MS; waited += 10) await new Promise((r) => setTimeout(r, 10));
    if (!this.failures.length)
      this.failures.push({ reason: "worker", worker: undefined, message: "a worker stopped the run without reporting why" });
  }

  // After a failure: stop every worker, release every buffer, and reject with the first failure.
  private throwIfFailed(): void {
    const first = this.failures[0];
    if (!first) return;
    void this.close().catch(() => undefined);
    const who = first.worker === undefined ? "" : ` in worker ${first.worker}`;
    throw new TrainingError(`training failed${who} during epoch ${this.epoch}: ${first.message}`, {
      cause: first.cause,
      reason: first.reason,
      worker: first.worker,
      epoch: this.epoch,
    });
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

function checkHookNames(hooks: TrainerHooks): void {
  if (typeof hooks !== "object" || hooks === null) throw new TrainOptionsError(`trainer hooks must be an object, got ${String(hooks)}`);
  for (const key of Object.keys(hooks)) {
    if (!(TRAINER_HOOK_NAMES as readonly string[]).includes(key)) {
      throw new TrainOptionsError(
        `unknown trainer hook "${key}"${didYouMean(key, TRAINER_HOOK_NAMES)}; the hooks are ${TRAINER_HOOK_NAMES.join(", ")}`,
        { option: key },
      );
    }
  }
  if (hooks.signal !== undefined && !isAbortSignal(hooks.signal))
    throw new TrainOptionsError(`signal must be an AbortSignal, got ${typeof hooks.signal}`, { option: "signal" });
  for (const name of ["onProgress"] as const) {
    if (hooks[name] !== undefined && typeof hooks[name] !== "function")
      throw new TrainOptionsError(`${name} must be a function, got ${typeof hooks[name]}`, { option: name });
  }
}

/** Throws InvalidArgumentError naming `what` unless `data` has a Dataset's fields (createDataset checked the rest). */
// Worker threads import user neuron types by module: one defined in-process only cannot reach them.
function requireImportableNeurons(network: Network, threads: number): void {
  network.spec.layers.forEach((layer, l) => {
    if (layer.neuron && !layer.neuron.module) {
      throw new WorkerError(
        `layers[${l}].neuron ${layer.neuron.export} has no module, so the ${threads} worker threads cannot import it: give the type module: import.meta.url and export it as ${layer.neuron.export}, or train with threads: 0`,
      );
    }
  });
}

// A sparse first layer trains locally, sync or async; not yet with what exchanges whole gradient blocks.
function requireSparseSupported(options: ResolvedTrainOptions, hooks: TrainerHooks): void {
  const unsupported = hooks.exchange ? "a gradient exchange (BSP peers)" : hooks.parameters ? "a parameter client" : options.convergence !== undefined ? "the convergence check" : undefined;
  if (unsupported) throw new TrainOptionsError(`a network with sparse inputs cannot train with ${unsupported} yet; train it locally, sync or async`);
}

export function requireDataset(data: unknown, what: string): asserts data is Dataset | SparseDataset {
  const d = data as Partial<Dataset> | null | undefined;
  if (typeof d === "object" && d !== null && (d as Partial<SparseDataset>).sparse === true) {
    const s = d as Partial<SparseDataset>;
    if (s.rowPtr instanceof Int32Array && s.indices instanceof Int32Array && s.values instanceof Float32Array && s.y instanceof Float32Array) return;
  }
  const ok =
    typeof d === "object" &&
    d !== null &&
    d.x instanceof Float32Array &&
    d.y instanceof Float32Array &&
    Number.isInteger(d.size) &&
    Number.isInteger(d.features) &&
    Number.isInteger(d.outputs);
  if (!ok)
    throw new InvalidArgumentError(
      `${what} must be a Dataset (from createDataset(), readCsv(), loadMnist(), ...), got ${describeValue(data)}`,
    );
}

function isAbortSignal(value: unknown): value is AbortSignal {
  const s = value as AbortSignal;
  return typeof s === "object" && s !== null && typeof s.aborted === "boolean" && typeof s.addEventListener === "function";
}

// Targets the network's output layer and cost cannot produce (labels 0..2 for one sigmoid output, ...) are refused.
function requireLearnableTargets(network: Network, data: Dataset | SparseDataset, what: string): void {
  const problem = targetProblem(network.spec, data);
  if (!problem) return;
  const line = data.lines?.[problem.row];
  const name = `${what}${data.name ? ` "${data.name}"` : ""}${line !== undefined ? ` (line ${line})` : ""}`;
  throw new DataError(describeTargetProblem({ ...problem, row: problem.row + 1 }, name), { file: data.name, line });
}

function checkSeam(options: ResolvedTrainOptions, hooks: TrainerHooks): void {
  if (hooks.exchange && options.mode !== "sync")
    throw new TrainOptionsError(`a gradient exchange needs mode "sync"; mode is "${options.mode}"`);
  if (hooks.parameters && options.mode !== "async")
    throw new TrainOptionsError(`a parameter client needs mode "async"; mode is "${options.mode}"`);
  for (const field of ["nFetch", "nPush", "maxPushesInFlight"] as const) {
    const n = hooks.parameters?.[field];
    if (n !== undefined && !(Number.isInteger(n) && n >= 1))
      throw new TrainOptionsError(`parameters.${field} must be a positive integer, got ${JSON.stringify(n)}`);
  }
}

function buildPlan(
  builder: PlanBuilder,
  network: Network,
  train: Dataset | SparseDataset,
  options: ResolvedTrainOptions,
  state: OptimizerState,
  hooks: TrainerHooks,
): TrainPlan {
  const core = network.kernels.core.exports;
  const spec = network.spec;
  const sync = options.mode === "sync";
  const parties = Math.max(1, options.threads);
  const memory = () => network.kernels.core.memory.buffer as ArrayBuffer;
  const sparse = isSparse(train) ? copyCsrRows(train, 0, train.size, (n, name) => builder.alloc(n, name), memory) : undefined;
  const x = isSparse(train) ? 0 : builder.alloc(train.size * train.features, "training inputs");
  const y = builder.alloc(train.size * train.outputs, "training targets");
  const perm = builder.alloc(train.size, "permutation");
  const f32 = network.kernels.core.f32();
  if (!isSparse(train)) f32.set(train.x.subarray(0, train.size * train.features), x >>> 2);
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
  const packedD = sync
    ? spec.layers.map((layer, l) => builder.alloc(core.f32_gemm_packed_b_bytes(layer.units, options.batchSize) / 4, `packed d${l}`))
    : [];
  const mailbox = hooks.parameters ? { nFetch: hooks.parameters.nFetch ?? 1, nPush: hooks.parameters.nPush ?? 1 } : undefined;
  const workspaces = Array.from({ length: parties }, (_, i) => builder.alloc(maxGemmWorkspaceBytes(network) / 4, `workspace ${i}`));
  return {
    spec,
    options,
    threads: options.threads,
    samples: train.size,
    x,
    ...(sparse ? { sparse } : {}),
    y,
    perm,
    keys: network.params.block.length,
    params: network.params.block.ptr,
    grads: sync ? builder.block(network, "gradients") : 0,
    partyGrads,
    portionSets,
    packedD,
    state: stateBlocks(state),
    layers,
    sets,
    blocks,
    workspaces,
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
