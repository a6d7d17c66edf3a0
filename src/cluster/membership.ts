// Joining a job: how peers find each other and get their indices, over core NATS only (no JetStream needed).
//
// The protocol, on downpour.<job>.join:
// 1. A peer subscribes to its subjects first, then publishes `hello` (name, inbox token, the index it asks for or
//    -1, the peer count, the spec hash), again every repeatMs and at once on hearing a peer it had not heard.
// 2. Refusals. A hello or ready with another spec hash or peer count fails the join of every peer still joining
//    that hears it (MembershipError naming the other peer: no side can tell which spec is "the job's" before the
//    job runs, so the launch fails fast instead of waiting for its timeout). Two peers with one name, two asking
//    for one index, or an index >= peers fail the same way.
// 3. With N peers heard (itself included) a peer fixes the roster: peers that asked for an index get it; the others
//    take the free indices in the order of their names (code-point order, as Hama sorts peer names), so indices
//    are deterministic for a given set of names. It publishes `ready` with the roster (names and inbox tokens by
//    index), repeated until it runs. A peer that has not fixed a roster yet adopts the first ready roster that
//    holds it (same name and token).
// 4. It runs once every other roster member sent a ready with the same roster. A ready from a roster member with
//    another roster fails the join ("peers disagree": more than N peers raced in); a ready without this peer
//    means the job is full or running without it: this peer's join fails naming itself.
// 5. Running peers answer every hello (and every ready still joining) with their ready (running: true): a late or
//    mismatched peer learns at once that it is refused and fails naming itself, while the running peers report it
//    (onError, once per peer) and go on.
// The join is bounded by joinTimeoutMs: BarrierTimeoutError (phase "join") naming the missing peers.
import { BarrierTimeoutError, MembershipError } from "./errors.js";
import type { Hello, Ready } from "./codec.js";
import { PROTOCOL_VERSION } from "./codec.js";

/** Who is joining, and the job as this peer knows it. */
export interface JoinRequest {
  job: string;
  name: string;
  /** This peer's inbox token. */
  uid: string;
  /** The index asked for, or -1 for "any". */
  index: number;
  peers: number;
  spec: string;
}

/** The job's members: names and inbox tokens by index, and this peer's index. */
export interface Roster {
  readonly names: readonly string[];
  readonly uids: readonly string[];
  readonly index: number;
}

/** How the join talks to the bus and the world (injected by BspPeer; plain functions make it testable). */
export interface MembershipIo {
  publish(message: Hello | Ready): void;
  report(error: MembershipError): void;
}

/** The join state machine of one peer: feed it every message of the join subject, await joined(). */
export class Membership {
  readonly #self: JoinRequest;
  readonly #io: MembershipIo;
  /** Peers heard (self included): name → inbox token and the index it asked for. */
  readonly #heard = new Map<string, { uid: string; want: number }>();
  #roster: Roster | undefined;
  #rosterKey = "";
  readonly #readies = new Set<string>();
  readonly #reported = new Set<string>();
  #running = false;
  #error: Error | undefined;
  #settle: { resolve(roster: Roster): void; reject(error: Error): void } | undefined;
  #timers: ReturnType<typeof setTimeout>[] = [];

  constructor(self: JoinRequest, io: MembershipIo) {
    this.#self = self;
    this.#io = io;
    this.#heard.set(self.name, { uid: self.uid, want: self.index });
  }

  /** Whether the job runs (this peer has every roster member's ready). */
  get running(): boolean {
    return this.#running;
  }

  /** The roster once fixed. */
  get roster(): Roster | undefined {
    return this.#roster;
  }

  /**
   * Publishes hello and resolves with the roster once the job runs; rejects with MembershipError (refused) or
   * BarrierTimeoutError (phase "join") after `timeoutMs`. Call once.
   */
  joined(timeoutMs: number, repeatMs: number): Promise<Roster> {
    const started = Date.now();
    const done = new Promise<Roster>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Messages heard while subscribing may already have refused this peer.
    if (this.#error) {
      this.#settle!.reject(this.#error);
      return done;
    }
    if (this.#self.peers === 1) this.#fix();
    this.#announce();
    this.#check();
    const repeat = setInterval(() => this.#announce(), repeatMs);
    const timeout = setTimeout(() => this.#fail(this.#timeoutError(Date.now() - started, timeoutMs)), timeoutMs);
    this.#timers.push(repeat, timeout);
    return done;
  }

  /** Stops the timers (the join subscription is the caller's). */
  stop(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
  }

  /** Fails a join in progress with `error` (e.g. the peer is closed while joining). */
  abort(error: Error): void {
    this.#fail(error);
  }

  /** Handles one decoded message of the join subject (own echoes are ignored). */
  receive(message: Hello | Ready): void {
    if (message.uid === this.#self.uid || this.#error) return;
    if (this.#running) {
      this.#answer(message);
      return;
    }
    try {
      if (message.type === "hello") this.#hello(message);
      else this.#ready(message);
      this.#check();
    } catch (error) {
      if (!(error instanceof MembershipError)) throw error;
      // One last hello: a conflict of names, indices, specs or counts is mutual, so the other side fails at once too.
      this.#io.publish(this.#helloMessage());
      this.#fail(error);
    }
  }

  /** Running: tell a joining peer who runs the job; report a refused one once. */
  #answer(message: Hello | Ready): void {
    if (message.type === "ready" && message.running) return;
    const roster = this.#roster!;
    const at = roster.names.indexOf(message.from);
    const member = at >= 0 && roster.uids[at] === message.uid;
    if (!member && !this.#reported.has(message.uid)) {
      this.#reported.add(message.uid);
      this.#io.report(
        this.#mismatch(message) ??
          new MembershipError(
            `peer "${message.from}" refused: job "${this.#self.job}" already runs with its ${roster.names.length} peers (${list(roster.names)})`,
            { peer: message.from, field: "roster", expected: [...roster.names] },
            this.#self.job,
          ),
      );
    }
    this.#io.publish(this.#readyMessage(true));
  }

  #hello(message: Hello): void {
    this.#refuseMismatch(message);
    const job = this.#self.job;
    const known = this.#heard.get(message.from);
    if (message.from === this.#self.name || (known && known.uid !== message.uid)) {
      throw new MembershipError(
        `two peers of job "${job}" are named "${message.from}": give each peer its own name`,
        { peer: message.from, field: "name" },
        job,
      );
    }
    if (message.index >= this.#self.peers) {
      throw new MembershipError(
        `peer "${message.from}" asks for index ${message.index}, but job "${job}" has ${this.#self.peers} peers (indices 0 to ${this.#self.peers - 1})`,
        { peer: message.from, field: "index", expected: this.#self.peers, actual: message.index },
        job,
      );
    }
    if (message.index >= 0) {
      for (const [name, other] of this.#heard) {
        if (other.want === message.index && name !== message.from) {
          throw new MembershipError(
            `peers "${name}" and "${message.from}" both ask for index ${message.index} of job "${job}"`,
            { peer: message.from, field: "index", actual: message.index },
            job,
          );
        }
      }
    }
    if (known) return;
    if (this.#roster) {
      // An extra peer after the roster was fixed: it learns from our ready that the job is full.
      this.#io.publish(this.#readyMessage(false));
      return;
    }
    this.#heard.set(message.from, { uid: message.uid, want: message.index });
    if (this.#heard.size === this.#self.peers) this.#fix();
    this.#announce();
  }

  #ready(message: Ready): void {
    this.#refuseMismatch(message);
    const job = this.#self.job;
    const at = message.roster.indexOf(this.#self.name);
    if (at < 0) {
      throw new MembershipError(
        `peer "${this.#self.name}" refused: job "${job}" ${message.running ? "already runs" : "is full"} with ${message.roster.length} peers (${list(message.roster)})`,
        { peer: this.#self.name, field: "roster", expected: message.roster, actual: this.#self.name },
        job,
      );
    }
    if (message.uids[at] !== this.#self.uid) {
      throw new MembershipError(
        `another peer of job "${job}" is named "${this.#self.name}": give each peer its own name`,
        { peer: this.#self.name, field: "name" },
        job,
      );
    }
    if (this.#self.index >= 0 && at !== this.#self.index) {
      throw new MembershipError(
        `peer "${this.#self.name}" asked for index ${this.#self.index}, but peer "${message.from}" placed it at ${at}`,
        { peer: this.#self.name, field: "index", expected: this.#self.index, actual: at },
        job,
      );
    }
    if (!this.#roster) {
      this.#adopt(message.roster, message.uids, at);
      this.#announce();
    } else if (rosterKey(message.roster, message.uids) !== this.#rosterKey) {
      if (!this.#roster.names.includes(message.from)) return; // a peer that lost the race; it fails on its own
      throw new MembershipError(
        `peers disagree on who is in job "${job}" (more than ${this.#self.peers} peers joined?): this peer has ${list(this.#roster.names)}, "${message.from}" has ${list(message.roster)}`,
        { peer: message.from, field: "roster", expected: [...this.#roster.names], actual: message.roster },
        job,
      );
    }
    this.#readies.add(message.from);
  }

  /** Fixes the roster from the peers heard (see the protocol above). */
  #fix(): void {
    const names: (string | undefined)[] = new Array(this.#self.peers).fill(undefined);
    const free: string[] = [];
    for (const [name, { want }] of this.#heard) {
      if (want >= 0) names[want] = name;
      else free.push(name);
    }
    free.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < names.length; i++) if (names[i] === undefined) names[i] = free.shift();
    const full = names as string[];
    this.#adopt(full, full.map((name) => this.#heard.get(name)!.uid), full.indexOf(this.#self.name));
  }

  #adopt(names: readonly string[], uids: readonly string[], index: number): void {
    this.#roster = { names: [...names], uids: [...uids], index };
    this.#rosterKey = rosterKey(names, uids);
  }

  #check(): void {
    const roster = this.#roster;
    if (!roster || this.#running) return;
    if (!roster.names.every((name, i) => i === roster.index || this.#readies.has(name))) return;
    this.#running = true;
    this.stop();
    this.#settle?.resolve(roster);
  }

  #announce(): void {
    if (this.#running || this.#error) return;
    this.#io.publish(this.#roster ? this.#readyMessage(false) : this.#helloMessage());
  }

  #fail(error: Error): void {
    if (this.#running || this.#error) return;
    this.#error = error;
    this.stop();
    this.#settle?.reject(error);
  }

  #mismatch(message: Hello | Ready): MembershipError | undefined {
    const job = this.#self.job;
    if (message.spec !== this.#self.spec) {
      return new MembershipError(
        `peer "${message.from}" joined job "${job}" with spec hash ${JSON.stringify(message.spec)}, but peer "${this.#self.name}" has ` +
          `${JSON.stringify(this.#self.spec)}: every peer of a job must run the same model spec and options`,
        { peer: message.from, field: "spec", expected: this.#self.spec, actual: message.spec },
        job,
      );
    }
    if (message.peers !== this.#self.peers) {
      return new MembershipError(
        `peer "${message.from}" joined job "${job}" for ${message.peers} peers, but peer "${this.#self.name}" for ${this.#self.peers}`,
        { peer: message.from, field: "peers", expected: this.#self.peers, actual: message.peers },
        job,
      );
    }
    return undefined;
  }

  /** Joining: a mismatch with a running job refuses this peer (named); with a joining peer, that peer (named). */
  #refuseMismatch(message: Hello | Ready): void {
    const mismatch = this.#mismatch(message);
    if (!mismatch) return;
    if (message.type === "ready" && message.running) {
      throw new MembershipError(
        `peer "${this.#self.name}" refused by job "${this.#self.job}" (running with ${list(message.roster)}): ${mismatch.message}`,
        { peer: this.#self.name, field: mismatch.field, expected: mismatch.actual, actual: mismatch.expected },
        this.#self.job,
      );
    }
    throw mismatch;
  }

  #helloMessage(): Hello {
    const { name, uid, index, peers, spec } = this.#self;
    return { type: "hello", v: PROTOCOL_VERSION, from: name, index, spec, uid, peers };
  }

  #readyMessage(running: boolean): Ready {
    const { name, uid, peers, spec } = this.#self;
    const roster = this.#roster!;
    return { type: "ready", v: PROTOCOL_VERSION, from: name, index: roster.index, spec, uid, peers, running, roster: [...roster.names], uids: [...roster.uids] };
  }

  #timeoutError(waitedMs: number, timeoutMs: number): BarrierTimeoutError {
    const { job, peers } = this.#self;
    const roster = this.#roster;
    let missing: string[];
    let present: string[];
    if (roster) {
      present = roster.names.filter((name, i) => i === roster.index || this.#readies.has(name));
      missing = roster.names.filter((name) => !present.includes(name));
    } else {
      present = [...this.#heard.keys()].sort();
      const wants = new Set([...this.#heard.values()].map((h) => h.want));
      const free = [...Array(peers).keys()].filter((i) => !wants.has(i));
      const count = peers - this.#heard.size;
      const allAsked = [...this.#heard.values()].every((h) => h.want >= 0);
      missing = allAsked && free.length === count ? free.map((i) => `index ${i}`) : [`${count} more peer${count === 1 ? "" : "s"}`];
    }
    return new BarrierTimeoutError(
      `job "${job}": only ${present.length} of ${peers} peers joined within ${seconds(timeoutMs)} (${list(present)}); missing: ${missing.join(", ")}`,
      { phase: "join", superstep: 0, missing, waitedMs },
      job,
    );
  }
}

function rosterKey(names: readonly string[], uids: readonly string[]): string {
  return JSON.stringify([names, uids]);
}

/** "a", "b", "c" for messages. */
export function list(names: readonly string[]): string {
  return names.map((name) => JSON.stringify(name)).join(", ");
}

/** Milliseconds as "3 s" or "250 ms" for messages. */
export function seconds(ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toFixed(1))} s` : `${ms} ms`;
}
