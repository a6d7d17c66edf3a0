// Sparse datasets: construction checks naming the row and position, row slices sharing the arrays, the dense
// copy, and readLibsvmSparse against the dense reader on the same file (same values, 0-based columns), its size
// limit and located errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DataError, DataSizeError, readLibsvm, readLibsvmSparse } from "../../src/data/index.js";
import { createSparseDataset, meanRowLength, sparseRows, sparseToDense } from "../../src/data/sparse.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { tempDir, writeTemp } from "../support/temp.js";

const parts = () => ({
  features: 5,
  outputs: 1,
  rowPtr: Int32Array.of(0, 2, 2, 5),
  indices: Int32Array.of(0, 4, 1, 1, 3),
  values: Float32Array.of(1, 2, 3, 4, 5),
  y: Float32Array.of(1, 0, 1),
});

describe("sparse datasets", () => {
  test("a well-formed set: sizes, an empty row, repeated indices add up in the dense copy, slices share the arrays", () => {
    const ds = createSparseDataset(parts());
    assert.equal(ds.size, 3);
    assert.equal(meanRowLength(ds), 5 / 3);
    assert.deepEqual([...sparseToDense(ds).x], [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 7, 0, 5, 0]);
    const tail = sparseRows(ds, 1, 3);
    assert.equal(tail.size, 2);
    assert.equal(tail.indices, ds.indices);
    assert.deepEqual([...tail.rowPtr], [2, 2, 5]);
    assert.deepEqual([...sparseToDense(tail).x], [0, 0, 0, 0, 0, 0, 7, 0, 5, 0]);
    assert.throws(() => sparseRows(ds, 2, 4), InvalidArgumentError);
  });

  test("bad parts are refused, naming the row and position", () => {
    assert.throws(() => createSparseDataset({ ...parts(), indices: Int32Array.of(0, 4, 1, 5, 3) }), (e: Error) => e instanceof DataError && /row 2: feature index 5 at position 1 is outside \[0, 5\)/.test(e.message));
    assert.throws(() => createSparseDataset({ ...parts(), values: Float32Array.of(1, Number.NaN, 3, 4, 5) }), (e: Error) => e instanceof DataError && /row 0: the value of feature 4 is NaN/.test(e.message));
    assert.throws(() => createSparseDataset({ ...parts(), rowPtr: Int32Array.of(0, 3, 2, 5) }), (e: Error) => e instanceof InvalidArgumentError && /decreases at row 1/.test(e.message));
    assert.throws(() => createSparseDataset({ ...parts(), rowPtr: Int32Array.of(0, 2, 2, 6) }), InvalidArgumentError);
    assert.throws(() => createSparseDataset({ ...parts(), y: Float32Array.of(1, 0) }), InvalidArgumentError);
    assert.throws(() => createSparseDataset({ ...parts(), features: 0 }), InvalidArgumentError);
    assert.throws(() => sparseToDense(createSparseDataset(parts()), 10), InvalidArgumentError);
  });

  describe("readLibsvmSparse", () => {
    const dir = tempDir("libsvm-sparse");
    const text = ["# clicks", "1 1:0.5 3:2", "0 2:-1.5e1   # trailing", "", "1 qid:7 1:1 2:2 3:3 1048576:1", "0"].join("\n");

    test("reads the pairs as they are (0-based columns, 2^20 features cost only the pairs) and agrees with the dense reader", async () => {
      const file = writeTemp(dir, "clicks.svm", text);
      const sparse = await readLibsvmSparse(file);
      assert.equal(sparse.size, 4);
      assert.equal(sparse.features, 1048576);
      assert.deepEqual([...sparse.rowPtr], [0, 2, 3, 7, 7]);
      assert.deepEqual([...sparse.indices], [0, 2, 1, 0, 1, 2, 1048575]);
      assert.deepEqual([...sparse.lines!], [2, 3, 5, 6]);
      const small = await readLibsvmSparse(writeTemp(dir, "small.svm", text.replace(" 1048576:1", "")), { classes: 2 });
      const dense = await readLibsvm(writeTemp(dir, "small2.svm", text.replace(" 1048576:1", "")), { classes: 2 });
      assert.deepEqual(sparseToDense(small).x, dense.x);
      assert.deepEqual(small.y, dense.y);
      assert.deepEqual(small.labels, dense.labels);
    });

    test("a file whose pairs exceed maxBytes is refused at the line that crosses it; bad tokens name their line", async () => {
      const rows = Array.from({ length: 200 }, (_, i) => `1 ${i + 1}:1 ${i + 2}:1`).join("\n");
      await assert.rejects(readLibsvmSparse(writeTemp(dir, "big.svm", rows), { maxBytes: 1000 }), (e: Error) => e instanceof DataSizeError && e.line !== undefined && e.line < 200);
      await assert.rejects(readLibsvmSparse(writeTemp(dir, "bad.svm", "1 1:1\n0 3:1 2:1\n")), (e: Error) => e instanceof DataError && e.line === 2 && /does not increase/.test(e.message));
    });
  });
});
