// Browser adapter: fetches core builds (from `coreBase`/`coreUrl`, else the URLs a bundler emits next to the
// package's build/ folder) and runs module Web Workers.
import { bundledCoreUrl, coreReader, fetchBytes, readFromBuild } from "../build-dir.js";
import type { Platform, PlatformOptions } from "../platform.js";
import { spawnWebWorker } from "./web-worker.js";

/** The browser adapter, e.g. `webPlatform({ coreBase: new URL("/assets/downpour/", location.href) })`. */
export function webPlatform(options: PlatformOptions = {}): Platform {
  return {
    name: "web",
    readCore: coreReader(options, fetchBytes, async (fileName, read) => {
      try {
        return await read(bundledCoreUrl(fileName));
      } catch {
        return readFromBuild(fileName, read); // the sources served as they are (src/runtime/ is one level less deep)
      }
    }),
    hardwareConcurrency: () => navigator.hardwareConcurrency ?? 1,
    spawnWorker: spawnWebWorker,
  };
}
