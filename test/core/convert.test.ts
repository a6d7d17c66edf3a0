// f32 <-> f16 conversion against the bit-level TypeScript reference: every one of the 65536 f16 patterns, f32 edge
// values (ties, overflow, subnormals, NaN payloads, -0) and a seeded random sweep of f32 bit patterns, over the
// edge lengths at unaligned offsets on both sides, neighbours untouched; then the wrappers' errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { float16Slots, float16View } from "../../src/core/convert.js";
import type { Kernels } from "../../src/core/kernels.js";
import * as ref from "../../src/core/reference/convert.js";
import { InvalidArgumentError, InvalidStateError, ShapeError } from "../../src/errors.js";
import type { Slab } from "../../src/runtime/arena.js";
import { EDGE_SIZES, kernelsFor, seededRandom, variantsToTest } from "../helpers.js";

/** [dstOffset, srcOffset] pairs, in values of each side's type: aligned, and unaligned on one side or both. */
const OFFSETS: ReadonlyArray<readonly [number, number]> = [[0, 0], [1, 0], [0, 1], [3, 5], [5, 3]];
const SENTINEL = 0xa5a5;
const TIMEOUT = { timeout: 60_000 };

/** f32 bit patterns where rounding to f16 has a boundary: ties, carries, overflow, subnormals, NaN, zeros. */
function f32EdgeBits(): Uint32Array {
  const out: number[] = [];
  const f = new Float32Array(1);
  const b = new Uint32Array(f.buffer);
  const bitsOf = (x: number): number => {
    f[0] = x;
    return b[0]!;
  };
  const values = [
    0, 1, 1.5, 2, 0.1, 1 / 3, 65504, 65505, 65519, 65519.99, 65520, 65536, 1e10, 3.4e38, 2 ** -14, 2 ** -24, 2 ** -25,
    2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -25, 2 ** -14 - 2 ** -25, 2 ** -14 - 2 ** -24, 2 ** -15, 1e-45, 1.1754942e-38,
    1.17549435e-38, Math.PI, Number.MAX_VALUE, Infinity,
  ];
  for (const v of values) out.push(bitsOf(v), bitsOf(-v));
  // Around every f16 value's halfway point: the tie itself and one f32 ulp either side, for a spread of exponents.
  for (let h = 0; h < 0x7c00; h += 0x3f) {
    const bits = bitsOf((ref.fromFloat16Bits(h) + ref.fromFloat16Bits(h + 1)) / 2);
    out.push(bits, bits + 1, bits - 1);
  }
  // NaNs: quiet and signalling, payload bits high and low, both signs; the infinities.
  for (const nan of [0x7fc00000, 0x7f800001, 0x7fa00000, 0x7f802000, 0x7f801fff, 0x7fffffff, 0x7f800000]) out.push(nan, (nan | 0x80000000) >>> 0);
  // f32 subnormals and the neighbours of each f32 exponent boundary near the f16 range.
  for (let e = 98; e <= 143; e++) out.push((e << 23) >>> 0, ((e << 23) - 1) >>> 0, ((e << 23) | 0x1000) >>> 0, ((e << 23) | 0x3000) >>> 0);
  out.push(1, 2, 0x7fffff, 0x400000);
  return Uint32Array.from(out, (x) => x >>> 0);
}

/** `count` seeded random f32 bit patterns, half of them with exponents in the f16 range. */
function randomBits(seed: number, count: number): Uint32Array {
  const random = seededRandom(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const bits = (random() * 2 ** 32) >>> 0;
    out[i] = i % 2 === 0 ? bits : (bits & 0x807fffff) | ((98 + Math.floor(random() * 48)) << 23);
  }
  return out;
}

/** Slabs dst and src with room for `count` values after `offset` (plus a tail), filled with the sentinel. */
function withPair<R>(kernels: Kernels, dstSlots: number, srcSlots: number, body: (dst: Slab, src: Slab) => R): R {
  const layout = kernels.arena.layout([{ name: "dst", length: dstSlots }, { name: "src", length: srcSlots }]);
  try {
    const [dst, src] = [layout.get("dst"), layout.get("src")];
    float16View(dst).fill(SENTINEL);
    float16View(src).fill(SENTINEL);
    return body(dst, src);
  } finally {
    kernels.arena.release(layout.block);
  }
}

/** The f16 halves at [0, offset) and [offset + count, end) of a view all hold the sentinel. */
function assertUntouched(view: Uint16Array, offset: number, count: number, label: string): void {
  for (let i = 0; i < view.length; i++) {
    if ((i < offset || i >= offset + count) && view[i] !== SENTINEL) assert.fail(`${label}: f16 slot ${i} outside [${offset}, ${offset + count}) was written`);
  }
}

/** Converts `input` (f32 bits) to f16 in chunks of every edge length at every offset pair, checking each bit. */
function checkToFloat16(kernels: Kernels, input: Uint32Array, label: string): void {
  for (const n of EDGE_SIZES) {
    for (const [dstOffset, srcOffset] of OFFSETS) {
      withPair(kernels, float16Slots(dstOffset + n + 3), srcOffset + n + 2, (dst, src) => {
        const expected = new Uint16Array(n);
        for (let start = 0; start < input.length; start += n) {
          const chunk = input.subarray(start, start + n);
          float16View(dst).fill(SENTINEL);
          new Uint32Array(kernels.core.memory.buffer, src.at(srcOffset), chunk.length).set(chunk);
          kernels.toFloat16(dst, src, { dstOffset, srcOffset, count: chunk.length });
          ref.toFloat16Reference(expected, chunk, chunk.length);
          const got = float16View(dst, dstOffset, chunk.length);
          for (let i = 0; i < chunk.length; i++) {
            if (got[i] !== expected[i]) {
              assert.fail(`${label} n=${n} offsets ${dstOffset}/${srcOffset}: f32 bits 0x${chunk[i]!.toString(16)} gave f16 0x${got[i]!.toString(16)}, expected 0x${expected[i]!.toString(16)}`);
            }
          }
          assertUntouched(float16View(dst), dstOffset, chunk.length, `${label} n=${n}`);
        }
      });
    }
  }
}

for (const variant of variantsToTest()) {
  describe(`f16 conversion (${variant} build)`, () => {
    test("fromFloat16 matches the reference bit for bit on all 65536 f16 patterns, at every edge length and offset", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
      const expected = new Uint32Array(65536);
      ref.fromFloat16Reference(expected, all, all.length);
      for (const n of [65536, ...EDGE_SIZES]) {
        for (const [dstOffset, srcOffset] of OFFSETS) {
          withPair(kernels, dstOffset + n + 1, float16Slots(srcOffset + n + 1), (dst, src) => {
            const guard = dst.toArray();
            for (let start = 0; start < all.length; start += n) {
              const chunk = all.subarray(start, start + n);
              dst.set(guard);
              float16View(src, srcOffset, chunk.length).set(chunk);
              kernels.fromFloat16(dst, src, { dstOffset, srcOffset, count: chunk.length });
              const got = new Uint32Array(kernels.core.memory.buffer, dst.at(dstOffset), chunk.length);
              for (let i = 0; i < chunk.length; i++) {
                if (got[i] !== expected[start + i]) {
                  assert.fail(`n=${n} offsets ${dstOffset}/${srcOffset}: f16 0x${chunk[i]!.toString(16)} gave f32 bits 0x${got[i]!.toString(16)}, expected 0x${expected[start + i]!.toString(16)}`);
                }
              }
              const after = new Uint32Array(kernels.core.memory.buffer, dst.ptr, dst.length);
              const guardBits = new Uint32Array(guard.buffer);
              for (let i = 0; i < dst.length; i++) {
                if ((i < dstOffset || i >= dstOffset + chunk.length) && after[i] !== guardBits[i]) assert.fail(`n=${n}: f32 slot ${i} was written`);
              }
            }
          });
        }
      }
    });

    test("toFloat16 matches the reference bit for bit on f32 edge values and a seeded random sweep", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      checkToFloat16(kernels, f32EdgeBits(), "edge values");
      checkToFloat16(kernels, randomBits(8080, 4096), "random bits");
      // One long run through the SIMD loop, at an odd f16 offset.
      const long = randomBits(8081, 1 << 16);
      withPair(kernels, float16Slots(long.length + 1), long.length, (dst, src) => {
        new Uint32Array(kernels.core.memory.buffer, src.ptr, long.length).set(long);
        kernels.toFloat16(dst, src, { dstOffset: 1 });
        const expected = new Uint16Array(long.length);
        ref.toFloat16Reference(expected, long, long.length);
        assert.deepEqual(float16View(dst, 1, long.length), expected);
      });
    });

    test("round trips: every finite f16 survives f16 -> f32 -> f16, and known values convert as IEEE says", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      withPair(kernels, 32768, 65536, (h, f) => {
        const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
        float16View(h).set(all);
        kernels.fromFloat16(f, h);
        float16View(h).fill(0);
        kernels.toFloat16(h, f);
        const back = float16View(h);
        for (let i = 0; i < 65536; i++) {
          const isNan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
          const want = isNan ? i | 0x200 : i;
          if (back[i] !== want) assert.fail(`f16 0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}, expected 0x${want.toString(16)}`);
        }
      });
      const cases: Array<[number, number]> = [
        [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [65519, 0x7bff], [1e6, 0x7c00], [-1e6, 0xfc00],
        [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [-0, 0x8000],
        [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [Infinity, 0x7c00], [-Infinity, 0xfc00], [Number.NaN, 0x7e00],
      ];
      for (const [value, bits] of cases) assert.equal(ref.toFloat16Bits(value), bits, `reference: ${value}`);
      withPair(kernels, float16Slots(cases.length), cases.length, (dst, src) => {
        src.set(cases.map(([value]) => value));
        kernels.toFloat16(dst, src);
        assert.deepEqual([...float16View(dst, 0, cases.length)], cases.map(([, bits]) => bits));
        kernels.fromFloat16(src, dst);
        assert.deepEqual([...src.toArray()].map((v) => Object.is(v, -0) ? "-0" : v), cases.map(([, bits]) => {
          const v = ref.fromFloat16Bits(bits);
          return Object.is(v, -0) ? "-0" : v;
        }));
        assert.ok(Number.isNaN(src.toArray()[cases.length - 1]!), "NaN stayed NaN");
      });
    });

    test("count defaults to the rest of the f32 side; count 0 writes nothing", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      withPair(kernels, 8, 9, (dst, src) => {
        src.set(Float32Array.from({ length: 9 }, (_, i) => i + 1));
        kernels.toFloat16(dst, src, { srcOffset: 2, dstOffset: 4 });
        assert.deepEqual([...float16View(dst, 4, 7)], [3, 4, 5, 6, 7, 8, 9].map(ref.toFloat16Bits));
        assertUntouched(float16View(dst), 4, 7, "default count");
        kernels.toFloat16(dst, src, { count: 0, dstOffset: 16, srcOffset: 9 });
        assertUntouched(float16View(dst), 4, 7, "count 0");
        src.f32().fill(-1);
        kernels.fromFloat16(src, dst, { srcOffset: 4, dstOffset: 3 });
        assert.deepEqual([...src.toArray()], [-1, -1, -1, 3, 4, 5, 6, 7, 8]);
      });
    });

    test("errors name the kernel, the argument and the sizes; a refused call writes nothing", TIMEOUT, async () => {
      const kernels = await kernelsFor(variant);
      withPair(kernels, 3, 7, (dst, src) => {
        const before = float16View(dst).slice();
        const shape = (pattern: RegExp) => (e: unknown) => e instanceof ShapeError && pattern.test(e.message);
        const argument = (pattern: RegExp) => (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message);
        assert.throws(() => kernels.toFloat16(dst, src), shape(
          /^toFloat16: dst \(3 values, slab dst\) holds 6 f16 values, too few for 7 from offset 0; 7 f16 values need float16Slots\(7\) = 4 slots$/));
        assert.throws(() => kernels.toFloat16(dst, src, { srcOffset: 2, count: 6 }), shape(/^toFloat16: src \(7 values, slab src\) holds 7 f32 values, too few for 6 from offset 2$/));
        assert.throws(() => kernels.fromFloat16(src, dst), shape(/^fromFloat16: src \(3 values, slab dst\) holds 6 f16 values, too few for 7 from offset 0/));
        assert.throws(() => kernels.toFloat16(dst, src, { count: -1 }), argument(/^toFloat16: count must be an integer >= 0, got the number -1$/));
        assert.throws(() => kernels.toFloat16(dst, src, { count: 1.5 }), argument(/^toFloat16: count/));
        assert.throws(() => kernels.fromFloat16(src, dst, { srcOffset: Number.NaN }), argument(/^fromFloat16: srcOffset must be an integer >= 0, got the number NaN$/));
        assert.throws(() => kernels.toFloat16(dst, src, { dstOffset: "1" as unknown as number }), argument(/^toFloat16: dstOffset/));
        assert.throws(() => kernels.toFloat16(dst, src, null as unknown as object), argument(/^toFloat16: options must be an object/));
        assert.throws(() => kernels.toFloat16(dst, new Float32Array(4) as unknown as Slab), argument(/^toFloat16: src must be a Slab/));
        assert.throws(() => float16Slots(-2), argument(/^float16Slots: count must be an integer >= 0, got the number -2$/));
        assert.throws(() => float16View(dst, 0, 7), shape(/^float16View: slab \(3 values, slab dst\) holds 6 f16 values, too few for 7 from offset 0/));
        assert.deepEqual(float16View(dst), before, "a refused call wrote to dst");
      });
      const released = kernels.arena.alloc(4, "gone");
      kernels.arena.release(released);
      withPair(kernels, 4, 4, (dst, src) => {
        assert.throws(() => kernels.toFloat16(released, src), (e: unknown) => e instanceof InvalidStateError && /^toFloat16: dst \(slab gone\) was released/.test((e as Error).message));
        assert.throws(() => kernels.fromFloat16(dst, released), (e: unknown) => e instanceof InvalidStateError && /^fromFloat16: src \(slab gone\)/.test((e as Error).message));
        assert.throws(() => float16View(released), InvalidStateError);
      });
      const other = await kernelsFor(variant, { shared: true });
      const foreign = other.arena.alloc(4, "foreign");
      try {
        withPair(kernels, 4, 4, (dst) => {
          assert.throws(() => kernels.toFloat16(dst, foreign), (e: unknown) => e instanceof InvalidArgumentError && /^toFloat16: src \(slab foreign\) belongs to another core/.test((e as Error).message));
        });
      } finally {
        other.arena.release(foreign);
      }
    });
  });
}
