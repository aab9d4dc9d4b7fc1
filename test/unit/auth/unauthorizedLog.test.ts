import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { OVERFLOW_SOURCE, UnauthorizedLog } from '../../../src/auth/unauthorizedLog.js';
import { metricsTextOf } from '../../../src/metrics.js';

function harness(opts: { maxSources?: number } = {}) {
  const lines: Array<Record<string, any>> = [];
  const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c))); cb(); } }));
  const clock = { t: 1_000_000 };
  const log = new UnauthorizedLog({ logger, now: () => clock.t, windowMs: 60_000, maxSources: opts.maxSources });
  const refuse = (source: string, transport: 'http' | 'ws' = 'http') => log.record({ transport, source, reason: 'unknown token', route: '/api/devices' });
  return { lines, clock, log, refuse };
}

describe('UnauthorizedLog', () => {
  it('counts every refusal per transport for /metrics', async () => {
    const h = harness();
    for (let i = 0; i < 5; i++) h.refuse('10.0.0.1');
    h.refuse('10.0.0.1', 'ws');
    expect(h.log.total('http')).toBe(5);
    expect(h.log.total('ws')).toBe(1);
    expect(await metricsTextOf((r) => h.log.registerMetrics(r))).toContain('msc_http_unauthorized_total{transport="http"} 5\n');
    expect(await metricsTextOf((r) => h.log.registerMetrics(r))).toContain('msc_http_unauthorized_total{transport="ws"} 1\n');
    expect(await metricsTextOf((r) => h.log.registerMetrics(r))).toContain('# TYPE msc_http_unauthorized_total counter');
  });

  it('logs a source once per minute, the next line with the count held back since', () => {
    const h = harness();
    for (let i = 0; i < 4800; i++) h.refuse('10.0.0.1');
    expect(h.lines).toHaveLength(1);
    expect(h.lines[0]).toMatchObject({ level: 40, source: '10.0.0.1', transport: 'http', reason: 'unknown token', suppressed: 0 });
    h.clock.t += 59_999;
    h.refuse('10.0.0.1');
    expect(h.lines).toHaveLength(1);
    h.clock.t += 1;
    h.refuse('10.0.0.1', 'ws');
    expect(h.lines).toHaveLength(2);
    expect(h.lines[1]).toMatchObject({ source: '10.0.0.1', transport: 'ws', suppressed: 4800 });
    expect(h.lines[1].msg).toMatch(/4800 more from this source/);
  });

  it('logs each source apart, and closes a quiet source\'s minute with its held-back count', () => {
    const h = harness();
    h.refuse('10.0.0.1');
    h.refuse('10.0.0.1');
    h.refuse('10.0.0.1');
    h.refuse('10.0.0.2');
    expect(h.lines.map((l) => l.source)).toEqual(['10.0.0.1', '10.0.0.2']);
    h.clock.t += 60_000;
    h.refuse('10.0.0.3');
    // 10.0.0.1 went quiet with 2 held back: one closing line; 10.0.0.2 had none held back: no line.
    expect(h.lines.slice(2).map((l) => [l.source, l.suppressed])).toEqual([['10.0.0.1', 2], ['10.0.0.3', 0]]);
    expect(h.log.trackedSources).toBe(1);
  });

  it('bounds the sources it remembers: beyond the bound they share one throttled entry', () => {
    const h = harness({ maxSources: 100 });
    for (let i = 0; i < 10_000; i++) h.refuse(`2001:db8::${i.toString(16)}`);
    expect(h.log.trackedSources).toBeLessThanOrEqual(101);
    expect(h.lines).toHaveLength(101);
    expect(h.lines[100]).toMatchObject({ source: OVERFLOW_SOURCE });
    h.clock.t += 60_000;
    h.refuse('2001:db8::ffff:1');
    // Every old window closed: the overflow entry's held-back count is logged, the new source has room again.
    const last = h.lines.slice(101);
    expect(last.find((l) => l.source === OVERFLOW_SOURCE)?.suppressed).toBe(10_000 - 101);
    expect(last.at(-1)).toMatchObject({ source: '2001:db8::ffff:1', suppressed: 0 });
    expect(h.log.trackedSources).toBe(1);
    expect(h.log.total('http')).toBe(10_001);
  });
});
