/**
 * Exponential backoff with "equal jitter": each delay is half the exponential step plus a random
 * half, so retries from many gateways do not synchronise and a delay never collapses to zero.
 */
export class ExponentialBackoff {
  private attempt = 0;

  constructor(private readonly opts: { minMs: number; maxMs: number }) {}

  /** The delay before the next retry; `random` returns [0, 1) (inject a fixed one in tests). */
  next(random: () => number): number {
    const step = Math.min(this.opts.maxMs, this.opts.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(step / 2 + random() * (step / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
