// Typed f32 <-> f16 conversion over arena slabs (f32_to_f16 / f16_to_f32), for sending gradients at half the bytes.
// Slabs are runs of f32 slots; an f16 slab packs two f16 values per slot (value j at byte ptr + 2j), so n f16
// values need float16Slots(n) = ceil(n / 2) slots. Offsets count values of each side's own type.
import { InvalidArgumentError, ShapeError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { describeValue } from "../util/describe.js";
import { describeSlab, requireOptions, requireSlab } from "./checks.js";

/** Which part of each slab a conversion reads and writes. */
export interface Float16Options {
  /** Values to convert. Default: the rest of the f32 side (src of toFloat16, dst of fromFloat16) after its offset. */
  count?: number;
  /** First value of dst converted into, in dst's own type (f16 for toFloat16, f32 for fromFloat16). Default 0. */
  dstOffset?: number;
  /** First value of src converted, in src's own type (f32 for toFloat16, f16 for fromFloat16). Default 0. */
  srcOffset?: number;
}

/** f32 slots a slab needs to hold `count` f16 values: ceil(count / 2). */
export function float16Slots(count: number): number {
  requireCount("float16Slots", "count", count);
  return Math.ceil(count / 2);
}

/**
 * A live Uint16Array of `count` f16 bit patterns over `slab` from f16 value `offset` (no copy: writes reach the
 * slab; take a new view after any allocation that may grow memory). Defaults: offset 0, count the rest of the slab.
 * Its bytes (new Uint8Array(view.buffer, view.byteOffset, view.byteLength)) are little-endian binary16.
 */
export function float16View(slab: Slab, offset = 0, count?: number): Uint16Array {
  requireSlab("float16View", "slab", slab);
  requireCount("float16View", "offset", offset);
  const n = count ?? Math.max(0, 2 * slab.length - offset);
  requireCount("float16View", "count", n);
  requireFits("float16View", "slab", slab, offset, n, 2);
  return new Uint16Array(slab.core.memory.buffer, slab.ptr + 2 * offset, n);
}

/**
 * f16 bits of f32 values: dst (f16 values) [dstOffset, +count) = src (f32) [srcOffset, +count), rounded to nearest
 * even (overflow to +-inf, subnormals, -0; NaN stays NaN, made quiet). Slabs must not overlap. Throws before
 * touching memory: InvalidArgumentError for a bad count or offset, ShapeError when a range passes its slab's end.
 */
export function toFloat16(core: Core, dst: Slab, src: Slab, options: Float16Options = {}): void {
  const [dstOffset, srcOffset, count] = ranges("toFloat16", core, dst, src, options, "src");
  core.exports.f32_to_f16(dst.ptr + 2 * dstOffset, src.ptr + 4 * srcOffset, count);
}

/**
 * f32 values of f16 bits: dst (f32) [dstOffset, +count) = src (f16 values) [srcOffset, +count), exactly (a NaN is
 * made quiet). Slabs must not overlap. Throws as toFloat16 does.
 */
export function fromFloat16(core: Core, dst: Slab, src: Slab, options: Float16Options = {}): void {
  const [dstOffset, srcOffset, count] = ranges("fromFloat16", core, dst, src, options, "dst");
  core.exports.f16_to_f32(dst.ptr + 4 * dstOffset, src.ptr + 2 * srcOffset, count);
}

// The checked [dstOffset, srcOffset, count] of a conversion whose f32 side is `f32Side` (the other holds f16 values,
// two per slot); the f32 side's length sets the default count.
function ranges(kernel: string, core: Core, dst: Slab, src: Slab, options: Float16Options, f32Side: "dst" | "src"): [number, number, number] {
  requireSlab(kernel, "dst", dst, core);
  requireSlab(kernel, "src", src, core);
  requireOptions(kernel, options);
  const { dstOffset = 0, srcOffset = 0 } = options;
  requireCount(kernel, "dstOffset", dstOffset);
  requireCount(kernel, "srcOffset", srcOffset);
  const count = options.count ?? Math.max(0, f32Side === "dst" ? dst.length - dstOffset : src.length - srcOffset);
  requireCount(kernel, "count", count);
  requireFits(kernel, "dst", dst, dstOffset, count, f32Side === "dst" ? 1 : 2);
  requireFits(kernel, "src", src, srcOffset, count, f32Side === "src" ? 1 : 2);
  return [dstOffset, srcOffset, count];
}

function requireCount(kernel: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${kernel}: ${name} must be an integer >= 0, got ${describeValue(value)}`);
  }
}

function requireFits(kernel: string, name: string, slab: Slab, offset: number, count: number, perSlot: number): void {
  const holds = slab.length * perSlot;
  if (offset + count <= holds) return;
  const type = perSlot === 2 ? "f16" : "f32";
  const hint = perSlot === 2 ? `; ${offset + count} f16 values need float16Slots(${offset + count}) = ${Math.ceil((offset + count) / 2)} slots` : "";
  throw new ShapeError(
    `${kernel}: ${describeSlab(name, slab)} holds ${holds} ${type} values, too few for ${count} from offset ${offset}${hint}`,
  );
}
