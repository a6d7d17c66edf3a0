// The neuron-centric API: define a type in one of three forms, reference it by module and export, load it.
export { Neuron, type NeuronClass, type SquashingFunction, type Synapse } from "./neuron.js";
export {
  blockNeuron, scalarNeuron, NeuronRunError, NeuronTypeError, type BlockNeuronType, type NeuronForm, type NeuronRef, type NeuronType,
  type OnnxComposition, type OnnxOps, type ScalarNeuronType,
} from "./types.js";
export {
  loadNeuronType, loadNeuronTypes, neuronTypes, parseNeuronSpecifier, registerNeuronType, resolveModuleSpecifier, type NeuronEntry,
} from "./registry.js";
export { SQUASHING_FUNCTIONS } from "./squash.js";
