// Where downloaded datasets are cached: $DOWNPOUR_CACHE, else $XDG_CACHE_HOME/downpour, else ~/.cache/downpour.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** The environment variables the data layer reads. */
export type DataEnv = Readonly<Record<string, string | undefined>>;

/** The root of downpour's download cache (each dataset gets a subdirectory). */
export function defaultCacheDir(env: DataEnv = process.env): string {
  if (env.DOWNPOUR_CACHE) return resolve(env.DOWNPOUR_CACHE);
  if (env.XDG_CACHE_HOME) return resolve(env.XDG_CACHE_HOME, "downpour");
  return join(homedir(), ".cache", "downpour");
}
