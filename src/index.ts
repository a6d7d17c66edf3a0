// downpour: layered neural networks on WebAssembly SIMD kernels in worker threads.
export * from "./runtime/index.js";
export * from "./model/spec.js";
export { Network, type Tensor } from "./model/network.js";
export {
  AutoEncoder, LayeredANN, LinearRegression, LogisticRegression, Model, MultiLayerPerceptron, Perceptron,
  type FitOptions, type MlpConfig, type ModelKind, type ModelOptions,
} from "./model/models.js";
export { loadModel, saveModel } from "./model/persist.js";
export { ModelFileError, readModelFile, writeModelFile, type ModelFileContents } from "./model/file/index.js";
export { defaultKernels } from "./model/default-kernels.js";
export * from "./train/options.js";
export { LocalTrainer, TrainingError, type EpochReport, type TrainerHooks, type TrainProgress } from "./train/trainer.js";
export { evaluate, type Evaluation } from "./train/evaluate.js";
export { OptimizerState } from "./train/state.js";
export * from "./data/index.js";
