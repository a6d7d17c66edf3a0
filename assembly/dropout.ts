// Inverted dropout: a mask from a counter-based hash, so element i's draw depends only on (seed, i) and any
// thread can make any band of a mask; and the elementwise product that applies a mask forward and backward.

// lowbias32 (Chris Wellons): a fast 32-bit integer hash with good avalanche.
@inline function mix(x: u32): u32 {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  x ^= x >> 16;
  return x;
}

/** mask[i] = 1/keep with probability keep, else 0, drawn from hash(seed, offset + i); 0 < keep <= 1. */
export function f32_dropout_mask(mask: usize, n: i32, keep: f32, seed: i32, offset: i32): void {
  const scale: f32 = 1 / keep;
  const threshold = <f64>keep * 4294967296.0;
  const key = mix(<u32>seed ^ 0x9e3779b9);
  for (let i = 0; i < n; i++) {
    const draw = mix(key ^ mix(<u32>(offset + i)));
    store<f32>(mask + (<usize>i << 2), <f64>draw < threshold ? scale : 0);
  }
}

/** y[i] *= x[i] over n values. */
export function f32_mul(y: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    v128.store(y + at, f32x4.mul(v128.load(y + at), v128.load(x + at)));
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(y + at, load<f32>(y + at) * load<f32>(x + at));
  }
}
