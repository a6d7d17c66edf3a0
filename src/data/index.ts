// The data layer's public API: datasets and their row operations, scaling, readers (IDX, CSV, libsvm) and MNIST.
export * from "./errors.js";
export * from "./dataset.js";
export * from "./normalize.js";
export * from "./synthetic.js";
export { mulberry32, gaussian } from "./random.js";
export * from "./idx.js";
export * from "./csv.js";
export * from "./libsvm.js";
export { defaultCacheDir, type DataEnv } from "./cache.js";
export type { ContentSpec } from "./checksum.js";
export type { DownloadProgress, DownloadSource } from "./download.js";
export * from "./mnist.js";
