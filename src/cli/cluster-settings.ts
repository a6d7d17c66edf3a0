// The settings of `downpour peer` and `downpour cluster` beside train's: where the NATS server is and how to log
// in to it (also used by `downpour data put`), and the job's own (id, peers, combine mode, gradient dtype, split,
// model averaging, timeouts). Like every setting, each is a flag and a config-file key.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ClusterConnectionOptions } from "../cluster/connection.js";
import { checkJobId } from "../cluster/subjects.js";
import type { CombineMode, GradDtype } from "../cluster/gradient-exchange.js";
import type { SplitMode } from "../cluster/partition.js";
import { CliError } from "./errors.js";
import type { SettingDef } from "./settings.js";

/** How to reach and log in to NATS. */
export interface ConnectionSettings {
  /** Server URLs, comma-separated: nats://host:port, tls://host:port or host:port. */
  nats?: string;
  /** A .creds file (user JWT and nkey seed). */
  creds?: string;
  /** A file holding an nkey seed ("SU..."). */
  nkey?: string;
  token?: string;
  user?: string;
  password?: string;
  /** PEM files: the CA that signed the server's certificate, and the client's own certificate and key. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export const COMBINE_CHOICES = ["allreduce", "master"] as const satisfies readonly CombineMode[];
export const GRAD_DTYPE_CHOICES = ["f32", "f16"] as const satisfies readonly GradDtype[];
export const SPLIT_CHOICES = ["modulo", "contiguous"] as const satisfies readonly SplitMode[];

/** The job: who takes part and how they train together. */
export interface JobSettings {
  job?: string;
  peers?: number;
  /** This peer's index in [0, peers) (peer only; default: by name order). */
  index?: number;
  /** This peer's name (peer only; default: <host>-<pid>). */
  name?: string;
  combine?: CombineMode;
  gradDtype?: GradDtype;
  split?: SplitMode;
  /** Local mini-batches per superstep before the peers' models are averaged (1: combine every gradient). */
  syncEvery?: number;
  /** Parameter-server shards of an async (Downpour) job. */
  shards?: number;
  /** Async: portions between a worker's pulls, and portions it sums before a push. */
  nFetch?: number;
  nPush?: number;
  /** Async: rows per work unit shared across the peers through a queue (portions with backup tasks). */
  portions?: number;
  /** Async: task groups; a group's peers combine gradients synchronously and push to the shards as one replica. */
  groups?: number;
  /** Async: mini-batches task 0 trains alone before the others begin (DistBelief's warm start). */
  warmStart?: number;
  /** Async: how fresh reads are: async (eventual), ssp (bounded by `staleness` clocks) or bsp (every round). */
  consistency?: "async" | "ssp" | "bsp";
  /** ssp: the staleness bound s, in clocks (pushes of a worker). */
  staleness?: number;
  /** Async: where the shards snapshot themselves ("nats": the job's object store bucket; "none"; or a directory). */
  snapshots?: string;
  /** Async: a shard snapshot after this many updates. */
  snapshotEvery?: number;
  /** Async: "snapshot" (updates since the last snapshot may be lost on a shard crash) or "log" (acknowledged once
   *  logged in JetStream; a restarted shard replays the log and loses nothing). */
  durability?: "snapshot" | "log";
  /** cluster: give the job its own NATS account and credentials on the embedded server (default true; false: none). */
  isolate?: boolean;
  /** A JSON file for the run's metrics: epochs, every peer's and every shard's row (cluster). */
  metrics?: string;
  /** Seconds to wait for every peer to join. */
  joinTimeout?: number;
  /** Seconds without a heartbeat after which a peer counts as lost. */
  peerTimeout?: number;
}

export type ClusterSettings = ConnectionSettings & JobSettings;

/** Which commands take a setting beyond train's: "cluster" settings belong to peer and cluster only. */
export const CONNECTION_SETTINGS: readonly SettingDef[] = [
  { key: "nats", flag: "--nats <urls>", type: "string", group: "Cluster", scope: "cluster", shown: "peer: nats://127.0.0.1:4222; cluster: a nats-server started on a free loopback port",
    help: "NATS server URLs, comma-separated (nats://host:port, tls://host:port)" },
  { key: "creds", flag: "--creds <file>", type: "string", group: "Cluster", scope: "cluster", shown: "none", help: "a .creds file (user JWT and nkey seed) to log in with" },
  { key: "nkey", flag: "--nkey <seed-file>", type: "string", group: "Cluster", scope: "cluster", shown: "none", help: "a file holding an nkey seed (SU...) to log in with" },
  { key: "token", flag: "--token <token>", type: "string", group: "Cluster", scope: "cluster", shown: "none",
    help: "a server token (prefer a config file: flags show in the process list)" },
  { key: "user", flag: "--user <name>", type: "string", group: "Cluster", scope: "cluster", shown: "none", help: "user name (with --password)" },
  { key: "password", flag: "--password <password>", type: "string", group: "Cluster", scope: "cluster", shown: "none",
    help: "password of --user (prefer a config file: flags show in the process list)" },
  { key: "tlsCa", flag: "--tls-ca <file.pem>", type: "string", group: "Cluster", scope: "cluster", shown: "the system's CAs",
    help: "CA certificate that signed the server's (turns TLS on)" },
  { key: "tlsCert", flag: "--tls-cert <file.pem>", type: "string", group: "Cluster", scope: "cluster", shown: "none", help: "client certificate, for servers that verify clients" },
  { key: "tlsKey", flag: "--tls-key <file.pem>", type: "string", group: "Cluster", scope: "cluster", shown: "none", help: "key of --tls-cert" },
];

export const JOB_SETTINGS: readonly SettingDef[] = [
  { key: "job", flag: "--job <id>", type: "string", group: "Cluster", scope: "cluster", shown: "peer: required; cluster: a new id per run",
    help: "job id: letters, digits, - and _ (every subject of the job is under downpour.<id>.)" },
  { key: "peers", flag: "--peers <n>", type: "integer", group: "Cluster", scope: "cluster", shown: "required", help: "how many peers train the job" },
  { key: "index", flag: "--index <i>", type: "integer", group: "Cluster", scope: "cluster", shown: "by name order", help: "this peer's index in [0, peers) (peer)" },
  { key: "name", flag: "--name <name>", type: "string", group: "Cluster", scope: "cluster", shown: "<host>-<pid>", help: "this peer's name in the job (peer)" },
  { key: "combine", flag: "--combine <mode>", type: "choice", choices: COMBINE_CHOICES, group: "Cluster", scope: "cluster", shown: "allreduce",
    help: "master: peer 0 merges the gradients and broadcasts (Hama); allreduce: reduce-scatter and all-gather, each peer owning 1/N of the keys" },
  { key: "gradDtype", flag: "--grad-dtype <dtype>", type: "choice", choices: GRAD_DTYPE_CHOICES, group: "Cluster", scope: "cluster", shown: "f32",
    help: "gradients on the wire: f16 halves the bytes" },
  { key: "split", flag: "--split <mode>", type: "choice", choices: SPLIT_CHOICES, group: "Cluster", scope: "cluster", shown: "modulo",
    help: "each peer's rows of the data: modulo (rows i mod peers) or contiguous (one range each)" },
  { key: "syncEvery", flag: "--sync-every <batches>", type: "integer", group: "Cluster", scope: "cluster", shown: "1: combine every mini-batch's gradient",
    help: "local mini-batches per superstep before the peers' models are averaged (Hama's model averaging)" },
  { key: "shards", flag: "--shards <n>", type: "integer", group: "Cluster", scope: "cluster", shown: "none: sync training",
    help: "parameter-server shards of a --mode async (Downpour SGD) job; each holds a range of the parameters and the optimizer" },
  { key: "nFetch", flag: "--n-fetch <portions>", type: "integer", group: "Cluster", scope: "cluster", shown: "1",
    help: "async: portions a worker computes between pulls of fresh parameters" },
  { key: "nPush", flag: "--n-push <portions>", type: "integer", group: "Cluster", scope: "cluster", shown: "1",
    help: "async: portions whose gradients a worker sums before pushing them" },
  { key: "portions", flag: "--portions <rows>", type: "integer", group: "Cluster", scope: "cluster", shown: "none: fixed splits",
    help: "async: the peers take units of this many rows from a queue served by peer 0 (faster peers do more; near an epoch's end an idle peer backs up a unit still out, the first result counts); one thread per peer" },
  { key: "groups", flag: "--groups <G>", type: "integer", group: "Cluster", scope: "cluster", shown: "none: each peer is its own replica",
    help: "async: split the peers into G groups (peer i in group i mod G); a group combines its gradients synchronously and pushes to the shards as one replica (Apache Horn's hybrid)" },
  { key: "warmStart", flag: "--warm-start <batches>", type: "integer", group: "Cluster", scope: "cluster", shown: "0",
    help: "async: mini-batches peer 0 trains alone against the shards before the others begin (DistBelief's warm start)" },
  { key: "consistency", flag: "--consistency <mode>", type: "choice", choices: ["async", "ssp", "bsp"], group: "Cluster", scope: "cluster", shown: "async",
    help: "async jobs: async (eventual, DistBelief), ssp (a worker at clock c reads once every worker passed c - s) or bsp (s = 0)" },
  { key: "staleness", flag: "--staleness <s>", type: "integer", group: "Cluster", scope: "cluster", shown: "4", help: "--consistency ssp: the staleness bound s, in clocks" },
  { key: "snapshots", flag: "--snapshots <where>", type: "string", group: "Cluster", scope: "cluster", shown: "nats",
    help: "async: where each shard snapshots its parameters, optimizer state and clocks: nats (the job's JetStream object store bucket), a directory, or none" },
  { key: "snapshotEvery", flag: "--snapshot-every <updates>", type: "integer", group: "Cluster", scope: "cluster", shown: "1000",
    help: "async: a shard snapshot after this many updates (and every 30 s with updates, and when it stops)" },
  { key: "durability", flag: "--durability <mode>", type: "choice", choices: ["snapshot", "log"], group: "Cluster", scope: "cluster", shown: "snapshot",
    help: "async: snapshot (a crashed shard may lose the updates since its last snapshot) or log (a push is acknowledged once logged in JetStream; a restarted shard loses nothing)" },
  { key: "isolate", flag: "--isolate", off: "no account of its own for the job on the embedded server", type: "boolean", group: "Cluster", scope: "cluster", shown: "on with the embedded server",
    help: "cluster: the embedded nats-server gives the job its own account and an nkey user allowed only downpour.<job>.> (and the job's buckets and streams)" },
  { key: "metrics", flag: "--metrics <file.json>", type: "string", group: "Cluster", scope: "cluster", shown: "none",
    help: "cluster: write the run's metrics (epochs, every peer's and shard's row) as JSON to this file" },
  { key: "joinTimeout", flag: "--join-timeout <seconds>", type: "number", group: "Cluster", scope: "cluster", shown: "60", help: "how long to wait for every peer to join" },
  { key: "peerTimeout", flag: "--peer-timeout <seconds>", type: "number", group: "Cluster", scope: "cluster", shown: "3",
    help: "a peer silent this long (no heartbeat) is lost and fails the job" },
];

/** The connection options of the settings; file paths are resolved against cwd (files are read at connect). */
export function connectionOptionsOf(settings: ConnectionSettings, cwd: string, name?: string): ClusterConnectionOptions {
  const path = (file: string | undefined) => (file === undefined ? undefined : resolve(cwd, file));
  const tls = settings.tlsCa !== undefined || settings.tlsCert !== undefined || settings.tlsKey !== undefined
    ? { ca: path(settings.tlsCa), cert: path(settings.tlsCert), key: path(settings.tlsKey) }
    : undefined;
  const options: ClusterConnectionOptions = {
    servers: settings.nats === undefined ? undefined : settings.nats.split(",").map((s) => s.trim()).filter((s) => s !== ""),
    token: settings.token,
    user: settings.user,
    password: settings.password,
    credsFile: path(settings.creds),
    nkeySeed: settings.nkey === undefined ? undefined : readSeed(path(settings.nkey)!, settings.nkey),
    tls,
    name,
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ClusterConnectionOptions;
}

/** The nkey seed in `file` (its first non-empty line). */
function readSeed(file: string, given: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new CliError(`--nkey ${given}: cannot read it (${(error as Error).message})`, { cause: error });
  }
  const seed = text.split(/\r?\n/).map((line) => line.trim()).find((line) => line !== "");
  if (!seed?.startsWith("S")) throw new CliError(`--nkey ${given}: expected an nkey seed (a line starting with S, like SUAM...)`);
  return seed;
}

/** What a peer run needs from the settings, checked; `job` is required unless the command makes one (cluster). */
export interface CheckedJob {
  job: string;
  peers: number;
  index?: number;
  /** sync: every mini-batch's gradient combined (BSP); async: Downpour SGD against `shards` shards. */
  mode: "sync" | "async";
  shards: number;
  syncEvery: number;
  nFetch: number;
  nPush: number;
  warmStart: number;
  /** Async task groups (undefined: none, each peer its own replica). */
  groups?: number;
  /** Async: rows per work unit taken from the job's queue (undefined: fixed splits). */
  portions?: number;
  /** Async: the shards' snapshot store ("nats", a directory, or undefined for none), every how many updates, and
   *  the durability of an acknowledged push. */
  snapshots?: string;
  snapshotEvery?: number;
  durability: "snapshot" | "log";
  consistency: "async" | "ssp" | "bsp";
  staleness?: number;
  joinTimeoutMs?: number;
  peerTimeoutMs?: number;
}

/** Settings of train that a cluster run cannot take (in every mode, or in async mode), and why. */
const NOT_IN_CLUSTER: readonly { key: keyof TrainSettingsLike; why: string; async?: true }[] = [
  { key: "resume", why: "async jobs keep their parameters on the shards, which do not resume from a model file; resume a sync job, or start afresh", async: true },
  { key: "checkpointEvery", why: "async jobs keep their parameters on the shards; checkpoints are for sync jobs", async: true },
  { key: "checkpoint", why: "async jobs keep their parameters on the shards; checkpoints are for sync jobs", async: true },
  { key: "saveBest", why: "cluster jobs save the last epoch" },
];

/** The subset of TrainSettings these checks read (kept structural to avoid an import cycle). */
interface TrainSettingsLike extends ClusterSettings {
  threads?: number;
  resume?: string;
  checkpointEvery?: number;
  checkpoint?: string;
  saveBest?: boolean;
  mode?: string;
  batchSize?: number;
  train?: { batchSize?: number; mode?: string; threads?: number };
}

type Sources = Partial<Record<string, string>>;

/** Checks the job settings of a peer, cluster or ps run; errors name the flag or config key (from `sources`). */
export function checkJobSettings(settings: TrainSettingsLike, sources: Sources, command: "peer" | "cluster" | "ps", defaultBatch: number): CheckedJob {
  const name = (key: string, flag: string) => sources[key] ?? flag;
  const asyncJob = command === "ps" || settings.mode === "async" || settings.train?.mode === "async";
  for (const { key, why, async } of NOT_IN_CLUSTER) {
    if (async && !asyncJob) continue;
    if (settings[key] !== undefined && settings[key] !== false) throw new CliError(`${name(key, key)}: not taken by downpour ${command}${async ? " --mode async" : ""}: ${why}`);
  }
  const peers = settings.peers;
  if (peers === undefined) throw new CliError(`downpour ${command} needs --peers <n>: how many peers train the job`);
  if (!Number.isInteger(peers) || peers < 1) throw new CliError(`${name("peers", "--peers")} must be a positive integer (the number of peers), got ${peers}`);
  if (command !== "cluster" && settings.job === undefined) throw new CliError(`downpour ${command} needs --job <id>: the id every peer of the job is started with`);
  const job = settings.job ?? "";
  if (settings.job !== undefined) {
    try {
      checkJobId(job);
    } catch (error) {
      throw new CliError(`${name("job", "--job")}: ${(error as Error).message}`, { cause: error });
    }
  }
  const index = settings.index;
  if (index !== undefined && (!Number.isInteger(index) || index < 0 || index >= peers)) {
    throw new CliError(`${name("index", "--index")} must be an integer in [0, ${peers - 1}] (--peers ${peers}), got ${index}`);
  }
  const mode = checkMode(settings, sources, command);
  const shards = mode === "async" ? positive(settings.shards, name("shards", "--shards"), "parameter-server shards") : 1;
  const syncEvery = positive(settings.syncEvery ?? 1, name("syncEvery", "--sync-every"), "mini-batches per superstep");
  const nFetch = positive(settings.nFetch ?? 1, name("nFetch", "--n-fetch"), "portions between pulls");
  const nPush = positive(settings.nPush ?? 1, name("nPush", "--n-push"), "portions per push");
  const warmStart = settings.warmStart ?? 0;
  if (!Number.isInteger(warmStart) || warmStart < 0) throw new CliError(`${name("warmStart", "--warm-start")} must be an integer >= 0 (mini-batches), got ${warmStart}`);
  if (mode === "sync") checkGlobalBatch(settings, sources, peers, defaultBatch);
  const consistency = settings.consistency ?? "async";
  if (mode === "sync" && settings.consistency !== undefined) throw new CliError(`${name("consistency", "--consistency")} is for --mode async (against parameter-server shards)`);
  if (settings.staleness !== undefined && consistency !== "ssp") throw new CliError(`${name("staleness", "--staleness")} goes with --consistency ssp (got ${consistency})`);
  if (settings.staleness !== undefined && (!Number.isInteger(settings.staleness) || settings.staleness < 0)) {
    throw new CliError(`${name("staleness", "--staleness")} must be an integer >= 0 (clocks), got ${settings.staleness}`);
  }
  const groups = checkGroupSettings(settings, sources, { mode, peers, consistency, warmStart, nPush }, defaultBatch);
  const portions = checkPortionSettings(settings, sources, { mode, consistency, warmStart, groups });
  const durable = checkDurabilitySettings(settings, sources, mode);
  return {
    job, peers, index, mode, shards, syncEvery, nFetch, nPush, warmStart, groups, portions, ...durable, consistency, staleness: settings.staleness,
    joinTimeoutMs: seconds(settings.joinTimeout, name("joinTimeout", "--join-timeout")),
    peerTimeoutMs: seconds(settings.peerTimeout, name("peerTimeout", "--peer-timeout")),
  };
}

/** sync (the default), or async with --shards; ps is async only. */
function checkMode(settings: TrainSettingsLike, sources: Sources, command: "peer" | "cluster" | "ps"): "sync" | "async" {
  const mode = settings.mode ?? settings.train?.mode ?? (command === "ps" || settings.shards !== undefined ? "async" : "sync");
  const flag = sources.mode ?? sources["train.mode"] ?? "--mode";
  if (mode === "async") {
    if (settings.shards === undefined) throw new CliError(`${flag} async needs --shards <n>: the parameter-server shards that hold the parameters (Downpour SGD)`);
    return "async";
  }
  if (mode !== "sync") throw new CliError(`${flag} ${mode}: a cluster job trains in sync (BSP) or async (Downpour) mode`);
  if (command === "ps") throw new CliError(`${flag} sync: parameter-server shards serve async (Downpour) jobs only`);
  if (settings.shards !== undefined) throw new CliError(`${sources.shards ?? "--shards"} is for --mode async (Downpour SGD); a sync job combines gradients between its peers`);
  return "sync";
}

function positive(value: number | undefined, flag: string, what: string): number {
  if (value === undefined) throw new CliError(`${flag} is required: ${what}`);
  if (!Number.isInteger(value) || value < 1) throw new CliError(`${flag} must be a positive integer (${what}), got ${value}`);
  return value;
}

/** The global mini-batch of a sync job is cut evenly between the peers. */
/** --snapshots (default nats), --snapshot-every, --durability: async jobs only; log needs snapshots. */
function checkDurabilitySettings(settings: TrainSettingsLike, sources: Sources, mode: string): { snapshots?: string; snapshotEvery?: number; durability: "snapshot" | "log" } {
  const given = (["snapshots", "snapshotEvery", "durability"] as const).find((key) => settings[key] !== undefined);
  if (mode !== "async") {
    if (given) throw new CliError(`${sources[given] ?? given} is for --mode async (the shards snapshot themselves)`);
    return { durability: "snapshot" };
  }
  const where = settings.snapshots ?? "nats";
  if (where === "") throw new CliError(`${sources.snapshots ?? "--snapshots"} must be nats, none or a directory, got an empty value`);
  const every = settings.snapshotEvery;
  if (every !== undefined && !(Number.isInteger(every) && every >= 1)) throw new CliError(`${sources.snapshotEvery ?? "--snapshot-every"} must be a positive number of updates, got ${every}`);
  const durability = settings.durability ?? "snapshot";
  if (durability === "log" && where === "none") throw new CliError(`${sources.durability ?? "--durability"} log replays the log after a snapshot: it needs --snapshots nats or a directory, not none`);
  return { ...(where === "none" ? {} : { snapshots: where }), ...(every === undefined ? {} : { snapshotEvery: every }), durability };
}

/** --portions: async consistency only, one thread per peer, not with --warm-start, --groups or --split. */
function checkPortionSettings(
  settings: TrainSettingsLike,
  sources: Sources,
  job: { mode: string; consistency: string; warmStart: number; groups: number | undefined },
): number | undefined {
  const rows = settings.portions;
  if (rows === undefined) return undefined;
  const flag = sources.portions ?? "--portions";
  if (job.mode !== "async") throw new CliError(`${flag} is for --mode async (the peers' units push to parameter-server shards)`);
  if (!Number.isInteger(rows) || rows < 1) throw new CliError(`${flag} must be a positive integer (rows per unit), got ${rows}`);
  const threads = settings.threads ?? settings.train?.threads;
  const clash =
    job.consistency !== "async" ? "--consistency ssp or bsp" : job.warmStart > 0 ? "--warm-start" : job.groups !== undefined ? "--groups"
    : settings.split !== undefined ? "--split (every peer holds the whole data; units replace splits)"
    : threads !== undefined && threads > 1 ? `--threads ${threads} (each unit runs on one thread: give --threads 1)` : undefined;
  if (clash) throw new CliError(`${flag} does not go with ${clash}`);
  return rows;
}

/** --groups: async only, dividing --peers, with a batch each group's peers share equally; not with ssp, bsp, warm start or --n-push. */
function checkGroupSettings(
  settings: TrainSettingsLike,
  sources: Sources,
  job: { mode: string; peers: number; consistency: string; warmStart: number; nPush: number },
  defaultBatch: number,
): number | undefined {
  const groups = settings.groups;
  if (groups === undefined) return undefined;
  const flag = sources.groups ?? "--groups";
  if (job.mode !== "async") throw new CliError(`${flag} is for --mode async (groups push to parameter-server shards)`);
  if (!Number.isInteger(groups) || groups < 1 || groups > job.peers || job.peers % groups !== 0) {
    throw new CliError(`${flag} must be an integer in [1, ${job.peers}] dividing --peers ${job.peers} (groups of equal size), got ${groups}`);
  }
  const clash = job.consistency !== "async" ? "--consistency ssp or bsp" : job.warmStart > 0 ? "--warm-start" : job.nPush > 1 ? "--n-push above 1" : undefined;
  if (clash) throw new CliError(`${flag} does not go with ${clash}: each group pushes its combined gradient every mini-batch, asynchronously`);
  const size = job.peers / groups;
  const batch = settings.batchSize ?? settings.train?.batchSize ?? defaultBatch;
  if (batch % size !== 0) {
    throw new CliError(`${sources.batchSize ?? sources["train.batchSize"] ?? "--batch-size"} ${batch} is a group's mini-batch and must be a multiple of its ${size} peers (--peers ${job.peers} / ${flag} ${groups})`);
  }
  return groups;
}

function checkGlobalBatch(settings: TrainSettingsLike, sources: Sources, peers: number, defaultBatch: number): void {
  const batch = settings.batchSize ?? settings.train?.batchSize ?? defaultBatch;
  if (batch % peers === 0) return;
  const lower = Math.max(peers, batch - (batch % peers));
  throw new CliError(
    `${sources.batchSize ?? sources["train.batchSize"] ?? "--batch-size"} ${batch} is the global mini-batch and must be a multiple of --peers ${peers} (each peer computes an equal share); try ${lower} or ${lower + peers}`,
  );
}

function seconds(value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new CliError(`${flag} must be a positive number of seconds, got ${value}`);
  return Math.round(value * 1000);
}
