// The arithmetic of combining data-parallel replicas, with no transport in sight: the rows-weighted mean of their
// gradients summed in peer-index order (so every peer that computes a key gets the same bits), the combined batch
// stats, and how many tensor values each peer sends and receives per step in either combine mode.
import { InvalidArgumentError } from "../errors.js";
import type { BatchStats } from "../train/exchange.js";
import { shardRanges } from "./partition.js";

/**
 * How a job combines its peers' gradients each mini-batch. `master` (Hama's): every peer sends its gradient to peer 0,
 * which sums and sends the result back; peer 0 moves (peers - 1) models each way. `allreduce`: each peer owns the keys
 * of one shardRanges() shard, sums every peer's slice of it (reduce-scatter) and sends the sum to all (all-gather); no
 * peer moves more than about 2 (peers - 1) / peers models each way.
 */
export type CombineMode = "master" | "allreduce";

/** The combine modes, for option checks. */
export const COMBINE_MODES: readonly CombineMode[] = ["master", "allreduce"];

/** rows[p] / (sum of rows): each replica's weight in the mean (all 0 when there are no rows). New array. */
export function meanWeights(rows: readonly number[]): number[] {
  const total = rows.reduce((n, r) => n + r, 0);
  return rows.map((r) => (total > 0 ? r / total : 0));
}

/** acc[i] += weight * part[i] for every i of part (the product in f64, the sum rounded to f32 as acc stores it). */
export function accumulate(acc: Float32Array, part: Float32Array, weight: number): void {
  const n = part.length;
  for (let i = 0; i < n; i++) acc[i]! += weight * part[i]!;
}

/**
 * into = the sum of weights[p] * parts[p] over p = 0, 1, ... in that order, starting from zero (what into held is
 * ignored), exactly as MemoryExchangeGroup sums: the same inputs give the same bits wherever it runs. Every part is
 * into.length long. One pass: element i is s = 0, then s = f32(s + weights[p] * parts[p][i]) for each p (the product
 * and sum in f64, rounded to f32 as accumulate() does), then written; so `into` may be one of the parts (in place).
 */
export function weightedSum(into: Float32Array, parts: readonly Float32Array[], weights: readonly number[]): void {
  const n = into.length;
  for (const part of parts) {
    if (part.length !== n) throw new InvalidArgumentError(`weightedSum: a part of ${part.length} values, ${n} expected (into.length)`);
  }
  const f = Math.fround;
  const [a, b, c] = parts;
  const [wa, wb, wc] = weights as number[];
  switch (parts.length) {
    case 0:
      into.fill(0);
      return;
    case 1:
      for (let i = 0; i < n; i++) into[i] = 0 + wa! * a![i]!;
      return;
    case 2:
      for (let i = 0; i < n; i++) into[i] = f(0 + wa! * a![i]!) + wb! * b![i]!;
      return;
    case 3:
      for (let i = 0; i < n; i++) into[i] = f(f(0 + wa! * a![i]!) + wb! * b![i]!) + wc! * c![i]!;
      return;
    default:
      sumMany(into, parts, weights);
  }
}

/** weightedSum for any number of parts, one element at a time (so `into` may still be one of them). */
function sumMany(into: Float32Array, parts: readonly Float32Array[], weights: readonly number[]): void {
  const n = into.length;
  const count = parts.length;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let p = 0; p < count; p++) s = Math.fround(s + weights[p]! * parts[p]![i]!);
    into[i] = s;
  }
}

/** The combined stats of one mini-batch: losses summed in peer order, rows summed. */
export function sumStats(stats: readonly BatchStats[]): BatchStats {
  let loss = 0;
  let rows = 0;
  for (const s of stats) {
    loss += s.loss;
    rows += s.rows;
  }
  return { loss, rows };
}

/** Tensor values one peer sends to and receives from the others in one step (what it hands itself not counted). */
export interface StepTraffic {
  sent: number;
  received: number;
}

/**
 * The gradient values peer `index` of `peers` sends and receives per step for a model of `keys` floats (multiply by
 * 4 for f32 bytes, 2 for f16). master: peer 0 receives and sends (peers - 1) * keys, the others keys each way.
 * allreduce: each way, the other peers' shards (reduce-scatter) plus (peers - 1) times its own (all-gather), about
 * 2 (peers - 1) / peers * keys.
 */
export function stepTraffic(mode: CombineMode, keys: number, peers: number, index: number): StepTraffic {
  if (mode === "master") {
    const values = index === 0 ? (peers - 1) * keys : peers > 1 ? keys : 0;
    return { sent: values, received: values };
  }
  const own = shardLength(keys, peers, index);
  const values = keys - own + (peers - 1) * own;
  return { sent: values, received: values };
}

/** How many keys peer `index` owns in an allreduce over `peers` peers. */
export function shardLength(keys: number, peers: number, index: number): number {
  const range = shardRanges(keys, peers)[index]!;
  return range.end - range.begin;
}
