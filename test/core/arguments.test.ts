// Public kernel arguments of the wrong type are refused with a clear error naming the argument and what was
// expected, never a raw engine TypeError ("x.subarray is not a function", "Cannot use 'in' operator").
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Kernels } from "../../src/core/kernels.js";
import { matrix, type Matrix } from "../../src/core/matrix.js";
import { ParallelGemm } from "../../src/core/parallel-gemm.js";
import { DownpourError, InvalidArgumentError, ShapeError } from "../../src/errors.js";
import { Arena } from "../../src/runtime/arena.js";
import { WorkerPool } from "../../src/runtime/pool.js";

type ErrorClass = new (...args: never[]) => Error;

const bad = <T>(value: unknown): T => value as T;

describe("kernel arguments of the wrong type", () => {
  test("each bad call throws a DownpourError of the expected class whose message names the argument", async () => {
    const kernels = await Kernels.load();
    const other = await Kernels.load();
    const slab = kernels.arena.alloc(16, "s");
    const m = matrix(slab, 4, 4);
    const cases: Array<[string, () => unknown, ErrorClass, RegExp]> = [
      ["gemm, C a Float32Array", () => kernels.gemm(bad(new Float32Array(16)), m, m), InvalidArgumentError, /^gemm: c must be a Matrix .*got a Float32Array of 16/],
      ["gemm, A a number", () => kernels.gemm(m, bad(3), m), InvalidArgumentError, /^gemm: a must be a Matrix .*got the number 3/],
      ["gemm, B over a typed array", () => kernels.gemm(m, m, bad({ slab: new Float32Array(16), rows: 4, cols: 4, ld: 4, offset: 0 })), InvalidArgumentError, /^gemm: b's slab must be a Slab .*got a Float32Array/],
      ["gemm, options a string", () => kernels.gemm(m, m, m, bad("fast")), InvalidArgumentError, /^gemm: options must be an object/],
      ["gemm, options null", () => kernels.gemm(m, m, m, bad(null)), InvalidArgumentError, /^gemm: options must be an object.*got null/],
      ["gemm, bias an array", () => kernels.gemm(m, m, m, { bias: bad([1, 2, 3, 4]) }), InvalidArgumentError, /^gemm: bias must be a Slab .*got an array of 4/],
      ["gemm, alpha a string", () => kernels.gemm(m, m, m, { alpha: bad("2") }), DownpourError, /^gemm: alpha must be a finite number, got the string "2"/],
      ["gemm, a Matrix that overruns its slab", () => kernels.gemm(m, m, bad({ slab, rows: 4, cols: 8, ld: 8, offset: 0 })), ShapeError, /^gemm: b is not a valid Matrix: 4x8 at offset 0 needs 32 elements, slab s has 16/],
      ["sigmoid, x undefined", () => kernels.sigmoid(m, bad(undefined)), InvalidArgumentError, /^sigmoid: x \(input\) must be a Matrix .*got undefined/],
      ["activation, unknown name", () => kernels.activation(bad("gelu"), m, m), InvalidArgumentError, /^activation: unknown activation "gelu"; expected one of identity, sigmoid, tanh, relu/],
      ["softmax, y a string", () => kernels.softmax(bad("y"), m), InvalidArgumentError, /^softmax: y \(output\) must be a Matrix .*got the string "y"/],
      ["reluBackward, dx an object", () => kernels.reluBackward(bad({}), m, m), InvalidArgumentError, /^reluBackward: dx \(input gradient\) must be a Matrix .*got an object/],
      ["squaredError, t an array", () => kernels.squaredError(undefined, m, bad([1, 2])), InvalidArgumentError, /^squaredError: t \(targets\) must be a Matrix .*got an array of 2/],
      ["softmaxCrossEntropy, z a Slab", () => kernels.softmaxCrossEntropy(undefined, m, bad(slab), m), InvalidArgumentError, /^softmaxCrossEntropy: z \(logits\) must be a Matrix .*got a Slab/],
      ["colSum, out an array", () => kernels.colSum(bad([0, 0, 0, 0]), m), InvalidArgumentError, /^colSum: out must be a Slab .*got an array of 4/],
      ["sgdUpdate, w a Float32Array", () => kernels.sgdUpdate(bad(new Float32Array(16)), undefined, slab), InvalidArgumentError, /^sgdUpdate: w must be a Slab .*got a Float32Array of 16/],
      ["sgdUpdate, options a number", () => kernels.sgdUpdate(slab, undefined, slab, bad(0.1)), InvalidArgumentError, /^sgdUpdate: options must be an object/],
      ["adamUpdate without options", () => kernels.adamUpdate(slab, slab, slab, slab, bad(undefined)), InvalidArgumentError, /^adamUpdate: options must be an object, got undefined/],
      ["adagradUpdate, h null", () => kernels.adagradUpdate(slab, bad(null), slab), InvalidArgumentError, /^adagradUpdate: h must be a Slab .*got null/],
      ["fill, y a Matrix", () => kernels.fill(bad(m), 0), InvalidArgumentError, /^fill: y must be a Slab .*got an object/],
      ["copy, x an object", () => kernels.copy(slab, bad({ length: 16 })), InvalidArgumentError, /^copy: x must be a Slab .*got an object/],
      ["axpy, alpha undefined", () => kernels.axpy(slab, slab, bad(undefined)), DownpourError, /^axpy: alpha must be a finite number, got undefined/],
      ["scale, y a number", () => kernels.scale(bad(4), 2), InvalidArgumentError, /^scale: y must be a Slab .*got the number 4/],
      ["matrix over a Float32Array", () => matrix(bad(new Float32Array(4)), 2, 2), InvalidArgumentError, /^matrix: slab must be a Slab .*got a Float32Array of 4/],
      ["matrix with string columns", () => matrix(slab, 2, bad("2")), ShapeError, /cols must be a non-negative integer, got the string "2"/],
      ["matrix with options null", () => matrix(slab, 2, 2, bad(null)), InvalidArgumentError, /^matrix: options must be an object/],
      ["release of a non-slab", () => kernels.arena.release(bad(m)), InvalidArgumentError, /^release: expected a Slab, got an object/],
      ["Slab.set of a string", () => slab.set(bad("abc")), InvalidArgumentError, /^slab s: set\(\) takes a typed array or an array of numbers, got the string "abc"/],
      ["Slab.set at a fractional offset", () => slab.set([1], 0.5), ShapeError, /^slab s: cannot write 1 values at 0.5/],
      ["Slab.at a fraction", () => slab.at(1.5), InvalidArgumentError, /^slab s: at\(\) takes an element index from 0 to 16, got the number 1.5/],
      ["new Arena over a non-core", () => new Arena(bad({ heapBase: 0 })), InvalidArgumentError, /^new Arena: core must be a Core .*got an object/],
      ["new Arena with options null", () => new Arena(kernels.core, bad(null)), InvalidArgumentError, /^new Arena: options must be an object/],
      ["new Kernels with another core's arena", () => new Kernels(kernels.core, other.arena), InvalidArgumentError, /^new Kernels: arena must be an Arena over the same core .*got an arena over another core/],
      ["new Kernels over a string", () => new Kernels(bad("core"), kernels.arena), InvalidArgumentError, /^new Kernels: core must be a Core/],
      ["ParallelGemm without a pool", () => new ParallelGemm(bad(undefined), kernels.arena), InvalidArgumentError, /^ParallelGemm: pool must be a WorkerPool .*got undefined/],
    ];
    for (const [label, call, type, message] of cases) {
      assert.throws(call, (e: unknown) => e instanceof type && message.test((e as Error).message), label);
    }
  });

  test("Kernels.load and WorkerPool.start refuse arguments of the wrong type", async () => {
    await assert.rejects(Kernels.load(bad(null)), (e: unknown) => e instanceof InvalidArgumentError && /^Kernels.load: options must be an object or undefined, got null$/.test((e as Error).message));
    await assert.rejects(WorkerPool.start(bad(null)), (e: unknown) => e instanceof InvalidArgumentError && /^WorkerPool.start: core must be a Core \(kernels.core\), got null$/.test((e as Error).message));
    const kernels = await Kernels.load();
    await assert.rejects(WorkerPool.start(kernels.core, bad(4)), (e: unknown) => e instanceof InvalidArgumentError && /^WorkerPool.start: options must be an object like \{ threads \}, got the number 4$/.test((e as Error).message));
  });

  test("Kernels.load refuses a memory limit that is not a number of bytes > 0", async () => {
    for (const maxBytes of [-1, 0, Number.NaN, "1G"]) {
      await assert.rejects(Kernels.load({ maxBytes: maxBytes as number }), (e: unknown) => e instanceof InvalidArgumentError && /maxBytes must be a number of bytes > 0/.test((e as Error).message), String(maxBytes));
    }
  });

  test("a Matrix with the right fields but made by hand is accepted", async () => {
    const kernels = await Kernels.load();
    const slab = kernels.arena.alloc(4).set([1, -2, 3, -4]);
    const m: Matrix = { slab, rows: 2, cols: 2, ld: 2, offset: 0 };
    kernels.relu(m, m);
    assert.deepEqual(Array.from(slab.toArray()), [1, 0, 3, 0]);
  });
});
