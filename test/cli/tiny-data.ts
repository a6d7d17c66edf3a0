// A tiny seeded CSV (3 features, a 0/1 label) that trains in milliseconds, and a quick CLI run over it: for the
// tests of what the CLI refuses, warns about or writes, where the data's content does not matter.
import { runCli } from "../../src/cli/program.js";
import { captureIO } from "./helpers.js";

export const TINY_FEATURES = 3;

/** `rows` rows "x0,x1,x2,label" (label: x0 + x1 > 1), the same for the same `seed`. */
export function tinyCsv(rows = 48, seed = 7): string {
  let state = seed >>> 0 || 1;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Number((state / 2 ** 32).toFixed(3));
  };
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const x = [next(), next(), next()];
    lines.push([...x, x[0]! + x[1]! > 1 ? 1 : 0].join(","));
  }
  return `${lines.join("\n")}\n`;
}

/** Flags of a one-epoch, one-thread run that trains in a blink. */
export const QUICK = ["--epochs", "1", "--threads", "1", "--hidden", "4", "--quiet"] as const;

/** Runs the CLI in `dir` on `args`; resolves with the exit code and what it wrote. */
export async function cli(
  dir: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO(dir, env);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}
