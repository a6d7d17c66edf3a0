// Shared benchmark helpers: best-of-N timing, rounding, an aligned text table, machine facts and atomic JSON output.
import { mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../../src/runtime/platform.js";
import { writeFileAtomic } from "../../src/node/files.js";

/** Options of measure and measureInterleaved. */
export interface MeasureOptions {
  /** Wall time one timed repetition should last, in seconds. Default 0.3. */
  repSeconds?: number;
  /** Timed repetitions; the best one counts. Default 7. */
  reps?: number;
  /** Repetitions when one call alone takes longer than repSeconds (slow cases). Default 3. */
  slowReps?: number;
  /** Untimed warm-up time before calibration, in seconds. Default 0.2. */
  warmupSeconds?: number;
}

/** The outcome of a measurement: seconds per call of the best repetition, and how it was obtained. */
export interface Measurement {
  seconds: number;
  iterations: number;
  reps: number;
}

function now(): number {
  return performance.now() / 1000;
}

/**
 * Times synchronous functions side by side: warms each up and calibrates its iteration count so that one
 * repetition lasts about `repSeconds`, then runs their repetitions alternately (so that a busy spell on the
 * machine hits both alike) and returns each one's best per-call time.
 */
export function measureInterleaved(fns: ReadonlyArray<() => void>, options: MeasureOptions = {}): Measurement[] {
  const { repSeconds = 0.3, reps = 7, slowReps = 3, warmupSeconds = 0.2 } = options;
  const plans = fns.map((fn) => {
    const warmEnd = now() + warmupSeconds;
    let single = Infinity;
    do {
      const t0 = now();
      fn();
      single = Math.min(single, now() - t0);
    } while (now() < warmEnd);
    return { fn, iterations: Math.max(1, Math.round(repSeconds / single)), reps: single > repSeconds ? slowReps : reps, best: Infinity };
  });
  for (let r = 0; plans.some((p) => r < p.reps); r++) {
    for (const plan of plans) {
      if (r >= plan.reps) continue;
      const t0 = now();
      for (let i = 0; i < plan.iterations; i++) plan.fn();
      plan.best = Math.min(plan.best, (now() - t0) / plan.iterations);
    }
  }
  return plans.map((p) => ({ seconds: p.best, iterations: p.iterations, reps: p.reps }));
}

/** measureInterleaved for one function. */
export function measure(fn: () => void, options: MeasureOptions = {}): Measurement {
  return measureInterleaved([fn], options)[0]!;
}

/** GFLOP/s of a product of m x k by k x n done in `seconds`. */
export function gemmGflops(m: number, n: number, k: number, seconds: number): number {
  return (2 * m * n * k) / seconds / 1e9;
}

/** `x` rounded to `digits` decimals (0.1 for digits 1, 0.01 for digits 2). */
export function round(x: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}

/** Column alignment of formatTable. */
export type Align = "left" | "right";

/** An aligned text table: a header row, a rule, then the rows; columns are separated by " | ". */
export function formatTable(headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, align: ReadonlyArray<Align> = []): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? "").length)));
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, c) => (align[c] === "right" ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join(" | ")
      .trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}

/** CPU count and model of this machine (the model from /proc/cpuinfo where there is one, else os.cpus()). */
export function machineInfo(): { cpus: number; model: string } {
  const list = cpus();
  let model = list[0]?.model.trim() ?? "";
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() || model;
  } catch {
    // not Linux: os.cpus() it is
  }
  return { cpus: list.length, model: model || "unknown" };
}

/** The engine running this code, one format everywhere: "node 24.21.0", "bun 1.2.3", "deno 2.1.0". */
export function engineName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  const name = runtimeName();
  return `${name} ${versions[name] ?? process.versions.node}`;
}

/** What every result row and file records: engine, CPU model, core build (Kernels.core.variant). */
export interface RunEnvironment {
  engine: string;
  cpu: string;
  build: string;
}

/** The environment of this run, for `build` (e.g. "relaxed", "simd"). */
export function runEnvironment(build: string): RunEnvironment {
  return { engine: engineName(), cpu: machineInfo().model, build };
}

/** Command-line flags every benchmark takes: --record (write bench/results/) and --quick (short runs while developing). */
export interface BenchFlags {
  record: boolean;
  quick: boolean;
}

export function benchFlags(argv: ReadonlyArray<string> = process.argv.slice(2)): BenchFlags {
  const known = new Set(["--record", "--quick"]);
  const unknown = argv.filter((a) => !known.has(a));
  if (unknown.length) throw new Error(`unknown flag(s) ${unknown.join(" ")}; expected --record, --quick`);
  const flags = { record: argv.includes("--record"), quick: argv.includes("--quick") || process.env.DOWNPOUR_BENCH_QUICK === "1" };
  if (flags.record && flags.quick) throw new Error("--quick runs are not recorded: drop --quick or --record");
  return flags;
}

/** The repository root (this file is <root>/<dist>/bench/lib/report.js). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Where a benchmark writes NAME.json: bench/results/ with --record, else the gitignored bench/.scratch/. */
export function resultsPath(name: string, flags: BenchFlags): string {
  return join(repoRoot, "bench", flags.record ? "results" : ".scratch", `${name}.json`);
}

/**
 * Starts watching this process's CPU time against wall time; the returned function gives the share of one CPU
 * the process got since (about 1 for single-thread work on an idle machine, lower when other processes compete).
 */
export function watchCpuShare(): () => number {
  const cpu0 = process.cpuUsage();
  const t0 = now();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1e6 / (now() - t0);
  };
}

/** Writes `data` as JSON to `path` atomically: a temporary file in the same folder, then a rename over `path`. */
export async function writeJsonAtomic(path: string, data: unknown): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(data, null, 2)}\n`);
}
