// The neuron-forms rows of bench:train: one epoch of MNIST on 784-128-10 with a sigmoid hidden layer, run as the
// built-in kernel, as a scalar type (form 1), a block type (form 2) and Horn's StandardNeuron (form 3, per neuron),
// all from examples/horn/neurons.js, on 2 worker threads (sync); samples/s, the ratio to the built-in, accuracy.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Kernels, MultiLayerPerceptron, type Dataset } from "../../src/index.js";
import { repoRoot } from "./report.js";

/** One form's timed epoch. */
export interface FormRun {
  form: string;
  neuron: string | undefined;
  samplesPerSecond: number;
  accuracy: number;
}

const NEURONS = pathToFileURL(join(repoRoot, "examples/horn/neurons.js")).href;

/** The forms, built-in first (the ratios' base). */
export const FORMS: ReadonlyArray<{ form: string; neuron: string | undefined }> = [
  { form: "built-in sigmoid kernel", neuron: undefined },
  { form: "form 1 (scalar)", neuron: `${NEURONS}#Sigmoid` },
  { form: "form 2 (block)", neuron: `${NEURONS}#SigmoidBlock` },
  { form: "form 3 (per neuron, Horn's StandardNeuron)", neuron: `${NEURONS}#StandardNeuron` },
];

const OPTIONS = { epochs: 1, batchSize: 64, learningRate: 0.1, momentum: 0.9, threads: 2, mode: "sync" } as const;

async function once(kernels: Kernels, train: Dataset, test: Dataset, neuron: string | undefined, maxIterations: number): Promise<{ samplesPerSecond: number; accuracy: number }> {
  const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: [128], outputs: 10, hiddenActivation: "sigmoid", hiddenNeuron: neuron, seed: 1 }, { kernels });
  try {
    const [report] = await model.fit(train, maxIterations ? { ...OPTIONS, maxIterations } : OPTIONS);
    return { samplesPerSecond: report!.samplesPerSecond, accuracy: model.evaluate(test).accuracy! };
  } finally {
    model.dispose();
  }
}

/**
 * Forms 1 and 2 and the built-in: `repeats` interleaved epochs each, the median kept; form 3 one epoch (it is
 * 20x slower). `quickBatches` > 0 times that many mini-batches instead of epochs. A warm-up run of each form first.
 */
export async function runNeuronForms(train: Dataset, test: Dataset, repeats: number, quickBatches: number): Promise<FormRun[]> {
  const kernels = await Kernels.load({ shared: true });
  for (const { neuron } of FORMS) await once(kernels, train, test, neuron, 20);
  const fast = FORMS.slice(0, 3);
  const runs: Array<Array<{ samplesPerSecond: number; accuracy: number }>> = fast.map(() => []);
  for (let r = 0; r < repeats; r++) for (const [i, { neuron }] of fast.entries()) runs[i]!.push(await once(kernels, train, test, neuron, quickBatches));
  const median = (list: Array<{ samplesPerSecond: number; accuracy: number }>) => [...list].sort((a, b) => a.samplesPerSecond - b.samplesPerSecond)[Math.floor(list.length / 2)]!;
  const results = fast.map((f, i) => ({ ...f, ...median(runs[i]!) }));
  const slow = FORMS[3]!;
  results.push({ ...slow, ...(await once(kernels, train, test, slow.neuron, quickBatches)) });
  return results;
}
