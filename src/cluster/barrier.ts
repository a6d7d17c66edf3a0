// The barrier's bookkeeping for one peer: what arrived for each superstep (markers "superstep k done, I sent you c
// messages in f frames", complete messages, frames), and whether superstep k's barrier can be left. No coordinator:
// a peer leaves sync(k) when it holds every other peer's marker for k and every message those markers announce.
// Chunks are counted once each (by sender, message and index), so messages sent again after a reconnect are dropped.

/** A message delivered by sync(): who sent it (index and name) and its payload, by kind. */
export type BspMessage = { readonly from: number; readonly sender: string } & (
  | { readonly kind: "bytes"; readonly data: Uint8Array }
  | { readonly kind: "f32"; readonly data: Float32Array }
  | { readonly kind: "value"; readonly data: unknown }
);

/** A marker as the barrier keeps it. */
interface Announced {
  count: number;
  frames: number;
}

/** What arrived for one superstep, by sender index. */
export class StepInbox {
  readonly markers: (Announced | undefined)[];
  /** Complete messages, by sender, with their sequence numbers (delivery is sorted by sender, then sequence). */
  readonly messages: { seq: number; message: BspMessage }[] = [];
  readonly completed: number[];
  /** Frames attributed to each sender for this superstep, refused ones included (each chunk counted once). */
  readonly frames: number[];
  /** The chunks seen, as "sender/seq/index": a chunk sent again after a connection loss is dropped. */
  readonly #chunks = new Set<string>();

  constructor(peers: number) {
    this.markers = new Array(peers).fill(undefined);
    this.completed = new Array(peers).fill(0);
    this.frames = new Array(peers).fill(0);
  }

  /** Whether chunk `index` of message `seq` from `sender` is new here (and notes it); false for a repeat. */
  firstSight(sender: number, seq: number, index: number): boolean {
    const key = `${sender}/${seq}/${index}`;
    if (this.#chunks.has(key)) return false;
    this.#chunks.add(key);
    return true;
  }

  add(seq: number, message: BspMessage): void {
    this.messages.push({ seq, message });
    this.completed[message.from]!++;
  }

  /** The messages in delivery order: by sender index, then in the order each sender sent them. */
  delivery(): BspMessage[] {
    return this.messages.sort((a, b) => a.message.from - b.message.from || a.seq - b.seq).map((entry) => entry.message);
  }
}

/** The state of superstep k's barrier as seen by one peer. */
export type BarrierState =
  | { readonly kind: "complete" }
  | { readonly kind: "waiting"; readonly missing: number[] }
  /** A sender's marker arrived with all its frames counted, but fewer whole messages than announced (or more). */
  | { readonly kind: "damaged"; readonly sender: number; readonly announced: number; readonly arrived: number };

/** The per-superstep inboxes of one peer. */
export class Barrier {
  readonly #boxes = new Map<number, StepInbox>();
  readonly #peers: number;
  readonly #self: number;

  constructor(peers: number, self: number) {
    this.#peers = peers;
    this.#self = self;
  }

  /** The inbox of superstep `step` (created on first use). */
  box(step: number): StepInbox {
    let box = this.#boxes.get(step);
    if (!box) {
      box = new StepInbox(this.#peers);
      this.#boxes.set(step, box);
    }
    return box;
  }

  /** Whether superstep `step`'s barrier can be left, is still waiting (for whom), or lost a message. */
  state(step: number): BarrierState {
    const box = this.box(step);
    const missing: number[] = [];
    for (let j = 0; j < this.#peers; j++) {
      if (j === this.#self) continue;
      const marker = box.markers[j];
      const arrived = box.completed[j]!;
      if (marker === undefined || arrived < marker.count) {
        if (marker !== undefined && box.frames[j]! >= marker.frames) return { kind: "damaged", sender: j, announced: marker.count, arrived };
        missing.push(j);
      } else if (arrived > marker.count) {
        return { kind: "damaged", sender: j, announced: marker.count, arrived };
      }
    }
    return missing.length === 0 ? { kind: "complete" } : { kind: "waiting", missing };
  }

  /** Removes and returns superstep `step`'s inbox (at the end of its sync). */
  take(step: number): StepInbox {
    const box = this.box(step);
    this.#boxes.delete(step);
    return box;
  }

  /** Drops every inbox (on close or failure). */
  clear(): void {
    this.#boxes.clear();
  }
}
