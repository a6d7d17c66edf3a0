// Liveness of the other peers: when each was last heard from (any message counts, heartbeats included), who left,
// and who has been silent past the timeout. Pure bookkeeping on a clock; BspPeer sends the heartbeats and acts.

/** Liveness of a job's peers, by index. */
export class Liveness {
  readonly #lastSeen: number[];
  readonly #lastStep: number[];
  readonly #left: (number | undefined)[];
  readonly #self: number;
  #lastTick: number;

  /** `peers` peers, all taken as heard at `now`; `self` is never lost. */
  constructor(peers: number, self: number, now: number) {
    this.#lastSeen = new Array(peers).fill(now);
    this.#lastStep = new Array(peers).fill(0);
    this.#left = new Array(peers).fill(undefined);
    this.#self = self;
    this.#lastTick = now;
  }

  /** Peer `index` was heard from at `now` (in superstep `step`, when the message says). */
  seen(index: number, now: number, step?: number): void {
    this.#lastSeen[index] = now;
    if (step !== undefined) this.#lastStep[index] = Math.max(this.#lastStep[index]!, step);
  }

  /** Every peer taken as heard at `now` (this peer's connection came back: the others get a full timeout to show). */
  refresh(now: number): void {
    this.#lastSeen.fill(now);
    this.#lastTick = now;
  }

  /** Peer `index` left after `steps` supersteps: it is no longer expected to answer. */
  leave(index: number, steps: number): void {
    this.#left[index] = steps;
  }

  /** The supersteps a peer completed before leaving, or undefined while it is in the job. */
  leftAfter(index: number): number | undefined {
    return this.#left[index];
  }

  /** The last superstep peer `index` reported. */
  lastStep(index: number): number {
    return this.#lastStep[index]!;
  }

  /** How long ago peer `index` was last heard from. */
  silentFor(index: number, now: number): number {
    return now - this.#lastSeen[index]!;
  }

  /**
   * The first peer silent for more than `timeoutMs` at `now`, or undefined. A check that runs late (this process did
   * not run its timers for more than half the timeout: a blocked event loop, a suspended machine) finds no one: the
   * messages that waited in the socket are read before the next check, which then judges on fresh data.
   */
  lost(now: number, timeoutMs: number): number | undefined {
    const late = now - this.#lastTick > timeoutMs / 2;
    this.#lastTick = now;
    if (late) return undefined;
    for (let i = 0; i < this.#lastSeen.length; i++) {
      if (i === this.#self || this.#left[i] !== undefined) continue;
      if (now - this.#lastSeen[i]! > timeoutMs) return i;
    }
    return undefined;
  }
}
