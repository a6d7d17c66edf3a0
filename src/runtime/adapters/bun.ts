// Bun adapter: reads core builds with Bun.file and runs Web Workers.
import { buildDir, type Platform } from "../platform.js";
import { spawnWebWorker } from "./web-worker.js";

declare const Bun: { file(url: URL): { arrayBuffer(): Promise<ArrayBuffer> } };

export const bunPlatform: Platform = {
  name: "bun",
  readCore: async (fileName) => new Uint8Array(await Bun.file(new URL(fileName, buildDir)).arrayBuffer()),
  hardwareConcurrency: () => navigator.hardwareConcurrency,
  spawnWorker: spawnWebWorker,
};
