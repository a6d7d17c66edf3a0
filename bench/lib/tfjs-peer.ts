// The peer for benchmarks, @tensorflow/tfjs-backend-wasm, set up in Node: its single-thread SIMD build as shipped,
// or its threaded SIMD build forced on through shims (the package turns threads off in Node), plus a matMul timer.
//
// Why shims are needed for threads in Node (4.22.0): the WASM_HAS_MULTITHREAD_SUPPORT flag returns false whenever
// IS_NODE (tensorflow/tfjs#3830); the Emscripten pthread workers are started from blob: URLs, which Node's
// worker_threads refuse (ERR_WORKER_PATH), and the worker evaluates the factory's source text, which refers to the
// bundle's module-level `require$$N` variables; finally the backend caps its pool at os.cpus().length / 2, i.e. one
// thread on a 2-CPU machine. installThreadShims works around all four; use it only in a process of its own.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";

export type Tf = typeof tf;

/** A ready peer backend. */
export interface Peer {
  tf: Tf;
  /** Package version, e.g. "4.22.0". */
  version: string;
  /** The .wasm binary it runs (the only one the file map lets it load). */
  binary: string;
  /** Threads of its XNNPACK pool, as the backend reports. */
  threads: number;
}

const SIMD = "tfjs-backend-wasm-simd.wasm";
const THREADED = "tfjs-backend-wasm-threaded-simd.wasm";
const PLAIN = "tfjs-backend-wasm.wasm";

/** The package's dist/ folder, with a trailing slash. */
export function peerDistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/";
}

let shimsInstalled = false;

/**
 * Lets the Emscripten pthread build run in Node: blob URLs become temporary files, and os.cpus() reports
 * `threads * 2` CPUs while the backend initialises (call restore() after tf.setBackend). Process-wide; not undone.
 */
function installThreadShims(threads: number): { restore: () => void } {
  if (shimsInstalled) throw new Error("thread shims are already installed in this process");
  shimsInstalled = true;
  const temp = mkdtempSync(join(os.tmpdir(), "downpour-tfjs-"));
  process.on("exit", () => rmSync(temp, { recursive: true, force: true }));
  const texts = new WeakMap<Blob, string>();
  let mainScript: string | undefined;
  const RealBlob = globalThis.Blob;
  globalThis.Blob = class extends RealBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts?.every((p) => typeof p === "string")) {
        const text = parts.join("");
        texts.set(this, text);
        if (text.startsWith("var WasmBackendModuleThreadedSimd")) mainScript = text;
      }
    }
  };
  const realCreate = URL.createObjectURL.bind(URL);
  let files = 0;
  URL.createObjectURL = (blob: Blob): string => {
    const text = texts.get(blob);
    if (text === undefined || mainScript === undefined) return realCreate(blob);
    // The factory's source text, with the module-level names the bundle gave it in scope.
    const mainPath = join(temp, "threaded-simd.js");
    const prelude = "var require$$0 = require('fs'), require$$1 = require('path'), require$$3 = require('perf_hooks'), " +
      "require$$4 = require('os'), commonjsGlobal = globalThis;\n";
    writeFileSync(mainPath, prelude + mainScript);
    // The pthread worker script; in it, the blob it is sent for the factory maps to that file.
    const workerPath = join(temp, `worker-${files++}.cjs`);
    writeFileSync(workerPath, `URL.createObjectURL = () => ${JSON.stringify(mainPath)};\n${text}`);
    return workerPath;
  };
  const realCpus = os.cpus;
  os.cpus = () => {
    const list = realCpus();
    return Array.from({ length: Math.max(list.length, threads * 2) }, (_, i) => list[i % list.length]!);
  };
  return {
    restore: () => {
      os.cpus = realCpus;
    },
  };
}

/**
 * Initialises the wasm backend with `threads` threads: 1 runs the non-threaded SIMD build (what Node gets by
 * default), more runs the threaded SIMD build through installThreadShims (once per process). Throws if the backend
 * does not come up with exactly that binary and thread count.
 */
export async function loadPeer(threads = 1): Promise<Peer> {
  const dir = peerDistDir();
  const binary = threads > 1 ? THREADED : SIMD;
  const missing = join(dir, "not-selected-by-the-benchmark.wasm");
  // Only the wanted binary resolves, so a different choice by the backend fails loudly instead of skewing results.
  tfwasm.setWasmPaths({ [PLAIN]: missing, [SIMD]: missing, [THREADED]: missing, [binary]: dir + binary });
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", threads > 1);
  tfwasm.setThreadsCount(threads);
  const shims = threads > 1 ? installThreadShims(threads) : undefined;
  let ok: boolean;
  try {
    ok = await tf.setBackend("wasm");
  } finally {
    shims?.restore();
  }
  if (!ok || tf.getBackend() !== "wasm") throw new Error(`the tfjs wasm backend did not initialise with ${binary}`);
  const actual = tfwasm.getThreadsCount();
  if (actual !== threads) throw new Error(`the tfjs wasm backend runs ${actual} threads, ${threads} requested`);
  return { tf, version: tfwasm.version_wasm, binary, threads: actual };
}

/** One product C = op(A) op(B) with op(A) m x k and op(B) k x n; A is stored k x m when transA, B n x k when transB. */
export interface GemmShape {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
}

/** Row and column counts of A and B as stored. */
export function storedShapes(s: GemmShape): { a: [number, number]; b: [number, number] } {
  return { a: s.transA ? [s.k, s.m] : [s.m, s.k], b: s.transB ? [s.n, s.k] : [s.k, s.n] };
}

/** Deterministic values in [-1, 1) (a 32-bit LCG), so both sides can multiply the same matrices. */
export function fillRandom(out: Float32Array, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

function inputs(peer: Peer, shape: GemmShape, data: { a?: Float32Array; b?: Float32Array }) {
  const shapes = storedShapes(shape);
  const a = peer.tf.tensor2d(data.a ?? fillRandom(new Float32Array(shapes.a[0] * shapes.a[1]), 1), shapes.a);
  const b = peer.tf.tensor2d(data.b ?? fillRandom(new Float32Array(shapes.b[0] * shapes.b[1]), 2), shapes.b);
  return { a, b };
}

/** The peer's C for `shape`, untimed; inputs default to fillRandom data with seeds 1 and 2. */
export function peerProduct(peer: Peer, shape: GemmShape, data: { a?: Float32Array; b?: Float32Array } = {}): Float32Array {
  const { a, b } = inputs(peer, shape, data);
  const c = peer.tf.matMul(a, b, shape.transA, shape.transB);
  const values = c.dataSync() as Float32Array;
  peer.tf.dispose([a, b, c]);
  return values;
}

/**
 * A timing body for tf.matMul(a, b, transA, transB) that reads the result back (dataSync), so that the work has
 * really completed when it returns; inputs default to fillRandom data with seeds 1 and 2. Call dispose() after.
 */
export function peerMatMulCall(
  peer: Peer,
  shape: GemmShape,
  data: { a?: Float32Array; b?: Float32Array } = {},
): { call: () => void; dispose: () => void } {
  const { tf } = peer;
  const { a, b } = inputs(peer, shape, data);
  return {
    // The callback must not return the array: tidy would walk all of its elements looking for tensors.
    call: () => tf.tidy(() => void tf.matMul(a, b, shape.transA, shape.transB).dataSync()),
    dispose: () => tf.dispose([a, b]),
  };
}
