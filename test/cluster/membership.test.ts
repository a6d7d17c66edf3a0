// Joining a job: a peer with another model spec (or peer count) is refused by name, whether the job runs already or
// is still gathering; names and explicit indices are unique; a full job refuses an extra peer; a join that waits past
// its timeout names the missing peers; and a refused peer leaves the running job untouched.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BspPeer } from "../../src/cluster/bsp.js";
import { BarrierTimeoutError, ClusterError, MembershipError } from "../../src/cluster/errors.js";
import { closeAll, closePeers, connectAll, FAST, joinAll, Reports, until, withServer } from "./fixtures/peers.js";

const TIMEOUT = { timeout: 60_000 };

/** The error a promise rejects with (asserting it rejects). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected a rejection");
}

/** Asserts `error` is a MembershipError with these fields. */
function assertRefused(error: unknown, peer: string, field: MembershipError["field"]): asserts error is MembershipError {
  assert.ok(error instanceof MembershipError, `expected a MembershipError, got ${error}`);
  assert.deepEqual([error.peer, error.field], [peer, field], error.message);
  assert.ok(error.message.includes(`"${peer}"`), error.message);
}

test("a peer with another spec is refused by name by a running job, which goes on", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 3);
    const reports = new Reports();
    const peers = await joinAll(ncs.slice(0, 2), "spec", ["a", "b"], reports, { specHash: "mlp-784-128-10" });
    try {
      const started = Date.now();
      const error = await rejection(
        BspPeer.join({ ...FAST, job: "spec", peers: 2, name: "c", specHash: "mlp-784-64-10", connection: ncs[2]!, onError: reports.for("c") }),
      );
      assertRefused(error, "c", "spec");
      assert.deepEqual([error.expected, error.actual], ["mlp-784-128-10", "mlp-784-64-10"]);
      assert.ok(Date.now() - started < 5_000, "refused at once, not by a timeout");
      // c is refused by whichever running peer answers first; the other's report may still be on its way.
      await until("a and b both report the refused peer", () => reports.of("a").length > 0 && reports.of("b").length > 0, 5_000);
      for (const name of ["a", "b"]) {
        assert.equal(reports.of(name).length, 1, `${name} reports the refused peer once`);
        assertRefused(reports.of(name)[0], "c", "spec");
      }
      for (const peer of peers) peer.send(1 - peer.index, peer.name);
      await Promise.all(peers.map((peer) => peer.sync()));
      assert.deepEqual(peers.map((peer) => [...peer.messages()].map((m) => m.data)), [["b"], ["a"]]);
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});

test("peers gathering with different specs or peer counts refuse each other by name at once", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 4);
    const join = (i: number, name: string, extra: object) =>
      rejection(BspPeer.join({ ...FAST, job: `gather-${i >> 1}`, peers: 2, name, connection: ncs[i]!, onError: () => {}, ...extra }));
    try {
      const [a, b, c, d] = await Promise.all([
        join(0, "a", { specHash: "one" }),
        join(1, "b", { specHash: "two" }),
        join(2, "c", { peers: 2 }),
        join(3, "d", { peers: 3 }),
      ]);
      assertRefused(a, "b", "spec");
      assertRefused(b, "a", "spec");
      assertRefused(c, "d", "peers");
      assertRefused(d, "c", "peers");
    } finally {
      await closeAll(ncs);
    }
  });
});

test("two peers with one name, or asking for one index, are refused", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 4);
    const join = (i: number, job: string, name: string, index?: number) =>
      rejection(BspPeer.join({ ...FAST, job, peers: 3, name, index, connection: ncs[i]!, onError: () => {} }));
    try {
      const [same1, same2, index1, index2] = await Promise.all([join(0, "names", "twin"), join(1, "names", "twin"), join(2, "index", "x", 1), join(3, "index", "y", 1)]);
      assertRefused(same1, "twin", "name");
      assertRefused(same2, "twin", "name");
      assert.ok(index1 instanceof MembershipError && index1.field === "index" && /both ask for index 1/.test(index1.message), String(index1));
      assert.ok(index2 instanceof MembershipError && index2.field === "index", String(index2));
    } finally {
      await closeAll(ncs);
    }
  });
});

test("a full job refuses an extra peer by name", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 3);
    const reports = new Reports();
    const peers = await joinAll(ncs.slice(0, 2), "full", ["a", "b"], reports);
    try {
      const error = await rejection(BspPeer.join({ ...FAST, job: "full", peers: 2, name: "late", connection: ncs[2]!, onError: () => {} }));
      assertRefused(error, "late", "roster");
      assert.match(error.message, /already runs with 2 peers \("a", "b"\)/);
      await until("a reports the refused peer", () => reports.of("a").length > 0, 5_000);
      assertRefused(reports.of("a")[0], "late", "roster");
      await Promise.all(peers.map((peer) => peer.sync()));
    } finally {
      await closePeers(peers);
      await closeAll(ncs);
    }
  });
});

test("a join that waits past its timeout names the missing peers (2 of 3 started)", TIMEOUT, async () => {
  await withServer(async (server) => {
    const ncs = await connectAll(server.url, 4);
    const join = (i: number, job: string, name: string, index?: number) =>
      rejection(BspPeer.join({ ...FAST, joinTimeoutMs: 800, job, peers: 3, name, index, connection: ncs[i]!, onError: () => {} }));
    try {
      const started = Date.now();
      const errors = await Promise.all([join(0, "indexed", "a", 0), join(1, "indexed", "b", 1), join(2, "named", "a"), join(3, "named", "b")]);
      assert.ok(Date.now() - started < 5_000);
      for (const [i, error] of errors.entries()) {
        assert.ok(error instanceof BarrierTimeoutError, String(error));
        assert.equal(error.phase, "join");
        assert.deepEqual(error.missing, i < 2 ? ["index 2"] : ["1 more peer"]);
        assert.match(error.message, /only 2 of 3 peers joined within 800 ms \("a", "b"\); missing: /);
      }
    } finally {
      await closeAll(ncs);
    }
  });
});

test("a connection closed while joining fails the join at once (no uncaught error, no wait for the timeout)", TIMEOUT, async () => {
  await withServer(async (server) => {
    const [nc] = await connectAll(server.url, 1);
    const joining = rejection(BspPeer.join({ ...FAST, joinTimeoutMs: 30_000, job: "closing", peers: 2, name: "a", connection: nc!, onError: () => {} }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    await nc!.close();
    const error = await joining;
    assert.ok(error instanceof ClusterError && /cannot publish/.test(error.message), String(error));
    assert.ok(Date.now() - started < 5_000);
  });
});
