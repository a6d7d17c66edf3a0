// Reference inverted-dropout mask and elementwise product in plain TypeScript, mirroring assembly/dropout.ts.

// lowbias32, with 32-bit wrap-around as in the kernel.
function mix(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** mask[i] = 1/keep if hash(seed, offset + i) < keep * 2^32, else 0 (keep rounded to f32 like the kernel's). */
export function dropoutMaskReference(mask: Float32Array, n: number, keep: number, seed: number, offset: number): void {
  const k = Math.fround(keep);
  const scale = Math.fround(1 / k);
  const threshold = k * 4294967296;
  const key = mix((seed ^ 0x9e3779b9) >>> 0);
  for (let i = 0; i < n; i++) mask[i] = mix((key ^ mix((offset + i) >>> 0)) >>> 0) < threshold ? scale : 0;
}

/** y[i] *= x[i]. */
export function mulReference(y: Float32Array, x: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) y[i] = y[i]! * x[i]!;
}
