// Failures end the job on every peer, never a hang: a barrier past its timeout names the missing peer and the
// superstep; a peer SIGKILLed mid-superstep, or one that stops answering (SIGSTOP), fails every survivor within the
// peer timeout naming it and the superstep (spawned peer processes, which exit non-zero); a peer that leaves early
// fails the ones still syncing. Every wait is bounded and every child is killed in finally.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { BarrierTimeoutError, PeerLostError } from "../../src/cluster/errors.js";
import type { PeerConfig } from "./fixtures/peer.js";
import { closeAll, closePeers, connectAll, FAST, joinAll, Reports, sleep, until, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 60_000 };
/** Bounds every wait for a child. */
const WAIT_MS = 20_000;
const PEER_TIMEOUT_MS = 1_000;

/** A spawned peer: its output so far and its exit. */
interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function spawnPeer(config: PeerConfig): Child {
  const script = fileURLToPath(new URL("./fixtures/peer.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { name: config.name, process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Sends `signal` to a child that has not exited, by pid (Deno's ChildProcess.kill sends one signal per child only). */
function signalChild(child: Child, signal: NodeJS.Signals): void {
  if (child.process.exitCode !== null || child.process.signalCode !== null || child.process.pid === undefined) return;
  try {
    process.kill(child.process.pid, signal);
  } catch {
    // it has just exited
  }
}

/** Resolves once every child has printed `superstep n` (bounded; fails if one exits first). */
async function reachStep(children: Child[], n: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  const exitedEarly: string[] = [];
  for (const child of children) void child.exited.then(() => exitedEarly.push(child.name));
  while (!children.every((child) => child.stdout().includes(`superstep ${n}\n`))) {
    if (exitedEarly.length > 0 || Date.now() > deadline) {
      assert.fail(`not every peer reached superstep ${n}:\n${children.map((c) => `${c.name}: ${c.stdout().slice(-60)} ${c.stderr()}`).join("\n")}`);
    }
    await sleep(20);
  }
}

/** The child's exit, or a failure after WAIT_MS. */
async function exitOf(child: Child): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${child.name} did not exit within ${WAIT_MS} ms; stderr:\n${child.stderr()}`)), WAIT_MS);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last superstep a child printed. */
const lastStep = (child: Child) => Math.max(0, ...[...child.stdout().matchAll(/superstep (\d+)/g)].map((m) => Number(m[1])));

/** Runs 3 peer processes, applies `signal` to p1 at superstep 5, and checks both survivors fail naming p1. */
async function loseOne(signal: NodeJS.Signals, job: string): Promise<void> {
  await withServer(async (server) => {
    const base = { url: server.url, job, peers: 3, steps: 1_000_000, pauseMs: 10, heartbeatMs: 100, peerTimeoutMs: PEER_TIMEOUT_MS, barrierTimeoutMs: 30_000 };
    const children = ["p0", "p1", "p2"].map((name, index) => spawnPeer({ ...base, name, index }));
    try {
      await reachStep(children, 5);
      const [p0, p1, p2] = children as [Child, Child, Child];
      signalChild(p1, signal);
      const hit = Date.now();
      const lastOfLost = lastStep(p1);
      for (const survivor of [p0, p2]) {
        const { code, at } = await exitOf(survivor);
        assert.equal(code, 1, `${survivor.name} exits non-zero; stderr: ${survivor.stderr()}`);
        const error = JSON.parse(survivor.stderr().trim().split("\n").pop()!) as PeerLostError & { error: string };
        assert.equal(error.error, "PeerLostError", survivor.stderr());
        assert.deepEqual([error.peer, error.index], ["p1", 1], error.message);
        assert.ok(error.superstep >= lastOfLost && error.superstep <= lastOfLost + 1, `superstep ${error.superstep}, p1 last printed ${lastOfLost}`);
        assert.match(error.message, /peer "p1" \(index 1\)/);
        assert.ok(at - hit < PEER_TIMEOUT_MS + 5_000, `${survivor.name} failed ${at - hit} ms after the signal`);
      }
    } finally {
      for (const child of children) signalChild(child, "SIGKILL");
      await Promise.all(children.map((child) => exitOf(child).catch(() => {})));
    }
  });
}

// The peers are spawned with process.execPath under every runtime: Node and Bun run the script; Deno translates a
// node-style spawn of its own executable into `deno run` of the script, so these tests run there too.
describe("a lost peer fails every survivor, naming it and the superstep", () => {
  test("SIGKILL one of 3 peer processes mid-superstep", TIMEOUT, () => loseOne("SIGKILL", "killed"));
  test("a peer process that stops answering (SIGSTOP)", TIMEOUT, () => loseOne("SIGSTOP", "stopped"));
});

test("a barrier that waits past its timeout names the missing peer and the superstep, on every peer", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 3);
    const reports = new Reports();
    const peers = await joinAll(ncs, "stall", ["a", "b", "c"], reports, { barrierTimeoutMs: 800 });
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    try {
      for (let i = 0; i < 2; i++) await Promise.all(peers.map((peer) => peer.sync()));
      const started = Date.now();
      // c stays alive (heartbeats go on) but never reaches the barrier of superstep 2.
      const outcomes = await Promise.allSettled([a.sync(), b.sync()]);
      assert.ok(Date.now() - started < 5_000, "within the timeout, give or take");
      for (const outcome of outcomes) {
        assert.equal(outcome.status, "rejected");
        const error = (outcome as PromiseRejectedResult).reason;
        assert.ok(error instanceof BarrierTimeoutError, String(error));
        assert.deepEqual([error.phase, error.superstep, error.missing], ["sync", 2, ["c"]], error.message);
        assert.match(error.message, /superstep 2 .*"c"/);
      }
      await sleep(50);
      assert.equal(c.status.state, "failed", "the stalled peer is told the job failed");
      assert.throws(
        () => c.send(0, 1),
        (error: unknown) => error instanceof BarrierTimeoutError && error.superstep === 2 && error.missing.includes("c"),
        "c learns that the barrier of superstep 2 timed out waiting for it",
      );
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});

test("a peer that leaves early fails the peers still syncing, naming it", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 2);
    const peers = await joinAll(ncs, "leaves", ["p0", "p1"], new Reports(), { barrierTimeoutMs: 30_000 });
    try {
      const [p0, p1] = peers as [typeof peers[0], typeof peers[0]];
      for (let i = 0; i < 2; i++) await Promise.all([p0.sync(), p1.sync()]);
      await p0.close();
      const started = Date.now();
      const error = await p1.sync().then(
        () => assert.fail("sync resolved without p0"),
        (reason: unknown) => reason,
      );
      assert.ok(error instanceof PeerLostError, String(error));
      assert.deepEqual([error.peer, error.reason, error.superstep], ["p0", "left", 2]);
      assert.ok(Date.now() - started < 5_000, "at once, not after the barrier timeout");
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});

test("a peer that stops answering inside one process is lost too (heartbeat timeout, no spawn)", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 2);
    const peers = await joinAll(ncs, "silent", ["p0", "p1"], new Reports(), { ...FAST, peerTimeoutMs: 600, barrierTimeoutMs: 30_000 });
    try {
      const [p0, p1] = peers as [typeof peers[0], typeof peers[0]];
      await Promise.all([p0.sync(), p1.sync()]);
      await ncs[1]!.close(); // p1's connection is gone: no heartbeats, no goodbye
      const started = Date.now();
      const error = await p0.sync().then(
        () => assert.fail("sync resolved without p1"),
        (reason: unknown) => reason,
      );
      assert.ok(error instanceof PeerLostError, String(error));
      assert.deepEqual([error.peer, error.reason, error.superstep], ["p1", "heartbeat", 1]);
      assert.ok(Date.now() - started < 5_000);
      await until("p1 fails too: its connection is closed", () => p1.status.state === "failed", WAIT_MS);
      assert.throws(() => p1.send(0, 1), /the NATS connection of peer "p1" is closed/);
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});
