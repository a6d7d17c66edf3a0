// The built-in neuron types' names: the activations the core has kernels for (one source for spec and registry).
export const ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "softmax"] as const;
export type Activation = (typeof ACTIVATIONS)[number];
