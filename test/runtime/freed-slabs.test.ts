// Released slabs refuse every access by name (their memory may already hold another slab), layout entries are
// released with their block, and a second release says so clearly.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { matrix } from "../../src/core/matrix.js";
import { InvalidArgumentError, InvalidStateError } from "../../src/errors.js";
import { randomArray, seededRandom } from "../helpers.js";

/** InvalidStateError whose message names the slab and says it was released. */
function released(name: string): (e: unknown) => boolean {
  return (e) => e instanceof InvalidStateError && new RegExp(`slab ${name} was released`).test(e.message);
}

describe("released slabs", () => {
  test("f32, set, toArray and at throw InvalidStateError naming the slab", async () => {
    const kernels = await Kernels.load();
    const slab = kernels.arena.alloc(8, "w0");
    kernels.arena.release(slab);
    assert.equal(slab.released, true);
    assert.throws(() => slab.f32(), released("w0"));
    assert.throws(() => slab.set([1, 2]), released("w0"));
    assert.throws(() => slab.toArray(), released("w0"));
    assert.throws(() => slab.at(0), released("w0"));
  });

  test("a slab without a name is named by its size and place", async () => {
    const kernels = await Kernels.load();
    const slab = kernels.arena.alloc(12);
    kernels.arena.release(slab);
    assert.throws(() => slab.f32(), released(`of 12 floats at byte ${slab.ptr}`));
  });

  test("a second release throws the same clear error, and the arena is unchanged by it", async () => {
    const kernels = await Kernels.load();
    const slab = kernels.arena.alloc(16, "g");
    const other = kernels.arena.alloc(16);
    kernels.arena.release(slab);
    const used = kernels.arena.usedBytes;
    assert.throws(() => kernels.arena.release(slab), (e: unknown) => e instanceof InvalidStateError && /^release: slab g was released already/.test((e as Error).message));
    assert.equal(kernels.arena.usedBytes, used);
    kernels.arena.release(other);
  });

  test("releasing a layout's block releases each of its slabs; an entry alone cannot be released", async () => {
    const kernels = await Kernels.load();
    const layout = kernels.arena.layout([
      { name: "w0", length: 6 },
      { name: "b0", length: 3 },
    ]);
    assert.throws(() => kernels.arena.release(layout.get("b0")), (e: unknown) => e instanceof InvalidArgumentError && /b0 is part of the layout block/.test((e as Error).message));
    assert.equal(layout.get("w0").released, false);
    kernels.arena.release(layout.block);
    for (const name of ["w0", "b0"]) {
      assert.equal(layout.get(name).released, true);
      assert.throws(() => layout.get(name).toArray(), released(name));
    }
  });

  test("kernels refuse a released slab and leave the slab that reused its memory unchanged", async () => {
    const kernels = await Kernels.load();
    const random = seededRandom(5);
    const old = kernels.arena.alloc(16, "old");
    const x = kernels.arena.alloc(16, "x").set(randomArray(random, 16));
    const oldMatrix = matrix(old, 4, 4);
    kernels.arena.release(old);
    const reused = kernels.arena.alloc(16, "reused").set(randomArray(random, 16));
    assert.equal(reused.ptr, old.ptr, "the test needs the new slab to take the freed memory");
    const before = reused.toArray();
    const calls: Array<[string, () => void]> = [
      ["fill", () => kernels.fill(old, 0)],
      ["scale", () => kernels.scale(old, 2)],
      ["axpy", () => kernels.axpy(old, x, 1)],
      ["copy", () => kernels.copy(old, x)],
      ["sigmoid", () => kernels.sigmoid(oldMatrix, matrix(x, 4, 4))],
      ["softmax", () => kernels.softmax(oldMatrix, oldMatrix)],
      ["gemm", () => kernels.gemm(oldMatrix, matrix(x, 4, 4), matrix(x, 4, 4))],
      ["squaredError", () => kernels.squaredError(undefined, oldMatrix, matrix(x, 4, 4))],
      ["sgdUpdate", () => kernels.sgdUpdate(old, undefined, x)],
      ["matrix", () => matrix(old, 4, 4)],
    ];
    for (const [name, call] of calls) {
      assert.throws(call, (e: unknown) => e instanceof InvalidStateError && /old/.test((e as Error).message) && /released/.test((e as Error).message), name);
    }
    assert.deepEqual(reused.toArray(), before, "a call on the released slab wrote into the memory that reused it");
  });
});
