// Maps each activation name to its forward and backward core kernels over a rows x cols block.
import type { CoreExports } from "../runtime/exports.js";
import type { Activation } from "./spec.js";

type Forward = (core: CoreExports, y: number, x: number, rows: number, cols: number) => void;
type Backward = (core: CoreExports, dx: number, dy: number, y: number, rows: number, cols: number) => void;

/** y = act(x); y may be x. */
export const activationForward: Record<Activation, Forward> = {
  identity: (core, y, x, rows, cols) => {
    if (y !== x) core.f32_copy(y, x, rows * cols);
  },
  sigmoid: (core, y, x, rows, cols) => core.f32_sigmoid_forward(y, x, rows * cols),
  tanh: (core, y, x, rows, cols) => core.f32_tanh_forward(y, x, rows * cols),
  relu: (core, y, x, rows, cols) => core.f32_relu_forward(y, x, rows * cols),
  softmax: (core, y, x, rows, cols) => core.f32_softmax_forward(y, x, rows, cols),
};

/** dx = act'(.) * dy from the forward output y; dx may be dy. */
export const activationBackward: Record<Activation, Backward> = {
  identity: (core, dx, dy, _y, rows, cols) => {
    if (dx !== dy) core.f32_copy(dx, dy, rows * cols);
  },
  sigmoid: (core, dx, dy, y, rows, cols) => core.f32_sigmoid_backward(dx, dy, y, rows * cols),
  tanh: (core, dx, dy, y, rows, cols) => core.f32_tanh_backward(dx, dy, y, rows * cols),
  relu: (core, dx, dy, y, rows, cols) => core.f32_relu_backward(dx, dy, y, rows * cols),
  softmax: (core, dx, dy, y, rows, cols) => core.f32_softmax_backward(dx, dy, y, rows, cols),
};
