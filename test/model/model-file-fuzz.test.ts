// Seeded fuzzing of the model file decoders (issue 10): the container (src/model/file decodeModel: preamble, JSON
// header, tensor layout, CRC-32) and the whole model (api decodeModel: kind, spec, training meta, parameters and
// optimizer state). Each gets at least 10,000 random, truncated, bit-flipped, oversized and type-confused files
// (headers rewritten with a valid CRC so that the checks behind it are reached); each must decode to contents /
// a model that re-encodes to a file decoding the same, or be refused with a ModelFileError (MemoryLimitError for a
// spec too large for the arena), never a TypeError/RangeError, a hang, or an allocation of a claimed 10^12-element
// tensor.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { decodeModel, encodeModel } from "../../src/api/model-bytes.js";
import { LayeredANN, type Model, MultiLayerPerceptron } from "../../src/api/models.js";
import { syntheticClassification } from "../../src/data/synthetic.js";
import { MemoryLimitError } from "../../src/errors.js";
import { decodeModel as decodeContents, encodeModel as encodeContents, ModelFileError } from "../../src/model/file/index.js";
import { headerOf, sampleBytes, withHeaderText, withValidChecksum } from "./fixtures.js";
import { Fuzz } from "../support/fuzz.js";

/** Cases per decoder. */
const CASES = 10_000;
const TIMEOUT = { timeout: 60_000 };


/** Declared sizes that must never be allocated. */
const HUGE = [2 ** 31, 2 ** 32, 2 ** 32 - 1, 1e12, 2 ** 53, 2 ** 53 + 2, 1e300];

/** A value of every wrong type (and out-of-range numbers) to put in place of a header field. */
function wrongValue(fuzz: Fuzz): unknown {
  return fuzz.pick<unknown>(["", "x", "x".repeat(3000), -1, -0.5, 0.5, 0, ...HUGE, -1e12, {}, { a: { b: [1, { c: null }] } }, [], [1, 2], [[[[]]]], [-1], [1e12], [2 ** 31, 2 ** 31], null, true, false]);
}

/** A header path in `header` (an object or array at any depth), as keys. */
function randomPath(fuzz: Fuzz, header: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  let at = header;
  while (typeof at === "object" && at !== null && fuzz.chance(0.7)) {
    const keys: (string | number)[] = Array.isArray(at) ? at.map((_, i) => i) : Object.keys(at);
    if (keys.length === 0) break;
    const key = fuzz.pick(keys);
    path.push(key);
    at = (at as Record<string | number, unknown>)[key];
  }
  return path;
}

/**
 * The header with the value at a random path replaced by a wrong value, deleted, duplicated or grown; paths
 * `spared` says true of are left alone.
 */
function confusedHeader(fuzz: Fuzz, header: Record<string, unknown>, spared: (path: (string | number)[]) => boolean = () => false): unknown {
  const path = randomPath(fuzz, header);
  if (spared(path)) return header;
  if (path.length === 0) return fuzz.chance(0.5) ? wrongValue(fuzz) : header;
  const parent = path.slice(0, -1).reduce<Record<string | number, unknown>>((at, key) => at[key] as Record<string | number, unknown>, header);
  const key = path[path.length - 1]!;
  const kind = fuzz.int(4);
  if (kind === 0 && !Array.isArray(parent)) delete parent[key];
  else if (kind === 1 && Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
  else if (kind === 2 && Array.isArray(parent[key])) (parent[key] as unknown[]).push(wrongValue(fuzz));
  else parent[key] = wrongValue(fuzz);
  return header;
}

/** Shapes of 2^32 to 2^60 elements (and, unless `nonEmpty`, one of 0 elements with a 10^12 dimension, which is valid). */
const HUGE_SHAPES = [[1e12], [1e6, 1e6], [2 ** 31, 2], [2 ** 32], [2 ** 40, 2 ** 10], [2 ** 53], [2 ** 20, 2 ** 20, 2 ** 20]];

/** A tensor claiming a huge shape (10^12 elements and more), added to or replacing one of the header's. */
function hugeTensorHeader(fuzz: Fuzz, header: Record<string, unknown>, nonEmpty = false): Record<string, unknown> {
  const tensors = header.tensors as Record<string, unknown>[];
  const shape = fuzz.pick([...HUGE_SHAPES, ...(nonEmpty ? [] : [[1e12, 0]])]);
  if (fuzz.chance(0.5) && tensors.length > 0) tensors[fuzz.int(tensors.length)]!.shape = shape;
  else tensors.splice(fuzz.int(tensors.length + 1), 0, { name: "huge", shape, group: fuzz.pick(["param", "optimizer"]) });
  return header;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function setU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = bytes.slice();
  if (offset + 4 <= out.byteLength) new DataView(out.buffer).setUint32(offset, value >>> 0, true);
  return out;
}

/** One spoiled (or, for kind 0, intact) version of the model file `valid`; `spared` as confusedHeader has it. */
function spoiled(fuzz: Fuzz, valid: Uint8Array, kind: number, spared?: (path: (string | number)[]) => boolean): Uint8Array {
  const n = valid.byteLength;
  switch (kind) {
    case 0:
      return valid;
    case 1:
      return fuzz.bytes(fuzz.pick([0, 1, 8, 15, 16, 17, 64, fuzz.int(400)]));
    case 2:
      return valid.subarray(0, fuzz.pick([0, 7, 8, 12, 15, 16, 17, n >> 1, n - 5, n - 4, n - 1, fuzz.int(n)]));
    case 3: {
      const out = valid.slice();
      for (let i = 1 + fuzz.int(4); i > 0; i--) out[fuzz.int(n)]! ^= 1 << fuzz.int(8);
      return fuzz.chance(0.5) ? withValidChecksum(out) : out;
    }
    case 4:
      return concat(fuzz.chance(0.5) ? valid : valid.subarray(0, fuzz.int(n)), fuzz.bytes(1 + fuzz.int(64)));
    case 5:
      // the version or the header length replaced: huge, zero, one off
      return setU32(valid, fuzz.pick([8, 12]), fuzz.pick([0, 1, 2, 0x7fffffff, 0xffffffff, new DataView(valid.buffer, valid.byteOffset).getUint32(12, true) + fuzz.pick([-1, 1, 4])]));
    case 6:
      return withHeaderText(valid, JSON.stringify(confusedHeader(fuzz, headerOf(valid), spared)) ?? "null");
    case 7:
      return withHeaderText(valid, JSON.stringify(hugeTensorHeader(fuzz, headerOf(valid))));
    case 8: {
      const text = JSON.stringify(headerOf(valid));
      const cut = fuzz.pick([text.slice(0, fuzz.int(text.length)), "[".repeat(1 + fuzz.int(50_000)), "\u00ff\u00fe", "{}", "null", `${text}x`, `${text.slice(0, -1)},"tensors":[]}`]);
      const out = withHeaderText(valid, cut);
      return fuzz.chance(0.2) ? concat(out.subarray(0, 16), Uint8Array.of(0xc3, 0x28, 0xff), out.subarray(19)) : out;
    }
    default:
      // a tensor's data or the padding spoiled, with a valid CRC
      return withValidChecksum(setU32(valid, fuzz.int(Math.max(1, n - 4)), fuzz.int(2 ** 32)));
  }
}

/** Runs `decode`; an error of one of `expected` is the refusal, any other fails naming the case. */
async function outcome<T>(what: () => string, decode: () => T | Promise<T>, expected: readonly (abstract new (...args: never[]) => Error)[]): Promise<{ value: T } | { error: Error }> {
  try {
    return { value: await decode() };
  } catch (error) {
    if (expected.some((Class) => error instanceof Class)) return { error: error as Error };
    const shown = error instanceof Error ? `${error.constructor.name}: ${error.message}\n${error.stack}` : String(error);
    assert.fail(`${what()}: expected a value or ${expected.map((c) => c.name).join("/")}, got ${shown}`);
  }
}

const hex = (bytes: Uint8Array) => `${Buffer.from(bytes.subarray(0, 48)).toString("hex")}... (${bytes.byteLength} bytes)`;

/** Runs `batch` and asserts heap and array-buffer memory grew by less than `limit` bytes. */
async function assertBoundedMemory(what: string, batch: () => Promise<void>, limit = 64 * 2 ** 20): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  await batch();
  gc?.();
  const after = process.memoryUsage();
  const grew = Math.max(after.arrayBuffers - before.arrayBuffers, after.heapUsed - before.heapUsed);
  assert.ok(grew < limit, `${what}: memory grew by ${grew} bytes (limit ${limit}): an oversized claim was allocated`);
}

describe("model file container fuzz (src/model/file decodeModel)", () => {
  const bases = [sampleBytes(), encodeContents({ kind: "K", spec: null, meta: {}, tensors: [] })];

  test(`${CASES} spoiled files: contents that re-encode to the same, or a ModelFileError`, TIMEOUT, async () => {
    const fuzz = new Fuzz(5001);
    let decoded = 0;
    for (let i = 0; i < CASES; i++) {
      const kind = fuzz.int(10);
      const bytes = spoiled(fuzz, fuzz.pick(bases), kind);
      const what = () => `container case ${i} (kind ${kind}): ${hex(bytes)}`;
      const result = await outcome(what, () => decodeContents(bytes, "fuzz.dpnn"), [ModelFileError]);
      if ("error" in result) {
        assert.equal((result.error as ModelFileError).file, "fuzz.dpnn", what());
        continue;
      }
      decoded++;
      const again = decodeContents(encodeContents(result.value), "again.dpnn");
      assert.deepEqual(again, result.value, what());
    }
    assert.ok(decoded >= CASES / 10, `${decoded} files decoded`);
  });

  test("files claiming 10^12-element tensors are refused before allocating", TIMEOUT, async () => {
    const fuzz = new Fuzz(5002);
    await assertBoundedMemory("huge tensors", async () => {
      for (let i = 0; i < 2000; i++) {
        const bytes = withHeaderText(bases[0]!, JSON.stringify(hugeTensorHeader(fuzz, headerOf(bases[0]!), true)));
        assert.throws(() => decodeContents(bytes, "huge.dpnn"), ModelFileError, `huge case ${i}: ${JSON.stringify(headerOf(bytes).tensors)}`);
      }
    });
  });
});

describe("model decoder fuzz (api decodeModel)", () => {
  const data = syntheticClassification({ size: 40, features: 3, classes: 2, seed: 3 });
  const models: Model[] = [];
  after(() => {
    for (const model of models) model.dispose();
  });

  /** Valid files of small models: fresh and after a short fit (with optimizer state). */
  async function baseFiles(): Promise<Uint8Array[]> {
    const fresh = await MultiLayerPerceptron.create({ inputs: 3, hidden: [4], outputs: 2, seed: 1 });
    const trained = await LayeredANN.create({ inputs: 3, layers: [{ units: 3, activation: "tanh" }, { units: 2, activation: "softmax" }], seed: 2 });
    await trained.fit(data, { optimizer: "adam", epochs: 1, batchSize: 10, threads: 1 });
    models.push(fresh, trained);
    return [encodeModel(fresh), encodeModel(trained)];
  }

  /** A decoded model must re-encode to a file that decodes to the same predictions. */
  async function checkModel(model: Model, what: () => string): Promise<void> {
    try {
      const bytes = (await outcome(what, () => encodeModel(model), [])) as { value: Uint8Array };
      const again = await decodeModel(bytes.value);
      assert.deepEqual(again.predict(data.x), model.predict(data.x), what());
      again.dispose();
    } finally {
      model.dispose();
    }
  }

  test(`${CASES} spoiled model files: a model that re-encodes, or a ModelFileError / MemoryLimitError`, TIMEOUT, async () => {
    const fuzz = new Fuzz(6001);
    const bases = await baseFiles();
    let decoded = 0;
    for (let i = 0; i < CASES; i++) {
      const kind = fuzz.int(10);
      const bytes = spoiled(fuzz, fuzz.pick(bases), kind);
      const what = () => `model case ${i} (kind ${kind}): ${kind >= 6 && kind <= 8 ? new TextDecoder().decode(bytes.subarray(16, 400)) : hex(bytes)}`;
      const result = await outcome(what, () => decodeModel(bytes), [ModelFileError, MemoryLimitError]);
      if ("value" in result) {
        decoded++;
        await checkModel(result.value, what);
      }
    }
    assert.ok(decoded >= CASES / 10, `${decoded} models decoded`);
  });

  test("specs claiming 10^12 parameters are refused before allocating", TIMEOUT, async () => {
    const fuzz = new Fuzz(6002);
    const [base] = await baseFiles();
    await assertBoundedMemory("huge specs", async () => {
      for (let i = 0; i < 500; i++) {
        const header = headerOf(base!) as { spec: { inputs: number; layers: { units: number }[] } };
        // 10^10 to 10^24 parameters: over the arena's limit, refused before anything is allocated
        const units = fuzz.pick([1e5, 2 ** 20, 2 ** 31, 1e12]);
        header.spec.inputs = fuzz.chance(0.5) ? units : 1e5;
        for (const layer of header.spec.layers) layer.units = fuzz.chance(0.5) ? units : 1e5;
        const bytes = withHeaderText(base!, JSON.stringify(header));
        const result = await outcome(() => `huge spec case ${i}: ${JSON.stringify(header.spec)}`, () => decodeModel(bytes), [ModelFileError, MemoryLimitError]);
        assert.ok("error" in result, `huge spec case ${i}: decoded`);
      }
    });
  });
});
