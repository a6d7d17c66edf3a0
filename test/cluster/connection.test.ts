// connectCluster against real nats-server processes: plain request/reply, max_payload read from the server,
// user/password, token and nkey servers (right credentials work, wrong ones fail with reason "auth"), TLS with a
// CA made by the test (a wrong CA fails with reason "tls"), a refused port and a silent one (reason "refused" and
// "timeout", fast), a server list tried in order, reconnection after a restart, and option validation.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { nkeys } from "@nats-io/nats-core";
import {
  CONNECTION_DEFAULTS,
  type ClusterConnectionOptions,
  ConnectionError,
  type ConnectionFailure,
  connectCluster,
  natsConnectionOptions,
} from "../../src/cluster/connection.js";
import { DownpourError, InvalidArgumentError } from "../../src/errors.js";
import { freePort, type NatsServer, selfSignedCertificate, startNatsServer } from "../support/nats.js";

const TIMEOUT = { timeout: 30_000 };

/** Connects, proves the connection with a request/reply round trip, and closes it. */
async function roundTrip(options: ClusterConnectionOptions): Promise<void> {
  const nc = await connectCluster(options);
  try {
    nc.subscribe("echo", { callback: (_error, msg) => void msg.respond(msg.data) });
    const reply = await nc.request("echo", "ping", { timeout: 2_000 });
    assert.equal(reply.string(), "ping");
  } finally {
    await nc.close();
  }
}

/** Expects connectCluster(options) to fail with a ConnectionError of `reason`, within `withinMs`; returns it. */
async function failure(options: ClusterConnectionOptions, reason: ConnectionFailure, withinMs = 5_000): Promise<ConnectionError> {
  const started = Date.now();
  const error = await connectCluster(options).then(
    async (nc) => {
      await nc.close();
      assert.fail(`connected to ${String(options.servers)}, expected reason ${reason}`);
    },
    (e: unknown) => e,
  );
  const elapsed = Date.now() - started;
  assert.ok(error instanceof ConnectionError, `a ConnectionError, got ${String(error)}`);
  assert.ok(error instanceof DownpourError);
  assert.equal(error.reason, reason, error.message);
  assert.ok(elapsed < withinMs, `failed in ${elapsed} ms, expected < ${withinMs} ms`);
  assert.ok(error.cause !== undefined, "keeps the client's error as cause");
  for (const server of error.servers) assert.ok(error.message.includes(server), `the message names ${server}: ${error.message}`);
  return error;
}

describe("a plain server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ maxPayload: 256 * 1024, jetstream: false });
  });
  after(() => server.stop());

  test("connects and answers request/reply", TIMEOUT, () => roundTrip({ servers: server.url }));

  test("the connection reports the server's max_payload (256 KB configured: 262144)", TIMEOUT, async () => {
    const nc = await connectCluster({ servers: server.url });
    try {
      assert.equal(nc.info?.max_payload, 262_144);
    } finally {
      await nc.close();
    }
  });

  test("a server list is tried in order: a refused first server, then one that answers", TIMEOUT, async () => {
    const refused = `nats://127.0.0.1:${await freePort()}`;
    await roundTrip({ servers: [refused, server.url] });
  });

  test("host:port without a scheme works", TIMEOUT, () => roundTrip({ servers: `127.0.0.1:${server.port}` }));
});

test("a port where nothing listens fails with reason refused, naming the server and --nats, within 5 s", TIMEOUT, async () => {
  const url = `nats://127.0.0.1:${await freePort()}`;
  const error = await failure({ servers: url }, "refused");
  assert.match(error.message, /--nats/);
  assert.deepEqual(error.servers, [url]);
});

test("two refused servers: the error names both", TIMEOUT, async () => {
  const urls = [`nats://127.0.0.1:${await freePort()}`, `nats://127.0.0.1:${await freePort()}`];
  const error = await failure({ servers: urls }, "refused");
  assert.deepEqual(error.servers, urls);
});

test("a server that accepts TCP but never speaks fails with reason timeout within timeoutMs", TIMEOUT, async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const address = silent.address();
  const port = typeof address === "object" && address ? address.port : 0;
  try {
    const error = await failure({ servers: `nats://127.0.0.1:${port}`, timeoutMs: 500 }, "timeout", 3_000);
    assert.match(error.message, /within 500 ms/);
  } finally {
    // nats.js leaves its socket open after a handshake timeout; closing ours ends it.
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

describe("a user/password server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ auth: { user: "grooms", password: "s3cret pass" }, jetstream: false });
  });
  after(() => server.stop());

  test("the right user and password connect", TIMEOUT, () => roundTrip({ servers: server.url, user: "grooms", password: "s3cret pass" }));

  test("a wrong password fails with reason auth, saying to check --creds / --user", TIMEOUT, async () => {
    const error = await failure({ servers: server.url, user: "grooms", password: "wrong" }, "auth");
    assert.match(error.message, /--creds \/ --user/);
  });

  test("no credentials fail with reason auth", TIMEOUT, () => failure({ servers: server.url }, "auth").then(() => {}));
});

describe("a token server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ auth: { token: "t0ken-of-the-job" }, jetstream: false });
  });
  after(() => server.stop());

  test("the right token connects", TIMEOUT, () => roundTrip({ servers: server.url, token: "t0ken-of-the-job" }));
  test("a wrong token fails with reason auth", TIMEOUT, () => failure({ servers: server.url, token: "nope" }, "auth").then(() => {}));
});

describe("an nkey server", () => {
  const user = nkeys.createUser();
  const seed = new TextDecoder().decode(user.getSeed());
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ jetstream: false, extraConfig: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }` });
  });
  after(() => server.stop());

  test("the user's seed connects", TIMEOUT, () => roundTrip({ servers: server.url, nkeySeed: seed }));

  test("another user's seed fails with reason auth", TIMEOUT, async () => {
    const other = new TextDecoder().decode(nkeys.createUser().getSeed());
    await failure({ servers: server.url, nkeySeed: other }, "auth");
  });
});

describe("a TLS server (certificate made by the test)", () => {
  const dir = mkdtempSync(join(tmpdir(), "downpour-tls-"));
  let server1: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  let server: NatsServer;
  before(async () => {
    server1 = await selfSignedCertificate(dir, "server");
    stranger = await selfSignedCertificate(dir, "stranger");
    server = await startNatsServer({ tls: server1, jetstream: false });
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("is reached with tls.ca naming its certificate; the connection is TLS", TIMEOUT, async () => {
    assert.match(server.url, /^tls:\/\//);
    await roundTrip({ servers: server.url, tls: { ca: server1.cert } });
    const nc = await connectCluster({ servers: `nats://127.0.0.1:${server.port}`, tls: { ca: server1.cert } });
    try {
      assert.equal(nc.info?.tls_required, true);
    } finally {
      await nc.close();
    }
  });

  test("a certificate naming only the server's IP address is accepted; one naming another address is not", TIMEOUT, async () => {
    const ipOnly = await selfSignedCertificate(dir, "ip-only", "IP:127.0.0.1");
    const elsewhere = await selfSignedCertificate(dir, "elsewhere", "IP:127.0.0.2");
    const [a, b] = await Promise.all([
      startNatsServer({ tls: ipOnly, jetstream: false }),
      startNatsServer({ tls: elsewhere, jetstream: false }),
    ]);
    try {
      await roundTrip({ servers: a.url, tls: { ca: ipOnly.cert } });
      await failure({ servers: b.url, tls: { ca: elsewhere.cert } }, "tls");
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("a wrong CA fails with reason tls, saying to check --tls-ca", TIMEOUT, async () => {
    const error = await failure({ servers: server.url, tls: { ca: stranger.cert } }, "tls");
    assert.match(error.message, /--tls-ca/);
  });

  test("no CA at all (the system's) fails with reason tls", TIMEOUT, () => failure({ servers: server.url }, "tls").then(() => {}));

  test("tls on a plain server fails with reason tls", TIMEOUT, async () => {
    const plain = await startNatsServer({ jetstream: false });
    try {
      await failure({ servers: plain.url, tls: { ca: server1.cert } }, "tls");
    } finally {
      await plain.stop();
    }
  });
});

test("the connection reconnects (forever) after its server restarts on the same port", TIMEOUT, async () => {
  let server = await startNatsServer({ jetstream: false });
  const port = server.port;
  const nc = await connectCluster({ servers: server.url, reconnectTimeWaitMs: 100, reconnectJitterMs: 50 });
  try {
    const events: string[] = [];
    const watching = (async () => {
      for await (const status of nc.status()) {
        events.push(status.type);
        if (status.type === "reconnect") return;
      }
    })();
    await server.stop();
    server = await startNatsServer({ jetstream: false, port });
    await watching;
    assert.ok(events.includes("disconnect"), events.join(","));
    nc.subscribe("echo", { callback: (_error, msg) => void msg.respond(msg.data) });
    assert.equal((await nc.request("echo", "again", { timeout: 2_000 })).string(), "again");
  } finally {
    await nc.close();
    await server.stop();
  }
});

test("defaults: servers nats://127.0.0.1:4222, name downpour-<pid>, reconnect forever with jitter, 5 s timeout", () => {
  const o = natsConnectionOptions();
  assert.deepEqual(o.servers, ["nats://127.0.0.1:4222"]);
  assert.equal(o.name, `downpour-${process.pid}`);
  assert.equal(o.maxReconnectAttempts, -1);
  assert.equal(o.reconnect, true);
  assert.equal(o.waitOnFirstConnect, false);
  assert.equal(o.timeout, 5_000);
  assert.equal(o.reconnectTimeWait, CONNECTION_DEFAULTS.reconnectTimeWaitMs);
  assert.ok((o.reconnectJitter ?? 0) > 0 && (o.reconnectJitterTLS ?? 0) > 0);
  assert.equal(natsConnectionOptions({ name: "groom-3" }).name, "groom-3");
});

describe("option validation: InvalidArgumentError naming the field, before dialing", () => {
  const dir = mkdtempSync(join(tmpdir(), "downpour-connopts-"));
  const notPem = join(dir, "not.pem");
  writeFileSync(notPem, "hello");
  const badCreds = join(dir, "bad.creds");
  writeFileSync(
    badCreds,
    "-----BEGIN NATS USER JWT-----\nnot.a.jwt\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSUNOTASEED\n------END USER NKEY SEED------\n",
  );
  after(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [string, unknown, RegExp][] = [
    ["servers a number", { servers: 4222 }, /servers must be/],
    ["servers empty", { servers: [] }, /servers must be/],
    ["servers[1] empty", { servers: ["nats://127.0.0.1:4222", ""] }, /servers\[1\]/],
    ["servers with http://", { servers: "http://127.0.0.1:4222" }, /servers .*http:\/\//],
    ["servers with a path", { servers: "nats://127.0.0.1:4222/x" }, /servers "nats:\/\/127\.0\.0\.1:4222\/x"/],
    ["token a number", { token: 5 }, /token must be a non-empty string/],
    ["token and user", { token: "a", user: "b", password: "c" }, /not token and user/],
    ["password without user", { password: "p" }, /password needs a user/],
    ["timeoutMs 0", { timeoutMs: 0 }, /timeoutMs must be a positive/],
    ["reconnectJitterMs negative", { reconnectJitterMs: -1 }, /reconnectJitterMs must be a non-negative/],
    ["an unknown option", { server: "x" }, /unknown option "server"/],
    ["tls a string", { tls: "ca.pem" }, /tls must be an object/],
    ["tls.cert without tls.key", { tls: { cert: notPem } }, /tls.cert and tls.key go together/],
    ["tls.ca missing", { tls: { ca: join(dir, "missing.pem") } }, /tls.ca .*missing.pem cannot be read/],
    ["tls.ca not PEM", { tls: { ca: notPem } }, /tls.ca .*not a PEM file/],
    ["tls.cafile (typo)", { tls: { cafile: notPem } }, /unknown option "tls.cafile"/],
    ["nkeySeed not a seed", { nkeySeed: "SUNOTASEED" }, /nkeySeed is not an nkey seed/],
    ["credsFile missing", { credsFile: join(dir, "missing.creds") }, /credsFile .*cannot be read/],
    ["credsFile not creds", { credsFile: notPem }, /credsFile .*not a NATS \.creds file/],
    ["credsFile with a bad seed", { credsFile: badCreds }, /credsFile .*holds no usable JWT and seed/],
  ];
  for (const [what, options, message] of cases) {
    test(what, TIMEOUT, async () => {
      await assert.rejects(connectCluster(options as ClusterConnectionOptions), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, `an InvalidArgumentError, got ${String(error)}`);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
