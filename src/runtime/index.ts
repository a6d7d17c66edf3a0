// The runtime layer: loading the core on every runtime (adapters), the memory arena and the worker pool.
// The public `downpour/core` entry is src/core/index.ts, which adds the typed kernels.
export * from "../errors.js";
export { Arena, DEFAULT_ARENA_BYTES, Layout, MAX_ARENA_BYTES, Slab, type ArenaOptions, type LayoutEntry } from "./arena.js";
export { buildDir, buildDirCandidates } from "./build-dir.js";
export { Core, DEFAULT_MAXIMUM_PAGES, instantiateCore, loadCore, MAX_PAGES, PAGE_BYTES, type CoreOptions, type CoreSource } from "./core.js";
export type { CoreExports, KernelName } from "./exports.js";
export { CrossOriginIsolationError, ISOLATION_HEADERS, requireSharedMemory, sharedMemoryAvailable } from "./isolation.js";
export {
  detectPlatform, runtimeName, type Platform, type PlatformOptions, type WorkerFactory, type WorkerHandle,
} from "./platform.js";
export { WorkerPool, type KernelCall, type PoolOptions } from "./pool.js";
export type { WorkerEntry } from "./spawn.js";
export { coreFileName, engineHasRelaxedSimd, engineHasSimd, pickVariant, type CoreVariant } from "./variants.js";
export { bunPlatform } from "./adapters/bun.js";
export { denoPlatform } from "./adapters/deno.js";
export { nodePlatform } from "./adapters/node.js";
export { webPlatform } from "./adapters/web.js";
