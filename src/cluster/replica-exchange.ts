// One task group of hybrid Downpour (DistBelief's model replicas; Apache Horn's task groups) as the trainer's
// GradientExchange: the members of a group combine every mini-batch's gradient synchronously over the group's own
// BSP sub-job (a ClusterGradientExchange), and the group is one replica of the parameter-server shards: its leader
// pushes the combined gradient to them (asynchronously relative to the other groups) and, every nFetch steps, pulls
// fresh parameters and hands them to the members in one more superstep, so that every member holds the same ones.
// The shards own the optimizer: the exchange zeroes the gradient before the trainer applies it, so the trainer must
// run plain SGD without momentum or l2 (then its own update is a no-op: w - lr * 0 = w).
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import type { BatchStats, GradientExchange, ParameterClient, ReplicaBlocks } from "../train/exchange.js";
import { describeValue } from "../util/describe.js";
import type { PeerChannel } from "./channel.js";
import { ExchangeError } from "./gradient-exchange.js";
import { StalenessHistogram } from "./staleness.js";

/** What the exchange's group part offers: the trainer's exchange calls (ClusterGradientExchange over `channel`). */
export type GroupExchange = Pick<GradientExchange, "epochBatches" | "allreduce">;

/** What onPull sees after a pull: the parameters the member now trains on. */
export interface ReplicaPull {
  /** This member's index in its group (0: the leader, which pulled). */
  member: number;
  /** The training step after whose push the pull was made. */
  step: number;
  /** The shards' version of the values (the lowest over the shards), as the leader's pull reported it. */
  version: number;
  /** The trainer's parameters, holding the pulled values: a live view, valid during the call only (copy it). */
  params: Float32Array;
}

/** Options of a ReplicaExchange. Defaults are in REPLICA_EXCHANGE_DEFAULTS. */
export interface ReplicaExchangeOptions {
  /** The group's gradient exchange: its allreduce leaves the group's rows-weighted mean gradient in `grads`. */
  group: GroupExchange;
  /** The group's channel, the one `group` runs on (index 0 is the leader): the pulled parameters travel in it, in a
   *  superstep of their own after the group exchange's (a group of 1 takes none). */
  channel: PeerChannel;
  /** The leader's client of the shards (required on the leader, index 0; refused on the other members). */
  client?: ParameterClient;
  /** The worker id the leader pushes as, its sequence numbers 1, 2, 3, ... one per step (default 0). */
  worker?: number;
  /** Steps between the leader's pulls (default 1: a pull after every push). */
  nFetch?: number;
  /** Called on every member after every pull, once the trainer's parameters hold the pulled values. */
  onPull?: (pull: ReplicaPull) => void;
}

/** The default of every optional ReplicaExchangeOptions field. */
export const REPLICA_EXCHANGE_DEFAULTS = Object.freeze({ worker: 0, nFetch: 1 });

/** A ReplicaExchange's counters (a copy taken when read). */
export interface ReplicaStats {
  /** allreduce() calls that resolved. */
  steps: number;
  /** Leader: pushes handed to the client, and those the shards acknowledged (0 on the other members). */
  pushes: number;
  pushesApplied: number;
  /** Steps whose combined loss was not finite: nothing pushed (the trainer stops or goes on as nonFiniteLoss says). */
  skipped: number;
  /** Pulls taken in (on every member: the leader's pulls it received). */
  pulls: number;
  /** The shards' version of the last pull (0 before any). */
  version: number;
}

/**
 * The GradientExchange of one member of a task group. Every member of the group makes one with the same nFetch
 * over the same group channel; the leader (channel index 0) also has the shards' client. Each allreduce():
 * 1. the group exchange combines the members' gradients (every member then holds the same mean);
 * 2. the leader pushes it to the shards as (worker, seq = its step count), without waiting: pushes go out in step
 *    order, stay in flight while training goes on, and the first failure rejects the next call (and drain());
 * 3. the gradient is zeroed, so the trainer's own update (plain SGD, no momentum, no l2) changes nothing;
 * 4. every nFetch steps the leader pulls the shards' parameters and sends them to the members in one superstep;
 *    every member writes them into the trainer's parameters (attached by the trainer) before the call resolves.
 * Between pulls the members train on the parameters of the last pull, as a Downpour worker does on its copy.
 * A step whose combined loss is not finite is not pushed (the shards are not poisoned by a diverged replica).
 */
export class ReplicaExchange implements GradientExchange {
  readonly nFetch: number;
  readonly worker: number;
  readonly #group: GroupExchange;
  readonly #channel: PeerChannel;
  readonly #client: ParameterClient | undefined;
  readonly #onPull: ReplicaExchangeOptions["onPull"];
  readonly #inFlight = new Set<Promise<unknown>>();
  #pushFailure: unknown;
  #blocks: ReplicaBlocks | undefined;
  #scratch = new Float32Array(0);
  readonly #stats: ReplicaStats = { steps: 0, pushes: 0, pushesApplied: 0, skipped: 0, pulls: 0, version: 0 };
  /**
   * Leader, sampled at every acknowledged push: the updates the shards applied between the parameters the step
   * computed on (the version of the last pull, 0 for the initial ones) and this push (the version after it minus 1);
   * with several shards, versions are the lowest over them. The other groups' pushes, and this group's own when it
   * pushes several times between pulls (nFetch > 1).
   */
  readonly staleness = new StalenessHistogram();

  /** Checks the options (InvalidArgumentError naming the option). */
  constructor(options: ReplicaExchangeOptions) {
    if (typeof options !== "object" || options === null)
      throw new InvalidArgumentError(`ReplicaExchange: options must be an object, got ${describeValue(options)}`);
    const { group, channel, client } = options;
    if (typeof group?.allreduce !== "function" || typeof group.epochBatches !== "function")
      throw new InvalidArgumentError(`ReplicaExchange: group must be a GradientExchange, got ${describeValue(group)}`);
    if (typeof channel?.send !== "function" || typeof channel.sync !== "function")
      throw new InvalidArgumentError(`ReplicaExchange: channel must be a PeerChannel, got ${describeValue(channel)}`);
    const leader = channel.index === 0;
    if (leader && (typeof client?.push !== "function" || typeof client.pull !== "function")) {
      throw new InvalidArgumentError(
        `ReplicaExchange: client (the shards' ParameterClient) is required on the group's leader (index 0), got ${describeValue(client)}`,
      );
    }
    if (!leader && client !== undefined)
      throw new InvalidArgumentError(
        `ReplicaExchange: client is for the group's leader only; member ${channel.index} pulls nothing itself`,
      );
    this.nFetch = options.nFetch ?? REPLICA_EXCHANGE_DEFAULTS.nFetch;
    if (!Number.isSafeInteger(this.nFetch) || this.nFetch < 1)
      throw new InvalidArgumentError(
        `ReplicaExchange: nFetch (steps between pulls) must be a positive integer, got ${describeValue(options.nFetch)}`,
      );
    this.worker = options.worker ?? REPLICA_EXCHANGE_DEFAULTS.worker;
    if (!Number.isSafeInteger(this.worker) || this.worker < 0)
      throw new InvalidArgumentError(`ReplicaExchange: worker must be an integer >= 0, got ${describeValue(options.worker)}`);
    this.#group = group;
    this.#channel = channel;
    this.#client = client;
    this.#onPull = options.onPull;
  }

  /** Whether this member pushes and pulls for the group. */
  get leader(): boolean {
    return this.#channel.index === 0;
  }

  /** The counters so far (a new object each time). */
  get stats(): ReplicaStats {
    return { ...this.#stats };
  }

  /** Keeps the trainer's blocks: pulled parameters are written into blocks.params(). */
  attach(blocks: ReplicaBlocks): void {
    this.#blocks = blocks;
  }

  /** The group's common batch count (the group exchange's). */
  epochBatches(batches: number, epoch: number): Promise<number> {
    this.#throwIfPushFailed();
    return this.#group.epochBatches(batches, epoch);
  }

  /**
   * Combines the group's gradient, pushes it (leader), zeroes `grads`, and every nFetch steps takes the pulled
   * parameters in; resolves with the group's combined stats. Rejects with the group exchange's errors, the first
   * failed push (ParameterServerError naming the shard), the leader's pull error, or ExchangeError when the
   * leader's parameters message is missing or wrong.
   */
  async allreduce(grads: Float32Array, local: BatchStats, step: number): Promise<BatchStats> {
    this.#throwIfPushFailed();
    const combined = await this.#group.allreduce(grads, local, step);
    this.#stats.steps++;
    if (!Number.isFinite(combined.loss)) this.#stats.skipped++;
    else if (this.#client) this.#push(this.#client, grads);
    grads.fill(0);
    if (this.#stats.steps % this.nFetch === 0) await this.#refresh(step);
    return combined;
  }

  /** Resolves once every push handed over was acknowledged; rejects with the first that failed. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#throwIfPushFailed();
  }

  #push(client: ParameterClient, grads: Float32Array): void {
    // The client copies the gradient before push() returns; the pushes leave in step order.
    const push = client.push(grads, undefined, { worker: this.worker, seq: ++this.#stats.pushes });
    const basedOn = this.#stats.version;
    this.#inFlight.add(push);
    push.then(
      (version) => {
        this.#inFlight.delete(push);
        this.#stats.pushesApplied++;
        this.staleness.record(Math.max(0, version - 1 - basedOn));
      },
      (error: unknown) => {
        this.#inFlight.delete(push);
        this.#pushFailure ??= error;
      },
    );
  }

  #throwIfPushFailed(): void {
    if (this.#pushFailure !== undefined) throw this.#pushFailure;
  }

  /** The leader pulls and sends the values to every member; each writes them into the trainer's parameters. */
  async #refresh(step: number): Promise<void> {
    const blocks = this.#blocks;
    if (!blocks) throw new InvalidStateError("ReplicaExchange: the trainer attached no parameters (attach) before the first pull");
    const channel = this.#channel;
    let version: number;
    if (this.#client) {
      if (this.#scratch.length !== blocks.keys) this.#scratch = new Float32Array(blocks.keys);
      version = await this.#client.pull(this.#scratch);
      for (let p = 1; p < channel.peers; p++) {
        channel.send(p, { x: "params", step, version, keys: blocks.keys });
        channel.send(p, this.#scratch);
      }
      if (channel.peers > 1) await channel.sync();
      blocks.params().set(this.#scratch);
    } else {
      await channel.sync();
      version = this.#received(blocks, step);
    }
    channel.recycle?.();
    this.#stats.pulls++;
    this.#stats.version = version;
    this.#onPull?.({ member: channel.index, step, version, params: blocks.params() });
  }

  /** A member: the leader's parameters message of this step, written into the trainer's parameters; its version. */
  #received(blocks: ReplicaBlocks, step: number): number {
    let value: { readonly [key: string]: unknown } | undefined;
    let values: Float32Array | undefined;
    for (const message of this.#channel.messages()) {
      if (message.from !== 0)
        this.#fail(
          message.from,
          "from",
          step,
          `member ${message.from} sent a message in the parameters superstep (only the leader, 0, does)`,
        );
      if (message.kind === "value") value = message.data;
      else if (message.kind === "f32") values = message.data;
      else this.#fail(0, "dtype", step, `the leader sent ${message.kind} parameters, f32 expected`);
    }
    if (value === undefined || values === undefined) this.#fail(0, "missing", step, "the leader sent no parameters (another nFetch?)");
    if (value.x !== "params" || value.step !== step)
      this.#fail(
        0,
        "step",
        step,
        `the leader sent ${describeValue(value.x)} of step ${describeValue(value.step)}, parameters of step ${step} expected`,
      );
    if (values.length !== blocks.keys)
      this.#fail(0, "length", step, `the leader sent ${values.length} parameters, ${blocks.keys} expected (another model?)`);
    const version = value.version;
    if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0)
      this.#fail(0, "version", step, `the leader sent the version ${describeValue(version)}`);
    blocks.params().set(values);
    return version;
  }

  #fail(peer: number, field: string, step: number, what: string): never {
    throw new ExchangeError(`replica exchange of group member ${this.#channel.index}, step ${step} (parameters): ${what}`, {
      peer,
      field,
      phase: "gather",
      step,
    });
  }
}
