// Misuse of a Network and of the model bytes: use after dispose (never on freed memory), wrong argument types,
// softmax over one unit, and networks too big for the memory limit, each refused with a clear error.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeModel, encodeModel } from "../../src/api/model-bytes.js";
import { MultiLayerPerceptron } from "../../src/api/models.js";
import { loadModel, saveModel } from "../../src/api/persist.js";
import { Kernels } from "../../src/core/kernels.js";
import { InvalidArgumentError, InvalidStateError, MemoryLimitError, ShapeError } from "../../src/errors.js";
import { Network, type Tensor } from "../../src/model/network.js";
import { DEFAULT_MAXIMUM_PAGES, PAGE_BYTES } from "../../src/runtime/core.js";
import { resolveSpec, SpecError, type NetworkSpec } from "../../src/model/spec.js";
import { randomArray, seededRandom } from "../helpers.js";

const SPEC: NetworkSpec = { inputs: 8, layers: [{ units: 5, activation: "tanh" }, { units: 2, activation: "softmax" }], seed: 1 };

type ErrorClass = new (...args: never[]) => Error;
const bad = <T>(value: unknown): T => value as T;

/** Asserts each call throws `type` with a message matching its pattern. */
function assertRefused(cases: Array<[string, () => unknown, ErrorClass, RegExp]>): void {
  for (const [label, call, type, message] of cases) {
    assert.throws(call, (e: unknown) => e instanceof type && message.test((e as Error).message), label);
  }
}

describe("a disposed network", () => {
  test("throws on every use, and never writes into the network that reused its memory", async () => {
    const kernels = await Kernels.load();
    const a = Network.create(kernels, SPEC);
    const ptr = a.params.block.ptr;
    const saved: Tensor[] = a.tensors().map((t) => ({ ...t, data: t.data.map((v) => v + 1) }));
    a.dispose();
    const b = Network.create(kernels, { ...SPEC, seed: 2 });
    assert.equal(b.params.block.ptr, ptr, "the test needs B to take A's freed memory");
    const bBefore = b.tensors();
    const x = randomArray(seededRandom(3), 2 * SPEC.inputs);
    const bOutputs = b.predict(x);
    const disposed = /the network was disposed/;
    assertRefused([
      ["predict", () => a.predict(x), InvalidStateError, /^predict: the network was disposed/],
      ["forwardRange", () => a.forwardRange(x, 0, 0), InvalidStateError, disposed],
      ["forwardRaw", () => a.forwardRaw(0, 1, [0, 0], 0), InvalidStateError, disposed],
      ["setTensors", () => a.setTensors(saved), InvalidStateError, disposed],
      ["tensors", () => a.tensors(), InvalidStateError, disposed],
      ["weights", () => a.weights(0), InvalidStateError, disposed],
      ["bias", () => a.bias(1), InvalidStateError, disposed],
      ["params", () => a.params, InvalidStateError, disposed],
      ["initialize", () => a.initialize(7), InvalidStateError, disposed],
      ["workspaceBytes", () => a.workspaceBytes(4), InvalidStateError, disposed],
    ]);
    assert.deepEqual(b.tensors(), bBefore, "a call on the disposed network changed the next network's weights");
    assert.deepEqual(b.predict(x), bOutputs);
  });

  test("dispose() is idempotent; disposed, spec, inputs and outputs stay readable", async () => {
    const kernels = await Kernels.load();
    const network = Network.create(kernels, SPEC);
    const used = kernels.arena.usedBytes;
    assert.equal(network.disposed, false);
    network.dispose();
    assert.equal(network.disposed, true);
    assert.ok(kernels.arena.usedBytes < used, "dispose() freed the parameters");
    const other = Network.create(kernels, SPEC); // takes the freed memory: a second release must not free it
    network.dispose();
    assert.equal(other.disposed, false);
    assert.equal(other.params.block.released, false, "the second dispose() released memory now used by another network");
    assert.deepEqual([network.inputs, network.outputs, network.spec.layers.length], [8, 2, 2]);
  });
});

describe("network arguments of the wrong type", () => {
  test("predict, forwardRange, weights, setTensors, initialize and create name the argument and what was expected", async () => {
    const kernels = await Kernels.load();
    const network = Network.create(kernels, SPEC);
    const x = new Float32Array(16);
    const tensors = network.tensors();
    assertRefused([
      ["x a string", () => network.predict(bad("abc")), InvalidArgumentError, /^predict: x must be a Float32Array of rows × 8 inputs \(or an array of numbers\), got the string "abc"$/],
      ["x a number", () => network.predict(bad(5)), InvalidArgumentError, /^predict: x must be a Float32Array .*got the number 5$/],
      ["x undefined", () => network.predict(bad(undefined)), InvalidArgumentError, /^predict: x must be .*got undefined$/],
      ["x an object", () => network.predict(bad({ length: 8 })), InvalidArgumentError, /^predict: x must be .*got an object$/],
      ["x a Float64Array", () => network.predict(bad(new Float64Array(8))), InvalidArgumentError, /^predict: x must be .*got a Float64Array of 8$/],
      ["x with a string element", () => network.predict(bad([0, "1", 2, 3, 4, 5, 6, 7])), InvalidArgumentError, /^predict: x must be .*got an array whose element 1 is the string "1"$/],
      ["x of 7 values", () => network.predict(new Float32Array(7)), ShapeError, /^predict: x has 7 values; expected a multiple of 8 \(rows of 8 inputs\)$/],
      ["x of 2 rows, rows 3", () => network.predict(x, 3), ShapeError, /^predict: x has 16 values; expected 3 rows × 8 = 24/],
      ["rows 1.5", () => network.predict(x, 1.5), InvalidArgumentError, /^predict: rows must be a non-negative integer .*got the number 1.5$/],
      ["rows -1", () => network.predict(x, -1), InvalidArgumentError, /^predict: rows must be a non-negative integer/],
      ["rows a string", () => network.predict(x, bad("2")), InvalidArgumentError, /^predict: rows must be .*got the string "2"$/],
      ["decoder input", () => network.forwardRange(bad("x"), 1, 1), InvalidArgumentError, /^forwardRange: x must be a Float32Array of rows × 5 values \(the inputs of layer 1\)/],
      ["layers out of range", () => network.forwardRange(x, 0, 5), InvalidArgumentError, /^forwardRange: layers 0..5 are not a range of this network's layers 0..1$/],
      ["weights of layer 7", () => network.weights(7), InvalidArgumentError, /^weights: layer 7 is not one of this network's layers 0..1$/],
      ["bias of layer '0'", () => network.bias(bad("0")), InvalidArgumentError, /^bias: layer the string "0" is not one of/],
      ["setTensors of a string", () => network.setTensors(bad("w0")), InvalidArgumentError, /^setTensors: tensors must be an array of \{ name, shape, data \}.*got the string "w0"$/],
      ["setTensors, data a string", () => network.setTensors(tensors.map((t) => (t.name === "b0" ? { ...t, data: bad("abc") } : t))), InvalidArgumentError, /^setTensors: parameter b0's data must be a Float32Array \(or an array of numbers\), got the string "abc"$/],
      ["initialize with a string seed", () => network.initialize(bad("1")), InvalidArgumentError, /^initialize: seed must be an integer, got the string "1"$/],
      ["create without Kernels", () => Network.create(bad({ arena: kernels.arena }), SPEC), InvalidArgumentError, /^Network.create: kernels must be a Kernels \(from Kernels.load\(\)\), got an object$/],
    ]);
  });

  test("predict accepts a plain array of numbers, copied, with the same outputs as a Float32Array", async () => {
    const kernels = await Kernels.load();
    const network = Network.create(kernels, SPEC);
    const x = randomArray(seededRandom(4), 3 * 8);
    assert.deepEqual(network.predict(Array.from(x)), network.predict(x));
    assert.deepEqual(network.setTensors(network.tensors().map((t) => ({ ...t, data: bad(Array.from(t.data)) }))), undefined);
  });
});

describe("softmax over one unit", () => {
  test("resolveSpec refuses it, naming the layer and suggesting sigmoid", () => {
    for (const [layers, index] of [
      [[{ units: 1, activation: "softmax" }], 0],
      [[{ units: 4 }, { units: 1, activation: "softmax" }], 1],
      [[{ units: 1, activation: "softmax" }, { units: 3, activation: "softmax" }], 0],
    ] as const) {
      assert.throws(
        () => resolveSpec({ inputs: 3, layers: layers as unknown as NetworkSpec["layers"] }),
        (e: unknown) =>
          e instanceof SpecError &&
          (e as Error).message === `layers[${index}].activation: softmax over 1 unit always outputs 1; use sigmoid for one output, or give the layer 2 or more units`,
      );
    }
    assert.equal(resolveSpec({ inputs: 3, layers: [{ units: 2, activation: "softmax" }] }).cost, "softmax-cross-entropy");
  });
});

describe("networks too big for the memory limit", () => {
  test("are refused before allocating, in plain words, with the parameters' size and the limit", async () => {
    const kernels = await Kernels.load();
    const used = kernels.arena.usedBytes;
    const spec = { inputs: 784, layers: [{ units: 100_000_000 }, { units: 10 }] };
    const count = 784 * 1e8 + 1e8 + 1e8 * 10 + 10;
    assert.throws(
      () => Network.create(kernels, spec),
      (e: unknown) =>
        e instanceof MemoryLimitError &&
        e.message ===
          "the network 784-100000000-10 has 79.5 billion parameters (318 GB as 32-bit floats), more than the memory limit of 1 GiB (raise it with Kernels.load({ maxBytes }) up to 4 GiB)" &&
        e.limitBytes === kernels.arena.maxBytes &&
        e.neededBytes >= 4 * count &&
        e.what === "the network 784-100000000-10 (79.5 billion parameters)",
    );
    assert.equal(kernels.arena.usedBytes, used, "nothing was allocated");
  });

  test("a network within the limit but not within the free memory names itself, without arena words", async () => {
    const limit = 8 * 1024 * 1024;
    const kernels = await Kernels.load({ maxBytes: limit });
    kernels.arena.alloc(1_500_000, "taken"); // 6 MB
    assert.throws(
      () => Network.create(kernels, { inputs: 1000, layers: [{ units: 1000 }, { units: 10 }] }),
      (e: unknown) =>
        e instanceof MemoryLimitError &&
        /^not enough memory: needs 4.0\d MB for the network 1000-1000-10 \(1.01 million parameters\), more than is free: 6 MB of the 8 MiB memory limit are in use \(raise it with Kernels.load\(\{ maxBytes \}\) up to 4 GiB\)$/.test(e.message) &&
        !/arena|layout|slab/.test(e.message) &&
        e.limitBytes === limit,
    );
  });

  test("maxBytes above 4 GiB is capped to what a WebAssembly memory holds, and the message says so", async () => {
    const kernels = await Kernels.load({ maxBytes: 16 * 1024 ** 3 });
    assert.equal(kernels.arena.maxBytes, 4 * 1024 ** 3);
    assert.throws(
      () => Network.create(kernels, { inputs: 100_000, layers: [{ units: 100_000 }, { units: 2 }] }),
      (e: unknown) => e instanceof MemoryLimitError && /more than the memory limit of 4 GiB \(4 GiB is the most a WebAssembly memory can hold\)$/.test((e as Error).message),
    );
  });

  test("raising maxBytes alone lets the memory grow past the default 1 GiB maximum", async () => {
    const kernels = await Kernels.load({ maxBytes: 2 * 1024 ** 3 });
    const memory = kernels.core.memory;
    memory.grow(DEFAULT_MAXIMUM_PAGES + 1 - memory.buffer.byteLength / PAGE_BYTES); // untouched pages: cheap
    assert.ok(memory.buffer.byteLength > 1024 ** 3);
  });
});

describe("model bytes and files with arguments of the wrong type", () => {
  test("encodeModel, decodeModel, saveModel and loadModel name the argument and what was expected", async () => {
    const kernels = await Kernels.load();
    const model = await MultiLayerPerceptron.create({ inputs: 3, hidden: [4], outputs: 2, seed: 1 }, { kernels });
    const bytes = encodeModel(model);
    assert.throws(() => encodeModel(bad({})), (e: unknown) => e instanceof InvalidArgumentError && /^encodeModel: model must be a Model .*got an object$/.test((e as Error).message));
    assert.throws(() => encodeModel(bad(bytes)), (e: unknown) => e instanceof InvalidArgumentError && /got a Uint8Array of \d+$/.test((e as Error).message));
    const rejects = async (promise: Promise<unknown>, type: ErrorClass, message: RegExp) =>
      assert.rejects(promise, (e: unknown) => e instanceof type && message.test((e as Error).message));
    await rejects(decodeModel(bad("DPOURNN")), InvalidArgumentError, /^decodeModel: bytes must be a Uint8Array \(the contents of a model file\), got the string "DPOURNN"$/);
    await rejects(decodeModel(bad([1, 2, 3])), InvalidArgumentError, /^decodeModel: bytes must be a Uint8Array .*got an array of 3$/);
    await rejects(decodeModel(bytes, bad(5)), InvalidArgumentError, /^decodeModel: options must be an object like \{ kernels \}, got the number 5$/);
    await rejects(decodeModel(bytes, { kernels: bad({}) }), InvalidArgumentError, /^decodeModel: options.kernels must be a Kernels/);
    await rejects(saveModel(model, bad(5)), InvalidArgumentError, /^saveModel: path must be a non-empty string \(a file path\), got the number 5$/);
    await rejects(saveModel(model, ""), InvalidArgumentError, /^saveModel: path must be a non-empty string/);
    await rejects(saveModel(bad("m.dpnn"), "m.dpnn"), InvalidArgumentError, /^saveModel: model must be a Model/);
    await rejects(loadModel(bad(undefined)), InvalidArgumentError, /^loadModel: path must be a non-empty string .*got undefined$/);
    const copy = await decodeModel(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, { kernels });
    assert.deepEqual(copy.network.tensors(), model.network.tensors(), "an ArrayBuffer decodes as its bytes do");
    model.dispose();
    assert.throws(() => encodeModel(model), (e: unknown) => e instanceof InvalidStateError && /^encodeModel: the model was disposed; create or load a new one$/.test((e as Error).message));
    copy.dispose();
  });

  test("a model file whose network is too big for the memory limit gives a MemoryLimitError naming the file", async () => {
    const big = await Kernels.load({ maxBytes: 64 * 1024 * 1024 });
    const small = await Kernels.load({ maxBytes: 1024 * 1024 });
    const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: [800], outputs: 10, seed: 1 }, { kernels: big });
    await assert.rejects(
      decodeModel(encodeModel(model), { kernels: small }),
      (e: unknown) => e instanceof MemoryLimitError && /^model file <bytes>: the network 784-800-10 has 636010 parameters \(2.54 MB as 32-bit floats\), more than the memory limit of 1 MiB/.test((e as Error).message),
    );
    model.dispose();
  });
});
