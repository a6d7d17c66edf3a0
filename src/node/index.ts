// Public entry `downpour/node` (Node, Bun, Deno): everything of the main entry plus what takes file paths: model
// files (saveModel/loadModel, readModelFile/writeModelFile), the data readers (IDX, CSV, libsvm), MNIST loading
// and download, and the data cache folder.
export * from "../index.js";
export { loadModel, saveModel } from "../api/persist.js";
export { readModelFile, writeModelFile } from "../model/file/io.js";
export { readIdx, readIdxRecords, readIdxRows, IDX_UBYTE_MAGICS, type IdxChunk, type IdxReadOptions, type IdxHeader } from "../data/idx.js";
export { isHeaderRow, readCsv, readCsvHeader, readCsvRows, type CsvOptions, type CsvRowOptions, type CsvRow } from "../data/csv.js";
export { readLibsvm, readLibsvmSparse, type LibsvmOptions } from "../data/libsvm.js";
export { LIBSVM_STREAM_DEFAULTS, scanLibsvm, streamLibsvmSparse, type LibsvmScan, type LibsvmStreamOptions } from "../data/libsvm-stream.js";
export {
  categoryFeature, HASHED_CSV_DEFAULTS, MAX_HASH_BITS, numericFeature, readCsvHashed, streamCsvHashed, type HashedCsvOptions, type HashedCsvStreamOptions,
} from "../data/hash-features.js";
export { SYNTH_CTR_FILE_DEFAULTS, teacherPathFor, writeSynthCtrLibsvm, type SynthCtrFileOptions, type SynthCtrTeacherFile } from "../data/synth-ctr-file.js";
export { defaultCacheDir, type DataEnv } from "../data/cache.js";
export type { ContentSpec } from "../data/checksum.js";
export type { DownloadProgress, DownloadSource } from "../data/download.js";
export {
  loadMnist, downloadMnist, mnistBaseUrls, verifyMnist, findMnist, MNIST_FILES, MNIST_BASE_URLS,
  type MnistFile, type MnistDownloadOptions, type MnistDownloadResult,
} from "../data/mnist.js";
export { DIGITS, DIGITS_FILE, loadDigits, loadDigitsAll } from "../data/digits.js";
export { AtomicFile, removeLiveTempFiles, writeFileAtomic, type AtomicWriteOptions } from "./files.js";
