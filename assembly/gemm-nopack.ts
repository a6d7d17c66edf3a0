// Small-m GEMM for inference, XNNPACK style: C[m x n] = A[m x k] * B[k x n] + bias, row-major, no transposes,
// read in place: nothing is packed, no workspace, no allocation. Up to four rows of A share each chunk of a B row
// they load: rows go in blocks of 4 (4x8 register tiles), then 2 (2x16), then 1 (1x32, 1x16); f32x4 over n with a
// 4-wide and then a scalar tail for n % 4. Relaxed build: fused multiply-add (relaxed_madd), like f32_gemm's.
// f32_gemm packs the whole B on every call, which dominates when m is a few rows; NOPACK_MAX_ROWS
// (src/core/gemm-nopack.ts) says up to how many rows the network's inference uses this kernel instead.

const RELAXED: bool = ASC_FEATURE_RELAXED_SIMD;

// acc + a * b: fused in the relaxed build, mul then add in the plain one.
@inline function madd(a: v128, b: v128, acc: v128): v128 {
  return RELAXED ? f32x4.relaxed_madd(a, b, acc) : f32x4.add(acc, f32x4.mul(a, b));
}

// Stores four outputs: acc + bias (bias 0 = none).
@inline function put(out: usize, acc: v128, bias: usize): void {
  v128.store(out, bias ? f32x4.add(acc, v128.load(bias)) : acc);
}

@inline function at(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

// One row x 16 columns: a is the row, b column j0 of B's first row, rowB B's row stride in bytes.
function tile1x16(c: usize, a: usize, b: usize, rowB: usize, k: i32, bias: usize): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  const aEnd = at(a, k);
  while (a < aEnd) {
    const va = v128.load32_splat(a);
    x0 = madd(va, v128.load(b), x0);
    x1 = madd(va, v128.load(b, 16), x1);
    x2 = madd(va, v128.load(b, 32), x2);
    x3 = madd(va, v128.load(b, 48), x3);
    a += 4;
    b += rowB;
  }
  put(c, x0, bias);
  put(c + 16, x1, bias ? bias + 16 : 0);
  put(c + 32, x2, bias ? bias + 32 : 0);
  put(c + 48, x3, bias ? bias + 48 : 0);
}

// One row x 32 columns.
function tile1x32(c: usize, a: usize, b: usize, rowB: usize, k: i32, bias: usize): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let x4 = f32x4.splat(0), x5 = f32x4.splat(0), x6 = f32x4.splat(0), x7 = f32x4.splat(0);
  const aEnd = at(a, k);
  while (a < aEnd) {
    const va = v128.load32_splat(a);
    x0 = madd(va, v128.load(b), x0);
    x1 = madd(va, v128.load(b, 16), x1);
    x2 = madd(va, v128.load(b, 32), x2);
    x3 = madd(va, v128.load(b, 48), x3);
    x4 = madd(va, v128.load(b, 64), x4);
    x5 = madd(va, v128.load(b, 80), x5);
    x6 = madd(va, v128.load(b, 96), x6);
    x7 = madd(va, v128.load(b, 112), x7);
    a += 4;
    b += rowB;
  }
  put(c, x0, bias);
  put(c + 16, x1, bias ? bias + 16 : 0);
  put(c + 32, x2, bias ? bias + 32 : 0);
  put(c + 48, x3, bias ? bias + 48 : 0);
  put(c + 64, x4, bias ? bias + 64 : 0);
  put(c + 80, x5, bias ? bias + 80 : 0);
  put(c + 96, x6, bias ? bias + 96 : 0);
  put(c + 112, x7, bias ? bias + 112 : 0);
}

// One row x 4 columns.
function tile1x4(c: usize, a: usize, b: usize, rowB: usize, k: i32, bias: usize): void {
  let x0 = f32x4.splat(0);
  const aEnd = at(a, k);
  while (a < aEnd) {
    x0 = madd(v128.load32_splat(a), v128.load(b), x0);
    a += 4;
    b += rowB;
  }
  put(c, x0, bias);
}

// Two rows (a0, a1 -> c0, c1) x 16 columns.
function tile2x16(c0: usize, c1: usize, a0: usize, a1: usize, b: usize, rowB: usize, k: i32, bias: usize): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
  const span = <usize>k << 2;
  for (let p: usize = 0; p < span; p += 4) {
    const b0 = v128.load(b), b1 = v128.load(b, 16), b2 = v128.load(b, 32), b3 = v128.load(b, 48);
    let va = v128.load32_splat(a0 + p);
    x0 = madd(va, b0, x0);
    x1 = madd(va, b1, x1);
    x2 = madd(va, b2, x2);
    x3 = madd(va, b3, x3);
    va = v128.load32_splat(a1 + p);
    y0 = madd(va, b0, y0);
    y1 = madd(va, b1, y1);
    y2 = madd(va, b2, y2);
    y3 = madd(va, b3, y3);
    b += rowB;
  }
  const b16: usize = bias ? bias + 16 : 0, b32: usize = bias ? bias + 32 : 0, b48: usize = bias ? bias + 48 : 0;
  put(c0, x0, bias);
  put(c0 + 16, x1, b16);
  put(c0 + 32, x2, b32);
  put(c0 + 48, x3, b48);
  put(c1, y0, bias);
  put(c1 + 16, y1, b16);
  put(c1 + 32, y2, b32);
  put(c1 + 48, y3, b48);
}

// Two rows x 4 columns.
function tile2x4(c0: usize, c1: usize, a0: usize, a1: usize, b: usize, rowB: usize, k: i32, bias: usize): void {
  let x0 = f32x4.splat(0), y0 = f32x4.splat(0);
  const span = <usize>k << 2;
  for (let p: usize = 0; p < span; p += 4) {
    const b0 = v128.load(b);
    x0 = madd(v128.load32_splat(a0 + p), b0, x0);
    y0 = madd(v128.load32_splat(a1 + p), b0, y0);
    b += rowB;
  }
  put(c0, x0, bias);
  put(c1, y0, bias);
}

// Four rows (a0..a3 -> c0..c3) x 8 columns.
function tile4x8(
  c0: usize, c1: usize, c2: usize, c3: usize, a0: usize, a1: usize, a2: usize, a3: usize,
  b: usize, rowB: usize, k: i32, bias: usize,
): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), y0 = f32x4.splat(0), y1 = f32x4.splat(0);
  let z0 = f32x4.splat(0), z1 = f32x4.splat(0), w0 = f32x4.splat(0), w1 = f32x4.splat(0);
  const span = <usize>k << 2;
  for (let p: usize = 0; p < span; p += 4) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let va = v128.load32_splat(a0 + p);
    x0 = madd(va, b0, x0);
    x1 = madd(va, b1, x1);
    va = v128.load32_splat(a1 + p);
    y0 = madd(va, b0, y0);
    y1 = madd(va, b1, y1);
    va = v128.load32_splat(a2 + p);
    z0 = madd(va, b0, z0);
    z1 = madd(va, b1, z1);
    va = v128.load32_splat(a3 + p);
    w0 = madd(va, b0, w0);
    w1 = madd(va, b1, w1);
    b += rowB;
  }
  const b16: usize = bias ? bias + 16 : 0;
  put(c0, x0, bias);
  put(c0 + 16, x1, b16);
  put(c1, y0, bias);
  put(c1 + 16, y1, b16);
  put(c2, z0, bias);
  put(c2 + 16, z1, b16);
  put(c3, w0, bias);
  put(c3 + 16, w1, b16);
}

// Four rows x 4 columns.
function tile4x4(
  c0: usize, c1: usize, c2: usize, c3: usize, a0: usize, a1: usize, a2: usize, a3: usize,
  b: usize, rowB: usize, k: i32, bias: usize,
): void {
  let x0 = f32x4.splat(0), y0 = f32x4.splat(0), z0 = f32x4.splat(0), w0 = f32x4.splat(0);
  const span = <usize>k << 2;
  for (let p: usize = 0; p < span; p += 4) {
    const b0 = v128.load(b);
    x0 = madd(v128.load32_splat(a0 + p), b0, x0);
    y0 = madd(v128.load32_splat(a1 + p), b0, y0);
    z0 = madd(v128.load32_splat(a2 + p), b0, z0);
    w0 = madd(v128.load32_splat(a3 + p), b0, w0);
    b += rowB;
  }
  put(c0, x0, bias);
  put(c1, y0, bias);
  put(c2, z0, bias);
  put(c3, w0, bias);
}

// One output: row a . column b (k values, rowB bytes apart) + bias.
function dot(c: usize, a: usize, b: usize, rowB: usize, k: i32, bias: usize): void {
  let sum: f32 = 0;
  const aEnd = at(a, k);
  while (a < aEnd) {
    sum += load<f32>(a) * load<f32>(b);
    a += 4;
    b += rowB;
  }
  store<f32>(c, bias ? sum + load<f32>(bias) : sum);
}

// One row of A against all n columns.
function rows1(c: usize, a: usize, b: usize, rowB: usize, n: i32, k: i32, bias: usize): void {
  let j = 0;
  for (; j + 32 <= n; j += 32) tile1x32(at(c, j), a, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  for (; j + 16 <= n; j += 16) tile1x16(at(c, j), a, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  for (; j + 4 <= n; j += 4) tile1x4(at(c, j), a, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  for (; j < n; j++) dot(at(c, j), a, at(b, j), rowB, k, bias ? at(bias, j) : 0);
}

// Two rows of A against all n columns.
function rows2(c0: usize, c1: usize, a0: usize, a1: usize, b: usize, rowB: usize, n: i32, k: i32, bias: usize): void {
  let j = 0;
  for (; j + 16 <= n; j += 16) tile2x16(at(c0, j), at(c1, j), a0, a1, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  for (; j + 4 <= n; j += 4) tile2x4(at(c0, j), at(c1, j), a0, a1, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  for (; j < n; j++) {
    const bj = bias ? at(bias, j) : 0;
    dot(at(c0, j), a0, at(b, j), rowB, k, bj);
    dot(at(c1, j), a1, at(b, j), rowB, k, bj);
  }
}

// Four rows of A against all n columns.
function rows4(
  c0: usize, c1: usize, c2: usize, c3: usize, a0: usize, a1: usize, a2: usize, a3: usize,
  b: usize, rowB: usize, n: i32, k: i32, bias: usize,
): void {
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    tile4x8(at(c0, j), at(c1, j), at(c2, j), at(c3, j), a0, a1, a2, a3, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  }
  for (; j + 4 <= n; j += 4) {
    tile4x4(at(c0, j), at(c1, j), at(c2, j), at(c3, j), a0, a1, a2, a3, at(b, j), rowB, k, bias ? at(bias, j) : 0);
  }
  for (; j < n; j++) {
    const bj = bias ? at(bias, j) : 0;
    dot(at(c0, j), a0, at(b, j), rowB, k, bj);
    dot(at(c1, j), a1, at(b, j), rowB, k, bj);
    dot(at(c2, j), a2, at(b, j), rowB, k, bj);
    dot(at(c3, j), a3, at(b, j), rowB, k, bj);
  }
}

/**
 * C[m x n] = A[m x k] * B[k x n] + bias, row-major with leading dimensions in elements; bias (0 for none) points
 * to n floats added to every row. C is not read; k <= 0 gives C = bias (or 0). Reads A and B in place (no
 * workspace), so it pays no packing: faster than f32_gemm for a few rows, slower for many. Any m works.
 */
export function f32_gemm_nopack(c: usize, ldc: i32, a: usize, lda: i32, b: usize, ldb: i32, m: i32, n: i32, k: i32, bias: usize): void {
  if (m <= 0 || n <= 0) return;
  if (k < 0) k = 0;
  const rowC = <usize>ldc << 2, rowA = <usize>lda << 2, rowB = <usize>ldb << 2;
  let i = 0;
  while (i < m) {
    const rest = m - i;
    const c0 = c + <usize>i * rowC, a0 = a + <usize>i * rowA;
    if (rest >= 4) {
      rows4(c0, c0 + rowC, c0 + 2 * rowC, c0 + 3 * rowC, a0, a0 + rowA, a0 + 2 * rowA, a0 + 3 * rowA, b, rowB, n, k, bias);
      i += 4;
    } else if (rest >= 2) {
      rows2(c0, c0 + rowC, a0, a0 + rowA, b, rowB, n, k, bias);
      i += 2;
    } else {
      rows1(c0, a0, b, rowB, n, k, bias);
      i += 1;
    }
  }
}
