// Entry point of the WASM core: re-exports every kernel and describes the build it was compiled as.
export * from "./gemm";
export * from "./gemm-nopack";
export * from "./activations";
export * from "./losses";
export * from "./optim";
export * from "./vector";
export * from "./dropout";
export * from "./convert";
export * from "./sparse";

/** First byte of linear memory that the core's own static data does not use; the arena starts here. */
export function core_heap_base(): usize {
  return __heap_base;
}

/** 1 when this build uses relaxed SIMD (fused multiply-add), 0 for the plain SIMD build. */
export function core_relaxed_simd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
