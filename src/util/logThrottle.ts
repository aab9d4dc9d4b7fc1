/** Keys remembered at most: keys can come from the outside (topics, ids). */
const MAX_THROTTLE_KEYS = 1000;

/**
 * At most one log line per key per window; the lines held back are counted and reported with the next one.
 * Device noise (a bad payload 10 times a second) must not drown the log, yet must stay visible.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Returns null when this line is held back, else how many were held back since the last one written. */
  admit(key: string): { suppressed: number } | null {
    const t = this.now();
    const entry = this.last.get(key);
    if (entry && t - entry.at < this.windowMs) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    // Keys can come from the outside (topics, ids): forget expired ones rather than grow without bound.
    if (!entry && this.last.size >= MAX_THROTTLE_KEYS) {
      for (const [k, e] of this.last) if (t - e.at >= this.windowMs) this.last.delete(k);
      if (this.last.size >= MAX_THROTTLE_KEYS) this.last.clear();
    }
    this.last.set(key, { at: t, suppressed: 0 });
    return { suppressed };
  }
}
