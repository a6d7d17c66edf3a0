// The compact per-portion copy of a sparse-input network (train/sparse-portion.ts): given the rows of the portion's
// distinct features and the dense tail, its loss, first-layer row gradients and dense-tail gradient equal the whole
// network's (computeGradients) on the same rows; portions are cut at the pair capacity, a longer row grows it
// (keeping the dense tail); portions planned ahead load as load() does; the dense tail's initial values do not
// depend on the sparse layer's size.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createSparseDataset, type SparseDataset, sparseRows } from "../../src/data/sparse.js";
import { Network } from "../../src/model/network.js";
import { resolveSpec } from "../../src/model/spec.js";
import { computeGradients } from "../../src/train/gradients.js";
import { denseTail, SparsePortionStep } from "../../src/train/sparse-portion.js";
import { kernelsFor, seededRandom } from "../helpers.js";

const FEATURES = 300;

/** Rows of 1 .. maxPairs distinct random features (sorted), binary labels. */
function rowsOf(seed: number, rows: number, maxPairs: number): SparseDataset {
  const random = seededRandom(seed);
  const rowPtr = new Int32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    const picked = new Set<number>();
    const n = 1 + Math.floor(random() * maxPairs);
    while (picked.size < n) picked.add(Math.floor(random() * FEATURES));
    for (const j of [...picked].sort((a, b) => a - b)) {
      indices.push(j);
      values.push(2 * random() - 1);
    }
    rowPtr[r + 1] = indices.length;
  }
  const y = Float32Array.from({ length: rows }, () => (random() < 0.4 ? 1 : 0));
  return createSparseDataset({ features: FEATURES, outputs: 1, rowPtr, indices: Int32Array.from(indices), values: Float32Array.from(values), y });
}

const SPEC = resolveSpec({ inputs: FEATURES, sparseInputs: true, seed: 5, layers: [{ units: 7, activation: "tanh" }, { units: 3, activation: "relu" }, { units: 1, activation: "sigmoid" }] });

describe("SparsePortionStep", () => {
  test("loss and gradients equal the whole network's on the same rows", { timeout: 60_000 }, async () => {
    const kernels = await kernelsFor("simd");
    const network = Network.create(kernels, SPEC);
    const data = rowsOf(1, 40, 9);
    const step = SparsePortionStep.create(kernels, SPEC, { rows: 16 });
    const units = SPEC.layers[0]!.units;
    const w0 = network.weights(0).f32().slice();
    const tailAt = (network.bias(0).ptr - network.params.block.ptr) / 4;
    const tail = network.params.block.f32().slice(tailAt);
    for (let r = 0; r < data.size; ) {
      const count = step.load(data, r);
      assert.ok(count >= 1 && count <= 16);
      const keys = step.keys();
      assert.equal(new Set(keys).size, keys.length, "keys are distinct");
      const rows = step.rowsView();
      keys.forEach((key, i) => {
        rows.set(w0.subarray(key * units, (key + 1) * units), i * units);
      });
      step.denseView().set(tail);
      const loss = step.train();
      const whole = computeGradients(network, sparseRows(data, r, r + count), { packed: false });
      assert.ok(Math.abs(loss / count - whole.loss) < 1e-5 * Math.max(1, whole.loss), `loss ${loss / count} vs ${whole.loss}`);
      const byName = new Map(whole.tensors.map((t) => [t.name, t.data]));
      const gw0 = byName.get("w0")!;
      const grads = step.rowGradients();
      keys.forEach((key, i) => {
        for (let j = 0; j < units; j++) assert.ok(Math.abs(grads[i * units + j]! - gw0[key * units + j]!) < 1e-5, `row ${key} unit ${j}`);
      });
      const dense = step.denseGradients();
      for (const name of ["b0", "w1", "b1", "w2", "b2"]) {
        const at = (network.params.get(name).ptr - network.bias(0).ptr) / 4;
        const expected = byName.get(name)!;
        for (let k = 0; k < expected.length; k++) assert.ok(Math.abs(dense[at + k]! - expected[k]!) < 1e-5, `${name}[${k}]`);
      }
      r += count;
    }
    step.dispose();
    network.dispose();
  });

  test("a portion stops at the pair capacity; a longer row grows it and keeps the dense tail", { timeout: 60_000 }, async () => {
    const kernels = await kernelsFor("simd");
    const data = rowsOf(2, 30, 12);
    const step = SparsePortionStep.create(kernels, SPEC, { rows: 30, capacity: 20 });
    const count = step.load(data, 0);
    assert.ok(data.rowPtr[count]! - data.rowPtr[0]! <= 20 && data.rowPtr[count + 1]! - data.rowPtr[0]! > 20, "as many rows as fit");
    step.denseView().fill(0.25);
    const long = createSparseDataset({ features: FEATURES, outputs: 1, rowPtr: Int32Array.of(0, 100), indices: Int32Array.from({ length: 100 }, (_, i) => 2 * i), values: new Float32Array(100).fill(1), y: Float32Array.of(1) });
    assert.equal(step.load(long, 0), 1);
    assert.ok(step.capacity >= 100);
    assert.equal(step.keys().length, 100);
    assert.ok(step.denseView().every((v) => v === 0.25));
    step.dispose();
  });

  test("portions planned ahead (as concurrent lanes do) load as load() does, in any order", { timeout: 60_000 }, async () => {
    const kernels = await kernelsFor("simd");
    const data = rowsOf(3, 40, 9);
    const step = SparsePortionStep.create(kernels, SPEC, { rows: 8 });
    const first = step.plan(data, 0);
    const second = step.plan(data, first.count);
    const lossOf = (keys: Int32Array) => {
      step.rowsView().set(Float32Array.from({ length: keys.length * 7 }, (_, i) => Math.sin(keys[Math.floor(i / 7)]! + i)));
      step.denseView().fill(0.1);
      return step.train();
    };
    step.loadPlan(data, second);
    assert.deepEqual(step.keys(), second.keys);
    const planned = lossOf(second.keys);
    assert.equal(step.load(data, first.count), second.count);
    assert.deepEqual(step.keys(), second.keys);
    assert.equal(lossOf(step.keys()), planned);
    step.loadPlan(data, first);
    assert.deepEqual(step.keys(), first.keys);
    assert.throws(() => step.loadPlan(data, { ...first, local: first.local.subarray(1) }), /the plan is of other rows/);
    step.dispose();
  });

  test("the dense tail's initial values are the same whatever the sparse layer's size", async () => {
    const kernels = await kernelsFor("simd");
    const a = denseTail(kernels, SPEC);
    const b = denseTail(kernels, resolveSpec({ ...SPEC, inputs: 2 ** 27 }));
    assert.deepEqual(a.init, b.init);
    assert.equal(a.keys, a.init.length);
    assert.deepEqual(a.segments.map((s) => s.decay), [false, true, false, true, false]);
    assert.ok(a.init.some((v) => v !== 0));
  });
});
