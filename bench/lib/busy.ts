// A busy-loop child process that keeps one core taken (pinned with taskset where it exists) while a benchmark
// measures under contention; bounded: it stops by itself after a deadline or when its parent is gone.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";

/** A running busy process; stop() ends it (idempotent, also run at this process's exit). */
export interface BusyCore {
  pid: number;
  /** "core 1 (taskset)" or "unpinned (no taskset)". */
  placement: string;
  stop(): Promise<void>;
}

// Spins, checking every ~20 ms whether the deadline passed or the parent died (kill(pid, 0) throws then).
const LOOP = `
const [parent, deadline] = [Number(process.argv[1]), Date.now() + Number(process.argv[2])];
process.stdout.write("ready\\n");
let next = Date.now() + 20;
for (;;) {
  if (Date.now() >= next) {
    next = Date.now() + 20;
    if (Date.now() > deadline) process.exit(0);
    try { process.kill(parent, 0); } catch { process.exit(0); }
  }
}`;

function hasTaskset(): boolean {
  return spawnSync("taskset", ["--version"], { stdio: "ignore" }).status === 0;
}

/**
 * Starts the busy process on `core` (taskset -c) and resolves once it spins; `maxSeconds` bounds its life even if
 * nobody stops it.
 */
export async function startBusyCore(core = 1, maxSeconds = 600): Promise<BusyCore> {
  const loop = [process.execPath, "-e", LOOP, String(process.pid), String(maxSeconds * 1000)];
  const pinned = hasTaskset();
  const [command, ...args] = pinned ? ["taskset", "-c", String(core), ...loop] : loop;
  const child: ChildProcess = spawn(command!, args, { stdio: ["ignore", "pipe", "inherit"] });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.on("exit", kill);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let early: ((code: number | null) => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the busy-loop process did not start within 10 s")), 10_000);
      early = (code) => reject(new Error(`the busy-loop process exited early (status ${code})`));
      child.once("error", reject);
      child.once("exit", early);
      child.stdout!.once("data", () => resolve());
      void exited.finally(() => clearTimeout(timer));
      child.stdout!.once("data", () => clearTimeout(timer));
    });
  } catch (error) {
    kill();
    process.off("exit", kill);
    throw error;
  } finally {
    if (early) child.off("exit", early);
  }
  child.stdout!.resume();
  return {
    pid: child.pid!,
    placement: pinned ? `core ${core} (taskset)` : "unpinned (no taskset)",
    async stop() {
      kill();
      await exited;
      process.off("exit", kill);
    },
  };
}

/** Runs `body` while a busy process takes one core; the process is stopped afterwards, also on error. */
export async function withBusyCore<T>(body: (busy: BusyCore) => Promise<T>, core = 1): Promise<T> {
  const busy = await startBusyCore(core);
  try {
    return await body(busy);
  } finally {
    await busy.stop();
  }
}
