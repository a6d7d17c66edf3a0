// The synthetic click-log generator: rows are a pure function of (seed, row index) whatever the chunking, feature
// frequencies follow a power law over permuted ids, the teacher's own log-loss matches bestLogLoss within sampling
// error and beats a constant, and the libsvm files it writes (atomically, with their sidecar) read back exactly.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { DataError, readLibsvm, readLibsvmSparse, sparseToDense } from "../../src/data/index.js";
import { teacherPathFor, writeSynthCtrLibsvm } from "../../src/data/synth-ctr-file.js";
import {
  binaryEntropy, SynthCtrLibsvmEncoder, noisyProbability, SYNTH_CTR_DEFAULTS, SynthCtr, type SynthCtrChunk, synthCtrDataset, SynthCtrStats,
} from "../../src/data/synth-ctr.js";
import { tempDir } from "../support/temp.js";

const dir = tempDir("synth-ctr");
const TIMEOUT = { timeout: 30_000 };

/** The chunks' rows joined into one chunk (for comparing splits). */
function concat(chunks: SynthCtrChunk[]): SynthCtrChunk {
  const rowStart = [0];
  for (const c of chunks) for (let r = 1; r <= c.rows; r++) rowStart.push(rowStart.at(-1)! + c.rowStart[r]! - c.rowStart[r - 1]!);
  const join = <T extends Int32Array | Float64Array | Uint8Array>(make: (n: number) => T, pick: (c: SynthCtrChunk) => T): T => {
    const parts = chunks.map(pick);
    const out = make(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p as never, at);
      at += p.length;
    }
    return out;
  };
  return {
    start: chunks[0]!.start,
    rows: chunks.reduce((n, c) => n + c.rows, 0),
    rowStart: Int32Array.from(rowStart),
    indices: join((n) => new Int32Array(n), (c) => c.indices),
    values: join((n) => new Float64Array(n), (c) => c.values),
    labels: join((n) => new Uint8Array(n), (c) => c.labels),
    probabilities: join((n) => new Float64Array(n), (c) => c.probabilities),
  };
}

/** How often each feature id appears in the rows. */
function frequencies(chunk: SynthCtrChunk): Map<number, number> {
  const counts = new Map<number, number>();
  for (const id of chunk.indices) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("SynthCtr rows", () => {
  test("the same seed gives the same rows; chunks and single rows equal one pass; another seed differs", () => {
    const options = { seed: 7, features: 2 ** 16, perExample: 20 };
    const whole = new SynthCtr(options).chunk(0, 500);
    const other = new SynthCtr(options);
    assert.equal(other.bias, new SynthCtr(options).bias);
    assert.deepEqual(concat([other.chunk(0, 123), other.chunk(123, 377)]), whole);
    assert.deepEqual(concat([...other.chunks(0, 500, 64)]), whole);
    assert.deepEqual(concat([other.chunk(250, 250), other.chunk(0, 250)].reverse()), whole, "any order");
    const row = other.row(321);
    const [from, to] = [whole.rowStart[321]!, whole.rowStart[322]!];
    assert.deepEqual([...row.indices], [...whole.indices.subarray(from, to)]);
    assert.equal(row.label, whole.labels[321]);
    assert.equal(row.probability, whole.probabilities[321]);
    assert.equal(other.probability(row.indices, row.values), row.probability);
    const seed8 = new SynthCtr({ ...options, seed: 8 }).chunk(0, 500);
    assert.notDeepEqual([...seed8.indices.subarray(0, 20)], [...whole.indices.subarray(0, 20)]);
  });

  test("rows hold perExample distinct ids in increasing order, within the features; real values are in (0, 1]", () => {
    const chunk = new SynthCtr({ features: 1000, perExample: 30, values: "real" }).chunk(0, 300);
    for (let r = 0; r < chunk.rows; r++) {
      const ids = [...chunk.indices.subarray(chunk.rowStart[r]!, chunk.rowStart[r + 1]!)];
      assert.equal(ids.length, 30);
      for (let e = 1; e < ids.length; e++) assert.ok(ids[e]! > ids[e - 1]!, `row ${r} increases`);
      assert.ok(ids[0]! >= 0 && ids.at(-1)! < 1000);
    }
    assert.ok(chunk.values.every((v) => v > 0 && v <= 1 && Math.round(v * 1000) === v * 1000));
    assert.ok(new Set(chunk.values).size > 100, "values vary");
    const tiny = new SynthCtr({ features: 5, perExample: 40 }).chunk(0, 20);
    assert.ok(tiny.rowStart[1]! <= 5, "never more features than exist");
  });

  test("feature frequencies follow a power law over permuted ids; distinct features grow sublinearly", () => {
    const generator = new SynthCtr({ features: 2 ** 16 });
    const chunk = generator.chunk(0, 4000);
    const counts = [...frequencies(chunk).entries()].sort((a, b) => b[1] - a[1]);
    const median = counts[Math.floor(counts.length / 2)]![1];
    assert.equal(counts[0]![0], generator.featureOfRank(0), "the most frequent feature is rank 0's");
    assert.ok(counts[0]![1] >= 100 * median, `most frequent ${counts[0]![1]} vs median ${median}`);
    const at = (rank: number) => counts[rank]![1];
    assert.ok(at(0) > 10 * at(100) && at(100) > 5 * at(1000), `counts at ranks 0, 100, 1000: ${at(0)}, ${at(100)}, ${at(1000)}`);
    assert.ok(counts.slice(0, 10).some(([id]) => id >= 10), "frequent ids are not 0, 1, 2, ...");
    const distinct = (rows: number) => frequencies(generator.chunk(0, rows)).size;
    const [d500, d4000] = [distinct(500), counts.length];
    assert.ok(d4000 > d500 && d4000 < 8 * d500 * 0.6, `distinct ${d500} in 500 rows, ${d4000} in 4000`);
  });

  test("featureOfRank is a bijection of [0, features), also for features not a power of two", () => {
    for (const features of [1, 2, 3, 1000, 4096]) {
      const generator = new SynthCtr({ features, perExample: 1 });
      const ids = new Set(Array.from({ length: features }, (_, r) => generator.featureOfRank(r)));
      assert.equal(ids.size, features);
      assert.ok([...ids].every((id) => id >= 0 && id < features));
    }
  });

  test("teacher weights: deterministic, nonzero for about teacherDensity of the features, Gaussian of teacherScale", () => {
    const generator = new SynthCtr({ seed: 3, teacherDensity: 0.2, teacherScale: 2 });
    const weights = Array.from({ length: 20_000 }, (_, j) => generator.weight(j));
    assert.deepEqual(weights.slice(0, 50), Array.from({ length: 50 }, (_, j) => new SynthCtr({ seed: 3, teacherDensity: 0.2, teacherScale: 2 }).weight(j)));
    const nonzero = weights.filter((w) => w !== 0);
    assert.ok(Math.abs(nonzero.length / 20_000 - 0.2) < 0.015, `density ${nonzero.length / 20_000}`);
    const sd = Math.sqrt(nonzero.reduce((s, w) => s + w * w, 0) / nonzero.length);
    assert.ok(Math.abs(sd - 2) < 0.1, `scale ${sd}`);
  });
});

describe("SynthCtr teacher", () => {
  test("the teacher's log-loss is bestLogLoss within sampling error; a constant is clearly worse; the click rate is near its target", TIMEOUT, () => {
    const generator = new SynthCtr();
    const stats = new SynthCtrStats(generator.settings.noise);
    let [sum, squares, rows] = [0, 0, 0];
    for (const chunk of generator.chunks(0, 20_000, 4096)) {
      stats.add(chunk);
      for (let r = 0; r < chunk.rows; r++) {
        const q = noisyProbability(chunk.probabilities[r]!, SYNTH_CTR_DEFAULTS.noise);
        const loss = -Math.log(chunk.labels[r] === 1 ? q : 1 - q);
        sum += loss;
        squares += loss * loss;
        rows++;
      }
    }
    const summary = stats.summary();
    const mean = sum / rows;
    const standardError = Math.sqrt((squares / rows - mean * mean) / rows);
    assert.equal(summary.rows, 20_000);
    assert.ok(Math.abs(summary.teacherLogLoss - mean) < 1e-9);
    assert.ok(Math.abs(summary.teacherLogLoss - summary.bestLogLoss) < 4 * standardError, `${summary.teacherLogLoss} vs ${summary.bestLogLoss} (se ${standardError})`);
    assert.ok(summary.constantLogLoss - summary.bestLogLoss > 0.05, `constant ${summary.constantLogLoss} vs best ${summary.bestLogLoss}`);
    assert.ok(Math.abs(summary.clickRate - SYNTH_CTR_DEFAULTS.clickRate) < 0.02, `click rate ${summary.clickRate}`);
    assert.equal(summary.meanActive, 40);
  });

  test("without a teacher signal the best log-loss is the constant's; with no noise it is the mean entropy of p", () => {
    const flat = new SynthCtr({ teacherScale: 0, features: 2 ** 12, clickRate: 0.3 });
    const stats = new SynthCtrStats(flat.settings.noise);
    stats.add(flat.chunk(0, 5000));
    const summary = stats.summary();
    assert.ok(Math.abs(summary.bestLogLoss - binaryEntropy(0.3)) < 1e-9, "p' is the calibrated 0.3 for every row");
    assert.ok(Math.abs(summary.constantLogLoss - summary.bestLogLoss) < 0.01);
    const clean = new SynthCtr({ noise: 0, features: 2 ** 12 });
    const chunk = clean.chunk(0, 1000);
    const clean0 = new SynthCtrStats(0);
    clean0.add(chunk);
    const expected = chunk.probabilities.reduce((s, p) => s + binaryEntropy(p), 0) / 1000;
    assert.ok(Math.abs(clean0.summary().bestLogLoss - expected) < 1e-12);
    const given = new SynthCtr({ bias: -1.5 });
    assert.equal(given.bias, -1.5);
  });

  test("a logistic regression trained on the rows learns the teacher: far better than a constant, not better than the teacher", TIMEOUT, async () => {
    const generator = new SynthCtr({ seed: 2, features: 2 ** 8, perExample: 10, teacherDensity: 0.3 });
    const train = sparseToDense(synthCtrDataset(generator, 0, 8000));
    const held = generator.chunk(8000, 2000);
    const heldOut = sparseToDense(synthCtrDataset(generator, 8000, 2000));
    const model = await LogisticRegression.create({ inputs: 2 ** 8, seed: 1 });
    try {
      await model.fit(train, { epochs: 20, batchSize: 32, learningRate: 0.1, threads: 0 });
      const p = model.predict(heldOut.x, heldOut.size);
      let loss = 0;
      for (let i = 0; i < heldOut.size; i++) loss -= Math.log(held.labels[i] === 1 ? p[i]! : 1 - p[i]!);
      loss /= heldOut.size;
      const stats = new SynthCtrStats(generator.settings.noise);
      stats.add(held);
      const { bestLogLoss, teacherLogLoss, constantLogLoss } = stats.summary();
      assert.ok(loss < constantLogLoss - 0.05, `model ${loss} vs constant ${constantLogLoss}`);
      assert.ok(loss > Math.min(bestLogLoss, teacherLogLoss) - 0.01, `model ${loss} vs teacher ${teacherLogLoss}, best ${bestLogLoss}`);
      assert.ok(loss < bestLogLoss + 0.06, `model ${loss} near the best ${bestLogLoss}`);
    } finally {
      model.dispose();
    }
  });

  test("options out of range are DataErrors naming the option", () => {
    const cases: [object, RegExp][] = [
      [{ features: 0 }, /features is 0, expected an integer in \[1, 1073741824\]/],
      [{ features: 2 ** 31 }, /features is 2147483648/],
      [{ perExample: 1.5 }, /perExample is 1.5/],
      [{ noise: 0.5 }, /noise is 0.5, expected a number in \[0, 0.5\)/],
      [{ clickRate: 0.04 }, /clickRate is 0.04, expected a number in \(0.05, 0.95\)/],
      [{ zipfExponent: 0 }, /zipfExponent is 0/],
      [{ teacherDensity: 2 }, /teacherDensity is 2/],
      [{ values: "ones" }, /values is "ones", expected "binary" or "real"/],
    ];
    for (const [options, pattern] of cases) assert.throws(() => new SynthCtr(options as never), (e: unknown) => e instanceof DataError && pattern.test(e.message));
    assert.throws(() => new SynthCtr().chunk(-1, 3), /start is -1/);
  });
});

describe("SynthCtr files", () => {
  test("libsvm round trip: 1-based indices, labels and values read back by readLibsvm and readLibsvmSparse", TIMEOUT, async () => {
    const generator = new SynthCtr({ seed: 5, features: 2 ** 8, perExample: 12, values: "real" });
    const path = join(dir, "small.svm");
    const teacher = await writeSynthCtrLibsvm(path, generator, { rows: 400, chunkRows: 64 });
    const chunk = generator.chunk(0, 400);
    const dense = await readLibsvm(path, { features: 2 ** 8 });
    assert.equal(dense.size, 400);
    const expected = new Float32Array(400 * 256);
    for (let r = 0; r < 400; r++) {
      for (let e = chunk.rowStart[r]!; e < chunk.rowStart[r + 1]!; e++) expected[r * 256 + chunk.indices[e]!] = chunk.values[e]!;
    }
    assert.deepEqual(dense.x, expected);
    assert.deepEqual([...dense.y], [...chunk.labels]);
    const sparse = await readLibsvmSparse(path, { features: 2 ** 8 });
    const inMemory = synthCtrDataset(generator, 0, 400);
    assert.deepEqual([...sparse.indices], [...inMemory.indices]);
    assert.deepEqual([...sparse.values], [...inMemory.values]);
    assert.deepEqual([...sparse.y], [...inMemory.y]);
    assert.equal(teacher.rows, 400);
    assert.equal(teacher.indexBase, 1);
  });

  test("the same settings write the same bytes whatever the chunk size; a held-out file starts after; the sidecar says so", TIMEOUT, async () => {
    const generator = new SynthCtr({ seed: 11, features: 2 ** 20 });
    const [a, b, held] = [join(dir, "a.svm"), join(dir, "b.svm"), join(dir, "held.svm")];
    const first = await writeSynthCtrLibsvm(a, generator, { rows: 3000, chunkRows: 1000 });
    await writeSynthCtrLibsvm(b, new SynthCtr({ seed: 11, features: 2 ** 20 }), { rows: 3000, chunkRows: 77 });
    assert.equal(sha256(a), sha256(b));
    const sidecar = JSON.parse(readFileSync(teacherPathFor(a), "utf8"));
    assert.deepEqual(sidecar, first);
    assert.equal(sidecar.format, "downpour-synth-ctr");
    assert.equal(sidecar.bytes, readFileSync(a).length);
    for (const key of ["seed", "rows", "features", "perExample", "noise", "clickRate", "bestLogLoss"]) assert.ok(key in sidecar, key);
    const heldOut = await writeSynthCtrLibsvm(held, generator, { rows: 500, start: 3000 });
    assert.equal(heldOut.start, 3000);
    const lines = readFileSync(held, "utf8").split("\n");
    assert.equal(lines[0], new TextDecoder().decode(new SynthCtrLibsvmEncoder().encode(generator.chunk(3000, 1))).trimEnd());
    const sparse = await readLibsvmSparse(a, { features: 2 ** 20 });
    assert.equal(sparse.size, 3000);
    assert.equal(sparse.indices.length, 3000 * 40);
  });

  test("a known file: the bytes of a small case are fixed (every engine writes them)", async () => {
    const path = join(dir, "golden.svm");
    await writeSynthCtrLibsvm(path, new SynthCtr({ seed: 1, features: 2 ** 16, perExample: 8, values: "real" }), { rows: 200 });
    assert.equal(sha256(path), GOLDEN_SHA256);
  });

  test("writes are atomic: a missing folder fails leaving nothing; a file is replaced whole; no temp files stay", async () => {
    const generator = new SynthCtr({ features: 2 ** 10, perExample: 5 });
    await assert.rejects(writeSynthCtrLibsvm(join(dir, "missing", "x.svm"), generator, { rows: 10 }), /ENOENT/);
    const path = join(dir, "replace.svm");
    writeFileSync(path, "old contents\n");
    writeFileSync(teacherPathFor(path), "{}\n");
    await writeSynthCtrLibsvm(path, generator, { rows: 50 });
    assert.equal(readFileSync(path, "utf8").split("\n").length, 51);
    assert.equal(JSON.parse(readFileSync(teacherPathFor(path), "utf8")).rows, 50);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
  });
});

/** sha256 of the golden case above (seed 1, 2^16 features, 8 per row, real values, 200 rows). */
const GOLDEN_SHA256 = "3323ea2d5ec93ce964619991704f18dd5f400611199550cd986b2f3c47147816";
