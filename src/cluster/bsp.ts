// The BSP engine over NATS, with Apache Hama's peer semantics: a program's setup, bsp body and cleanup run on every
// peer; a peer sends messages (bytes, Float32 tensors, msgpack values) to any peer, itself included, and sync() is
// the barrier: messages sent in superstep k are readable only after the k-th sync, and unread ones are dropped at
// the next sync.
//
// The barrier has no coordinator: messages go out at send() time (straight into the receiver's inbox, so the wire
// works while the sender computes); sync(k) sends every other peer a marker "superstep k done, I sent you c messages
// in f frames" and resolves once this peer holds every other peer's marker for k and every message they announce.
// An empty superstep of 2 peers therefore costs one one-way message each way, about half a round trip.
// Membership (who is peer i) is membership.ts; liveness (heartbeats) is heartbeat.ts; framing is chunks.ts.
//
// Connection losses (a NATS restart, a fail-over to another node, a server dropping a slow consumer): nats.js drops
// what is published while disconnected (its outbound buffer is reset when it dials again) and what was in flight.
// So a peer keeps the frames and markers it sent in the previous and the current superstep (a peer is at most one
// superstep behind another, so nothing older can still be missing anywhere), counts its own reconnects ("link",
// carried by its heartbeats), and sends them again to every peer when it reconnects, and to a peer whose heartbeat
// shows a new link. Receivers drop what they hold already: a chunk seen before (sender, superstep, message, index),
// a repeated marker, anything for a superstep they have left (its barrier held every message announced for it).
// While the connection is down no peer is judged lost, and on its return every peer gets a full peerTimeoutMs.
import { hostname } from "node:os";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import { Barrier, type BspMessage } from "./barrier.js";
import {
  type Assembled,
  bytesToFloat32,
  chunkBytesFor,
  DEFAULT_MAX_MESSAGE_BYTES,
  decodeFrame,
  encodeFrames,
  FramePool,
  float32Bytes,
  isFrame,
  type PayloadKind,
  Reassembler,
  specTag,
} from "./chunks.js";
import { type Abort, type ControlMessage, decodeControl, encodeControl, MAX_PEERS, MAX_SPEC_HASH_LENGTH, PROTOCOL_VERSION, packValue, unpackValue } from "./codec.js";
import { type ClusterConnectionOptions, type ConnectionWatch, connectCluster, connectionLossError, isNatsConnection, watchConnection } from "./connection.js";
import { BarrierTimeoutError, ClusterError, MembershipError, MessageError, PeerLostError } from "./errors.js";
import { Liveness } from "./heartbeat.js";
import { list, Membership, type Roster, seconds } from "./membership.js";
import { isPeerName, type JobSubjects, jobSubjects } from "./subjects.js";

export type { BspMessage } from "./barrier.js";

/** Options of a BSP peer. Defaults are in BSP_DEFAULTS. */
export interface BspOptions {
  /** The job id: 1 to 64 letters, digits, "-" or "_" (every subject lives under downpour.<job>.). */
  job: string;
  /** How many peers the job has (1 to 65535). */
  peers: number;
  /** An open connection (kept open by close()), or how to open one with connectCluster (closed by close(); the
   *  client name defaults to "downpour-<peer name>"). */
  connection: NatsConnection | ClusterConnectionOptions;
  /** This peer's name, unique in the job (default "<hostname>-<pid>-<n>"). */
  name?: string;
  /** The index this peer asks for (default: the free indices go to the peers in the order of their names). */
  index?: number;
  /** The hash of the job's model spec and options; a peer with another is refused (default ""). */
  specHash?: string;
  /** How long the join waits for every peer, in ms (default 60 000). */
  joinTimeoutMs?: number;
  /** How long a sync() waits for the other peers, in ms (default 30 000). */
  barrierTimeoutMs?: number;
  /** How often this peer says it is alive, in ms (default 500). */
  heartbeatMs?: number;
  /** How long a silent peer is given before the job fails with PeerLostError, in ms (default 3000). */
  peerTimeoutMs?: number;
  /** How often a joining peer repeats its hello or ready, in ms (default 250). */
  joinRepeatMs?: number;
  /** The most payload bytes per frame (default: the server's max_payload minus 64 bytes). */
  maxChunkBytes?: number;
  /** The largest message this peer accepts, in bytes (default 1 GiB). */
  maxMessageBytes?: number;
  /** Where refused messages and refused peers are reported (default: console.error of the message). */
  onError?: (error: ClusterError) => void;
}

/** The default of every optional BspOptions field: the one source of truth. */
export const BSP_DEFAULTS = Object.freeze({
  specHash: "",
  joinTimeoutMs: 60_000,
  barrierTimeoutMs: 30_000,
  heartbeatMs: 500,
  peerTimeoutMs: 3_000,
  joinRepeatMs: 250,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  onError: (error: ClusterError): void => console.error(`downpour: ${error.message}`),
});

/** What send() takes: bytes, a Float32 tensor, or a msgpack value (plain objects, arrays, strings, numbers, ...). */
export type BspPayload = Uint8Array | Float32Array | string | number | boolean | null | readonly unknown[] | { readonly [key: string]: unknown };

/** A peer's state. */
export type PeerStatus = { readonly state: "running" } | { readonly state: "failed"; readonly error: Error } | { readonly state: "closed" };

/** Counters of one peer (for per-peer rows: bytes sent, time waiting). */
export interface PeerStats {
  messagesSent: number;
  framesSent: number;
  /** Bytes published (frames and control messages, headers included). */
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  /** Time spent inside sync() waiting for the other peers, in ms. */
  waitMs: number;
}

/** A BSP program, as in Hama: setup, the body (which calls peer.sync() between supersteps), cleanup. */
export interface BspProgram<R = void> {
  setup?(peer: BspPeer): void | Promise<void>;
  bsp(peer: BspPeer): R | Promise<R>;
  /** Runs after bsp, also when setup or bsp threw (then an error of cleanup is reported, not thrown). */
  cleanup?(peer: BspPeer): void | Promise<void>;
}

/** BspOptions with every default filled in (what resolveBspOptions returns). */
export type ResolvedBspOptions = Required<Omit<BspOptions, "index" | "maxChunkBytes" | "connection">> & Pick<BspOptions, "index" | "maxChunkBytes" | "connection">;

let peersInProcess = 0;

/** Checks options and fills defaults; throws InvalidArgumentError naming the option. */
export function resolveBspOptions(options: BspOptions): ResolvedBspOptions {
  const bad = (name: string, expected: string, got: unknown): never => {
    throw new InvalidArgumentError(`BSP option ${name} must be ${expected}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`);
  };
  jobSubjects(options.job);
  if (!Number.isInteger(options.peers) || options.peers < 1 || options.peers > MAX_PEERS) bad("peers", `an integer from 1 to ${MAX_PEERS}`, options.peers);
  if (options.index !== undefined && (!Number.isInteger(options.index) || options.index < 0 || options.index >= options.peers)) {
    bad("index", `an integer from 0 to ${options.peers - 1} (peers - 1)`, options.index);
  }
  const name = options.name ?? `${hostname()}-${process.pid}-${++peersInProcess}`;
  if (!isPeerName(name)) bad("name", "1 to 128 characters without control characters", name);
  const specHash = options.specHash ?? BSP_DEFAULTS.specHash;
  if (typeof specHash !== "string" || specHash.length > MAX_SPEC_HASH_LENGTH) bad("specHash", `a string of at most ${MAX_SPEC_HASH_LENGTH} characters`, specHash);
  const ms = (key: "joinTimeoutMs" | "barrierTimeoutMs" | "heartbeatMs" | "peerTimeoutMs" | "joinRepeatMs") => {
    const value = options[key] ?? BSP_DEFAULTS[key];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 2 ** 31 - 1) bad(key, "a positive number of milliseconds", value);
    return value;
  };
  const resolved = {
    ...options,
    name,
    specHash,
    joinTimeoutMs: ms("joinTimeoutMs"),
    barrierTimeoutMs: ms("barrierTimeoutMs"),
    heartbeatMs: ms("heartbeatMs"),
    peerTimeoutMs: ms("peerTimeoutMs"),
    joinRepeatMs: ms("joinRepeatMs"),
    maxMessageBytes: options.maxMessageBytes ?? BSP_DEFAULTS.maxMessageBytes,
    onError: options.onError ?? BSP_DEFAULTS.onError,
  };
  if (resolved.heartbeatMs >= resolved.peerTimeoutMs) bad("heartbeatMs", `less than peerTimeoutMs (${resolved.peerTimeoutMs})`, resolved.heartbeatMs);
  if (options.maxChunkBytes !== undefined && (!Number.isInteger(options.maxChunkBytes) || options.maxChunkBytes < 4)) {
    bad("maxChunkBytes", "an integer >= 4", options.maxChunkBytes);
  }
  if (!Number.isInteger(resolved.maxMessageBytes) || resolved.maxMessageBytes < 0) bad("maxMessageBytes", "a non-negative integer", resolved.maxMessageBytes);
  if (typeof resolved.onError !== "function") bad("onError", "a function", resolved.onError);
  if (typeof options.connection !== "object" || options.connection === null) bad("connection", "a NatsConnection or connection options", options.connection);
  return resolved;
}


/** Opens a connection from options (connectCluster: ConnectionError when no server answers). */
function openConnection(options: ClusterConnectionOptions, name: string): Promise<NatsConnection> {
  return connectCluster({ ...options, name: options.name ?? `downpour-${name}` });
}

/** A random inbox token: 16 letters and digits. */
function newUid(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

/** A promise that resolves after `ms` or when `work` settles, whichever is first (for bounded shutdown). */
async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([work.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** `work`, or a rejection with `error()` after `ms`. */
async function withTimeout<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long close() waits for the connection to flush or close, in ms. */
const CLOSE_WAIT_MS = 2_000;

/** The subscriptions of one peer; messages wait in a queue until a handler takes them (while the job gathers). */
class Wire {
  readonly subjects: JobSubjects;
  readonly inbox: string;
  readonly #nc: NatsConnection;
  #subs: Subscription[] = [];
  #queue: Msg[] = [];
  #onData: ((msg: Msg) => void) | undefined;
  onJoin: (msg: Msg) => void = () => {};
  /** A subscription failed (e.g. permissions): set by the owner. */
  onError: (error: Error) => void = () => {};
  bytesSent = 0;
  /** The buffers of outgoing frames, each reused once the client has flushed past it (see settle()). */
  readonly pool = new FramePool();
  #lent: Uint8Array[] = [];

  constructor(nc: NatsConnection, subjects: JobSubjects, uid: string) {
    this.#nc = nc;
    this.subjects = subjects;
    this.inbox = subjects.peer(uid);
  }

  /** Subscribes to the join, control and inbox subjects; resolves once the server has them. */
  async open(): Promise<void> {
    const data = (error: Error | null, msg: Msg) => {
      if (error) this.onError(error);
      else if (this.#onData) this.#onData(msg);
      else this.#queue.push(msg);
    };
    this.#subs.push(this.#nc.subscribe(this.inbox, { callback: data }));
    this.#subs.push(this.#nc.subscribe(this.subjects.control, { callback: data }));
    this.#subs.push(this.#nc.subscribe(this.subjects.join, { callback: (error, msg) => (error ? this.onError(error) : this.onJoin(msg)) }));
    await this.#nc.flush();
  }

  /** Hands the queued and future inbox and control messages to `handler`. */
  take(handler: (msg: Msg) => void): void {
    this.#onData = handler;
    const queued = this.#queue;
    this.#queue = [];
    for (const msg of queued) handler(msg);
  }

  /** Publishes (the client buffers it; it goes out on the next flush). Throws what the client throws (closed). */
  publish(subject: string, data: Uint8Array): void {
    this.#nc.publish(subject, data);
    this.bytesSent += data.byteLength;
  }

  get maxPayload(): number {
    return this.#nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Frames published from the pool: the client may still read them until settle() sees it flushed past them. */
  lend(frames: readonly Uint8Array[]): void {
    for (const frame of frames) this.#lent.push(frame);
  }

  /**
   * Gives the lent frames back to the pool once the server answers a PING sent after them: by then the client has
   * copied them into its outbound buffer and written it (nats.js packs its queue before writing). When the flush
   * fails (connection lost or closed) they are dropped, never reused. Does not wait.
   */
  settle(): void {
    if (this.#lent.length === 0) return;
    const lent = this.#lent;
    this.#lent = [];
    let flushed: Promise<void>;
    try {
      flushed = this.#nc.flush();
    } catch {
      return;
    }
    flushed.then(
      () => this.pool.give(lent),
      () => {},
    );
  }

  /** Flushes what was published (bounded), then unsubscribes. */
  async close(): Promise<void> {
    if (!this.#nc.isClosed()) await bounded(this.#nc.flush(), CLOSE_WAIT_MS);
    for (const sub of this.#subs) {
      try {
        sub.unsubscribe();
      } catch {
        // the connection is closed: nothing to unsubscribe from
      }
    }
    this.#subs = [];
    this.#onData = () => {};
    this.onJoin = () => {};
  }
}

/** Per-destination counters of the current superstep. */
interface Outbox {
  count: number[];
  frames: number[];
  seq: number[];
}

/** What this peer sent in one superstep, kept to send again after a connection loss: per destination index, its
 *  frames in send order, then its marker (once sync() sent it). */
interface Sent {
  frames: Uint8Array[][];
  markers: (Uint8Array | undefined)[];
}

/** A heartbeat with this peer's reconnect count (an extra field; peers that do not know it ignore it). */
type LinkedHeartbeat = ControlMessage & { link?: unknown };

/** A sync() in progress. */
interface Waiter {
  readonly step: number;
  readonly started: number;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * One peer of a BSP job. Get one with BspPeer.join(options) (or let runBsp do it); close() it at the end.
 * Not safe to use from two tasks at once: one send/sync at a time, as Hama's peer.
 */
export class BspPeer {
  /** The job id. */
  readonly job: string;
  /** This peer's name. */
  readonly name: string;
  /** This peer's index, 0 to peers - 1. */
  readonly index: number;
  /** How many peers the job has. */
  readonly peers: number;
  /** Every peer's name, by index (the same array on every peer). */
  readonly peerNames: readonly string[];
  /** This peer's inbox subject (downpour.<job>.peer.<token>). */
  readonly subject: string;

  readonly #options: ResolvedBspOptions;
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #wire: Wire;
  readonly #membership: Membership;
  readonly #inboxes: readonly string[];
  readonly #specTag: number;
  readonly #barrier: Barrier;
  readonly #reassembler: Reassembler;
  readonly #liveness: Liveness;
  readonly #controller = new AbortController();
  #status: PeerStatus = { state: "running" };
  #step = 0;
  #current: readonly BspMessage[] = [];
  /** Buffers of delivered messages given back by recycle(), for the reassembly of later ones. */
  readonly #received = new FramePool();
  #out: Outbox;
  #waiter: Waiter | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | undefined;
  /** Per superstep (the previous and the current), what went out: sent again after a connection loss. */
  readonly #sent = new Map<number, Sent>();
  /** This peer's reconnects so far, whether its connection is down, and the reconnect count each peer last reported. */
  #link = 0;
  #linkDown = false;
  readonly #peerLinks: number[];
  #watch: ConnectionWatch | undefined;
  readonly #recovery = { reconnects: 0, resends: 0, duplicates: 0 };
  readonly #stats: Omit<PeerStats, "bytesSent"> = { messagesSent: 0, framesSent: 0, messagesReceived: 0, bytesReceived: 0, waitMs: 0 };

  /**
   * Joins the job (see membership.ts) and resolves once every peer has joined and agreed on the roster. Rejects with
   * InvalidArgumentError (options), MembershipError (refused: another spec, name taken, job full) or
   * BarrierTimeoutError (phase "join": not every peer came within joinTimeoutMs), having closed what it opened.
   */
  static async join(options: BspOptions): Promise<BspPeer> {
    const o = resolveBspOptions(options);
    const subjects = jobSubjects(o.job);
    const owned = !isNatsConnection(o.connection);
    const nc = isNatsConnection(o.connection) ? o.connection : await openConnection(o.connection, o.name);
    const uid = newUid();
    const wire = new Wire(nc, subjects, uid);
    const membership: Membership = new Membership(
      { job: o.job, name: o.name, uid, index: o.index ?? -1, peers: o.peers, spec: o.specHash },
      {
        publish: (message) => {
          try {
            wire.publish(subjects.join, encodeControl(message));
          } catch (error) {
            membership.abort(new ClusterError(`job "${o.job}": peer "${o.name}" cannot publish (connection closed?): ${String(error)}`, o.job, { cause: error }));
          }
        },
        report: (error) => o.onError(error),
      },
    );
    wire.onJoin = (msg) => {
      try {
        const message = decodeControl(msg.data, msg.subject, o.job);
        if (message.type === "hello" || message.type === "ready") membership.receive(message);
        else throw new MessageError(`a "${message.type}" message on the join subject`, { sender: message.from, field: "type", subject: msg.subject }, o.job);
      } catch (error) {
        if (error instanceof MessageError) o.onError(error);
        else membership.abort(error instanceof Error ? error : new ClusterError(String(error), o.job));
      }
    };
    wire.onError = (error) => membership.abort(new ClusterError(`job "${o.job}": a subscription failed: ${error.message}`, o.job, { cause: error }));
    try {
      await withTimeout(wire.open(), o.joinTimeoutMs, () => new ClusterError(`job "${o.job}": the NATS server did not confirm the subscriptions of peer "${o.name}" within ${seconds(o.joinTimeoutMs)}`, o.job));
      const roster = await membership.joined(o.joinTimeoutMs, o.joinRepeatMs);
      return new BspPeer(o, nc, owned, wire, membership, roster);
    } catch (error) {
      membership.stop();
      await wire.close();
      if (owned) await bounded(nc.close(), CLOSE_WAIT_MS);
      throw error;
    }
  }

  private constructor(o: ResolvedBspOptions, nc: NatsConnection, owned: boolean, wire: Wire, membership: Membership, roster: Roster) {
    this.#options = o;
    this.#nc = nc;
    this.#ownsConnection = owned;
    this.#wire = wire;
    this.#membership = membership;
    this.job = o.job;
    this.name = o.name;
    this.index = roster.index;
    this.peers = roster.names.length;
    this.peerNames = Object.freeze([...roster.names]);
    this.subject = wire.inbox;
    this.#inboxes = roster.uids.map((token) => wire.subjects.peer(token));
    this.#specTag = specTag(o.specHash);
    this.#barrier = new Barrier(this.peers, this.index);
    // Messages being reassembled hold at most two of the largest: frames that each claim a huge message cannot
    // make a peer allocate more than that (a further one is refused, field "total").
    this.#reassembler = new Reassembler(o.maxMessageBytes, o.job, this.#received, 2 * Math.max(1, o.maxMessageBytes));
    this.#liveness = new Liveness(this.peers, this.index, Date.now());
    this.#out = this.#freshOutbox();
    this.#peerLinks = new Array<number>(this.peers).fill(0);
    wire.onError = (error) => this.#fail(new ClusterError(`job "${this.job}": a subscription of peer "${this.name}" failed: ${error.message}`, this.job, { cause: error }), true);
    wire.take((msg) => this.#receive(msg));
    if (this.peers > 1) {
      this.#heartbeat = setInterval(() => this.#tick(), o.heartbeatMs);
      this.#sendHeartbeat();
      this.#watchConnection();
    }
  }

  /** How this peer recovered from connection losses: its reconnects, the frames and markers it sent again, and the
   *  repeated ones it dropped as a receiver. */
  get recovery(): { reconnects: number; resends: number; duplicates: number } {
    return { ...this.#recovery };
  }

  /** This peer's counters so far (a snapshot). */
  get stats(): PeerStats {
    return { ...this.#stats, bytesSent: this.#wire.bytesSent };
  }

  /** The superstep count: how many sync() calls have completed (Hama's getSuperstepCount). */
  get superstep(): number {
    return this.#step;
  }

  /** running, failed (with the error every later call throws) or closed. */
  get status(): PeerStatus {
    return this.#status;
  }

  /** Aborted (with the error) when the job fails here or the peer is closed: long supersteps can watch it. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The messages the last sync() delivered, by sender index then send order (not copied; dropped at the next sync). */
  messages(): Iterable<BspMessage> {
    return this.#current;
  }

  /**
   * Declares that nothing reads the messages the last sync() delivered any more (their data included): their
   * buffers may then hold later messages, which saves allocating (and collecting) one buffer per large message.
   * messages() is empty afterwards. Optional: without it every message keeps a buffer of its own for good.
   */
  recycle(): void {
    const buffers: Uint8Array[] = [];
    for (const message of this.#current) {
      if (message.from === this.index || (message.kind !== "f32" && message.kind !== "bytes")) continue;
      const data = message.data as Uint8Array | Float32Array;
      buffers.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    this.#current = [];
    this.#received.give(buffers);
  }

  /** How many messages the last sync() delivered. */
  get messageCount(): number {
    return this.#current.length;
  }

  /** The index of a peer given by index or name; throws InvalidArgumentError for anything else. */
  peerIndex(peer: string | number): number {
    if (typeof peer === "number") {
      if (Number.isInteger(peer) && peer >= 0 && peer < this.peers) return peer;
      throw new InvalidArgumentError(`no peer ${peer} in job "${this.job}": indices go from 0 to ${this.peers - 1}`);
    }
    const at = this.peerNames.indexOf(peer);
    if (at < 0) throw new InvalidArgumentError(`no peer named ${JSON.stringify(peer)} in job "${this.job}" (peers: ${list(this.peerNames)})`);
    return at;
  }

  /**
   * Sends `message` to `peer` (an index or a name; this peer too), readable there after this superstep's sync().
   * Copies: the payload is encoded into frames before send returns, so the caller may reuse its buffer at once.
   * Float32Arrays go as raw little-endian bytes; plain values as msgpack. Publishes at once (no waiting).
   */
  send(peer: string | number, message: BspPayload): void {
    this.#usable("send");
    if (this.#waiter) throw new InvalidStateError("send() while sync() has not resolved: messages belong to a superstep; await sync() first");
    const to = this.peerIndex(peer);
    const { kind, bytes } = encodePayload(message);
    const seq = this.#out.seq[to]!++;
    this.#stats.messagesSent++;
    if (to === this.index) {
      this.#barrier.box(this.#step).add(seq, { from: to, sender: this.name, ...localCopy(kind, message, bytes) } as BspMessage);
      return;
    }
    const chunkBytes = chunkBytesFor(this.#wire.maxPayload, this.#options.maxChunkBytes);
    const frames = encodeFrames(bytes, { kind, sender: this.index, specTag: this.#specTag, step: this.#step, seq }, chunkBytes, this.#wire.pool);
    this.#publish(frames.map((frame) => [this.#inboxes[to]!, frame]));
    this.#sentIn(this.#step).frames[to]!.push(...frames);
    this.#out.count[to]!++;
    this.#out.frames[to]! += frames.length;
    this.#stats.framesSent += frames.length;
  }

  /**
   * The barrier: resolves once every peer has finished this superstep and every message sent to this peer in it has
   * arrived; then messages() holds them and superstep is one more. Rejects (and the peer is failed) with
   * BarrierTimeoutError after barrierTimeoutMs, PeerLostError when a peer died, failed or left, MessageError when a
   * peer's announced messages arrived damaged.
   */
  async sync(): Promise<void> {
    this.#usable("sync");
    if (this.#waiter) throw new InvalidStateError("sync() called again before the previous sync() resolved");
    const step = this.#step;
    const markers: [string, Uint8Array][] = [];
    for (let j = 0; j < this.peers; j++) {
      if (j === this.index) continue;
      const marker: ControlMessage = { ...this.#envelope(), type: "marker", step, count: this.#out.count[j]!, frames: this.#out.frames[j]! };
      const bytes = encodeControl(marker);
      this.#sentIn(step).markers[j] = bytes;
      markers.push([this.#inboxes[j]!, bytes]);
    }
    this.#publish(markers);
    this.#wire.settle();
    const started = Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#waiter = { step, started, resolve, reject };
        timer = setTimeout(() => this.#timedOut(step, started), this.#options.barrierTimeoutMs);
        this.#poke();
      });
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
      this.#stats.waitMs += Date.now() - started;
    }
  }

  /** Ends superstep `step` (called as its barrier completes, synchronously: a failure heard next names the next step). */
  #advance(step: number): void {
    this.#current = this.#barrier.take(step).delivery();
    for (const error of this.#reassembler.expire((_sender, at) => at <= step, this.subject, this.peerNames)) this.#options.onError(error);
    this.#step = step + 1;
    this.#out = this.#freshOutbox();
    // Every peer sent its marker for `step`, so each has left step - 1: what went out then is needed nowhere.
    const old = this.#sent.get(step - 1);
    this.#sent.delete(step - 1);
    if (old) for (const frames of old.frames) this.#wire.lend(frames);
  }

  /** What this peer sent in superstep `step` (created on first use). */
  #sentIn(step: number): Sent {
    let sent = this.#sent.get(step);
    if (!sent) {
      sent = { frames: Array.from({ length: this.peers }, () => []), markers: new Array(this.peers).fill(undefined) };
      this.#sent.set(step, sent);
    }
    return sent;
  }

  /** Follows the connection: down (no one is judged lost), back (send everything again, report the loss). */
  #watchConnection(): void {
    this.#watch = watchConnection(this.#nc, {
      lost: () => {
        this.#linkDown = true;
      },
      back: (loss, back) => {
        if (this.#status.state !== "running") return;
        this.#reconnected();
        const steps = [...this.#sent.keys()];
        const own = steps.length === 0 ? "had sent nothing to send again" : `sends every peer again what it sent in superstep${steps.length > 1 ? "s" : ""} ${steps.join(" and ")}`;
        const recovery = `peer "${this.name}" ${own}, and the others send it theirs on its heartbeat (link ${this.#link})`;
        this.#options.onError(connectionLossError(loss, back, { client: `peer "${this.name}"`, subject: this.subject, recovery }, this.job));
      },
    });
  }

  #reconnected(): void {
    this.#linkDown = false;
    this.#link++;
    this.#recovery.reconnects++;
    this.#liveness.refresh(Date.now());
    this.#sendHeartbeat();
    for (let j = 0; j < this.peers; j++) if (j !== this.index) this.#resendTo(j);
  }

  /** Sends peer `j` again what it may have missed: the frames and markers of the supersteps kept, oldest first. */
  #resendTo(j: number): void {
    if (this.#linkDown || this.#status.state !== "running") return;
    const steps = [...this.#sent.keys()].sort((a, b) => a - b);
    const messages: [string, Uint8Array][] = [];
    for (const step of steps) {
      const sent = this.#sent.get(step)!;
      for (const frame of sent.frames[j]!) messages.push([this.#inboxes[j]!, frame]);
      const marker = sent.markers[j];
      if (marker) messages.push([this.#inboxes[j]!, marker]);
    }
    if (messages.length === 0) return;
    this.#recovery.resends += messages.length;
    try {
      this.#publish(messages);
    } catch {
      // #publish failed the peer
    }
  }

  /** Fails this peer with `reason` and tells the others (they fail with PeerLostError naming this peer). Idempotent. */
  abort(reason: unknown): void {
    const error = reason instanceof Error ? reason : new ClusterError(String(reason), this.job);
    this.#fail(error, true);
  }

  /**
   * Leaves the job: tells the others this peer is done after `superstep` supersteps (unless it failed), stops the
   * heartbeats, flushes and unsubscribes, and closes the connection if join() opened it. Resolves when done (bounded
   * by a few seconds even when the server is gone). Idempotent; every later call on the peer throws.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasRunning = this.#status.state === "running";
    if (wasRunning) {
      this.#status = { state: "closed" };
      this.#waiter?.reject(new InvalidStateError(`peer "${this.name}" closed during sync()`));
      this.#publishControl({ ...this.#envelope(), type: "done", steps: this.#step });
    }
    this.#stopTimers();
    this.#controller.abort(new InvalidStateError(`peer "${this.name}" closed`));
    await this.#wire.close();
    this.#barrier.clear();
    this.#sent.clear();
    if (this.#ownsConnection) await bounded(this.#nc.close(), CLOSE_WAIT_MS);
  }

  #freshOutbox(): Outbox {
    const zeros = () => new Array<number>(this.peers).fill(0);
    return { count: zeros(), frames: zeros(), seq: zeros() };
  }

  #envelope() {
    return { v: PROTOCOL_VERSION, from: this.name, index: this.index, spec: this.#options.specHash };
  }

  #usable(what: string): void {
    const status = this.#status;
    if (status.state === "failed") throw status.error;
    if (status.state === "closed") throw new InvalidStateError(`${what}() on peer "${this.name}" of job "${this.job}" after close()`);
  }

  /** Publishes data or markers; a connection that cannot publish (closed) fails the peer, and the error is thrown. */
  #publish(messages: [subject: string, data: Uint8Array][]): void {
    try {
      for (const [subject, data] of messages) this.#wire.publish(subject, data);
    } catch (error) {
      const failure = this.#connectionClosed(error);
      this.#fail(failure, false);
      throw failure;
    }
  }

  #connectionClosed(cause?: unknown): ClusterError {
    const why = cause instanceof Error ? `: ${cause.message}` : "";
    return new ClusterError(`job "${this.job}": the NATS connection of peer "${this.name}" is closed${why}`, this.job, { cause });
  }

  #publishControl(message: ControlMessage): void {
    try {
      this.#wire.publish(this.#wire.subjects.control, encodeControl(message));
    } catch {
      // the connection is closed: the others learn from the heartbeats
    }
  }

  #sendHeartbeat(): void {
    this.#publishControl({ ...this.#envelope(), type: "heartbeat", step: this.#step, link: this.#link } as ControlMessage);
  }

  #tick(): void {
    if (this.#status.state !== "running") return;
    if (this.#nc.isClosed()) {
      this.#fail(this.#connectionClosed(), false);
      return;
    }
    if (this.#linkDown) return; // nothing can be heard now; the reconnect refreshes every peer's clock
    this.#sendHeartbeat();
    const now = Date.now();
    const lost = this.#liveness.lost(now, this.#options.peerTimeoutMs);
    if (lost === undefined) return;
    const name = this.peerNames[lost]!;
    const silent = this.#liveness.silentFor(lost, now);
    this.#fail(
      new PeerLostError(
        `peer "${name}" (index ${lost}) of job "${this.job}" stopped answering: nothing heard for ${seconds(silent)} ` +
          `(peerTimeoutMs ${this.#options.peerTimeoutMs}); it was last in superstep ${this.#liveness.lastStep(lost)}, this peer is in superstep ${this.#step}`,
        { peer: name, index: lost, superstep: this.#step, reason: "heartbeat" },
        this.job,
      ),
      true,
    );
  }

  #timedOut(step: number, started: number): void {
    if (this.#waiter?.step !== step) return;
    const state = this.#barrier.state(step);
    const missing = state.kind === "waiting" ? state.missing.map((j) => this.peerNames[j]!) : [];
    const waited = Date.now() - started;
    this.#fail(
      new BarrierTimeoutError(
        `job "${this.job}": the barrier of superstep ${step} timed out after ${seconds(waited)} on peer "${this.name}", waiting for ${list(missing)}`,
        { phase: "sync", superstep: step, missing, waitedMs: waited },
        this.job,
      ),
      true,
    );
  }

  /** Fails the peer: every pending and later call rejects with `error`; with `broadcast`, tells the other peers. */
  #fail(error: Error, broadcast: boolean): void {
    if (this.#status.state !== "running") return;
    this.#status = { state: "failed", error };
    this.#stopTimers();
    this.#controller.abort(error);
    this.#waiter?.reject(error);
    if (broadcast) this.#publishControl(this.#abortMessage(error));
  }

  #abortMessage(error: Error): Abort {
    const base = { ...this.#envelope(), type: "abort" as const, step: this.#step, reason: error.message.slice(0, 4096), lost: "", loss: "" as const, missing: [] };
    if (error instanceof PeerLostError) return { ...base, kind: "lost", lost: error.peer, loss: error.reason };
    if (error instanceof BarrierTimeoutError) return { ...base, kind: "timeout", missing: error.missing };
    return { ...base, kind: "error" };
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#membership.stop();
    this.#watch?.stop();
  }

  /** Every message on the inbox and control subjects. Refused ones are reported and change nothing. */
  #receive(msg: Msg): void {
    if (this.#status.state !== "running") return;
    const data = msg.data;
    this.#stats.bytesReceived += data.byteLength;
    try {
      if (msg.subject === this.subject && isFrame(data)) this.#frame(msg.subject, data);
      else this.#control(decodeControl(data, msg.subject, this.job), msg.subject);
    } catch (error) {
      if (error instanceof MessageError) this.#options.onError(error);
      else this.#fail(error instanceof Error ? error : new ClusterError(String(error), this.job), true);
    }
    this.#poke();
  }

  /** The index of the sender of a control message, after checking it belongs to the job and runs its spec. */
  #sender(message: ControlMessage, subject: string): number {
    const refuse = (field: string, what: string): never => {
      throw new MessageError(what, { sender: message.from, field, subject }, this.job);
    };
    const at = this.peerNames.indexOf(message.from);
    if (at < 0) refuse("from", `"${message.from}" is not a peer of job "${this.job}" (peers: ${list(this.peerNames)})`);
    if (message.index !== at) refuse("index", `peer "${message.from}" is index ${at} in job "${this.job}", the message says ${message.index}`);
    if (message.spec !== this.#options.specHash) {
      refuse("spec", `spec hash ${JSON.stringify(message.spec)}, job "${this.job}" runs ${JSON.stringify(this.#options.specHash)}`);
    }
    return at;
  }

  #checkStep(step: number, sender: string, subject: string): void {
    if (step !== this.#step && step !== this.#step + 1) {
      throw new MessageError(
        `superstep ${step}, but this peer is in superstep ${this.#step} (a peer can be at most one ahead)`,
        { sender, field: "step", subject },
        this.job,
      );
    }
  }

  #control(message: ControlMessage, subject: string): void {
    if (message.from === this.name && message.index === this.index) return; // our own broadcast
    const from = this.#sender(message, subject);
    const now = Date.now();
    const onInbox = subject === this.subject;
    if (onInbox !== (message.type === "marker")) {
      throw new MessageError(`a "${message.type}" message on ${onInbox ? "the inbox" : "the control subject"}`, { sender: message.from, field: "type", subject }, this.job);
    }
    switch (message.type) {
      case "marker": {
        if (message.step < this.#step) {
          this.#duplicate(); // sent again for a superstep this peer has left
          return;
        }
        this.#checkStep(message.step, message.from, subject);
        const box = this.#barrier.box(message.step);
        const had = box.markers[from];
        if (had && had.count === message.count && had.frames === message.frames) {
          this.#duplicate();
          return;
        }
        if (had) throw new MessageError(`a second marker for superstep ${message.step}`, { sender: message.from, field: "step", subject }, this.job);
        box.markers[from] = { count: message.count, frames: message.frames };
        this.#liveness.seen(from, now, message.step);
        return;
      }
      case "heartbeat": {
        this.#liveness.seen(from, now, message.step);
        const link = (message as LinkedHeartbeat).link;
        if (Number.isSafeInteger(link) && (link as number) > this.#peerLinks[from]!) {
          this.#peerLinks[from] = link as number;
          this.#resendTo(from);
        }
        return;
      }
      case "done":
        this.#liveness.leave(from, message.steps);
        return;
      case "abort":
        this.#fail(this.#abortError(message, from), false);
        return;
      default:
        throw new MessageError(`a "${message.type}" message outside the join`, { sender: message.from, field: "type", subject }, this.job);
    }
  }

  /** The error an abort from peer `from` means here. */
  #abortError(message: Abort, from: number): ClusterError {
    const by = `reported by peer "${message.from}"`;
    if (message.kind === "lost") {
      const lost = this.peerNames.indexOf(message.lost);
      return new PeerLostError(
        `peer "${message.lost}" (index ${lost}) of job "${this.job}" was lost (${message.loss}), ${by}: ${message.reason}`,
        { peer: message.lost, index: lost, superstep: this.#step, reason: message.loss === "" ? "heartbeat" : message.loss, reportedBy: message.from, detail: message.reason },
        this.job,
      );
    }
    if (message.kind === "timeout") {
      const own = this.#waiter ? this.#barrier.state(this.#waiter.step) : undefined;
      const missing = own?.kind === "waiting" ? own.missing.map((j) => this.peerNames[j]!) : message.missing;
      return new BarrierTimeoutError(
        `job "${this.job}": the barrier of superstep ${message.step} timed out (${by}), waiting for ${list(missing)}`,
        { phase: "sync", superstep: message.step, missing, waitedMs: this.#waiter ? Date.now() - this.#waiter.started : 0 },
        this.job,
      );
    }
    return new PeerLostError(
      `peer "${message.from}" (index ${from}) of job "${this.job}" failed in superstep ${message.step}: ${message.reason}`,
      { peer: message.from, index: from, superstep: this.#step, reason: "aborted", detail: message.reason },
      this.job,
    );
  }

  #frame(subject: string, data: Uint8Array): void {
    const frame = decodeFrame(data, subject, this.peerNames, this.job);
    const name = this.peerNames[frame.sender] ?? `#${frame.sender}`;
    if (frame.sender >= this.peers || frame.sender === this.index) {
      throw new MessageError(`sender index ${frame.sender} is not another peer of job "${this.job}" (${this.peers} peers)`, { sender: name, field: "sender", subject }, this.job);
    }
    if (frame.specTag !== this.#specTag) throw new MessageError(`a frame of another model spec (tag ${frame.specTag})`, { sender: name, field: "spec", subject }, this.job);
    if (frame.step < this.#step) {
      this.#duplicate(); // sent again for a superstep this peer has left
      return;
    }
    this.#checkStep(frame.step, name, subject);
    this.#liveness.seen(frame.sender, Date.now());
    const box = this.#barrier.box(frame.step);
    if (!box.firstSight(frame.sender, frame.seq, frame.index)) {
      this.#duplicate();
      return;
    }
    box.frames[frame.sender]!++;
    const whole = this.#reassembler.add(frame, subject, name);
    if (whole) box.add(whole.seq, { from: frame.sender, sender: name, ...this.#decodePayload(whole, name, subject) } as BspMessage);
  }

  /** A frame or marker this peer holds already (sent again after a connection loss): dropped. */
  #duplicate(): void {
    this.#recovery.duplicates++;
  }

  #decodePayload(whole: Assembled, sender: string, subject: string): { kind: PayloadKind; data: unknown } {
    this.#stats.messagesReceived++;
    if (whole.kind === "bytes") return { kind: "bytes", data: whole.payload };
    if (whole.kind === "f32") return { kind: "f32", data: bytesToFloat32(whole.payload) };
    try {
      return { kind: "value", data: unpackValue(whole.payload) };
    } catch (error) {
      this.#stats.messagesReceived--;
      throw new MessageError("a value that is not msgpack", { sender, field: "value", subject }, this.job, { cause: error });
    }
  }

  /** Settles a pending sync() when its barrier is complete, or can never complete. */
  #poke(): void {
    const waiter = this.#waiter;
    if (!waiter || this.#status.state !== "running") return;
    const step = waiter.step;
    const state = this.#barrier.state(step);
    if (state.kind === "complete") {
      this.#waiter = undefined;
      this.#advance(step);
      waiter.resolve();
      return;
    }
    if (state.kind === "damaged") {
      const name = this.peerNames[state.sender]!;
      this.#fail(
        new MessageError(
          `peer "${name}" announced ${state.announced} messages for superstep ${step} and ${state.arrived} arrived whole (refused or missing frames)`,
          { sender: name, field: "messages", subject: this.subject },
          this.job,
        ),
        true,
      );
      return;
    }
    for (const j of state.missing) {
      const left = this.#liveness.leftAfter(j);
      if (left !== undefined && left <= step) {
        const name = this.peerNames[j]!;
        this.#fail(
          new PeerLostError(
            `peer "${name}" (index ${j}) left job "${this.job}" after ${left} supersteps, but peer "${this.name}" is in superstep ${step}`,
            { peer: name, index: j, superstep: step, reason: "left" },
            this.job,
          ),
          true,
        );
        return;
      }
    }
  }
}

/** The kind and little-endian bytes of a payload (a view for bytes and tensors on little-endian hosts, no copy). */
function encodePayload(message: BspPayload): { kind: PayloadKind; bytes: Uint8Array } {
  if (message instanceof Float32Array) return { kind: "f32", bytes: float32Bytes(message) };
  if (message instanceof Uint8Array) return { kind: "bytes", bytes: message };
  if (ArrayBuffer.isView(message)) {
    throw new InvalidArgumentError(`send() takes a Uint8Array, a Float32Array or a plain value, got a ${message.constructor.name}`);
  }
  try {
    return { kind: "value", bytes: packValue(message) };
  } catch (error) {
    throw new InvalidArgumentError(`send(): the value cannot be encoded as msgpack: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** A message to this peer itself, copied as the wire would (so later changes by the sender do not show). */
function localCopy(kind: PayloadKind, message: BspPayload, bytes: Uint8Array): { kind: PayloadKind; data: unknown } {
  if (kind === "f32") return { kind, data: (message as Float32Array).slice() };
  if (kind === "bytes") return { kind, data: new Uint8Array(bytes) };
  return { kind, data: unpackValue(bytes) };
}

/**
 * Runs `program` as one peer of a job: joins, then setup, bsp and cleanup (cleanup also after an error), then
 * close(). Resolves with what bsp returned; rejects with the first error (setup's, bsp's, the job's, or cleanup's
 * when nothing failed before it). A failing peer tells the others at once (they reject with PeerLostError).
 */
export async function runBsp<R>(program: BspProgram<R>, options: BspOptions): Promise<R> {
  const peer = await BspPeer.join(options);
  const report = options.onError ?? BSP_DEFAULTS.onError;
  let failure: { error: unknown } | undefined;
  let result: R | undefined;
  try {
    await program.setup?.(peer);
    result = await program.bsp(peer);
  } catch (error) {
    failure = { error };
    peer.abort(error);
  }
  try {
    await program.cleanup?.(peer);
  } catch (error) {
    if (failure) report(new ClusterError(`cleanup() of peer "${peer.name}" failed after an earlier error: ${String(error)}`, peer.job, { cause: error }));
    else {
      failure = { error };
      peer.abort(error);
    }
  }
  await peer.close();
  if (failure) throw failure.error;
  return result as R;
}

export { BarrierTimeoutError, ClusterError, MembershipError, MessageError, PeerLostError };
