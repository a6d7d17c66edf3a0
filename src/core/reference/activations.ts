// Reference activations in plain TypeScript (f64 math), mirroring assembly/activations.ts, for tests.
// Backward passes take the forward OUTPUT y, as the kernels do; outputs may be the inputs (in place).
import type { Values } from "./vector.js";

/** y = x. */
export function identityForwardReference(y: Values, x: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) y[i] = x[i]!;
}

/** y = 1 / (1 + exp(-x)). */
export function sigmoidForwardReference(y: Values, x: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-x[i]!));
}

/** dx = dy * y * (1 - y). */
export function sigmoidBackwardReference(dx: Values, dy: ArrayLike<number>, y: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = dy[i]! * y[i]! * (1 - y[i]!);
}

/** y = tanh(x). */
export function tanhForwardReference(y: Values, x: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]!);
}

/** dx = dy * (1 - y^2). */
export function tanhBackwardReference(dx: Values, dy: ArrayLike<number>, y: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = dy[i]! * (1 - y[i]! * y[i]!);
}

/** y = max(x, 0); NaN stays NaN. */
export function reluForwardReference(y: Values, x: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) y[i] = Math.max(x[i]!, 0);
}

/** dx = y > 0 ? dy : 0. */
export function reluBackwardReference(dx: Values, dy: ArrayLike<number>, y: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = y[i]! > 0 ? dy[i]! : 0;
}

/** Row-wise softmax of a dense rows x cols matrix, subtracting each row's max. */
export function softmaxForwardReference(y: Values, x: ArrayLike<number>, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[o + j]!);
    const e = new Float64Array(cols);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += e[j] = Math.exp(x[o + j]! - max);
    for (let j = 0; j < cols; j++) y[o + j] = e[j]! / sum;
  }
}

/** Row-wise softmax backward: dx_ij = y_ij * (dy_ij - sum_k dy_ik y_ik). */
export function softmaxBackwardReference(dx: Values, dy: ArrayLike<number>, y: ArrayLike<number>, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[o + j]! * y[o + j]!;
    for (let j = 0; j < cols; j++) dx[o + j] = y[o + j]! * (dy[o + j]! - dot);
  }
}
