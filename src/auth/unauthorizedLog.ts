/**
 * Refused credentials (HTTP 401 and the live stream's 401 / 4401), counted per transport for /metrics and logged
 * per source address, throttled: a token-guessing client at thousands of tries a second must be visible without
 * writing thousands of log lines. The first refusal from a source is logged at once; later ones within a minute
 * are only counted, and the next line after the minute carries how many were held back.
 * The table of sources is bounded: when it is full of sources still inside their minute, further new sources
 * share one overflow entry (`source: "other"`), so many addresses (an IPv6 range) cannot grow memory or the log.
 * A source that went quiet with refusals held back gets a closing line with their count when its minute is over
 * and the next refusal (from anyone) comes; the counter in /metrics has every refusal at once.
 * The presented token is never passed here, so it cannot reach a log line.
 */
import type { Logger } from '../log.js';
import { counter, type Registry } from '../metrics.js';

export type AuthTransport = 'http' | 'ws';

export interface UnauthorizedLogOptions {
  logger?: Logger | null;
  now?: () => number;
  /** At most one log line per source per window. */
  windowMs?: number;
  /** Sources remembered at once; beyond it they share the `other` entry. */
  maxSources?: number;
}

export interface Refusal {
  transport: AuthTransport;
  /** The peer address (the socket's; a forwarded-for header is the client's own text). */
  source: string | undefined;
  /** Why: 'missing token' or 'unknown token', never the token. */
  reason: string;
  /** The route pattern (bounded; never the raw url, which is the client's text). */
  route?: string;
}

interface SourceEntry {
  loggedAt: number;
  suppressed: number;
}

export const OVERFLOW_SOURCE = 'other';

export class UnauthorizedLog {
  private readonly counts: Record<AuthTransport, number> = { http: 0, ws: 0 };
  /** Insertion order is log order (an entry is re-inserted when it logs), so the oldest window is first. */
  private readonly sources = new Map<string, SourceEntry>();
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly maxSources: number;

  constructor(private readonly opts: UnauthorizedLogOptions = {}) {
    // Monotonic by default: a wall clock set back must not hold a source's window shut for hours.
    this.now = opts.now ?? (() => performance.now());
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxSources = Math.max(1, opts.maxSources ?? 1024);
  }

  record(r: Refusal): void {
    this.counts[r.transport]++;
    const now = this.now();
    let source = r.source ?? 'unknown';
    if (this.throttled(source, now)) return;
    // Taken out before expire(): the line below carries its held-back count, and is its only line now.
    let previous = this.take(source);
    if (!previous) {
      this.expire(now);
      if (this.sources.size >= this.maxSources) {
        source = OVERFLOW_SOURCE;
        if (this.throttled(source, now)) return;
        previous = this.take(source);
      }
    }
    const suppressed = previous?.suppressed ?? 0;
    this.sources.set(source, { loggedAt: now, suppressed: 0 });
    this.opts.logger?.warn({
      transport: r.transport, source, reason: r.reason, route: r.route, suppressed,
      ...(source === OVERFLOW_SOURCE ? { note: `more than ${this.maxSources} sources refused within ${this.windowMs / 1000} s` } : {}),
    }, suppressed > 0
      ? `unauthorized request refused (${suppressed} more from this source since the last line)`
      : 'unauthorized request refused');
  }

  private take(source: string): SourceEntry | undefined {
    const entry = this.sources.get(source);
    if (entry) this.sources.delete(source);
    return entry;
  }

  /** Counts a refusal from a source inside its window (no line); false when it is due a line. */
  private throttled(source: string, now: number): boolean {
    const entry = this.sources.get(source);
    if (!entry || now - entry.loggedAt >= this.windowMs) return false;
    entry.suppressed++;
    return true;
  }

  /** Refusals so far, by transport. */
  total(transport: AuthTransport): number {
    return this.counts[transport];
  }

  /** Sources being throttled now (for tests of the bound). */
  get trackedSources(): number {
    return this.sources.size;
  }

  registerMetrics(registry: Registry): void {
    counter(registry, {
      name: 'msc_http_unauthorized_total', help: 'Requests and live-stream authentications refused for a missing or unknown token.',
      labelNames: ['transport'],
      read: () => [[{ transport: 'http' }, this.counts.http], [{ transport: 'ws' }, this.counts.ws]],
    });
  }

  /**
   * Forgets sources whose window has ended; one that had refusals held back gets its closing line now (still at
   * most one line per source per window), so every refusal is accounted for in the log too.
   */
  private expire(now: number): void {
    for (const [source, e] of this.sources) {
      if (now - e.loggedAt < this.windowMs) break;
      this.sources.delete(source);
      if (e.suppressed > 0) {
        this.opts.logger?.warn({ source, suppressed: e.suppressed, windowS: this.windowMs / 1000 },
          `unauthorized requests refused: ${e.suppressed} more from this source after the last line`);
      }
    }
  }
}
