// `downpour sparse cluster`: a whole sparse Downpour job on this machine. Checks the data and the outputs, starts a
// nats-server on a free loopback port (unless --nats names one), runs the shards and then the tasks as processes
// (`downpour sparse shard | task`), evaluates the held-out file on the shards' parameters, stops the shards and
// prints one row per process (examples/s, bytes per example, peak RSS) and the held-out log-loss beside the
// teacher's best when the file has a synth-ctr sidecar. --report writes it all as JSON.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { connectCluster } from "../../cluster/connection.js";
import { type NatsServer, startNatsServer } from "../../cluster/nats-server.js";
import type { SparseEvaluation } from "../../cluster/sparse-downpour.js";
import { streamLibsvmSparse } from "../../data/libsvm-stream.js";
import { teacherPathFor } from "../../data/synth-ctr-file.js";
import { writeFileAtomic } from "../../node/files.js";
import { formatBytes } from "../../util/bytes.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { checkOutputs, namedFile } from "../outputs.js";
import { addSparseJobFlags, type SparseJobFlags, sparseJobOf } from "../sparse-job.js";
import { cliCommand } from "./cluster.js";
import { addTaskFlags, runSparseEval, runSparseSave, type SparseShardReport, type SparseTaskFlags, type SparseTaskReport } from "./sparse.js";

/** The flags of `sparse cluster`. */
export type SparseClusterFlags = SparseTaskFlags & { testData?: string; snapshots?: string; save?: string; json?: boolean };

/** What a sparse cluster run did. */
export interface SparseClusterReport {
  job: string;
  shards: SparseShardReport[];
  tasks: SparseTaskReport[];
  /** Held-out figures (with --test-data). */
  heldOut?: SparseEvaluation;
  /** From the test file's synth-ctr sidecar: the best and the constant predictor's log-loss. */
  teacher?: { bestLogLoss: number; constantLogLoss: number };
  /** Examples of every task over the slowest task's seconds. */
  examplesPerSecond: number;
  seconds: number;
}

/** A child process of the job. */
interface Child {
  name: string;
  exit: Promise<{ code: number | null; signal: string | null; stderr: string }>;
  stop(): void;
  kill(): void;
}

function startChild(name: string, args: string[], io: CliIO, echo: boolean): Child {
  const [command, ...prefix] = cliCommand();
  const child = spawn(command!, [...prefix, ...args], { cwd: io.cwd, env: { ...process.env, ...io.env }, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin!.on("error", () => {});
  child.stdout!.resume();
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    stderr += text;
    if (echo) io.stderr(text);
  });
  const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((done) => {
    child.once("error", (error) => done({ code: 1, signal: null, stderr: `${stderr}downpour: ${error.message}\n` }));
    child.once("close", (code, signal) => done({ code, signal, stderr }));
  });
  return { name, exit, stop: () => child.stdin!.end(), kill: () => child.kill("SIGKILL") };
}

/** The job flags as arguments for the children. */
function jobArgs(flags: SparseJobFlags, nats: string): string[] {
  const job = sparseJobOf(flags);
  const args = ["--job", job.job, "--shards", String(job.shards), "--features", String(flags.features), "--nats", nats];
  if (flags.model) args.push("--model", flags.model);
  if (flags.hidden) args.push("--hidden", flags.hidden.join(","));
  if (flags.activation) args.push("--activation", flags.activation);
  if (flags.seed !== undefined) args.push("--seed", String(flags.seed));
  if (flags.learningRate !== undefined) args.push("--learning-rate", String(flags.learningRate));
  if (flags.initScale !== undefined) args.push("--init-scale", String(flags.initScale));
  return args;
}

function taskArgs(flags: SparseClusterFlags, data: string): string[] {
  const args = ["--data", data, "--tasks", String(flags.tasks ?? 2)];
  const optional: [string, number | undefined][] = [["--epochs", flags.epochs], ["--portion-rows", flags.portionRows], ["--staleness", flags.staleness], ["--cache-rows", flags.cacheRows], ["--memory", flags.memory]];
  for (const [flag, value] of optional) if (value !== undefined) args.push(flag, String(value));
  return args;
}

/** Reads the first row of a libsvm file as the job reads it, so a bad file fails before any process starts. */
async function checkData(path: string, flag: string, typed: string, features: number): Promise<void> {
  try {
    for await (const _ of streamLibsvmSparse(path, { features, chunkRows: 1 })) break;
  } catch (error) {
    throw new CliError(`${flag} ${typed}: ${(error as Error).message}`, { cause: error });
  }
}

async function teacherOf(path: string): Promise<SparseClusterReport["teacher"]> {
  try {
    const sidecar = JSON.parse(await readFile(teacherPathFor(path), "utf8")) as { bestLogLoss?: number; constantLogLoss?: number };
    return typeof sidecar.bestLogLoss === "number" && typeof sidecar.constantLogLoss === "number" ? { bestLogLoss: sidecar.bestLogLoss, constantLogLoss: sidecar.constantLogLoss } : undefined;
  } catch {
    return undefined;
  }
}

/** Fails naming the process when it did not exit 0. */
function requireClean(name: string, exit: { code: number | null; signal: string | null; stderr: string }): void {
  if (exit.code === 0) return;
  const tail = exit.stderr.trim().split("\n").slice(-5).join("\n  ");
  throw new CliError(`${name} failed (${exit.signal ?? `exit ${exit.code}`}):\n  ${tail}`);
}

/** Runs the whole job; resolves once every process has exited. */
export async function runSparseCluster(flags: SparseClusterFlags, io: CliIO): Promise<SparseClusterReport> {
  const job = sparseJobOf(flags);
  const features = flags.features!;
  const data = resolve(io.cwd, flags.data);
  const test = flags.testData === undefined ? undefined : resolve(io.cwd, flags.testData);
  const report = flags.report === undefined ? undefined : resolve(io.cwd, flags.report);
  const save = flags.save === undefined ? [] : [namedFile("--save", "--save", flags.save, resolve(io.cwd, flags.save))];
  await checkOutputs([...(report ? [namedFile("--report", "--report", flags.report!, report)] : []), ...save], [namedFile("--data", "--data", flags.data, data), ...(test ? [namedFile("--test-data", "--test-data", flags.testData!, test)] : [])]);
  await checkData(data, "--data", flags.data, features);
  if (test) await checkData(test, "--test-data", flags.testData!, features);
  const server: NatsServer | undefined = flags.nats === undefined ? await startNatsServer({ maxPayload: 8 * 1024 * 1024, jetstream: false }) : undefined;
  const nats = flags.nats ?? server!.url;
  const dir = mkdtempSync(join(tmpdir(), "downpour-sparse-"));
  const children: Child[] = [];
  try {
    const common = jobArgs(flags, nats);
    const snapshots = flags.snapshots === undefined ? [] : ["--snapshots", resolve(io.cwd, flags.snapshots)];
    const shards = Array.from({ length: job.shards }, (_, s) => startChild(`shard ${s}`, ["sparse", "shard", ...common, "--shard", String(s), "--until-stdin-closes", "--report", join(dir, `shard-${s}.json`), ...snapshots], io, false));
    children.push(...shards);
    const tasks = flags.tasks ?? 2;
    const started = performance.now();
    const taskChildren = Array.from({ length: tasks }, (_, t) => startChild(`task ${t}`, ["sparse", "task", ...common, ...taskArgs(flags, data), "--task", String(t), "--report", join(dir, `task-${t}.json`)], io, t === 0));
    children.push(...taskChildren);
    for (const [t, child] of taskChildren.entries()) requireClean(`task ${t}`, await child.exit);
    const seconds = (performance.now() - started) / 1000;
    const heldOut = test ? await evaluateHeldOut(flags, test, nats, io) : undefined;
    if (flags.save !== undefined) await saveFromShards(flags, nats, io);
    for (const child of shards) child.stop();
    for (const [s, child] of shards.entries()) requireClean(`shard ${s}`, await child.exit);
    const read = <T>(name: string) => JSON.parse(readFileSync(join(dir, name), "utf8")) as T;
    const result: SparseClusterReport = {
      job: job.job,
      shards: shards.map((_, s) => read<SparseShardReport>(`shard-${s}.json`)),
      tasks: taskChildren.map((_, t) => read<SparseTaskReport>(`task-${t}.json`)),
      ...(heldOut ? { heldOut } : {}),
      seconds,
      examplesPerSecond: 0,
    };
    result.examplesPerSecond = result.tasks.reduce((n, t) => n + t.examples, 0) / Math.max(...result.tasks.map((t) => t.seconds));
    const teacher = test ? await teacherOf(test) : undefined;
    if (teacher) result.teacher = teacher;
    if (report) await writeFileAtomic(report, `${JSON.stringify(result, null, 2)}\n`);
    io.stdout(flags.json ? `${JSON.stringify(result, null, 2)}\n` : summary(result));
    return result;
  } finally {
    for (const child of children) child.kill();
    await Promise.all(children.map((c) => c.exit));
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  }
}

async function evaluateHeldOut(flags: SparseClusterFlags, test: string, nats: string, io: CliIO): Promise<SparseEvaluation> {
  const nc = await connectCluster({ servers: nats, name: "downpour-sparse-cluster-eval" });
  try {
    return await runSparseEval({ ...flags, data: test }, io, nc);
  } finally {
    await nc.close().catch(() => {});
  }
}

async function saveFromShards(flags: SparseClusterFlags, nats: string, io: CliIO): Promise<void> {
  const nc = await connectCluster({ servers: nats, name: "downpour-sparse-cluster-save" });
  try {
    await runSparseSave({ ...flags, out: flags.save!, memory: undefined }, io, nc);
  } finally {
    await nc.close().catch(() => {});
  }
}

/** The table of processes, then the held-out line. */
function summary(r: SparseClusterReport): string {
  const lines = ["process   examples   examples/s   pulled/example   pushed/example   rows held   peak RSS"];
  for (const t of r.tasks) {
    lines.push(`task ${t.task}`.padEnd(8) + t.examples.toLocaleString("en-US").padStart(11) + Math.round(t.examplesPerSecond).toLocaleString("en-US").padStart(13) + formatBytes(t.bytesPerExample.pulled).padStart(17) + formatBytes(t.bytesPerExample.pushed).padStart(17) + "-".padStart(12) + formatBytes(t.peakRssBytes).padStart(11));
  }
  for (const s of r.shards) {
    lines.push(`shard ${s.shard}`.padEnd(8) + "-".padStart(11) + "-".padStart(13) + "-".padStart(17) + "-".padStart(17) + s.rows.rows.toLocaleString("en-US").padStart(12) + formatBytes(s.peakRssBytes).padStart(11));
  }
  lines.push(`all tasks: ${Math.round(r.examplesPerSecond).toLocaleString("en-US")} examples/s, ${r.seconds.toFixed(1)} s`);
  if (r.heldOut) {
    const teacher = r.teacher ? ` (the teacher's best ${r.teacher.bestLogLoss.toFixed(5)}, a constant's ${r.teacher.constantLogLoss.toFixed(5)})` : "";
    lines.push(`held out: ${r.heldOut.examples.toLocaleString("en-US")} examples, log-loss ${r.heldOut.loss.toFixed(5)}${teacher}, accuracy ${r.heldOut.accuracy?.toFixed(4)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Adds `sparse cluster` to the `sparse` command. */
export function registerSparseCluster(sparse: Command, io: CliIO): void {
  addTaskFlags(addSparseJobFlags(sparse.command("cluster").description("run a whole sparse job on this machine: a nats-server, the shards and the tasks (default --tasks 2) as processes"), "use this NATS server instead of starting one"))
    .option("--test-data <file.svm>", "held-out libsvm rows: their log-loss on the final parameters")
    .option("--snapshots <dir>", "the shards write their rows and dense ranges there when they stop")
    .option("--save <file.dpnn>", "write the trained model as a model file (the sparse layer must fit 1 GiB)")
    .option("--report <file>", "write every process's figures as JSON")
    .option("--json", "print the report as JSON")
    .action(async (flags: SparseClusterFlags) => {
      await runSparseCluster(flags, io);
    });
}
