// The gradient of a network's mean loss over a batch, through the same training steps the trainer runs, for users
// who compare with other libraries and for the whole-network finite-difference tests.
import type { Dataset } from "../data/dataset.js";
import { isSparse, type SparseDataset } from "../data/sparse.js";
import { copyCsrRows } from "./sparse-inputs.js";
import type { Network, Tensor } from "../model/network.js";
import { requireFits } from "./evaluate.js";
import { resolveTrainOptions } from "./options.js";
import { PlanBuilder, updateItems, type TrainPlan } from "./plan.js";
import { StepRunner } from "./steps.js";

/** Options of computeGradients. */
export interface GradientOptions {
  /** Use the prepacked-weights GEMM path (as sync training does) instead of the plain one. Default true. */
  packed?: boolean;
  /** Rows per forward/backward call (the work-portion size). Default 8. */
  portion?: number;
  /** Apply the layers' dropout, with the masks of training step `step`. Default false (no dropout). */
  dropout?: boolean;
  /** Seed and step of the dropout masks, as in training. Defaults 1 and 0. */
  seed?: number;
  step?: number;
}

/** The mean loss over every sample of `data`, and its gradient per parameter tensor. */
export interface Gradients {
  loss: number;
  /** Named like the parameters (w0, b0, w1, b1, ...), with their shapes; fresh copies. */
  tensors: Tensor[];
}

/** The gradient of the mean loss over all of `data` with respect to every parameter; the network is not changed. */
export function computeGradients(network: Network, data: Dataset | SparseDataset, options: GradientOptions = {}): Gradients {
  requireFits(network, data);
  const rows = Math.max(1, data.size);
  const resolved = resolveTrainOptions({ threads: 0, batchSize: rows, portion: options.portion ?? 8, seed: options.seed ?? 1 }, 1);
  const packed = options.packed ?? true;
  const builder = new PlanBuilder(network.kernels.arena);
  try {
    const core = network.kernels.core;
    const sparse = isSparse(data) ? copyCsrRows(data, 0, data.size, (n, name) => builder.alloc(n, name), () => core.memory.buffer as ArrayBuffer) : undefined;
    const x = isSparse(data) ? 0 : builder.alloc(data.x.length, "x");
    const y = builder.alloc(data.y.length, "y");
    const perm = builder.alloc(rows, "perm");
    if (!isSparse(data)) core.f32().set(data.x, x >>> 2);
    core.f32().set(data.y, y >>> 2);
    const order = new Int32Array(core.memory.buffer, perm, rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    const layers = builder.layers(network, true, (n, k) => core.exports.f32_gemm_packed_b_bytes(n, k));
    if (!options.dropout) for (const layer of layers) layer.keep = 1;
    const plan: TrainPlan = {
      spec: network.spec, options: resolved, threads: 0, samples: data.size, x, ...(sparse ? { sparse } : {}), y, perm,
      keys: network.params.block.length, params: network.params.block.ptr, grads: builder.block(network, "gradients"), partyGrads: [], portionSets: [], packedD: [], state: [],
      layers, sets: [builder.bufferSet(network.spec, rows)], blocks: [],
      workspaces: [builder.alloc(core.exports.f32_gemm_workspace_bytes(1 << 20, 1 << 20, 1 << 20) / 4, "workspace")],
      updateItems: updateItems(network.spec), exchange: false, mailbox: undefined,
    };
    const runner = new StepRunner(core.exports, core.memory, plan, 0);
    const set = plan.sets[0]!;
    if (packed) runner.packAll();
    let loss = 0;
    for (let r0 = 0; r0 < data.size; r0 += resolved.portion) {
      const count = Math.min(resolved.portion, data.size - r0);
      runner.gather(set, r0, r0, count);
      loss += runner.forwardBackward(set, r0, count, rows, options.step ?? 0, packed);
    }
    runner.gradients(set, data.size);
    const f32 = core.f32();
    const tensors = network.tensors().map((t) => {
      const at = (network.params.get(t.name).ptr - plan.params + plan.grads) >>> 2;
      return { name: t.name, shape: t.shape, data: f32.slice(at, at + t.data.length) };
    });
    return { loss: loss / rows, tensors };
  } finally {
    builder.release();
  }
}
