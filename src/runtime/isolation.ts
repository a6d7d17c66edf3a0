// Shared memory needs cross-origin isolation in browsers: the check, and the error that says which headers to send.
import { DownpourError } from "../errors.js";

/** The response headers that make a page cross-origin isolated (so SharedArrayBuffer and threads work). */
export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
} as const;

/** Shared memory (threads, `shared: true` cores) asked for where SharedArrayBuffer is unavailable. */
export class CrossOriginIsolationError extends DownpourError {
  constructor(what: string, options?: ErrorOptions) {
    super(
      `${what} needs SharedArrayBuffer, which this context does not have: serve the page cross-origin isolated ` +
        "with the headers `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` " +
        "(or train with threads: 0 on a private-memory core)",
      options,
    );
  }
}

/** Whether this context can use shared memory: SharedArrayBuffer exists and, in browsers, the page is isolated. */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
}

/** Throws CrossOriginIsolationError naming `what` unless shared memory is available. */
export function requireSharedMemory(what: string): void {
  if (!sharedMemoryAvailable()) throw new CrossOriginIsolationError(what);
}
