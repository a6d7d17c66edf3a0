// The nats-server test harness (test/support/nats.ts): a server starts on a free loopback port, answers clients,
// has JetStream unless asked not to, and stop() (also after kill()) leaves no process nor temp dir; a server left
// running when the process exits is killed; a 3-node cluster routes messages and runs replicated JetStream;
// a missing binary is an error saying how to install it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsServerPath, startNatsCluster, startNatsServer } from "../support/nats.js";

const TIMEOUT = { timeout: 30_000 };

/** Whether the process runs (a zombie waiting for init to reap it, state Z in /proc, counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

/** Polls (every 20 ms, at most `ms`) until the process is gone; true when it is. */
async function gone(pid: number, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** Connects to `url`, runs `body`, closes. */
async function withClient<T>(url: string, body: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url, timeout: 5_000, reconnect: false });
  try {
    return await body(nc);
  } finally {
    await nc.close();
  }
}

test("a server answers request/reply on 127.0.0.1, has JetStream, and stop() removes the process and its dir", TIMEOUT, async () => {
  const server = await startNatsServer();
  try {
    assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
    assert.ok(server.storeDir, "JetStream is on by default");
    await withClient(server.url, async (nc) => {
      nc.subscribe("echo", { callback: (_error, msg) => void msg.respond(msg.data) });
      const reply = await nc.request("echo", "ping", { timeout: 2_000 });
      assert.equal(reply.string(), "ping");
      assert.equal(nc.info?.jetstream, true);
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.getAccountInfo()).streams, 0);
    });
  } finally {
    await server.stop();
  }
  assert.ok(await gone(server.pid), `nats-server pid ${server.pid} still running after stop()`);
  assert.equal(existsSync(server.configFile), false, "the temp dir is removed");
  await server.stop(); // idempotent
});

test("jetstream: false starts a server without JetStream; two servers run side by side", TIMEOUT, async () => {
  const [a, b] = await Promise.all([startNatsServer({ jetstream: false }), startNatsServer()]);
  try {
    assert.notEqual(a.port, b.port);
    assert.equal(a.storeDir, undefined);
    await withClient(a.url, async (nc) => assert.notEqual(nc.info?.jetstream, true));
    await withClient(b.url, async (nc) => assert.equal(nc.info?.jetstream, true));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("kill() ends the server at once (clients see it go); stop() afterwards resolves and cleans up", TIMEOUT, async () => {
  const server = await startNatsServer({ jetstream: false });
  try {
    const nc = await connect({ servers: server.url, reconnect: false });
    const closed = nc.closed();
    server.kill("SIGKILL");
    await closed;
    assert.ok(await gone(server.pid), "SIGKILL ends nats-server");
  } finally {
    await server.stop();
  }
  assert.equal(existsSync(server.configFile), false);
});

test("a server left running when the process exits is killed (and its dir removed) by the exit hook", TIMEOUT, async () => {
  // The script sits beside this compiled test, so Deno resolves its npm imports from the repo's package.json.
  const here = dirname(fileURLToPath(import.meta.url));
  const script = join(here, `.leave-running-${process.pid}.mjs`);
  try {
    const harness = pathToFileURL(join(here, "../support/nats.js")).href;
    writeFileSync(
      script,
      `import { startNatsServer } from ${JSON.stringify(harness)};\nconst s = await startNatsServer({ jetstream: false });\nconsole.log(JSON.stringify({ pid: s.pid, configFile: s.configFile }));\n`,
    );
    const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
    const args = isDeno ? ["run", "-A", script] : [script];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk) => {
      err += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, `the child exits by itself (the server does not keep it alive): ${err}`);
    const { pid, configFile } = JSON.parse(out.trim()) as { pid: number; configFile: string };
    assert.ok(Number.isInteger(pid) && pid > 0, `the child printed a pid: ${JSON.stringify(out)} ${err}`);
    assert.ok(await gone(pid), `nats-server pid ${pid} outlived its parent`);
    assert.equal(existsSync(configFile), false, "the exit hook removes the server's temp dir");
  } finally {
    rmSync(script, { force: true });
  }
});

test("a 3-node cluster: published on node 0, received on node 2; replicated JetStream works; stop() ends all", TIMEOUT, async () => {
  const cluster = await startNatsCluster(3);
  const connections: NatsConnection[] = [];
  try {
    assert.equal(cluster.urls.length, 3);
    assert.equal(new Set(cluster.servers.map((s) => s.port)).size, 3);
    const sender = await connect({ servers: cluster.urls[0]!, reconnect: false });
    connections.push(sender);
    const receiver = await connect({ servers: cluster.urls[2]!, reconnect: false });
    connections.push(receiver);
    assert.notEqual(sender.info?.server_id, receiver.info?.server_id);
    const sub = receiver.subscribe("cluster.test", { max: 1 });
    await receiver.flush();
    // The new interest crosses the route asynchronously: publish until it arrives (bounded by the test timeout).
    const timer = setInterval(() => sender.publish("cluster.test", "over the route"), 50);
    let text: string | undefined;
    try {
      for await (const msg of sub) text = msg.string();
    } finally {
      clearInterval(timer);
    }
    assert.equal(text, "over the route");

    const jsm = await jetstreamManager(sender);
    await jsm.streams.add({ name: "R3", subjects: ["r3.>"], num_replicas: 3 });
    const ack = await publishWhenStreamReady(receiver, "r3.x", "kept");
    assert.equal(ack.stream, "R3");
    const info = await jsm.streams.info("R3");
    assert.equal(info.state.messages, 1);
    assert.equal(info.cluster?.replicas?.length, 2, "a leader and two replicas");
  } finally {
    await Promise.all(connections.map((nc) => nc.close()));
    await cluster.stop();
  }
  for (const server of cluster.servers) assert.ok(await gone(server.pid), `node pid ${server.pid} still running`);
});

test("a missing nats-server binary is an error saying how to install it", () => {
  const empty = mkdtempSync(join(tmpdir(), "downpour-nobin-"));
  try {
    assert.throws(() => natsServerPath([empty]), /nats-server is not installed: apt-get install -y nats-server/);
    assert.match(natsServerPath(), /nats-server$/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

/** Publishes to a JetStream stream just created on another node: its subject interest reaches `nc`'s node
 *  asynchronously, so "no responders" (which nats.js reports as JetStreamNotEnabled) is retried (every 100 ms,
 *  for at most 10 s). */
async function publishWhenStreamReady(nc: NatsConnection, subject: string, data: string): Promise<{ stream: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await jetstream(nc).publish(subject, data);
    } catch (error) {
      const notYet = (error as Error)?.name === "JetStreamNotEnabled" || /no responders/i.test(String((error as Error)?.message));
      if (!notYet || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
