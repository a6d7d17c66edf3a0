// downpour: layered neural networks on WebAssembly SIMD kernels in worker threads. The main entry is runtime-free
// (no node:* import, directly or transitively): the core, the models, training, in-memory datasets and model bytes.
// File paths, model files and the data readers are in `downpour/node` (src/node/index.ts).
export * from "./core/index.js";
export * from "./model/spec.js";
export { Network, type Tensor } from "./model/network.js";
export {
  AutoEncoder, LayeredANN, LinearRegression, LogisticRegression, Model, MultiLayerPerceptron, Perceptron,
  FIT_HOOK_NAMES, type FitOptions, type MlpConfig, type ModelKind, type ModelOptions,
} from "./api/models.js";
export { decodeModel, encodeModel, type DecodeModelOptions } from "./api/model-bytes.js";
export { defaultKernels, setDefaultKernels } from "./api/default-kernels.js";
export { ModelFileError } from "./model/file/errors.js";
export { MODEL_FILE_MAGIC, MODEL_FILE_VERSION, type ModelFileContents, type ModelFileTensor } from "./model/file/format.js";
export * from "./train/options.js";
export {
  LocalTrainer, TRAINER_HOOK_NAMES, TrainingError, type EpochReport, type EpochStop, type TrainerHooks, type TrainingFailure, type TrainProgress,
} from "./train/trainer.js";
export { evaluate, type Evaluation } from "./train/evaluate.js";
export * from "./train/metrics.js";
export { OptimizerState } from "./train/state.js";
export { computeGradients, type GradientOptions, type Gradients } from "./train/gradients.js";
export {
  isSyncBatch, LocalExchange, type BatchStats, type GradientExchange, type KeyRange, type ParameterClient, type ParameterOptions, type PushInfo,
  type ReplicaBlocks,
} from "./train/exchange.js";
export { MEMORY_EXCHANGE_DEFAULTS, MemoryExchangeGroup, MemoryParameterStore, type MemoryExchangeOptions } from "./train/memory-exchange.js";
// In-memory data: datasets and their row operations, scaling, seeded randomness, synthetic data.
export { DataError, DataSizeError, ChecksumError, DownloadError, type DataLocation, type DownloadAttempt } from "./data/errors.js";
export {
  createDataset, findNonFinite, holdOut, oneHot, selectRows, shuffle, sliceRows, split, take, type Dataset, type DatasetParts, type NonFiniteValue,
} from "./data/dataset.js";
export { DEFAULT_MEMORY_LIMIT_BYTES } from "./data/limits.js";
export { describeTargetProblem, targetProblem, type TargetProblem, type Targets } from "./model/targets-check.js";
export { gaussian, mulberry32, seededPermutation } from "./data/random.js";
export {
  minMaxNormalize, minMaxStats, zScoreNormalize, zScoreStats, type MinMaxStats, type Normalized, type ZScoreStats,
} from "./data/normalize.js";
export { applyScaling, scaleRows, type Scaling } from "./data/scaling.js";
export { syntheticClassification, type SyntheticClassificationOptions } from "./data/synthetic.js";
export {
  binaryEntropy, noisyProbability, SYNTH_CTR_DEFAULTS, SYNTH_CTR_MAX_FEATURES, SynthCtr, SynthCtrLibsvmEncoder, SynthCtrStats, synthCtrDataset,
  type SynthCtrChunk, type SynthCtrOptions, type SynthCtrRow, type SynthCtrSettings, type SynthCtrSummary,
} from "./data/synth-ctr.js";
export { createSparseDataset, isSparse, meanRowLength, sparseRows, sparseToDense, type SparseDataset, type SparseDatasetParts } from "./data/sparse.js";
// Neuron types: the registry, the three forms (scalar, block, Horn's per-neuron), the conformance tester, the Job builder.
export * from "./model/neurons/index.js";
export { Job, job, type JobResult } from "./api/job.js";
export {
  checkNeuron, gradientCheck, GRADIENT_CHECK, SWEEP, type CheckNeuronOptions, type GradientCheckResult, type NeuronCheck, type NeuronCheckReport,
} from "./api/neuron-check.js";
