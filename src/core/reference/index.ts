// The plain TypeScript references of every core kernel (f64 math), against which the tests check the WASM core.
export * from "./activations.js";
export * from "./gemm.js";
export * from "./losses.js";
export * from "./optimizers.js";
export * from "./vector.js";
