// Reference f32 <-> IEEE binary16 (f16) conversion in plain TypeScript bit manipulation, the definition that
// assembly/convert.ts must match bit for bit: round to nearest even, overflow to +-inf, subnormals both ways, -0
// kept, NaN kept NaN with its sign and top payload bits and the quiet bit set (as x86 F16C and Arm FCVT do).
// Arrays are read and written through integer views, so NaN payloads never pass through a JavaScript number.

/** f16 bits (0..0xffff) of the f32 whose bits are `bits` (a u32 or i32). */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return mantissa !== 0 ? sign | 0x7e00 | (mantissa >>> 13) : sign | 0x7c00;
  const half = exponent - 127 + 15;
  if (half >= 0x1f) return sign | 0x7c00;
  if (half >= 1) {
    // Normal f16: keep 10 of 23 mantissa bits; a carry out of the mantissa bumps the exponent (to inf at the top).
    return sign | roundShift((half << 23) | mantissa, 13);
  }
  // Subnormal f16 (or zero): the value in units of 2^-24 is m * 2^(exponent - 126), m with its implicit bit.
  const shift = 126 - exponent;
  if (shift > 24) return sign;
  return sign | roundShift(mantissa | 0x800000, shift);
}

/** f32 bits (a u32) of the f16 whose bits are `half` (0..0xffff): exact, except a NaN gets its quiet bit. */
export function f16BitsToF32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13) | (mantissa !== 0 ? 0x400000 : 0)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 127 - 15) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: mantissa * 2^-24 with its leading 1 at bit p is 2^(p - 24) * (1 + rest).
  const p = 31 - Math.clz32(mantissa);
  return (sign | ((p - 24 + 127) << 23) | ((mantissa << (23 - p)) & 0x7fffff)) >>> 0;
}

/** `value` rounded to f32 (as the kernel receives it), then to f16 bits. */
export function toFloat16Bits(value: number): number {
  scratch[0] = value;
  return f32BitsToF16Bits(scratchBits[0]!);
}

/** The number an f16 bit pattern stands for. */
export function fromFloat16Bits(half: number): number {
  scratchBits[0] = f16BitsToF32Bits(half);
  return scratch[0]!;
}

/** dst[i] = f16 bits of src[i] for i < n. */
export function toFloat16Reference(dst: Uint16Array, src: Float32Array | Uint32Array, n: number): void {
  const bits = src instanceof Uint32Array ? src : new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < n; i++) dst[i] = f32BitsToF16Bits(bits[i]!);
}

/** dst[i] = the f32 of the f16 bits src[i] for i < n (written as bits into dst's memory). */
export function fromFloat16Reference(dst: Float32Array | Uint32Array, src: Uint16Array, n: number): void {
  const bits = dst instanceof Uint32Array ? dst : new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < n; i++) bits[i] = f16BitsToF32Bits(src[i]!);
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

// value >> shift rounded to nearest, ties to even (shift 1..24, value < 2^31).
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return rest > halfway || (rest === halfway && (kept & 1) === 1) ? kept + 1 : kept;
}
