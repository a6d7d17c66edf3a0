// The dropout mask kernel against its reference (exactly: it is integer hashing), its keep rate and scaling,
// band independence (any thread can make any band), and the elementwise product.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dropoutMaskReference, mulReference } from "../../src/core/reference/dropout.js";
import { EDGE_SIZES, kernelsFor, randomArray, seededRandom, variantsToTest } from "../helpers.js";

for (const variant of variantsToTest()) {
  describe(`dropout kernels (${variant} build)`, () => {
    test("f32_dropout_mask equals the reference bit for bit over edge lengths, seeds and offsets", async () => {
      const kernels = await kernelsFor(variant);
      for (const n of EDGE_SIZES) for (const [keep, seed, offset] of [[0.5, 1, 0], [0.8, -7, 1000], [0.99, 123456789, 5], [1, 3, 0]] as const) {
        const mask = kernels.arena.alloc(n);
        kernels.core.exports.f32_dropout_mask(mask.ptr, n, keep, seed, offset);
        const expected = new Float32Array(n);
        dropoutMaskReference(expected, n, keep, seed, offset);
        assert.deepEqual(mask.toArray(), expected, `n=${n} keep=${keep} seed=${seed} offset=${offset}`);
        kernels.arena.release(mask);
      }
    });

    test("keeps about `keep` of the units, scaled by 1/keep; a band equals the same slice of the whole mask", async () => {
      const kernels = await kernelsFor(variant);
      const n = 100000;
      const whole = kernels.arena.alloc(n);
      kernels.core.exports.f32_dropout_mask(whole.ptr, n, 0.7, 42, 0);
      const values = whole.toArray();
      const kept = values.filter((v) => v !== 0);
      assert.ok(Math.abs(kept.length / n - 0.7) < 0.01, `kept ${kept.length / n}`);
      assert.ok(kept.every((v) => v === Math.fround(1 / Math.fround(0.7))));
      const band = kernels.arena.alloc(333);
      kernels.core.exports.f32_dropout_mask(band.ptr, 333, 0.7, 42, 5000);
      assert.deepEqual(band.toArray(), values.slice(5000, 5333));
      for (const s of [whole, band]) kernels.arena.release(s);
    });

    test("f32_mul multiplies elementwise over edge lengths", async () => {
      const kernels = await kernelsFor(variant);
      const random = seededRandom(12);
      for (const n of EDGE_SIZES) {
        const x = randomArray(random, n);
        const y = randomArray(random, n);
        const sx = kernels.arena.alloc(n).set(x);
        const sy = kernels.arena.alloc(n).set(y);
        kernels.core.exports.f32_mul(sy.ptr, sx.ptr, n);
        mulReference(y, x, n);
        assert.deepEqual(sy.toArray(), y, `n=${n}`);
        kernels.arena.release(sx);
        kernels.arena.release(sy);
      }
    });
  });
}
