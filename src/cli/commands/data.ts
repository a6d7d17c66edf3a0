// `downpour data mnist` downloads and verifies MNIST into the cache; `downpour data where` says where the cache is
// and whether MNIST is found; `downpour data put FILE --nats URL` publishes a data file into the NATS object store
// (peers then read it as --data nats:<name>) and `downpour data ls --nats URL` lists what is stored.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Command } from "commander";
import { CONNECTION_DEFAULTS, connectCluster } from "../../cluster/connection.js";
import { DATA_STORE_DEFAULTS, listDatasets, putDataset, type StoredDataset, storedDataRef } from "../../cluster/data-store.js";
import { defaultCacheDir } from "../../data/cache.js";
import { downloadMnist, findMnist, mnistBaseUrls, type MnistDownloadResult } from "../../data/mnist.js";
import { formatBytes } from "../../util/bytes.js";
import { CONNECTION_SETTINGS, type ConnectionSettings, connectionOptionsOf } from "../cluster-settings.js";
import { readConfigFile } from "../config.js";
import { CliError } from "../errors.js";
import { type CliIO, readablePath } from "../io.js";
import { downloadProgress } from "../progress.js";
import { registerSynthCtr } from "./synth-ctr.js";
import { flagOptions } from "./train.js";

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

/** The flags of `data put` and `data ls`: how to reach NATS (flags override the --config file's), and --json. */
export type DataStoreFlags = ConnectionSettings & { config?: string; json?: boolean; force?: boolean };

/** `data put`'s result: the stored dataset and the reference to pass as --data. */
export type DataPutResult = StoredDataset & { ref: string };

/**
 * Publishes `file` into the NATS object store (bucket DATA_STORE_DEFAULTS.bucket) and prints its reference,
 * `nats:<name>`, with its size (or, with --json, one JSON object). The file is checked before connecting; the
 * connection is closed before this resolves, whatever happened.
 */
export async function runDataPut(file: string, flags: DataStoreFlags, io: CliIO): Promise<DataPutResult> {
  const path = readablePath(io.cwd, file);
  await checkDataFile(path, file);
  const stored = await withConnection(flags, io, "data-put", (connection) => putDataset(connection, path, { force: flags.force === true }));
  const result = { ref: storedDataRef(stored.name), ...stored };
  if (flags.json) io.stdout(`${JSON.stringify(result)}\n`);
  else {
    const how = stored.uploaded ? "stored" : "already stored";
    io.stdout(`${result.ref}  ${formatBytes(stored.size)} (${stored.size} bytes), ${how} in bucket ${stored.bucket}\n`);
    io.stderr(`peers read it with: --data ${result.ref}\n`);
  }
  return result;
}

/** Lists the datasets in the object store: `nats:<name>  <size>` per line (or, with --json, a JSON array). */
export async function runDataLs(flags: DataStoreFlags, io: CliIO): Promise<StoredDataset[]> {
  const datasets = await withConnection(flags, io, "data-ls", (connection) => listDatasets(connection));
  if (flags.json) io.stdout(`${JSON.stringify(datasets.map((d) => ({ ref: storedDataRef(d.name), ...d })))}\n`);
  else if (datasets.length === 0) io.stderr(`no datasets in bucket ${DATA_STORE_DEFAULTS.bucket} (put one with: downpour data put FILE --nats URL)\n`);
  else io.stdout(datasets.map((d) => `${storedDataRef(d.name)}  ${formatBytes(d.size)}\n`).join(""));
  return datasets;
}

/** A readable regular file, or a CliError naming it. */
async function checkDataFile(path: string, given: string): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new CliError(`data put ${given}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`, { cause: error });
  }
  if (!isFile) throw new CliError(`data put ${given}: not a file (put one data file: .csv, .libsvm, .idx, optionally .gz)`);
}

/** Connects as the flags (and --config's connection keys) say, runs `use`, and closes the connection in any case. */
async function withConnection<T>(flags: DataStoreFlags, io: CliIO, role: string, use: (connection: NatsConnection) => Promise<T>): Promise<T> {
  const settings = await connectionSettings(flags, io);
  const connection = await connectCluster(connectionOptionsOf(settings, io.cwd, `downpour-${role}-${process.pid}`));
  try {
    return await use(connection);
  } finally {
    await connection.close().catch(() => {});
  }
}

/** The connection settings of the --config file (its other keys are ignored here), overridden by the flags given. */
async function connectionSettings(flags: DataStoreFlags, io: CliIO): Promise<ConnectionSettings> {
  const { config, json: _json, force: _force, ...given } = flags;
  const file = config === undefined ? {} : await readConfigFile(readablePath(io.cwd, config), config);
  const settings: Record<string, unknown> = {};
  for (const { key } of CONNECTION_SETTINGS) {
    const value = (given as Record<string, unknown>)[key] ?? (file as Record<string, unknown>)[key];
    if (value !== undefined) settings[key] = value;
  }
  return settings as ConnectionSettings;
}

const DATA_PUT_EXAMPLES = `
The file goes into the JetStream object store (bucket ${DATA_STORE_DEFAULTS.bucket}; the server needs JetStream: nats-server -js)
under <first 16 hex digits of its sha256>-<file name>; putting the same content again sends nothing.

Examples:
  downpour data put pima.csv --nats nats://10.0.0.5:4222     prints nats:<name> and the size
  downpour peer --data nats:<name> --nats nats://10.0.0.5:4222 ...   each peer fetches it into its cache
  downpour data ls --nats nats://10.0.0.5:4222                 the datasets stored`;

/** `data put` and `data ls`, with the connection flags and --config, --json. */
function registerDataStore(data: Command, io: CliIO): void {
  const put = data
    .command("put <file>")
    .description("publish a data file into the NATS object store; prints nats:<name>, which peers take as --data")
    .option("--force", "send the file even when the store already holds the same content")
    .addHelpText("after", DATA_PUT_EXAMPLES)
    .action(async (file: string, flags: DataStoreFlags) => {
      await runDataPut(file, flags, io);
    });
  const ls = data
    .command("ls")
    .description("list the datasets in the NATS object store")
    .action(async (flags: DataStoreFlags) => {
      await runDataLs(flags, io);
    });
  for (const command of [put, ls]) {
    command
      .option("--config <file.json>", "JSON file of settings; its connection keys (nats, creds, ...) are used, flags override them")
      .option("--json", "print JSON instead of text");
    for (const def of CONNECTION_SETTINGS) {
      const shown = def.key === "nats" ? CONNECTION_DEFAULTS.servers : def.shown;
      for (const option of flagOptions({ ...def, shown })) command.addOption(option);
    }
  }
}

/** Adds `data mnist`, `data where`, `data put` and `data ls` to the program. */
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
  registerDataStore(data, io);
  registerSynthCtr(data, io);
}
