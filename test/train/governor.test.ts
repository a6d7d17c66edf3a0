// The participation governor's decisions, from synthetic samples: it leaves every thread working while they
// rarely wait for each other, compares one thread with all when they wait a lot, keeps the faster for a while,
// and looks again after that.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GOVERNOR, ParticipationGovernor } from "../../src/train/governor.js";

// Drives a governor over simulated time, continuing where the last call stopped: `rate(active)` gives batches
// per ms, `waitShare` the share of their time the threads wait.
class Simulation {
  private now = 0;
  private batches = 0;
  private waited = 0;
  private next = 0;

  constructor(readonly governor: ParticipationGovernor) {}

  run(ms: number, rate: (active: number) => number, waitShare: number): number[] {
    const seen: number[] = [];
    for (const end = this.now + ms; this.now < end; this.now += 1) {
      this.batches += rate(this.governor.active);
      this.waited += waitShare * this.governor.parties;
      if (this.now < this.next) continue;
      const { active, nextInMs } = this.governor.tick({ now: this.now, batches: this.batches, waited: this.waited });
      seen.push(active);
      this.next = this.now + nextInMs;
    }
    return seen;
  }
}

describe("participation governor", () => {
  test("threads that rarely wait for each other all keep working: no measurement with one thread", () => {
    const sim = new Simulation(new ParticipationGovernor(2));
    const seen = sim.run(5000, (a) => (a === 2 ? 1.5 : 1), 0.1);
    assert.ok(seen.every((a) => a === 2), `active counts ${[...new Set(seen)]}`);
  });

  test("when the threads wait a lot and one thread is faster, one thread works until the next look", () => {
    const sim = new Simulation(new ParticipationGovernor(2));
    sim.run(GOVERNOR.checkMs + 3 * GOVERNOR.windowMs, (a) => (a === 2 ? 0.9 : 1), 0.5);
    assert.equal(sim.governor.active, 1);
    const later = sim.run(GOVERNOR.holdMs / 2, (a) => (a === 2 ? 0.9 : 1), 0.5);
    assert.ok(later.every((a) => a === 1));
  });

  test("when all threads are faster after all, all keep working", () => {
    const sim = new Simulation(new ParticipationGovernor(2));
    sim.run(GOVERNOR.checkMs + 3 * GOVERNOR.windowMs, (a) => (a === 2 ? 1.2 : 1), 0.5);
    assert.equal(sim.governor.active, 2);
  });

  test("after the hold it measures again and goes back to all threads once they are faster", () => {
    const sim = new Simulation(new ParticipationGovernor(2));
    sim.run(GOVERNOR.checkMs + 3 * GOVERNOR.windowMs, (a) => (a === 2 ? 0.9 : 1), 0.5);
    assert.equal(sim.governor.active, 1);
    // Past the hold, both counts are measured again (two windows) and all threads win.
    const seen = sim.run(GOVERNOR.holdMs + 3 * GOVERNOR.windowMs, (a) => (a === 2 ? 1.6 : 1), 0.5);
    assert.ok(seen.includes(1) && seen.at(-1) === 2, `active counts ${seen}`);
    assert.equal(sim.governor.active, 2);
  });
});
