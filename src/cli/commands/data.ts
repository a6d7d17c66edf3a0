// `downpour data mnist` downloads and verifies MNIST into the cache; `downpour data where` says where the cache is
// and whether MNIST is found.
import { resolve } from "node:path";
import type { Command } from "commander";
import { defaultCacheDir } from "../../data/cache.js";
import { downloadMnist, findMnist, mnistBaseUrls, type MnistDownloadResult } from "../../data/mnist.js";
import type { CliIO } from "../io.js";
import { downloadProgress } from "../progress.js";

export interface DataMnistFlags {
  cache?: string;
  baseUrl?: string[];
}

/** Downloads every missing or corrupt MNIST file into <cache>/mnist and lists the files. */
export async function runDataMnist(flags: DataMnistFlags, io: CliIO): Promise<MnistDownloadResult> {
  const cacheDir = flags.cache === undefined ? defaultCacheDir(io.env) : resolve(io.cwd, flags.cache);
  const progress = downloadProgress(io);
  let result: MnistDownloadResult;
  try {
    result = await downloadMnist({ cacheDir, baseUrls: flags.baseUrl ?? mnistBaseUrls(io.env), onProgress: progress.onProgress });
  } finally {
    progress.stop();
  }
  const lines = [
    ...result.downloaded.map(({ file, url }) => `  ${file}  downloaded from ${url}`),
    ...result.present.map((file) => `  ${file}  already present (verified)`),
  ];
  io.stdout(`MNIST is in ${result.dir}\n${lines.join("\n")}\n`);
  return result;
}

/** The cache directory and the MNIST directory found (undefined when absent). */
export function runDataWhere(io: CliIO): { cache: string; mnist?: string } {
  const cache = defaultCacheDir(io.env);
  const mnist = findMnist(io.env);
  const found = mnist ? `found in ${mnist}` : "not found (get it with: downpour data mnist)";
  io.stdout(`cache: ${cache}  (set $DOWNPOUR_CACHE to move it)\nmnist: ${found}\n`);
  return { cache, ...(mnist ? { mnist } : {}) };
}

/** Adds `data mnist` and `data where` to the program. */
export function registerData(program: Command, io: CliIO): void {
  const data = program.command("data").description("download datasets and show where they are cached");
  data
    .command("mnist")
    .description("download MNIST into the cache (verifying each file's sha256) and print where it is")
    .option("--cache <dir>", "cache root; the files go in <dir>/mnist (default: $DOWNPOUR_CACHE, $XDG_CACHE_HOME/downpour or ~/.cache/downpour)")
    .option("--base-url <url...>", "base URLs to try in order (default: $DOWNPOUR_MNIST_URLS, else yann.lecun.com, then two mirrors)")
    .action(async (flags: DataMnistFlags) => {
      await runDataMnist(flags, io);
    });
  data
    .command("where")
    .description("print the cache directory and whether MNIST is found")
    .action(() => {
      runDataWhere(io);
    });
}
