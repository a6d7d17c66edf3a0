// Decides how many worker threads take part in sync training, so that more threads are never slower than fewer:
// when other processes take cores, two threads can get one core's worth between them and lose to one thread that
// has a core to itself. While the threads wait for each other much more than usual, the main thread measures
// mini-batches per second with every thread and with one, and keeps the faster for a while before looking again.
// Results do not depend on it: sync training is the same at any thread count.

/** The governor's timings (ms) and thresholds. */
export const GOVERNOR = {
  /** Length of one measurement. */
  windowMs: 60,
  /** How long a decision is kept before the next look. */
  holdMs: 2000,
  /** How often the wait fraction is checked while every thread works. */
  checkMs: 100,
  /** Fraction of their time the threads may spend waiting for each other before the counts are compared. */
  waitFraction: 0.25,
  /** One thread must be this much faster to be chosen. */
  margin: 1.03,
} as const;

type Phase = { kind: "watch"; from: number; waited: number } | { kind: "measure"; active: number; from: number; batches: number } | { kind: "hold"; until: number };

/** What the governor reads each time it is asked. */
export interface GovernorSample {
  now: number;
  /** Mini-batches done so far this epoch. */
  batches: number;
  /** Milliseconds all threads have spent waiting, so far. */
  waited: number;
}

/** The participation decision, driven by tick(). */
export class ParticipationGovernor {
  /** Threads that may take work now. */
  active: number;
  private phase: Phase | undefined;
  private readonly rates = new Map<number, number>();

  constructor(readonly parties: number) {
    this.active = parties;
  }

  /** Call when an epoch starts: a measurement across the epoch boundary would be wrong. */
  epochStarted(): void {
    if (this.phase?.kind !== "hold") this.phase = undefined;
  }

  /** Advances the schedule; returns the number of active threads, and when to call again (ms from now). */
  tick(sample: GovernorSample): { active: number; nextInMs: number } {
    const phase = this.phase;
    const { now } = sample;
    if (!phase || (phase.kind === "hold" && now >= phase.until && this.active === this.parties)) return this.watch(sample);
    if (phase.kind === "hold") {
      if (now < phase.until) return { active: this.active, nextInMs: phase.until - now };
      return this.measure(this.parties, sample);
    }
    if (phase.kind === "watch") {
      if (now - phase.from < GOVERNOR.checkMs) return { active: this.active, nextInMs: phase.from + GOVERNOR.checkMs - now };
      const fraction = (sample.waited - phase.waited) / ((now - phase.from) * this.parties);
      return fraction > GOVERNOR.waitFraction ? this.measure(this.parties, sample) : this.watch(sample);
    }
    if (now - phase.from < GOVERNOR.windowMs) return { active: this.active, nextInMs: phase.from + GOVERNOR.windowMs - now };
    this.rates.set(phase.active, (sample.batches - phase.batches) / (now - phase.from));
    if (phase.active === this.parties) return this.measure(1, sample);
    const one = this.rates.get(1) ?? 0;
    const all = this.rates.get(this.parties) ?? 0;
    this.active = one > all * GOVERNOR.margin ? 1 : this.parties;
    this.phase = { kind: "hold", until: now + GOVERNOR.holdMs };
    return { active: this.active, nextInMs: GOVERNOR.holdMs };
  }

  private watch({ now, waited }: GovernorSample): { active: number; nextInMs: number } {
    this.active = this.parties;
    this.phase = { kind: "watch", from: now, waited };
    return { active: this.active, nextInMs: GOVERNOR.checkMs };
  }

  private measure(active: number, { now, batches }: GovernorSample): { active: number; nextInMs: number } {
    this.active = active;
    this.phase = { kind: "measure", active, from: now, batches };
    return { active, nextInMs: GOVERNOR.windowMs };
  }
}
