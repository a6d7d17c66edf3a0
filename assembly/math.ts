// Vectorised f32 math and row helpers shared by the kernels (not exported from the core): exp, log, log1p, sigmoid,
// tanh, horizontal reductions, and the max / exp / scale passes of a softmax row.
// Each function works on four lanes; the kernels' scalar tails call it on a splat and take lane 0, so an element
// gets the same result wherever it sits in the array.

// Cephes expf: inputs are clamped so that 2^n stays a normal float (exp(-87.3) ~ 1.2e-38, exp(88.3) ~ 2.2e38).
const EXP_LO: f32 = -87.3;
const EXP_HI: f32 = 88.3;
const LOG2E: f32 = 1.44269504088896341;
// ln 2 split in two so that n * LN2_HI is exact for |n| <= 127.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
// 1.5 * 2^23: adding it rounds to an integer (ties to even), held in the low mantissa bits.
const ROUND_MAGIC: f32 = 12582912.0;
const ROUND_MAGIC_BITS: i32 = 0x4b400000;

// Cephes logf's polynomial.
const SQRT_HALF: f32 = 0.707106781186547524;
const L0: f32 = 7.0376836292e-2;
const L1: f32 = -1.1514610310e-1;
const L2: f32 = 1.1676998740e-1;
const L3: f32 = -1.2420140846e-1;
const L4: f32 = 1.4249322787e-1;
const L5: f32 = -1.6668057665e-1;
const L6: f32 = 2.0000714765e-1;
const L7: f32 = -2.4999993993e-1;
const L8: f32 = 3.3333331174e-1;

// Cephes tanhf's odd polynomial for |x| < TANH_SMALL: tanh(x) = x + x^3 * Q(x^2).
const TANH_SMALL: f32 = 0.625;
const Q0: f32 = -5.70498872745e-3;
const Q1: f32 = 2.06390887954e-2;
const Q2: f32 = -5.37397155531e-2;
const Q3: f32 = 1.33314422036e-1;
const Q4: f32 = -3.33332819422e-1;

/** e^x in each lane (relative error a few ulp), clamped to [exp(-87.3), exp(88.3)]; NaN stays NaN. */
@inline export function exp4(x: v128): v128 {
  // pmin/pmax are single instructions on x64; a NaN x passes through both and stays NaN.
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  // n = nearest(x log2 e) by the 1.5 * 2^23 trick: the sum's low mantissa bits hold n (as integer, plus the magic).
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(ROUND_MAGIC));
  const n = f32x4.sub(t, f32x4.splat(ROUND_MAGIC));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  const r2 = f32x4.mul(r, r);
  let p = f32x4.splat(P0);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P5));
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1));
  // 2^n from the exponent bits: (n + 127) << 23, with n in [-126, 127].
  const scale = i32x4.shl(i32x4.sub(t, i32x4.splat(ROUND_MAGIC_BITS - 127)), 23);
  return f32x4.mul(p, scale);
}

/** ln x in each lane, for positive normal x (relative error a few ulp); Cephes logf. */
@inline export function log4(x: v128): v128 {
  const one = f32x4.splat(1);
  // x = m 2^e with m in [0.5, 1).
  let e = f32x4.convert_i32x4_s(i32x4.sub(i32x4.shr_u(x, 23), i32x4.splat(126)));
  let m = v128.or(v128.and(x, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000));
  // Below sqrt(1/2), use 2m - 1 and e - 1, so that the polynomial's argument stays in [-0.29, 0.41].
  const low = f32x4.lt(m, f32x4.splat(SQRT_HALF));
  e = f32x4.sub(e, v128.and(low, one));
  m = f32x4.sub(f32x4.add(m, v128.and(low, m)), one);
  const z = f32x4.mul(m, m);
  let y = f32x4.splat(L0);
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L2));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L3));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L4));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L5));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L6));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L7));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(L8));
  y = f32x4.mul(f32x4.mul(y, m), z);
  y = f32x4.add(y, f32x4.mul(e, f32x4.splat(LN2_LO)));
  y = f32x4.sub(y, f32x4.mul(z, f32x4.splat(0.5)));
  return f32x4.add(f32x4.add(m, y), f32x4.mul(e, f32x4.splat(LN2_HI)));
}

/** ln(1 + x) in each lane for x in [0, 1], accurate for tiny x: ln(u) * x / (u - 1) with u = 1 + x (Goldberg). */
@inline export function log1p4(x: v128): v128 {
  const u = f32x4.add(x, f32x4.splat(1));
  const d = f32x4.sub(u, f32x4.splat(1));
  return v128.bitselect(x, f32x4.mul(log4(u), f32x4.div(x, d)), f32x4.eq(d, f32x4.splat(0)));
}

/** 1 / (1 + e^-x) in each lane. */
@inline export function sigmoid4(x: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
}

/** tanh(x) in each lane: an odd polynomial for |x| < 0.625, sign(x) * (1 - 2 / (e^2|x| + 1)) elsewhere. */
@inline export function tanh4(x: v128): v128 {
  const signBit = i32x4.splat(0x80000000);
  const ax = f32x4.abs(x);
  const one = f32x4.splat(1);
  // Large branch on |x|, sign restored below; e^2|x| saturates at e^88.3, giving exactly 1.
  const e = exp4(f32x4.add(ax, ax));
  const large = v128.or(f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(e, one))), v128.and(x, signBit));
  const s = f32x4.mul(x, x);
  let q = f32x4.splat(Q0);
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(Q1));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(Q2));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(Q3));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(Q4));
  const small = f32x4.add(f32x4.mul(f32x4.mul(q, s), x), x);
  return v128.bitselect(small, large, f32x4.lt(ax, f32x4.splat(TANH_SMALL)));
}

/** Lane 0 of a four-lane function applied to a splat of x: the scalar tail of a kernel. */
@inline export function lane0(v: v128): f32 {
  return f32x4.extract_lane(v, 0);
}

/** Horizontal sum of four f32 lanes, in f32. */
@inline export function hsum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Horizontal max of four f32 lanes. */
@inline export function hmax4(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** Adds the four f32 lanes of v, widened to f64, to the two f64 lanes of acc. */
@inline export function accumulate64(acc: v128, v: v128): v128 {
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(v));
  return f64x2.add(acc, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
}

/** Sum of the two f64 lanes. */
@inline export function hsum2(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** Largest of the cols values at x. */
export function rowMax(x: usize, cols: i32): f32 {
  let j = 0;
  let m: f32 = -Infinity;
  if (cols >= 4) {
    let vm = v128.load(x);
    for (j = 4; j + 4 <= cols; j += 4) vm = f32x4.max(vm, v128.load(at(x, j)));
    m = hmax4(vm);
  }
  for (; j < cols; j++) m = max(m, load<f32>(at(x, j)));
  return m;
}

/** y = exp(x - shift) over one row of cols values; returns the sum of y (f32, four partial sums). */
export function rowExp(y: usize, x: usize, cols: i32, shift: f32): f32 {
  const vs = f32x4.splat(shift);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= cols; j += 4) {
    const e = exp4(f32x4.sub(v128.load(at(x, j)), vs));
    v128.store(at(y, j), e);
    acc = f32x4.add(acc, e);
  }
  let sum = hsum4(acc);
  for (; j < cols; j++) {
    const e = lane0(exp4(f32x4.splat(load<f32>(at(x, j)) - shift)));
    store<f32>(at(y, j), e);
    sum += e;
  }
  return sum;
}

/** y *= scale over one row of cols values. */
export function rowScale(y: usize, cols: i32, scale: f32): void {
  const vs = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= cols; j += 4) v128.store(at(y, j), f32x4.mul(v128.load(at(y, j)), vs));
  for (; j < cols; j++) store<f32>(at(y, j), load<f32>(at(y, j)) * scale);
}

/** Byte address of element `index` of an f32 array at `base`. */
@inline export function at(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}
