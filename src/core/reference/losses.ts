// Reference losses in plain TypeScript (f64 math), mirroring assembly/losses.ts, for tests. Each returns the mean
// loss over `rows` samples (0 for an empty batch) and writes the gradient scaled by 1/rows unless it is undefined.
import type { Values } from "./vector.js";

/** The clamp of binary cross-entropy's probabilities, as the f32 values the kernel uses. */
export const BCE_CLAMP_LO = Math.fround(1e-7);
export const BCE_CLAMP_HI = Math.fround(1 - 1e-7);

/** (1/rows) sum 0.5 (y - t)^2; dy = (y - t) / rows. */
export function squaredErrorReference(dy: Values | undefined, y: ArrayLike<number>, t: ArrayLike<number>, rows: number, cols: number): number {
  if (rows <= 0 || cols <= 0) return 0;
  let sum = 0;
  for (let i = 0; i < rows * cols; i++) {
    const d = y[i]! - t[i]!;
    sum += 0.5 * d * d;
    if (dy) dy[i] = d / rows;
  }
  return sum / rows;
}

/** -(1/rows) sum [t log y + (1 - t) log(1 - y)] with y clamped to [1e-7, 1 - 1e-7]; dy = (y - t) / (y (1 - y)) / rows. */
export function binaryCrossEntropyReference(dy: Values | undefined, y: ArrayLike<number>, t: ArrayLike<number>, rows: number, cols: number): number {
  if (rows <= 0 || cols <= 0) return 0;
  let sum = 0;
  const grad: number[] = [];
  for (let i = 0; i < rows * cols; i++) {
    const yc = Math.min(Math.max(y[i]!, BCE_CLAMP_LO), BCE_CLAMP_HI);
    const tv = t[i]!;
    sum += tv * Math.log(yc) + (1 - tv) * Math.log(1 - yc);
    grad.push((yc - tv) / (yc * (1 - yc)) / rows);
  }
  if (dy) for (let i = 0; i < grad.length; i++) dy[i] = grad[i]!;
  return -sum / rows;
}

/** Sigmoid + BCE over logits z: y = sigmoid(z); (1/rows) sum [max(z, 0) - z t + log1p(exp(-|z|))]; dz = (y - t) / rows. */
export function sigmoidCrossEntropyReference(
  dz: Values | undefined, y: Values, z: ArrayLike<number>, t: ArrayLike<number>, rows: number, cols: number,
): number {
  if (rows <= 0 || cols <= 0) return 0;
  let sum = 0;
  for (let i = 0; i < rows * cols; i++) {
    const zv = z[i]!;
    const tv = t[i]!;
    sum += Math.max(zv, 0) - zv * tv + Math.log1p(Math.exp(-Math.abs(zv)));
    const yv = 1 / (1 + Math.exp(-zv));
    y[i] = yv;
    if (dz) dz[i] = (yv - tv) / rows;
  }
  return sum / rows;
}

/** Softmax + cross-entropy over logits z: y = softmax(z) per row; (1/rows) sum t (logsumexp(z) - z); dz = (y - t) / rows. */
export function softmaxCrossEntropyReference(
  dz: Values | undefined, y: Values, z: ArrayLike<number>, t: ArrayLike<number>, rows: number, cols: number,
): number {
  if (rows <= 0 || cols <= 0) return 0;
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, z[o + j]!);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(z[o + j]! - max);
    const lse = max + Math.log(sum);
    const tr: number[] = [];
    for (let j = 0; j < cols; j++) {
      const tv = t[o + j]!;
      tr.push(tv);
      loss += tv * (lse - z[o + j]!);
    }
    for (let j = 0; j < cols; j++) {
      const yv = Math.exp(z[o + j]! - lse);
      y[o + j] = yv;
      if (dz) dz[o + j] = (yv - tr[j]!) / rows;
    }
  }
  return loss / rows;
}
