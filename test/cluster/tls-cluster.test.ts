// TLS end to end: a TLS-only nats-server (a certificate the test makes with `selfsigned`) that also isolates the job
// (writeJobAuth's config, one nkey user per job): a Downpour shard and 2 tasks, each on its own connection verifying
// the CA and logging in with the job's seed, train logistic regression on Pima to local training's held-out accuracy;
// the server's monitoring (connz) shows every one of the job's connections under TLS, in the job's account. A client
// without the CA, or trusting another certificate, is refused with a ConnectionError of reason "tls"; one with the CA
// but no credentials gets through TLS and is refused with reason "auth".
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { LogisticRegression } from "../../src/api/models.js";
import { type ClusterConnectionOptions, ConnectionError, connectCluster } from "../../src/cluster/connection.js";
import { startDownpourShard, trainDownpour } from "../../src/cluster/downpour-training.js";
import { type JobAuth, jobAccount, writeJobAuth } from "../../src/cluster/job-auth.js";
import type { ParameterShard } from "../../src/cluster/ps-shard.js";
import type { TrainOptions } from "../../src/train/options.js";
import { freePort, type NatsServer, selfSignedCertificate, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const JOB = "tls-pima";
const TASKS = 2;
// As test/cluster/downpour.test.ts: Adagrad damps the stale gradients of the asynchronous tasks.
const TRAIN: TrainOptions = { epochs: 40, batchSize: 30, portion: 10, optimizer: "adagrad", learningRate: 0.5, threads: 1, mode: "async" };
const BSP = { joinTimeoutMs: 15_000, barrierTimeoutMs: 60_000 };
const TIMEOUT = { timeout: 120_000 };

/** One connection of the monitoring endpoint's /connz. */
interface ConnzEntry {
  name?: string;
  account?: string;
  tls_version?: string;
  tls_cipher_suite?: string;
}

const model = () => LogisticRegression.create({ inputs: 8, seed: 1 });

describe("a TLS-only server with job isolation", () => {
  const dir = mkdtempSync(join(tmpdir(), "downpour-tls-cluster-"));
  let cert: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  let auth: JobAuth;
  let monitor: number;
  let server: NatsServer;
  const connections: NatsConnection[] = [];

  before(async () => {
    cert = await selfSignedCertificate(dir, "server");
    stranger = await selfSignedCertificate(dir, "stranger");
    auth = await writeJobAuth(join(dir, "auth"), [JOB], { jetstream: "none" });
    // The monitoring port is probed free like the client port; another process taking it in between is retried.
    for (let attempt = 1; ; attempt++) {
      monitor = await freePort();
      try {
        server = await startNatsServer({ tls: cert, include: auth.configFile, jetstream: false, extraConfig: `http: "127.0.0.1:${monitor}"` });
        break;
      } catch (error) {
        if (attempt >= 3 || !/address already in use/i.test(String(error))) throw error;
      }
    }
  });
  after(async () => {
    await Promise.allSettled(connections.map((nc) => nc.close()));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The job's login over TLS, verifying the test's CA. */
  const jobLogin = (name: string): ClusterConnectionOptions => ({ servers: server.url, tls: { ca: cert.cert }, nkeySeed: auth.jobs.get(JOB)!.seed, name, timeoutMs: 5_000 });

  async function open(names: string[]): Promise<NatsConnection[]> {
    const opened = await Promise.all(names.map((name) => connectCluster(jobLogin(name))));
    connections.push(...opened);
    return opened;
  }

  async function connz(): Promise<ConnzEntry[]> {
    const response = await fetch(`http://127.0.0.1:${monitor}/connz?limit=1000&auth=true`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(response.status, 200);
    return ((await response.json()) as { connections?: ConnzEntry[] }).connections ?? [];
  }

  test("a Downpour shard and 2 tasks train Pima to local accuracy, every connection TLS in the job's account", TIMEOUT, async () => {
    assert.match(server.url, /^tls:\/\//);
    const { train, held } = await pima();
    const local = await model();
    await local.fit(train, { ...TRAIN, mode: "sync" });
    const localAccuracy = local.evaluate(held).accuracy!;
    local.dispose();
    const [shardModel, ...taskModels] = await Promise.all(Array.from({ length: 1 + TASKS }, model));
    const names = ["tls-shard-0", ...taskModels.map((_, i) => `tls-task-${i}`)];
    const ncs = await open(names);
    let shard: ParameterShard | undefined;
    try {
      for (const nc of ncs) assert.equal(nc.info?.tls_required, true);
      shard = await startDownpourShard({ job: JOB, shard: 0, shards: 1, tasks: TASKS, model: shardModel!, data: train, train: TRAIN, connection: ncs[0]!, onError: () => {} });
      const results = await Promise.all(
        taskModels.map((m, index) =>
          trainDownpour({ job: JOB, tasks: TASKS, shards: 1, index, name: `task-${index}`, connection: ncs[1 + index]!, model: m, data: train, train: TRAIN, bsp: BSP }),
        ),
      );
      const accuracy = taskModels[0]!.evaluate(held).accuracy!;
      assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);
      assert.ok(accuracy >= localAccuracy - 0.08, `Downpour over TLS ${accuracy} vs local ${localAccuracy}`);
      assert.deepEqual(taskModels[0]!.network.params.block.toArray(), taskModels[1]!.network.params.block.toArray(), "both tasks end with the shard's parameters");
      assert.equal(shard.stats.updates, results.reduce((n, r) => n + r.client.pushes, 0), "every push applied once");

      const listed = (await connz()).filter((c) => c.name !== undefined && names.includes(c.name));
      assert.deepEqual(listed.map((c) => c.name).sort(), [...names].sort(), "the server lists the job's connections");
      for (const c of listed) {
        assert.match(c.tls_version ?? "", /^1\.[23]$/, `${c.name} is under TLS (tls_version ${c.tls_version})`);
        assert.ok(c.tls_cipher_suite, `${c.name} has a cipher suite`);
        assert.equal(c.account, jobAccount(JOB), `${c.name} is in the job's account`);
      }
    } finally {
      await shard?.close();
      for (const m of [shardModel!, ...taskModels]) m.dispose();
    }
  });

  test("a client without the CA, or trusting another certificate, is refused with reason tls", TIMEOUT, async () => {
    const seed = auth.jobs.get(JOB)!.seed;
    const refusals: [string, ClusterConnectionOptions][] = [
      ["no CA (the system's)", { servers: server.url, nkeySeed: seed, timeoutMs: 5_000 }],
      ["plain nats:// URL, no CA", { servers: `nats://127.0.0.1:${server.port}`, nkeySeed: seed, timeoutMs: 5_000 }],
      ["another certificate as CA", { servers: server.url, tls: { ca: stranger.cert }, nkeySeed: seed, timeoutMs: 5_000 }],
    ];
    for (const [what, options] of refusals) {
      await assert.rejects(connectCluster(options), (error: unknown) => {
        assert.ok(error instanceof ConnectionError, `${what}: ${String(error)}`);
        assert.equal(error.reason, "tls", `${what}: ${error.message}`);
        assert.match(error.message, /TLS failed .*--tls-ca/, what);
        assert.deepEqual(error.servers, [options.servers]);
        return true;
      });
    }
  });

  test("the CA without the job's credentials passes TLS and is refused with reason auth", TIMEOUT, async () => {
    await assert.rejects(connectCluster({ servers: server.url, tls: { ca: cert.cert }, timeoutMs: 5_000 }), (error: unknown) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.reason, "auth", error.message);
      return true;
    });
  });
});
