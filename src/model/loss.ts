// The output layer's activation and cost together: which core kernel turns logits into outputs, the mean loss
// and the gradient with respect to the logits (fused where the pair has a stable fused form).
import type { CoreExports } from "../runtime/exports.js";
import { activationBackward, activationForward } from "./activations.js";
import type { ResolvedSpec } from "./spec.js";

/** Buffers of the output layer for `rows` samples (byte pointers, rows x cols each). */
export interface OutputBlock {
  z: number; // logits
  y: number; // outputs (written)
  t: number; // targets
  dz: number; // gradient w.r.t. logits (written; 0 = loss only)
  rows: number;
  cols: number;
}

/** Computes outputs, mean loss over the rows, and (if dz) d(mean loss)/dz. */
export type OutputLoss = (core: CoreExports, block: OutputBlock) => number;

/** The output-loss routine for a spec's last activation and cost. */
export function outputLossFor(spec: ResolvedSpec): OutputLoss {
  const last = spec.layers[spec.layers.length - 1]!.activation;
  if (last === "softmax" && spec.cost !== "squared-error") {
    return (core, b) => core.f32_softmax_cross_entropy(b.dz, b.y, b.z, b.t, b.rows, b.cols);
  }
  if (last === "sigmoid" && spec.cost === "cross-entropy") {
    return (core, b) => core.f32_sigmoid_cross_entropy(b.dz, b.y, b.z, b.t, b.rows, b.cols);
  }
  const lossOnOutputs = spec.cost === "cross-entropy" ? "f32_binary_cross_entropy" : "f32_squared_error";
  return (core, b) => {
    activationForward[last](core, b.y, b.z, b.rows, b.cols);
    const loss = core[lossOnOutputs](b.dz, b.y, b.t, b.rows, b.cols);
    if (b.dz) activationBackward[last](core, b.dz, b.dz, b.y, b.rows, b.cols);
    return loss;
  };
}
