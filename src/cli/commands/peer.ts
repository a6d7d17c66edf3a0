// `downpour peer`: one peer of a BSP training job over NATS. Every peer of the job is started with the same
// settings (a peer with other ones is refused by name); each reads the whole data set and trains on its own split
// with all of its cores, combining every mini-batch's gradient with the others'. Peer 0 writes the model and the
// curves; every peer prints the summary and its own row (samples/s, bytes sent, time waiting).
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Command, Option } from "commander";
import { connectCluster } from "../../cluster/connection.js";
import type { ExchangeStats } from "../../cluster/gradient-exchange.js";
import { trainDownpourGroups } from "../../cluster/downpour-groups.js";
import { trainDownpourPortions } from "../../cluster/downpour-portions.js";
import type { PortionCounters } from "../../cluster/portion-queue.js";
import { type DownpourResult, trainDownpour } from "../../cluster/downpour-training.js";
import type { StalenessSummary } from "../../cluster/staleness.js";
import { trainPeer } from "../../cluster/peer-training.js";
import { writeFileAtomic } from "../../node/files.js";
import { detectPlatform } from "../../runtime/platform.js";
import { TRAIN_DEFAULTS } from "../../train/options.js";
import { formatBytes } from "../../util/bytes.js";
import type { EpochReport } from "../../train/trainer.js";
import { asMemoryLimitAdvice, checkModelSettings, createModel, ignoredDataSettings } from "../build-model.js";
import type { Model } from "../../api/models.js";
import type { TrainProgress } from "../../train/trainer.js";
import {
  checkKeeping, checkResume, openResume, type Resume, resumedData, resumedModel, resumedOptions, resumedSettings, resumeLine, type RunPlan, runPlan,
} from "../checkpoints.js";
import { checkJobSettings, connectionOptionsOf, type CheckedJob } from "../cluster-settings.js";
import { saveTrainedModel } from "../model-file.js";
import { resolveSettings, type ResolvedSettings, type TrainFlags } from "../config.js";
import type { CliIO } from "../io.js";
import { checkOutputs } from "../outputs.js";
import { epochProgress } from "../progress.js";
import { SETTINGS } from "../settings.js";
import { epochTable } from "../summary.js";
import { asCliTrainingError, capThreads, checkTrainOptions, trainOptionsOf } from "../train-options.js";
import { checkTrainingTargets, loadTrainingData } from "../training-data.js";
import { describeRun, flagOptions, ignoredRunSettings, inputFiles, outputFiles, shapeOf, shortSummary, warn, writeOutputs } from "./train.js";
import { resolveStoredData } from "./stored-data.js";

/** The flags of `downpour peer`: train's, the cluster's, the report file `downpour cluster` reads, and whether to
 *  warn about ignored settings (`downpour cluster` warns once itself). */
export type PeerFlags = TrainFlags & { report?: string; warnings?: boolean };

/** One peer's own figures. */
export interface PeerRow {
  index: number;
  name: string;
  /** Rows of its split trained per second, averaged over the epochs. */
  samplesPerSecond: number;
  supersteps: number;
  bytesSent: number;
  bytesReceived: number;
  /** Time inside the barrier (waiting for the other peers and the wire), in seconds. */
  waitSeconds: number;
  /** Time encoding and reducing gradients, in seconds. */
  combineSeconds: number;
  /** Async: pushes and pulls this task's workers made; the most updates the shards were ahead of its last pull at a
   *  push, and the histogram of that at every push. */
  pushes?: number;
  pulls?: number;
  staleness?: number;
  stalenessHistogram?: StalenessSummary;
  /** ssp and bsp: the bound, and at every read the reader's clock minus the slowest worker's. */
  consistency?: string;
  bound?: number;
  clockStaleness?: StalenessSummary;
  /** Async with --groups: the peer's task group and the group's size. */
  group?: number;
  groupSize?: number;
  /** Async with --portions: units this peer trained (backups among them, first completions), and peer 0's view of the
   *  queue (units leased, backups issued and won, duplicates dropped). */
  units?: { trained: number; backups: number; first: number };
  queue?: PortionCounters;
  /** Async: per worker thread, the seconds it was blocked on its pushes and pulls, over every epoch. */
  idleSeconds?: number[];
}

/** What a peer run produced. */
export interface PeerResult {
  job: string;
  peers: number;
  peer: PeerRow;
  reports: EpochReport[];
  modelFile?: string;
  curvesFile?: string;
}

/** Joins the job and trains this peer's split; resolves after the job's last epoch (peer 0 has then written the model). */
export async function runPeer(flags: PeerFlags, io: CliIO): Promise<PeerResult> {
  const { report, warnings, ...trainFlags } = flags;
  const given = await resolveSettings(trainFlags, io.cwd);
  const job = checkJobSettings(given.settings, given.sources, "peer", given.settings.train?.batchSize ?? TRAIN_DEFAULTS.batchSize);
  const connection = await connectCluster(connectionOptionsOf(given.settings, io.cwd, peerName(given)));
  try {
    const result = await trainAsPeer(trainFlags, await resolveStoredData(given, connection, io), job, connection, io, warnings !== false);
    const file = report ?? given.settings.metrics;
    if (file !== undefined) await writeFileAtomic(resolve(io.cwd, file), `${JSON.stringify(result)}\n`);
    return result;
  } finally {
    await connection.close().catch(() => {});
  }
}

function peerName({ settings }: ResolvedSettings): string {
  return settings.name ?? `${hostname()}-${process.pid}`;
}

async function trainAsPeer(flags: TrainFlags, given: ResolvedSettings, job: CheckedJob, connection: NatsConnection, io: CliIO, warnings: boolean): Promise<PeerResult> {
  const resume = job.mode === "sync" ? await openResume(given.settings, given.sources, io.cwd) : undefined;
  try {
    return await trainResumedAsPeer(flags, resume ? resumedSettings(given, resume, io) : given, resume, job, connection, io, warnings);
  } finally {
    resume?.model.dispose();
  }
}

/** trainAsPeer once the settings are merged (with --resume, completed from the file, as train does). */
async function trainResumedAsPeer(
  flags: TrainFlags,
  { settings, sources }: ResolvedSettings,
  resume: Resume | undefined,
  job: CheckedJob,
  connection: NatsConnection,
  io: CliIO,
  warnings: boolean,
): Promise<PeerResult> {
  const say = (texts: readonly (string | undefined)[]) => warnings && warn(io, texts);
  const cores = (await detectPlatform()).hardwareConcurrency();
  const asked = resume ? resumedOptions(resume, trainOptionsOf(settings)) : trainOptionsOf(settings);
  const { options, resolved, warning } = capThreads(asked, checkTrainOptions(asked, sources, cores), cores, settings.oversubscribe === true, sources);
  checkModelSettings(settings, sources);
  checkKeeping(settings, sources, io);
  const remaining = resume ? checkResume(resume, resolved, sources) : resolved.epochs;
  say([warning, ...ignoredRunSettings(settings, sources, resolved)]);
  await checkOutputs(outputFiles(settings, sources, io.cwd), inputFiles(flags.config, settings, sources, io.cwd));
  const loaded = await loadTrainingData(settings, sources, io);
  const data = resume ? resumedData(resume, loaded, sources, io) : loaded;
  say([ignoredDataSettings(data.source, sources)]);
  const model = resume ? resumedModel(resume, options) : await createModel(settings, shapeOf(data), options, sources);
  try {
    checkTrainingTargets(model.network.spec, data, settings, sources);
    const how = job.mode === "async" ? `async against ${job.shards} shard${job.shards === 1 ? "" : "s"}` : (settings.combine ?? "allreduce");
    io.stderr(`${describeRun(model, data, resolved)}; peer of job ${job.job} (${job.peers} peers), ${how}\n`);
    if (resume) io.stderr(`${resumeLine(resume, resolved.epochs)}\n`);
    const done = resume?.epochsDone ?? 0;
    const progress = epochProgress(io, resolved.epochs, settings.quiet);
    const plan = runPlan(settings, data, resolved.epochs, done, io.cwd);
    const onEpoch = async (report: EpochReport) => {
      const numbered = { ...report, epoch: report.epoch + done };
      progress.onEpoch(numbered);
      await checkpointAfter(model, plan, numbered, io);
    };
    const common = {
      job: job.job,
      index: job.index,
      name: peerName({ settings, sources }),
      connection,
      model,
      data: data.train,
      split: settings.split,
      train: { ...options, epochs: remaining },
      hooks: { validation: data.test, onProgress: (p: TrainProgress) => progress.onProgress({ ...p, epoch: p.epoch + done }), onEpoch },
      bsp: { joinTimeoutMs: job.joinTimeoutMs, peerTimeoutMs: job.peerTimeoutMs, onError: (error: Error) => io.stderr(`downpour: warning: ${error.message}\n`) },
    };
    let trained: { reports: EpochReport[]; row: PeerRow };
    try {
      trained = job.mode === "async" ? await trainAsync(common, job) : await trainSync(common, job, settings);
    } finally {
      progress.stop();
    }
    const reports = trained.reports.map((r) => ({ ...r, epoch: r.epoch + done }));
    const { row } = trained;
    const files = row.index === 0 ? await writeOutputs(model, reports, data, settings, io) : {};
    const output: PeerResult = { job: job.job, peers: job.peers, peer: row, reports, ...files };
    io.stdout(settings.json ? `${JSON.stringify(output, null, 2)}\n` : `${epochTable(reports, shortSummary(settings, io))}\n${peerLine(row)}\n`);
    return output;
  } catch (error) {
    throw asMemoryLimitAdvice(asCliTrainingError(error, sources), settings, shapeOf(data), sources, true);
  } finally {
    model.dispose();
  }
}

/**
 * Sync jobs (--checkpoint-every N): every peer writes the checkpoint (model file with optimizer state, atomically)
 * after every N-th epoch; the peers hold bit-identical parameters and state, so on one machine they write the same
 * bytes and on several each machine keeps its own copy. A checkpoint that cannot be written is warned about.
 */
async function checkpointAfter(model: Model, plan: RunPlan, report: EpochReport, io: CliIO): Promise<void> {
  const every = plan.checkpointEvery;
  if (every === undefined || report.epoch % every !== 0 || report.stop === "aborted") return;
  try {
    await saveTrainedModel(model, plan.checkpoint, plan.preprocess);
    io.stderr(`checkpoint after epoch ${report.epoch} written to ${plan.checkpoint}\n`);
  } catch (error) {
    io.stderr(`downpour: warning: cannot write the checkpoint of epoch ${report.epoch}: ${(error as Error).message}; training goes on\n`);
  }
}

/** What trainPeer and trainDownpour take alike. */
type CommonOptions = Pick<Parameters<typeof trainPeer>[0], "job" | "index" | "name" | "model" | "data" | "split" | "train" | "hooks" | "bsp"> & { connection: NatsConnection };

/** BSP: every mini-batch's gradient combined across the peers (or the models averaged every --sync-every). */
async function trainSync(common: CommonOptions, job: CheckedJob, settings: ResolvedSettings["settings"]): Promise<{ reports: EpochReport[]; row: PeerRow }> {
  const result = await trainPeer({ ...common, peers: job.peers, combine: settings.combine, gradDtype: settings.gradDtype, syncEvery: job.syncEvery });
  return { reports: result.reports, row: syncRow(result.peer, result.reports, result.stats) };
}

/** How long a task's requests wait for a shard that is not serving (being restarted from its snapshot), in ms. */
const SHARD_RESTART_WAIT_MS = 60_000;

/** Downpour SGD: the worker threads pull from and push to the job's shards. */
async function trainAsync(common: CommonOptions, job: CheckedJob): Promise<{ reports: EpochReport[]; row: PeerRow }> {
  // With snapshots, a shard that died is started again (downpour cluster, or by hand): its clients wait for it.
  const client = job.snapshots === undefined ? undefined : { shardWaitMs: SHARD_RESTART_WAIT_MS };
  const options = {
    ...common, tasks: job.peers, shards: job.shards, nFetch: job.nFetch, nPush: job.nPush, warmStart: job.warmStart, consistency: job.consistency, staleness: job.staleness, client,
  };
  if (job.portions !== undefined) return trainPortions(options, job.portions);
  const grouped = job.groups === undefined ? undefined : await trainDownpourGroups({ ...options, groups: job.groups });
  const result = grouped ?? (await trainDownpour(options));
  const group = grouped ? { group: grouped.group.index, groupSize: grouped.group.size } : {};
  const bounded = result.bound === undefined ? {} : { consistency: result.consistency, bound: result.bound, clockStaleness: result.clockStaleness };
  return { reports: result.reports, row: { ...asyncRow(result), ...group, ...bounded } };
}

/** Downpour with --portions: units from peer 0's queue, with backups near each epoch's end. */
async function trainPortions(options: Parameters<typeof trainDownpour>[0], unitRows: number): Promise<{ reports: EpochReport[]; row: PeerRow }> {
  const { split: _split, ...rest } = options;
  const result = await trainDownpourPortions({ ...rest, portions: { unitRows } });
  const queue = result.task.index === 0 ? { queue: result.queue } : {};
  return { reports: result.reports, row: { ...asyncRow(result), units: result.units, ...queue } };
}

/** The row of an async task: its rate, the client's bytes, pushes and pulls, staleness and idle time. */
function asyncRow(result: Pick<DownpourResult, "task" | "client" | "staleness"> & { reports: EpochReport[] }): PeerRow {
  return {
    ...result.task,
    samplesPerSecond: meanRate(result.reports),
    supersteps: 0,
    bytesSent: result.client.bytesOut,
    bytesReceived: result.client.bytesIn,
    waitSeconds: 0,
    combineSeconds: 0,
    pushes: result.client.pushes,
    pulls: result.client.pulls,
    staleness: result.staleness.max,
    stalenessHistogram: result.staleness,
    idleSeconds: idleOf(result.reports),
  };
}

/** Per worker thread: its idle seconds summed over the epochs. */
function idleOf(reports: EpochReport[]): number[] {
  const sum: number[] = [];
  for (const r of reports) r.idleSeconds?.forEach((s, w) => {
    sum[w] = (sum[w] ?? 0) + s;
  });
  return sum;
}

function meanRate(reports: EpochReport[]): number {
  const rates = reports.map((r) => r.samplesPerSecond).filter(Number.isFinite);
  return rates.length === 0 ? 0 : rates.reduce((a, b) => a + b, 0) / rates.length;
}

function syncRow(peer: { index: number; name: string }, reports: EpochReport[], stats: ExchangeStats): PeerRow {
  return {
    ...peer,
    samplesPerSecond: meanRate(reports),
    supersteps: stats.supersteps,
    bytesSent: stats.bytesSent,
    bytesReceived: stats.bytesReceived,
    waitSeconds: stats.waitMs / 1000,
    combineSeconds: (stats.encodeMs + stats.reduceMs) / 1000,
  };
}

/** "peer 0 (a): 12,345 samples/s, 4.2 MB sent in 938 supersteps, 1.2 s waiting, 0.3 s combining". */
export function peerLine(row: PeerRow): string {
  if (row.pushes !== undefined) {
    return `peer ${row.index} (${row.name}): ${Math.round(row.samplesPerSecond).toLocaleString("en-US")} samples/s, ${row.pushes} pushes and ${row.pulls} pulls, ${megabytes(row.bytesSent)} sent, ${megabytes(row.bytesReceived)} received`;
  }
  return `peer ${row.index} (${row.name}): ${Math.round(row.samplesPerSecond).toLocaleString("en-US")} samples/s, ${megabytes(row.bytesSent)} sent in ${row.supersteps} supersteps, ${row.waitSeconds.toFixed(1)} s waiting, ${row.combineSeconds.toFixed(1)} s combining`;
}

export function megabytes(bytes: number): string {
  return formatBytes(bytes);
}

/** The flags of every training setting (train's and the cluster's) on `command`. */
export function addTrainingFlags(command: Command): void {
  for (const def of SETTINGS.filter((s) => s.flag)) for (const option of flagOptions(def)) command.addOption(option);
}

/** Adds `peer` to the program. */
export function registerPeer(program: Command, io: CliIO): void {
  const command = program
    .command("peer")
    .description("join a training job over NATS as one of its peers (start every peer with the same settings)")
    .option("--config <file.json>", "JSON file of settings (train's and the cluster's, camelCase); flags override it")
    .addOption(new Option("--report <file>", "write this peer's result as JSON (used by downpour cluster)").hideHelp())
    .addOption(new Option("--no-warnings", "no warnings about ignored settings (downpour cluster gives them once)").hideHelp())
    .addHelpText("after", PEER_EXAMPLES)
    .action(async (flags: PeerFlags) => {
      await runPeer(flags, io);
    });
  addTrainingFlags(command);
}

const PEER_EXAMPLES = `
Examples (run one command per machine; every peer with the same settings):
  downpour peer --nats nats://10.0.0.5:4222 --job mnist-1 --peers 3 --epochs 5
  downpour peer --nats tls://nats.example:4222 --tls-ca ca.pem --creds me.creds --job j --peers 2 --data nats:<name>
                                                    data published once with: downpour data put FILE --nats URL`;
