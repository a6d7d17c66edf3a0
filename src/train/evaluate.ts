// Loss, accuracy and metrics of a network on a dataset, computed chunk by chunk through the core on the calling thread.
import type { Dataset } from "../data/dataset.js";
import { isSparse, type SparseDataset } from "../data/sparse.js";
import { DataError } from "../data/errors.js";
import { ShapeError } from "../errors.js";
import { outputLossFor } from "../model/loss.js";
import type { Network } from "../model/network.js";
import type { Slab } from "../runtime/arena.js";
import { csrInArena } from "./sparse-inputs.js";
import { ClassificationAccumulator, type ClassificationMetrics, RegressionAccumulator, type RegressionMetrics } from "./metrics.js";

/** Mean loss and, for classifiers, the fraction of samples whose predicted class is right; then the metrics. */
export interface Evaluation {
  loss: number;
  /** Undefined for regression (identity or tanh outputs without labels). */
  accuracy: number | undefined;
  samples: number;
  /** Classification metrics for classifiers (whenever `accuracy` is set), else regression metrics (an auto-encoder's
   *  reconstruction too). evaluate() always sets it; optional so that Evaluations made by hand stay valid. In JSON,
   *  a NaN or infinite figure becomes null, as JSON.stringify writes it. */
  metrics?: ClassificationMetrics | RegressionMetrics;
}

const CHUNK = 512;

/** Requires the dataset's feature and output counts to match the network, and sparse data for sparse inputs only. */
export function requireFits(network: Network, data: Dataset | SparseDataset, what = "dataset"): void {
  const sparse = isSparse(data);
  if (sparse !== (network.spec.sparseInputs === true)) {
    throw new ShapeError(
      `${data.name ?? what} is ${sparse ? "sparse (a SparseDataset)" : "dense"}, but the network takes ${network.spec.sparseInputs ? "sparse inputs (spec.sparseInputs)" : "dense inputs"}`,
    );
  }
  if (data.features !== network.inputs || data.outputs !== network.outputs) {
    throw new ShapeError(
      `${data.name ?? what} has ${data.features} features and ${data.outputs} outputs; the network takes ${network.inputs} inputs and gives ${network.outputs} outputs`,
    );
  }
}

// Labelled data, softmax outputs, or a single sigmoid output (binary); not e.g. an auto-encoder's reconstructions.
function isClassifier(network: Network, data: Pick<Dataset, "labels">): boolean {
  const last = network.spec.layers[network.spec.layers.length - 1]!.activation;
  return data.labels !== undefined || last === "softmax" || (last === "sigmoid" && network.outputs === 1);
}

/** Requires at least one sample (a loss or a metric of no samples means nothing): else a DataError naming the
 *  dataset, or `what` ("validation data") when it has no name. */
export function requireSamples(data: Dataset | SparseDataset, what?: string): void {
  const name = data.name ?? what;
  if (data.size < 1) throw new DataError(`${name === undefined ? "" : `${name}: `}cannot evaluate on an empty dataset (0 rows)`);
}

/**
 * Evaluates on every sample of `data` (copies it through a scratch buffer; the network is not changed): the mean
 * loss, and for a classifier the accuracy and classification metrics, else regression metrics. Throws ShapeError
 * when the data does not fit the network, DataError when it has no rows, InvalidArgumentError on a label that is not
 * one of the network's classes.
 */
export function evaluate(network: Network, data: Dataset | SparseDataset): Evaluation {
  requireFits(network, data);
  requireSamples(data);
  if (isSparse(data)) return evaluateSparse(network, data);
  const { kernels } = network;
  const outputs = network.outputs;
  const classifier = isClassifier(network, data);
  const metrics = classifier
    ? new ClassificationAccumulator(outputs, { capacity: data.size, ...(data.name !== undefined ? { name: data.name } : {}) })
    : new RegressionAccumulator(outputs);
  const lossOf = outputLossFor(network.spec);
  const rows = Math.min(CHUNK, Math.max(1, data.size));
  const widest = Math.max(network.inputs, ...network.spec.layers.map((l) => l.units));
  const slabs = [rows * network.inputs, rows * widest, rows * widest, rows * outputs, rows * outputs].map((n) => kernels.arena.alloc(n));
  const [input, ping, pong, targets, y] = slabs as [
    (typeof slabs)[0],
    (typeof slabs)[0],
    (typeof slabs)[0],
    (typeof slabs)[0],
    (typeof slabs)[0],
  ];
  const ws = kernels.arena.alloc(Math.ceil(network.workspaceBytes(rows) / 4));
  let loss = 0;
  try {
    for (let r0 = 0; r0 < data.size; r0 += rows) {
      const count = Math.min(rows, data.size - r0);
      input.set(data.x.subarray(r0 * network.inputs, (r0 + count) * network.inputs));
      targets.set(data.y.subarray(r0 * outputs, (r0 + count) * outputs));
      const z = network.forwardRaw(input.ptr, count, [ping.ptr, pong.ptr], ws.ptr, network.spec.layers.length - 1, false);
      loss += count * lossOf(kernels.core.exports, { z, y: y.ptr, t: targets.ptr, dz: 0, rows: count, cols: outputs });
      metrics.add(y.f32(), targets.f32(), count, data.labels?.subarray(r0, r0 + count));
    }
  } finally {
    for (const slab of [...slabs, ws]) kernels.arena.release(slab);
  }
  const result = metrics.result();
  return {
    loss: loss / data.size,
    accuracy: result.task === "classification" ? result.accuracy : undefined,
    samples: data.size,
    metrics: result,
  };
}

// evaluate() of sparse rows: each chunk's CSR copied into the arena, the first layer by the sparse kernel.
function evaluateSparse(network: Network, data: SparseDataset): Evaluation {
  const { kernels } = network;
  const outputs = network.outputs;
  const metrics = isClassifier(network, data)
    ? new ClassificationAccumulator(outputs, { capacity: data.size, ...(data.name !== undefined ? { name: data.name } : {}) })
    : new RegressionAccumulator(outputs);
  const lossOf = outputLossFor(network.spec);
  const rows = Math.min(CHUNK, data.size);
  const widest = Math.max(...network.spec.layers.map((l) => l.units));
  const slabs = [rows * widest, rows * widest, rows * outputs, rows * outputs, Math.ceil(network.workspaceBytes(rows) / 4)].map((n) => kernels.arena.alloc(n));
  const [ping, pong, targets, y, ws] = slabs as [Slab, Slab, Slab, Slab, Slab];
  let loss = 0;
  try {
    for (let r0 = 0; r0 < data.size; r0 += rows) {
      const count = Math.min(rows, data.size - r0);
      const csr = csrInArena(kernels.arena, data, r0, count, () => kernels.core.memory.buffer as ArrayBuffer);
      try {
        targets.set(data.y.subarray(r0 * outputs, (r0 + count) * outputs));
        const z = network.forwardSparseRaw(csr.rowPtr, csr.indices, csr.values, count, [ping.ptr, pong.ptr], ws.ptr, network.spec.layers.length - 1, false);
        loss += count * lossOf(kernels.core.exports, { z, y: y.ptr, t: targets.ptr, dz: 0, rows: count, cols: outputs });
        metrics.add(y.f32(), targets.f32(), count, data.labels?.subarray(r0, r0 + count));
      } finally {
        csr.release();
      }
    }
  } finally {
    for (const slab of slabs) kernels.arena.release(slab);
  }
  const result = metrics.result();
  return { loss: loss / data.size, accuracy: result.task === "classification" ? result.accuracy : undefined, samples: data.size, metrics: result };
}

/**
 * The outputs (rows x outputs, a copy) of a sparse-input network for every row of `data`, chunk by chunk through the
 * arena. Throws ShapeError when the data does not fit the network.
 */
export function predictSparse(network: Network, data: SparseDataset): Float32Array {
  requireFits(network, data);
  const { kernels } = network;
  const outputs = network.outputs;
  const out = new Float32Array(data.size * outputs);
  const rows = Math.max(1, Math.min(CHUNK, data.size));
  const widest = Math.max(...network.spec.layers.map((l) => l.units));
  const slabs = [rows * widest, rows * widest, Math.ceil(network.workspaceBytes(rows) / 4)].map((n) => kernels.arena.alloc(n));
  const [ping, pong, ws] = slabs as [Slab, Slab, Slab];
  try {
    for (let r0 = 0; r0 < data.size; r0 += rows) {
      const count = Math.min(rows, data.size - r0);
      const csr = csrInArena(kernels.arena, data, r0, count, () => kernels.core.memory.buffer as ArrayBuffer);
      try {
        const y = network.forwardSparseRaw(csr.rowPtr, csr.indices, csr.values, count, [ping.ptr, pong.ptr], ws.ptr);
        out.set(kernels.core.f32().subarray(y >>> 2, (y >>> 2) + count * outputs), r0 * outputs);
      } finally {
        csr.release();
      }
    }
  } finally {
    for (const slab of slabs) kernels.arena.release(slab);
  }
  return out;
}
