// Reference vector helpers and column sums in plain TypeScript (f64 math), mirroring assembly/vector.ts, for tests.

/** A writable array of numbers: Float32Array to round like the core's storage, Float64Array or number[] for f64. */
export type Values = Float32Array | Float64Array | number[];

/** y = value (value is rounded to f32, as the kernel receives it). */
export function fillReference(y: Values, n: number, value: number): void {
  const v = Math.fround(value);
  for (let i = 0; i < n; i++) y[i] = v;
}

/** y = x. */
export function copyReference(y: Values, x: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) y[i] = x[i]!;
}

/** y += alpha * x (alpha rounded to f32). */
export function axpyReference(y: Values, x: ArrayLike<number>, n: number, alpha: number): void {
  const a = Math.fround(alpha);
  for (let i = 0; i < n; i++) y[i] = y[i]! + a * x[i]!;
}

/** y *= alpha (alpha rounded to f32). */
export function scaleReference(y: Values, n: number, alpha: number): void {
  const a = Math.fround(alpha);
  for (let i = 0; i < n; i++) y[i] = y[i]! * a;
}

/** out[j] = beta * out[j] + sum_i x[i * cols + j]; beta == 0 means out is not read. */
export function colSumReference(out: Values, x: ArrayLike<number>, rows: number, cols: number, beta: number): void {
  const b = Math.fround(beta);
  for (let j = 0; j < cols; j++) {
    let sum = 0;
    for (let i = 0; i < rows; i++) sum += x[i * cols + j]!;
    out[j] = (b !== 0 ? b * out[j]! : 0) + sum;
  }
}
