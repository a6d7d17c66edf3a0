// The arena: alignment, zero-fill, reuse and coalescing of freed slabs, growth, exhaustion and layout tables.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Arena } from "../../src/runtime/arena.js";
import { ArenaExhaustedError, DownpourError } from "../../src/errors.js";
import { kernelsFor, seededRandom } from "../helpers.js";

async function freshArena(maxBytes?: number): Promise<Arena> {
  const kernels = await kernelsFor("simd");
  // A second arena over the same memory would collide; tests use a fresh core per arena instead.
  const { Kernels } = await import("../../src/core/kernels.js");
  return (await Kernels.load({ variant: kernels.core.variant, maxBytes })).arena;
}

describe("arena", () => {
  test("slabs are 64-byte aligned, zero-filled, disjoint and start above the core's data", async () => {
    const arena = await freshArena();
    const slabs = [1, 3, 16, 17, 1000].map((n) => arena.alloc(n));
    for (const s of slabs) {
      assert.equal(s.ptr % 64, 0);
      assert.ok(s.ptr >= arena.core.heapBase);
      assert.ok(s.f32().every((v) => v === 0));
      s.f32().fill(s.length);
    }
    for (const s of slabs) assert.ok(s.f32().every((v) => v === s.length), `slab of ${s.length} was overwritten`);
  });

  test("freed memory is reused and neighbouring free blocks coalesce", async () => {
    const arena = await freshArena();
    const a = arena.alloc(16);
    const b = arena.alloc(16);
    const c = arena.alloc(16);
    const guard = arena.alloc(16);
    arena.release(a);
    arena.release(c);
    arena.release(b);
    const big = arena.alloc(48); // fits only if a, b and c merged
    assert.equal(big.ptr, a.ptr);
    assert.ok(big.f32().every((v) => v === 0), "reused memory is zero-filled");
    assert.throws(() => arena.release(a), DownpourError);
    assert.equal(arena.usedBytes, big.bytes + guard.bytes);
  });

  test("random alloc/release keeps live slabs intact", async () => {
    const arena = await freshArena();
    const random = seededRandom(3);
    const live: { slab: ReturnType<Arena["alloc"]>; tag: number }[] = [];
    for (let step = 0; step < 400; step++) {
      if (live.length && random() < 0.45) {
        const { slab, tag } = live.splice(Math.floor(random() * live.length), 1)[0]!;
        assert.ok(slab.f32().every((v) => v === tag), `slab ${tag} corrupted`);
        arena.release(slab);
      } else {
        const slab = arena.alloc(1 + Math.floor(random() * 300));
        slab.f32().fill(step);
        live.push({ slab, tag: step });
      }
    }
    for (const { slab, tag } of live) assert.ok(slab.f32().every((v) => v === tag));
  });

  test("grows memory on demand and throws ArenaExhaustedError past its maximum", async () => {
    const arena = await freshArena(8 << 20);
    const before = arena.core.memory.buffer.byteLength;
    const big = arena.alloc(1 << 20); // 4 MiB
    assert.ok(arena.core.memory.buffer.byteLength > before);
    big.f32()[big.length - 1] = 7;
    assert.equal(big.toArray()[big.length - 1], 7);
    assert.throws(() => arena.alloc(2 << 20), (e: Error) => e instanceof ArenaExhaustedError && /needs 8 MiB/.test(e.message));
  });

  test("a layout table places named slabs contiguously in order", async () => {
    const arena = await freshArena();
    const layout = arena.layout([
      { name: "w1", length: 784 * 128 },
      { name: "b1", length: 128 },
      { name: "w2", length: 128 * 10 },
      { name: "b2", length: 10 },
    ]);
    const [w1, b1, w2, b2] = ["w1", "b1", "w2", "b2"].map((n) => layout.get(n));
    assert.equal(w1!.ptr, layout.block.ptr);
    assert.ok(w1!.ptr < b1!.ptr && b1!.ptr < w2!.ptr && w2!.ptr < b2!.ptr);
    assert.ok(b2!.ptr + 4 * b2!.length <= layout.block.ptr + 4 * layout.block.length);
    assert.equal(b1!.ptr, w1!.ptr + w1!.bytes);
    assert.throws(() => layout.get("w3"), /has w1, b1, w2, b2/);
  });
});
