// Browser adapter: fetches core builds next to the bundle's build/ folder and runs Web Workers.
import { buildDir, type Platform } from "../platform.js";
import { spawnWebWorker } from "./web-worker.js";

export const webPlatform: Platform = {
  name: "web",
  async readCore(fileName) {
    const response = await fetch(new URL(fileName, buildDir));
    if (!response.ok) throw new Error(`GET ${response.url}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  },
  hardwareConcurrency: () => navigator.hardwareConcurrency ?? 1,
  spawnWorker: spawnWebWorker,
};
