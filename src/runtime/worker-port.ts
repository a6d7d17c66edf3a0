// A worker's message channel to its parent: node:worker_threads' parentPort when the Node adapter spawned it,
// the Web Worker global scope otherwise (Bun, Deno, browsers).
import type * as NodeThreads from "node:worker_threads";
import { nodeBuiltin } from "./builtin.js";

/** The worker's side of its message channel. */
export interface Port {
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
}

// Node's worker_threads when this worker was spawned by the Node adapter, the Web Worker scope otherwise.
export async function parentPort(): Promise<Port> {
  try {
    const threads = await nodeBuiltin<typeof NodeThreads>("node:worker_threads");
    const port = threads.parentPort;
    if (port && (threads.workerData as { downpourPort?: string } | null)?.downpourPort === "node") {
      return { postMessage: (m) => port.postMessage(m), onMessage: (l) => port.on("message", l) };
    }
  } catch {
    // not a runtime with node:worker_threads
  }
  const scope = globalThis as unknown as {
    postMessage(m: unknown): void;
    addEventListener(type: "message", l: (e: MessageEvent) => void): void;
  };
  return { postMessage: (m) => scope.postMessage(m), onMessage: (l) => scope.addEventListener("message", (e) => l(e.data)) };
}
