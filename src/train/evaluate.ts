// Loss and accuracy of a network on a dataset, computed chunk by chunk through the core on the calling thread.
import { ShapeError } from "../errors.js";
import type { Dataset } from "../data/dataset.js";
import { outputLossFor } from "../model/loss.js";
import type { Network } from "../model/network.js";

/** Mean loss and, for classifiers, the fraction of samples whose predicted class is right. */
export interface Evaluation {
  loss: number;
  /** Undefined for regression (identity or tanh outputs without labels). */
  accuracy: number | undefined;
  samples: number;
}

const CHUNK = 512;

/** Requires the dataset's feature and output counts to match the network. */
export function requireFits(network: Network, data: Dataset, what = "dataset"): void {
  if (data.features !== network.inputs || data.outputs !== network.outputs) {
    throw new ShapeError(
      `${data.name ?? what} has ${data.features} features and ${data.outputs} outputs; the network takes ${network.inputs} inputs and gives ${network.outputs} outputs`,
    );
  }
}

// Labelled data, softmax outputs, or a single sigmoid output (binary); not e.g. an auto-encoder's reconstructions.
function isClassifier(network: Network, data: Dataset): boolean {
  const last = network.spec.layers[network.spec.layers.length - 1]!.activation;
  return data.labels !== undefined || last === "softmax" || (last === "sigmoid" && network.outputs === 1);
}

function predictedClass(y: Float32Array, row: number, cols: number): number {
  if (cols === 1) return y[row]! >= 0.5 ? 1 : 0;
  let best = 0;
  for (let j = 1; j < cols; j++) if (y[row * cols + j]! > y[row * cols + best]!) best = j;
  return best;
}

/** Evaluates on every sample of `data` (copies it through a scratch buffer; the network is not changed). */
export function evaluate(network: Network, data: Dataset): Evaluation {
  requireFits(network, data);
  const { kernels } = network;
  const outputs = network.outputs;
  const classifier = isClassifier(network, data);
  const lossOf = outputLossFor(network.spec);
  const rows = Math.min(CHUNK, Math.max(1, data.size));
  const widest = Math.max(network.inputs, ...network.spec.layers.map((l) => l.units));
  const slabs = [rows * network.inputs, rows * widest, rows * widest, rows * outputs, rows * outputs].map((n) => kernels.arena.alloc(n));
  const [input, ping, pong, targets, y] = slabs as [typeof slabs[0], typeof slabs[0], typeof slabs[0], typeof slabs[0], typeof slabs[0]];
  const ws = kernels.arena.alloc(Math.ceil(network.workspaceBytes(rows) / 4));
  let loss = 0;
  let correct = 0;
  try {
    for (let r0 = 0; r0 < data.size; r0 += rows) {
      const count = Math.min(rows, data.size - r0);
      input.set(data.x.subarray(r0 * network.inputs, (r0 + count) * network.inputs));
      targets.set(data.y.subarray(r0 * outputs, (r0 + count) * outputs));
      const z = network.forwardRaw(input.ptr, count, [ping.ptr, pong.ptr], ws.ptr, network.spec.layers.length - 1, false);
      loss += count * lossOf(kernels.core.exports, { z, y: y.ptr, t: targets.ptr, dz: 0, rows: count, cols: outputs });
      if (!classifier) continue;
      const predicted = y.f32();
      const truth = targets.f32();
      for (let i = 0; i < count; i++) {
        const label = data.labels ? data.labels[r0 + i]! : predictedClass(truth, i, outputs);
        if (predictedClass(predicted, i, outputs) === label) correct++;
      }
    }
  } finally {
    for (const slab of [...slabs, ws]) kernels.arena.release(slab);
  }
  return { loss: loss / Math.max(1, data.size), accuracy: classifier ? correct / Math.max(1, data.size) : undefined, samples: data.size };
}
