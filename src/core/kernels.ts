// The typed kernel API: one object holding a core, its arena and a scratch workspace, with checked methods.
import { Arena, arenaLimit, type ArenaOptions, type Slab } from "../runtime/arena.js";
import { Core, loadCore, MAX_PAGES, PAGE_BYTES, type CoreOptions } from "../runtime/core.js";
import { InvalidArgumentError } from "../errors.js";
import { describeValue } from "../util/describe.js";
import { detectPlatform, type Platform, type PlatformOptions } from "../runtime/platform.js";
import { activationBackward, activationForward, softmaxBackward, softmaxForward, type Activation } from "./activations.js";
import { requireOptions } from "./checks.js";
import { fromFloat16, toFloat16, type Float16Options } from "./convert.js";
import { planGemm, runGemm, type GemmOptions } from "./gemm.js";
import { gemmNopack, type GemmNopackOptions } from "./gemm-nopack.js";
import { binaryCrossEntropy, sigmoidCrossEntropy, softmaxCrossEntropy, squaredError } from "./losses.js";
import type { Matrix } from "./matrix.js";
import { adagradUpdate, adamUpdate, sgdUpdate, type AdagradOptions, type AdamOptions, type SgdOptions } from "./optimizers.js";
import { axpy, colSum, copy, fill, scale } from "./vector.js";
import {
  csrGemm, csrScatterAdd, gatherRows, scatterAddRows,
  type CsrGemmOptions, type CsrMatrix, type CsrScatterAddOptions, type GatherRowsOptions, type ScatterAddRowsOptions,
} from "./sparse.js";

/**
 * Options of Kernels.load; `coreBase`/`coreUrl` (see PlatformOptions) say where the .wasm builds are served.
 * `maxBytes` (the memory limit, default 1 GiB, at most 4 GiB) also sets the memory's `maximumPages` when that is
 * not given, so raising maxBytes alone is enough.
 */
export interface KernelsOptions extends CoreOptions, ArenaOptions, PlatformOptions {
  /** Runtime adapter. Default: the detected one (made for `coreBase`/`coreUrl` when they are given). */
  platform?: Platform;
}

/** Pages above maxBytes for the core's own data and stack, below the arena. */
const HEADROOM_PAGES = 64;

// The core options of a load: maximumPages sized from maxBytes when it is given and maximumPages is not.
function coreOptions(options: KernelsOptions): CoreOptions {
  if (options.maxBytes === undefined || options.maximumPages !== undefined || options.memory !== undefined) return options;
  const pages = Math.ceil(arenaLimit(options.maxBytes) / PAGE_BYTES) + HEADROOM_PAGES;
  return { ...options, maximumPages: Math.min(MAX_PAGES, Math.max(pages, options.initialPages ?? 0)) };
}

/** Checked kernels over one core. Methods run on the calling thread and return when the kernel has. */
export class Kernels {
  private scratch: Slab | undefined;

  /** Kernels over `core` allocating from `arena`, which must be over that core (InvalidArgumentError otherwise). */
  constructor(
    readonly core: Core,
    readonly arena: Arena,
  ) {
    if (!(core instanceof Core)) throw new InvalidArgumentError(`new Kernels: core must be a Core (from loadCore()), got ${describeValue(core)}`);
    if (!(arena instanceof Arena) || arena.core !== core) {
      throw new InvalidArgumentError(`new Kernels: arena must be an Arena over the same core (new Arena(core)), got ${arena instanceof Arena ? "an arena over another core" : describeValue(arena)}`);
    }
  }

  /** Loads the core for this runtime (see CoreOptions) and opens an arena over its memory. */
  static async load(options: KernelsOptions = {}): Promise<Kernels> {
    requireOptions("Kernels.load", options);
    const platform = options.platform ?? (await detectPlatform(options));
    const core = await loadCore(platform, coreOptions(options));
    return new Kernels(core, new Arena(core, options));
  }

  /** A scratch slab of at least `bytes` bytes, reused between calls (contents undefined). */
  workspace(bytes: number): Slab {
    if (!this.scratch || this.scratch.length * 4 < bytes) {
      if (this.scratch) this.arena.release(this.scratch);
      this.scratch = this.arena.alloc(Math.ceil(bytes / 4), "gemm workspace", "the scratch space of a matrix product");
    }
    return this.scratch;
  }

  /** C = alpha * op(A) * op(B) + beta * C + bias. Throws ShapeError or NonFiniteError before touching memory. */
  gemm(c: Matrix, a: Matrix, b: Matrix, options: GemmOptions = {}): void {
    const plan = planGemm(c, a, b, options, this.core);
    runGemm(this.core, plan, this.workspace(this.core.exports.f32_gemm_workspace_bytes(plan.m, plan.n, plan.k)));
  }

  /**
   * C = A B + bias by the unpacked small-m kernel (no transposes, no workspace; C is not read): faster than gemm up
   * to NOPACK_MAX_ROWS rows of A. Throws ShapeError before touching memory.
   */
  gemmNopack(c: Matrix, a: Matrix, b: Matrix, options: GemmNopackOptions = {}): void {
    gemmNopack(this.core, c, a, b, options);
  }

  // Activations: elementwise ones accept strided matrices; backward passes take the forward OUTPUT y.
  // Outputs may be their inputs (y = x, dx = dy). Shape mismatches throw ShapeError naming both shapes.

  /** y = act(x) for a named activation. */
  activation(activation: Activation, y: Matrix, x: Matrix): void {
    activationForward(this.core, activation, y, x);
  }

  /** dx = dy * act'(x), from the forward output y, for a named activation. */
  activationBackward(activation: Activation, dx: Matrix, dy: Matrix, y: Matrix): void {
    activationBackward(this.core, activation, dx, dy, y);
  }

  /** y = x. */
  identity(y: Matrix, x: Matrix): void {
    activationForward(this.core, "identity", y, x);
  }

  /** y = 1 / (1 + exp(-x)). */
  sigmoid(y: Matrix, x: Matrix): void {
    activationForward(this.core, "sigmoid", y, x);
  }

  /** dx = dy * y * (1 - y), y = sigmoid(x). */
  sigmoidBackward(dx: Matrix, dy: Matrix, y: Matrix): void {
    activationBackward(this.core, "sigmoid", dx, dy, y);
  }

  /** y = tanh(x). */
  tanh(y: Matrix, x: Matrix): void {
    activationForward(this.core, "tanh", y, x);
  }

  /** dx = dy * (1 - y^2), y = tanh(x). */
  tanhBackward(dx: Matrix, dy: Matrix, y: Matrix): void {
    activationBackward(this.core, "tanh", dx, dy, y);
  }

  /** y = max(x, 0). */
  relu(y: Matrix, x: Matrix): void {
    activationForward(this.core, "relu", y, x);
  }

  /** dx = y > 0 ? dy : 0, y = relu(x). */
  reluBackward(dx: Matrix, dy: Matrix, y: Matrix): void {
    activationBackward(this.core, "relu", dx, dy, y);
  }

  /** Row-wise softmax (dense matrices). */
  softmax(y: Matrix, x: Matrix): void {
    softmaxForward(this.core, y, x);
  }

  /** Row-wise softmax backward: dx = y * (dy - rowsum(dy * y)), y = softmax(x) (dense matrices). */
  softmaxBackward(dx: Matrix, dy: Matrix, y: Matrix): void {
    softmaxBackward(this.core, dx, dy, y);
  }

  // Losses over dense rows x cols batches: return the mean loss over rows; the gradient (scaled by 1/rows) is
  // written unless it is undefined.

  /** (1/rows) sum 0.5 (y - t)^2; dy = (y - t) / rows. */
  squaredError(dy: Matrix | undefined, y: Matrix, t: Matrix): number {
    return squaredError(this.core, dy, y, t);
  }

  /** Binary cross-entropy of probabilities y (clamped to [1e-7, 1 - 1e-7]); dy = (y - t) / (y (1 - y)) / rows. */
  binaryCrossEntropy(dy: Matrix | undefined, y: Matrix, t: Matrix): number {
    return binaryCrossEntropy(this.core, dy, y, t);
  }

  /** Fused sigmoid + binary cross-entropy over logits z: y = sigmoid(z), dz = (y - t) / rows. */
  sigmoidCrossEntropy(dz: Matrix | undefined, y: Matrix, z: Matrix, t: Matrix): number {
    return sigmoidCrossEntropy(this.core, dz, y, z, t);
  }

  /** Fused row-wise softmax + cross-entropy over logits z: y = softmax(z), dz = (y - t) / rows. */
  softmaxCrossEntropy(dz: Matrix | undefined, y: Matrix, z: Matrix, t: Matrix): number {
    return softmaxCrossEntropy(this.core, dz, y, z, t);
  }

  /** out[j] = beta * out[j] + sum_i x[i][j] (bias gradients); beta defaults to 0, which does not read out. */
  colSum(out: Slab, x: Matrix, beta = 0): void {
    colSum(this.core, out, x, beta);
  }

  // Optimizer updates, in place over flat slabs of the same length (see SgdOptions, AdagradOptions, AdamOptions).

  /** SGD with optional momentum (pass the velocity slab v, or undefined for plain SGD) and weight decay. */
  sgdUpdate(w: Slab, v: Slab | undefined, g: Slab, options: SgdOptions = {}): void {
    sgdUpdate(this.core, w, v, g, options);
  }

  /** AdaGrad with accumulator h. */
  adagradUpdate(w: Slab, h: Slab, g: Slab, options: AdagradOptions = {}): void {
    adagradUpdate(this.core, w, h, g, options);
  }

  /** Adam with moment slabs m and v; options.step counts updates from 1. */
  adamUpdate(w: Slab, m: Slab, v: Slab, g: Slab, options: AdamOptions): void {
    adamUpdate(this.core, w, m, v, g, options);
  }

  // Vector helpers over slabs.

  /** y = value. */
  fill(y: Slab, value: number): void {
    fill(this.core, y, value);
  }

  /** y = x (same lengths). */
  copy(y: Slab, x: Slab): void {
    copy(this.core, y, x);
  }

  /** y += alpha * x (same lengths). */
  axpy(y: Slab, x: Slab, alpha: number): void {
    axpy(this.core, y, x, alpha);
  }

  /** y *= alpha. */
  scale(y: Slab, alpha: number): void {
    scale(this.core, y, alpha);
  }

  // f16 conversion: an f16 slab packs two values per f32 slot (float16Slots(n) slots for n values; float16View reads
  // them); offsets count values of each side's own type (see Float16Options).

  /** dst (f16) = src (f32) rounded to nearest even; count defaults to the rest of src. */
  toFloat16(dst: Slab, src: Slab, options: Float16Options = {}): void {
    toFloat16(this.core, dst, src, options);
  }

  /** dst (f32) = src (f16), exactly; count defaults to the rest of dst. */
  fromFloat16(dst: Slab, src: Slab, options: Float16Options = {}): void {
    fromFloat16(this.core, dst, src, options);
  }

  // Sparse kernels (see src/core/sparse.ts): X is a CSR (csr(rowPtr, colIdx, values, rows, fanIn)); every index is
  // checked (InvalidArgumentError naming its position, row and bound) before anything is written.

  /** Y = beta * Y + X W + bias: the sparse input layer's forward (beta defaults to 0, which does not read Y). */
  csrGemm(y: Matrix, x: CsrMatrix, w: Matrix, options: CsrGemmOptions = {}): void {
    csrGemm(this.core, y, x, w, options);
  }

  /** dW += alpha * X^T D, touching only the rows of features present (alpha defaults to 1). */
  csrScatterAdd(dw: Matrix, x: CsrMatrix, d: Matrix, options: CsrScatterAddOptions = {}): void {
    csrScatterAdd(this.core, dw, x, d, options);
  }

  /** out[i] = src[idx[i]] for each row of out (idx holds i32 row indices). */
  gatherRows(out: Matrix, src: Matrix, idx: Slab, options: GatherRowsOptions = {}): void {
    gatherRows(this.core, out, src, idx, options);
  }

  /** dst[idx[i]] += alpha * src[i] for each row of src, in order (alpha defaults to 1). */
  scatterAddRows(dst: Matrix, src: Matrix, idx: Slab, options: ScatterAddRowsOptions = {}): void {
    scatterAddRows(this.core, dst, src, idx, options);
  }
}
