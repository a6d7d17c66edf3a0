// `--data nats:<name>` (and `--test-data nats:<name>`): a dataset published into the NATS object store with
// `downpour data put`, fetched once into the cache (verified) so the usual file reading takes it from there.
import type { NatsConnection } from "@nats-io/transport-node";
import { fetchDataset, parseStoredDataRef } from "../../cluster/data-store.js";
import { defaultCacheDir } from "../../data/cache.js";
import type { ResolvedSettings } from "../config.js";
import type { CliIO } from "../io.js";

/** The settings with each nats:<name> data reference replaced by the path of its verified local copy. */
export async function resolveStoredData(given: ResolvedSettings, connection: NatsConnection, io: CliIO): Promise<ResolvedSettings> {
  const settings = { ...given.settings };
  for (const key of ["data", "testData"] as const) {
    const name = settings[key] === undefined ? undefined : parseStoredDataRef(settings[key]!);
    if (name === undefined) continue;
    settings[key] = await fetchDataset(connection, name, { cacheDir: defaultCacheDir(io.env) });
    io.stderr(`${given.sources[key] ?? "--data"} nats:${name}: read from the NATS object store into ${settings[key]}\n`);
  }
  return { settings, sources: given.sources };
}
