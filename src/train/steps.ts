// The arithmetic of training, as calls into the core over a TrainPlan's pointers: a work portion's forward and
// backward pass, a sync gradient item (one weight band's gradient over the batch) and its apply item (optimizer
// step and repacking), and an async portion's gradient, accumulated or applied. Computing a gradient and applying
// it are separate calls, so a gradient can leave the process in between. No JavaScript loops over elements.
import type { CoreExports } from "../runtime/exports.js";
import { outputLossFor, type OutputLoss } from "../model/loss.js";
import { isPerNeuron, layerOps, type LayerOps, type OpsContext } from "../model/neurons/ops.js";
import type { BufferSet, LayerPlan, TrainPlan, UpdateItem } from "./plan.js";

/** A set of row indices built without duplicates: a stamp per feature row marks the rows of the current set. */
class SparseRowSet {
  rows = new Int32Array(64);
  count = 0;
  private stamps = new Int32Array(0);
  private stamp = 0;

  /** Empties the set for rows in [0, n). */
  start(n: number): this {
    if (this.stamps.length !== n) {
      this.stamps = new Int32Array(n);
      this.stamp = 0;
    }
    if (++this.stamp === 0x7fffffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    this.count = 0;
    return this;
  }

  add(row: number): void {
    if (this.stamps[row] === this.stamp) return;
    this.stamps[row] = this.stamp;
    if (this.count === this.rows.length) {
      const grown = new Int32Array(2 * this.rows.length);
      grown.set(this.rows);
      this.rows = grown;
    }
    this.rows[this.count++] = row;
  }
}

/** A seed for dropout masks that differs per step and layer and depends on nothing else. */
function maskSeed(seed: number, step: number, layer: number): number {
  return (Math.imul(seed, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(layer + 1, 0xc2b2ae35)) | 0;
}

/** Runs training steps of one plan on one thread. */
export class StepRunner {
  /** Learning rate of the current epoch (the options' rate times its decay so far). */
  learningRate: number;
  /** The parameter block the passes read (the network's, or a worker's replica). */
  paramsBase: number;
  /** The gradient block gradients are written to (layout = params). */
  gradsBase: number;
  private readonly outputLoss: OutputLoss;
  /** Each layer's neuron type on this thread. */
  private readonly ops: LayerOps[];
  private readonly ctx: OpsContext;
  private f32!: Float32Array;
  private i32!: Int32Array;
  private perm!: Int32Array;
  /** The sparse layer's touched rows: the last batch's, deduplicated with a stamp per feature (this thread's). */
  private readonly touched = new SparseRowSet();

  constructor(
    private readonly core: CoreExports,
    private readonly memory: WebAssembly.Memory,
    readonly plan: TrainPlan,
    private readonly worker: number,
  ) {
    this.outputLoss = outputLossFor(plan.spec);
    this.ops = plan.spec.layers.map((layer, l) => layerOps(layer, l));
    this.ctx = { core, f32: () => this.view() };
    this.learningRate = plan.options.learningRate;
    this.paramsBase = plan.params;
    this.gradsBase = plan.grads;
    this.refreshViews();
  }

  private view(): Float32Array {
    this.refreshViews();
    return this.f32;
  }

  /** Re-creates typed views after the memory grew. */
  refreshViews(): void {
    if (this.f32?.buffer === this.memory.buffer && this.f32.length * 4 === this.memory.buffer.byteLength) return;
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
    this.perm = new Int32Array(this.memory.buffer, this.plan.perm, this.plan.samples);
  }

  private get ws(): number {
    return this.plan.workspaces[this.worker]!;
  }

  /** Copies samples perm[first .. first+count) into rows r0.. of the set's input and target buffers. */
  gather(set: BufferSet, r0: number, first: number, count: number): void {
    const { spec, x, y } = this.plan;
    const inputs = spec.inputs;
    const outputs = spec.layers[spec.layers.length - 1]!.units;
    for (let i = 0; i < count; i++) {
      const s = this.perm[first + i]!;
      this.i32[(set.ids >>> 2) + r0 + i] = s;
      if (set.xb) this.f32.copyWithin((set.xb >>> 2) + (r0 + i) * inputs, (x >>> 2) + s * inputs, (x >>> 2) + (s + 1) * inputs);
      this.f32.copyWithin((set.tb >>> 2) + (r0 + i) * outputs, (y >>> 2) + s * outputs, (y >>> 2) + (s + 1) * outputs);
    }
  }

  /**
   * Forward and backward pass for rows [r0, r0+count) of a gathered set: leaves each layer's deltas (gradient of
   * the mean loss over `batchRows` samples) in the set. `packed`: use the prepacked weights (sync mode).
   * `maskRow`: the rows' position in their mini-batch, which picks their dropout masks (default r0).
   * Returns the summed loss of the rows.
   */
  forwardBackward(set: BufferSet, r0: number, count: number, batchRows: number, step: number, packed: boolean, maskRow = r0): number {
    const { core, plan } = this;
    const layers = plan.layers;
    const last = layers.length - 1;
    let input = set.xb + 4 * r0 * plan.spec.inputs;
    for (let l = 0; l <= last; l++) {
      const L = layers[l]!;
      const B = set.layers[l]!;
      const off = 4 * r0 * L.units;
      const b = this.paramsBase + L.bOff;
      const ops = this.ops[l]!;
      if (L.sparse) this.sparseForward(set, B.z + off, r0, count, L, b);
      else if (isPerNeuron(ops)) ops.forwardNeurons(this.ctx, B.out + off, input, L.inputs, this.paramsBase + L.wOff, b, count);
      else if (packed) core.f32_gemm_prepacked(B.z + off, L.units, input, L.inputs, L.packedW, count, L.units, L.inputs, 0, 1, 0, b, this.ws);
      else core.f32_gemm(B.z + off, L.units, input, L.inputs, this.paramsBase + L.wOff, L.units, count, L.units, L.inputs, 0, 0, 1, 0, b, this.ws);
      if (l === last) break;
      if (!isPerNeuron(ops)) ops.forward(this.ctx, B.out + off, B.z + off, count, L.units);
      if (L.keep < 1) {
        const n = count * L.units;
        core.f32_dropout_mask(B.mask + off, n, L.keep, maskSeed(plan.options.seed, step, l), maskRow * L.units);
        core.f32_copy(B.a + off, B.out + off, n);
        core.f32_mul(B.a + off, B.mask + off, n);
      }
      input = B.a + off;
    }
    const L = layers[last]!;
    const B = set.layers[last]!;
    const off = 4 * r0 * L.units;
    const meanLoss = this.outputLoss(core, { z: B.z + off, y: B.out + off, t: set.tb + off, dz: B.d + off, rows: count, cols: L.units });
    core.f32_scale(B.d + off, count * L.units, count / batchRows);
    for (let l = last; l > 0; l--) this.backwardThrough(set, l, r0, count, packed);
    return meanLoss * count;
  }

  // z rows [r0, r0+count) of the sparse first layer: each row's pairs (from the data's CSR) times w0, plus b0.
  private sparseForward(set: BufferSet, z: number, r0: number, count: number, L: LayerPlan, b: number): void {
    const { rowPtr, indices, values } = this.plan.sparse!;
    const w = this.paramsBase + L.wOff;
    for (let i = 0; i < count; i++) {
      const s = this.i32[(set.ids >>> 2) + r0 + i]!;
      const bad = this.core.f32_csr_gemm(z + 4 * i * L.units, L.units, rowPtr + 4 * s, indices, values, w, L.units, L.inputs, 1, L.units, b, 0);
      if (bad >= 0) throw new RangeError(`sample ${s}: feature index at position ${bad} is outside [0, ${L.inputs})`);
    }
  }

  // The sparse first layer's weight gradient over `samples` rows of the set, into the gradient block's rows of the
  // features present (only those are zeroed first and written); remembers them for applySparse.
  private sparseGradient(set: BufferSet, samples: number): void {
    const L = this.plan.layers[0]!;
    const { rowPtr, indices, values } = this.plan.sparse!;
    const gw = this.gradsBase + L.wOff;
    const ids = set.ids >>> 2;
    const touched = this.touched.start(L.inputs);
    for (let r = 0; r < samples; r++) {
      const s = this.i32[ids + r]!;
      for (let k = this.i32[(rowPtr >>> 2) + s]!, end = this.i32[(rowPtr >>> 2) + s + 1]!; k < end; k++) touched.add(this.i32[(indices >>> 2) + k]!);
    }
    for (let t = 0; t < touched.count; t++) this.core.f32_fill(gw + 4 * touched.rows[t]! * L.units, L.units, 0);
    const d = set.layers[0]!.d;
    for (let r = 0; r < samples; r++) {
      const s = this.i32[ids + r]!;
      this.core.f32_csr_scatter_add(gw, L.units, L.inputs, rowPtr + 4 * s, indices, values, d + 4 * r * L.units, L.units, 1, L.units, 1);
    }
  }

  // One optimizer step of the sparse layer's rows the last sparseGradient touched (lazy: untouched rows keep
  // their momentum and escape L2 until a batch holds their feature).
  private applySparse(step: number): void {
    const L = this.plan.layers[0]!;
    const { touched } = this;
    for (let t = 0; t < touched.count; t++) this.applyOptimizer(L.wOff + 4 * touched.rows[t]! * L.units, L.units, this.plan.options.l2, step);
  }

  // Deltas of layer l-1 from those of layer l: d_{l-1} = act'(out_{l-1}) * mask * (d_l W_l^T); a per-neuron
  // layer l-1 computes them itself and pushes the gradients of w_l into layer l's push rows.
  private backwardThrough(set: BufferSet, l: number, r0: number, count: number, packed: boolean): void {
    const { core } = this;
    const L = this.plan.layers[l]!;
    const P = this.plan.layers[l - 1]!;
    const here = set.layers[l]!;
    const d = here.d + 4 * r0 * L.units;
    const prev = set.layers[l - 1]!;
    const off = 4 * r0 * P.units;
    const ops = this.ops[l - 1]!;
    if (isPerNeuron(ops)) {
      const pushes = here.pushes + 4 * r0 * P.units * L.units;
      ops.backwardNeurons(this.ctx, prev.d + off, pushes, prev.out + off, d, this.paramsBase + L.wOff, L.units, count);
      return;
    }
    if (packed) core.f32_gemm_prepacked(prev.dout + off, P.units, d, L.units, L.packedWT, count, P.units, L.units, 0, 1, 0, 0, this.ws);
    else core.f32_gemm(prev.dout + off, P.units, d, L.units, this.paramsBase + L.wOff, L.units, count, P.units, L.units, 0, 1, 1, 0, 0, this.ws);
    if (P.keep < 1) core.f32_mul(prev.dout + off, prev.mask + off, count * P.units);
    ops.backward(this.ctx, prev.d + off, prev.dout + off, prev.out + off, prev.z + off, count, P.units);
  }

  /**
   * Copies what the update items read of rows [0, count) of a portion's private set (its inputs, every hidden
   * layer's activations and every layer's deltas) into rows [r0, r0+count) of the batch's shared set.
   */
  publish(portion: BufferSet, batch: BufferSet, r0: number, count: number): void {
    const { core, plan } = this;
    core.f32_copy(batch.ids + 4 * r0, portion.ids, count);
    if (batch.xb) core.f32_copy(batch.xb + 4 * r0 * plan.spec.inputs, portion.xb, count * plan.spec.inputs);
    plan.layers.forEach((L, l) => {
      const from = portion.layers[l]!;
      const to = batch.layers[l]!;
      const off = 4 * r0 * L.units;
      if (l < plan.layers.length - 1) core.f32_copy(to.a + off, from.a, count * L.units);
      core.f32_copy(to.d + off, from.d, count * L.units);
      const perRow = L.inputs * L.units;
      if (from.pushes) core.f32_copy(to.pushes + 4 * r0 * perRow, from.pushes, count * perRow);
    });
  }

  /** Sync mode: packs rows [r0, r0+count) of every layer's deltas in the batch set into plan.packedD (the batch
   *  has `batchRows` rows), as the weight gradients' B operand. */
  packDeltas(batch: BufferSet, r0: number, count: number, batchRows: number): void {
    this.plan.layers.forEach((L, l) => {
      if (L.sparse) return;
      this.core.f32_gemm_pack_b(this.plan.packedD[l]!, batch.layers[l]!.d, L.units, 0, L.units, batchRows, r0, r0 + count, 0, L.units);
    });
  }

  /** Sync mode: one item's gradient (a weight band, or a bias) over the whole batch, into the gradient block; the
   *  weight bands read the deltas packDeltas packed. */
  gradientItem(set: BufferSet, item: UpdateItem, batchRows: number): void {
    if (item.bias) {
      this.biasGradient(set, item.layer, batchRows, 0);
      return;
    }
    if (item.sparse) {
      this.sparseGradient(set, batchRows);
      return;
    }
    const L = this.plan.layers[item.layer]!;
    const a = item.layer === 0 ? set.xb : set.layers[item.layer - 1]!.a;
    const gw = this.gradsBase + L.wOff + 4 * item.r0 * L.units;
    const rows = item.r1 - item.r0;
    if (set.layers[item.layer]!.pushes) {
      this.pushedGradient(set, item.layer, batchRows, item.r0, rows, 0);
      return;
    }
    this.core.f32_gemm_prepacked(gw, L.units, a + 4 * item.r0, L.inputs, this.plan.packedD[item.layer]!, rows, L.units, batchRows, 1, 1, 0, 0, this.ws);
  }

  /** Sync mode: one item's optimizer step from the gradient block, then the band's repacking. */
  applyItem(item: UpdateItem, step: number): void {
    const L = this.plan.layers[item.layer]!;
    if (item.bias) {
      this.applyOptimizer(L.bOff, L.units, 0, step);
      return;
    }
    if (item.sparse) {
      this.applySparse(step);
      return;
    }
    this.applyOptimizer(L.wOff + 4 * item.r0 * L.units, (item.r1 - item.r0) * L.units, this.plan.options.l2, step);
    const w = this.paramsBase + L.wOff;
    this.core.f32_gemm_pack_b(L.packedW, w, L.units, 0, L.units, L.inputs, item.r0, item.r1, 0, L.units);
    if (L.packedWT) this.core.f32_gemm_pack_b(L.packedWT, w, L.units, 1, L.inputs, L.units, 0, L.units, item.r0, item.r1);
  }

  /** Packs every layer's weights for the forward and backward passes (before sync training starts). */
  packAll(): void {
    for (const L of this.plan.layers) {
      if (L.sparse) continue;
      const w = this.paramsBase + L.wOff;
      this.core.f32_gemm_pack_b(L.packedW, w, L.units, 0, L.units, L.inputs, 0, L.inputs, 0, L.units);
      if (L.packedWT) this.core.f32_gemm_pack_b(L.packedWT, w, L.units, 1, L.inputs, L.units, 0, L.units, 0, L.inputs);
    }
  }

  /** Every layer's gradient over `rows` samples of the set into the gradient block; `accumulate` adds to it. */
  gradients(set: BufferSet, rows: number, accumulate = false): void {
    const beta = accumulate ? 1 : 0;
    this.plan.layers.forEach((L, l) => {
      if (L.sparse) {
        if (accumulate) throw new Error("gradients: a sparse layer's gradient cannot accumulate over portions (no parameter client for sparse inputs yet)");
        this.sparseGradient(set, rows);
      } else {
        this.weightGradient(set, l, rows, 0, L.inputs, beta);
      }
      this.biasGradient(set, l, rows, beta);
    });
  }

  /** Async mode in place: one optimizer step of every layer from the gradient block onto the parameters. */
  applyAll(step: number): void {
    this.plan.layers.forEach((L) => {
      if (L.sparse) this.applySparse(step);
      else this.applyOptimizer(L.wOff, L.inputs * L.units, this.plan.options.l2, step);
      this.applyOptimizer(L.bOff, L.units, 0, step);
    });
  }

  // gw rows [r0, r0+count) = the sum over `samples` rows of what layer l-1's neurons pushed (+ beta * gw).
  private pushedGradient(set: BufferSet, l: number, samples: number, r0: number, count: number, beta: number): void {
    const L = this.plan.layers[l]!;
    const gw = this.gradsBase + L.wOff + 4 * r0 * L.units;
    const n = count * L.units;
    const perRow = L.inputs * L.units;
    const pushes = set.layers[l]!.pushes + 4 * r0 * L.units;
    if (beta === 0) this.core.f32_fill(gw, n, 0);
    else if (beta !== 1) this.core.f32_scale(gw, n, beta);
    for (let r = 0; r < samples; r++) this.core.f32_axpy(gw, pushes + 4 * r * perRow, n, 1);
  }

  // gw rows [r0, r0+count) = A_{l-1}^T[r0.., :] * D_l over `samples` rows (+ beta * gw).
  private weightGradient(set: BufferSet, l: number, samples: number, r0: number, count: number, beta: number): void {
    if (set.layers[l]!.pushes) {
      this.pushedGradient(set, l, samples, r0, count, beta);
      return;
    }
    const L = this.plan.layers[l]!;
    const a = l === 0 ? set.xb : set.layers[l - 1]!.a;
    const gw = this.gradsBase + L.wOff + 4 * r0 * L.units;
    this.core.f32_gemm(gw, L.units, a + 4 * r0, L.inputs, set.layers[l]!.d, L.units, count, L.units, samples, 1, 0, 1, beta, 0, this.ws);
  }

  private biasGradient(set: BufferSet, l: number, samples: number, beta: number): void {
    const L = this.plan.layers[l]!;
    this.core.f32_col_sum(this.gradsBase + L.bOff, set.layers[l]!.d, samples, L.units, beta);
  }

  // One optimizer step over n parameters at byte offset `off` of the layout (in params, grads and each state slot).
  private applyOptimizer(off: number, n: number, l2: number, step: number): void {
    const o = this.plan.options;
    const { state } = this.plan;
    const w = this.paramsBase + off;
    const g = this.gradsBase + off;
    if (o.optimizer === "sgd") this.core.f32_sgd_update(w, state.length ? state[0]! + off : 0, g, n, this.learningRate, o.momentum, l2);
    else if (o.optimizer === "adagrad") this.core.f32_adagrad_update(w, state[0]! + off, g, n, this.learningRate, o.epsilon, l2);
    else this.core.f32_adam_update(w, state[0]! + off, state[1]! + off, g, n, this.learningRate, o.beta1, o.beta2, o.epsilon, l2, step + 1);
  }
}
