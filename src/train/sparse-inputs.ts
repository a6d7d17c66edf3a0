// Sparse inputs in the arena: a SparseDataset's CSR rows (or a chunk of them) copied in as Int32 offsets from 0,
// Int32 feature indices and f32 values, for the sparse first layer's kernels.
import type { SparseDataset } from "../data/sparse.js";
import type { Arena, Slab } from "../runtime/arena.js";

/** Rows [start, start + count) of `data` in three slabs of `arena`; release() frees them. */
export interface ArenaCsr {
  rowPtr: number;
  indices: number;
  values: number;
  release(): void;
}

/** Copies rows [start, start + count) (offsets rebased to 0); `alloc` takes (floats, name) and returns a byte pointer. */
export function copyCsrRows(data: SparseDataset, start: number, count: number, alloc: (length: number, name: string) => number, memory: () => ArrayBuffer): Omit<ArenaCsr, "release"> {
  const from = data.rowPtr[start]!;
  const to = data.rowPtr[start + count]!;
  const nnz = to - from;
  const rowPtr = alloc(count + 1, "sparse row offsets");
  const indices = alloc(Math.max(1, nnz), "sparse feature indices");
  const values = alloc(Math.max(1, nnz), "sparse values");
  const buffer = memory();
  const offsets = new Int32Array(buffer, rowPtr, count + 1);
  for (let r = 0; r <= count; r++) offsets[r] = data.rowPtr[start + r]! - from;
  new Int32Array(buffer, indices, nnz).set(data.indices.subarray(from, to));
  new Float32Array(buffer, values, nnz).set(data.values.subarray(from, to));
  return { rowPtr, indices, values };
}

/** copyCsrRows into fresh slabs of `arena`. */
export function csrInArena(arena: Arena, data: SparseDataset, start: number, count: number, buffer: () => ArrayBuffer): ArenaCsr {
  const slabs: Slab[] = [];
  const csr = copyCsrRows(data, start, count, (length, name) => {
    const slab = arena.alloc(length, name, `${name} of ${count} sparse rows`);
    slabs.push(slab);
    return slab.ptr;
  }, buffer);
  return {
    ...csr,
    release: () => {
      for (const slab of slabs.splice(0)) arena.release(slab);
    },
  };
}
