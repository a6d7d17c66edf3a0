// Typed losses over arena matrices (rows = samples, cols = outputs): shape checks, then the core's fused kernels.
// Each returns the mean loss over the rows and, unless the gradient is undefined, writes it scaled by 1/rows.
import { DownpourError } from "../errors.js";
import type { Core } from "../runtime/core.js";
import { requireMatrices } from "./checks.js";
import { address, requireDense, requireSameShape, type Matrix } from "./matrix.js";

type Named = readonly [string, Matrix | undefined];

// Every named matrix must be a live one of `core`, dense and shaped like the first (the reference, e.g. the
// prediction); the gradient is optional (undefined: not written).
function requireLossShapes(core: Core, kernel: string, reference: readonly [string, Matrix], required: Named[], gradient: Named): void {
  const others = gradient[1] === undefined ? required : [...required, gradient];
  requireMatrices(kernel, core, [reference, ...others]);
  for (const [name, m] of others) if (m) requireSameShape(kernel, [name, reference[0]], m, reference[1]);
  for (const [name, m] of [reference, ...others]) if (m) requireDense(kernel, name, m);
}

/** Mean squared error (1/rows) sum 0.5 (y - t)^2; dy = (y - t) / rows. dy may be y or t. */
export function squaredError(core: Core, dy: Matrix | undefined, y: Matrix, t: Matrix): number {
  requireLossShapes(core, "squaredError", ["y (predictions)", y], [["t (targets)", t]], ["dy (gradient)", dy]);
  return core.exports.f32_squared_error(dy ? address(dy) : 0, address(y), address(t), y.rows, y.cols);
}

/**
 * Binary cross-entropy of probabilities y against targets t in [0, 1], with y clamped to [1e-7, 1 - 1e-7]:
 * -(1/rows) sum [t log y + (1 - t) log(1 - y)]; dy = (y - t) / (y (1 - y)) / rows. dy may be y or t.
 */
export function binaryCrossEntropy(core: Core, dy: Matrix | undefined, y: Matrix, t: Matrix): number {
  requireLossShapes(core, "binaryCrossEntropy", ["y (probabilities)", y], [["t (targets)", t]], ["dy (gradient)", dy]);
  return core.exports.f32_binary_cross_entropy(dy ? address(dy) : 0, address(y), address(t), y.rows, y.cols);
}

/**
 * Fused sigmoid + binary cross-entropy over logits z: writes y = sigmoid(z), returns the mean loss computed stably
 * from the logits, dz = (y - t) / rows. Outputs may overwrite the inputs.
 */
export function sigmoidCrossEntropy(core: Core, dz: Matrix | undefined, y: Matrix, z: Matrix, t: Matrix): number {
  requireLossShapes(core, "sigmoidCrossEntropy", ["z (logits)", z], [["t (targets)", t], ["y (probabilities)", y]], ["dz (gradient)", dz]);
  return core.exports.f32_sigmoid_cross_entropy(dz ? address(dz) : 0, address(y), address(z), address(t), z.rows, z.cols);
}

/**
 * Fused softmax + cross-entropy over logits z, each target row a distribution (one-hot for classification):
 * writes y = softmax(z) per row, returns (1/rows) sum t (logsumexp(z) - z), dz = (y - t) / rows (the exact gradient
 * when each target row sums to 1). y and dz may overwrite z, dz may overwrite t; y must not be t.
 */
export function softmaxCrossEntropy(core: Core, dz: Matrix | undefined, y: Matrix, z: Matrix, t: Matrix): number {
  requireLossShapes(core, "softmaxCrossEntropy", ["z (logits)", z], [["t (targets)", t], ["y (probabilities)", y]], ["dz (gradient)", dz]);
  if (address(y) === address(t)) {
    throw new DownpourError("softmaxCrossEntropy: y (probabilities) must not be stored over t (targets), which the kernel reads after writing y");
  }
  return core.exports.f32_softmax_cross_entropy(dz ? address(dz) : 0, address(y), address(z), address(t), z.rows, z.cols);
}
