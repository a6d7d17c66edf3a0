// Reference optimizer updates in plain TypeScript (f64 math per step), mirroring assembly/optim.ts, for tests.
// Hyper-parameters are rounded to f32 first, as the kernels receive them; pass Float32Array state to round each
// step's results like the core's slabs do.
import type { Values } from "./vector.js";

const f = Math.fround;

/** SGD: g' = g + wd w; with v: v = momentum v + g', w -= lr v; without: w -= lr g'. */
export function sgdUpdateReference(
  w: Values, v: Values | undefined, g: ArrayLike<number>, n: number, lr: number, momentum: number, weightDecay: number,
): void {
  const [a, mu, wd] = [f(lr), f(momentum), f(weightDecay)];
  for (let i = 0; i < n; i++) {
    const gp = g[i]! + wd * w[i]!;
    if (v) {
      v[i] = mu * v[i]! + gp;
      w[i] = w[i]! - a * v[i]!;
    } else {
      w[i] = w[i]! - a * gp;
    }
  }
}

/** AdaGrad: g' = g + wd w; h += g'^2; w -= lr g' / (sqrt(h) + eps). */
export function adagradUpdateReference(
  w: Values, h: Values, g: ArrayLike<number>, n: number, lr: number, eps: number, weightDecay: number,
): void {
  const [a, e, wd] = [f(lr), f(eps), f(weightDecay)];
  for (let i = 0; i < n; i++) {
    const gp = g[i]! + wd * w[i]!;
    const hv = h[i]! + gp * gp;
    h[i] = hv;
    w[i] = w[i]! - (a * gp) / (Math.sqrt(hv) + e);
  }
}

/** Adam: m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; w -= lr (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). */
export function adamUpdateReference(
  w: Values, m: Values, v: Values, g: ArrayLike<number>, n: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number,
): void {
  const [a, b1, b2, e, wd] = [f(lr), f(beta1), f(beta2), f(eps), f(weightDecay)];
  const c1 = 1 - b1 ** step;
  const c2 = 1 - b2 ** step;
  for (let i = 0; i < n; i++) {
    const gp = g[i]! + wd * w[i]!;
    const mv = b1 * m[i]! + (1 - b1) * gp;
    const vv = b2 * v[i]! + (1 - b2) * gp * gp;
    m[i] = mv;
    v[i] = vv;
    w[i] = w[i]! - (a * (mv / c1)) / (Math.sqrt(vv / c2) + e);
  }
}
