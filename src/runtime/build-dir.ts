// Where the compiled core builds (build/core-*.wasm) are: found from dist/src/runtime/ (the compiled package) and
// from src/runtime/ (Deno or Bun running the TypeScript sources), plus literal URLs that bundlers emit.

const here = import.meta.url;
/** Whether this module runs from the TypeScript sources (src/runtime/build-dir.ts) rather than from dist/. */
const fromSources = here.endsWith(".ts");

/** Candidate build/ folders, the likelier first: ../../build/ from src/runtime/, ../../../build/ from dist/src/runtime/. */
export const buildDirCandidates: readonly URL[] = (fromSources ? ["../../build/", "../../../build/"] : ["../../../build/", "../../build/"]).map(
  (path) => new URL(path, here),
);

/** The package's build/ folder as seen from this module (the first candidate). */
export const buildDir: URL = buildDirCandidates[0]!;

let found: URL | undefined;

/**
 * Reads `fileName` from `dir` if given, else from the first candidate build/ folder that has it (remembered for
 * later reads). Throws an Error naming every URL tried.
 */
export async function readFromBuild(fileName: string, read: (url: URL) => Promise<Uint8Array>, dir?: URL | string): Promise<Uint8Array> {
  if (dir !== undefined) return read(new URL(fileName, folderUrl(dir)));
  const order = found ? [found, ...buildDirCandidates.filter((c) => c.href !== found!.href)] : buildDirCandidates;
  const failures: string[] = [];
  for (const candidate of order) {
    try {
      const bytes = await read(new URL(fileName, candidate));
      found = candidate;
      return bytes;
    } catch (error) {
      failures.push(`${new URL(fileName, candidate).href}: ${(error as Error).message}`);
    }
  }
  throw new Error(`no build folder has ${fileName} (tried ${failures.join("; ")})`);
}

/** A folder URL with a trailing slash, so that `new URL(fileName, folder)` lands inside it. */
export function folderUrl(dir: URL | string): URL {
  const url = new URL(dir, pageUrl() ?? here);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

// The page's URL in a browser, to resolve relative folders against; undefined elsewhere (Deno's getter throws).
function pageUrl(): string | undefined {
  try {
    return (globalThis as { location?: { href?: string } }).location?.href;
  } catch {
    return undefined;
  }
}

/**
 * URL of a build next to the compiled package (this file is dist/src/runtime/build-dir.js), written as
 * `new URL("<literal>", import.meta.url)` so that Vite and webpack emit the .wasm files into a bundle.
 */
export function bundledCoreUrl(fileName: string): URL {
  switch (fileName) {
    case "core-simd.wasm":
      return new URL("../../../build/core-simd.wasm", import.meta.url);
    case "core-simd-shared.wasm":
      return new URL("../../../build/core-simd-shared.wasm", import.meta.url);
    case "core-relaxed.wasm":
      return new URL("../../../build/core-relaxed.wasm", import.meta.url);
    case "core-relaxed-shared.wasm":
      return new URL("../../../build/core-relaxed-shared.wasm", import.meta.url);
    default:
      return new URL(fileName, buildDir);
  }
}

/** Options that say where the builds are (see PlatformOptions). */
export interface CoreLocation {
  coreBase?: URL | string;
  coreUrl?: (fileName: string) => URL | string;
}

/** Reads a URL with fetch (http:, https:, blob:, data:); throws on an HTTP error status. */
export async function fetchBytes(url: URL): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${response.url || url.href}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * A readCore for an adapter: from `coreUrl(fileName)` or `coreBase` when given, else from `fallback(fileName)`.
 * `readFile` reads file: URLs; other schemes are fetched.
 */
export function coreReader(
  location: CoreLocation,
  readFile: (url: URL) => Promise<Uint8Array>,
  fallback: (fileName: string, read: (url: URL) => Promise<Uint8Array>) => Promise<Uint8Array> = (fileName, read) => readFromBuild(fileName, read),
): (fileName: string) => Promise<Uint8Array> {
  const read = (url: URL): Promise<Uint8Array> => (url.protocol === "file:" ? readFile(url) : fetchBytes(url));
  return (fileName) => {
    if (location.coreUrl) return read(new URL(location.coreUrl(fileName), pageUrl() ?? here));
    if (location.coreBase !== undefined) return readFromBuild(fileName, read, location.coreBase);
    return fallback(fileName, read);
  };
}
