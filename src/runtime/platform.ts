// What the core needs from a JavaScript runtime (read a build, spawn a worker), and detection of the runtime in use.
import type { CoreSource } from "./core.js";

/** A message-passing handle on a worker thread, the same on every runtime. */
export interface WorkerHandle {
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  onError(listener: (error: Error) => void): void;
  /** Called once if the thread ends by itself or is terminated (runtimes without an exit event never call it). */
  onExit(listener: (code: number) => void): void;
  /** Removes every listener added through this handle. */
  removeListeners(): void;
  /** Stops the thread; resolves when it is gone. */
  terminate(): Promise<void>;
}

/** One runtime's adapter: Node, Bun, Deno or a browser. */
export interface Platform extends CoreSource {
  readonly name: "node" | "bun" | "deno" | "web";
  /** Logical cores available to this process. */
  hardwareConcurrency(): number;
  /** Starts an ES-module worker running `url`. */
  spawnWorker(url: URL): WorkerHandle;
}

/** The package's build/ folder, which holds the compiled core (this file is dist/src/runtime/platform.js). */
export const buildDir = new URL("../../../build/", import.meta.url);

/** Name of the runtime executing this code. */
export function runtimeName(): Platform["name"] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  if (typeof g.Deno !== "undefined") return "deno";
  if (typeof g.Bun !== "undefined") return "bun";
  if (g.process?.versions?.node) return "node";
  return "web";
}

let detected: Promise<Platform> | undefined;

/** The adapter for the runtime executing this code (loaded once, on first use). */
export function detectPlatform(): Promise<Platform> {
  detected ??= importAdapter(runtimeName());
  return detected;
}

async function importAdapter(name: Platform["name"]): Promise<Platform> {
  switch (name) {
    case "node":
      return (await import("./adapters/node.js")).nodePlatform;
    case "bun":
      return (await import("./adapters/bun.js")).bunPlatform;
    case "deno":
      return (await import("./adapters/deno.js")).denoPlatform;
    default:
      return (await import("./adapters/web.js")).webPlatform;
  }
}
