// Child processes of the BSP benchmark: starts bench/lib/bsp-child.js under this process's engine
// (process.execPath: Node, Bun or Deno alike), waits for its {"ready":true} line, tells it to go, and collects its
// {"result":...} line; a child that exits without one rejects with its stderr.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildRequest } from "./bsp-child.js";

const SCRIPT = fileURLToPath(new URL("./bsp-child.js", import.meta.url));

// Children still running, killed when this process is interrupted (bench/run.mjs forwards SIGINT/SIGTERM here).
const live = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    for (const child of live) child.kill("SIGKILL");
    process.exit(130);
  });
}

/** A started child: ready once set up; go() starts its timed work; result is its reply. */
export interface Child<T> {
  readonly ready: Promise<void>;
  go(): void;
  readonly result: Promise<T>;
  kill(): void;
}

/** The engine's arguments before a script (Deno needs its subcommand and permissions). */
function engineArgs(): string[] {
  return "Deno" in globalThis ? ["run", "-A"] : [];
}

export function startChild<T>(request: ChildRequest, timeoutMs = 600_000): Child<T> {
  const child: ChildProcess = spawn(process.execPath, [...engineArgs(), SCRIPT, JSON.stringify(request)], { stdio: ["pipe", "pipe", "pipe"] });
  live.add(child);
  child.on("exit", () => live.delete(child));
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let markReady!: () => void;
  let fail!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  const result = new Promise<T>((resolve, reject) => {
    let out = "";
    let answer: T | undefined;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      let nl = out.indexOf("\n");
      while (nl >= 0) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        nl = out.indexOf("\n");
        if (!line.startsWith("{")) continue;
        const message = JSON.parse(line) as { ready?: boolean; result?: T };
        if (message.ready) markReady();
        if (message.result !== undefined) answer = message.result;
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && answer !== undefined) return resolve(answer);
      const error = new Error(`bench child ${request.role} exited with ${code ?? signal} without a result: ${stderr.trim() || "(no stderr)"}`);
      fail(error);
      reject(error);
    });
  });
  result.catch(() => {});
  ready.catch(() => {});
  return {
    ready,
    go: () => void child.stdin!.end("go\n"),
    result,
    kill: () => void child.kill("SIGKILL"),
  };
}

/** Starts every request's child, waits until all are ready, tells them to go together, and collects the results. */
export async function runChildren<T>(requests: ChildRequest[]): Promise<T[]> {
  const children = requests.map((r) => startChild<T>(r));
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.go();
    return await Promise.all(children.map((c) => c.result));
  } catch (error) {
    for (const c of children) c.kill();
    throw error;
  }
}
