// Seeded randomness for reproducible data handling, from the project's one PRNG (src/util/random.ts).
import { mulberry32, normalFrom, permutationInto } from "../util/random.js";

export { mulberry32 };

/** Standard normal samples (Box-Muller) drawn from a uniform source. */
export const gaussian = normalFrom;

/** A permutation of 0..n-1 by Fisher-Yates over mulberry32(seed). */
export function seededPermutation(n: number, seed: number): Int32Array {
  return permutationInto(new Int32Array(n), seed);
}
