// Real nats-server processes for tests: one server (src/cluster/nats-server.ts, which `downpour cluster` uses too)
// or a routed cluster on free 127.0.0.1 ports; test TLS certificates.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { generate as generateCertificate } from "selfsigned";
import { freePort, natsServerPath, type NatsServer, type NatsServerOptions, startNatsServer } from "../../src/cluster/nats-server.js";

export { freePort, natsServerPath, startNatsServer, type NatsServer, type NatsServerOptions };

/** Attempts at fresh ports when a cluster's ports were taken between probing and binding. */
const START_ATTEMPTS = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A running cluster of routed servers. */
export interface NatsCluster {
  /** Client URLs, one per server, in order. */
  readonly urls: string[];
  readonly servers: NatsServer[];
  /** Stops every server (in parallel); resolves when all have exited. */
  stop(): Promise<void>;
}

/** Options of startNatsCluster: each server's (except cluster and port), plus how long to wait for the routes. */
export interface NatsClusterOptions extends Omit<NatsServerOptions, "cluster" | "port" | "serverName"> {
  /** Cluster name (default "downpour-test"). */
  name?: string;
  /** How long to wait for routes (and the JetStream meta leader, when JetStream is on), in ms (default 20 000). */
  routesTimeoutMs?: number;
}

/** Starts n routed servers (default 3) with JetStream (unless off), each with its own store dir and server_name;
 * resolves when every server forwards messages to every other and, with JetStream, the cluster answers
 * $JS.API.INFO. Client options for the readiness check come from `auth` (TLS clusters are not supported). */
export async function startNatsCluster(n = 3, options: NatsClusterOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`startNatsCluster: n must be an integer >= 1, got ${n}`);
  if (options.tls) throw new Error("startNatsCluster: TLS clusters are not supported by the harness");
  natsServerPath();
  const name = options.name ?? "downpour-test";
  const servers: NatsServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (let attempt = 0; ; attempt++) {
      const clusterPorts = await distinctFreePorts(n);
      const started = await Promise.allSettled(
        clusterPorts.map((port, i) =>
          startNatsServer({
            ...options,
            serverName: `${name}-${i}`,
            cluster: { name, port, routes: clusterPorts.filter((_, j) => j !== i) },
          }),
        ),
      );
      for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
      const failed = started.find((r) => r.status === "rejected");
      if (!failed) break;
      await stop();
      servers.length = 0;
      const reason = (failed as PromiseRejectedResult).reason;
      const portClash = reason instanceof Error && /address already in use/i.test(reason.message);
      if (!portClash || attempt + 1 >= START_ATTEMPTS) throw reason;
    }
    await waitForRoutes(servers, options);
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls: servers.map((s) => s.url), servers, stop };
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; ports.size < n && i < n * 10; i++) ports.add(await freePort());
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports`);
  return [...ports];
}

function authOptions(options: NatsClusterOptions): { user?: string; pass?: string; token?: string } {
  const auth = options.auth;
  if (!auth) return {};
  return "token" in auth ? { token: auth.token } : { user: auth.user, pass: auth.password };
}

/** Every node subscribes to its own subject; every node publishes to every other until each has heard from all. */
async function waitForRoutes(servers: NatsServer[], options: NatsClusterOptions): Promise<void> {
  const timeoutMs = options.routesTimeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  const connections: NatsConnection[] = [];
  try {
    for (const s of servers) {
      connections.push(await connect({ servers: s.url, ...authOptions(options), timeout: 5_000, reconnect: false }));
    }
    const prefix = `_harness.ready.${Math.random().toString(36).slice(2)}`;
    const heard = servers.map(() => new Set<number>());
    connections.forEach((nc, k) => {
      nc.subscribe(`${prefix}.${k}`, {
        callback: (_err, msg) => {
          heard[k]!.add(Number(msg.string()));
        },
      });
    });
    await Promise.all(connections.map((nc) => nc.flush()));
    const complete = () => heard.every((set, k) => set.size === servers.length - 1 || (servers.length === 1 && k === 0));
    while (!complete()) {
      if (Date.now() > deadline) {
        const missing = heard.map((set, k) => `node ${k} heard from [${[...set].join(",")}]`).join("; ");
        throw new Error(
          `cluster routes not up within ${timeoutMs} ms: ${missing}\n${servers.map((s, i) => `--- node ${i} log ---\n${s.log()}`).join("\n")}`,
        );
      }
      connections.forEach((nc, j) => {
        for (let k = 0; k < connections.length; k++) if (k !== j && !heard[k]!.has(j)) nc.publish(`${prefix}.${k}`, String(j));
      });
      await Promise.all(connections.map((nc) => nc.flush()));
      await sleep(50);
    }
    if (options.jetstream !== false) await waitForJetStream(connections[0]!, deadline, timeoutMs);
  } finally {
    await Promise.allSettled(connections.map((nc) => nc.close()));
  }
}

/** Polls $JS.API.INFO until it answers without an error (the meta leader is elected). */
async function waitForJetStream(nc: NatsConnection, deadline: number, timeoutMs: number): Promise<void> {
  let last = "";
  while (Date.now() < deadline) {
    try {
      const reply = await nc.request("$JS.API.INFO", "", { timeout: 1_000 });
      const body = JSON.parse(reply.string()) as { error?: { description?: string } };
      if (!body.error) return;
      last = body.error.description ?? JSON.stringify(body.error);
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`JetStream cluster not ready within ${timeoutMs} ms: ${last}`);
}

/**
 * A self-signed certificate and its key for a test TLS server, made by the `selfsigned` library (no openssl
 * binary needed), written as PEM files `<base>-cert.pem` and `<base>-key.pem` in `dir`. `altNames` lists the
 * subject alternative names as "IP:127.0.0.1,DNS:localhost". The certificate is its own CA (basicConstraints
 * cA), so a client trusts it with tls.ca naming the same file.
 */
export async function selfSignedCertificate(
  dir: string,
  base = "server",
  altNames = "IP:127.0.0.1,DNS:localhost",
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${base}-cert.pem`);
  const key = join(dir, `${base}-key.pem`);
  const names = altNames.split(",").map((entry) => {
    const [kind, value] = entry.split(":") as [string, string];
    return kind === "IP" ? { type: 7 as const, ip: value } : { type: 2 as const, value };
  });
  const pems = await generateCertificate([{ name: "commonName", value: `downpour-test-${base}` }], {
    keyType: "ec",
    notAfterDate: new Date(Date.now() + 24 * 3600 * 1000),
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames: names },
    ],
  });
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private);
  return { cert, key };
}

/** Client connections to one test server, opened as tests need them and closed together (in after()). */
export class ClientPool {
  private readonly all: NatsConnection[] = [];

  /** `url`: read when connections open (the server starts in before()). */
  constructor(private readonly url: () => string) {}

  /** Every connection opened so far, oldest first. */
  get opened(): readonly NatsConnection[] {
    return this.all;
  }

  /** Opens `n` connections (5 s connect timeout each); resolves once all are connected. */
  async open(n: number): Promise<NatsConnection[]> {
    const opened = await Promise.all(Array.from({ length: n }, () => connect({ servers: this.url(), timeout: 5_000 })));
    this.all.push(...opened);
    return opened;
  }

  /** Closes every connection opened so far (errors ignored); resolves when all are closed. */
  async close(): Promise<void> {
    await Promise.allSettled(this.all.splice(0).map((nc) => nc.close()));
  }
}
