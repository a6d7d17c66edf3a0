// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C (+ bias per column), op in {N, T}.
// Goto/BLIS structure: B is packed into k-major panels of NR = 8 columns, A into k-major panels of MR rows,
// so the transposed operand is never read with a stride in the inner loop; an MRx8 register tile
// (4x8 mul+add in the plain SIMD build, 6x8 relaxed_madd in the relaxed build) does the arithmetic.
// The caller passes a workspace of f32_gemm_workspace_bytes(m, n, k) bytes; the kernel allocates nothing.

const RELAXED: bool = ASC_FEATURE_RELAXED_SIMD;
const MR: i32 = RELAXED ? 6 : 4;
const NR: i32 = 8;
const KC: i32 = 256;
const MC: i32 = RELAXED ? 96 : 80;
const NC: i32 = 1024;
// Plain SIMD build: packed A holds each value splatted to a full v128, so Node 20's V8 folds the micro-kernel's
// load offsets. Relaxed build (newer engines): plain floats, broadcast by load32_splat, a quarter of the bytes.
const A_BYTES: i32 = RELAXED ? 4 : 16;

@inline function min(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

@inline function roundUp(x: i32, to: i32): i32 {
  return ((x + to - 1) / to) * to;
}

// Depth of the K blocks for depth k: at most KC, as equal as possible (784 = 4 x 196, not 3 x 256 + 16).
@inline function kBlock(k: i32): i32 {
  const blocks = (k + KC - 1) / KC;
  return (k + blocks - 1) / blocks;
}

@inline function f32At(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

/** Rows of the register tile in this build (4 plain SIMD, 6 relaxed SIMD). */
export function f32_gemm_mr(): i32 {
  return MR;
}

function packedABytes(m: i32, k: i32): i32 {
  return roundUp(min(m, MC), MR) * min(k, KC) * A_BYTES;
}

function packedBBytes(n: i32, k: i32): i32 {
  return min(k, KC) * roundUp(min(n, NC), NR) * 4;
}

/** Workspace bytes f32_gemm needs for an m x n x k product (any smaller product fits too). */
export function f32_gemm_workspace_bytes(m: i32, n: i32, k: i32): i32 {
  return roundUp(packedABytes(m, k), 64) + roundUp(packedBBytes(n, k), 64) + MR * NR * 4;
}

// One packed A value: splatted (plain build) or as is (relaxed build).
@inline function storeA(out: usize, v: f32): void {
  if (RELAXED) store<f32>(out, v);
  else v128.store(out, f32x4.splat(v));
}

// Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) into panels of MR rows: panel[p * MR + r].
function packA(dst: usize, a: usize, lda: i32, transA: i32, i0: i32, p0: i32, mc: i32, kc: i32): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    const panel = dst + <usize>(ir * kc * A_BYTES);
    if (transA) packAPanelT(panel, a, lda, i0 + ir, p0, rows, kc);
    else packAPanelN(panel, a, lda, i0 + ir, p0, rows, kc);
  }
}

// op(A) = A: row r of the panel is contiguous in A; write it with stride MR. The relaxed build moves full panels
// four depths at a time (six rows of four loaded, transposed into 24 consecutive floats).
function packAPanelN(panel: usize, a: usize, lda: i32, i0: i32, p0: i32, rows: i32, kc: i32): void {
  let p = 0;
  if (RELAXED && rows == MR) p = packAPanelN6x4(panel, a, lda, i0, p0, kc);
  for (let r = 0; r < MR; r++) {
    let out = panel + <usize>((p * MR + r) * A_BYTES);
    let src = f32At(a, (i0 + r) * lda + p0 + p);
    for (let q = p; q < kc; q++) {
      storeA(out, r < rows ? load<f32>(src) : 0);
      src += 4;
      out += MR * A_BYTES;
    }
  }
}

// Relaxed build, full panel: depths [0, 4 * floor(kc / 4)); returns how many it packed.
function packAPanelN6x4(panel: usize, a: usize, lda: i32, i0: i32, p0: i32, kc: i32): i32 {
  const row = <usize>lda << 2;
  let src = f32At(a, i0 * lda + p0);
  let out = panel;
  let p = 0;
  for (; p + 4 <= kc; p += 4) {
    const v0 = v128.load(src), v1 = v128.load(src + row), v2 = v128.load(src + 2 * row);
    const v3 = v128.load(src + 3 * row), v4 = v128.load(src + 4 * row), v5 = v128.load(src + 5 * row);
    const t01 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), u01 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
    const t23 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5), u23 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
    const t45 = v128.shuffle<f32>(v4, v5, 0, 4, 1, 5), u45 = v128.shuffle<f32>(v4, v5, 2, 6, 3, 7);
    v128.store(out, v128.shuffle<f32>(t01, t23, 0, 1, 4, 5));
    v128.store(out, v128.shuffle<f32>(t45, t01, 0, 1, 6, 7), 16);
    v128.store(out, v128.shuffle<f32>(t23, t45, 2, 3, 6, 7), 32);
    v128.store(out, v128.shuffle<f32>(u01, u23, 0, 1, 4, 5), 48);
    v128.store(out, v128.shuffle<f32>(u45, u01, 0, 1, 6, 7), 64);
    v128.store(out, v128.shuffle<f32>(u23, u45, 2, 3, 6, 7), 80);
    src += 16;
    out += 96;
  }
  return p;
}

// op(A) = A^T: the MR values of one depth p are contiguous in A (the relaxed build copies a full panel's six as a
// vector and a pair).
function packAPanelT(panel: usize, a: usize, lda: i32, i0: i32, p0: i32, rows: i32, kc: i32): void {
  let out = panel;
  for (let p = 0; p < kc; p++) {
    const src = f32At(a, (p0 + p) * lda + i0);
    if (RELAXED && rows == MR) {
      v128.store(out, v128.load(src));
      store<u64>(out + 16, load<u64>(src + 16));
    } else {
      for (let r = 0; r < MR; r++) storeA(out + <usize>(r * A_BYTES), r < rows ? load<f32>(f32At(src, r)) : 0);
    }
    out += MR * A_BYTES;
  }
}

// Packs depth [p0, p0+kc) x columns [j0, j0+nc) of op(B) into panels of NR columns: panel[p * NR + c].
function packB(dst: usize, b: usize, ldb: i32, transB: i32, p0: i32, j0: i32, kc: i32, nc: i32): void {
  for (let jr = 0; jr < nc; jr += NR) {
    packBPanel(f32At(dst, jr * kc), b, ldb, transB, p0, kc, j0 + jr, min(NR, nc - jr));
  }
}

// Packs depth rows [p0, p0+count) of one panel of `cols` (<= NR) columns starting at column j0; pads to NR.
@inline function packBPanel(out: usize, b: usize, ldb: i32, transB: i32, p0: i32, count: i32, j0: i32, cols: i32): void {
  if (transB) packBPanelT(out, b, ldb, p0, j0, cols, count);
  else packBPanelN(out, b, ldb, p0, j0, cols, count);
}

// op(B) = B: the NR values of one depth p are contiguous in B.
function packBPanelN(panel: usize, b: usize, ldb: i32, p0: i32, j0: i32, cols: i32, kc: i32): void {
  let out = panel;
  let src = f32At(b, p0 * ldb + j0);
  const step = <usize>ldb << 2;
  for (let p = 0; p < kc; p++) {
    if (cols == NR) {
      v128.store(out, v128.load(src));
      v128.store(out, v128.load(src, 16), 16);
    } else {
      for (let c = 0; c < NR; c++) store<f32>(f32At(out, c), c < cols ? load<f32>(f32At(src, c)) : 0);
    }
    out += NR << 2;
    src += step;
  }
}

// op(B) = B^T: column c of the panel is contiguous in B; write it with stride NR. Full panels move four depths at
// a time (eight columns of four loaded, transposed as two 4x4 blocks).
function packBPanelT(panel: usize, b: usize, ldb: i32, p0: i32, j0: i32, cols: i32, kc: i32): void {
  let p = 0;
  if (cols == NR) p = packBPanelT8x4(panel, b, ldb, p0, j0, kc);
  for (let c = 0; c < NR; c++) {
    let out = f32At(panel, p * NR + c);
    let src = f32At(b, (j0 + c) * ldb + p0 + p);
    for (let q = p; q < kc; q++) {
      store<f32>(out, c < cols ? load<f32>(src) : 0);
      src += 4;
      out += NR << 2;
    }
  }
}

// Full panel: depths [0, 4 * floor(kc / 4)); returns how many it packed.
function packBPanelT8x4(panel: usize, b: usize, ldb: i32, p0: i32, j0: i32, kc: i32): i32 {
  const row = <usize>ldb << 2;
  let src = f32At(b, j0 * ldb + p0);
  let out = panel;
  let p = 0;
  for (; p + 4 <= kc; p += 4) {
    transpose4(out, src, row);
    transpose4(out + 16, src + 4 * row, row);
    src += 16;
    out += 4 * NR * 4;
  }
  return p;
}

// Writes the 4x4 block at src (rows `row` bytes apart) transposed, its rows NR floats apart at out.
@inline function transpose4(out: usize, src: usize, row: usize): void {
  const w0 = v128.load(src), w1 = v128.load(src + row), w2 = v128.load(src + 2 * row), w3 = v128.load(src + 3 * row);
  const a0 = v128.shuffle<f32>(w0, w1, 0, 4, 1, 5), a1 = v128.shuffle<f32>(w2, w3, 0, 4, 1, 5);
  const b0 = v128.shuffle<f32>(w0, w1, 2, 6, 3, 7), b1 = v128.shuffle<f32>(w2, w3, 2, 6, 3, 7);
  v128.store(out, v128.shuffle<f32>(a0, a1, 0, 1, 4, 5));
  v128.store(out, v128.shuffle<f32>(a0, a1, 2, 3, 6, 7), NR * 4);
  v128.store(out, v128.shuffle<f32>(b0, b1, 0, 1, 4, 5), 2 * NR * 4);
  v128.store(out, v128.shuffle<f32>(b0, b1, 2, 3, 6, 7), 3 * NR * 4);
}

// Float offset of the packed block (jc, pc) in a prepacked op(B) of k x n: jc blocks in order, each k deep.
@inline function packedBlock(n: i32, k: i32, jc: i32, pc: i32): i32 {
  return jc * k + pc * roundUp(min(NC, n - jc), NR);
}

/** Bytes of a prepacked op(B) of k x n (for f32_gemm_pack_b / f32_gemm_prepacked). */
export function f32_gemm_packed_b_bytes(n: i32, k: i32): i32 {
  return k * roundUp(n, NR) * 4;
}

/**
 * Packs rows [p0, p1) x columns [j0, j1) of op(B) (k x n; B is k x n, or n x k when transB) into `packed`, the
 * layout f32_gemm_prepacked reads. j0 must be a multiple of 8 and j1 one too, or n. Packing row or column
 * bands separately (e.g. after each thread updates its band of a weight matrix) gives the same bytes as all at once.
 */
export function f32_gemm_pack_b(packed: usize, b: usize, ldb: i32, transB: i32, n: i32, k: i32, p0: i32, p1: i32, j0: i32, j1: i32): void {
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    const jFrom = j0 > jc ? j0 : jc;
    const jTo = min(j1, jc + nc);
    const kb = kBlock(k);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      const pFrom = p0 > pc ? p0 : pc;
      const pTo = min(p1, pc + kc);
      if (pFrom >= pTo) continue;
      const block = f32At(packed, packedBlock(n, k, jc, pc));
      for (let j = jFrom; j < jTo; j += NR) {
        const panel = f32At(block, (j - jc) * kc + (pFrom - pc) * NR);
        packBPanel(panel, b, ldb, transB, pFrom, pTo - pFrom, j, min(NR, n - j));
      }
    }
  }
}

// Writes one 8-wide row of the tile: out = alpha * acc + beta * out (out unread when beta == 0) + bias.
@inline function storeRow(out: usize, lo: v128, hi: v128, alpha: v128, beta: f32, bias: usize): void {
  let r0 = f32x4.mul(lo, alpha);
  let r1 = f32x4.mul(hi, alpha);
  if (beta != 0) {
    const vb = f32x4.splat(beta);
    r0 = f32x4.add(r0, f32x4.mul(vb, v128.load(out)));
    r1 = f32x4.add(r1, f32x4.mul(vb, v128.load(out, 16)));
  }
  if (bias) {
    r0 = f32x4.add(r0, v128.load(bias));
    r1 = f32x4.add(r1, v128.load(bias, 16));
  }
  v128.store(out, r0);
  v128.store(out, r1, 16);
}

/** 4x8 micro-kernel, plain SIMD mul+add over pre-splatted A: the fastest shape on Node 20's V8. */
function gemm_4x8_simd(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, alpha: f32, beta: f32, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const aEnd = ap + <usize>(kc * 4 * A_BYTES);
  while (ap < aEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load(ap);
    c00 = f32x4.add(c00, f32x4.mul(a, b0));
    c01 = f32x4.add(c01, f32x4.mul(a, b1));
    a = v128.load(ap, 16);
    c10 = f32x4.add(c10, f32x4.mul(a, b0));
    c11 = f32x4.add(c11, f32x4.mul(a, b1));
    a = v128.load(ap, 32);
    c20 = f32x4.add(c20, f32x4.mul(a, b0));
    c21 = f32x4.add(c21, f32x4.mul(a, b1));
    a = v128.load(ap, 48);
    c30 = f32x4.add(c30, f32x4.mul(a, b0));
    c31 = f32x4.add(c31, f32x4.mul(a, b1));
    ap += 64;
    bp += 32;
  }
  const va = f32x4.splat(alpha);
  const row = <usize>ldc << 2;
  storeRow(c, c00, c01, va, beta, bias);
  storeRow(c + row, c10, c11, va, beta, bias);
  storeRow(c + 2 * row, c20, c21, va, beta, bias);
  storeRow(c + 3 * row, c30, c31, va, beta, bias);
}

/** 6x8 micro-kernel, relaxed SIMD fused multiply-add, A broadcast from packed floats (12 accumulators). */
function gemm_6x8_relaxed(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, alpha: f32, beta: f32, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
  let c50 = f32x4.splat(0), c51 = f32x4.splat(0);
  const aEnd = ap + <usize>(kc * 6 * A_BYTES);
  while (ap < aEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = f32x4.relaxed_madd(a, b0, c00);
    c01 = f32x4.relaxed_madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = f32x4.relaxed_madd(a, b0, c10);
    c11 = f32x4.relaxed_madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = f32x4.relaxed_madd(a, b0, c20);
    c21 = f32x4.relaxed_madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = f32x4.relaxed_madd(a, b0, c30);
    c31 = f32x4.relaxed_madd(a, b1, c31);
    a = v128.load32_splat(ap, 16);
    c40 = f32x4.relaxed_madd(a, b0, c40);
    c41 = f32x4.relaxed_madd(a, b1, c41);
    a = v128.load32_splat(ap, 20);
    c50 = f32x4.relaxed_madd(a, b0, c50);
    c51 = f32x4.relaxed_madd(a, b1, c51);
    ap += 24;
    bp += 32;
  }
  const va = f32x4.splat(alpha);
  const row = <usize>ldc << 2;
  storeRow(c, c00, c01, va, beta, bias);
  storeRow(c + row, c10, c11, va, beta, bias);
  storeRow(c + 2 * row, c20, c21, va, beta, bias);
  storeRow(c + 3 * row, c30, c31, va, beta, bias);
  storeRow(c + 4 * row, c40, c41, va, beta, bias);
  storeRow(c + 5 * row, c50, c51, va, beta, bias);
}

/** 4x8 and 2x8 relaxed SIMD micro-kernels for a panel's last rows (A read with the panel's stride of 6 rows). */
function gemm_4x8_relaxed(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, alpha: f32, beta: f32, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const aEnd = ap + <usize>(kc * MR * A_BYTES);
  while (ap < aEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = f32x4.relaxed_madd(a, b0, c00);
    c01 = f32x4.relaxed_madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = f32x4.relaxed_madd(a, b0, c10);
    c11 = f32x4.relaxed_madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = f32x4.relaxed_madd(a, b0, c20);
    c21 = f32x4.relaxed_madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = f32x4.relaxed_madd(a, b0, c30);
    c31 = f32x4.relaxed_madd(a, b1, c31);
    ap += MR * A_BYTES;
    bp += 32;
  }
  const va = f32x4.splat(alpha);
  const row = <usize>ldc << 2;
  storeRow(c, c00, c01, va, beta, bias);
  storeRow(c + row, c10, c11, va, beta, bias);
  storeRow(c + 2 * row, c20, c21, va, beta, bias);
  storeRow(c + 3 * row, c30, c31, va, beta, bias);
}

function gemm_2x8_relaxed(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, alpha: f32, beta: f32, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  const aEnd = ap + <usize>(kc * MR * A_BYTES);
  while (ap < aEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = f32x4.relaxed_madd(a, b0, c00);
    c01 = f32x4.relaxed_madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = f32x4.relaxed_madd(a, b0, c10);
    c11 = f32x4.relaxed_madd(a, b1, c11);
    ap += MR * A_BYTES;
    bp += 32;
  }
  const va = f32x4.splat(alpha);
  storeRow(c, c00, c01, va, beta, bias);
  storeRow(c + (<usize>ldc << 2), c10, c11, va, beta, bias);
}

// The register tile for a panel's first `rows` rows: the full MRx8 tile, or (relaxed build) a shorter one.
@inline function microKernelRows(rows: i32, ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, alpha: f32, beta: f32, bias: usize): void {
  if (RELAXED && rows <= 2) gemm_2x8_relaxed(ap, bp, kc, c, ldc, alpha, beta, bias);
  else if (RELAXED && rows <= 4) gemm_4x8_relaxed(ap, bp, kc, c, ldc, alpha, beta, bias);
  else microKernel(ap, bp, kc, c, ldc, alpha, beta, bias);
}

// Rows the kernel chosen for `rows` computes (relaxed build: 2, 4 or 6; plain build: MR).
@inline function tileRows(rows: i32): i32 {
  return RELAXED ? (rows <= 2 ? 2 : rows <= 4 ? 4 : MR) : MR;
}

@inline function microKernel(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, alpha: f32, beta: f32, bias: usize): void {
  if (RELAXED) gemm_6x8_relaxed(ap, bp, kc, c, ldc, alpha, beta, bias);
  else gemm_4x8_simd(ap, bp, kc, c, ldc, alpha, beta, bias);
}

// Copies the valid mr x nr corner of a full tile into C: C = alpha * tile + beta * C + bias.
function storeEdge(c: usize, ldc: i32, tile: usize, mr: i32, nr: i32, alpha: f32, beta: f32, bias: usize): void {
  for (let r = 0; r < mr; r++) {
    for (let j = 0; j < nr; j++) {
      const out = f32At(c, r * ldc + j);
      let v = alpha * load<f32>(f32At(tile, r * NR + j));
      if (beta != 0) v += beta * load<f32>(out);
      if (bias) v += load<f32>(f32At(bias, j));
      store<f32>(out, v);
    }
  }
}

// C = beta * C + bias, for k == 0 or alpha == 0 (A and B are not read).
function scaleC(c: usize, ldc: i32, m: i32, n: i32, beta: f32, bias: usize): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const out = f32At(c, i * ldc + j);
      let v: f32 = beta != 0 ? beta * load<f32>(out) : 0;
      if (bias) v += load<f32>(f32At(bias, j));
      store<f32>(out, v);
    }
  }
}

/**
 * C[m x n] = alpha * op(A) * op(B) + beta * C + bias, row-major with leading dimensions in elements.
 * op(A) is m x k (A is m x k when transA == 0, k x m when 1); op(B) is k x n (B is k x n, or n x k).
 * beta == 0 means C is not read; bias (0 for none) points to n floats added to every row.
 */
export function f32_gemm(
  c: usize, ldc: i32, a: usize, lda: i32, b: usize, ldb: i32,
  m: i32, n: i32, k: i32, transA: i32, transB: i32, alpha: f32, beta: f32, bias: usize, ws: usize,
): void {
  gemm(c, ldc, a, lda, b, ldb, transB, 0, m, n, k, transA, alpha, beta, bias, ws);
}

/** f32_gemm with op(B) prepacked by f32_gemm_pack_b (same n, k): B is not packed again, so small m is cheap. */
export function f32_gemm_prepacked(
  c: usize, ldc: i32, a: usize, lda: i32, packed: usize,
  m: i32, n: i32, k: i32, transA: i32, alpha: f32, beta: f32, bias: usize, ws: usize,
): void {
  gemm(c, ldc, a, lda, 0, 0, 0, packed, m, n, k, transA, alpha, beta, bias, ws);
}

function gemm(
  c: usize, ldc: i32, a: usize, lda: i32, b: usize, ldb: i32, transB: i32, packed: usize,
  m: i32, n: i32, k: i32, transA: i32, alpha: f32, beta: f32, bias: usize, ws: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0) {
    scaleC(c, ldc, m, n, beta, bias);
    return;
  }
  const ap = ws;
  const bp = ap + <usize>roundUp(packedABytes(m, k), 64);
  const tile = bp + <usize>roundUp(packedBBytes(n, k), 64);
  const kb = kBlock(k);
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      let bBlock = bp;
      if (packed) bBlock = f32At(packed, packedBlock(n, k, jc, pc));
      else packB(bp, b, ldb, transB, pc, jc, kc, nc);
      const betaK: f32 = pc == 0 ? beta : 1;
      const biasK: usize = pc == 0 ? bias : 0;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        packA(ap, a, lda, transA, ic, pc, mc, kc);
        macroKernel(c, ldc, ap, bBlock, ic, jc, mc, nc, kc, alpha, betaK, biasK, tile);
      }
    }
  }
}

// Runs the micro-kernel over an mc x nc block whose A and B panels are packed.
function macroKernel(
  c: usize, ldc: i32, ap: usize, bp: usize, ic: i32, jc: i32, mc: i32, nc: i32, kc: i32,
  alpha: f32, beta: f32, bias: usize, tile: usize,
): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const bPanel = f32At(bp, jr * kc);
    const biasJ: usize = bias ? f32At(bias, jc + jr) : 0;
    for (let ir = 0; ir < mc; ir += MR) {
      const mr = min(MR, mc - ir);
      const aPanel = ap + <usize>(ir * kc * A_BYTES);
      const cTile = f32At(c, (ic + ir) * ldc + jc + jr);
      if (mr == tileRows(mr) && nr == NR) {
        microKernelRows(mr, aPanel, bPanel, kc, cTile, ldc, alpha, beta, biasJ);
      } else {
        microKernelRows(mr, aPanel, bPanel, kc, tile, NR, 1, 0, 0);
        storeEdge(cTile, ldc, tile, mr, nr, alpha, beta, biasJ);
      }
    }
  }
}
