// The memory arena: hands out 64-byte-aligned f32 slabs of the core's linear memory (first fit, coalescing free),
// grows the memory on demand up to its maximum, and lays out named slabs in one block (the layout table).
import { ArenaExhaustedError, DownpourError, ShapeError } from "../errors.js";
import { PAGE_BYTES, type Core } from "./core.js";

const ALIGN = 64;

function alignUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

/** A run of f32 values in the core's memory. `ptr` is a byte offset; views are recreated after memory grows. */
export class Slab {
  constructor(
    private readonly core: Core,
    /** Byte offset into linear memory (64-byte aligned). */
    readonly ptr: number,
    /** Number of f32 elements. */
    readonly length: number,
    /** Name from a layout table, or "" for a plain allocation. */
    readonly name = "",
  ) {}

  /** A live Float32Array over the slab (no copy); take a new one after any allocation that may grow memory. */
  f32(): Float32Array {
    return this.core.f32().subarray(this.ptr >>> 2, (this.ptr >>> 2) + this.length);
  }

  /** Copies `values` into the slab, starting at element `offset`. */
  set(values: ArrayLike<number>, offset = 0): this {
    if (offset < 0 || offset + values.length > this.length) {
      throw new ShapeError(`slab${this.name ? ` ${this.name}` : ""}: cannot write ${values.length} values at ${offset} into ${this.length}`);
    }
    this.f32().set(values, offset);
    return this;
  }

  /** A copy of the slab's values. */
  toArray(): Float32Array {
    return this.f32().slice();
  }

  /** Byte offset of element `index`. */
  at(index: number): number {
    return this.ptr + 4 * index;
  }

  /** Byte length rounded to the arena's alignment. */
  get bytes(): number {
    return alignUp(this.length * 4);
  }
}

/** One entry of a layout table: a named slab of `length` f32 values. */
export interface LayoutEntry {
  name: string;
  length: number;
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
  /** Largest memory the arena may grow to, in bytes. Default: the memory's maximum, else 1 GiB. */
  maxBytes?: number;
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

  constructor(
    readonly core: Core,
    options: ArenaOptions = {},
  ) {
    this.base = alignUp(core.heapBase);
    this.top = this.base;
    this.maxBytes = options.maxBytes ?? 1 << 30;
  }

  /** Bytes in live allocations. */
  get usedBytes(): number {
    let sum = 0;
    for (const { bytes } of this.live.values()) sum += bytes;
    return sum;
  }

  /** A new slab of `length` f32 values, zero-filled. Grows memory if needed; throws ArenaExhaustedError past maxBytes. */
  alloc(length: number, name = ""): Slab {
    if (!Number.isInteger(length) || length < 0) throw new ShapeError(`arena: slab length must be a non-negative integer, got ${length}`);
    const bytes = alignUp(Math.max(length, 1) * 4);
    const start = this.takeFree(bytes) ?? this.takeTop(bytes, name || `${length} floats`);
    const slab = new Slab(this.core, start, length, name);
    this.live.set(start, { slab, bytes });
    slab.f32().fill(0);
    return slab;
  }

  /** Returns a slab's memory to the arena. The slab must not be used afterwards. */
  release(slab: Slab): void {
    const entry = this.live.get(slab.ptr);
    if (entry?.slab !== slab) {
      throw new DownpourError(`arena: slab${slab.name ? ` ${slab.name}` : ""} at ${slab.ptr} is not live (released twice, part of a layout, or from another arena)`);
    }
    this.live.delete(slab.ptr);
    this.insertFree({ start: slab.ptr, bytes: entry.bytes });
  }

  /** One block holding every entry's slab contiguously, in order. */
  layout(entries: ReadonlyArray<LayoutEntry>): Layout {
    const offsets: number[] = [];
    let total = 0;
    for (const entry of entries) {
      offsets.push(total);
      total += alignUp(entry.length * 4) / 4;
    }
    const block = this.alloc(total, "layout");
    const slabs = entries.map((entry, i) => new Slab(this.core, block.ptr + 4 * offsets[i]!, entry.length, entry.name));
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
    if (end - this.base > this.maxBytes) {
      throw new ArenaExhaustedError(
        `arena exhausted: ${what} needs ${bytes} bytes, but only ${this.maxBytes - (start - this.base)} of ${this.maxBytes} remain`,
      );
    }
    this.ensureMemory(end, what);
    this.top = end;
    return start;
  }

  private ensureMemory(end: number, what: string): void {
    const memory = this.core.memory;
    const have = memory.buffer.byteLength;
    if (end <= have) return;
    try {
      memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    } catch (cause) {
      throw new ArenaExhaustedError(`arena exhausted: cannot grow memory to ${end} bytes for ${what}`, { cause });
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
