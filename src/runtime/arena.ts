// The memory arena: hands out 64-byte-aligned f32 slabs of the core's linear memory (first fit, coalescing free),
// grows the memory on demand up to its maximum, and lays out named slabs in one block (the layout table).
import { DownpourError, InvalidArgumentError, InvalidStateError, MemoryLimitError, ShapeError } from "../errors.js";
import { formatBytes } from "../util/bytes.js";
import { describeValue } from "../util/describe.js";
import { Core, MAX_PAGES, PAGE_BYTES } from "./core.js";

const ALIGN = 64;

/** The most memory an arena can use: a WebAssembly memory's maximum (4 GiB). Larger maxBytes are capped to it. */
export const MAX_ARENA_BYTES = MAX_PAGES * PAGE_BYTES;

/** The arena's limit when ArenaOptions.maxBytes is not given: 1 GiB. */
export const DEFAULT_ARENA_BYTES = 1 << 30;

function alignUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

/** Whether a slab's memory is still allocated; one lease is shared by a layout's block and its entries' slabs. */
class Lease {
  released = false;
}

/**
 * A run of f32 values in the core's memory. `ptr` is a byte offset; views are recreated after memory grows.
 * Once released (Arena.release, or the release of the layout block it belongs to) every access throws
 * InvalidStateError naming the slab.
 */
export class Slab {
  private readonly lease: Lease;

  constructor(
    /** The core whose memory holds the slab. */
    readonly core: Core,
    /** Byte offset into linear memory (64-byte aligned). */
    readonly ptr: number,
    /** Number of f32 elements. */
    readonly length: number,
    /** Name from a layout table, or "" for a plain allocation. */
    readonly name = "",
    /** The block's lease when the slab is part of a layout block; else its own. */
    lease?: Lease,
  ) {
    this.lease = lease ?? new Lease();
  }

  /** Whether the slab's memory was released: it must not be used any more (every access throws). */
  get released(): boolean {
    return this.lease.released;
  }

  /** "w0", or "of 12 floats at byte 4096" for a slab without a name: what error messages call the slab. */
  get label(): string {
    return this.name || `of ${this.length} floats at byte ${this.ptr}`;
  }

  /** Throws InvalidStateError naming the slab and `use` (what was tried) when the slab was released. */
  requireLive(use: string): void {
    if (this.lease.released) {
      throw new InvalidStateError(`slab ${this.label} was released; ${use} would read or write memory that may now hold other data`);
    }
  }

  /** A live Float32Array over the slab (no copy); take a new one after any allocation that may grow memory. */
  f32(): Float32Array {
    this.requireLive("f32()");
    return this.core.f32().subarray(this.ptr >>> 2, (this.ptr >>> 2) + this.length);
  }

  /** Copies `values` (a typed array or an array of numbers) into the slab, starting at element `offset`. */
  set(values: ArrayLike<number>, offset = 0): this {
    this.requireLive("set()");
    if (!ArrayBuffer.isView(values) && !Array.isArray(values)) {
      throw new InvalidArgumentError(`slab ${this.label}: set() takes a typed array or an array of numbers, got ${describeValue(values)}`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + values.length > this.length) {
      throw new ShapeError(`slab${this.name ? ` ${this.name}` : ""}: cannot write ${values.length} values at ${offset} into ${this.length}`);
    }
    this.f32().set(values, offset);
    return this;
  }

  /** A copy of the slab's values. */
  toArray(): Float32Array {
    this.requireLive("toArray()");
    return this.f32().slice();
  }

  /** Byte offset of element `index` (0 <= index <= length: the end is allowed). */
  at(index: number): number {
    this.requireLive("at()");
    if (!Number.isInteger(index) || index < 0 || index > this.length) {
      throw new InvalidArgumentError(`slab ${this.label}: at() takes an element index from 0 to ${this.length}, got ${describeValue(index)}`);
    }
    return this.ptr + 4 * index;
  }

  /** Byte length rounded to the arena's alignment. */
  get bytes(): number {
    return alignUp(this.length * 4);
  }

  /** Marks the slab (and, for a layout block, each of its entries) released. Arena.release calls it. */
  markReleased(): void {
    this.lease.released = true;
  }

  /** A slab of `length` values at byte `ptr` sharing this slab's lease: released with it (a layout entry). */
  part(ptr: number, length: number, name: string): Slab {
    return new Slab(this.core, ptr, length, name, this.lease);
  }

  /** Whether `other` is part of this slab's block (they share the lease). */
  sharesLeaseWith(other: Slab): boolean {
    return this.lease === other.lease;
  }
}

/** One entry of a layout table: a named slab of `length` f32 values. */
export interface LayoutEntry {
  name: string;
  length: number;
}

/** Bytes of the block Arena.layout allocates for `entries` (each entry padded to the arena's alignment). */
export function layoutBytes(entries: ReadonlyArray<LayoutEntry>): number {
  return entries.reduce((sum, entry) => sum + alignUp(entry.length * 4), 0);
}

/** Named slabs that are contiguous in one block, as in llm.c's parameter layout. */
export class Layout {
  constructor(
    /** The whole block. */
    readonly block: Slab,
    /** Each entry's slab, in table order. */
    readonly slabs: ReadonlyArray<Slab>,
  ) {}

  /** The slab called `name`. */
  get(name: string): Slab {
    const slab = this.slabs.find((s) => s.name === name);
    if (!slab) throw new DownpourError(`layout has no slab named ${name}; it has ${this.slabs.map((s) => s.name).join(", ")}`);
    return slab;
  }
}

/** Options of new Arena. */
export interface ArenaOptions {
  /**
   * The memory limit: the most bytes the arena's slabs may take, a number > 0. Default 1 GiB
   * (DEFAULT_ARENA_BYTES); values above 4 GiB, WebAssembly's maximum (MAX_ARENA_BYTES), are capped to it.
   * Kernels.load also sizes the core's memory maximum from it.
   */
  maxBytes?: number;
}

/** The maxBytes option checked and capped: see ArenaOptions.maxBytes. */
export function arenaLimit(maxBytes: number | undefined): number {
  if (maxBytes === undefined) return DEFAULT_ARENA_BYTES;
  if (typeof maxBytes !== "number" || Number.isNaN(maxBytes) || maxBytes <= 0) {
    throw new InvalidArgumentError(`maxBytes must be a number of bytes > 0 (the memory limit), got ${describeValue(maxBytes)}`);
  }
  return Math.min(maxBytes, MAX_ARENA_BYTES);
}

/** " (raise it with Kernels.load({ maxBytes }) up to 4 GiB)", or why it cannot be raised: the end of a memory-limit message. */
export function raiseLimitHint(limitBytes: number): string {
  return limitBytes < MAX_ARENA_BYTES
    ? ` (raise it with Kernels.load({ maxBytes }) up to ${formatBytes(MAX_ARENA_BYTES)})`
    : ` (${formatBytes(MAX_ARENA_BYTES)} is the most a WebAssembly memory can hold)`;
}

interface FreeBlock {
  start: number;
  bytes: number;
}

/** Allocates slabs in a core's memory. Not thread-safe: allocate from one thread; workers only compute. */
export class Arena {
  private readonly free: FreeBlock[] = [];
  private readonly live = new Map<number, { slab: Slab; bytes: number }>();
  private top: number;
  readonly base: number;
  readonly maxBytes: number;

  /** An arena over `core`'s memory above its own data. Throws InvalidArgumentError for a bad core or maxBytes. */
  constructor(
    readonly core: Core,
    options: ArenaOptions = {},
  ) {
    if (!(core instanceof Core)) throw new InvalidArgumentError(`new Arena: core must be a Core (from loadCore()), got ${describeValue(core)}`);
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError(`new Arena: options must be an object like { maxBytes }, got ${describeValue(options)}`);
    }
    this.base = alignUp(core.heapBase);
    this.top = this.base;
    this.maxBytes = arenaLimit(options.maxBytes);
  }

  /** Bytes in live allocations. */
  get usedBytes(): number {
    let sum = 0;
    for (const { bytes } of this.live.values()) sum += bytes;
    return sum;
  }

  /**
   * A new slab of `length` f32 values, zero-filled. Grows memory if needed; throws MemoryLimitError (an
   * ArenaExhaustedError) past maxBytes, naming `what` (default: the slab's name, else "N floats").
   */
  alloc(length: number, name = "", what = name || `${length} floats`): Slab {
    if (!Number.isInteger(length) || length < 0) throw new ShapeError(`arena: slab length must be a non-negative integer, got ${length}`);
    const bytes = alignUp(Math.max(length, 1) * 4);
    const start = this.takeFree(bytes) ?? this.takeTop(bytes, what);
    const slab = new Slab(this.core, start, length, name);
    this.live.set(start, { slab, bytes });
    slab.f32().fill(0);
    return slab;
  }

  /**
   * Returns a slab's memory to the arena and marks it released: any later use of it (f32, set, toArray, at, a
   * kernel) throws InvalidStateError. Releasing a layout's block releases every slab of the layout. Throws
   * InvalidStateError for a slab released already, InvalidArgumentError for one of a layout (release its block)
   * or of another arena.
   */
  release(slab: Slab): void {
    if (!(slab instanceof Slab)) throw new InvalidArgumentError(`release: expected a Slab, got ${describeValue(slab)}`);
    if (slab.released) throw new InvalidStateError(`release: slab ${slab.label} was released already; a slab is released once`);
    const entry = this.live.get(slab.ptr);
    if (entry?.slab !== slab) {
      const block = Array.from(this.live.values(), (e) => e.slab).find((live) => live.sharesLeaseWith(slab));
      if (block) throw new InvalidArgumentError(`release: slab ${slab.label} is part of the layout block ${block.label}; release the block (layout.block)`);
      throw new InvalidArgumentError(`release: slab ${slab.label} belongs to another arena (another Kernels instance or core)`);
    }
    this.live.delete(slab.ptr);
    slab.markReleased();
    this.insertFree({ start: slab.ptr, bytes: entry.bytes });
  }

  /**
   * One block holding every entry's slab contiguously, in order. `what` names it in MemoryLimitError messages
   * (default: its entries' names). Releasing the block (Arena.release(layout.block)) releases every slab.
   */
  layout(entries: ReadonlyArray<LayoutEntry>, what = `the tensors ${entries.map((e) => e.name).join(", ")}`): Layout {
    const offsets: number[] = [];
    let total = 0;
    for (const entry of entries) {
      offsets.push(total);
      total += alignUp(entry.length * 4) / 4;
    }
    const block = this.alloc(total, "layout", what);
    const slabs = entries.map((entry, i) => block.part(block.ptr + 4 * offsets[i]!, entry.length, entry.name));
    return new Layout(block, slabs);
  }

  private takeFree(bytes: number): number | undefined {
    const index = this.free.findIndex((block) => block.bytes >= bytes);
    if (index < 0) return undefined;
    const block = this.free[index]!;
    const start = block.start;
    if (block.bytes === bytes) this.free.splice(index, 1);
    else this.free[index] = { start: start + bytes, bytes: block.bytes - bytes };
    return start;
  }

  private takeTop(bytes: number, what: string): number {
    const start = this.top;
    const end = start + bytes;
    if (end - this.base > this.maxBytes) throw this.limitError(bytes, what);
    this.ensureMemory(end, bytes, what);
    this.top = end;
    return start;
  }

  // The MemoryLimitError of an allocation of `bytes` for `what` that does not fit, in plain words.
  private limitError(bytes: number, what: string): MemoryLimitError {
    const limit = this.maxBytes;
    const reason =
      bytes > limit
        ? `more than the ${formatBytes(limit)} memory limit`
        : `more than is free: ${formatBytes(this.usedBytes)} of the ${formatBytes(limit)} memory limit are in use`;
    return new MemoryLimitError(`not enough memory: needs ${formatBytes(bytes)} for ${what}, ${reason}${raiseLimitHint(limit)}`, {
      neededBytes: bytes,
      limitBytes: limit,
      what,
    });
  }

  private ensureMemory(end: number, bytes: number, what: string): void {
    const memory = this.core.memory;
    const have = memory.buffer.byteLength;
    if (end <= have) return;
    try {
      memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    } catch (cause) {
      const message = `not enough memory: needs ${formatBytes(bytes)} for ${what}, but the memory could not grow to ${formatBytes(end)} (${(cause as Error).message}); the memory limit is ${formatBytes(this.maxBytes)}`;
      throw new MemoryLimitError(message, { neededBytes: bytes, limitBytes: this.maxBytes, what }, { cause });
    }
  }

  private insertFree(block: FreeBlock): void {
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < block.start) i++;
    this.free.splice(i, 0, block);
    this.coalesce(Math.max(0, i - 1));
    const last = this.free[this.free.length - 1];
    if (last && last.start + last.bytes === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }

  private coalesce(from: number): void {
    for (let i = from; i + 1 < this.free.length; ) {
      const a = this.free[i]!;
      const b = this.free[i + 1]!;
      if (a.start + a.bytes === b.start) {
        a.bytes += b.bytes;
        this.free.splice(i + 1, 1);
      } else if (i > from) break;
      else i++;
    }
  }
}
