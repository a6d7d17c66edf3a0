// `downpour cluster --peers N`: a whole BSP job on this machine. Checks the settings and the data once, starts a
// nats-server on a free loopback port (unless --nats names one), runs N `downpour peer` processes with the same
// settings (a config file it writes), shows peer 0's progress, and prints the summary plus one row per peer.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { connectCluster } from "../../cluster/connection.js";
import { parseStoredDataRef } from "../../cluster/data-store.js";
import { stalenessText } from "../../cluster/staleness.js";
import { NatsServerMissingError, type NatsServer, startNatsServer } from "../../cluster/nats-server.js";
import { writeFileAtomic } from "../../node/files.js";
import { detectPlatform } from "../../runtime/platform.js";
import { TRAIN_DEFAULTS } from "../../train/options.js";
import { checkModelSettings, ignoredDataSettings } from "../build-model.js";
import { type CheckedJob, checkJobSettings, connectionOptionsOf } from "../cluster-settings.js";
import { type ResolvedSettings, resolveSettings, type Sources, type TrainFlags } from "../config.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { checkOutputs, namedFile } from "../outputs.js";
import { FLAT_TRAIN_KEYS, type TrainSettings } from "../settings.js";
import { epochTable } from "../summary.js";
import { capThreads, checkTrainOptions, trainOptionsOf } from "../train-options.js";
import { loadTrainingData } from "../training-data.js";
import { addTrainingFlags, megabytes, type PeerResult, type PeerRow } from "./peer.js";
import { type PsResult, shardLine } from "./ps.js";
import { resolveStoredData } from "./stored-data.js";
import { openResume, resumedSettings } from "../checkpoints.js";
import { writeJobAuth } from "../../cluster/job-auth.js";
import { ignoredRunSettings, inputFiles, outputFiles, shortSummary, warn } from "./train.js";

/** What a cluster run produced: peer 0's result, and every peer's row. */
export interface ClusterResult extends Omit<PeerResult, "peer"> {
  rows: PeerRow[];
  /** The server the peers used. */
  nats: string;
  /** Async jobs: what each parameter-server shard did. */
  shards?: PsResult[];
}

/** One peer process's end. */
interface PeerExit {
  index: number;
  code: number | null;
  signal: string | null;
  stderr: string;
}

/** Runs the job; resolves once every peer has exited (peer 0 has written the model). */
/** The flags of `downpour cluster`: train's and the cluster's settings, and --restore (async jobs). */
export type ClusterFlags = TrainFlags & { restore?: boolean };

export async function runCluster(clusterFlags: ClusterFlags, io: CliIO): Promise<ClusterResult> {
  const { restore: restoreShards, ...flags } = clusterFlags;
  const given = await resolveSettings(flags, io.cwd);
  // With --resume (sync jobs), the data settings the file recorded complete the checks here, as each peer does.
  const resume = given.settings.mode === "async" ? undefined : await openResume(given.settings, given.sources, io.cwd);
  try {
    return await runClusterWith(flags, given, resume ? resumedSettings(given, resume, { ...io, stderr: () => {} }).settings : given.settings, io, restoreShards === true);
  } finally {
    resume?.model.dispose();
  }
}

/** runCluster with `checked`: the settings the checks see (with --resume, completed from the file). */
async function runClusterWith(flags: TrainFlags, { settings, sources }: ResolvedSettings, checked: TrainSettings, io: CliIO, restoreShards: boolean): Promise<ClusterResult> {
  const job = checkJobSettings(settings, sources, "cluster", settings.train?.batchSize ?? TRAIN_DEFAULTS.batchSize);
  if (restoreShards && (job.mode !== "async" || job.snapshots === undefined)) {
    throw new CliError("--restore is for --mode async jobs with snapshots (--snapshots DIR, or nats with --nats: the embedded server's bucket goes with it)");
  }
  if (restoreShards && settings.job === undefined) throw new CliError("--restore needs --job <id>: the id of the job whose shards' snapshots to go on from");
  if (restoreShards && job.snapshots === "nats" && settings.nats === undefined) {
    throw new CliError("--restore with the embedded nats-server finds no snapshots (its store is new each run): give --snapshots DIR, or --nats URL of the server that holds them");
  }
  const cores = (await detectPlatform()).hardwareConcurrency();
  const threads = settings.threads ?? settings.train?.threads ?? Math.max(1, Math.floor(cores / job.peers));
  const asked = { ...trainOptionsOf(settings), threads };
  const capped = capThreads(asked, checkTrainOptions(asked, sources, cores), cores, settings.oversubscribe === true, sources);
  checkModelSettings(settings, sources);
  warn(io, [capped.warning, ...ignoredRunSettings(settings, sources, capped.resolved)]);
  const metricsFile = settings.metrics === undefined ? undefined : resolve(io.cwd, settings.metrics);
  const metricsOutput = metricsFile ? [namedFile("--metrics", sources.metrics, settings.metrics!, metricsFile)] : [];
  await checkOutputs([...outputFiles(settings, sources, io.cwd), ...metricsOutput], inputFiles(flags.config, settings, sources, io.cwd));
  const data = await loadTrainingData(await localData(checked, sources, io), sources, { ...io, stderr: () => {} }); // fails here, once, on bad data; fetches MNIST once
  warn(io, [ignoredDataSettings(data.source, sources)]);
  if (settings.isolate === true && settings.nats !== undefined) {
    throw new CliError(`${sources.isolate ?? "--isolate"} is for the embedded nats-server; with --nats, isolate jobs in that server's own configuration (accounts and permissions)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "downpour-cluster-"));
  const jobId = settings.job ?? `cluster-${Date.now().toString(36)}-${process.pid}`;
  // The job's own account and nkey user on the embedded server: its clients may use downpour.<job>.> and its buckets only.
  const auth = settings.nats === undefined && settings.isolate !== false ? await writeJobAuth(join(dir, "auth"), [{ job: jobId, groups: job.groups ?? 0 }]) : undefined;
  const server = settings.nats === undefined ? await startServer(auth?.configFile) : undefined;
  try {
    const nats = server?.url ?? settings.nats!;
    const config = join(dir, "job.json");
    const credentials = auth ? { nkey: auth.jobs.get(jobId)!.seedFile } : {};
    await writeFileAtomic(config, JSON.stringify(peerSettings(settings, sources, { nats, job: jobId, threads, ...credentials })));
    io.stderr(`cluster job ${jobId}: ${job.peers} peer processes of ${threads} thread${threads === 1 ? "" : "s"}${describeJob(job)} over ${server ? `a nats-server started on ${nats}` : nats}\n`);
    const shards = job.mode === "async" ? await startShards(job.shards, config, dir, io, job.snapshots === undefined ? 0 : SHARD_RESTARTS, restoreShards) : [];
    let exits: PeerExit[];
    try {
      exits = await Promise.all(Array.from({ length: job.peers }, (_, i) => runPeerProcess(i, config, join(dir, `peer-${i}.json`), io)));
    } finally {
      for (const shard of shards) shard.stop();
    }
    const shardExits = await Promise.all(shards.map((shard) => shard.exit));
    checkExits(exits);
    checkExits(shardExits, "shard");
    const results = exits.map((e) => JSON.parse(readFileSync(join(dir, `peer-${e.index}.json`), "utf8")) as PeerResult);
    const pushes = results.reduce((n, r) => n + (r.peer.pushes ?? 0), 0);
    const shardRows = shardExits.map((e) => withLost(JSON.parse(readFileSync(join(dir, `shard-${e.index}.json`), "utf8")) as PsResult, pushes));
    const first = results[0]!;
    const { peer: _peer, ...rest } = first;
    const result: ClusterResult = { ...rest, rows: results.map((r) => r.peer), nats, ...(shardRows.length ? { shards: shardRows } : {}) };
    if (metricsFile) {
      await writeFileAtomic(metricsFile, `${JSON.stringify(result, null, 2)}\n`);
      io.stderr(`metrics written to ${metricsFile}\n`);
    }
    const histograms = result.rows.flatMap((r) => [
      ...(r.stalenessHistogram ? [`staleness at each push, peer ${r.index} (updates: pushes): ${stalenessText(r.stalenessHistogram)}`] : []),
      ...(r.queue ? [`portion queue (peer ${r.index}): ${r.queue.leased} leases over ${r.queue.epochs} epochs, ${r.queue.backupsIssued} backups (${r.queue.backupsWon} finished first), ${r.queue.duplicates} duplicate results dropped, ${r.queue.expired} leases expired`] : []),
      ...(r.clockStaleness ? [`${r.consistency} clock staleness at each read, peer ${r.index} (bound ${r.bound}, max ${r.clockStaleness.max}; clocks: reads): ${stalenessText(r.clockStaleness)}`] : []),
    ]);
    const shardText = shardRows.length ? `\n${[...shardRows.map(shardLine), ...histograms].join("\n")}\n` : "";
    io.stdout(settings.json ? `${JSON.stringify(result, null, 2)}\n` : `${epochTable(first.reports, shortSummary(settings, io))}\n\n${peerTable(result.rows)}\n${shardText}`);
    return result;
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The settings with nats:<name> data fetched into the cache (from the --nats server: an embedded one holds none). */
async function localData(settings: TrainSettings, sources: Sources, io: CliIO): Promise<TrainSettings> {
  const stored = [settings.data, settings.testData].some((d) => d !== undefined && parseStoredDataRef(d) !== undefined);
  if (!stored) return settings;
  if (settings.nats === undefined) {
    throw new CliError(`${sources.data ?? "--data"} nats:...: a dataset in the NATS object store needs --nats <url> of the server holding it (the server downpour cluster starts is empty)`);
  }
  const connection = await connectCluster(connectionOptionsOf(settings, io.cwd));
  try {
    return (await resolveStoredData({ settings, sources }, connection, io)).settings;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function startServer(include: string | undefined): Promise<NatsServer> {
  try {
    return await startNatsServer({ serverName: `downpour-cluster-${process.pid}`, ...(include ? { include } : {}) });
  } catch (error) {
    if (error instanceof NatsServerMissingError) throw new CliError(`${error.message}; or pass --nats <url> of a running server`, { cause: error });
    throw new CliError(`could not start nats-server: ${(error as Error).message}`, { cause: error });
  }
}

/** Every peer's settings: the run's, with the server, the job, the threads; no --json or --summary (the cluster prints). */
function peerSettings(settings: TrainSettings, sources: Sources, job: { nats: string; job: string; threads: number; nkey?: string }): Partial<TrainSettings> {
  const given = Object.fromEntries(Object.entries(settings).filter(([key]) => sources[key] !== undefined || key === "train")) as Partial<TrainSettings>;
  const { json: _json, summary: _summary, quiet: _quiet, metrics: _metrics, ...rest } = given;
  // A flag that overrode a key of the config's "train" object wins: the peers' config holds it once.
  const train: Record<string, unknown> = { ...rest.train };
  for (const key of [...FLAT_TRAIN_KEYS, "threads"]) if ((rest as Record<string, unknown>)[key] !== undefined || key === "threads") delete train[key];
  if (rest.convergenceWindow !== undefined && train.convergence) train.convergence = { ...(train.convergence as object), window: undefined };
  return { ...rest, ...job, ...(rest.train ? { train: JSON.parse(JSON.stringify(train)) } : {}) };
}

/** The argv that runs this CLI on the current runtime (Deno needs `run -A`). */
export function cliCommand(): string[] {
  const main = fileURLToPath(new URL("../main.js", import.meta.url));
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  return deno ? [process.execPath, "run", "-A", main] : [process.execPath, main];
}

/** Runs `downpour peer` as peer `index`; peer 0's stderr goes to io.stderr as it comes, the others' is kept for errors. */
function runPeerProcess(index: number, config: string, report: string, io: CliIO): Promise<PeerExit> {
  const [command, ...prefix] = cliCommand();
  const args = [...prefix, "peer", "--config", config, "--index", String(index), "--name", `peer-${index}`, "--report", report, "--no-warnings"];
  if (index > 0) args.push("--no-save", "--no-curves", "--quiet");
  else if (!io.terminal) args.push("--quiet");
  return new Promise((resolve) => {
    const child = spawn(command!, args, { cwd: io.cwd, env: { ...process.env, ...io.env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (text: string) => {
      stderr += text;
      if (index === 0) io.stderr(text);
    });
    child.once("error", (error) => resolve({ index, code: 1, signal: null, stderr: `${stderr}downpour: ${error.message}\n` }));
    child.once("close", (code, signal) => resolve({ index, code, signal, stderr }));
  });
}

/**
 * A restarted shard's acknowledged updates that its final version lacks (durability "snapshot" loses those since the
 * last snapshot; "log" none): the pushes the tasks saw acknowledged, less the duplicates this incarnation dropped.
 */
function withLost(row: PsResult, pushes: number): PsResult {
  if (!row.restored) return row;
  return { ...row, lost: Math.max(0, pushes - row.stats.deduped - row.stats.updates) };
}

/** A shard process: ready once it serves; stop() closes its stdin (it then reports and exits). */
interface ShardProcess {
  ready: Promise<void>;
  exit: Promise<PeerExit>;
  stop(): void;
}

/** Restarts of a shard process that ends on its own while the job runs (only when the shards snapshot themselves). */
const SHARD_RESTARTS = 5;
/** The wait before restart n (1, 2, ...): 0.5, 1, 2, 4, 8 s. */
const restartDelayMs = (n: number): number => Math.min(8_000, 250 * 2 ** n);

/**
 * Starts the job's shards and resolves once every one serves; a shard that fails first fails the run, naming it. A
 * shard that ends on its own later is started again from its latest snapshot (--restore), up to `restarts` times,
 * after a growing wait; its clients retry their requests meanwhile.
 */
async function startShards(n: number, config: string, dir: string, io: CliIO, restarts: number, restore: boolean): Promise<ShardProcess[]> {
  const shards = Array.from({ length: n }, (_, i) => superviseShard(i, config, join(dir, `shard-${i}.json`), io, restarts, restore));
  try {
    await Promise.all(shards.map((s) => s.ready));
  } catch (error) {
    for (const shard of shards) shard.stop();
    const exits = await Promise.all(shards.map((s) => s.exit));
    checkExits(exits, "shard");
    throw error;
  }
  return shards;
}

/** A shard process that is started again (see startShards) when it ends while the job runs. */
function superviseShard(index: number, config: string, report: string, io: CliIO, restarts: number, restore: boolean): ShardProcess {
  let stopping = false;
  let current = runShardProcess(index, config, report, io, restore);
  const first = current;
  const exit = (async (): Promise<PeerExit> => {
    for (let attempt = 1; ; attempt++) {
      const ended = await current.exit;
      const ready = await current.ready.then(() => true, () => false);
      if (stopping || !ready || attempt > restarts) return ended;
      const delay = restartDelayMs(attempt);
      io.stderr(`downpour: warning: shard ${index} ended (${ended.signal ?? `exit ${ended.code}`}); starting it again from its latest snapshot in ${delay / 1000} s (restart ${attempt} of ${restarts})\n`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (stopping) return ended;
      current = runShardProcess(index, config, report, io, true);
    }
  })();
  return { ready: first.ready, exit, stop: () => {
    stopping = true;
    current.stop();
  } };
}

function runShardProcess(index: number, config: string, report: string, io: CliIO, restore: boolean): ShardProcess {
  const [command, ...prefix] = cliCommand();
  const args = ["ps", "--config", config, "--shard", String(index), "--report", report, "--until-stdin-closes", ...(restore ? ["--restore"] : [])];
  const child = spawn(command!, [...prefix, ...args], {
    cwd: io.cwd, env: { ...process.env, ...io.env }, stdio: ["pipe", "ignore", "pipe"],
  });
  child.stdin!.on("error", () => {}); // a shard that already exited closed its end
  let stderr = "";
  let markReady: () => void = () => {};
  let markFailed: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    stderr += text;
    if (/ ready: keys /.test(stderr)) markReady();
  });
  const exit = new Promise<PeerExit>((resolve) => {
    child.once("error", (error) => resolve({ index, code: 1, signal: null, stderr: `${stderr}downpour: ${error.message}\n` }));
    child.once("close", (code, signal) => resolve({ index, code, signal, stderr }));
  });
  void exit.then((e) => markFailed(new CliError(`shard ${index} ended before serving (${e.signal ?? `exit ${e.code}`})`)));
  return {
    ready,
    exit,
    stop: () => {
      child.stdin!.end();
    },
  };
}

/** Throws naming every peer (or shard) that failed, with its own error line. */
function checkExits(exits: PeerExit[], what = "peer"): void {
  const failed = exits.filter((e) => e.code !== 0);
  if (failed.length === 0) return;
  const lines = failed.map((e) => {
    const last = e.stderr.split("\n").filter((l) => l.startsWith("downpour: ") && !l.startsWith("downpour: warning:")).pop();
    const how = e.signal ? `killed by ${e.signal}` : `exit ${e.code}`;
    return `${what} ${e.index} (${how})${last ? `: ${last.slice("downpour: ".length)}` : ""}`;
  });
  throw new CliError(`the cluster job failed:\n  ${lines.join("\n  ")}`);
}

function describeJob(job: CheckedJob): string {
  const groups = job.groups === undefined ? "" : ` in ${job.groups} task group${job.groups === 1 ? "" : "s"}`;
  return job.mode === "async" ? `, async${groups} against ${job.shards} parameter-server shard process${job.shards === 1 ? "" : "es"}` : "";
}

/** The per-peer table: samples/s, bytes, then supersteps and time waiting and combining (sync) or pushes, pulls,
 *  the last pull's staleness in updates and each worker thread's idle seconds (async). */
export function peerTable(rows: readonly PeerRow[]): string {
  const async = rows.some((r) => r.pushes !== undefined);
  const grouped = rows.some((r) => r.group !== undefined);
  const units = rows.some((r) => r.units !== undefined);
  const header = ["peer", "name", ...(grouped ? ["group"] : []), "samples/s", "sent", "received", ...(async ? ["pushes", "pulls", "max staleness", "idle s"] : ["supersteps", "waiting s", "combining s"]), ...(units ? ["units (backups)"] : [])];
  const body = rows.map((r) => [
    String(r.index), r.name, ...(grouped ? [String(r.group ?? "-")] : []), Math.round(r.samplesPerSecond).toLocaleString("en-US"), megabytes(r.bytesSent), megabytes(r.bytesReceived),
    ...(async ? [String(r.pushes ?? 0), String(r.pulls ?? 0), String(r.staleness ?? 0), (r.idleSeconds ?? []).map((s) => s.toFixed(1)).join(" / ") || "-"] : [String(r.supersteps), r.waitSeconds.toFixed(1), r.combineSeconds.toFixed(1)]),
    ...(units ? [r.units ? `${r.units.trained} (${r.units.backups})` : "-"] : []),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c < (grouped ? 3 : 2) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd();
  return [line(header), ...body.map(line)].join("\n");
}

/** Adds `cluster` to the program. */
export function registerCluster(program: Command, io: CliIO): void {
  const command = program
    .command("cluster")
    .description("train one job with N peer processes on this machine over NATS (a nats-server is started unless --nats is given)")
    .option("--config <file.json>", "JSON file of settings (train's and the cluster's, camelCase); flags override it")
    .option("--restore", "async: start every shard from its latest snapshot (and log) in --snapshots DIR or the --nats server's bucket, to go on with a job that stopped")
    .addHelpText("after", CLUSTER_EXAMPLES)
    .action(async (flags: ClusterFlags) => {
      await runCluster(flags, io);
    });
  addTrainingFlags(command);
}

const CLUSTER_EXAMPLES = `
Examples:
  downpour cluster --peers 2 --epochs 5                       MNIST with 2 peer processes, one thread each here
  downpour cluster --peers 3 --data pima.csv --model logistic --batch-size 63 --combine master
  downpour cluster --peers 2 --nats nats://127.0.0.1:4222     use a running server instead of starting one`;
