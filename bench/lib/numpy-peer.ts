// The native training peer: runs bench/lib/numpy_mlp.py (NumPy over its BLAS, usually OpenBLAS) as a python3 child
// process with a set BLAS thread count; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset in that child only.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./report.js";

/** What numpy_mlp.py prints. */
export interface NumpyResult {
  numpy: string;
  python: string;
  blas: { via: string; library: string | null; version: string | null; kernel: string | null; threads: number | null };
  threads: number;
  samples: number;
  seconds: number;
  samples_per_second: number;
  accuracy: number;
}

const PYTHON = process.env.DOWNPOUR_PYTHON ?? "python3";
const SCRIPT = join(repoRoot, "bench/lib/numpy_mlp.py");

/** The child's environment: BLAS threads set, the CPU-type overrides that slow a current OpenBLAS removed. */
function childEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** Why the peer cannot run here (no python3, no numpy), or undefined when it can. */
export function numpyMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ["-c", "import numpy; print(numpy.__version__)"], { encoding: "utf8", timeout: 30_000 });
  if (probe.error) return `${PYTHON} is not available (${probe.error.message})`;
  if (probe.status !== 0) return `${PYTHON} has no numpy (${(probe.stderr.trim().split("\n").pop() ?? "").slice(0, 200)})`;
  return undefined;
}

/** One epoch (or `maxBatches` mini-batches) with `threads` BLAS threads. */
export function runNumpyPeer(mnistDir: string, threads: number, maxBatches = 0): NumpyResult {
  const args = [SCRIPT, "--data", mnistDir, "--threads", String(threads), "--max-batches", String(maxBatches)];
  const child = spawnSync(PYTHON, args, { encoding: "utf8", env: childEnv(threads), timeout: 300_000 });
  if (child.error) throw new Error(`numpy peer: ${child.error.message}`);
  if (child.status !== 0) throw new Error(`numpy peer exited with ${child.status ?? child.signal}: ${child.stderr.trim().slice(-500)}`);
  const last = child.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as NumpyResult;
}
