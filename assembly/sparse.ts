// Sparse kernels for the sparse input layer: a CSR matrix times a dense one (forward), the transposed scatter-add
// (the weight gradient touches only the rows of features present), and gathering / scatter-adding a set of rows
// (what a parameter-server client pulls and pushes). SIMD over the output width n, in blocks of 32, 16, 8 and 4
// columns held in registers, then a scalar tail. Nothing is allocated.
//
// Every kernel first checks each index it will follow against the rows of the indexed matrix (one unsigned compare
// per index, four at a time) and returns the position of the first one outside [0, bound), having written nothing;
// -1 means every index was in range and the kernel ran. So no kernel writes outside its buffers, whatever the
// indices say. A CSR row r spans positions [rowPtr[r], rowPtr[r+1]) of colIdx and values (rowPtr[0] may be > 0);
// a row whose end is before its start is empty. Outputs must not overlap inputs.

const RELAXED: bool = ASC_FEATURE_RELAXED_SIMD;

// a * b + c: fused in the relaxed build, mul then add in the plain one.
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (RELAXED) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline function i32At(base: usize, index: i32): i32 {
  return load<i32>(base + (<usize>index << 2));
}

@inline function f32At(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

// Byte address of row `row` of a matrix at `base` whose rows are `rowBytes` apart.
@inline function rowAt(base: usize, row: i32, rowBytes: usize): usize {
  return base + <usize>row * rowBytes;
}

/** The first position k in [from, to) whose idx[k] is outside [0, bound), or -1 (also when to <= from). */
function findBadIndex(idx: usize, from: i32, to: i32, bound: i32): i32 {
  if (bound <= 0) return from < to ? from : -1; // no index is in range (and the unsigned compares need bound > 0)
  const vb = i32x4.splat(bound);
  let k = from;
  for (; k + 4 <= to; k += 4) {
    if (v128.any_true(i32x4.ge_u(v128.load(f32At(idx, k)), vb))) break;
  }
  for (; k < to; k++) {
    if (<u32>i32At(idx, k) >= <u32>bound) return k;
  }
  return -1;
}

/** The first position k of any row's range [rowPtr[r], rowPtr[r+1]) whose colIdx[k] is outside [0, fanIn), or -1. */
function findBadColumn(rowPtr: usize, colIdx: usize, rows: i32, fanIn: i32): i32 {
  for (let r = 0; r < rows; r++) {
    const bad = findBadIndex(colIdx, i32At(rowPtr, r), i32At(rowPtr, r + 1), fanIn);
    if (bad >= 0) return bad;
  }
  return -1;
}

// out[0..4) = acc + beta * out (out unread when beta == 0) + bias[0..4) (when bias != 0).
@inline function finish4(out: usize, acc: v128, beta: f32, bias: usize): void {
  let r = acc;
  if (beta != 0) r = madd(f32x4.splat(beta), v128.load(out), r);
  if (bias) r = f32x4.add(r, v128.load(bias));
  v128.store(out, r);
}

@inline function biasAt(bias: usize, j: i32): usize {
  return bias ? f32At(bias, j) : 0;
}

// Forward blocks: y[j, j+B) of one row = sum over k in [k0, k1) of values[k] * w[colIdx[k], j..j+B), B = 32/16/8/4,
// the accumulators in registers. `wj` is the address of w's column j in row 0.
function dotBlock32(y: usize, colIdx: usize, values: usize, wj: usize, rowBytes: usize, k0: i32, k1: i32, beta: f32, bias: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  for (let k = k0; k < k1; k++) {
    const src = rowAt(wj, i32At(colIdx, k), rowBytes);
    const v = v128.load32_splat(f32At(values, k));
    a0 = madd(v, v128.load(src), a0);
    a1 = madd(v, v128.load(src, 16), a1);
    a2 = madd(v, v128.load(src, 32), a2);
    a3 = madd(v, v128.load(src, 48), a3);
    a4 = madd(v, v128.load(src, 64), a4);
    a5 = madd(v, v128.load(src, 80), a5);
    a6 = madd(v, v128.load(src, 96), a6);
    a7 = madd(v, v128.load(src, 112), a7);
  }
  finish4(y, a0, beta, bias);
  finish4(y + 16, a1, beta, bias ? bias + 16 : 0);
  finish4(y + 32, a2, beta, bias ? bias + 32 : 0);
  finish4(y + 48, a3, beta, bias ? bias + 48 : 0);
  finish4(y + 64, a4, beta, bias ? bias + 64 : 0);
  finish4(y + 80, a5, beta, bias ? bias + 80 : 0);
  finish4(y + 96, a6, beta, bias ? bias + 96 : 0);
  finish4(y + 112, a7, beta, bias ? bias + 112 : 0);
}

function dotBlock16(y: usize, colIdx: usize, values: usize, wj: usize, rowBytes: usize, k0: i32, k1: i32, beta: f32, bias: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let k = k0; k < k1; k++) {
    const src = rowAt(wj, i32At(colIdx, k), rowBytes);
    const v = v128.load32_splat(f32At(values, k));
    a0 = madd(v, v128.load(src), a0);
    a1 = madd(v, v128.load(src, 16), a1);
    a2 = madd(v, v128.load(src, 32), a2);
    a3 = madd(v, v128.load(src, 48), a3);
  }
  finish4(y, a0, beta, bias);
  finish4(y + 16, a1, beta, bias ? bias + 16 : 0);
  finish4(y + 32, a2, beta, bias ? bias + 32 : 0);
  finish4(y + 48, a3, beta, bias ? bias + 48 : 0);
}

function dotBlock8(y: usize, colIdx: usize, values: usize, wj: usize, rowBytes: usize, k0: i32, k1: i32, beta: f32, bias: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  for (let k = k0; k < k1; k++) {
    const src = rowAt(wj, i32At(colIdx, k), rowBytes);
    const v = v128.load32_splat(f32At(values, k));
    a0 = madd(v, v128.load(src), a0);
    a1 = madd(v, v128.load(src, 16), a1);
  }
  finish4(y, a0, beta, bias);
  finish4(y + 16, a1, beta, bias ? bias + 16 : 0);
}

function dotBlock4(y: usize, colIdx: usize, values: usize, wj: usize, rowBytes: usize, k0: i32, k1: i32, beta: f32, bias: usize): void {
  let a0 = f32x4.splat(0);
  for (let k = k0; k < k1; k++) {
    a0 = madd(v128.load32_splat(f32At(values, k)), v128.load(rowAt(wj, i32At(colIdx, k), rowBytes)), a0);
  }
  finish4(y, a0, beta, bias);
}

// One output column of the scalar tail: four entries at a time in the lanes of one accumulator (their weights
// gathered lane by lane), so the sum is not one long chain of dependent adds.
function dot1(y: usize, colIdx: usize, values: usize, wj: usize, rowBytes: usize, k0: i32, k1: i32, beta: f32, bias: usize): void {
  let acc = f32x4.splat(0);
  let k = k0;
  for (; k + 4 <= k1; k += 4) {
    let wv = f32x4.splat(load<f32>(rowAt(wj, i32At(colIdx, k), rowBytes)));
    wv = f32x4.replace_lane(wv, 1, load<f32>(rowAt(wj, i32At(colIdx, k + 1), rowBytes)));
    wv = f32x4.replace_lane(wv, 2, load<f32>(rowAt(wj, i32At(colIdx, k + 2), rowBytes)));
    wv = f32x4.replace_lane(wv, 3, load<f32>(rowAt(wj, i32At(colIdx, k + 3), rowBytes)));
    acc = madd(v128.load(f32At(values, k)), wv, acc);
  }
  let sum = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; k < k1; k++) sum += load<f32>(f32At(values, k)) * load<f32>(rowAt(wj, i32At(colIdx, k), rowBytes));
  if (beta != 0) sum += beta * load<f32>(y);
  if (bias) sum += load<f32>(bias);
  store<f32>(y, sum);
}

/**
 * Sparse-by-dense product, the sparse input layer's forward: for each of `rows` CSR rows r,
 * Y[r, 0..n) = beta * Y[r, 0..n) + sum over k in [rowPtr[r], rowPtr[r+1]) of values[k] * W[colIdx[k], 0..n)
 * (+ bias[0..n) when bias != 0). beta == 0 means Y is not read. W has fanIn rows of ldw floats; Y rows are ldy apart.
 * Returns -1, or (nothing written) the first position whose column index is outside [0, fanIn).
 */
export function f32_csr_gemm(
  y: usize, ldy: i32, rowPtr: usize, colIdx: usize, values: usize, w: usize, ldw: i32, fanIn: i32,
  rows: i32, n: i32, bias: usize, beta: f32,
): i32 {
  const bad = findBadColumn(rowPtr, colIdx, rows, fanIn);
  if (bad >= 0 || n <= 0) return bad;
  const wBytes = <usize>ldw << 2;
  for (let r = 0; r < rows; r++) {
    const yr = rowAt(y, r, <usize>ldy << 2);
    const k0 = i32At(rowPtr, r), k1 = i32At(rowPtr, r + 1);
    let j = 0;
    for (; j + 32 <= n; j += 32) dotBlock32(f32At(yr, j), colIdx, values, f32At(w, j), wBytes, k0, k1, beta, biasAt(bias, j));
    if (j + 16 <= n) {
      dotBlock16(f32At(yr, j), colIdx, values, f32At(w, j), wBytes, k0, k1, beta, biasAt(bias, j));
      j += 16;
    }
    if (j + 8 <= n) {
      dotBlock8(f32At(yr, j), colIdx, values, f32At(w, j), wBytes, k0, k1, beta, biasAt(bias, j));
      j += 8;
    }
    if (j + 4 <= n) {
      dotBlock4(f32At(yr, j), colIdx, values, f32At(w, j), wBytes, k0, k1, beta, biasAt(bias, j));
      j += 4;
    }
    for (; j < n; j++) dot1(f32At(yr, j), colIdx, values, f32At(w, j), wBytes, k0, k1, beta, biasAt(bias, j));
  }
  return -1;
}

// Scatter blocks: dw[colIdx[k], j..j+B) += values[k] * (alpha * d[j..j+B)) for k in [k0, k1), the scaled row of D
// in registers; each update reads dW afresh, so repeated indices add up. `dwj` is the address of dW's column j in row 0.
function scatterBlock32(dwj: usize, rowBytes: usize, colIdx: usize, values: usize, k0: i32, k1: i32, d: usize, alpha: f32): void {
  const va = f32x4.splat(alpha);
  const d0 = f32x4.mul(va, v128.load(d)), d1 = f32x4.mul(va, v128.load(d, 16));
  const d2 = f32x4.mul(va, v128.load(d, 32)), d3 = f32x4.mul(va, v128.load(d, 48));
  const d4 = f32x4.mul(va, v128.load(d, 64)), d5 = f32x4.mul(va, v128.load(d, 80));
  const d6 = f32x4.mul(va, v128.load(d, 96)), d7 = f32x4.mul(va, v128.load(d, 112));
  for (let k = k0; k < k1; k++) {
    const dst = rowAt(dwj, i32At(colIdx, k), rowBytes);
    const v = v128.load32_splat(f32At(values, k));
    v128.store(dst, madd(v, d0, v128.load(dst)));
    v128.store(dst, madd(v, d1, v128.load(dst, 16)), 16);
    v128.store(dst, madd(v, d2, v128.load(dst, 32)), 32);
    v128.store(dst, madd(v, d3, v128.load(dst, 48)), 48);
    v128.store(dst, madd(v, d4, v128.load(dst, 64)), 64);
    v128.store(dst, madd(v, d5, v128.load(dst, 80)), 80);
    v128.store(dst, madd(v, d6, v128.load(dst, 96)), 96);
    v128.store(dst, madd(v, d7, v128.load(dst, 112)), 112);
  }
}

function scatterBlock16(dwj: usize, rowBytes: usize, colIdx: usize, values: usize, k0: i32, k1: i32, d: usize, alpha: f32): void {
  const va = f32x4.splat(alpha);
  const d0 = f32x4.mul(va, v128.load(d)), d1 = f32x4.mul(va, v128.load(d, 16));
  const d2 = f32x4.mul(va, v128.load(d, 32)), d3 = f32x4.mul(va, v128.load(d, 48));
  for (let k = k0; k < k1; k++) {
    const dst = rowAt(dwj, i32At(colIdx, k), rowBytes);
    const v = v128.load32_splat(f32At(values, k));
    v128.store(dst, madd(v, d0, v128.load(dst)));
    v128.store(dst, madd(v, d1, v128.load(dst, 16)), 16);
    v128.store(dst, madd(v, d2, v128.load(dst, 32)), 32);
    v128.store(dst, madd(v, d3, v128.load(dst, 48)), 48);
  }
}

function scatterBlock8(dwj: usize, rowBytes: usize, colIdx: usize, values: usize, k0: i32, k1: i32, d: usize, alpha: f32): void {
  const va = f32x4.splat(alpha);
  const d0 = f32x4.mul(va, v128.load(d)), d1 = f32x4.mul(va, v128.load(d, 16));
  for (let k = k0; k < k1; k++) {
    const dst = rowAt(dwj, i32At(colIdx, k), rowBytes);
    const v = v128.load32_splat(f32At(values, k));
    v128.store(dst, madd(v, d0, v128.load(dst)));
    v128.store(dst, madd(v, d1, v128.load(dst, 16)), 16);
  }
}

function scatterBlock4(dwj: usize, rowBytes: usize, colIdx: usize, values: usize, k0: i32, k1: i32, d: usize, alpha: f32): void {
  const d0 = f32x4.mul(f32x4.splat(alpha), v128.load(d));
  for (let k = k0; k < k1; k++) {
    const dst = rowAt(dwj, i32At(colIdx, k), rowBytes);
    v128.store(dst, madd(v128.load32_splat(f32At(values, k)), d0, v128.load(dst)));
  }
}

// One column of the scalar tail: four scaled entries at a time, each added in order (repeated indices add up).
function scatter1(dwj: usize, rowBytes: usize, colIdx: usize, values: usize, k0: i32, k1: i32, d: usize, alpha: f32): void {
  const d0 = alpha * load<f32>(d);
  const vd = f32x4.splat(d0);
  let k = k0;
  for (; k + 4 <= k1; k += 4) {
    const s = f32x4.mul(v128.load(f32At(values, k)), vd);
    const a0 = rowAt(dwj, i32At(colIdx, k), rowBytes);
    store<f32>(a0, load<f32>(a0) + f32x4.extract_lane(s, 0));
    const a1 = rowAt(dwj, i32At(colIdx, k + 1), rowBytes);
    store<f32>(a1, load<f32>(a1) + f32x4.extract_lane(s, 1));
    const a2 = rowAt(dwj, i32At(colIdx, k + 2), rowBytes);
    store<f32>(a2, load<f32>(a2) + f32x4.extract_lane(s, 2));
    const a3 = rowAt(dwj, i32At(colIdx, k + 3), rowBytes);
    store<f32>(a3, load<f32>(a3) + f32x4.extract_lane(s, 3));
  }
  for (; k < k1; k++) {
    const dst = rowAt(dwj, i32At(colIdx, k), rowBytes);
    store<f32>(dst, load<f32>(dst) + load<f32>(f32At(values, k)) * d0);
  }
}

/**
 * Transposed scatter-add, the sparse layer's weight gradient dW += alpha * X^T D: for each of `rows` CSR rows r and
 * each k in [rowPtr[r], rowPtr[r+1]), dW[colIdx[k], 0..n) += alpha * values[k] * D[r, 0..n). Only the rows of
 * features present are touched; repeated indices add up. dW has fanIn rows of lddw floats; D rows are ldd apart.
 * Returns -1, or (nothing written) the first position whose column index is outside [0, fanIn).
 */
export function f32_csr_scatter_add(
  dw: usize, lddw: i32, fanIn: i32, rowPtr: usize, colIdx: usize, values: usize, d: usize, ldd: i32,
  rows: i32, n: i32, alpha: f32,
): i32 {
  const bad = findBadColumn(rowPtr, colIdx, rows, fanIn);
  if (bad >= 0 || n <= 0) return bad;
  const dwBytes = <usize>lddw << 2;
  for (let r = 0; r < rows; r++) {
    const dr = rowAt(d, r, <usize>ldd << 2);
    const k0 = i32At(rowPtr, r), k1 = i32At(rowPtr, r + 1);
    if (k1 <= k0) continue;
    let j = 0;
    for (; j + 32 <= n; j += 32) scatterBlock32(f32At(dw, j), dwBytes, colIdx, values, k0, k1, f32At(dr, j), alpha);
    if (j + 16 <= n) {
      scatterBlock16(f32At(dw, j), dwBytes, colIdx, values, k0, k1, f32At(dr, j), alpha);
      j += 16;
    }
    if (j + 8 <= n) {
      scatterBlock8(f32At(dw, j), dwBytes, colIdx, values, k0, k1, f32At(dr, j), alpha);
      j += 8;
    }
    if (j + 4 <= n) {
      scatterBlock4(f32At(dw, j), dwBytes, colIdx, values, k0, k1, f32At(dr, j), alpha);
      j += 4;
    }
    for (; j < n; j++) scatter1(f32At(dw, j), dwBytes, colIdx, values, k0, k1, f32At(dr, j), alpha);
  }
  return -1;
}

/**
 * Row gather: out[i, 0..n) = src[idx[i], 0..n) for i < count (out rows ldout apart; src has srcRows rows of ldsrc).
 * Returns -1, or (nothing written) the first i whose idx[i] is outside [0, srcRows).
 */
export function f32_rows_gather(out: usize, ldout: i32, src: usize, ldsrc: i32, srcRows: i32, idx: usize, count: i32, n: i32): i32 {
  const bad = findBadIndex(idx, 0, count, srcRows);
  if (bad >= 0 || n <= 0) return bad;
  const srcBytes = <usize>ldsrc << 2;
  const outBytes = <usize>ldout << 2;
  for (let i = 0; i < count; i++) {
    const from = rowAt(src, i32At(idx, i), srcBytes);
    const to = rowAt(out, i, outBytes);
    let j = 0;
    for (; j + 16 <= n; j += 16) {
      const at = <usize>j << 2;
      v128.store(to + at, v128.load(from + at));
      v128.store(to + at, v128.load(from + at, 16), 16);
      v128.store(to + at, v128.load(from + at, 32), 32);
      v128.store(to + at, v128.load(from + at, 48), 48);
    }
    for (; j + 4 <= n; j += 4) v128.store(f32At(to, j), v128.load(f32At(from, j)));
    for (; j < n; j++) store<f32>(f32At(to, j), load<f32>(f32At(from, j)));
  }
  return -1;
}

/**
 * Row scatter-add: dst[idx[i], 0..n) += alpha * src[i, 0..n) for i < count, in order (repeated indices add up;
 * dst has dstRows rows of lddst floats; src rows are ldsrc apart). Returns -1, or (nothing written) the first i
 * whose idx[i] is outside [0, dstRows).
 */
export function f32_rows_scatter_add(
  dst: usize, lddst: i32, dstRows: i32, idx: usize, count: i32, src: usize, ldsrc: i32, n: i32, alpha: f32,
): i32 {
  const bad = findBadIndex(idx, 0, count, dstRows);
  if (bad >= 0 || n <= 0) return bad;
  const va = f32x4.splat(alpha);
  const dstBytes = <usize>lddst << 2;
  const srcBytes = <usize>ldsrc << 2;
  for (let i = 0; i < count; i++) {
    const to = rowAt(dst, i32At(idx, i), dstBytes);
    const from = rowAt(src, i, srcBytes);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const at = <usize>j << 2;
      v128.store(to + at, madd(va, v128.load(from + at), v128.load(to + at)));
    }
    for (; j < n; j++) store<f32>(f32At(to, j), load<f32>(f32At(to, j)) + alpha * load<f32>(f32At(from, j)));
  }
  return -1;
}
