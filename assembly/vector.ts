// Vector helpers over n f32 values, for combining the gradients of worker threads and resetting buffers.
import { at } from "./math";

/** y = value. */
export function f32_fill(y: usize, n: i32, value: f32): void {
  const vv = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), vv);
  for (; i < n; i++) store<f32>(at(y, i), value);
}

/** y = x (y == x does nothing; other overlaps are not supported). */
export function f32_copy(y: usize, x: usize, n: i32): void {
  if (y == x) return;
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), v128.load(at(x, i)));
  for (; i < n; i++) store<f32>(at(y, i), load<f32>(at(x, i)));
}

/** y += alpha * x. */
export function f32_axpy(y: usize, x: usize, n: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), f32x4.add(v128.load(at(y, i)), f32x4.mul(va, v128.load(at(x, i)))));
  for (; i < n; i++) store<f32>(at(y, i), load<f32>(at(y, i)) + alpha * load<f32>(at(x, i)));
}

/** y *= alpha. */
export function f32_scale(y: usize, n: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), f32x4.mul(v128.load(at(y, i)), va));
  for (; i < n; i++) store<f32>(at(y, i), load<f32>(at(y, i)) * alpha);
}

/** Column sums of a dense rows x cols matrix: out[j] = beta * out[j] + sum_i x[i * cols + j] (beta == 0: out is not read). */
export function f32_col_sum(out: usize, x: usize, rows: i32, cols: i32, beta: f32): void {
  if (cols <= 0) return;
  if (rows <= 0) {
    if (beta == 0) f32_fill(out, cols, 0);
    else f32_scale(out, cols, beta);
    return;
  }
  // Row by row, so that x streams through once; out (cols values) stays in cache.
  const vb = f32x4.splat(beta);
  let j = 0;
  if (beta == 0) f32_copy(out, x, cols);
  else {
    for (; j + 4 <= cols; j += 4) v128.store(at(out, j), f32x4.add(f32x4.mul(vb, v128.load(at(out, j))), v128.load(at(x, j))));
    for (; j < cols; j++) store<f32>(at(out, j), beta * load<f32>(at(out, j)) + load<f32>(at(x, j)));
  }
  for (let i = 1; i < rows; i++) f32_axpy(out, at(x, i * cols), cols, 1);
}
