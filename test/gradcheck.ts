// Helpers of the non-GEMM kernel suites: central-difference gradients in f64, scoped slabs, and input generators.
import assert from "node:assert/strict";
import type { Kernels } from "../src/core/kernels.js";
import type { Slab } from "../src/runtime/arena.js";

/** dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h for every i, in f64 (x is restored afterwards). */
export function numericGradient(loss: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-5): Float64Array {
  const point = Float64Array.from(x);
  const grad = new Float64Array(point.length);
  for (let i = 0; i < point.length; i++) {
    const old = point[i]!;
    point[i] = old + h;
    const up = loss(point);
    point[i] = old - h;
    const down = loss(point);
    point[i] = old;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

/** Runs `body` with fresh zero-filled slabs of the given lengths and releases them afterwards, even on failure. */
export function withSlabs<R>(kernels: Kernels, lengths: readonly number[], body: (slabs: Slab[]) => R): R {
  const slabs = lengths.map((n) => kernels.arena.alloc(n));
  try {
    return body(slabs);
  } finally {
    for (const slab of slabs) kernels.arena.release(slab);
  }
}

/** Scatters large-magnitude values (|x| in [20, limit]) over every third element, for stability tests. */
export function withLargeValues(x: Float32Array, random: () => number, limit = 100): Float32Array {
  for (let i = 0; i < x.length; i += 3) x[i] = (random() < 0.5 ? -1 : 1) * (20 + (limit - 20) * random());
  return x;
}

/** rows x cols target distributions: one-hot when `oneHot`, otherwise random positive rows that sum to 1. */
export function targetDistributions(random: () => number, rows: number, cols: number, oneHot: boolean): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    if (oneHot) {
      t[r * cols + Math.floor(random() * cols)] = 1;
      continue;
    }
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += t[r * cols + j] = random() + 0.01;
    for (let j = 0; j < cols; j++) t[r * cols + j] = t[r * cols + j]! / sum;
  }
  return t;
}

/** Asserts every value is finite, naming the first that is not. */
export function assertFinite(values: ArrayLike<number>, label: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) assert.fail(`${label}: element ${i} is ${values[i]}, expected a finite number`);
  }
}
