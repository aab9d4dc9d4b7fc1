/**
 * Capped exponential backoff with jitter: reopening a serial port, reconnecting to a broker, reopening the
 * journal, retrying InfluxDB. Pure: no timers and no randomness of its own (inject `random` to make a test exact).
 *
 * Jitter only ever shortens a delay: each one is drawn uniformly between (1 − jitter) × nominal and nominal, so
 * gateways that lost one broker or database at once do not all come back in the same millisecond, a delay never
 * exceeds its cap, and (jitter < 1) never collapses to zero. jitter 0.5 is "equal jitter": half the step fixed,
 * half at random.
 */

export interface BackoffOptions {
  /** First delay, ms. */
  initialMs: number;
  /** No delay exceeds this, jitter included, ms. */
  maxMs: number;
  /** Growth per attempt; 2 doubles. */
  factor?: number;
  /** Fraction of each delay drawn at random and subtracted, in [0, 1]; 0.1 keeps a delay within 10 % below nominal. */
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
    if (!(this.factor >= 1) || !(this.jitter >= 0 && this.jitter <= 1)) {
      throw new RangeError(`Backoff: need factor >= 1 and 0 <= jitter <= 1, got ${this.factor}, ${this.jitter}`);
    }
    this.random = opts.random ?? Math.random;
  }

  /** Delays handed out since the last reset() (the failures in a row, for a caller that counts them). */
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
