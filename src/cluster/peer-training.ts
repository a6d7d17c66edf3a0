// Hama-style data-parallel training of one peer: join the BSP job over NATS, take this peer's split of the training
// set, and fit the model in sync mode with every mini-batch's gradient combined across the peers (master or
// allreduce), or every k-th after averaging the models (syncEvery), so that every peer ends with the same weights.
import { createHash } from "node:crypto";
import type { Model } from "../api/models.js";
import type { Dataset } from "../data/dataset.js";
import { InvalidArgumentError } from "../errors.js";
import type { Network } from "../model/network.js";
import { requireSyncEvery } from "../train/exchange.js";
import { TRAIN_DEFAULTS, type TrainOptions } from "../train/options.js";
import type { EpochReport, TrainerHooks } from "../train/trainer.js";
import { type BspOptions, BspPeer } from "./bsp.js";
import { BspChannel } from "./bsp-channel.js";
import {
  CLUSTER_EXCHANGE_DEFAULTS,
  ClusterGradientExchange,
  type CombineMode,
  type ExchangeStats,
  type GradDtype,
} from "./gradient-exchange.js";
import { type SplitMode, splitDataset } from "./partition.js";

/** The BSP options trainPeer passes through (the job, peer count, connection, name, index and spec hash are its own). */
export type PeerBspOptions = Omit<BspOptions, "job" | "peers" | "connection" | "name" | "index" | "specHash">;

/** Options of trainPeer. Defaults are in PEER_TRAINING_DEFAULTS (and BSP_DEFAULTS, TRAIN_DEFAULTS). */
export interface PeerTrainingOptions extends Pick<BspOptions, "job" | "peers" | "connection" | "name" | "index"> {
  /** The model to train, built identically on every peer (same kind, spec and seed, or the same loaded file). */
  model: Model;
  /** The whole training set (every peer has the same one); this peer trains on its split of it only. */
  data: Dataset;
  /** How the training set is split: "modulo" (rows i mod peers) or "contiguous" (default "modulo"). */
  split?: SplitMode;
  /**
   * The training options, over the model's trainDefaults. `mode` must be "sync" (the default). `batchSize` is the
   * GLOBAL mini-batch: each peer computes batchSize / peers rows of it, so it must be a multiple of peers.
   */
  train?: TrainOptions;
  /** How gradients are combined: "master" (peer 0 merges and broadcasts) or "allreduce" (default "allreduce"). */
  combine?: CombineMode;
  /** The dtype of gradients on the wire (default "f32"). */
  gradDtype?: GradDtype;
  /**
   * Local mini-batches per superstep (default 1: every batch's gradient combined). k > 1: model averaging, as
   * ClusterExchangeOptions.syncEvery describes (every k-th batch and each epoch's last combined, after the peers'
   * parameters and optimizer state are averaged); the local batches' losses in the reports are this peer's own.
   * A positive integer; part of the spec hash.
   */
  syncEvery?: number;
  /** Hooks handed to Model.fit (validation, progress, abort signal); fit's per-epoch hook as onEpoch. */
  hooks?: Pick<TrainerHooks, "validation" | "onProgress" | "signal"> & { onEpoch?: (report: EpochReport) => void | Promise<void> };
  /** Further BSP options (timeouts, heartbeat, onError); see BspOptions. */
  bsp?: PeerBspOptions;
}

/** The default of every optional PeerTrainingOptions field trainPeer resolves itself. */
export const PEER_TRAINING_DEFAULTS = Object.freeze({
  split: "modulo" as SplitMode,
  combine: CLUSTER_EXCHANGE_DEFAULTS.combine,
  gradDtype: CLUSTER_EXCHANGE_DEFAULTS.gradDtype,
  syncEvery: CLUSTER_EXCHANGE_DEFAULTS.syncEvery,
});

/** What one peer's training gives. */
export interface PeerTrainingResult {
  /** Model.fit's epoch reports on this peer (losses are of the combined batches, so every peer reports the same;
   *  with syncEvery > 1 the local batches count this peer's own loss). */
  reports: EpochReport[];
  /** This peer in the job. */
  peer: { index: number; name: string };
  /** The gradient exchange's counters (a copy taken when training ended). */
  stats: ExchangeStats;
  /** The trained model (the same object as options.model); the caller of peer 0 writes it. */
  model: Model;
  /** The hash this peer joined with (see peerSpecHash). */
  specHash: string;
}

/** TrainOptions that are this machine's business, not the job's (they do not change the result across peers). */
const LOCAL_TRAIN_OPTIONS: readonly string[] = ["threads"];

/**
 * Trains `options.model` as one peer of a job and resolves once this peer has trained every epoch and closed its
 * BSP peer (closed always, also on failure). Rejects with InvalidArgumentError (options), MembershipError (refused:
 * another peer has another spec hash, i.e. other model or options), BarrierTimeoutError, PeerLostError or the
 * fit's errors. Does not copy the model: it trains it in place. Does not write files.
 *
 * What holds: every peer applies the same combined update to the same initial weights, so the peers end with
 * bit-identical weights. With split "modulo", shuffle: false and a batchSize that is a multiple of peers, peer p's
 * b-th batch is rows {b·B + p, b·B + p + N, ...} of the whole set, so the combined batch is exactly a local run's
 * b-th batch and the weights match one local process with the same options up to summation order (within 1e-5).
 * With shuffle, every peer shuffles its own split with the same seed: still a correct data-parallel SGD, but not
 * the local run's batch order. With "contiguous", the combined batches mix rows from each peer's range.
 * With syncEvery > 1 the peers are bit-identical after every sync batch (so at each epoch's end), but the run is
 * model averaging, not the local run; a peer whose local loss diverges (nonFiniteLoss "error") stops alone, and the
 * others then fail at the next sync batch (PeerLostError or BarrierTimeoutError).
 */
export async function trainPeer(options: PeerTrainingOptions): Promise<PeerTrainingResult> {
  const { model, data, peers } = options;
  const split = options.split ?? PEER_TRAINING_DEFAULTS.split;
  const combine = options.combine ?? PEER_TRAINING_DEFAULTS.combine;
  const gradDtype = options.gradDtype ?? PEER_TRAINING_DEFAULTS.gradDtype;
  const syncEvery = requireSyncEvery(options.syncEvery ?? PEER_TRAINING_DEFAULTS.syncEvery, "trainPeer");
  const train = jobTrainOptions(model, options.train ?? {}, peers);
  const specHash = peerSpecHash(model, data, { ...train, peers, split, combine, gradDtype, syncEvery });
  const bsp = await BspPeer.join({
    ...options.bsp,
    job: options.job,
    peers,
    connection: options.connection,
    name: options.name,
    index: options.index,
    specHash,
  });
  const exchange = new ClusterGradientExchange(new BspChannel(bsp), { combine, gradDtype, syncEvery, kernels: model.network.kernels });
  try {
    const part = splitDataset(data, peers, bsp.index, split);
    const batchSize = train.batchSize! / peers;
    const reports = await model.fit(part, { ...options.train, mode: "sync", batchSize, ...options.hooks, exchange });
    return { reports, peer: { index: bsp.index, name: bsp.name }, stats: exchange.stats, model, specHash };
  } finally {
    exchange.dispose();
    await bsp.close();
  }
}

/** The job's view of the training options (model defaults under the caller's), checked for a cluster run. */
function jobTrainOptions(model: Model, train: TrainOptions, peers: number): TrainOptions {
  const merged: TrainOptions = { ...model.trainDefaults, ...train };
  if ((merged.mode ?? "sync") !== "sync") {
    throw new InvalidArgumentError(
      `trainPeer: train.mode must be "sync" (gradients are combined every mini-batch), got ${JSON.stringify(merged.mode)}`,
    );
  }
  const batchSize = merged.batchSize ?? TRAIN_DEFAULTS.batchSize;
  if (!Number.isInteger(peers) || peers < 1)
    throw new InvalidArgumentError(`trainPeer: peers must be a positive integer, got ${String(peers)}`);
  if (!Number.isInteger(batchSize) || batchSize < peers || batchSize % peers !== 0) {
    throw new InvalidArgumentError(
      `trainPeer: train.batchSize (the global mini-batch, default ${TRAIN_DEFAULTS.batchSize}) must be a multiple of peers (${peers}), got ${String(batchSize)}`,
    );
  }
  return { ...merged, mode: "sync", batchSize };
}

/**
 * A stable hex hash (SHA-256) of what must agree across the peers of a job: the model kind and resolved spec, its
 * current weights (so every peer starts from the same ones), the training set's shape, and the job options (train
 * options over the defaults, minus the machine-local ones such as threads). Keys are sorted, so field order does
 * not matter. Reads the weights (a copy of them, dropped at once).
 */
export function peerSpecHash(model: Model, data: Dataset, job: Record<string, unknown>): string {
  const hash = createHash("sha256");
  const jobFields = Object.fromEntries(Object.entries(job).filter(([k, v]) => v !== undefined && !LOCAL_TRAIN_OPTIONS.includes(k)));
  hash.update(
    canonical({
      kind: model.kind,
      spec: model.network.spec,
      data: { size: data.size, features: data.features, outputs: data.outputs },
      job: jobFields,
    }),
  );
  const params = weights(model.network);
  hash.update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength));
  return hash.digest("hex");
}

function weights(network: Network): Float32Array {
  return network.params.block.toArray();
}

/** JSON with object keys sorted at every level. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
