// A histogram of staleness: how many updates the shards had applied beyond the parameters a worker last pulled,
// sampled at each push. Buckets double in width (0, 1, 2-3, 4-7, ...), so one histogram spans any job size.
/** One bucket: staleness in [from, to], and how many samples fell there. */
export interface StalenessBucket {
  from: number;
  to: number;
  count: number;
}

/** What a histogram says. */
export interface StalenessSummary {
  samples: number;
  max: number;
  mean: number;
  /** Non-empty buckets, in order. */
  buckets: StalenessBucket[];
}

export class StalenessHistogram {
  readonly #counts: number[] = [];
  #samples = 0;
  #sum = 0;
  #max = 0;

  /** Counts one sample (a non-negative integer; others are clamped to 0). */
  record(updates: number): void {
    const n = Number.isFinite(updates) && updates > 0 ? Math.floor(updates) : 0;
    const bucket = n === 0 ? 0 : Math.floor(Math.log2(n)) + 1;
    this.#counts[bucket] = (this.#counts[bucket] ?? 0) + 1;
    this.#samples++;
    this.#sum += n;
    this.#max = Math.max(this.#max, n);
  }

  /** A new summary object (copies). */
  summary(): StalenessSummary {
    const buckets: StalenessBucket[] = [];
    this.#counts.forEach((count, b) => {
      if (count) buckets.push({ from: b === 0 ? 0 : 2 ** (b - 1), to: b === 0 ? 0 : 2 ** b - 1, count });
    });
    return { samples: this.#samples, max: this.#max, mean: this.#samples ? this.#sum / this.#samples : 0, buckets };
  }
}

/** "0: 12, 1: 40, 2-3: 7" */
export function stalenessText(summary: StalenessSummary): string {
  return summary.buckets.map((b) => `${b.from === b.to ? b.from : `${b.from}-${b.to}`}: ${b.count}`).join(", ") || "none";
}
