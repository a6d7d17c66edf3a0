// Small integer hashes for values that must be a pure function of their inputs on every engine and machine
// (a synthetic row from (seed, index), a lazily created parameter row from (seed, key)).

/** fmix32 of MurmurHash3: a bijective 32-bit avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of (a, b). */
export function hash2(a: number, b: number): number {
  return fmix32(Math.imul(fmix32(a ^ 0x9e3779b9), 0x01000193) ^ (b >>> 0));
}
