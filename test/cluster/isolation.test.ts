// Job isolation enforced by a real nats-server started with a config writeJobAuth generated for jobs A, B and C:
// the files are 0600 and the config holds no seed; A's credentials publish, subscribe and request on downpour.A.>
// (and its task group's sub-job), a BSP join and a parameter shard with its client work on them, and so does a
// push-log stream the spec lists (message ids, duplicates dropped); publishing, subscribing or requesting on
// downpour.B.> with them is refused with a PermissionViolationError (nothing reaches B), B's shard cannot be reached,
// B's inbox replies and data bucket are invisible to A (one account per job), a bucket or stream outside A's list is
// refused; `downpour cluster` (peer and shard processes) runs job A on A's seed file and not job B; C's JetStream
// limit (1 MB) holds; a job list that would share subjects is refused by name; an unknown
// nkey, or none, is refused with reason "auth".
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { nkeys, type NatsConnection, PermissionViolationError } from "@nats-io/nats-core";
import { BspPeer } from "../../src/cluster/bsp.js";
import { ConnectionError, connectCluster } from "../../src/cluster/connection.js";
import { DATA_STORE_DEFAULTS, fetchDataset, listDatasets, putDataset, StoredDataError } from "../../src/cluster/data-store.js";
import { logStreamName } from "../../src/cluster/durability.js";
import { groupJobId } from "../../src/cluster/downpour-groups.js";
import { InvalidJobIdError } from "../../src/cluster/errors.js";
import { type JobAuth, JobAuthError, jobPermissions, writeJobAuth } from "../../src/cluster/job-auth.js";
import { ShardedParameterClient } from "../../src/cluster/ps-client.js";
import { ParameterShard } from "../../src/cluster/ps-shard.js";
import { snapshotBucket } from "../../src/cluster/snapshot-store.js";
import { type NatsServer, startNatsServer } from "../support/nats.js";
import { sharedData } from "../support/paths.js";
import { FAST, seededFloats, sleep } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 60_000 };
const A = "jobA";
const B = "jobB";
/** A job whose account may store 1 MB. */
const C = "jobC";

let auth: JobAuth;
let server: NatsServer;
const open: NatsConnection[] = [];

/** A connection with `job`'s seed (closed after the file). */
async function login(job: string): Promise<NatsConnection> {
  const nc = await connectCluster({ servers: server.url, nkeySeed: auth.jobs.get(job)!.seed, timeoutMs: 5_000, name: `isolation-${job}` });
  open.push(nc);
  return nc;
}

/** The permission violations the server reports on `nc` from now on. */
function violations(nc: NatsConnection): PermissionViolationError[] {
  const seen: PermissionViolationError[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "error" && status.error instanceof PermissionViolationError) seen.push(status.error);
    }
  })();
  return seen;
}

/** Waits (bounded) until `seen` holds a violation of `operation` on `subject`, and returns it. */
async function violation(seen: PermissionViolationError[], operation: string, subject: string, ms = 5_000): Promise<PermissionViolationError> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = seen.find((e) => e.operation === operation && e.subject === subject);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`no ${operation} permission violation on ${subject} within ${ms} ms (saw: ${seen.map((e) => e.message).join("; ") || "none"})`);
    await sleep(10);
  }
}

/** Runs the built CLI (as cluster.ts runs its children: Deno needs run -A) in `cwd`; killed after 90 s. */
function runCli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const child = spawn(process.execPath, [...(deno ? ["run", "-A"] : []), main, ...args], { cwd, env: { ...process.env, DOWNPOUR_CACHE: cwd }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The PermissionViolationError `error` is or was caused by (nats.js wraps a refused request in a RequestError). */
function permissionCause(error: unknown): PermissionViolationError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) if (e instanceof PermissionViolationError) return e;
  return undefined;
}

/** Subscribes `nc` to `subject` (the server has it on return); got() is the first message's text, if any came. */
async function firstMessage(nc: NatsConnection, subject: string): Promise<{ got: () => string | undefined }> {
  let got: string | undefined;
  nc.subscribe(subject, { callback: (_e, m) => {
      got ??= m.string();
    } });
  await nc.flush();
  return { got: () => got };
}

describe("one account and one nkey user per job, generated", () => {
  const dir = mkdtempSync(join(tmpdir(), "downpour-job-auth-"));
  before(async () => {
    auth = await writeJobAuth(join(dir, "auth"), [{ job: A, groups: 1, streams: [`${A}-log`] }, { job: B, objectBuckets: ["jobB-snapshots"] }, { job: C, objectBuckets: ["jobC-data"], limits: { fileBytes: 1 << 20 } }]);
    server = await startNatsServer({ include: auth.configFile });
  });
  after(async () => {
    await Promise.allSettled(open.map((nc) => nc.close()));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the config and the seed files are 0600; the config names public keys, never a seed", TIMEOUT, () => {
    const config = readFileSync(auth.configFile, "utf8");
    for (const file of [auth.configFile, ...[...auth.jobs.values()].map((c) => c.seedFile)]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, `${file} mode`);
    }
    for (const job of [A, B]) {
      const c = auth.jobs.get(job)!;
      assert.equal(readFileSync(c.seedFile, "utf8").trim(), c.seed);
      assert.match(c.seed, /^SU/);
      assert.ok(config.includes(c.publicKey), `the config names ${job}'s public key`);
      assert.ok(!config.includes(c.seed), `the config holds no seed of ${job}`);
      assert.ok(config.includes(`"downpour.${job}.>"`));
    }
  });

  test("A publishes, subscribes and requests on downpour.A.>", TIMEOUT, async () => {
    const [a1, a2] = [await login(A), await login(A)];
    const { got } = await firstMessage(a2, `downpour.${A}.hello`);
    a2.subscribe(`downpour.${A}.echo`, { callback: (_e, m) => void m.respond(`echo ${m.string()}`) });
    await a2.flush();
    a1.publish(`downpour.${A}.hello`, "hi");
    const reply = await a1.request(`downpour.${A}.echo`, "ping", { timeout: 5_000 });
    assert.equal(reply.string(), "echo ping");
    await a2.flush();
    assert.equal(got(), "hi");
    // A's task group 0 (trainDownpourGroups' sub-job) is A's too.
    const group = `downpour.${groupJobId(A, 0)}.ctl`;
    const inGroup = await firstMessage(a2, group);
    a1.publish(group, "group");
    await a1.flush();
    await a2.flush();
    assert.equal(inGroup.got(), "group");
  });

  test("A publishing, subscribing or requesting on downpour.B.> gets a permission violation; nothing reaches B", TIMEOUT, async () => {
    const [a, b] = [await login(A), await login(B)];
    const seen = violations(a);
    const { got } = await firstMessage(b, `downpour.${B}.>`);
    a.publish(`downpour.${B}.ctl`, "forged");
    const published = await violation(seen, "publish", `downpour.${B}.ctl`);
    assert.match(published.message, /permissions violation/i);

    const sub = a.subscribe(`downpour.${B}.>`);
    const closed = await Promise.race([sub.closed, sleep(5_000).then(() => "still open")]);
    assert.ok(closed instanceof PermissionViolationError, `the subscription ends with a permission error, got ${String(closed)}`);
    assert.equal(closed.operation, "subscription");
    assert.equal(closed.subject, `downpour.${B}.>`);
    a.publish(`downpour.${groupJobId(B, 0)}.ctl`, "forged");
    await violation(seen, "publish", `downpour.${groupJobId(B, 0)}.ctl`);
    const everything = a.subscribe(">");
    assert.ok((await Promise.race([everything.closed, sleep(5_000)])) instanceof PermissionViolationError, "> is refused too");

    await assert.rejects(a.request(`downpour.${B}.ps.0.info`, "", { timeout: 5_000 }), (error: unknown) => {
      // nats.js rejects the request with a RequestError whose cause is the server's violation.
      const cause = permissionCause(error);
      assert.ok(cause, String(error));
      assert.equal(cause.subject, `downpour.${B}.ps.0.info`);
      return true;
    });
    // The connection stays usable on its own subjects; B never saw the forged message.
    const echo = await firstMessage(a, `downpour.${A}.after`);
    a.publish(`downpour.${A}.after`, "still here");
    await a.flush();
    await b.flush();
    assert.equal(echo.got(), "still here");
    assert.equal(got(), undefined, "B received nothing from A");
  });

  test("A's _INBOX.> sees none of B's request replies (each job has its own account)", TIMEOUT, async () => {
    const [a, b1, b2] = [await login(A), await login(B), await login(B)];
    const { got } = await firstMessage(a, "_INBOX.>");
    b2.subscribe(`downpour.${B}.echo`, { callback: (_e, m) => void m.respond("secret") });
    await b2.flush();
    assert.equal((await b1.request(`downpour.${B}.echo`, "", { timeout: 5_000 })).string(), "secret");
    await b2.flush();
    await a.flush();
    assert.equal(got(), undefined);
  });

  test("a BSP join and a superstep of job A on A's credentials", TIMEOUT, async () => {
    const ncs = [await login(A), await login(A)];
    const peers = await Promise.all(["p0", "p1"].map((name, i) => BspPeer.join({ ...FAST, job: A, peers: 2, name, connection: ncs[i]!, onError: () => {} })));
    try {
      for (const peer of peers) peer.send(1 - peer.index, `from ${peer.name}`);
      await Promise.all(peers.map((p) => p.sync()));
      for (const peer of peers) assert.deepEqual([...peer.messages()].map((m) => m.data), [`from ${peer.peerNames[1 - peer.index]}`]);
    } finally {
      await Promise.allSettled(peers.map((p) => p.close()));
    }
  });

  test("A's shard serves A's client; B's shard cannot be reached with A's credentials", TIMEOUT, async () => {
    const keys = 64;
    const init = seededFloats(keys, 7);
    const [aShardNc, aClientNc, bShardNc] = [await login(A), await login(A), await login(B)];
    const train = { optimizer: "sgd", learningRate: 1, momentum: 0, l2: 0 } as const;
    const shards = [
      await ParameterShard.start({ job: A, shard: 0, shards: 1, connection: aShardNc, init, train, onError: () => {} }),
      await ParameterShard.start({ job: B, shard: 0, shards: 1, connection: bShardNc, init, train, onError: () => {} }),
    ];
    const clients: ShardedParameterClient[] = [];
    try {
      const client = await ShardedParameterClient.connect({ job: A, shards: 1, keys, connection: aClientNc, worker: 0, connectTimeoutMs: 10_000 });
      clients.push(client);
      await client.push(new Float32Array(keys).fill(0.5), undefined, { worker: 0, seq: 1 });
      const into = new Float32Array(keys);
      assert.equal(await client.pull(into), 1);
      for (let i = 0; i < keys; i++) assert.equal(into[i], Math.fround(init[i]! - 0.5));

      const seen = violations(aClientNc);
      await assert.rejects(
        ShardedParameterClient.connect({ job: B, shards: 1, keys, connection: aClientNc, worker: 1, connectTimeoutMs: 2_000 }).then((c) => clients.push(c)),
        "A's connection cannot reach B's shard",
      );
      assert.ok(seen.some((e) => e.operation === "publish" && e.subject.startsWith(`downpour.${B}.ps.0.`)), `violations: ${seen.map((e) => e.message).join("; ")}`);
      assert.equal(shards[1]!.version, 0, "B's shard is unchanged");
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(shards.map((s) => s.close()));
    }
  });

  test("data buckets are per job: A lists none of B's datasets and cannot fetch one; a bucket outside A's list is refused", TIMEOUT, async () => {
    const [a, b] = [await login(A), await login(B)];
    const file = join(dir, "rows.csv");
    writeFileSync(file, "1,2,3\n4,5,6\n");
    const stored = await putDataset(b, file);
    assert.deepEqual((await listDatasets(b)).map((d) => d.name), [stored.name]);
    assert.deepEqual(await listDatasets(a), [], "A's account has no bucket of B's");
    await assert.rejects(fetchDataset(a, stored.name, { cacheDir: join(dir, "cache") }), (error: unknown) => error instanceof StoredDataError && error.reason === "missing");
    const own = await putDataset(a, file);
    assert.equal(own.name, stored.name, "A keeps its own copy under the same name, in its own account");
    // B's extra bucket is B's: A's user may not touch a bucket of that name, even in its own account.
    await assert.rejects(new Objm(a).create("jobB-snapshots"), (error: unknown) => {
      assert.match(permissionCause(error)?.subject ?? String(error), /^\$JS\.API\.STREAM\.[A-Z]+\.OBJ_jobB-snapshots$/);
      return true;
    });
    await new Objm(b).create("jobB-snapshots");
  });

  test("a stream the spec lists (a push log) works in scoped mode: publishes with message ids, duplicates dropped, read back", TIMEOUT, async () => {
    const a = await login(A);
    const jsm = await jetstreamManager(a);
    const stream = `${A}-log`;
    await jsm.streams.add({ name: stream, subjects: [`downpour.${A}.log.>`], duplicate_window: 60_000_000_000 });
    const js = jetstream(a);
    const first = await js.publish(`downpour.${A}.log.0`, "push 1", { msgID: "w0-1" });
    const again = await js.publish(`downpour.${A}.log.0`, "push 1", { msgID: "w0-1" });
    assert.equal(again.duplicate, true, "the duplicate window drops a replay");
    await js.publish(`downpour.${A}.log.0`, "push 2", { msgID: "w0-2" });
    const consumer = await js.consumers.get(stream);
    const texts: string[] = [];
    for (let i = 0; i < 2; i++) texts.push((await consumer.next({ expires: 5_000 }))!.string());
    assert.deepEqual(texts, ["push 1", "push 2"]);
    assert.equal(first.seq, 1);
    await assert.rejects(jsm.streams.add({ name: `${B}-log`, subjects: [`downpour.${A}.other.>`] }), (error: unknown) => permissionCause(error) !== undefined);
  });

  test("a job's JetStream limits hold: C stores 100 kB in a bucket, 2 MB more are refused", TIMEOUT, async () => {
    const c = await login(C);
    const store = await new Objm(c).create("jobC-data");
    const bytes = (n: number, seed: number) => Uint8Array.from(seededFloats(n, seed), (v) => Math.floor((v + 1) * 127));
    await store.putBlob({ name: "small" }, bytes(100_000, 1));
    await assert.rejects(store.putBlob({ name: "big" }, bytes(2_000_000, 2)), (error: unknown) => /resource limits exceeded/i.test(String(error)));
    assert.deepEqual((await store.list()).filter((o) => !o.deleted).map((o) => [o.name, o.size]), [["small", 100_000]], "the refused object is not stored");
  });

  test("downpour cluster on job A's seed file: its peer and shard processes train (async: snapshots in the job's bucket, task groups, the update log) and exit 0", TIMEOUT, async () => {
    const data = join(dir, "pima.csv");
    writeFileSync(data, readFileSync(sharedData("pima-diabetes.csv")));
    const common = ["cluster", "--data", data, "--model", "logistic", "--epochs", "3", "--batch-size", "64", "--seed", "7", "--json", "--quiet", "--no-save", "--no-curves"];
    const asA = ["--nats", server.url, "--nkey", auth.jobs.get(A)!.seedFile, "--job", A];
    for (const mode of [["--peers", "2", "--consistency", "async", "--shards", "2"], ["--peers", "2", "--consistency", "async", "--shards", "1", "--groups", "1", "--durability", "log"]]) {
      const run = await runCli([...common, ...mode, ...asA], dir);
      assert.equal(run.code, 0, `${mode.join(" ")}: ${run.stderr}`);
      const result = JSON.parse(run.stdout) as { rows: { pushes?: number }[]; shards?: { stats: { updates: number } }[] };
      assert.equal(result.rows.length, 2);
      assert.ok(result.shards?.length && result.shards.every((shard) => shard.stats.updates > 0), `${mode.join(" ")}: every shard applied updates`);
    }
    // The shards kept their snapshots in A's bucket and the log run its update log in A's stream, in A's account.
    const a = await login(A);
    const snapshots = await (await new Objm(a).open(snapshotBucket(A))).list();
    assert.ok(snapshots.some((o) => !o.deleted), "snapshots in the job's bucket");
    assert.ok((await (await jetstreamManager(a)).streams.info(logStreamName(A))).state.messages > 0, "entries in the job's update log");
    const refused = await runCli([...common, "--peers", "2", "--nats", server.url, "--nkey", auth.jobs.get(A)!.seedFile, "--job", B], dir);
    assert.notEqual(refused.code, 0, "A's seed cannot run job B");
    assert.match(refused.stderr, /the cluster job failed:[\s\S]*Permissions Violation for Subscription to "downpour\.jobB\./i);
  });

  test("an nkey the config does not name is refused with reason auth", TIMEOUT, async () => {
    const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
    await assert.rejects(connectCluster({ servers: server.url, nkeySeed: stranger, timeoutMs: 5_000 }), (error: unknown) => error instanceof ConnectionError && error.reason === "auth");
    await assert.rejects(connectCluster({ servers: server.url, timeoutMs: 5_000 }), (error: unknown) => error instanceof ConnectionError && error.reason === "auth");
  });
});

describe("the job list is checked before anything is written", () => {
  const dir = mkdtempSync(join(tmpdir(), "downpour-job-auth-bad-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  test("a job given twice, subjects shared with another job's task group, a bad id or bucket are refused by name", TIMEOUT, async () => {
    await assert.rejects(writeJobAuth(dir, [A, A]), (e: unknown) => e instanceof JobAuthError && /"jobA" is given twice/.test(e.message));
    await assert.rejects(writeJobAuth(dir, [{ job: "x", groups: 2 }, "x-g1"]), (e: unknown) => e instanceof JobAuthError && /share downpour\.x-g1\.>/.test(e.message));
    await assert.rejects(writeJobAuth(dir, ["a.b"]), InvalidJobIdError);
    await assert.rejects(writeJobAuth(dir, [{ job: "a", objectBuckets: ["no.dots"] }]), (e: unknown) => e instanceof JobAuthError && /objectBuckets/.test(e.message));
    await assert.rejects(writeJobAuth(dir, []), JobAuthError);
    await assert.rejects(writeJobAuth(dir, [{ job: "a", limits: { fileBytes: -1 } }]), (e: unknown) => e instanceof JobAuthError && /limits\.fileBytes/.test(e.message));
  });

  test("task groups' sub-jobs are covered; the JetStream scope is per stream", TIMEOUT, () => {
    const p = jobPermissions({ job: "j", groups: 2, kvBuckets: ["kv1"] });
    for (const g of [0, 1]) assert.ok(p.subscribe.includes(`downpour.${groupJobId("j", g)}.>`));
    assert.ok(!p.publish.includes("$JS.API.>"), "scoped: no blanket JetStream API");
    assert.ok(p.publish.includes("$JS.API.STREAM.*.KV_kv1") && p.publish.includes("$KV.kv1.>"));
    assert.ok(jobPermissions({ job: "j" }, { jetstream: "account" }).publish.includes("$JS.API.>"));
    // By default: the data store's bucket, the shards' snapshot bucket and their update log.
    for (const stream of [`OBJ_${DATA_STORE_DEFAULTS.bucket}`, `OBJ_${snapshotBucket("j")}`, logStreamName("j")]) {
      assert.ok(p.publish.includes(`$JS.API.STREAM.*.${stream}`), stream);
    }
  });
});
