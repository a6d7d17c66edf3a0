// A pool of worker threads that run core kernels over one shared WebAssembly.Memory; calls are handed over
// through a shared control block with atomics, so dispatch costs microseconds, not a message round trip.
import { InvalidArgumentError, WorkerError } from "../errors.js";
import { describeValue } from "../util/describe.js";
import {
  ARG_COUNT, DONE, KERNEL, kernelNames, MAX_ARGS, MESSAGE_LENGTH, QUIT, REQUEST, SLOT_BYTES, slotViews, STATUS,
  type SlotViews, type WorkerInit,
} from "./control.js";
import { Core } from "./core.js";
import type { KernelName } from "./exports.js";
import { requireSharedMemory } from "./isolation.js";
import { detectPlatform, type Platform, type WorkerHandle } from "./platform.js";
import { startWorker, type WorkerEntry } from "./spawn.js";

/** One kernel invocation: the export's name and its numeric arguments (pointers, shapes, scalars). */
export interface KernelCall {
  kernel: KernelName;
  args: number[];
}

/** Options of WorkerPool.start. */
export interface PoolOptions {
  /** Worker threads to start. Default: the platform's hardware concurrency. */
  threads?: number;
  /** Runtime adapter. Default: the detected one. */
  platform?: Platform;
}

interface Member {
  handle: WorkerHandle;
  views: SlotViews;
  seq: number;
  failure?: string;
}

/**
 * Worker threads sharing a core's memory. Create with WorkerPool.start; close when done.
 *
 * Lifetime: the workers keep the process alive only while a run() is in flight (or close() is stopping them);
 * idle, they are unref'd, so a pool that is never closed does not keep Node or Bun from exiting once the rest of
 * the program is done. Deno and browsers have no unref: there, close the pool to let the program end.
 */
export class WorkerPool {
  private readonly kernelIndex: Map<string, number>;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly core: Core,
    private readonly members: Member[],
  ) {
    this.kernelIndex = new Map(kernelNames(core.module).map((name, i) => [name, i]));
  }

  /** Starts `threads` workers over the core's shared memory; resolves when every one has instantiated it. */
  static async start(core: Core, options: PoolOptions = {}): Promise<WorkerPool> {
    if (!(core instanceof Core)) throw new InvalidArgumentError(`WorkerPool.start: core must be a Core (kernels.core), got ${describeValue(core)}`);
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError(`WorkerPool.start: options must be an object like { threads }, got ${describeValue(options)}`);
    }
    requireSharedMemory("a worker pool");
    if (!core.shared) throw new WorkerError("a worker pool needs a core loaded with { shared: true }");
    const platform = options.platform ?? (await detectPlatform());
    const threads = options.threads ?? platform.hardwareConcurrency();
    if (!Number.isInteger(threads) || threads < 1) throw new WorkerError(`threads must be a positive integer, got ${threads}`);
    const control = new SharedArrayBuffer(threads * SLOT_BYTES);
    const entry: WorkerEntry = {
      url: new URL("./worker.js", import.meta.url),
      create: () => new Worker(new URL("./worker.js", import.meta.url), { type: "module" }),
    };
    const members = await Promise.all(
      Array.from({ length: threads }, async (_, slot) => {
        const init: WorkerInit = { type: "init", coreBytes: core.bytes, module: core.module, memory: core.memory, control, slot };
        const handle = await startWorker(platform, entry, init);
        return { handle, views: slotViews(control, slot), seq: 0 };
      }),
    );
    const pool = new WorkerPool(core, members);
    for (const member of members) member.handle.onError((error) => pool.markDead(member, error.message));
    pool.keepAlive(false);
    return pool;
  }

  /** Number of worker threads. */
  get size(): number {
    return this.members.length;
  }

  /**
   * Runs calls[i] on worker i (undefined: that worker idles). Arguments are copied into the control block;
   * the data they point to is not. Resolves when every call has returned; calls queue behind earlier runs.
   */
  run(calls: ReadonlyArray<KernelCall | undefined>): Promise<void> {
    const next = this.queue.then(() => this.dispatchAndWait(calls));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Like run, but blocks this thread in Atomics.wait (Node, Bun, Deno and workers; not a browser main thread). */
  runSync(calls: ReadonlyArray<KernelCall | undefined>): void {
    const posted = this.post(calls);
    for (const member of posted) {
      for (let done = Atomics.load(member.views.i32, DONE); done !== member.seq && done !== -1; ) {
        Atomics.wait(member.views.i32, DONE, done);
        done = Atomics.load(member.views.i32, DONE);
      }
    }
    this.check(posted, calls);
  }

  /** Stops every worker; resolves when all threads are gone. Further runs throw. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    this.keepAlive(true); // until every thread is gone, so that awaiting close() does not let the process end first
    for (const member of this.members) {
      member.views.i32[KERNEL] = QUIT;
      Atomics.store(member.views.i32, REQUEST, ++member.seq);
      Atomics.notify(member.views.i32, REQUEST);
    }
    await Promise.all(this.members.map((member) => member.handle.terminate()));
  }

  private async dispatchAndWait(calls: ReadonlyArray<KernelCall | undefined>): Promise<void> {
    const posted = this.post(calls);
    this.keepAlive(true);
    try {
      for (const member of posted) {
        for (;;) {
          const done = Atomics.load(member.views.i32, DONE);
          if (done === member.seq || done === -1) break;
          const waiting = Atomics.waitAsync(member.views.i32, DONE, done);
          if (waiting.async) await waiting.value;
        }
      }
    } finally {
      if (!this.closed) this.keepAlive(false);
    }
    this.check(posted, calls);
  }

  // ref (a run in flight, closing) or unref (idle) every worker: see the class comment.
  private keepAlive(alive: boolean): void {
    for (const { handle } of this.members) {
      if (alive) handle.ref();
      else handle.unref();
    }
  }

  private post(calls: ReadonlyArray<KernelCall | undefined>): Member[] {
    if (this.closed) throw new WorkerError("the worker pool is closed");
    if (!Array.isArray(calls)) {
      throw new InvalidArgumentError(`run: calls must be an array of { kernel, args } (one per worker, or undefined), got ${describeValue(calls)}`);
    }
    if (calls.length > this.members.length) {
      throw new WorkerError(`${calls.length} calls for a pool of ${this.members.length} workers`);
    }
    const kernels = calls.map((call) => (call ? this.kernelOf(call) : -1)); // every call checked before any is posted
    const posted: Member[] = [];
    calls.forEach((call, i) => {
      if (!call) return;
      const member = this.members[i]!;
      if (member.failure) throw new WorkerError(`worker ${i} is dead: ${member.failure}`);
      this.writeCall(member.views, kernels[i]!, call);
      Atomics.store(member.views.i32, REQUEST, ++member.seq);
      Atomics.notify(member.views.i32, REQUEST);
      posted.push(member);
    });
    return posted;
  }

  // The kernel's index in the control table, after checking the call's shape.
  private kernelOf(call: KernelCall): number {
    if (typeof call !== "object" || !Array.isArray(call.args)) {
      throw new InvalidArgumentError(`run: each call must be { kernel, args: number[] }, got ${describeValue(call)}${typeof call === "object" ? ` with args ${describeValue(call.args)}` : ""}`);
    }
    const index = this.kernelIndex.get(call.kernel);
    if (index === undefined) throw new WorkerError(`the core has no kernel named ${call.kernel}`);
    if (call.args.length > MAX_ARGS) throw new WorkerError(`${call.kernel}: ${call.args.length} arguments, at most ${MAX_ARGS}`);
    return index;
  }

  private writeCall(views: SlotViews, index: number, call: KernelCall): void {
    views.i32[KERNEL] = index;
    views.i32[ARG_COUNT] = call.args.length;
    views.args.set(call.args);
  }

  private check(posted: Member[], calls: ReadonlyArray<KernelCall | undefined>): void {
    for (const member of posted) {
      const i = this.members.indexOf(member);
      if (member.failure) throw new WorkerError(`worker ${i} died running ${calls[i]?.kernel}: ${member.failure}`);
      if (member.views.i32[STATUS] !== 0) {
        const text = new TextDecoder().decode(member.views.message.slice(0, member.views.i32[MESSAGE_LENGTH]));
        throw new WorkerError(`worker ${i} failed in ${calls[i]?.kernel}: ${text}`);
      }
    }
  }

  private markDead(member: Member, reason: string): void {
    member.failure = reason;
    Atomics.store(member.views.i32, DONE, -1);
    Atomics.notify(member.views.i32, DONE);
  }
}
