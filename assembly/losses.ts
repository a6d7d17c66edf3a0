// Losses over a batch of `rows` samples with `cols` outputs each (dense, row-major). Each returns the MEAN loss over
// the rows as f32 (accumulated in f64) and writes the gradient w.r.t. its prediction or logits, already scaled by
// 1/rows; a gradient pointer of 0 means the gradient is not written. Gradients may overwrite any input (in place).
import { accumulate64, at, exp4, hsum2, log1p4, log4, rowExp, rowMax } from "./math";

const CLAMP_LO: f32 = 1e-7;
const CLAMP_HI: f32 = 1 - 1e-7;

// acc (two f64 lanes) += a * b over four f32 lanes, multiplied in f64.
@inline function dot64(acc: v128, a: v128, b: v128): v128 {
  acc = f64x2.add(acc, f64x2.mul(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b)));
  const ah = v128.shuffle<f32>(a, a, 2, 3, 0, 1);
  const bh = v128.shuffle<f32>(b, b, 2, 3, 0, 1);
  return f64x2.add(acc, f64x2.mul(f64x2.promote_low_f32x4(ah), f64x2.promote_low_f32x4(bh)));
}

/** Squared error: returns (1/rows) sum 0.5 (y - t)^2; dy = (y - t) / rows. */
export function f32_squared_error(dy: usize, y: usize, t: usize, rows: i32, cols: i32): f32 {
  if (rows <= 0 || cols <= 0) return 0;
  const n = rows * cols;
  const inv = <f32>(1.0 / <f64>rows);
  const vinv = f32x4.splat(inv);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const d = f32x4.sub(v128.load(at(y, i)), v128.load(at(t, i)));
    acc = dot64(acc, d, d);
    if (dy) v128.store(at(dy, i), f32x4.mul(d, vinv));
  }
  let sum = hsum2(acc);
  for (; i < n; i++) {
    const d = load<f32>(at(y, i)) - load<f32>(at(t, i));
    sum += <f64>d * <f64>d;
    if (dy) store<f32>(at(dy, i), d * inv);
  }
  return <f32>(0.5 * sum / <f64>rows);
}

// t log y + (1 - t) log(1 - y) in each lane, for y already clamped to [1e-7, 1 - 1e-7].
@inline function bceTerm4(yc: v128, tv: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.add(f32x4.mul(tv, log4(yc)), f32x4.mul(f32x4.sub(one, tv), log4(f32x4.sub(one, yc))));
}

/**
 * Binary cross-entropy of probabilities y (clamped to [1e-7, 1 - 1e-7]) against targets t:
 * returns -(1/rows) sum [t log y + (1 - t) log(1 - y)]; dy = (y - t) / (y (1 - y)) / rows with the clamped y.
 */
export function f32_binary_cross_entropy(dy: usize, y: usize, t: usize, rows: i32, cols: i32): f32 {
  if (rows <= 0 || cols <= 0) return 0;
  const n = rows * cols;
  const inv = <f32>(1.0 / <f64>rows);
  const vinv = f32x4.splat(inv);
  const lo = f32x4.splat(CLAMP_LO);
  const hi = f32x4.splat(CLAMP_HI);
  const one = f32x4.splat(1);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const yc = f32x4.min(f32x4.max(v128.load(at(y, i)), lo), hi);
    const tv = v128.load(at(t, i));
    acc = accumulate64(acc, bceTerm4(yc, tv));
    if (dy) v128.store(at(dy, i), f32x4.mul(f32x4.div(f32x4.sub(yc, tv), f32x4.mul(yc, f32x4.sub(one, yc))), vinv));
  }
  let sum = hsum2(acc);
  for (; i < n; i++) {
    const yc = min(max(load<f32>(at(y, i)), CLAMP_LO), CLAMP_HI);
    const tv = load<f32>(at(t, i));
    sum += <f64>f32x4.extract_lane(bceTerm4(f32x4.splat(yc), f32x4.splat(tv)), 0);
    if (dy) store<f32>(at(dy, i), ((yc - tv) / (yc * (1 - yc))) * inv);
  }
  return <f32>(-sum / <f64>rows);
}

// acc (two f64 lanes) += max(z, 0) - z t + l over four lanes, in f64 (l = log1p(exp(-|z|)) from f32).
@inline function sigmoidCeTerms64(acc: v128, z: v128, t: v128, l: v128): v128 {
  const zero = f64x2.splat(0);
  let zd = f64x2.promote_low_f32x4(z);
  acc = f64x2.add(acc, f64x2.add(f64x2.sub(f64x2.max(zd, zero), f64x2.mul(zd, f64x2.promote_low_f32x4(t))), f64x2.promote_low_f32x4(l)));
  const zh = v128.shuffle<f32>(z, z, 2, 3, 0, 1);
  const th = v128.shuffle<f32>(t, t, 2, 3, 0, 1);
  const lh = v128.shuffle<f32>(l, l, 2, 3, 0, 1);
  zd = f64x2.promote_low_f32x4(zh);
  return f64x2.add(acc, f64x2.add(f64x2.sub(f64x2.max(zd, zero), f64x2.mul(zd, f64x2.promote_low_f32x4(th))), f64x2.promote_low_f32x4(lh)));
}

// sigmoid(z) from e = exp(-|z|): 1 / (1 + e) for z >= 0, e / (1 + e) for z < 0 (no overflow either way).
@inline function sigmoidFromExp4(z: v128, e: v128): v128 {
  const one = f32x4.splat(1);
  const num = v128.bitselect(e, one, f32x4.lt(z, f32x4.splat(0)));
  return f32x4.div(num, f32x4.add(one, e));
}

/**
 * Sigmoid + binary cross-entropy over logits z: writes y = sigmoid(z) (y required), returns
 * (1/rows) sum [max(z, 0) - z t + log1p(exp(-|z|))]; dz = (y - t) / rows.
 */
export function f32_sigmoid_cross_entropy(dz: usize, y: usize, z: usize, t: usize, rows: i32, cols: i32): f32 {
  if (rows <= 0 || cols <= 0) return 0;
  const n = rows * cols;
  const inv = <f32>(1.0 / <f64>rows);
  const vinv = f32x4.splat(inv);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const zv = v128.load(at(z, i));
    const tv = v128.load(at(t, i));
    const e = exp4(f32x4.neg(f32x4.abs(zv)));
    acc = sigmoidCeTerms64(acc, zv, tv, log1p4(e));
    const yv = sigmoidFromExp4(zv, e);
    v128.store(at(y, i), yv);
    if (dz) v128.store(at(dz, i), f32x4.mul(f32x4.sub(yv, tv), vinv));
  }
  let sum = hsum2(acc);
  for (; i < n; i++) {
    const zs = load<f32>(at(z, i));
    const tv = load<f32>(at(t, i));
    const zv = f32x4.splat(zs);
    const e = exp4(f32x4.neg(f32x4.abs(zv)));
    const zd = <f64>zs;
    sum += max(zd, 0) - zd * <f64>tv + <f64>f32x4.extract_lane(log1p4(e), 0);
    const yv = f32x4.extract_lane(sigmoidFromExp4(zv, e), 0);
    store<f32>(at(y, i), yv);
    if (dz) store<f32>(at(dz, i), (yv - tv) * inv);
  }
  return <f32>(sum / <f64>rows);
}

/**
 * Softmax + cross-entropy over logits z with a target distribution t per row (one-hot for classification):
 * writes y = softmax(z) row-wise, returns -(1/rows) sum t log y = (1/rows) sum t (logsumexp(z) - z);
 * dz = (y - t) / rows (the exact gradient when every target row sums to 1). y may overwrite z, but not t.
 */
export function f32_softmax_cross_entropy(dz: usize, y: usize, z: usize, t: usize, rows: i32, cols: i32): f32 {
  if (rows <= 0 || cols <= 0) return 0;
  const inv = <f32>(1.0 / <f64>rows);
  const vinv = f32x4.splat(inv);
  let loss: f64 = 0;
  for (let r = 0; r < rows; r++) {
    const zr = at(z, r * cols);
    const tr = at(t, r * cols);
    const yr = at(y, r * cols);
    // sum_j t_j (lse - z_j) = lse * sum_j t_j - sum_j t_j z_j, in f64 (reads z and t before y may overwrite them).
    let st = f64x2.splat(0);
    let stz = f64x2.splat(0);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const tv = v128.load(at(tr, j));
      st = accumulate64(st, tv);
      stz = dot64(stz, tv, v128.load(at(zr, j)));
    }
    let tSum = hsum2(st);
    let tzSum = hsum2(stz);
    for (; j < cols; j++) {
      const tv = <f64>load<f32>(at(tr, j));
      tSum += tv;
      tzSum += tv * <f64>load<f32>(at(zr, j));
    }
    const zMax = rowMax(zr, cols);
    const eSum = rowExp(yr, zr, cols, zMax);
    loss += (<f64>zMax + Math.log(<f64>eSum)) * tSum - tzSum;
    const scale: f32 = 1 / eSum;
    const vs = f32x4.splat(scale);
    const dzr = at(dz, r * cols);
    for (j = 0; j + 4 <= cols; j += 4) {
      const tv = v128.load(at(tr, j));
      const yv = f32x4.mul(v128.load(at(yr, j)), vs);
      v128.store(at(yr, j), yv);
      if (dz) v128.store(at(dzr, j), f32x4.mul(f32x4.sub(yv, tv), vinv));
    }
    for (; j < cols; j++) {
      const tv = load<f32>(at(tr, j));
      const yv = load<f32>(at(yr, j)) * scale;
      store<f32>(at(yr, j), yv);
      if (dz) store<f32>(at(dzr, j), (yv - tv) * inv);
    }
  }
  return <f32>(loss / <f64>rows);
}
