// Sparse benchmark (issue 12): logistic regression on click-log-like data with a known teacher (SynthCtr: 10^6
// examples, 2^20 features, 40 per example; 10^5 held out), ours locally (readLibsvmSparse, then a sparse
// LogisticRegression, Adagrad, 2 threads, sync) beside LIBLINEAR (Debian's liblinear-tools, `-s 0`, one thread, the
// best C of a small grid on the held-out rows): held-out log-loss and time. Then over the parameter servers, as a
// user runs it (`downpour sparse cluster`: a nats-server, shard and task processes): a sparse MLP 2^20 -> 64 -> 1
// over 2 shards and 2 workers (examples/s, bytes pulled and pushed per example, held-out log-loss beside the
// teacher's and beside the same MLP trained in one process), and a 2^27 x 8 sparse layer (4 GiB) over 4 shards
// from workers whose WebAssembly memory is capped at 256 MiB (examples/s, every process's peak RSS, held-out
// log-loss beside a constant predictor's). The data is generated once into bench/.scratch/sparse-data/.
// Run: npm run bench:sparse [-- --record | --quick]  (see bench/run.mjs).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SparseClusterReport } from "../src/cli/commands/sparse-cluster.js";
import { LogisticRegression, MultiLayerPerceptron } from "../src/index.js";
import { readLibsvmSparse } from "../src/data/libsvm.js";
import { SynthCtr } from "../src/data/synth-ctr.js";
import { teacherPathFor, writeSynthCtrLibsvm, type SynthCtrTeacherFile } from "../src/data/synth-ctr-file.js";
import { Kernels } from "../src/core/kernels.js";
import { benchFlags, formatTable, machineInfo, repoRoot, resultsPath, round, runEnvironment, writeJsonAtomic } from "./lib/report.js";

const flags = benchFlags();
const ROWS = flags.quick ? 100_000 : 1_000_000;
const HELD = flags.quick ? 20_000 : 100_000;
const FEATURES = 2 ** 20;
const SEED = 1;
/** Ours: one setting, picked (as LIBLINEAR's C below) from a small grid (learning rate 0.02-0.1, 1-2 epochs) on these held-out rows. */
const OURS = { epochs: 1, batchSize: 256, portion: 32, learningRate: 0.05, momentum: 0, optimizer: "adagrad", threads: 2, mode: "sync" } as const;
const LIBLINEAR_C = [0.02, 0.05, 0.1];
/** The sparse MLP over shards (the same settings for the one-process run beside it). */
const MLP = { hidden: 64, shards: 2, tasks: 2, learningRate: 0.02, portionRows: 64 } as const;
/** The large case: a sparse layer of 2^27 rows x 8 over 4 shards, workers capped at 256 MiB. */
const HUGE = { features: 2 ** 27, hidden: 8, shards: 4, tasks: 2, memoryMiB: 256, rows: flags.quick ? 100_000 : 1_000_000, held: flags.quick ? 20_000 : 100_000, learningRate: 0.05 } as const;

const seconds = (from: number) => (performance.now() - from) / 1000;

/** The train and held-out files of `features` features (generated unless a previous run left them). */
async function dataFiles(features = FEATURES, rows = ROWS, heldRows = HELD): Promise<{ train: string; held: string; teacher: SynthCtrTeacherFile; heldTeacher: SynthCtrTeacherFile }> {
  const dir = join(repoRoot, "bench/.scratch/sparse-data");
  mkdirSync(dir, { recursive: true });
  const train = join(dir, `ctr-${rows}-${features}-${SEED}.svm`);
  const held = join(dir, `ctr-${rows}-${features}-${SEED}-held-${heldRows}.svm`);
  const gen = new SynthCtr({ seed: SEED, features });
  const read = (f: string) => JSON.parse(readFileSync(teacherPathFor(f), "utf8")) as SynthCtrTeacherFile;
  if (!existsSync(teacherPathFor(train))) await writeSynthCtrLibsvm(train, gen, { rows });
  if (!existsSync(teacherPathFor(held))) await writeSynthCtrLibsvm(held, gen, { rows: heldRows, start: rows });
  return { train, held, teacher: read(train), heldTeacher: read(held) };
}

/** `downpour sparse cluster ...args` as a process (this engine); its report. */
function sparseCluster(args: string[]): Promise<SparseClusterReport> {
  const report = join(repoRoot, "bench/.scratch/sparse-data", `cluster-${Date.now()}.json`);
  const cli = join(repoRoot, "dist/src/cli/main.js");
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, "sparse", "cluster", ...args, "--report", report], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (b: Buffer) => process.stderr.write(b));
    child.stderr.on("data", (b: Buffer) => process.stderr.write(b));
    child.once("close", (code) => (code === 0 ? done(JSON.parse(readFileSync(report, "utf8")) as SparseClusterReport) : fail(new Error(`downpour sparse cluster exited ${code}`))));
  });
}

/** The same sparse MLP trained in this process (2 threads, sync, Adagrad): held-out log-loss, examples/s, peak RSS. */
async function localMlp(train: string, held: string): Promise<{ logLoss: number; examplesPerSecond: number }> {
  const kernels = await Kernels.load({ maxBytes: 3 * 2 ** 30 });
  const trainSet = await readLibsvmSparse(train, { features: FEATURES });
  const heldSet = await readLibsvmSparse(held, { features: FEATURES });
  const model = await MultiLayerPerceptron.create({ inputs: FEATURES, hidden: [MLP.hidden], outputs: 1, hiddenActivation: "relu", sparseInputs: true, seed: 1 }, { kernels });
  try {
    const t0 = performance.now();
    await model.fit(trainSet, { ...OURS, batchSize: MLP.portionRows, learningRate: MLP.learningRate });
    const examplesPerSecond = ROWS / seconds(t0);
    return { logLoss: model.evaluate(heldSet).loss, examplesPerSecond };
  } finally {
    model.dispose();
  }
}

interface Run {
  logLoss: number;
  readSeconds: number;
  trainSeconds: number;
}

async function ours(train: string, held: string): Promise<Run> {
  const t0 = performance.now();
  const trainSet = await readLibsvmSparse(train, { features: FEATURES });
  const readSeconds = seconds(t0);
  const heldSet = await readLibsvmSparse(held, { features: FEATURES });
  const model = await LogisticRegression.create({ inputs: FEATURES, seed: 1, sparseInputs: true });
  try {
    const t1 = performance.now();
    await model.fit(trainSet, OURS);
    const trainSeconds = seconds(t1);
    return { logLoss: model.evaluate(heldSet).loss, readSeconds, trainSeconds };
  } finally {
    model.dispose();
  }
}

/** Mean log-loss of liblinear-predict -b 1's probabilities against the held-out labels. */
function logLossOf(predictions: string, held: string): number {
  const labels = readFileSync(held, "utf8").split("\n").filter((l) => l.trim()).map((l) => Number(l.split(" ", 1)[0]));
  const lines = readFileSync(predictions, "utf8").split("\n").filter((l) => l.trim());
  const column = 1 + lines[0]!.split(/\s+/).slice(1).indexOf("1");
  let sum = 0;
  lines.slice(1).forEach((line, i) => {
    const p = Math.min(Math.max(Number(line.split(/\s+/)[column]), 1e-15), 1 - 1e-15);
    sum += labels[i] === 1 ? -Math.log(p) : -Math.log(1 - p);
  });
  return sum / labels.length;
}

function liblinear(train: string, held: string): (Run & { c: number; version: string }) | string {
  if (spawnSync("liblinear-train", [], { encoding: "utf8" }).error) return "liblinear-train not found (apt-get install liblinear-tools)";
  const dir = join(repoRoot, "bench/.scratch/sparse-data");
  let best: (Run & { c: number; version: string }) | undefined;
  for (const c of LIBLINEAR_C) {
    const model = join(dir, `liblinear-${c}.model`);
    const out = join(dir, `liblinear-${c}.out`);
    const t0 = performance.now();
    const fit = spawnSync("liblinear-train", ["-s", "0", "-c", String(c), "-q", train, model], { encoding: "utf8" });
    const trainSeconds = seconds(t0);
    if (fit.status !== 0) return `liblinear-train -c ${c} failed: ${fit.stderr}`;
    spawnSync("liblinear-predict", ["-b", "1", held, model, out], { encoding: "utf8" });
    const run = { c, logLoss: logLossOf(out, held), readSeconds: 0, trainSeconds, version: "2.3 (Debian liblinear-tools)" };
    if (!best || run.logLoss < best.logLoss) best = run;
  }
  return best!;
}

const started = performance.now();
const probe = await Kernels.load({ shared: true });
const env = runEnvironment(probe.core.variant);
const machine = machineInfo();
console.log(`engine ${env.engine}; CPU ${env.cpu} (${machine.cpus} CPUs); core build ${env.build}`);
console.log(`synthetic click logs: ${ROWS} training and ${HELD} held-out examples, 2^20 features, 40 per example${flags.quick ? " (QUICK: do not compare)" : ""}\n`);
const files = await dataFiles();
const our = await ours(files.train, files.held);
process.stderr.write(`  done ours (${seconds(started).toFixed(0)} s)\n`);
const peer = liblinear(files.train, files.held);
process.stderr.write(`  done LIBLINEAR (${seconds(started).toFixed(0)} s)\n`);
const peerRun = typeof peer === "string" ? undefined : peer;
const PEER = peerRun ? `LIBLINEAR -s 0 -c ${peerRun.c}` : null;

const rows: Array<Record<string, unknown>> = [];
const add = (name: string, unit: string, ourValue: number, peerValue: number | null, peerName: string | null, digits: number) =>
  rows.push({ case: name, unit, ours: round(ourValue, digits), peer: peerValue === null ? null : round(peerValue, digits), peer_name: peerName, ratio: peerValue === null ? null : round(ourValue / peerValue, 3), ...env });
add("sparse logistic regression: held-out log-loss", "log-loss", our.logLoss, peerRun?.logLoss ?? null, PEER, 5);
add("sparse logistic regression: training time (ours: fit on parsed rows; LIBLINEAR: liblinear-train incl. parsing)", "s", our.trainSeconds, peerRun?.trainSeconds ?? null, PEER, 2);
add("sparse logistic regression: read + training time", "s", our.readSeconds + our.trainSeconds, peerRun?.trainSeconds ?? null, PEER, 2);
add("sparse logistic regression: training examples/s", "examples/s", ROWS / our.trainSeconds, peerRun ? ROWS / peerRun.trainSeconds : null, PEER, 0);
add("the teacher's log-loss on the held-out labels (the best possible, about)", "log-loss", files.heldTeacher.teacherLogLoss, null, null, 5);
add("a constant predictor's held-out log-loss", "log-loss", files.heldTeacher.constantLogLoss, null, null, 5);

process.stderr.write("  sparse MLP over shards (downpour sparse cluster) ...\n");
const mlpArgs = ["--features", String(FEATURES), "--hidden", String(MLP.hidden), "--shards", String(MLP.shards), "--tasks", String(MLP.tasks), "--learning-rate", String(MLP.learningRate), "--portion-rows", String(MLP.portionRows)];
const mlp = await sparseCluster(["--data", files.train, "--test-data", files.held, ...mlpArgs]);
process.stderr.write(`  done sparse MLP over shards (${seconds(started).toFixed(0)} s); the same MLP in one process ...\n`);
const local = await localMlp(files.train, files.held);
process.stderr.write(`  done local MLP (${seconds(started).toFixed(0)} s); 2^27 x 8 over 4 shards ...\n`);
const hugeFiles = await dataFiles(HUGE.features, HUGE.rows, HUGE.held);
const huge = await sparseCluster(["--data", hugeFiles.train, "--test-data", hugeFiles.held, "--features", String(HUGE.features), "--hidden", String(HUGE.hidden), "--shards", String(HUGE.shards), "--tasks", String(HUGE.tasks), "--memory", String(HUGE.memoryMiB), "--learning-rate", String(HUGE.learningRate)]);
process.stderr.write(`  done 2^27 case (${seconds(started).toFixed(0)} s)\n`);

const max = (values: number[]) => Math.max(...values);
const perExample = (r: SparseClusterReport, key: "pulled" | "pushed") => r.tasks.reduce((n, t) => n + t.bytesPerExample[key] * t.examples, 0) / r.tasks.reduce((n, t) => n + t.examples, 0);
const wholeModelPerExample = (4 * FEATURES * MLP.hidden) / MLP.portionRows;
const M = `sparse MLP 2^20-${MLP.hidden}-1, ${MLP.shards} shards x ${MLP.tasks} workers, async`;
add(`${M}: held-out log-loss`, "log-loss", mlp.heldOut!.loss, files.heldTeacher.teacherLogLoss, "the teacher (on the held-out labels)", 5);
add(`${M}: held-out log-loss`, "log-loss", mlp.heldOut!.loss, local.logLoss, "the same MLP in one process (2 threads, sync)", 5);
add(`${M}: examples/s, all workers`, "examples/s", mlp.examplesPerSecond, local.examplesPerSecond, "the same MLP in one process (2 threads, sync)", 0);
add(`${M}: bytes pulled per example`, "bytes", perExample(mlp, "pulled"), wholeModelPerExample, "pulling the whole model per portion", 0);
add(`${M}: bytes pushed per example`, "bytes", perExample(mlp, "pushed"), wholeModelPerExample, "pushing the whole model per portion", 0);
add(`${M}: peak RSS of a worker (the larger)`, "MB", max(mlp.tasks.map((t) => t.peakRssBytes)) / 1e6, null, null, 0);
add(`${M}: peak RSS of a shard (the larger)`, "MB", max(mlp.shards.map((s) => s.peakRssBytes)) / 1e6, null, null, 0);
const H = `2^27 x ${HUGE.hidden} sparse layer (4 GiB), ${HUGE.shards} shards x ${HUGE.tasks} workers capped at ${HUGE.memoryMiB} MiB`;
add(`${H}: held-out log-loss`, "log-loss", huge.heldOut!.loss, hugeFiles.heldTeacher.constantLogLoss, "a constant predictor (the trivial model)", 5);
add(`${H}: held-out log-loss`, "log-loss", huge.heldOut!.loss, hugeFiles.heldTeacher.teacherLogLoss, "the teacher (on the held-out labels)", 5);
add(`${H}: examples/s, all workers`, "examples/s", huge.examplesPerSecond, null, null, 0);
for (const t of huge.tasks) add(`${H}: worker ${t.task} peak RSS`, "MB", t.peakRssBytes / 1e6, null, null, 0);
for (const t of huge.tasks) add(`${H}: worker ${t.task} WebAssembly memory`, "MiB", t.wasmMemoryBytes / 2 ** 20, HUGE.memoryMiB, "its cap", 1);
for (const sh of huge.shards) add(`${H}: shard ${sh.shard} peak RSS (${sh.rows.rows} rows held)`, "MB", sh.peakRssBytes / 1e6, null, null, 0);

const cell = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
console.log(formatTable(["case", "ours", "peer", "value", "ours/peer"], rows.map((r) => [String(r.case), cell(r.ours), cell(r.peer_name), cell(r.peer), cell(r.ratio)]), ["left", "right", "left", "right", "right"]));
if (typeof peer === "string") console.log(`note: LIBLINEAR skipped: ${peer}`);
const target = (ok: boolean | undefined, text: string) => console.log(`  [${ok === undefined ? "SKIP" : ok ? "PASS" : "FAIL"}] ${text}`);
console.log("\ntargets:");
target(peerRun && our.logLoss <= 1.01 * peerRun.logLoss, `held-out log-loss within 1% of LIBLINEAR's: ${peerRun ? `${(our.logLoss / peerRun.logLoss).toFixed(3)}x` : "-"}`);
target(peerRun && our.readSeconds + our.trainSeconds <= peerRun.trainSeconds, `time (read + train) <= LIBLINEAR's: ${peerRun ? `${((our.readSeconds + our.trainSeconds) / peerRun.trainSeconds).toFixed(2)}x` : "-"}`);
target(huge.heldOut!.loss < hugeFiles.heldTeacher.constantLogLoss, `the 2^27 job's held-out log-loss beats a trivial model's: ${huge.heldOut!.loss.toFixed(5)} vs ${hugeFiles.heldTeacher.constantLogLoss.toFixed(5)}`);
target(huge.tasks.every((t) => t.wasmMemoryBytes <= HUGE.memoryMiB * 2 ** 20), `every 2^27 worker within its ${HUGE.memoryMiB} MiB arena: ${huge.tasks.map((t) => `${(t.wasmMemoryBytes / 2 ** 20).toFixed(1)} MiB`).join(", ")}`);
const out = resultsPath("sparse", flags);
await writeJsonAtomic(out, { rows, ...env, cpus: machine.cpus, date: new Date().toISOString(), quick: flags.quick, ours_settings: OURS, liblinear_c_grid: LIBLINEAR_C, mlp_settings: MLP, huge_settings: HUGE });
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"} (${seconds(started).toFixed(0)} s)`);
process.exit(0);
