// GEMM benchmark: GFLOP/s of downpour's f32 GEMM next to @tensorflow/tfjs-backend-wasm's matMul, same shapes and
// layouts, one thread each (plus one 2-thread row); prints the engine, CPU and core build, a table and the target
// checks; writes bench/.scratch/gemm.json, or bench/results/gemm.json with --record.
// Run: npm run bench:gemm [-- --record | --quick | --node-20]  (see bench/run.mjs).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { engineHasRelaxedSimd, Kernels, matrix, ParallelGemm, WorkerPool, type Matrix } from "../src/index.js";
import type { Slab } from "../src/runtime/arena.js";
import type { ThreadedReply, ThreadedRequest } from "./lib/peer-threaded.js";
import {
  benchFlags, formatTable, gemmGflops, machineInfo, measure, measureInterleaved, resultsPath, round, runEnvironment, watchCpuShare, writeJsonAtomic,
  type Measurement, type MeasureOptions, type RunEnvironment,
} from "./lib/report.js";
import { fillRandom, loadPeer, peerMatMulCall, peerProduct, storedShapes, type GemmShape, type Peer } from "./lib/tfjs-peer.js";

interface Case extends GemmShape {
  name: string;
}

interface Row extends RunEnvironment {
  case: string;
  unit: "GFLOP/s";
  ours_gflops: number;
  peer_gflops: number;
  ratio: number;
}

const flags = benchFlags();
/** --quick: a few short repetitions, to check that everything runs (numbers not comparable). */
const TIMING: MeasureOptions = flags.quick
  ? { repSeconds: 0.05, reps: 2, slowReps: 1, warmupSeconds: 0.02 }
  : { repSeconds: 0.3, reps: 7, slowReps: 3, warmupSeconds: 0.2 };
/** Largest relative difference (max |ours - peer| / max |peer|) accepted before the numbers are thrown out. */
const TOLERANCE = 1e-4;
const RESULTS = resultsPath("gemm", flags);

function square(kind: "NN" | "NT" | "TN", n: number): Case {
  return { name: `${kind} ${n}^3`, m: n, n, k: n, transA: kind === "TN", transB: kind === "NT" };
}

const SINGLE: Case[] = [
  square("NN", 512), square("NT", 512), square("TN", 512),
  square("NN", 1024), square("NT", 1024), square("TN", 1024),
  // A 784-128-10 MLP at batch 64: X 64x784, W 784x128, dY 64x128.
  { name: "mlp fwd NN 64x784 * 784x128", m: 64, n: 128, k: 784, transA: false, transB: false }, // Y = X W
  { name: "mlp dW TN 784x64 * 64x128", m: 784, n: 128, k: 64, transA: true, transB: false }, // dW = X^T dY
  { name: "mlp dX NT 64x128 * 128x784", m: 64, n: 784, k: 128, transA: false, transB: true }, // dX = dY W^T
];
const THREADS = 2;
const PARALLEL: Case = square("NN", 1024);

/** The product's operands in `kernels`' arena, filled with the same values the peer gets (seeds 1 and 2). */
function operands(kernels: Kernels, s: GemmShape) {
  const shapes = storedShapes(s);
  const slabs: Slab[] = [];
  const view = (rows: number, cols: number, seed?: number): Matrix => {
    const slab = kernels.arena.alloc(rows * cols);
    slabs.push(slab);
    if (seed !== undefined) fillRandom(slab.f32(), seed);
    return matrix(slab, rows, cols);
  };
  const a = view(...shapes.a, 1);
  const b = view(...shapes.b, 2);
  const c = view(s.m, s.n);
  const release = (): void => {
    for (const slab of slabs) kernels.arena.release(slab);
  };
  return { a, b, c, release };
}

function checkAgainstPeer(name: string, ours: Float32Array, peer: Float32Array): void {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < peer.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i]! - peer[i]!));
    scale = Math.max(scale, Math.abs(peer[i]!));
  }
  if (ours.length !== peer.length || !(diff <= TOLERANCE * scale)) {
    throw new Error(`${name}: our result differs from the peer's (max |diff| ${diff} against max |C| ${scale}); not timing a wrong product`);
  }
}

let environment: RunEnvironment;

function row(name: string, ours: number, peer: number): Row {
  return { case: name, unit: "GFLOP/s", ours_gflops: round(ours, 1), peer_gflops: round(peer, 1), ratio: round(ours / peer, 2), ...environment };
}

/** Our single-thread rate and the peer's for one case, after checking both compute the same product. */
function runSingle(kernels: Kernels, peer: Peer, s: Case): Row {
  const { a, b, c, release } = operands(kernels, s);
  try {
    const gemm = () => kernels.gemm(c, a, b, { transA: s.transA, transB: s.transB });
    gemm();
    checkAgainstPeer(s.name, c.slab.toArray(), peerProduct(peer, s));
    const theirs = peerMatMulCall(peer, s);
    try {
      const [ours, peers] = measureInterleaved([gemm, theirs.call], TIMING) as [Measurement, Measurement];
      return row(s.name, gemmGflops(s.m, s.n, s.k, ours.seconds), gemmGflops(s.m, s.n, s.k, peers.seconds));
    } finally {
      theirs.dispose();
    }
  } finally {
    release();
  }
}

/** Our rate over a pool of THREADS workers (shared-memory core), checked against the peer's product. */
async function runParallel(peer: Peer, s: Case): Promise<number> {
  const kernels = await Kernels.load({ shared: true });
  const pool = await WorkerPool.start(kernels.core, { threads: THREADS });
  try {
    const parallel = new ParallelGemm(pool, kernels.arena);
    const { a, b, c } = operands(kernels, s);
    const run = () => parallel.runSync(c, a, b, { transA: s.transA, transB: s.transB });
    run();
    checkAgainstPeer(`${s.name} ${THREADS} threads`, c.slab.toArray(), peerProduct(peer, s));
    return gemmGflops(s.m, s.n, s.k, measure(run, TIMING).seconds);
  } finally {
    await pool.close();
  }
}

/** The peer's threaded rate, measured in a child process; undefined (with the reason) if it cannot run. */
function peerThreaded(s: GemmShape): { reply?: ThreadedReply; reason?: string } {
  const request: ThreadedRequest = { threads: THREADS, shapes: [s], measure: TIMING };
  const child = spawnSync(process.execPath, [fileURLToPath(new URL("./lib/peer-threaded.js", import.meta.url)), JSON.stringify(request)], {
    encoding: "utf8",
    timeout: 90_000,
  });
  if (child.error) return { reason: child.error.message };
  if (child.status !== 0) return { reason: (child.stderr.trim().split("\n").pop() ?? "") || `exit status ${child.status}` };
  const last = child.stdout.trim().split("\n").pop() ?? "";
  try {
    return { reply: JSON.parse(last) as ThreadedReply };
  } catch {
    return { reason: `unexpected output: ${last.slice(0, 200)}` };
  }
}

function targetLine(ok: boolean, text: string): string {
  return `  [${ok ? "PASS" : "FAIL"}] ${text}`;
}

async function main(): Promise<void> {
  const started = performance.now();
  const kernels = await Kernels.load();
  const variant = kernels.core.variant;
  const peer = await loadPeer(1);
  environment = runEnvironment(variant);
  const machine = machineInfo();
  console.log(`engine ${environment.engine}; CPU ${environment.cpu} (${machine.cpus} CPUs); core build ${variant}${flags.quick ? "; QUICK timing (not comparable)" : ""}`);
  console.log(
    `ours: core-${variant}.wasm (variant ${variant}${engineHasRelaxedSimd() ? "" : "; this engine does not validate relaxed SIMD"}), Kernels.gemm on one thread; ` +
      `${THREADS}-thread row: ParallelGemm.runSync over a WorkerPool of ${THREADS} (core-${variant}-shared.wasm)`,
  );
  console.log(`peer: @tensorflow/tfjs-backend-wasm ${peer.version}, ${peer.binary}, ${peer.threads} thread, tf.matMul + dataSync()`);
  console.log(
    `timing: best of ${TIMING.reps} repetitions of ~${TIMING.repSeconds} s each side, ours and peer alternating ` +
      `(${TIMING.slowReps} single calls when one call is longer)\n`,
  );

  const rows: Row[] = [];
  const cpuShare = watchCpuShare();
  for (const s of SINGLE) {
    rows.push(runSingle(kernels, peer, s));
    process.stderr.write(`  done ${s.name}\n`);
  }
  const share = cpuShare();

  const ours2 = await runParallel(peer, PARALLEL);
  const threaded = peerThreaded(PARALLEL);
  const notes: string[] = [];
  if (threaded.reply) {
    const r = threaded.reply;
    rows.push(row(`${PARALLEL.name} ${THREADS} threads (peer: ${r.binary.replace(/\.wasm$/, "")}, ${r.threads} threads)`, ours2, r.gflops[0]!));
    notes.push(
      `the peer's threaded build is off in Node as shipped (WASM_HAS_MULTITHREAD_SUPPORT is false there, its pthread workers ` +
        `load from blob: URLs, its pool is capped at CPUs/2); it ran here through the shims in bench/lib/tfjs-peer.ts.`,
    );
  } else {
    const single = rows.find((r) => r.case === PARALLEL.name)!.peer_gflops;
    rows.push(row(`${PARALLEL.name} ${THREADS} threads (peer: 1 thread, its threaded build does not run in Node)`, ours2, single));
    notes.push(`the peer's threaded build failed in Node: ${threaded.reason}`);
  }
  process.stderr.write(`  done ${PARALLEL.name} ${THREADS} threads\n\n`);

  const table = rows.map((r) => [r.case, r.ours_gflops.toFixed(1), r.peer_gflops.toFixed(1), r.ratio.toFixed(2)]);
  console.log(formatTable(["case", "ours GFLOP/s", "peer GFLOP/s", "ratio (ours/peer)"], table, ["left", "right", "right", "right"]));
  if (share < 0.9) {
    notes.push(`the single-thread rows got ${(100 * share).toFixed(0)}% of a CPU: other processes competed for the CPUs, so these numbers are low and noisy.`);
  }
  for (const note of notes) console.log(`\nnote: ${note}`);

  const get = (name: string) => rows.find((r) => r.case === name)!;
  const nn = get("NN 512^3");
  const lines = ["", "targets:"];
  lines.push(targetLine(nn.ratio >= 1.6, `NN 512 >= 1.6x tfjs-wasm: ${nn.ratio.toFixed(2)}x`));
  for (const kind of ["NT", "TN"]) {
    const r = get(`${kind} 512^3`);
    const rel = r.ours_gflops / nn.ours_gflops;
    lines.push(
      targetLine(rel >= 0.85, `${kind} 512 within 15% of our NN 512 (>= 0.85x): ${r.ours_gflops.toFixed(1)} vs ${nn.ours_gflops.toFixed(1)} GFLOP/s = ${rel.toFixed(2)}x`),
    );
  }
  const tn = get("TN 512^3");
  lines.push(targetLine(tn.ratio >= 10, `TN 512 >= 10x the peer's transposeA matMul: ${tn.ratio.toFixed(2)}x (peer ${tn.peer_gflops.toFixed(1)} GFLOP/s)`));
  for (const r of rows.filter((r) => r.case.startsWith("mlp "))) {
    lines.push(targetLine(r.ours_gflops >= 40, `${r.case} >= 40 GFLOP/s: ${r.ours_gflops.toFixed(1)}`));
  }
  console.log(lines.join("\n"));

  await writeJsonAtomic(RESULTS, { rows, ...environment, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick, cpu_share: round(share, 2) });
  console.log(`\nwrote ${RESULTS}${flags.record ? "" : " (scratch; --record writes bench/results/)"} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
