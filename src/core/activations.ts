// Typed activation kernels over arena matrices: shape checks, then the core's f32_*_forward / _backward calls.
// Elementwise activations accept strided matrices (one kernel call per row); softmax needs dense matrices.
import { InvalidArgumentError } from "../errors.js";
import type { Core } from "../runtime/core.js";
import { describeValue } from "../util/describe.js";
import { requireMatrices } from "./checks.js";
import { address, requireDense, requireSameShape, type Matrix } from "./matrix.js";

/** An elementwise activation function. */
export type Activation = "identity" | "sigmoid" | "tanh" | "relu";

const FORWARD = {
  identity: "f32_identity_forward",
  sigmoid: "f32_sigmoid_forward",
  tanh: "f32_tanh_forward",
  relu: "f32_relu_forward",
} as const;

const BACKWARD = {
  sigmoid: "f32_sigmoid_backward",
  tanh: "f32_tanh_backward",
  relu: "f32_relu_backward",
} as const;

const ACTIVATIONS = Object.keys(FORWARD) as Activation[];

function requireActivation(kernel: string, activation: string): asserts activation is Activation {
  if (!ACTIVATIONS.includes(activation as Activation)) {
    const got = typeof activation === "string" ? JSON.stringify(activation) : describeValue(activation);
    throw new InvalidArgumentError(`${kernel}: unknown activation ${got}; expected one of ${ACTIVATIONS.join(", ")}`);
  }
}

function isDense(m: Matrix): boolean {
  return m.ld === m.cols || m.rows <= 1;
}

// Runs an elementwise kernel fn(out, in0[, in1], n) over same-shaped matrices: once when all are dense, else per row.
function elementwise(matrices: Matrix[], fn: (...args: number[]) => void): void {
  const first = matrices[0]!;
  if (first.rows === 0 || first.cols === 0) return;
  if (matrices.every(isDense)) {
    fn(...matrices.map(address), first.rows * first.cols);
    return;
  }
  for (let i = 0; i < first.rows; i++) fn(...matrices.map((m) => address(m) + 4 * i * m.ld), first.cols);
}

/** y = act(x) elementwise; y may be x. Throws ShapeError unless y and x have the same shape. */
export function activationForward(core: Core, activation: Activation, y: Matrix, x: Matrix): void {
  requireActivation("activation", activation);
  requireMatrices(activation, core, [["y (output)", y], ["x (input)", x]]);
  requireSameShape(activation, ["y (output)", "x (input)"], y, x);
  const fn = core.exports[FORWARD[activation]];
  elementwise([y, x], fn);
}

/**
 * dx = dy * act'(x), computed from the forward OUTPUT y; dx may be dy. identity copies dy.
 * Throws ShapeError unless dx, dy and y have the same shape.
 */
export function activationBackward(core: Core, activation: Activation, dx: Matrix, dy: Matrix, y: Matrix): void {
  requireActivation("activationBackward", activation);
  const kernel = `${activation}Backward`;
  requireMatrices(kernel, core, [["dx (input gradient)", dx], ["dy (output gradient)", dy], ["y (forward output)", y]]);
  requireSameShape(kernel, ["dy (output gradient)", "y (forward output)"], dy, y);
  requireSameShape(kernel, ["dx (input gradient)", "dy (output gradient)"], dx, dy);
  if (activation === "identity") {
    elementwise([dx, dy], core.exports.f32_identity_forward);
    return;
  }
  elementwise([dx, dy, y], core.exports[BACKWARD[activation]]);
}

/** Row-wise softmax y = softmax(x) (numerically stable); y may be x. Both must be dense and of the same shape. */
export function softmaxForward(core: Core, y: Matrix, x: Matrix): void {
  requireMatrices("softmax", core, [["y (output)", y], ["x (input)", x]]);
  requireSameShape("softmax", ["y (output)", "x (input)"], y, x);
  requireDense("softmax", "y (output)", y);
  requireDense("softmax", "x (input)", x);
  core.exports.f32_softmax_forward(address(y), address(x), x.rows, x.cols);
}

/** Row-wise softmax backward dx = y * (dy - rowsum(dy * y)), from the forward output y; dx may be dy. Dense only. */
export function softmaxBackward(core: Core, dx: Matrix, dy: Matrix, y: Matrix): void {
  const kernel = "softmaxBackward";
  requireMatrices(kernel, core, [["dx (input gradient)", dx], ["dy (output gradient)", dy], ["y (forward output)", y]]);
  requireSameShape(kernel, ["dy (output gradient)", "y (forward output)"], dy, y);
  requireSameShape(kernel, ["dx (input gradient)", "dy (output gradient)"], dx, dy);
  requireDense(kernel, "dx (input gradient)", dx);
  requireDense(kernel, "dy (output gradient)", dy);
  requireDense(kernel, "y (forward output)", y);
  core.exports.f32_softmax_backward(address(dx), address(dy), address(y), y.rows, y.cols);
}
