// A BspPeer (the BSP engine over NATS) seen as a PeerChannel, so a ClusterGradientExchange can run over NATS:
// f32 tensors go as BSP f32 messages, f16 bit patterns as BSP bytes (little-endian binary16, the host's order on
// every engine downpour runs on), small objects as msgpack values.
import type { BspMessage, BspPeer } from "./bsp.js";
import type { ChannelMessage, ChannelValue, PeerChannel } from "./channel.js";
import { type ChannelPayload, requireObject } from "./channel.js";
import { MessageError } from "./errors.js";

/** The part of BspPeer a BspChannel uses. */
export type BspChannelPeer = Pick<BspPeer, "index" | "peers" | "job" | "subject" | "send" | "sync" | "messages"> & Partial<Pick<BspPeer, "recycle">>;

/**
 * `peer` as a PeerChannel. send() copies (BspPeer.send encodes into frames before returning) and publishes at once;
 * sync() is the peer's barrier (rejecting as it does: BarrierTimeoutError, PeerLostError, MessageError); messages()
 * maps the peer's delivery, in its order (sender index, then send order), without copying tensors.
 */
export class BspChannel implements PeerChannel {
  constructor(readonly peer: BspChannelPeer) {}

  get index(): number {
    return this.peer.index;
  }

  get peers(): number {
    return this.peer.peers;
  }

  send(to: number, payload: ChannelPayload): void {
    if (payload instanceof Uint16Array) this.peer.send(to, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
    else if (payload instanceof Float32Array) this.peer.send(to, payload);
    else {
      requireObject(payload);
      this.peer.send(to, payload);
    }
  }

  sync(): Promise<void> {
    return this.peer.sync();
  }

  *messages(): Iterable<ChannelMessage> {
    for (const message of this.peer.messages()) yield this.#message(message);
  }

  /** The peer's recycle(), when it has one: the buffers of the delivered messages may hold later ones. */
  recycle(): void {
    this.peer.recycle?.();
  }

  /** One BSP message as a channel message; a bytes message of odd length or a value that is no object is refused. */
  #message(message: BspMessage): ChannelMessage {
    const from = message.from;
    if (message.kind === "f32") return { from, kind: "f32", data: message.data };
    if (message.kind === "bytes") {
      const bytes = message.data;
      if (bytes.byteLength % 2 !== 0) this.#refuse(message, "length", `${bytes.byteLength} bytes of f16 values (an odd count)`);
      const own = bytes.byteOffset % 2 === 0 ? bytes : new Uint8Array(bytes);
      return { from, kind: "f16", data: new Uint16Array(own.buffer, own.byteOffset, own.byteLength / 2) };
    }
    const data = message.data;
    if (typeof data !== "object" || data === null || Array.isArray(data)) this.#refuse(message, "value", "a value that is not an object");
    return { from, kind: "value", data: data as { readonly [key: string]: ChannelValue } };
  }

  #refuse(message: BspMessage, field: string, what: string): never {
    throw new MessageError(what, { sender: message.sender, field, subject: this.peer.subject }, this.peer.job);
  }
}
