// Typed optimizer updates over flat arena slabs (a layout block, or one parameter tensor), in place:
// checks lengths, finite hyper-parameters and their ranges, then calls f32_sgd_update / _adagrad_ / _adam_.
import { DownpourError } from "../errors.js";
import type { Slab } from "../runtime/arena.js";
import type { Core } from "../runtime/core.js";
import { requireOptions, requireRange, requireSameLength, requireScalar } from "./checks.js";

/** Hyper-parameters of sgdUpdate. */
export interface SgdOptions {
  /** Learning rate. Default 0.01. */
  lr?: number;
  /** Momentum in [0, 1]; anything but 0 needs a velocity slab. Default 0. */
  momentum?: number;
  /** L2 weight decay added to the gradient as weightDecay * w. Default 0. */
  weightDecay?: number;
}

/** Hyper-parameters of adagradUpdate. */
export interface AdagradOptions {
  /** Learning rate. Default 0.01. */
  lr?: number;
  /** Added to sqrt(h) in the denominator, >= 0. Default 1e-8. */
  eps?: number;
  /** L2 weight decay added to the gradient as weightDecay * w. Default 0. */
  weightDecay?: number;
}

/** Hyper-parameters of adamUpdate. */
export interface AdamOptions {
  /** Learning rate. Default 0.001. */
  lr?: number;
  /** Decay of the first-moment average, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Decay of the second-moment average, in [0, 1). Default 0.999. */
  beta2?: number;
  /** Added to sqrt(vhat) in the denominator, >= 0. Default 1e-8. */
  eps?: number;
  /** L2 weight decay added to the gradient as weightDecay * w (not decoupled as in AdamW). Default 0. */
  weightDecay?: number;
  /** Number of this update, counting from 1: it sets the bias corrections 1 - beta^step. Required. */
  step: number;
}

/**
 * SGD: g' = g + weightDecay * w; with a velocity slab v: v = momentum * v + g', w -= lr * v; without: w -= lr * g'.
 * w, v and g must have the same length. Throws ShapeError, NonFiniteError, or DownpourError for momentum without v.
 */
export function sgdUpdate(core: Core, w: Slab, v: Slab | undefined, g: Slab, options: SgdOptions = {}): void {
  const kernel = "sgdUpdate";
  requireOptions(kernel, options);
  const { lr = 0.01, momentum = 0, weightDecay = 0 } = options;
  requireScalar(kernel, "lr", lr);
  requireScalar(kernel, "momentum", momentum);
  requireScalar(kernel, "weightDecay", weightDecay);
  requireRange(kernel, "momentum", momentum, 0, 1, true);
  if (!v && momentum !== 0) throw new DownpourError(`${kernel}: momentum ${momentum} needs a velocity slab v, got none`);
  requireSameLength(kernel, v ? [["w", w], ["v", v], ["g", g]] : [["w", w], ["g", g]], core);
  core.exports.f32_sgd_update(w.ptr, v ? v.ptr : 0, g.ptr, w.length, lr, momentum, weightDecay);
}

/** AdaGrad: g' = g + weightDecay * w; h += g'^2; w -= lr * g' / (sqrt(h) + eps). w, h and g must have the same length. */
export function adagradUpdate(core: Core, w: Slab, h: Slab, g: Slab, options: AdagradOptions = {}): void {
  const kernel = "adagradUpdate";
  requireOptions(kernel, options);
  const { lr = 0.01, eps = 1e-8, weightDecay = 0 } = options;
  requireScalar(kernel, "lr", lr);
  requireScalar(kernel, "eps", eps);
  requireScalar(kernel, "weightDecay", weightDecay);
  requireRange(kernel, "eps", eps, 0, Infinity);
  requireSameLength(kernel, [["w", w], ["h", h], ["g", g]], core);
  core.exports.f32_adagrad_update(w.ptr, h.ptr, g.ptr, w.length, lr, eps, weightDecay);
}

/**
 * Adam: g' = g + weightDecay * w; m = beta1 m + (1 - beta1) g'; v = beta2 v + (1 - beta2) g'^2;
 * w -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps). w, m, v and g must have the same length.
 */
export function adamUpdate(core: Core, w: Slab, m: Slab, v: Slab, g: Slab, options: AdamOptions): void {
  const kernel = "adamUpdate";
  requireOptions(kernel, options, true);
  const { lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, step } = options;
  requireScalar(kernel, "lr", lr);
  requireScalar(kernel, "beta1", beta1);
  requireScalar(kernel, "beta2", beta2);
  requireScalar(kernel, "eps", eps);
  requireScalar(kernel, "weightDecay", weightDecay);
  requireRange(kernel, "beta1", beta1, 0, 1);
  requireRange(kernel, "beta2", beta2, 0, 1);
  requireRange(kernel, "eps", eps, 0, Infinity);
  if (!Number.isInteger(step) || step < 1 || step > 0x7fffffff) {
    throw new DownpourError(`${kernel}: step must be an integer from 1 (the number of this update), got ${step}`);
  }
  requireSameLength(kernel, [["w", w], ["m", m], ["v", v], ["g", g]], core);
  core.exports.f32_adam_update(w.ptr, m.ptr, v.ptr, g.ptr, w.length, lr, beta1, beta2, eps, weightDecay, step);
}
