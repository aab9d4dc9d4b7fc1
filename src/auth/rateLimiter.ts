/**
 * A token bucket per key (the user): `burst` requests at once, refilled at `perSecond`. Enough for a handful
 * of users on a ward network, where the point is to stop a runaway script from flooding the consoles with
 * commands or the audit trail with records (rate limits on write routes).
 */
export interface RateLimiterOptions {
  burst: number;
  perSecond: number;
  now?: () => number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

const MAX_KEYS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly opts: RateLimiterOptions) {
    this.now = opts.now ?? Date.now;
  }

  take(key: string): RateDecision {
    const now = this.now();
    const { burst, perSecond } = this.opts;
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= MAX_KEYS) this.buckets.clear();
      b = { tokens: burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - b.tokens) / perSecond) * 1000) };
  }
}
