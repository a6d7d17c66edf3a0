// Shared benchmark helpers: best-of-N timing, rounding, an aligned text table, machine facts and atomic JSON output.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname } from "node:path";

/** Options of measure. */
export interface MeasureOptions {
  /** Wall time one timed repetition should last, in seconds. Default 0.4. */
  repSeconds?: number;
  /** Timed repetitions; the best one counts. Default 5. */
  reps?: number;
  /** Repetitions when one call alone takes longer than repSeconds (slow cases). Default 3. */
  slowReps?: number;
  /** Untimed warm-up time before calibration, in seconds. Default 0.2. */
  warmupSeconds?: number;
}

/** The outcome of measure: seconds per call of the best repetition, and how it was obtained. */
export interface Measurement {
  seconds: number;
  iterations: number;
  reps: number;
}

function now(): number {
  return performance.now() / 1000;
}

/**
 * Times a synchronous `fn`: warms up, calibrates the iteration count so that one repetition lasts about
 * `repSeconds`, then returns the best per-call time over several repetitions.
 */
export function measure(fn: () => void, options: MeasureOptions = {}): Measurement {
  const { repSeconds = 0.4, reps = 5, slowReps = 3, warmupSeconds = 0.2 } = options;
  const warmEnd = now() + warmupSeconds;
  let single = Infinity;
  do {
    const t0 = now();
    fn();
    single = Math.min(single, now() - t0);
  } while (now() < warmEnd);
  const iterations = Math.max(1, Math.round(repSeconds / single));
  const count = single > repSeconds ? slowReps : reps;
  let best = Infinity;
  for (let r = 0; r < count; r++) {
    const t0 = now();
    for (let i = 0; i < iterations; i++) fn();
    best = Math.min(best, (now() - t0) / iterations);
  }
  return { seconds: best, iterations, reps: count };
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

/** CPU count and model of this machine. */
export function machineInfo(): { cpus: number; model: string } {
  const list = cpus();
  return { cpus: list.length, model: list[0]?.model.trim() ?? "unknown" };
}

/** Writes `data` as JSON to `path` atomically: a temporary file in the same folder, then a rename over `path`. */
export function writeJsonAtomic(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(data, null, 2) + "\n");
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
