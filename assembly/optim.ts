// Optimizer updates over flat slabs of n parameters, in place: SGD (with optional momentum), AdaGrad and Adam.
// Each folds L2 weight decay into the gradient first: g' = g + weight_decay * w. The gradient g is only read.
import { at } from "./math";

/** SGD: g' = g + wd w; with a velocity slab v (v != 0): v = momentum v + g', w -= lr v; without: w -= lr g'. */
export function f32_sgd_update(w: usize, v: usize, g: usize, n: i32, lr: f32, momentum: f32, weight_decay: f32): void {
  const vlr = f32x4.splat(lr);
  const vmom = f32x4.splat(momentum);
  const vwd = f32x4.splat(weight_decay);
  let i = 0;
  if (v) {
    for (; i + 4 <= n; i += 4) {
      const wv = v128.load(at(w, i));
      const gp = f32x4.add(v128.load(at(g, i)), f32x4.mul(vwd, wv));
      const vel = f32x4.add(f32x4.mul(vmom, v128.load(at(v, i))), gp);
      v128.store(at(v, i), vel);
      v128.store(at(w, i), f32x4.sub(wv, f32x4.mul(vlr, vel)));
    }
    for (; i < n; i++) {
      const wv = load<f32>(at(w, i));
      const vel = momentum * load<f32>(at(v, i)) + (load<f32>(at(g, i)) + weight_decay * wv);
      store<f32>(at(v, i), vel);
      store<f32>(at(w, i), wv - lr * vel);
    }
  } else {
    for (; i + 4 <= n; i += 4) {
      const wv = v128.load(at(w, i));
      const gp = f32x4.add(v128.load(at(g, i)), f32x4.mul(vwd, wv));
      v128.store(at(w, i), f32x4.sub(wv, f32x4.mul(vlr, gp)));
    }
    for (; i < n; i++) {
      const wv = load<f32>(at(w, i));
      store<f32>(at(w, i), wv - lr * (load<f32>(at(g, i)) + weight_decay * wv));
    }
  }
}

/** AdaGrad: g' = g + wd w; h += g'^2; w -= lr g' / (sqrt(h) + eps). */
export function f32_adagrad_update(w: usize, h: usize, g: usize, n: i32, lr: f32, eps: f32, weight_decay: f32): void {
  const vlr = f32x4.splat(lr);
  const veps = f32x4.splat(eps);
  const vwd = f32x4.splat(weight_decay);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const wv = v128.load(at(w, i));
    const gp = f32x4.add(v128.load(at(g, i)), f32x4.mul(vwd, wv));
    const hv = f32x4.add(v128.load(at(h, i)), f32x4.mul(gp, gp));
    v128.store(at(h, i), hv);
    v128.store(at(w, i), f32x4.sub(wv, f32x4.div(f32x4.mul(vlr, gp), f32x4.add(f32x4.sqrt(hv), veps))));
  }
  for (; i < n; i++) {
    const wv = load<f32>(at(w, i));
    const gp = load<f32>(at(g, i)) + weight_decay * wv;
    const hv = load<f32>(at(h, i)) + gp * gp;
    store<f32>(at(h, i), hv);
    store<f32>(at(w, i), wv - (lr * gp) / (sqrt<f32>(hv) + eps));
  }
}

/**
 * Adam: g' = g + wd w; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
 * w -= lr (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). step counts updates from 1.
 */
export function f32_adam_update(
  w: usize, m: usize, v: usize, g: usize, n: i32,
  lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, step: i32,
): void {
  // Bias corrections, once per call (in f64, then as reciprocals).
  const c1 = <f32>(1.0 / (1.0 - Math.pow(<f64>beta1, <f64>step)));
  const c2 = <f32>(1.0 / (1.0 - Math.pow(<f64>beta2, <f64>step)));
  const a1: f32 = 1 - beta1;
  const a2: f32 = 1 - beta2;
  const vlr = f32x4.splat(lr), veps = f32x4.splat(eps), vwd = f32x4.splat(weight_decay);
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), va1 = f32x4.splat(a1), va2 = f32x4.splat(a2);
  const vc1 = f32x4.splat(c1), vc2 = f32x4.splat(c2);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const wv = v128.load(at(w, i));
    const gp = f32x4.add(v128.load(at(g, i)), f32x4.mul(vwd, wv));
    const mv = f32x4.add(f32x4.mul(vb1, v128.load(at(m, i))), f32x4.mul(va1, gp));
    const vv = f32x4.add(f32x4.mul(vb2, v128.load(at(v, i))), f32x4.mul(va2, f32x4.mul(gp, gp)));
    v128.store(at(m, i), mv);
    v128.store(at(v, i), vv);
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(vv, vc2)), veps);
    v128.store(at(w, i), f32x4.sub(wv, f32x4.div(f32x4.mul(vlr, f32x4.mul(mv, vc1)), den)));
  }
  for (; i < n; i++) {
    const wv = load<f32>(at(w, i));
    const gp = load<f32>(at(g, i)) + weight_decay * wv;
    const mv = beta1 * load<f32>(at(m, i)) + a1 * gp;
    const vv = beta2 * load<f32>(at(v, i)) + a2 * (gp * gp);
    store<f32>(at(m, i), mv);
    store<f32>(at(v, i), vv);
    store<f32>(at(w, i), wv - (lr * (mv * c1)) / (sqrt<f32>(vv * c2) + eps));
  }
}
