/**
 * Capped exponential backoff with jitter, for reopening a serial port and reconnecting to a broker.
 * Pure: no timers and no randomness of its own (inject `random` to make a test exact).
 */

export interface BackoffOptions {
  /** First delay, ms. */
  initialMs: number;
  /** No delay exceeds this, jitter included, ms. */
  maxMs: number;
  /** Growth per attempt; 2 doubles. */
  factor?: number;
  /**
   * Fraction of the delay drawn at random and subtracted, so gateways that lost one broker at once do not
   * all come back in the same millisecond. 0.1 keeps each delay within 10 % below its nominal value.
   */
  jitter?: number;
  /** Uniform in [0, 1). */
  random?: () => number;
}

export class Backoff {
  private attemptCount = 0;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs)) {
      throw new RangeError(`Backoff: need 0 < initialMs <= maxMs, got ${opts.initialMs}, ${opts.maxMs}`);
    }
    this.factor = opts.factor ?? 2;
    this.jitter = opts.jitter ?? 0.1;
    this.random = opts.random ?? Math.random;
  }

  /** Delays handed out since the last reset(). */
  get attempts(): number {
    return this.attemptCount;
  }

  /** The nominal (jitter-free) delay of the next attempt; reaches maxMs and stays there. */
  nominalNext(): number {
    return Math.min(this.opts.maxMs, this.opts.initialMs * this.factor ** this.attemptCount);
  }

  /** Whether the nominal delay has reached its cap (the caller logs "still retrying" once at that point). */
  get capped(): boolean {
    return this.nominalNext() >= this.opts.maxMs;
  }

  /** The delay before the next attempt, ms; counts the attempt. */
  next(): number {
    const nominal = this.nominalNext();
    this.attemptCount++;
    return Math.max(1, Math.round(nominal * (1 - this.jitter * this.random())));
  }

  reset(): void {
    this.attemptCount = 0;
  }
}
