// downpour: layered neural networks on WebAssembly SIMD kernels in worker threads.
export * from "./runtime/index.js";
