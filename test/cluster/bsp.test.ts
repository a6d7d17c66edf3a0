// The BSP engine on a real nats-server: Hama's barrier semantics (messages visible only after the sync of their
// superstep, self-messages, unread messages dropped, superstep counts, the same names and indices on every peer),
// payload kinds copied at send, two jobs on one server, a 4 MB tensor over max_payload 256 KB, malformed messages
// refused (named sender and field) while the job goes on, runBsp's setup/bsp/cleanup, misuse, a 3-node cluster,
// and the empty-superstep rate beside a raw request/reply loop (printed, not asserted).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Packr } from "msgpackr";
import type { NatsConnection } from "@nats-io/transport-node";
import { type BspMessage, BspPeer, runBsp } from "../../src/cluster/bsp.js";
import { encodeFrames, float32Bytes, specTag } from "../../src/cluster/chunks.js";
import { ConnectionError } from "../../src/cluster/connection.js";
import { PROTOCOL_VERSION } from "../../src/cluster/codec.js";
import { InvalidJobIdError, MessageError, PeerLostError } from "../../src/cluster/errors.js";
import { InvalidArgumentError, InvalidStateError } from "../../src/errors.js";
import { startNatsCluster } from "../support/nats.js";
import { closeAll, closePeers, connectAll, FAST, joinAll, Reports, seededFloats, sleep, until, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 60_000 };
const plain = new Packr({ useRecords: false, mapsAsObjects: true });

/** What a delivered message says, for comparisons. */
const summary = (messages: Iterable<BspMessage>) => [...messages].map((m) => ({ from: m.from, sender: m.sender, kind: m.kind, data: m.data }));

/** Subscribes `nc` to `subject` (resolving once the server has the subscription); `arrived` resolves on the first message. */
async function watch(nc: NatsConnection, subject: string, ms = 10_000): Promise<{ arrived: Promise<void> }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arrived = new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing on ${subject} within ${ms} ms`)), ms);
    nc.subscribe(subject, {
      max: 1,
      callback: () => {
        clearTimeout(timer);
        resolve();
      },
    });
  });
  await nc.flush();
  return { arrived };
}

describe("barrier semantics", () => {
  test("names, indices and superstep counts agree; messages show only after their sync; self-messages; unread ones dropped", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 3);
      const reports = new Reports();
      const peers = await joinAll(ncs, "semantics", ["carol", "alice", "bob"], reports);
      try {
        const [carol, alice, bob] = peers as [BspPeer, BspPeer, BspPeer];
        for (const peer of peers) {
          assert.deepEqual(peer.peerNames, ["alice", "bob", "carol"], "indices by sorted names, the same everywhere");
          assert.equal(peer.peerNames[peer.index], peer.name);
          assert.deepEqual([peer.peers, peer.superstep, peer.messageCount], [3, 0, 0]);
        }
        // Superstep 0: everyone sends to everyone, itself included.
        for (const peer of peers) for (let j = 0; j < 3; j++) peer.send(j, { from: peer.name, step: 0, to: j });
        for (const peer of peers) assert.equal(peer.messageCount, 0, "nothing is readable before the sync");
        await Promise.all(peers.map((peer) => peer.sync()));
        for (const peer of peers) {
          assert.equal(peer.superstep, 1);
          assert.deepEqual(
            summary(peer.messages()),
            ["alice", "bob", "carol"].map((name, from) => ({ from, sender: name, kind: "value", data: { from: name, step: 0, to: peer.index } })),
            "one message from each peer, by sender index",
          );
        }
        // Superstep 1: alice sends to bob; bob, having received it, still reads only superstep 0's messages.
        const { arrived } = await watch(ncs[2]!, "test.semantics.flag");
        alice.send("bob", "late");
        alice.send("bob", "later");
        ncs[1]!.publish("test.semantics.flag", "sent"); // after alice's frames on the same connection
        await arrived;
        await sleep(20);
        assert.equal(bob.messageCount, 3, "superstep 1's messages are not readable before the sync");
        await Promise.all(peers.map((peer) => peer.sync()));
        assert.deepEqual(summary(bob.messages()), [
          { from: 0, sender: "alice", kind: "value", data: "late" },
          { from: 0, sender: "alice", kind: "value", data: "later" },
        ]);
        assert.equal(carol.messageCount, 0, "carol's unread superstep-0 messages were dropped at the sync");
        // Superstep 2: no messages at all.
        await Promise.all(peers.map((peer) => peer.sync()));
        for (const peer of peers) assert.deepEqual([peer.superstep, peer.messageCount], [3, 0]);
        assert.deepEqual(reports.all(), []);
      } finally {
        await closePeers(peers);
        await closeAll(ncs);
      }
    });
  });

  test("explicit indices are kept; the others take the free ones by name", TIMEOUT, async () => {
    await withServer(async (server) => {
      const ncs = await connectAll(server.url, 3);
      const reports = new Reports();
      const names = ["m", "b", "a"];
      const peers = await Promise.all(
        names.map((name, i) => BspPeer.join({ ...FAST, job: "indices", peers: 3, name, index: name === "m" ? 0 : undefined, connection: ncs[i]!, onError: reports.for(name) })),
      );
      try {
        for (const peer of peers) assert.deepEqual(peer.peerNames, ["m", "a", "b"]);
        assert.deepEqual(peers.map((p) => p.index), [0, 2, 1]);
      } finally {
        await closePeers(peers);
        await closeAll(ncs);
      }
    });
  });

  test("a one-peer job syncs alone", TIMEOUT, async () => {
    await withServer(async (server) => {
      const peer = await BspPeer.join({ ...FAST, job: "solo", peers: 1, name: "only", connection: { servers: server.url } });
      try {
        peer.send(0, new Float32Array([1.5]));
        await peer.sync();
        assert.deepEqual(summary(peer.messages()), [{ from: 0, sender: "only", kind: "f32", data: new Float32Array([1.5]) }]);
      } finally {
        await peer.close();
      }
    });
  });
});

test("bytes, tensors and values cross the wire and reach the sender itself as copies made at send()", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 2);
    const reports = new Reports();
    const [p0, p1] = (await joinAll(ncs, "kinds", ["p0", "p1"], reports)) as [BspPeer, BspPeer];
    try {
      const tensor = seededFloats(1000, 1);
      const bytes = new Uint8Array([1, 2, 3, 250]);
      const value = { nested: [1, "two", { three: true }], n: null };
      for (const to of [0, 1]) {
        p0.send(to, tensor);
        p0.send(to, bytes);
        p0.send(to, value);
      }
      tensor.fill(0);
      bytes.fill(0);
      value.nested.length = 0;
      await Promise.all([p0.sync(), p1.sync()]);
      for (const peer of [p0, p1]) {
        const [t, b, v] = [...peer.messages()];
        assert.equal(t!.kind, "f32");
        assert.deepEqual(t!.data, seededFloats(1000, 1));
        assert.deepEqual([b!.kind, b!.data], ["bytes", new Uint8Array([1, 2, 3, 250])]);
        assert.deepEqual([v!.kind, v!.data], ["value", { nested: [1, "two", { three: true }], n: null }]);
      }
      assert.ok(p0.stats.bytesSent > 4000 && p1.stats.bytesReceived > 4000, JSON.stringify([p0.stats, p1.stats]));
    } finally {
      await closePeers([p0, p1]);
      await closeAll(ncs);
    }
  });
});

test("two jobs at once on one server, with the same peer names, never mix", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 4);
    const reports = new Reports();
    const jobs = await Promise.all([
      joinAll(ncs.slice(0, 2), "job-a", ["p0", "p1"], reports),
      joinAll(ncs.slice(2), "job-b", ["p0", "p1"], reports),
    ]);
    try {
      await Promise.all(
        jobs.map((peers, j) =>
          Promise.all(
            peers.map(async (peer) => {
              for (let step = 0; step < 5; step++) {
                for (let to = 0; to < 2; to++) peer.send(to, { job: peer.job, step, from: peer.name });
                await peer.sync();
                const got = summary(peer.messages()).map((m) => m.data);
                assert.deepEqual(got, [0, 1].map((i) => ({ job: ["job-a", "job-b"][j], step, from: `p${i}` })));
              }
            }),
          ),
        ),
      );
      assert.deepEqual(reports.all(), [], "nothing of the other job arrived");
    } finally {
      await closePeers(jobs.flat());
      await closeAll(ncs);
    }
  });
});

test("a 4 MB tensor crosses a server with max_payload 256 KB between peers, both ways at once", TIMEOUT, async () => {
  await withServer(
    async (server) => {
      const ncs = await connectAll(server.url, 2);
      const reports = new Reports();
      const peers = await joinAll(ncs, "big", ["p0", "p1"], reports);
      try {
        for (const peer of peers) peer.send(1 - peer.index, seededFloats(1024 * 1024, peer.index + 10));
        await Promise.all(peers.map((peer) => peer.sync()));
        for (const peer of peers) {
          const [message, ...rest] = [...peer.messages()];
          assert.equal(rest.length, 0);
          assert.equal(message!.kind, "f32");
          const expected = seededFloats(1024 * 1024, 1 - peer.index + 10);
          assert.ok(Buffer.from((message!.data as Float32Array).buffer).equals(Buffer.from(expected.buffer)), "bit-identical");
        }
        assert.ok(peers[0]!.stats.framesSent >= 17, `${peers[0]!.stats.framesSent} frames`);
        assert.deepEqual(reports.all(), []);
      } finally {
        await closePeers(peers);
        await closeAll(ncs);
      }
    },
    { maxPayload: 256 * 1024 },
  );
});

test("malformed, foreign and other-spec messages are refused naming the sender and the field, and the job goes on", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 3);
    const intruder = ncs[2]!;
    const reports = new Reports();
    const [p0, p1] = (await joinAll(ncs.slice(0, 2), "refuse", ["p0", "p1"], reports, { specHash: "spec-1" })) as [BspPeer, BspPeer];
    try {
      const envelope = { v: PROTOCOL_VERSION, from: "p0", index: 0, spec: "spec-1" };
      const goodFrame = (overrides: Partial<{ specTag: number; sender: number; step: number }>) =>
        encodeFrames(float32Bytes(new Float32Array([9, 9])), { kind: "f32", sender: 0, specTag: specTag("spec-1"), step: 0, seq: 99, ...overrides }, 1024)[0]!;
      const damaged = goodFrame({});
      damaged[damaged.byteLength - 1]! ^= 1;
      const forged: [string, Uint8Array, string | undefined, string][] = [
        [p1.subject, new Uint8Array([1, 2, 3, 4, 5]), undefined, "encoding"],
        [p1.subject, plain.pack({ ...envelope, type: "marker", step: 0, count: "x", frames: 1 }), "p0", "count"],
        [p1.subject, plain.pack({ ...envelope, from: "mallory", type: "marker", step: 0, count: 0, frames: 0 }), "mallory", "from"],
        [p1.subject, plain.pack({ ...envelope, index: 1, type: "marker", step: 0, count: 0, frames: 0 }), "p0", "index"],
        [p1.subject, plain.pack({ ...envelope, spec: "spec-2", type: "marker", step: 0, count: 0, frames: 0 }), "p0", "spec"],
        [p1.subject, plain.pack({ ...envelope, type: "marker", step: 7, count: 0, frames: 0 }), "p0", "step"],
        [p1.subject, damaged, "p0", "crc32"],
        [p1.subject, goodFrame({ specTag: specTag("spec-2") }), "p0", "spec"],
        [p1.subject, goodFrame({ sender: 5 }), "#5", "sender"],
        [p1.subject, plain.pack({ ...envelope, type: "heartbeat", step: 0 }), "p0", "type"],
        ["downpour.refuse.ctl", new Uint8Array([0xff, 0x00, 0x13]), undefined, "encoding"],
        ["downpour.refuse.ctl", plain.pack({ ...envelope, type: "abort", step: 0, reason: "x" }), "p0", "kind"],
      ];
      for (const [subject, bytes] of forged) intruder.publish(subject, bytes);
      await intruder.flush();
      // p1 refuses all of them; p0 the two on the control subject (a broadcast).
      const onControl = forged.filter(([subject]) => subject.endsWith(".ctl"));
      await until("every forged message reported", () => reports.of("p1").length >= forged.length && reports.of("p0").length >= onControl.length);
      const key = (parts: unknown[]) => JSON.stringify(parts);
      const fields = (name: string) => reports.of(name).map((e) => key(e instanceof MessageError ? [e.sender, e.field, e.subject] : [e.name, e.message])).sort();
      const expected = (list: typeof forged) => list.map(([subject, , sender, field]) => key([sender, field, subject])).sort();
      assert.deepEqual(fields("p1"), expected(forged));
      assert.deepEqual(fields("p0"), expected(onControl));
      // The job goes on, with exactly the real messages.
      for (let step = 0; step < 3; step++) {
        p0.send(1, new Float32Array([step]));
        p1.send(0, { step });
        await Promise.all([p0.sync(), p1.sync()]);
        assert.deepEqual(summary(p1.messages()), [{ from: 0, sender: "p0", kind: "f32", data: new Float32Array([step]) }]);
        assert.deepEqual(summary(p0.messages()), [{ from: 1, sender: "p1", kind: "value", data: { step } }]);
      }
      assert.deepEqual([p0.status.state, p1.status.state], ["running", "running"]);
    } finally {
      await closePeers([p0, p1]);
      await closeAll(ncs);
    }
  });
});

describe("runBsp", () => {
  test("runs setup, bsp and cleanup on every peer and resolves with bsp's result", TIMEOUT, async () => {
    await withServer(async (server) => {
      const calls: string[] = [];
      const results = await Promise.all(
        ["p0", "p1"].map((name) =>
          runBsp(
            {
              setup: (peer) => void calls.push(`${peer.name} setup`),
              async bsp(peer) {
                for (let i = 0; i < 3; i++) {
                  peer.send((peer.index + 1) % 2, i);
                  await peer.sync();
                }
                return [...peer.messages()].map((m) => m.data);
              },
              cleanup: (peer) => void calls.push(`${peer.name} cleanup ${peer.superstep}`),
            },
            { ...FAST, job: "run", peers: 2, name, connection: { servers: server.url } },
          ),
        ),
      );
      assert.deepEqual(results, [[2], [2]]);
      assert.deepEqual(calls.sort(), ["p0 cleanup 3", "p0 setup", "p1 cleanup 3", "p1 setup"]);
    });
  });

  test("a throwing bsp still runs cleanup, rejects with its error, and fails the other peer naming it", TIMEOUT, async () => {
    await withServer(async (server) => {
      const cleaned: string[] = [];
      const started = Date.now();
      const outcomes = await Promise.allSettled(
        ["p0", "p1"].map((name) =>
          runBsp(
            {
              async bsp(peer) {
                await peer.sync();
                if (peer.name === "p0") throw new Error("boom in superstep 1");
                for (;;) await peer.sync();
              },
              cleanup: (peer) => void cleaned.push(peer.name),
            },
            { ...FAST, barrierTimeoutMs: 30_000, job: "throws", peers: 2, name, connection: { servers: server.url } },
          ),
        ),
      );
      const [p0, p1] = outcomes.map((o) => (o.status === "rejected" ? o.reason : undefined));
      assert.equal(p0.message, "boom in superstep 1");
      assert.ok(p1 instanceof PeerLostError, String(p1));
      assert.deepEqual([p1.peer, p1.index, p1.reason, p1.superstep], ["p0", 0, "aborted", 1]);
      assert.match(p1.message, /boom in superstep 1/);
      assert.ok(Date.now() - started < 10_000, "the other peer was told at once, not by a timeout");
      assert.deepEqual(cleaned.sort(), ["p0", "p1"]);
    });
  });
});

test("misuse is refused: bad options, unknown peers, other array types, send or sync during sync, use after close", TIMEOUT, async () => {
  const noServer = { servers: "nats://127.0.0.1:1" };
  await assert.rejects(BspPeer.join({ job: "a.b", peers: 2, connection: noServer }), InvalidJobIdError);
  await assert.rejects(BspPeer.join({ job: "j", peers: 0, connection: noServer }), /option peers must be an integer from 1/);
  await assert.rejects(BspPeer.join({ job: "j", peers: 2, index: 2, connection: noServer }), /option index must be an integer from 0 to 1/);
  await assert.rejects(BspPeer.join({ job: "j", peers: 2, heartbeatMs: 5000, connection: noServer }), /heartbeatMs must be less than peerTimeoutMs/);
  await assert.rejects(BspPeer.join({ job: "j", peers: 2, name: "", connection: noServer }), InvalidArgumentError);
  await assert.rejects(BspPeer.join({ job: "j", peers: 2, connection: { ...noServer, timeoutMs: 2_000 } }), ConnectionError, "nothing listens on port 1");
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 2);
    const peers = await joinAll(ncs, "misuse", ["p0", "p1"], new Reports());
    const [p0, p1] = peers as [BspPeer, BspPeer];
    try {
      assert.throws(() => p0.send("nobody", 1), /no peer named "nobody" in job "misuse" \(peers: "p0", "p1"\)/);
      assert.throws(() => p0.send(2, 1), /indices go from 0 to 1/);
      assert.throws(() => p0.send(1, new Float64Array(2) as never), /Uint8Array, a Float32Array or a plain value, got a Float64Array/);
      const syncing = p0.sync();
      assert.throws(() => p0.send(1, 1), InvalidStateError);
      await assert.rejects(p0.sync(), InvalidStateError);
      await Promise.all([syncing, p1.sync()]);
      await p0.close();
      assert.equal(p0.status.state, "closed");
      assert.throws(() => p0.send(1, 1), InvalidStateError);
      await assert.rejects(p0.sync(), InvalidStateError);
      await p0.close(); // idempotent
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});

test("peers on the three nodes of a NATS cluster run supersteps together", TIMEOUT, async () => {
  const cluster = await startNatsCluster(3, { jetstream: false });
  const ncs: NatsConnection[] = [];
  try {
    for (const url of cluster.urls) ncs.push(...(await connectAll(url, 1)));
    const reports = new Reports();
    const peers = await joinAll(ncs, "routed", ["n0", "n1", "n2"], reports);
    try {
      await Promise.all(
        peers.map(async (peer) => {
          for (let step = 0; step < 5; step++) {
            for (let j = 0; j < 3; j++) peer.send(j, new Float32Array([peer.index, step]));
            await peer.sync();
            assert.deepEqual(summary(peer.messages()).map((m) => [...(m.data as Float32Array)]), [0, 1, 2].map((i) => [i, step]));
          }
        }),
      );
      assert.deepEqual(reports.all(), []);
    } finally {
      await closePeers(peers);
    }
  } finally {
    await closeAll(ncs);
    await cluster.stop();
  }
});

test("empty supersteps per second for 2 peers, beside a raw request/reply loop (printed)", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 2);
    const peers = await joinAll(ncs, "rate", ["p0", "p1"], new Reports());
    try {
      const steps = 2_000;
      let start = performance.now();
      await Promise.all(peers.map(async (peer) => {
        for (let i = 0; i < steps; i++) await peer.sync();
      }));
      const barrier = steps / ((performance.now() - start) / 1000);
      ncs[1]!.subscribe("rate.echo", { callback: (_error, msg) => void msg.respond(msg.data) });
      await ncs[1]!.flush();
      start = performance.now();
      for (let i = 0; i < steps; i++) await ncs[0]!.request("rate.echo", "x", { timeout: 5_000 });
      const raw = steps / ((performance.now() - start) / 1000);
      console.log(`2-peer empty supersteps/s: ${barrier.toFixed(0)}; raw request/reply/s: ${raw.toFixed(0)}; ratio ${(barrier / raw).toFixed(2)}`);
      assert.equal(peers[0]!.superstep, steps);
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});
