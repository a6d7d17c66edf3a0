// The data layer's public API: datasets and their row operations, scaling, readers (IDX, CSV, libsvm) and MNIST.
export { DataError, DataSizeError, ChecksumError, DownloadError, type DataLocation, type DownloadAttempt } from "./errors.js";
export { DEFAULT_MEMORY_LIMIT_BYTES } from "./limits.js";
export {
  createDataset,
  oneHot,
  take,
  holdOut,
  split,
  shuffle,
  sliceRows,
  selectRows,
  findNonFinite,
  type Dataset,
  type DatasetParts,
  type NonFiniteValue,
} from "./dataset.js";
export { seededPermutation, mulberry32, gaussian } from "./random.js";
export {
  minMaxNormalize,
  zScoreNormalize,
  minMaxStats,
  zScoreStats,
  type MinMaxStats,
  type ZScoreStats,
  type Normalized,
} from "./normalize.js";
export { syntheticClassification, type SyntheticClassificationOptions } from "./synthetic.js";
export {
  readIdx,
  readIdxRecords,
  readIdxRows,
  IDX_UBYTE_MAGICS,
  type IdxChunk,
  type IdxReadOptions,
  type IdxSizeOptions,
  type IdxHeader,
} from "./idx.js";
export { readCsv, readCsvRows, type CsvOptions, type CsvRowOptions, type CsvRow } from "./csv.js";
export { readLibsvm, readLibsvmSparse, type LibsvmOptions } from "./libsvm.js";
export { LIBSVM_STREAM_DEFAULTS, scanLibsvm, streamLibsvmSparse, type LibsvmScan, type LibsvmStreamOptions } from "./libsvm-stream.js";
export {
  categoryFeature, HASHED_CSV_DEFAULTS, MAX_HASH_BITS, numericFeature, readCsvHashed, streamCsvHashed, type HashedCsvOptions, type HashedCsvStreamOptions,
} from "./hash-features.js";
export { createSparseDataset, isSparse, meanRowLength, sparseRows, sparseToDense, type SparseDataset, type SparseDatasetParts } from "./sparse.js";
export { defaultCacheDir, type DataEnv } from "./cache.js";
export type { ContentSpec } from "./checksum.js";
export type { DownloadProgress, DownloadSource } from "./download.js";
export {
  loadMnist,
  downloadMnist,
  verifyMnist,
  findMnist,
  MNIST_FILES,
  MNIST_BASE_URLS,
  type MnistFile,
  type MnistDownloadOptions,
  type MnistDownloadResult,
} from "./mnist.js";
