// Test helpers shared by every suite: seeded randomness, tolerant comparison, and cores of each build.
import assert from "node:assert/strict";
import { Kernels, type KernelsOptions } from "../src/core/kernels.js";
import { engineHasRelaxedSimd, type CoreVariant } from "../src/runtime/variants.js";
import { mulberry32 } from "../src/util/random.js";

/** The edge sizes every kernel is swept over. */
export const EDGE_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257] as const;

/** The core builds this engine runs: plain SIMD always, relaxed SIMD where it validates. */
export function variantsToTest(): CoreVariant[] {
  return engineHasRelaxedSimd() ? ["simd", "relaxed"] : ["simd"];
}

const loaded = new Map<string, Promise<Kernels>>();

/** One Kernels per (variant, shared), loaded once per test file. */
export function kernelsFor(variant: CoreVariant, options: KernelsOptions = {}): Promise<Kernels> {
  const key = `${variant}/${options.shared ? "shared" : "private"}`;
  let kernels = loaded.get(key);
  if (!kernels) {
    kernels = Kernels.load({ ...options, variant });
    loaded.set(key, kernels);
  }
  return kernels;
}

/** Mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export const seededRandom = mulberry32;

/** n values uniform in [lo, hi). */
export function randomArray(random: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * random();
  return out;
}

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise, naming the first bad index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: { atol?: number; rtol?: number } = {},
  label = "",
): void {
  const { atol = 1e-6, rtol = 1e-5 } = tolerance;
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Math.abs(a - e) <= atol + rtol * Math.abs(e) || (Number.isNaN(a) && Number.isNaN(e)) || a === e;
    if (!ok) assert.fail(`${label}: element ${i} is ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
  }
}
