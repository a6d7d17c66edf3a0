// Elementwise activations over n f32 values and their backward passes, plus the row-wise softmax.
// Backward passes take the forward OUTPUT y (not the input). Every kernel may run in place (y == x, dx == dy).
import { at, hsum4, lane0, rowExp, rowMax, rowScale, sigmoid4, tanh4 } from "./math";

/** y = x (a copy; nothing happens when y == x). */
export function f32_identity_forward(y: usize, x: usize, n: i32): void {
  if (y == x || n <= 0) return;
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), v128.load(at(x, i)));
  for (; i < n; i++) store<f32>(at(y, i), load<f32>(at(x, i)));
}

/** y = 1 / (1 + exp(-x)). */
export function f32_sigmoid_forward(y: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), sigmoid4(v128.load(at(x, i))));
  for (; i < n; i++) store<f32>(at(y, i), lane0(sigmoid4(f32x4.splat(load<f32>(at(x, i))))));
}

/** dx = dy * y * (1 - y), with y the sigmoid's output. */
export function f32_sigmoid_backward(dx: usize, dy: usize, y: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const yv = v128.load(at(y, i));
    v128.store(at(dx, i), f32x4.mul(f32x4.mul(v128.load(at(dy, i)), yv), f32x4.sub(one, yv)));
  }
  for (; i < n; i++) {
    const yv = load<f32>(at(y, i));
    store<f32>(at(dx, i), load<f32>(at(dy, i)) * yv * (1 - yv));
  }
}

/** y = tanh(x). */
export function f32_tanh_forward(y: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), tanh4(v128.load(at(x, i))));
  for (; i < n; i++) store<f32>(at(y, i), lane0(tanh4(f32x4.splat(load<f32>(at(x, i))))));
}

/** dx = dy * (1 - y^2), with y the tanh's output. */
export function f32_tanh_backward(dx: usize, dy: usize, y: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const yv = v128.load(at(y, i));
    v128.store(at(dx, i), f32x4.mul(v128.load(at(dy, i)), f32x4.sub(one, f32x4.mul(yv, yv))));
  }
  for (; i < n; i++) {
    const yv = load<f32>(at(y, i));
    store<f32>(at(dx, i), load<f32>(at(dy, i)) * (1 - yv * yv));
  }
}

/** y = max(x, 0) (NaN stays NaN). */
export function f32_relu_forward(y: usize, x: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), f32x4.max(v128.load(at(x, i)), zero));
  for (; i < n; i++) store<f32>(at(y, i), max(load<f32>(at(x, i)), <f32>0));
}

/** dx = y > 0 ? dy : 0, with y the relu's output. */
export function f32_relu_backward(dx: usize, dy: usize, y: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    v128.store(at(dx, i), v128.and(v128.load(at(dy, i)), f32x4.gt(v128.load(at(y, i)), zero)));
  }
  for (; i < n; i++) store<f32>(at(dx, i), load<f32>(at(y, i)) > 0 ? load<f32>(at(dy, i)) : 0);
}

/** Row-wise softmax of a dense rows x cols matrix: y_ij = exp(x_ij - max_j x_ij) / sum_j exp(x_ij - max_j x_ij). */
export function f32_softmax_forward(y: usize, x: usize, rows: i32, cols: i32): void {
  if (cols <= 0) return;
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * cols);
    const yr = at(y, r * cols);
    const sum = rowExp(yr, xr, cols, rowMax(xr, cols));
    rowScale(yr, cols, 1 / sum);
  }
}

/** Row-wise softmax backward: dx_ij = y_ij * (dy_ij - sum_k dy_ik * y_ik), with y the softmax's output. */
export function f32_softmax_backward(dx: usize, dy: usize, y: usize, rows: i32, cols: i32): void {
  if (cols <= 0) return;
  for (let r = 0; r < rows; r++) {
    const dyr = at(dy, r * cols);
    const yr = at(y, r * cols);
    const dxr = at(dx, r * cols);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= cols; j += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(at(dyr, j)), v128.load(at(yr, j))));
    let dot = hsum4(acc);
    for (; j < cols; j++) dot += load<f32>(at(dyr, j)) * load<f32>(at(yr, j));
    const vd = f32x4.splat(dot);
    for (j = 0; j + 4 <= cols; j += 4) {
      v128.store(at(dxr, j), f32x4.mul(v128.load(at(yr, j)), f32x4.sub(v128.load(at(dyr, j)), vd)));
    }
    for (; j < cols; j++) store<f32>(at(dxr, j), load<f32>(at(yr, j)) * (load<f32>(at(dyr, j)) - dot));
  }
}
