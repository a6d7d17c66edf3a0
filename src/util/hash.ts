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

/** A 32-bit hash of a string (its UTF-16 code units, FNV-1a style, finished by fmix32), seeded with `seed`. */
export function hashString(seed: number, text: string): number {
  let h = fmix32(seed ^ 0x811c9dc5);
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return fmix32(h ^ text.length);
}
