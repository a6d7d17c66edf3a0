// trainPeer over a real nats-server, 3 peers in one process (one connection each, as separate processes would
// have): logistic regression on Pima reaches the held-out accuracy of one local run with the same options, within
// a small margin, with bit-identical weights on every peer and within 1e-5 of the local run's (modulo split, no
// shuffle, global batch split evenly); a peer started with other train options is refused by name.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LogisticRegression } from "../../src/api/models.js";
import { MembershipError } from "../../src/cluster/errors.js";
import { peerSpecHash, trainPeer } from "../../src/cluster/peer-training.js";
import { InvalidArgumentError } from "../../src/errors.js";
import type { TrainOptions } from "../../src/train/options.js";
import { ClientPool, type NatsServer, startNatsServer } from "../support/nats.js";
import { pima } from "./fixtures/pima.js";

const PEERS = 3;
const TRAIN: TrainOptions = { epochs: 60, batchSize: 30, portion: 5, learningRate: 0.5, momentum: 0.9, shuffle: false, threads: 0 };
const BSP = { joinTimeoutMs: 10_000, barrierTimeoutMs: 20_000 };

let server: NatsServer | undefined;
const pool = new ClientPool(() => server!.url);

describe("trainPeer over NATS (3 peers in one process)", () => {
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await pool.close();
    await server?.stop();
  });

  for (const combine of ["allreduce", "master"] as const) {
    test(`logistic regression on Pima (${combine}): the local run's held-out accuracy, the same weights on every peer and as the local run`, {
      timeout: 120_000,
    }, async (t) => {
      const { train, held } = await pima();
      const local = await LogisticRegression.create({ inputs: 8, seed: 1 });
      const models = await Promise.all(Array.from({ length: PEERS }, () => LogisticRegression.create({ inputs: 8, seed: 1 })));
      try {
        await local.fit(train, TRAIN);
        const localAccuracy = local.evaluate(held).accuracy!;
        const ncs = await pool.open(PEERS);
        const started = performance.now();
        const results = await Promise.all(
          models.map((model, index) =>
            trainPeer({
              job: `pima-lr-${combine}`,
              peers: PEERS,
              connection: ncs[index]!,
              name: `peer-${index}`,
              index,
              model,
              data: train,
              train: TRAIN,
              combine,
              bsp: BSP,
            }),
          ),
        );
        const ms = performance.now() - started;
        const steps = results[0]!.stats.steps;
        t.diagnostic(
          `${combine}, 3 peers: ${steps} supersteps in ${ms.toFixed(0)} ms (${((steps * 1000) / ms).toFixed(0)} steps/s); local accuracy ${localAccuracy}`,
        );
        assert.deepEqual(
          results.map((r) => r.peer),
          [0, 1, 2].map((index) => ({ index, name: `peer-${index}` })),
        );
        assert.equal(steps, 60 * Math.ceil(668 / 30), "one superstep per global mini-batch");
        for (const r of results) assert.equal(r.reports.length, 60);
        const weights = models.map((m) => m.network.params.block.toArray());
        for (let p = 1; p < PEERS; p++) assert.deepEqual(weights[p], weights[0], `peer ${p}'s weights differ from peer 0's`);
        const want = local.network.params.block.toArray();
        const diff = Math.max(...want.map((w, i) => Math.abs(w - weights[0]![i]!)));
        assert.ok(diff <= 1e-5, `the peers' weights are ${diff} from the local run's`);
        const accuracies = models.map((m) => m.evaluate(held).accuracy!);
        assert.ok(localAccuracy >= 0.74, `the local run's held-out accuracy ${localAccuracy} (test/train/learning's threshold is 0.74)`);
        for (const a of accuracies) assert.ok(Math.abs(a - localAccuracy) <= 0.02, `3-peer held-out accuracy ${a}, local ${localAccuracy}`);
        t.diagnostic(`${combine}: held-out accuracy ${accuracies.join(", ")}; ${diff} from the local weights`);
      } finally {
        local.dispose();
        for (const m of models) m.dispose();
      }
    });
  }

  test("a peer started with other train options is refused: MembershipError naming it, on the peer that joined right", {
    timeout: 30_000,
  }, async () => {
    const { train } = await pima();
    const models = await Promise.all([1, 2].map(() => LogisticRegression.create({ inputs: 8, seed: 1 })));
    try {
      const ncs = await pool.open(2);
      const base = { job: "pima-refused", peers: 2, data: train, bsp: { ...BSP, onError: () => {} } };
      const results = await Promise.allSettled([
        trainPeer({ ...base, connection: ncs[0]!, name: "good", model: models[0]!, train: TRAIN }),
        trainPeer({ ...base, connection: ncs[1]!, name: "odd", model: models[1]!, train: { ...TRAIN, learningRate: 0.25 } }),
      ]);
      const [good, odd] = results;
      assert.equal(good.status, "rejected");
      const error = (good as PromiseRejectedResult).reason;
      assert.ok(error instanceof MembershipError, `not a MembershipError: ${String(error)}`);
      assert.equal(error.peer, "odd");
      assert.equal(error.field, "spec");
      assert.match(error.message, /"odd"/);
      assert.equal(odd.status, "rejected", "the refusal is mutual");
      const other = (odd as PromiseRejectedResult).reason;
      assert.ok(other instanceof MembershipError && other.peer === "good", `the odd peer's error: ${String(other)}`);
    } finally {
      for (const m of models) m.dispose();
    }
  });

  test("the spec hash: stable, blind to threads and key order, changed by options, weights and the data's shape; bad options refused", {
    timeout: 30_000,
  }, async () => {
    const { train, held } = await pima();
    const [a, b, c] = await Promise.all([1, 1, 2].map((seed) => LogisticRegression.create({ inputs: 8, seed })));
    try {
      const h = peerSpecHash(a!, train, { batchSize: 30, epochs: 2, threads: 0 });
      assert.match(h, /^[0-9a-f]{64}$/);
      assert.equal(peerSpecHash(b!, train, { threads: 2, epochs: 2, batchSize: 30 }), h);
      assert.notEqual(peerSpecHash(a!, train, { batchSize: 30, epochs: 3 }), h);
      assert.notEqual(peerSpecHash(c!, train, { batchSize: 30, epochs: 2 }), h, "other initial weights");
      assert.notEqual(peerSpecHash(a!, held, { batchSize: 30, epochs: 2 }), h, "another data size");
      const base = { job: "bad", peers: 3, connection: { servers: server!.url }, model: a!, data: train };
      await assert.rejects(
        trainPeer({ ...base, train: { batchSize: 32 } }),
        (e) => e instanceof InvalidArgumentError && /multiple of peers \(3\)/.test(e.message),
      );
      await assert.rejects(trainPeer({ ...base, train: { mode: "async" } }), InvalidArgumentError);
    } finally {
      for (const m of [a, b, c]) m!.dispose();
    }
  });
});
