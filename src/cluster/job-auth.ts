// Job isolation enforced by nats-server, not by convention: a generated server config fragment with one account per
// job (its own subject space, inboxes and JetStream), and in it one nkey user whose permissions allow only the job's
// subjects (downpour.<job>.>, its task groups' downpour.<job>-g<i>.>), its inboxes and the JetStream API of the job's
// own buckets and streams (by default: the data store's bucket, its snapshot bucket and its shards' update log), with
// optional JetStream limits per account. The seeds are written one file per job and the config beside them,
// atomically, mode 0600; the config holds public keys only. nats-server includes it (NatsServerOptions.include); a
// job's processes log in with its seed (ClusterConnectionOptions.nkeySeed, the CLI's --nkey <seed-file>).
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { nkeys } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.js";
import { describeValue } from "../util/describe.js";
import { DATA_STORE_DEFAULTS } from "./data-store.js";
import { logStreamName } from "./durability.js";
import { snapshotBucket } from "./snapshot-store.js";
import { checkJobId, SUBJECT_ROOT } from "./subjects.js";

/** How much of JetStream a job's user may use: "scoped" (the API of its listed buckets and streams only),
 * "account" (all of the JetStream API, within its own account: still invisible to other jobs) or "none". */
export type JobJetStreamScope = "scoped" | "account" | "none";

/** One job to isolate. Only `job` is required; the defaults are in JOB_AUTH_DEFAULTS. */
export interface JobAuthSpec {
  /** The job id (checkJobId): its user may use downpour.<job>.> . */
  job: string;
  /** Task groups of trainDownpourGroups: also downpour.<job>-g<i>.> for i < groups (default 0). */
  groups?: number;
  /** Object-store buckets of the job, besides the defaults (JOB_AUTH_DEFAULTS.objectBuckets: the data store's and
   * the job's snapshot bucket downpour-snap-<job>). */
  objectBuckets?: readonly string[];
  /** Key-value buckets of the job (default none). */
  kvBuckets?: readonly string[];
  /** Plain JetStream streams of the job, by name, besides the defaults (JOB_AUTH_DEFAULTS.streams: the shards'
   * update log DOWNPOUR_PSLOG_<job>); their subjects must lie under downpour.<job>. . */
  streams?: readonly string[];
  /** The job account's JetStream limits (default: JobAuthOptions.limits, else none); fields given here win. */
  limits?: JobJetStreamLimits;
}

/** Limits of one job account's JetStream, so that no job exhausts the server's storage for the others. Every field
 * is optional (default: no limit). */
export interface JobJetStreamLimits {
  /** Bytes of memory-backed streams (max_mem). */
  memoryBytes?: number;
  /** Bytes of file-backed streams, buckets included (max_file). */
  fileBytes?: number;
  /** Streams (each bucket is one). */
  streams?: number;
  /** Consumers. */
  consumers?: number;
}

/** Options of the whole config. */
export interface JobAuthOptions {
  /** JetStream for every job (default "scoped"). */
  jetstream?: JobJetStreamScope;
  /** The config file's name in the directory (default "jobs-auth.conf"). */
  configName?: string;
  /** JetStream limits of every job account (default none); a spec's own limits win field by field. */
  limits?: JobJetStreamLimits;
}

/** The defaults (the one place they are written). */
export const JOB_AUTH_DEFAULTS = {
  jetstream: "scoped" as JobJetStreamScope,
  configName: "jobs-auth.conf",
  /** The buckets every job may use in its own account: the data store's (datasets are put per job) and its shards'
   * snapshots. */
  objectBuckets: (job: string): string[] => [DATA_STORE_DEFAULTS.bucket, snapshotBucket(job)],
  /** The streams every job may use: its shards' update log (durability "log"). */
  streams: (job: string): string[] => [logStreamName(job)],
  /** A job's seed file: <job>.nk in the directory. */
  seedSuffix: ".nk",
  /** The files' mode (owner read/write only) and the directory's when it is created. */
  fileMode: 0o600,
  dirMode: 0o700,
  /** The inbox prefix of nats.js (request replies, JetStream deliveries); per account, so it is the job's own. */
  inbox: "_INBOX",
  /** The prefix of a job's account name: "downpour-job-<job>". */
  accountPrefix: "downpour-job-",
  groups: 0,
} as const;

/** The subjects a job's user may publish and subscribe to. */
export interface JobPermissions {
  publish: string[];
  subscribe: string[];
}

/** One job's login. */
export interface JobCredentials {
  job: string;
  /** The server account the job lives in. */
  account: string;
  /** The user's public nkey (U...), as the config names it. */
  publicKey: string;
  /** The user's seed (SU...): the secret. */
  seed: string;
  /** The file holding the seed (mode 0600): pass it as --nkey, or read it into nkeySeed. */
  seedFile: string;
  permissions: JobPermissions;
}

/** What writeJobAuth wrote. */
export interface JobAuth {
  /** The config fragment (an accounts block, mode 0600): NatsServerOptions.include, or include it by hand. */
  configFile: string;
  /** Every job's login, by job id, in the order given. */
  jobs: ReadonlyMap<string, JobCredentials>;
}

/** A job list or option that cannot make a config: the message names the job and the field. */
export class JobAuthError extends InvalidArgumentError {}

const NAME = /^[A-Za-z0-9_-]{1,255}$/;

/** The server account of `job`. */
export function jobAccount(job: string): string {
  return `${JOB_AUTH_DEFAULTS.accountPrefix}${checkJobId(job)}`;
}

/** The JetStream API subjects of one stream (every operation on it and its consumers; nothing else). */
export function streamApiSubjects(stream: string): string[] {
  const api = "$JS.API";
  return [
    `${api}.STREAM.*.${stream}`,
    `${api}.STREAM.MSG.*.${stream}`,
    `${api}.DIRECT.GET.${stream}`,
    `${api}.DIRECT.GET.${stream}.>`,
    `${api}.CONSUMER.*.${stream}`,
    `${api}.CONSUMER.*.${stream}.>`,
    `${api}.CONSUMER.MSG.NEXT.${stream}.*`,
    `${api}.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** The job's subject roots: downpour.<job> and downpour.<job>-g<i> for each task group (downpour-groups.ts's
 * groupJobId, spelled here so that this module does not load the trainer; the isolation test checks they agree). */
function subjectRoots(spec: Required<Pick<JobAuthSpec, "job" | "groups">>): string[] {
  const groups = Array.from({ length: spec.groups }, (_, i) => checkJobId(`${spec.job}-g${i}`));
  return [spec.job, ...groups].map((id) => `${SUBJECT_ROOT}.${id}`);
}

/** What `spec`'s user may publish and subscribe to (checked first, see checkSpec). */
export function jobPermissions(spec: JobAuthSpec, options: JobAuthOptions = {}): JobPermissions {
  const checked = checkSpec(spec);
  const scope = options.jetstream ?? JOB_AUTH_DEFAULTS.jetstream;
  const own = [...subjectRoots(checked).map((root) => `${root}.>`), `${JOB_AUTH_DEFAULTS.inbox}.>`];
  const publish = [...own];
  if (scope === "account") publish.push("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$O.>", "$KV.>");
  if (scope === "scoped") {
    publish.push("$JS.API.INFO");
    for (const bucket of checked.objectBuckets) publish.push(`$O.${bucket}.>`, ...streamApiSubjects(`OBJ_${bucket}`));
    for (const bucket of checked.kvBuckets) publish.push(`$KV.${bucket}.>`, ...streamApiSubjects(`KV_${bucket}`));
    for (const stream of checked.streams) publish.push(...streamApiSubjects(stream));
  }
  return { publish, subscribe: own };
}

interface CheckedSpec {
  job: string;
  groups: number;
  limits: JobJetStreamLimits;
  objectBuckets: string[];
  kvBuckets: string[];
  streams: string[];
}

function names(value: unknown, field: string, job: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new JobAuthError(`job auth: job "${job}": ${field} must be an array of names, got ${describeValue(value)}`);
  for (const name of value) {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new JobAuthError(`job auth: job "${job}": ${field} entry ${describeValue(name)} is not a JetStream name (1 to 255 letters, digits, "-" or "_")`);
    }
  }
  return [...value];
}

/** The spec with defaults filled; throws JobAuthError (or InvalidJobIdError) naming the job and the field. */
function checkSpec(spec: JobAuthSpec | string): CheckedSpec {
  const given = typeof spec === "string" ? { job: spec } : spec;
  if (typeof given !== "object" || given === null) throw new JobAuthError(`job auth: a job must be a job id or { job, ... }, got ${describeValue(given)}`);
  const job = checkJobId(given.job);
  const groups = given.groups ?? JOB_AUTH_DEFAULTS.groups;
  if (!Number.isInteger(groups) || groups < 0 || groups > 1024) {
    throw new JobAuthError(`job auth: job "${job}": groups must be an integer from 0 to 1024, got ${describeValue(groups)}`);
  }
  const objectBuckets = [...new Set([...JOB_AUTH_DEFAULTS.objectBuckets(job), ...names(given.objectBuckets, "objectBuckets", job)])];
  const streams = [...new Set([...JOB_AUTH_DEFAULTS.streams(job), ...names(given.streams, "streams", job)])];
  return { job, groups, limits: checkLimits(given.limits, job), objectBuckets, kvBuckets: names(given.kvBuckets, "kvBuckets", job), streams };
}

const LIMIT_KEYS = { memoryBytes: "max_mem", fileBytes: "max_file", streams: "max_streams", consumers: "max_consumers" } as const;

function checkLimits(limits: unknown, job: string): JobJetStreamLimits {
  if (limits === undefined) return {};
  if (typeof limits !== "object" || limits === null) throw new JobAuthError(`job auth: job "${job}": limits must be an object, got ${describeValue(limits)}`);
  for (const [key, value] of Object.entries(limits)) {
    if (!(key in LIMIT_KEYS)) throw new JobAuthError(`job auth: job "${job}": unknown limit "${key}" (known: ${Object.keys(LIMIT_KEYS).join(", ")})`);
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
      throw new JobAuthError(`job auth: job "${job}": limits.${key} must be a positive integer, got ${describeValue(value)}`);
    }
  }
  return limits as JobJetStreamLimits;
}

/** The account's jetstream setting: "enabled", or the limits block. */
function jetstreamSetting(limits: JobJetStreamLimits): string {
  const parts = Object.entries(LIMIT_KEYS).flatMap(([key, name]) => {
    const value = limits[key as keyof JobJetStreamLimits];
    return value === undefined ? [] : [`${name}: ${value}`];
  });
  return parts.length === 0 ? "enabled" : `{ ${parts.join(", ")} }`;
}

/** Refuses a job list in which two jobs are one, or one job's subjects are another's (job "a" with groups and job "a-g0"). */
function checkDistinct(specs: readonly CheckedSpec[]): void {
  if (specs.length === 0) throw new JobAuthError("job auth: no jobs given (expected at least one job id)");
  const owner = new Map<string, string>();
  for (const spec of specs) {
    for (const root of subjectRoots(spec)) {
      const other = owner.get(root);
      if (other !== undefined) {
        const why = other === spec.job ? "is given twice" : `would share ${root}.> with job "${other}"`;
        throw new JobAuthError(`job auth: job "${spec.job}" ${why}; every job needs subjects of its own`);
      }
      owner.set(root, spec.job);
    }
  }
}

function stripUndefined(limits: JobJetStreamLimits): JobJetStreamLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

function q(value: string): string {
  return JSON.stringify(value);
}

function list(values: readonly string[]): string {
  return `[${values.map(q).join(", ")}]`;
}

/** The accounts block for the jobs (each with the user of the public key beside it). */
export function jobAuthConfig(users: readonly { spec: JobAuthSpec; publicKey: string }[], options: JobAuthOptions = {}): string {
  const specs = users.map((u) => checkSpec(u.spec));
  checkDistinct(specs);
  const scope = options.jetstream ?? JOB_AUTH_DEFAULTS.jetstream;
  const accounts = users.map(({ spec, publicKey }, i) => {
    if (!/^U[A-Z2-7]{55}$/.test(publicKey)) throw new JobAuthError(`job auth: job "${specs[i]!.job}": ${describeValue(publicKey)} is not a user public nkey (U followed by 55 characters)`);
    const p = jobPermissions(spec, options);
    const user = `{ nkey: ${publicKey}, permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} } } }`;
    const limits = { ...checkLimits(options.limits, specs[i]!.job), ...stripUndefined(specs[i]!.limits) };
    const jetstream = scope === "none" ? "" : `    jetstream: ${jetstreamSetting(limits)}\n`;
    return `  ${q(jobAccount(specs[i]!.job))}: {\n${jetstream}    users: [\n      ${user}\n    ]\n  }`;
  });
  return `# downpour job isolation: one account and one nkey user per job (generated; public keys only)\naccounts {\n${accounts.join("\n")}\n}\n`;
}

/** Writes `data` to `path` whole or not at all, with `mode` from the start (a temp file beside it, fsynced, renamed). */
export async function writePrivateFile(path: string, data: string, mode: number = JOB_AUTH_DEFAULTS.fileMode): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", mode);
  try {
    await handle.chmod(mode); // the umask may have removed bits; never added any
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Generates one nkey user per job and writes, in `dir` (created with mode 0700 when missing), `<job>.nk` (the seed)
 * per job and the config fragment (JOB_AUTH_DEFAULTS.configName), each atomically with mode 0600. Start the server
 * with `include: auth.configFile` (startNatsServer); connect a job's processes with its seed. Throws JobAuthError or
 * InvalidJobIdError (before writing anything) for a bad job list; the file system's error as it is.
 */
export async function writeJobAuth(dir: string, jobs: readonly (JobAuthSpec | string)[], options: JobAuthOptions = {}): Promise<JobAuth> {
  if (!Array.isArray(jobs)) throw new JobAuthError(`job auth: jobs must be an array of job ids or { job, ... }, got ${describeValue(jobs)}`);
  const configName = options.configName ?? JOB_AUTH_DEFAULTS.configName;
  if (typeof configName !== "string" || !/^[A-Za-z0-9._-]+$/.test(configName) || configName.startsWith(".")) {
    throw new JobAuthError(`job auth: configName must be a plain file name (letters, digits, ".", "_", "-"), got ${describeValue(configName)}`);
  }
  const specs = jobs.map((spec) => (typeof spec === "string" ? { job: spec } : spec));
  const users = specs.map((spec) => ({ spec, pair: nkeys.createUser() }));
  const config = jobAuthConfig(users.map((u) => ({ spec: u.spec, publicKey: u.pair.getPublicKey() })), options);
  const root = resolve(dir);
  await mkdir(root, { recursive: true, mode: JOB_AUTH_DEFAULTS.dirMode });
  const credentials = new Map<string, JobCredentials>();
  for (const { spec, pair } of users) {
    const seed = new TextDecoder().decode(pair.getSeed());
    const seedFile = join(root, `${spec.job}${JOB_AUTH_DEFAULTS.seedSuffix}`);
    await writePrivateFile(seedFile, `${seed}\n`);
    credentials.set(spec.job, { job: spec.job, account: jobAccount(spec.job), publicKey: pair.getPublicKey(), seed, seedFile, permissions: jobPermissions(spec, options) });
  }
  const configFile = join(root, configName);
  await writePrivateFile(configFile, config);
  return { configFile, jobs: credentials };
}
