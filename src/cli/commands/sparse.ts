// `downpour sparse shard | task | eval | cluster`: Downpour SGD for sparse-input models larger than one machine
// (issue 12). A shard serves its rows of the sparse layer (by hash of the feature id) and its range of the dense
// layers until stopped; a task trains its rows of a libsvm file (r % tasks == task, streamed) pulling only the rows
// its portions touch; eval gives the held-out log-loss of the shards' parameters; save writes them as a model file
// (when the sparse layer fits one machine); cluster runs a whole job here
// (sparse-cluster.ts). Every process takes the same job flags (sparse-job.ts).
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectCluster } from "../../cluster/connection.js";
import { DirectorySnapshotStore } from "../../cluster/snapshot-store.js";
import { MODEL_CLASSES } from "../../api/models.js";
import { saveModel } from "../../api/persist.js";
import { Kernels } from "../../core/kernels.js";
import { evaluateSparseDownpour, SPARSE_DOWNPOUR_DEFAULTS, sparseNetworkFromShards, type SparseDownpourResult, type SparseEvaluation, startSparseJobShard, sparseJobSpec, trainSparseDownpour } from "../../cluster/sparse-downpour.js";
import type { SparseRowStats } from "../../cluster/sparse-shard.js";
import { decodeRowSnapshot, encodeRowSnapshot } from "../../cluster/sparse-snapshot.js";
import { writeFileAtomic } from "../../node/files.js";
import { formatBytes } from "../../util/bytes.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { checkOutputs, namedFile } from "../outputs.js";
import { addSparseJobFlags, integerIn, type SparseJobFlags, sparseJobOf, taskSource } from "../sparse-job.js";
import { registerSparseCluster } from "./sparse-cluster.js";

/** Peak resident memory of this process, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

async function connectTo(flags: SparseJobFlags, name: string): Promise<NatsConnection> {
  if (flags.nats === undefined) throw new CliError("--nats <url> is needed: the NATS server of the job (downpour sparse cluster starts one itself)");
  return connectCluster({ servers: flags.nats, name });
}

async function writeReport(path: string | undefined, value: unknown): Promise<void> {
  if (path !== undefined) await writeFileAtomic(path, `${JSON.stringify(value)}\n`);
}

/** The flags of `sparse shard`. */
export type SparseShardFlags = SparseJobFlags & { shard: number; snapshots?: string; restore?: boolean; report?: string; untilStdinCloses?: boolean };

/** What a shard did. */
export interface SparseShardReport {
  role: "shard";
  shard: number;
  rows: SparseRowStats;
  denseUpdates: number;
  peakRssBytes: number;
  /** The row snapshot written at stop, with --snapshots. */
  snapshot?: string;
}

const rowSnapshotPath = (dir: string, job: string, shard: number) => join(dir, `${job}-rows-${shard}.dpsr`);

/** Serves the shard until `stop` resolves (default: Ctrl-C, or stdin's end with --until-stdin-closes). */
export async function runSparseShard(flags: SparseShardFlags, io: CliIO, stop?: Promise<void>): Promise<SparseShardReport> {
  const job = sparseJobOf(flags);
  if (!(flags.shard < job.shards)) throw new CliError(`--shard ${flags.shard} is not a shard of --shards ${job.shards}: expected 0 to ${job.shards - 1}`);
  if (flags.restore && flags.snapshots === undefined) throw new CliError("--restore needs --snapshots <dir>: where this shard's snapshots are");
  const spec = sparseJobSpec(job.spec);
  const dir = flags.snapshots === undefined ? undefined : resolve(io.cwd, flags.snapshots);
  const owner = { shard: flags.shard, shards: job.shards, features: spec.inputs, units: spec.layers[0]!.units };
  const restore = dir && flags.restore ? await readRowSnapshot(rowSnapshotPath(dir, job.job, flags.shard), owner) : undefined;
  const nc = await connectTo(flags, `downpour-sparse-${job.job}-shard-${flags.shard}`);
  try {
    const snapshots = dir === undefined ? undefined : await DirectorySnapshotStore.open(job.job, dir);
    const shard = await startSparseJobShard({ ...job, shard: flags.shard, connection: nc, ...(restore ? { restore } : {}), ...(snapshots ? { snapshots, resume: flags.restore === true } : {}) });
    io.stderr(`sparse shard ${flags.shard} of ${job.shards} of job ${job.job} ready: ${restore ? `${restore.keys.length} rows restored` : "no rows yet"}; Ctrl-C stops it\n`);
    await (stop ?? (flags.untilStdinCloses ? untilStdinEnds() : new Promise<void>((done) => io.interrupts?.catchNext(() => done()))));
    const report: SparseShardReport = { role: "shard", shard: flags.shard, rows: shard.rows.stats, denseUpdates: shard.dense.version, peakRssBytes: peakRssBytes() };
    if (dir !== undefined) {
      report.snapshot = rowSnapshotPath(dir, job.job, flags.shard);
      await writeFileAtomic(report.snapshot, encodeRowSnapshot(shard.rows.snapshot(), owner));
    }
    await shard.close();
    await writeReport(flags.report, report);
    io.stdout(`sparse shard ${flags.shard}: ${report.rows.rows.toLocaleString("en-US")} rows (${formatBytes(report.rows.bytes)}), ${report.rows.pushes.toLocaleString("en-US")} row pushes, ${report.rows.pulls.toLocaleString("en-US")} row pulls, ${report.denseUpdates.toLocaleString("en-US")} dense updates; peak RSS ${formatBytes(report.peakRssBytes)}\n`);
    return report;
  } finally {
    await nc.close().catch(() => {});
  }
}

async function readRowSnapshot(path: string, owner: { shard: number; shards: number; features: number; units: number }) {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new CliError(`--restore: cannot read this shard's row snapshot ${path}: ${(error as Error).message}`, { cause: error });
  }
  return decodeRowSnapshot(bytes, owner, path);
}

/** Resolves when stdin ends (how downpour sparse cluster stops its shards). */
function untilStdinEnds(): Promise<void> {
  return new Promise((done) => {
    process.stdin.once("end", () => done());
    process.stdin.once("close", () => done());
    process.stdin.resume();
  });
}

/** The flags of `sparse task`. */
export type SparseTaskFlags = SparseJobFlags & {
  data: string;
  task?: number;
  tasks?: number;
  epochs?: number;
  portionRows?: number;
  staleness?: number;
  cacheRows?: number;
  memory?: number;
  report?: string;
};

/** What a task did. */
export type SparseTaskReport = { role: "task"; task: number; peakRssBytes: number } & SparseDownpourResult;

/** Trains task `--task`'s rows of `--data` against the job's shards. */
export async function runSparseTask(flags: SparseTaskFlags, io: CliIO): Promise<SparseTaskReport> {
  const job = sparseJobOf(flags);
  const task = flags.task ?? 0;
  const tasks = flags.tasks ?? 1;
  if (!(task < tasks)) throw new CliError(`--task ${task} is not a task of --tasks ${tasks}: expected 0 to ${tasks - 1}`);
  const path = resolve(io.cwd, flags.data);
  await checkOutputs(flags.report === undefined ? [] : [namedFile("--report", "--report", flags.report, resolve(io.cwd, flags.report))], [namedFile("--data", "--data", flags.data, path)]);
  const nc = await connectTo(flags, `downpour-sparse-${job.job}-task-${task}`);
  try {
    const result = await trainSparseDownpour({
      ...job, connection: nc, task, tasks, data: taskSource(path, "--data", flags.features!, task, tasks),
      ...(flags.epochs ? { epochs: flags.epochs } : {}), ...(flags.portionRows ? { portionRows: flags.portionRows } : {}),
      ...(flags.staleness !== undefined ? { staleness: flags.staleness } : {}), ...(flags.cacheRows !== undefined ? { cacheRows: flags.cacheRows } : {}),
      memoryBytes: (flags.memory ?? SPARSE_DOWNPOUR_DEFAULTS.memoryBytes / 2 ** 20) * 2 ** 20,
      onEpoch: (e) => io.stderr(`task ${task}: epoch ${e.epoch + 1}: ${e.examples.toLocaleString("en-US")} examples, loss ${e.loss.toFixed(5)}, ${e.seconds.toFixed(1)} s\n`),
    });
    const report: SparseTaskReport = { role: "task", task, peakRssBytes: peakRssBytes(), ...result };
    await writeReport(flags.report, report);
    io.stdout(`${taskLine(report)}\n`);
    return report;
  } finally {
    await nc.close().catch(() => {});
  }
}

/** "task 0: 500,000 examples, 9,100 examples/s; 4.3 KB pulled and 6.1 KB pushed per example; cache 27 %; peak RSS 80 MB". */
export function taskLine(r: SparseTaskReport): string {
  const hits = r.rows.rowsAsked > 0 ? Math.round((100 * r.rows.cacheHits) / r.rows.rowsAsked) : 0;
  return `task ${r.task}: ${r.examples.toLocaleString("en-US")} examples, ${Math.round(r.examplesPerSecond).toLocaleString("en-US")} examples/s; ${formatBytes(r.bytesPerExample.pulled)} pulled and ${formatBytes(r.bytesPerExample.pushed)} pushed per example; rows from the cache ${hits} %; peak RSS ${formatBytes(r.peakRssBytes)}`;
}

/** The flags of `sparse eval`. */
export type SparseEvalFlags = SparseJobFlags & { data: string; json?: boolean };

/** The held-out log-loss and accuracy of the shards' parameters on `--data`. */
export async function runSparseEval(flags: SparseEvalFlags, io: CliIO, connection?: NatsConnection): Promise<SparseEvaluation> {
  const job = sparseJobOf(flags);
  const nc = connection ?? (await connectTo(flags, `downpour-sparse-${job.job}-eval`));
  try {
    const result = await evaluateSparseDownpour({ ...job, connection: nc, data: taskSource(resolve(io.cwd, flags.data), "--data", flags.features!) });
    if (connection === undefined) io.stdout(flags.json ? `${JSON.stringify(result)}\n` : `${flags.data}: ${result.examples.toLocaleString("en-US")} examples, log-loss ${result.loss.toFixed(5)}, accuracy ${result.accuracy?.toFixed(4)}\n`);
    return result;
  } finally {
    if (connection === undefined) await nc.close().catch(() => {});
  }
}

/** The flags of `sparse save`. */
export type SparseSaveFlags = SparseJobFlags & { out: string; memory?: number };

/** Writes the shards' current model as a model file (MultiLayerPerceptron or LogisticRegression, sparse inputs). */
export async function runSparseSave(flags: SparseSaveFlags, io: CliIO, connection?: NatsConnection): Promise<string> {
  const job = sparseJobOf(flags);
  const out = resolve(io.cwd, flags.out);
  await checkOutputs([namedFile("--save", "--save", flags.out, out)], []);
  const kernels = await Kernels.load({ maxBytes: (flags.memory ?? 1024) * 2 ** 20 });
  const nc = connection ?? (await connectTo(flags, `downpour-sparse-${job.job}-save`));
  try {
    const network = await sparseNetworkFromShards({ ...job, connection: nc, kernels });
    const kind = (flags.model ?? "mlp") === "logistic" ? "LogisticRegression" : "MultiLayerPerceptron";
    const model = new MODEL_CLASSES[kind](kind, network);
    try {
      await saveModel(model, out);
    } finally {
      model.dispose();
    }
    if (connection === undefined) io.stdout(`wrote ${flags.out}: the ${kind} the shards of job ${job.job} hold (${network.inputs} sparse inputs)\n`);
    return out;
  } finally {
    if (connection === undefined) await nc.close().catch(() => {});
  }
}

const SPARSE_HELP = `
The sparse layer's rows live on the shards (row k on one shard, by a hash of k), created when first pushed; the
dense layers after it are split over the same shards by range. A task pulls, per portion, only the rows of the
features in it (a small cache keeps recent rows for --staleness portions) and pushes their gradients; no process
holds the whole sparse layer. Every process of a job takes the same job flags.

Examples (all on one machine: downpour sparse cluster; or each process yourself, shards first):
  downpour sparse cluster --data train.svm --test-data test.svm --features 2^20 --hidden 64 --shards 2 --tasks 2
  downpour sparse shard --nats nats://10.0.0.5:4222 --job clicks --shards 2 --shard 0 --features 2^27 --hidden 8
  downpour sparse task  --nats nats://10.0.0.5:4222 --job clicks --shards 2 --features 2^27 --hidden 8 --data part.svm --task 0 --tasks 4
  downpour sparse eval  --nats nats://10.0.0.5:4222 --job clicks --shards 2 --features 2^27 --hidden 8 --data test.svm
  downpour sparse save  --nats nats://10.0.0.5:4222 --job clicks --shards 2 --features 2^20 --hidden 64 --out clicks.dpnn`;

/** Adds `sparse` and its subcommands to the program. */
export function registerSparse(program: Command, io: CliIO): void {
  const sparse = program.command("sparse").description("Downpour SGD for sparse models larger than one machine: shards hold the sparse layer's rows").addHelpText("after", SPARSE_HELP);
  const count = (what: string) => integerIn(0, 2 ** 31 - 1, what);
  addSparseJobFlags(sparse.command("shard").description("serve one shard's rows and dense range until Ctrl-C"), "the job's NATS server (required)")
    .requiredOption("--shard <i>", "which shard, in [0, shards)", count("a shard index"))
    .option("--snapshots <dir>", "write this shard's rows (only those that exist) and dense range there when it stops")
    .option("--restore", "start from the snapshots in --snapshots")
    .option("--report <file>", "write the shard's counters as JSON when it stops")
    .option("--until-stdin-closes", "stop when stdin closes instead of at Ctrl-C (used by sparse cluster)")
    .action(async (flags: SparseShardFlags) => {
      await runSparseShard(flags, io);
    });
  addTaskFlags(addSparseJobFlags(sparse.command("task").description("train this task's rows of a libsvm file against the shards"), "the job's NATS server (required)"))
    .option("--task <t>", "this task, in [0, tasks): it trains rows r % tasks == t (default 0)", count("a task index"))
    .option("--report <file>", "write the task's figures as JSON")
    .action(async (flags: SparseTaskFlags) => {
      await runSparseTask(flags, io);
    });
  addSparseJobFlags(sparse.command("eval").description("held-out log-loss and accuracy of the shards' current parameters"), "the job's NATS server (required)")
    .requiredOption("--data <file.svm>", "held-out libsvm rows (labels 0/1)")
    .option("--json", "print the figures as JSON")
    .action(async (flags: SparseEvalFlags) => {
      await runSparseEval(flags, io);
    });
  addSparseJobFlags(sparse.command("save").description("write the shards' current model as a model file (for eval, predict; the sparse layer must fit --memory)"), "the job's NATS server (required)")
    .requiredOption("--out <file.dpnn>", "the model file to write")
    .option("--memory <MiB>", "the memory limit of the whole network, in MiB (default 1024)", integerIn(16, 4096, "MiB from 16 to 4096"))
    .action(async (flags: SparseSaveFlags) => {
      await runSparseSave(flags, io);
    });
  registerSparseCluster(sparse, io);
}

/** The flags a task takes (sparse task, and sparse cluster for its tasks). */
export function addTaskFlags(command: Command): Command {
  const d = SPARSE_DOWNPOUR_DEFAULTS;
  return command
    .requiredOption("--data <file.svm>", "training rows, libsvm with labels 0/1 (read as a stream: one pass per epoch)")
    .option("--tasks <n>", "tasks of the job, each training rows r % tasks == its index (default 1)", integerIn(1, 1024, "a task count from 1 to 1024"))
    .option("--epochs <n>", `passes over the data (default ${d.epochs})`, integerIn(1, 1_000_000, "an epoch count >= 1"))
    .option("--portion-rows <n>", `rows per pull, gradient and push (default ${d.portionRows})`, integerIn(1, 65_536, "a row count from 1 to 65536"))
    .option("--staleness <n>", `portions a cached row may be reused before it is pulled again; 0: no cache (default ${d.staleness})`, integerIn(0, 1_000_000, "an integer >= 0"))
    .option("--cache-rows <n>", `rows the hot-row cache holds (default ${d.cacheRows})`, integerIn(0, 2 ** 24, "a row count up to 2^24"))
    .option("--memory <MiB>", `the task's WebAssembly memory limit, in MiB (default ${d.memoryBytes / 2 ** 20})`, integerIn(16, 4096, "MiB from 16 to 4096"));
}
