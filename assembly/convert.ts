// f32 <-> IEEE binary16 (f16) conversion, for halving the bytes of gradients on the wire: round to nearest even,
// overflow to +-inf, subnormals both ways, -0 kept, NaN kept NaN (quiet bit set, sign and top payload bits kept).
// f16 values are u16 bit patterns, two bytes each, at any even address. Eight values per step with SIMD; the
// scalar tails call the same four-lane functions on a splat and take lane 0, so every element gets one result.

const SIGN: i32 = <i32>0x80000000;
const F32_INF: i32 = 0x7f800000;
const F32_MANTISSA: i32 = 0x007fffff;
// |x| >= 2^16 (as bits) is inf or NaN in f16; smaller values that round up past 65504 carry into inf by themselves.
const F16_OVERFLOW: i32 = (127 + 16) << 23;
// |x| < 2^-14 (as bits), the smallest normal f16, takes the subnormal path.
const F16_MIN_NORMAL: i32 = (127 - 14) << 23;
// 0.5: adding it to |x| < 2^-14 rounds |x| to a multiple of 2^-24 (an f16 subnormal unit), ties to even.
const SUBNORMAL_MAGIC: i32 = 126 << 23;
// Rebias the exponent (127 -> 15) and add just under half an f16 unit; the odd bit below adds the tie's last 1.
const NORMAL_BIAS: i32 = 0xfff - ((127 - 15) << 23);

/** f16 bits (low 16 bits of each lane) of four f32 lanes. */
@inline function toHalf4(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(SIGN));
  const abs = v128.xor(x, sign);
  const isNan = i32x4.gt_s(abs, i32x4.splat(F32_INF));
  const payload = i32x4.shr_u(v128.and(abs, i32x4.splat(F32_MANTISSA)), 13);
  const special = v128.or(i32x4.splat(0x7c00), v128.and(isNan, v128.or(i32x4.splat(0x200), payload)));
  const magic = i32x4.splat(SUBNORMAL_MAGIC);
  const subnormal = i32x4.sub(f32x4.add(abs, magic), magic);
  const odd = i32x4.shr_s(i32x4.shl(abs, 18), 31);
  const normal = i32x4.shr_u(i32x4.sub(i32x4.add(abs, i32x4.splat(NORMAL_BIAS)), odd), 13);
  const finite = v128.bitselect(subnormal, normal, i32x4.lt_s(abs, i32x4.splat(F16_MIN_NORMAL)));
  const joined = v128.bitselect(finite, special, i32x4.lt_s(abs, i32x4.splat(F16_OVERFLOW)));
  return v128.or(joined, i32x4.shr_u(sign, 16));
}

/** f32 bits of four f16 lanes (each lane holds a u16 bit pattern, zero-extended). */
@inline function fromHalf4(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const shifted = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const exponent = v128.and(shifted, i32x4.splat(0x0f800000));
  const normal = i32x4.add(shifted, i32x4.splat((127 - 15) << 23));
  // Zero and subnormals: 2^-14 * (1 + m/1024) - 2^-14 = m * 2^-24, exactly.
  const magic = i32x4.splat(113 << 23);
  const subnormal = f32x4.sub(i32x4.add(shifted, magic), magic);
  const isNan = i32x4.gt_s(shifted, i32x4.splat(0x0f800000));
  const special = v128.or(i32x4.add(shifted, i32x4.splat((255 - 31) << 23)), v128.and(isNan, i32x4.splat(0x00400000)));
  const finite = v128.bitselect(subnormal, normal, i32x4.eq(exponent, i32x4.splat(0)));
  return v128.or(v128.bitselect(special, finite, i32x4.eq(exponent, i32x4.splat(0x0f800000))), sign);
}

/** dst[i] = f16 bits of the f32 src[i], over n values; dst holds 2-byte values (2n bytes). No overlap. */
export function f32_to_f16(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const s = src + (<usize>i << 2);
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(toHalf4(v128.load(s)), toHalf4(v128.load(s, 16))));
  }
  for (; i < n; i++) {
    const bits = toHalf4(i32x4.splat(load<i32>(src + (<usize>i << 2))));
    store<u16>(dst + (<usize>i << 1), <u16>i32x4.extract_lane(bits, 0));
  }
}

/** dst[i] = the f32 value of the f16 bits src[i], over n values; src holds 2-byte values (2n bytes). No overlap. */
export function f16_to_f32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    const d = dst + (<usize>i << 2);
    v128.store(d, fromHalf4(i32x4.extend_low_i16x8_u(h)));
    v128.store(d, fromHalf4(i32x4.extend_high_i16x8_u(h)), 16);
  }
  for (; i < n; i++) {
    const bits = fromHalf4(i32x4.splat(<i32>load<u16>(src + (<usize>i << 1))));
    store<i32>(dst + (<usize>i << 2), i32x4.extract_lane(bits, 0));
  }
}
