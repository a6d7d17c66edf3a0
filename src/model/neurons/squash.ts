// The built-in activations as scalar squashing functions, for per-neuron types (Horn's squashingFunction):
// apply(x) and applyDerivative(output), in plain JavaScript doubles.
import type { SquashingFunction } from "./neuron.js";

export const SQUASHING_FUNCTIONS: Readonly<Record<"identity" | "sigmoid" | "tanh" | "relu", SquashingFunction>> = {
  identity: { name: "identity", apply: (x) => x, applyDerivative: () => 1 },
  sigmoid: { name: "sigmoid", apply: (x) => 1 / (1 + Math.exp(-x)), applyDerivative: (y) => y * (1 - y) },
  tanh: { name: "tanh", apply: (x) => Math.tanh(x), applyDerivative: (y) => 1 - y * y },
  relu: { name: "relu", apply: (x) => Math.max(x, 0), applyDerivative: (y) => (y > 0 ? 1 : 0) },
};
