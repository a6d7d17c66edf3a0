// The one place that picks which build of the WASM core an engine runs: plain or relaxed SIMD, private or shared memory.
import { CoreLoadError } from "../errors.js";

/** `simd`: 4x8 mul+add kernels (fastest on Node 20). `relaxed`: 6x8 fused multiply-add kernels. */
export type CoreVariant = "simd" | "relaxed";

// Minimal modules that use one feature each, so that WebAssembly.validate tells whether the engine has it.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 123, 123, 1, 123, 3, 2, 1, 0, 10, 11, 1, 9, 0, 32, 0, 32, 1, 253, 228,
  1, 11,
]);
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32,
  2, 253, 133, 2, 11,
]);

/** Whether this engine runs WebAssembly 128-bit SIMD. */
export function engineHasSimd(): boolean {
  return WebAssembly.validate(SIMD_PROBE);
}

/** Whether this engine runs relaxed SIMD (Bun and Deno do; Node 20 only with --experimental-wasm-relaxed-simd). */
export function engineHasRelaxedSimd(): boolean {
  return WebAssembly.validate(RELAXED_SIMD_PROBE);
}

/** The fastest variant this engine runs: relaxed where it validates, plain SIMD otherwise. */
export function pickVariant(requested: CoreVariant | "auto" = "auto"): CoreVariant {
  if (!engineHasSimd()) {
    throw new CoreLoadError("this WebAssembly engine lacks 128-bit SIMD, which the downpour core requires");
  }
  if (requested === "relaxed" && !engineHasRelaxedSimd()) {
    throw new CoreLoadError("variant 'relaxed' requested, but this engine does not validate relaxed SIMD");
  }
  if (requested !== "auto") return requested;
  return engineHasRelaxedSimd() ? "relaxed" : "simd";
}

/** File name of a build under the package's build/ folder. */
export function coreFileName(variant: CoreVariant, shared: boolean): string {
  return `core-${variant}${shared ? "-shared" : ""}.wasm`;
}
