// Hama's convergence check over mini-batch losses: every `window` batches, compare the window's mean loss with
// the previous window's; converged when it fell by less than `minImprovement` (relative). A NaN or infinite mean
// (training on with nonFiniteLoss "continue") is no sign of convergence.

export class ConvergenceCheck {
  private previous: number | undefined;
  private sum = 0;
  private count = 0;

  constructor(
    readonly window: number,
    readonly minImprovement: number,
  ) {}

  /** Adds one batch's mean loss; true once the loss has stopped falling. */
  push(loss: number): boolean {
    this.sum += loss;
    if (++this.count < this.window) return false;
    const mean = this.sum / this.count;
    const previous = this.previous;
    this.previous = mean;
    this.sum = 0;
    this.count = 0;
    if (previous === undefined || !Number.isFinite(previous) || !Number.isFinite(mean)) return false;
    return !(previous - mean > this.minImprovement * Math.abs(previous));
  }
}
