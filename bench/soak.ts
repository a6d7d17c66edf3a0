// Soak benchmark (issue 10): 4 parameter-server shards and 8 workers (each in its own process, bench/lib/soak-child.ts)
// push and pull for 10 minutes over one nats-server on loopback while a fault is injected every minute, in turn: a
// shard SIGKILLed and resumed from its snapshot and log, a worker SIGKILLed and replaced, the nats-server stopped and
// started again on the same port (its JetStream store kept). Reports updates/s over time, each fault's recovery time
// (kill to the first update applied afterwards), the resident memory of every process at start and end, and the
// invariant at the end: every shard holds exactly -(sum of the pushes applied from each worker times its value), no
// acknowledged push is lost (durability "log") and none is applied twice.
// Writes bench/.scratch/soak.json, or bench/results/soak.json with --record.
// Run: npm run bench:soak [-- --record | --quick]  (see bench/run.mjs; --quick: 90 s, a fault every 20 s)
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort, type NatsServer, startNatsServer } from "../src/cluster/nats-server.js";
import type { ShardDurability } from "../src/cluster/durability.js";
import { benchFlags, engineName, formatTable, machineInfo, resultsPath, round, writeJsonAtomic } from "./lib/report.js";
import type { SoakProgress, SoakShardFinal, SoakShardRequest, SoakWorkerFinal, SoakWorkerRequest } from "./lib/soak-child.js";

const flags = benchFlags();
const DURATION_MS = (flags.quick ? 1.5 : 10) * 60_000;
const FAULT_EVERY_MS = flags.quick ? 20_000 : 60_000;
const SHARDS = 4;
const WORKERS = 8;
const KEYS = 1 << 16;
const DURABILITY: ShardDurability = "log";
const PULL_EVERY = 4;
/** How long a killed process (or the stopped server) stays down before it is started again, in ms. */
const DOWN_MS = 500;
const SCRIPT = fileURLToPath(new URL("./lib/soak-child.js", import.meta.url));
const JOB = "soak";

/** A child process of this benchmark: its progress lines, its final line, its exit. */
interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly progress: SoakProgress[];
  readonly ready: Promise<unknown>;
  readonly final: Promise<unknown>;
  readonly exited: Promise<void>;
}

function startChild(name: string, request: SoakShardRequest | SoakWorkerRequest): Child {
  const child = spawn(process.execPath, [SCRIPT, JSON.stringify(request)], { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin!.on("error", () => {});
  const progress: SoakProgress[] = [];
  let markReady: (value: unknown) => void = () => {};
  let markFinal: (value: unknown) => void = () => {};
  const ready = new Promise((resolve) => (markReady = resolve));
  const final = new Promise((resolve) => (markFinal = resolve));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const message = JSON.parse(line) as { ready?: boolean; final?: unknown } & SoakProgress;
    if (message.ready) markReady(message);
    else if (message.final) markFinal(message.final);
    else progress.push(message);
  });
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      if (code !== 0 && signal !== "SIGKILL") process.stderr.write(`soak: ${name} ended (${signal ?? `exit ${code}`}): ${stderr}\n`);
      markReady(undefined);
      markFinal(undefined);
      resolve();
    }),
  );
  return { name, process: child, progress, ready, final, exited };
}

const storeDir = mkdtempSync(join(tmpdir(), "downpour-soak-js-"));
const snapshotDir = mkdtempSync(join(tmpdir(), "downpour-soak-snap-"));
const port = await freePort();
const startServer = () => startNatsServer({ port, jetstream: true, extraConfig: `jetstream { store_dir: ${JSON.stringify(storeDir)} }` });
let server: NatsServer = await startServer();
const servers = [server.url];
const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
const shardRequest = (shard: number, resume: boolean): SoakShardRequest => ({
  role: "shard", servers, job: JOB, shard, shards: SHARDS, keys: KEYS, durability: DURABILITY, snapshots: snapshotDir, resume,
});
const pushValue = (worker: number) => (worker % 7) + 1;
const workerRequest = (worker: number): SoakWorkerRequest => ({ role: "worker", servers, job: JOB, shards: SHARDS, keys: KEYS, worker, value: pushValue(worker), pullEvery: PULL_EVERY });

/** Every incarnation of every process, for the memory table. */
const incarnations: Child[] = [];
const shards: Child[] = [];
const workers: Child[] = [];
/** Workers killed: their id and the pushes they had acknowledged (a lower bound; their last lines were lost). */
const killedWorkers: { worker: number; acked: number }[] = [];
const workerIds: number[] = [];

function launch(list: Child[], index: number, child: Child): Child {
  list[index] = child;
  incarnations.push(child);
  return child;
}

interface Fault {
  kind: "shard" | "worker" | "nats";
  which: string;
  at: number;
  recoveryMs: number | null;
}
const faults: Fault[] = [];

/** The newest count a child has printed (its version, or its acknowledged pushes). */
const latest = (child: Child) => child.progress.at(-1)?.count ?? 0;

/** Resolves with the ms from `since` until `progressed` holds (checked every 20 ms), or null after `limitMs`. */
async function recovery(since: number, progressed: () => boolean, limitMs = 60_000): Promise<number | null> {
  while (Date.now() - since < limitMs) {
    if (progressed()) return Date.now() - since;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function killShard(i: number): Promise<Fault> {
  const at = Date.now();
  shards[i]!.process.kill("SIGKILL");
  await shards[i]!.exited;
  await sleep(DOWN_MS);
  const next = launch(shards, i, startChild(`shard ${i} (resumed)`, shardRequest(i, true)));
  const ready = (await next.ready) as { restored?: { version?: number } } | undefined;
  const restored = ready?.restored?.version ?? 0;
  return { kind: "shard", which: `shard ${i}`, at: elapsed(), recoveryMs: await recovery(at, () => latest(next) > restored) };
}

async function killWorker(i: number, generation: number): Promise<Fault> {
  const at = Date.now();
  const old = workers[i]!;
  killedWorkers.push({ worker: workerIds[i]!, acked: latest(old) });
  old.process.kill("SIGKILL");
  await old.exited;
  await sleep(DOWN_MS);
  workerIds[i] = i + 100 * generation;
  const next = launch(workers, i, startChild(`worker ${workerIds[i]}`, workerRequest(workerIds[i]!)));
  await next.ready;
  return { kind: "worker", which: `worker ${workerIds[i]} (replacing ${killedWorkers.at(-1)!.worker})`, at: elapsed(), recoveryMs: await recovery(at, () => latest(next) > 0) };
}

async function restartNats(): Promise<Fault> {
  const at = Date.now();
  const before = shards.map(latest);
  await server.stop();
  await sleep(DOWN_MS);
  server = await startServer();
  const recoveryMs = await recovery(at, () => shards.every((s, i) => latest(s) > before[i]!));
  return { kind: "nats", which: `nats-server on port ${port}`, at: elapsed(), recoveryMs };
}

console.log(`engine ${engineName()}; CPU ${machineInfo().model} (${machineInfo().cpus} CPUs)`);
console.log(`soak: ${SHARDS} shards, ${WORKERS} workers, ${KEYS} keys, durability ${DURABILITY}, ${DURATION_MS / 60_000} min, a fault every ${FAULT_EVERY_MS / 1000} s`);
let finals: { shards: (SoakShardFinal | undefined)[]; workers: (SoakWorkerFinal | undefined)[] };
try {
  for (let i = 0; i < SHARDS; i++) launch(shards, i, startChild(`shard ${i}`, shardRequest(i, false)));
  await Promise.all(shards.map((s) => s.ready));
  for (let i = 0; i < WORKERS; i++) {
    workerIds[i] = i;
    launch(workers, i, startChild(`worker ${i}`, workerRequest(i)));
  }
  await Promise.all(workers.map((w) => w.ready));
  for (let k = 0; Date.now() - started + FAULT_EVERY_MS <= DURATION_MS; k++) {
    await sleep(Math.max(0, started + (k + 1) * FAULT_EVERY_MS - Date.now()));
    const kind = (["shard", "worker", "nats"] as const)[k % 3]!;
    const fault = kind === "shard" ? await killShard(Math.floor(k / 3) % SHARDS) : kind === "worker" ? await killWorker(Math.floor(k / 3) % WORKERS, k + 1) : await restartNats();
    faults.push(fault);
    process.stderr.write(`  ${fault.at.toFixed(0)} s: ${fault.kind} fault (${fault.which}): recovered in ${fault.recoveryMs ?? "-"} ms\n`);
  }
  await sleep(Math.max(0, started + DURATION_MS - Date.now()));
  for (const w of workers) w.process.stdin!.end();
  const workerFinals = (await Promise.all(workers.map((w) => w.final))) as (SoakWorkerFinal | undefined)[];
  for (const s of shards) s.process.stdin!.end();
  const shardFinals = (await Promise.all(shards.map((s) => s.final))) as (SoakShardFinal | undefined)[];
  finals = { shards: shardFinals, workers: workerFinals };
} finally {
  for (const child of incarnations) child.process.kill("SIGKILL");
  await server.stop();
}

// The invariant, per shard: every key is -(sum of applied pushes x value); no acknowledged push lost; none twice.
let lost = 0;
let twice = 0;
const invariant = finals.shards.map((final, i) => {
  if (!final) return { shard: i, ok: false, why: "no final line" };
  const clocks = new Map(final.clocks);
  const expected = -[...clocks].reduce((sum, [worker, applied]) => sum + applied * pushValue(worker), 0);
  for (const w of finals.workers) {
    if (!w) continue;
    const applied = clocks.get(w.worker) ?? 0;
    lost += Math.max(0, w.acked - applied);
    twice += Math.max(0, applied - w.sent);
  }
  for (const k of killedWorkers) lost += Math.max(0, k.acked - (clocks.get(k.worker) ?? 0));
  return { shard: i, ok: final.min === expected && final.max === expected, expected, min: final.min, max: final.max, version: final.version };
});

// Updates/s over time: the shards' versions summed, per 10 s window (a resumed shard's count goes on from its restore).
const windowS = flags.quick ? 5 : 10;
const windows: number[] = [];
for (const s of incarnations.filter((c) => c.name.startsWith("shard"))) {
  for (let j = 1; j < s.progress.length; j++) {
    const [a, b] = [s.progress[j - 1]!, s.progress[j]!];
    const slot = Math.floor((b.t - started) / 1000 / windowS);
    windows[slot] = (windows[slot] ?? 0) + Math.max(0, b.count - a.count);
  }
}
const rate = Array.from(windows, (n) => round((n ?? 0) / windowS, 1));
// "Start" is the first sample once the process is warm (WARM_S after it began: its heap has grown to its working set).
const WARM_S = flags.quick ? 10 : 60;
const memory = incarnations.map((c) => {
  const t0 = c.progress[0]?.t ?? 0;
  const [first, last] = [c.progress.find((p) => p.t - t0 >= WARM_S * 1000), c.progress.at(-1)];
  return { process: c.name, start_mb: first?.rssMB ?? null, end_mb: last?.rssMB ?? null, growth: first && last ? round(last.rssMB / first.rssMB - 1, 3) : null, seconds: first && last ? round((last.t - first.t) / 1000, 0) : 0 };
});
const longLived = memory.filter((m) => m.seconds >= DURATION_MS / 1000 / 2);
const maxGrowth = Math.max(0, ...longLived.map((m) => m.growth ?? 0));

console.log(formatTable(["fault", "at s", "what", "recovery ms"], faults.map((f) => [f.kind, f.at.toFixed(0), f.which, String(f.recoveryMs ?? "not recovered")]), ["left", "right", "left", "right"]));
console.log(`\nupdates/s (all shards, per ${windowS} s): ${rate.join(" ")}`);
console.log(formatTable(["process", `RSS at ${WARM_S} s, MB`, "RSS end MB", "growth"], longLived.map((m) => [m.process, String(m.start_mb), String(m.end_mb), `${((m.growth ?? 0) * 100).toFixed(1)}%`]), ["left", "right", "right", "right"]));
console.log(`\ninvariant: ${invariant.every((r) => r.ok) ? "every shard holds exactly the sum of the pushes applied" : "VIOLATED"}; acknowledged pushes lost: ${lost}; applied twice: ${twice}`);
console.log(`memory: largest growth of a process alive at least half the run, from ${WARM_S} s in to the end: ${(maxGrowth * 100).toFixed(1)}% (target <= 10%)`);
const env = { engine: engineName(), cpu: machineInfo().model };
const rows = [
  { case: "soak: updates/s over the run (all shards)", unit: "updates/s", ours: round(rate.reduce((a, b) => a + b, 0) / Math.max(1, rate.length), 1), peer: null, ratio: null, ...env },
  ...(["shard", "worker", "nats"] as const).map((kind) => {
    const times = faults.filter((f) => f.kind === kind && f.recoveryMs !== null).map((f) => f.recoveryMs!);
    return { case: `soak: recovery after a ${kind} fault (kill to the first update afterwards), worst`, unit: "ms", ours: times.length ? Math.max(...times) : null, peer: null, ratio: null, ...env };
  }),
];
const out = resultsPath("soak", flags);
await writeJsonAtomic(out, {
  rows, ...env, cpus: machineInfo().cpus, date: new Date().toISOString(), quick: flags.quick, durability: DURABILITY, shards: SHARDS, workers: WORKERS, keys: KEYS,
  minutes: DURATION_MS / 60_000, faults, updates_per_second: rate, window_seconds: windowS, memory, max_memory_growth: maxGrowth, invariant,
  acknowledged_lost: lost, applied_twice: twice, killed_workers: killedWorkers, worker_finals: finals.workers,
});
rmSync(storeDir, { recursive: true, force: true });
rmSync(snapshotDir, { recursive: true, force: true });
console.log(`\nwrote ${out}${flags.record ? "" : " (scratch; --record writes bench/results/)"}`);
process.exit(invariant.every((r) => r.ok) && lost === 0 && twice === 0 ? 0 : 1);
