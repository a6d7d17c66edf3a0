// Deno adapter: reads core builds with Deno.readFile and runs Web Workers.
import { buildDir, type Platform } from "../platform.js";
import { spawnWebWorker } from "./web-worker.js";

declare const Deno: { readFile(url: URL): Promise<Uint8Array> };

export const denoPlatform: Platform = {
  name: "deno",
  readCore: (fileName) => Deno.readFile(new URL(fileName, buildDir)),
  hardwareConcurrency: () => navigator.hardwareConcurrency,
  spawnWorker: spawnWebWorker,
};
