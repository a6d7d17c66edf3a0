// `downpour ps --job ID --shard i --of S`: one parameter-server shard of an async (Downpour SGD) job. Started with
// the job's settings (the model is built from them, so its initial parameters and spec hash match the peers'), it
// holds its key range and the optimizer, applies every push once, answers pulls, and runs until Ctrl-C (SIGINT),
// then prints what it did (or writes it to --report).
import type { Command } from "commander";
import { Option } from "commander";
import { connectCluster } from "../../cluster/connection.js";
import { startDownpourShard } from "../../cluster/downpour-training.js";
import type { ShardRestore, ShardStats } from "../../cluster/ps-shard.js";
import { writeFileAtomic } from "../../node/files.js";
import { detectPlatform } from "../../runtime/platform.js";
import { TRAIN_DEFAULTS } from "../../train/options.js";
import { formatBytes } from "../../util/bytes.js";
import { createModel } from "../build-model.js";
import { checkJobSettings, connectionOptionsOf } from "../cluster-settings.js";
import { resolveSettings, type TrainFlags } from "../config.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { checkTrainOptions, trainOptionsOf } from "../train-options.js";
import { loadTrainingData } from "../training-data.js";
import { addTrainingFlags } from "./peer.js";
import { resolveStoredData } from "./stored-data.js";
import { shapeOf } from "./train.js";
import { openSnapshotStore } from "../../cluster/snapshot-store.js";

/** The flags of `downpour ps`: the job's settings, which shard, and where to write the report. */
export type PsFlags = TrainFlags & { shard?: number; of?: number; report?: string; untilStdinCloses?: boolean; restore?: boolean };

/** What a shard did, printed when it stops. */
export interface PsResult {
  job: string;
  shard: number;
  shards: number;
  stats: ShardStats;
  /** With --restore: the snapshot restored and the log replayed (ShardRestore). */
  restored?: ShardRestore;
  /** downpour cluster, after a restart: acknowledged updates the final version lacks (0 with durability log). */
  lost?: number;
}

/** Starts the shard and resolves once Ctrl-C stopped it (in-process callers pass `stop` instead). */
export async function runPs(flags: PsFlags, io: CliIO, stop?: Promise<void>): Promise<PsResult> {
  const { shard, of, report, untilStdinCloses, restore, ...trainFlags } = flags;
  const given = await resolveSettings(of === undefined ? trainFlags : { ...trainFlags, shards: of }, io.cwd);
  const job = checkJobSettings(given.settings, given.sources, "ps", given.settings.train?.batchSize ?? TRAIN_DEFAULTS.batchSize);
  if (shard === undefined) throw new CliError("downpour ps needs --shard <i>: which shard of the job this process serves");
  if (!Number.isInteger(shard) || shard < 0 || shard >= job.shards) throw new CliError(`--shard must be an integer in [0, ${job.shards - 1}] (--of ${job.shards}), got ${shard}`);
  const connection = await connectCluster(connectionOptionsOf(given.settings, io.cwd, `downpour-${job.job}-shard-${shard}`));
  try {
    const { settings, sources } = await resolveStoredData(given, connection, io);
    const options = trainOptionsOf(settings);
    checkTrainOptions(options, sources, (await detectPlatform()).hardwareConcurrency());
    const data = await loadTrainingData(settings, sources, { ...io, stderr: () => {} });
    const model = await createModel(settings, shapeOf(data), { ...options, threads: 0 }, sources);
    try {
      if (restore && job.snapshots === undefined) throw new CliError("--restore needs the shard's snapshots: --snapshots nats or a directory, not none");
      const snapshots = job.snapshots === undefined ? undefined : await openSnapshotStore(job.snapshots, job.job, connection).catch((error: Error) => {
        throw new CliError(`--snapshots ${job.snapshots}: ${error.message}${job.snapshots === "nats" ? " (the server needs JetStream; or give --snapshots DIR or none)" : ""}`, { cause: error });
      });
      const server = await startDownpourShard({
        job: job.job, shard, shards: job.shards, tasks: job.peers, model, data: data.train, split: settings.split,
        nFetch: job.nFetch, nPush: job.nPush, warmStart: job.warmStart, consistency: job.consistency, staleness: job.staleness, train: options, connection,
        onError: (error) => io.stderr(`downpour: warning: ${error.message}\n`),
        snapshots, snapshotEveryUpdates: job.snapshotEvery, resume: restore === true, durability: job.durability,
      });
      const info = server.info();
      const restored = server.restored;
      if (restored) io.stderr(`shard ${shard}: ${restoredText(restored)}\n`);
      io.stderr(`shard ${shard} of ${job.shards} of job ${job.job} ready: keys [${info.begin}, ${info.end}) of ${info.keys}, ${info.optimizer}; Ctrl-C stops it\n`);
      await (stop ?? (untilStdinCloses ? untilStdinEnds() : untilInterrupted(io)));
      const stats = server.stats;
      await server.close();
      const result: PsResult = { job: job.job, shard, shards: job.shards, stats, ...(restored ? { restored } : {}) };
      if (report !== undefined) await writeFileAtomic(report, `${JSON.stringify(result)}\n`);
      io.stdout(settings.json ? `${JSON.stringify(result, null, 2)}\n` : `${shardLine(result)}\n`);
      return result;
    } finally {
      model.dispose();
    }
  } finally {
    await connection.close().catch(() => {});
  }
}

/** "restored snapshot <name> (version 1,200, 3.2 s old), replayed 41 logged updates (2 already applied): version 1,241". */
function restoredText(r: ShardRestore): string {
  if (!r.from) return `no snapshot to restore: starting from the initial parameters${r.replayed ? `, replayed ${r.replayed} logged updates` : ""}`;
  const skipped = r.skipped.length ? `; skipped ${r.skipped.join(", ")} (corrupt or truncated)` : "";
  return `restored snapshot ${r.from} (version ${r.snapshotVersion.toLocaleString("en-US")}, ${(r.ageMs / 1000).toFixed(1)} s old), replayed ${r.replayed} logged updates (${r.replayDeduped} already applied): version ${r.version.toLocaleString("en-US")}${skipped}`;
}

/** Resolves when this process's stdin ends (how downpour cluster stops its shards: signals differ between runtimes). */
function untilStdinEnds(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.once("end", () => resolve());
    process.stdin.once("close", () => resolve());
    process.stdin.resume();
  });
}

/** Resolves at the next Ctrl-C (never, without a process to interrupt). */
function untilInterrupted(io: CliIO): Promise<void> {
  return new Promise((resolve) => io.interrupts?.catchNext(() => resolve()));
}

/** "shard 0 of 2: 4,080 updates (12 deduplicated), 3,100 pulls; 10.2 MB in, 11.0 MB out". */
export function shardLine(r: PsResult): string {
  const s = r.stats;
  const rate = s.updatesPerSecond > 0 ? ` (${Math.round(s.updatesPerSecond).toLocaleString("en-US")} updates/s)` : "";
  const restarted = r.restored ? `; restarted from ${r.restored.from || "no snapshot"}${r.lost === undefined ? "" : `, ${r.lost} acknowledged updates lost`}` : "";
  return `shard ${r.shard} of ${r.shards}: ${s.updates.toLocaleString("en-US")} updates${rate}, ${s.deduped} deduplicated, ${s.refused} refused, ${s.pulls.toLocaleString("en-US")} pulls; ${formatBytes(s.bytesIn)} in, ${formatBytes(s.bytesOut)} out${restarted}`;
}

/** Adds `ps` to the program. */
export function registerPs(program: Command, io: CliIO): void {
  const command = program
    .command("ps")
    .description("serve one parameter-server shard of an async (Downpour SGD) job until Ctrl-C; start it with the job's settings")
    .option("--config <file.json>", "JSON file of settings (train's and the cluster's, camelCase); flags override it")
    .addOption(new Option("--shard <i>", "which shard this process serves, in [0, shards)").argParser((v) => Number(v)).makeOptionMandatory())
    .addOption(new Option("--of <n>", "how many shards the job has (the same as --shards)").argParser((v) => Number(v)))
    .addOption(new Option("--report <file>", "write the shard's counters as JSON when it stops (used by downpour cluster)").hideHelp())
    .option("--restore", "start from this shard's latest complete snapshot (and replay the job's log with --durability log) instead of the initial parameters")
    .addOption(new Option("--until-stdin-closes", "stop when stdin closes instead of at Ctrl-C (used by downpour cluster)").hideHelp())
    .addHelpText("after", PS_EXAMPLES)
    .action(async (flags: PsFlags) => {
      await runPs(flags, io);
    });
  addTrainingFlags(command);
}

const PS_EXAMPLES = `
Examples (the shards first, then the peers, all with the same settings):
  downpour ps   --nats nats://10.0.0.5:4222 --job d1 --peers 4 --shard 0 --of 2 --optimizer adagrad --learning-rate 0.05
  downpour ps   --nats nats://10.0.0.5:4222 --job d1 --peers 4 --shard 1 --of 2 --optimizer adagrad --learning-rate 0.05
  downpour peer --nats nats://10.0.0.5:4222 --job d1 --peers 4 --mode async --shards 2 --optimizer adagrad --learning-rate 0.05`;
