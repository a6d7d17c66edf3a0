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
  /**
   * Lets the thread keep the process alive again (the default for a new thread). A no-op on runtimes whose
   * workers have no ref (Deno, browsers).
   */
  ref(): void;
  /**
   * Lets the process exit while the thread lives, when nothing else keeps it alive (Node's worker_threads and
   * Bun's Worker); a no-op on runtimes whose workers have no unref (Deno, browsers).
   */
  unref(): void;
}

/**
 * Creates a Web Worker for a worker entry, written by the caller as the literal
 * `() => new Worker(new URL("./worker.js", import.meta.url), { type: "module" })` so that bundlers emit the entry.
 */
export type WorkerFactory = () => Worker;

/** One runtime's adapter: Node, Bun, Deno or a browser. */
export interface Platform extends CoreSource {
  readonly name: "node" | "bun" | "deno" | "web";
  /** Logical cores available to this process. */
  hardwareConcurrency(): number;
  /** Starts an ES-module worker running `url`; Web Worker runtimes call `create` instead when it is given. */
  spawnWorker(url: URL, create?: WorkerFactory): WorkerHandle;
}

/** Options of the adapter factories (nodePlatform, bunPlatform, denoPlatform, webPlatform) and detectPlatform. */
export interface PlatformOptions {
  /**
   * Folder (URL, or a path relative to the page in browsers) holding the core builds `core-*.wasm`. Default: the
   * package's build/ folder, found from dist/ or from the sources; in a browser, the URLs bundlers emit.
   */
  coreBase?: URL | string;
  /** URL of each build by file name; overrides coreBase (for bundles that rename assets). */
  coreUrl?: (fileName: string) => URL | string;
}

/** Name of the runtime executing this code. */
export function runtimeName(): Platform["name"] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  if (typeof g.Deno !== "undefined") return "deno";
  if (typeof g.Bun !== "undefined") return "bun";
  if (g.process?.versions?.node) return "node";
  return "web";
}

let detected: Promise<Platform> | undefined;

/** The adapter for the runtime executing this code: the default one is loaded once; options make a new one. */
export function detectPlatform(options?: PlatformOptions): Promise<Platform> {
  if (options && (options.coreBase !== undefined || options.coreUrl !== undefined)) return createPlatform(runtimeName(), options);
  detected ??= createPlatform(runtimeName(), {});
  return detected;
}

async function createPlatform(name: Platform["name"], options: PlatformOptions): Promise<Platform> {
  switch (name) {
    case "node":
      return (await import("./adapters/node.js")).nodePlatform(options);
    case "bun":
      return (await import("./adapters/bun.js")).bunPlatform(options);
    case "deno":
      return (await import("./adapters/deno.js")).denoPlatform(options);
    default:
      return (await import("./adapters/web.js")).webPlatform(options);
  }
}
