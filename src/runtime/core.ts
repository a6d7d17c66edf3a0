// Instantiates the WASM core from bytes over a given or new WebAssembly.Memory; runtime-free (no file system here).
import { CoreLoadError } from "../errors.js";
import type { CoreExports } from "./exports.js";
import { requireSharedMemory } from "./isolation.js";
import { coreFileName, pickVariant, type CoreVariant } from "./variants.js";

/** 64 KiB, the WebAssembly page. */
export const PAGE_BYTES = 65536;

/** The most pages a (32-bit) WebAssembly memory can have: 65536, i.e. 4 GiB. */
export const MAX_PAGES = 65536;

/** The maximum of a new memory when CoreOptions.maximumPages is not given: 16384 pages, 1 GiB. */
export const DEFAULT_MAXIMUM_PAGES = 16384;

/** Options of loadCore and instantiateCore. */
export interface CoreOptions {
  /** Which build to run. Default `"auto"`: relaxed SIMD where the engine validates it, plain SIMD otherwise. */
  variant?: CoreVariant | "auto";
  /** Use shared memory so worker threads can run kernels over the same data. Default `false`. */
  shared?: boolean;
  /** Memory to run over; it must be shared exactly when `shared` is. Default: a new memory of `initialPages`. */
  memory?: WebAssembly.Memory;
  /** Initial size of a new memory, in 64 KiB pages. Default 32 (2 MiB). */
  initialPages?: number;
  /** Maximum size of a new memory, in 64 KiB pages. Default 16384 (1 GiB); at most 65536. */
  maximumPages?: number;
}

/** Reads a core build by file name (`core-simd.wasm`, ...). Each runtime adapter provides one. */
export interface CoreSource {
  readCore(fileName: string): Promise<Uint8Array>;
}

/** An instantiated core: its exports, its memory and what build it is. */
export class Core {
  private cachedBuffer: ArrayBufferLike | undefined;
  private cachedF32: Float32Array | undefined;

  constructor(
    readonly exports: CoreExports,
    readonly memory: WebAssembly.Memory,
    readonly module: WebAssembly.Module,
    readonly bytes: Uint8Array,
    readonly variant: CoreVariant,
    readonly shared: boolean,
  ) {}

  /** First byte the core's own data does not use. */
  get heapBase(): number {
    return this.exports.core_heap_base();
  }

  /** Rows of the GEMM register tile (4 plain SIMD, 6 relaxed). */
  get gemmTileRows(): number {
    return this.exports.f32_gemm_mr();
  }

  /** A Float32Array over all of memory; a new one after the memory grows (old views of a private memory detach). */
  f32(): Float32Array {
    const buffer = this.memory.buffer;
    if (buffer !== this.cachedBuffer || !this.cachedF32) {
      this.cachedBuffer = buffer;
      this.cachedF32 = new Float32Array(buffer);
    }
    return this.cachedF32;
  }
}

function newMemory(options: CoreOptions, shared: boolean): WebAssembly.Memory {
  const initial = options.initialPages ?? 32;
  const maximum = options.maximumPages ?? DEFAULT_MAXIMUM_PAGES;
  if (!Number.isInteger(initial) || !Number.isInteger(maximum) || initial < 2 || maximum < initial || maximum > MAX_PAGES) {
    throw new CoreLoadError(
      `memory pages must be integers with 2 <= initialPages <= maximumPages <= ${MAX_PAGES}; got initialPages=${initial}, maximumPages=${maximum}`,
    );
  }
  return new WebAssembly.Memory({ initial, maximum, shared } as WebAssembly.MemoryDescriptor);
}

/** Compiles and instantiates core bytes. Resolves when the instance is ready; the bytes are not copied. */
export async function instantiateCore(bytes: Uint8Array, variant: CoreVariant, options: CoreOptions = {}): Promise<Core> {
  const shared = options.shared ?? false;
  if (shared) requireSharedMemory("a shared-memory core (shared: true)");
  const memory = options.memory ?? newMemory(options, shared);
  let module: WebAssembly.Module;
  let instance: WebAssembly.Instance;
  try {
    module = await WebAssembly.compile(bytes as BufferSource);
    instance = await WebAssembly.instantiate(module, { env: { memory, abort: abortFromCore } });
  } catch (cause) {
    const what = coreFileName(variant, shared);
    throw new CoreLoadError(`could not instantiate ${what}: ${(cause as Error).message}`, { cause });
  }
  return new Core(instance.exports as unknown as CoreExports, memory, module, bytes, variant, shared);
}

function abortFromCore(): never {
  throw new CoreLoadError("the WASM core aborted");
}

/** Picks the build for this engine, reads it through `source` and instantiates it. */
export async function loadCore(source: CoreSource, options: CoreOptions = {}): Promise<Core> {
  const variant = pickVariant(options.variant ?? "auto");
  const shared = options.shared ?? false;
  if (shared) requireSharedMemory("a shared-memory core (shared: true)");
  const fileName = coreFileName(variant, shared);
  let bytes: Uint8Array;
  try {
    bytes = await source.readCore(fileName);
  } catch (cause) {
    throw new CoreLoadError(`could not read the core build ${fileName} (run \`npm run build:wasm\`)`, { cause });
  }
  return instantiateCore(bytes, variant, options);
}
