// How a job divides its work between peers, with no runtime or NATS in sight: the key ranges of the parameter
// vector each peer owns in a reduce-scatter (shardRanges), and the rows of the training data each peer reads
// (splitRows, splitDataset), as Hama's grooms each read their own split.
import { type Dataset, selectRows } from "../data/dataset.js";
import { InvalidArgumentError } from "../errors.js";
import type { KeyRange } from "../train/exchange.js";
import { describeValue } from "../util/describe.js";

/** Keys a shard boundary is a multiple of, by default: 16 floats, the 64 bytes the parameter layout pads to. */
export const DEFAULT_SHARD_ALIGN = 16;

/** `modulo`: peer k takes rows k, k + N, k + 2N, ... (interleaved). `contiguous`: one block of rows per peer. */
export type SplitMode = "modulo" | "contiguous";

const SPLIT_MODES: readonly SplitMode[] = ["modulo", "contiguous"];

/**
 * `shards` contiguous ranges covering [0, keys) in order, without overlap: range k is the part of the vector shard k
 * owns (reduce-scatter, then all-gather). Every begin is a multiple of `align`, and so is every end but the last
 * (keys). Sizes differ by at most `align`: the key space is cut in blocks of `align` keys, dealt evenly, and the
 * shards that get one block more are the last ones (so the short final block lands on a large shard). When keys <
 * shards * align, the first shards get empty ranges. Throws InvalidArgumentError naming a bad argument. New array.
 */
export function shardRanges(keys: number, shards: number, align = DEFAULT_SHARD_ALIGN): KeyRange[] {
  requireInteger("shardRanges", "keys", keys, 0);
  requireInteger("shardRanges", "shards", shards, 1);
  requireInteger("shardRanges", "align", align, 1);
  const blocks = Math.ceil(keys / align);
  const base = Math.floor(blocks / shards);
  const fuller = blocks % shards;
  const ranges: KeyRange[] = [];
  let block = 0;
  for (let k = 0; k < shards; k++) {
    const next = block + base + (k >= shards - fuller ? 1 : 0);
    ranges.push({ begin: Math.min(block * align, keys), end: Math.min(next * align, keys) });
    block = next;
  }
  return ranges;
}

/**
 * The row indices (ascending) of peer `index` of `peers` over rows [0, size): `modulo` takes rows i with
 * i mod peers === index; `contiguous` takes one block, the blocks' sizes differing by at most one, the larger first
 * (as the data module's split). Every row belongs to exactly one peer either way. Throws InvalidArgumentError
 * naming a bad argument. New array.
 */
export function splitRows(size: number, peers: number, index: number, mode: SplitMode): Int32Array {
  return rowsOf("splitRows", size, peers, index, mode);
}

/**
 * Peer `index`'s split of `ds` (splitRows over its rows), copied into a new Dataset that keeps labels and source
 * lines; named "<name> part <index + 1>/<peers>" when ds has a name. Throws InvalidArgumentError as splitRows does.
 */
export function splitDataset(ds: Dataset, peers: number, index: number, mode: SplitMode): Dataset {
  if (typeof ds !== "object" || ds === null || !Number.isInteger(ds.size)) {
    throw new InvalidArgumentError(`splitDataset: ds must be a Dataset, got ${describeValue(ds)}`);
  }
  const rows = rowsOf("splitDataset", ds.size, peers, index, mode);
  return selectRows(ds, rows, ds.name === undefined ? undefined : `${ds.name} part ${index + 1}/${peers}`);
}

function rowsOf(fn: string, size: number, peers: number, index: number, mode: SplitMode): Int32Array {
  requireInteger(fn, "size", size, 0, 2 ** 31 - 1);
  requireInteger(fn, "peers", peers, 1, 2 ** 31 - 1);
  requireInteger(fn, "index", index, 0, peers - 1);
  if (!SPLIT_MODES.includes(mode)) {
    throw new InvalidArgumentError(`${fn}: mode must be ${SPLIT_MODES.map((m) => `"${m}"`).join(" or ")}, got ${describeValue(mode)}`);
  }
  if (mode === "modulo") {
    const rows = new Int32Array(index < size ? Math.ceil((size - index) / peers) : 0);
    for (let i = 0; i < rows.length; i++) rows[i] = index + i * peers;
    return rows;
  }
  const base = Math.floor(size / peers);
  const larger = size % peers;
  const start = index * base + Math.min(index, larger);
  const rows = new Int32Array(base + (index < larger ? 1 : 0));
  for (let i = 0; i < rows.length; i++) rows[i] = start + i;
  return rows;
}

function requireInteger(fn: string, name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    throw new InvalidArgumentError(`${fn}: ${name} must be ${range}, got ${describeValue(value)}`);
  }
}
