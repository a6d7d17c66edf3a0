// The least a gradient exchange needs from a BSP peer (PeerChannel: index, peer count, send, sync, the messages the
// last sync delivered), with Apache Hama's semantics, and MemoryChannelGroup: peers in one process joined by that
// contract, for tests and as the reference of what a transport must do. bsp-channel.ts wraps a BspPeer (NATS).
import { InvalidArgumentError, InvalidStateError } from "../errors.js";
import { describeValue } from "../util/describe.js";

/** A small plain value a channel carries: msgpack-able (numbers, strings, booleans, null, arrays, plain objects). */
export type ChannelValue = number | string | boolean | null | readonly ChannelValue[] | { readonly [key: string]: ChannelValue };

/** What send() takes: an f32 tensor, f16 bit patterns (little-endian binary16), or a small plain object. */
export type ChannelPayload = Float32Array | Uint16Array | { readonly [key: string]: ChannelValue };

/** A payload by kind. */
export type ChannelBody =
  | { readonly kind: "f32"; readonly data: Float32Array }
  | { readonly kind: "f16"; readonly data: Uint16Array }
  | { readonly kind: "value"; readonly data: { readonly [key: string]: ChannelValue } };

/** A message the last sync() delivered: its sender's index and the payload, by kind. */
export type ChannelMessage = { readonly from: number } & ChannelBody;

/**
 * One peer of a BSP job as an exchange sees it. Not for two tasks at once: one send or sync at a time.
 * Semantics (Hama's): a message sent in superstep k is readable (messages()) only after this peer's k-th sync() has
 * resolved; a peer may message itself; what messages() held is dropped at the next sync().
 */
export interface PeerChannel {
  /** This peer's index, 0 to peers - 1. */
  readonly index: number;
  /** How many peers the job has. */
  readonly peers: number;
  /**
   * Sends `payload` to peer `to` (this peer too) for delivery after this superstep's sync(). Copies the payload
   * before returning (the caller may reuse its buffer at once). Throws InvalidArgumentError for a bad peer or
   * payload, InvalidStateError while a sync() is pending or after the channel failed.
   */
  send(to: number, payload: ChannelPayload): void;
  /**
   * The barrier: resolves once every peer has called sync() for this superstep and everything sent to this peer in
   * it has arrived; messages() then holds those messages. Rejects when the job fails (a peer lost, a timeout).
   */
  sync(): Promise<void>;
  /** The messages of the superstep the last sync() ended, by sender index, then send order. Not copied. */
  messages(): Iterable<ChannelMessage>;
  /**
   * Optional: the caller is done with what messages() holds (tensor data included); the channel may reuse those
   * buffers for later messages, and messages() is empty until the next sync(). A channel without it allocates anew.
   */
  recycle?(): void;
}

/** A payload copied as a transport would: typed arrays into new plain buffers, values by structured clone. */
export function copyPayload(payload: ChannelPayload, what = "send()"): ChannelBody {
  if (payload instanceof Float32Array) return { kind: "f32", data: payload.slice() };
  if (payload instanceof Uint16Array) return { kind: "f16", data: payload.slice() };
  requireObject(payload, what);
  try {
    return { kind: "value", data: structuredClone(payload) };
  } catch (error) {
    throw new InvalidArgumentError(`${what}: the object cannot be copied: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Throws InvalidArgumentError unless `payload` is an object send() takes (not a typed array, array or null). */
export function requireObject(payload: unknown, what = "send()"): asserts payload is { readonly [key: string]: ChannelValue } {
  if (ArrayBuffer.isView(payload) || typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new InvalidArgumentError(`${what} takes a Float32Array, a Uint16Array (f16 bits) or a plain object, got ${describeValue(payload)}`);
  }
}

/** A message waiting for its superstep's barrier. */
interface Pending {
  readonly from: number;
  readonly message: ChannelMessage;
}

/** A peer of a MemoryChannelGroup. */
class MemoryChannel implements PeerChannel {
  /** Supersteps this peer has completed (sync() calls that resolved). */
  superstep = 0;
  delivered: readonly ChannelMessage[] = [];
  waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(
    private readonly group: MemoryChannelGroup,
    readonly index: number,
    readonly peers: number,
  ) {}

  send(to: number, payload: ChannelPayload): void {
    this.group.usable(this, "send");
    if (this.waiting) throw new InvalidStateError(`send() on peer ${this.index} while its sync() is pending: await sync() first`);
    if (!Number.isInteger(to) || to < 0 || to >= this.peers) {
      throw new InvalidArgumentError(`send(): no peer ${describeValue(to)}; indices go from 0 to ${this.peers - 1}`);
    }
    this.group.post(this.superstep, to, { from: this.index, message: { from: this.index, ...copyPayload(payload) } });
  }

  sync(): Promise<void> {
    try {
      this.group.usable(this, "sync");
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.waiting) return Promise.reject(new InvalidStateError(`sync() on peer ${this.index} called again before the previous one resolved`));
    return new Promise<void>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.group.arrive(this.superstep);
    });
  }

  messages(): Iterable<ChannelMessage> {
    return this.delivered;
  }
}

/**
 * `peers` channels in one process: channel(i) is peer i. A sync() resolves once all of them called sync() for the
 * superstep; delivery is by sender index, then send order (as BspPeer's). abort(error) fails the group: pending and
 * later sync() calls reject with it, send() throws it.
 */
export class MemoryChannelGroup {
  readonly channels: readonly PeerChannel[];
  private readonly members: MemoryChannel[];
  /** Messages by superstep, then destination. */
  private readonly boxes = new Map<number, Pending[][]>();
  private readonly arrived = new Map<number, number>();
  private failure: Error | undefined;

  constructor(readonly peers: number) {
    if (!Number.isInteger(peers) || peers < 1) throw new InvalidArgumentError(`MemoryChannelGroup: peers must be an integer >= 1, got ${describeValue(peers)}`);
    this.members = Array.from({ length: peers }, (_, i) => new MemoryChannel(this, i, peers));
    this.channels = this.members;
  }

  /** Peer `index`'s channel (the same object on every call). */
  channel(index: number): PeerChannel {
    const member = this.members[index];
    if (!member) throw new InvalidArgumentError(`MemoryChannelGroup: no peer ${describeValue(index)}; indices go from 0 to ${this.peers - 1}`);
    return member;
  }

  /** Fails every peer with `error` (idempotent: the first error stays). */
  abort(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const member of this.members) {
      const waiting = member.waiting;
      member.waiting = undefined;
      waiting?.reject(error);
    }
    this.boxes.clear();
  }

  /** @internal Throws the group's failure. */
  usable(member: MemoryChannel, what: string): void {
    if (this.failure) throw this.failure;
    if (this.members[member.index] !== member) throw new InvalidStateError(`${what}() on a channel of another group`);
  }

  /** @internal Queues a message of superstep `step` for peer `to`. */
  post(step: number, to: number, pending: Pending): void {
    this.box(step)[to]!.push(pending);
  }

  /** @internal One more peer is in superstep `step`'s barrier; the last one releases all (synchronously, in order). */
  arrive(step: number): void {
    const count = (this.arrived.get(step) ?? 0) + 1;
    this.arrived.set(step, count);
    if (count < this.peers) return;
    const box = this.box(step);
    this.boxes.delete(step);
    this.arrived.delete(step);
    for (const member of this.members) {
      // Stable sort: by sender, then the order each sender sent in.
      member.delivered = box[member.index]!.sort((a, b) => a.from - b.from).map((p) => p.message);
      member.superstep = step + 1;
    }
    for (const member of this.members) {
      const waiting = member.waiting;
      member.waiting = undefined;
      waiting?.resolve();
    }
  }

  private box(step: number): Pending[][] {
    let box = this.boxes.get(step);
    if (!box) {
      box = Array.from({ length: this.peers }, () => []);
      this.boxes.set(step, box);
    }
    return box;
  }
}
