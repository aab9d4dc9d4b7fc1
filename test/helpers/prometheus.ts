/** Checks Prometheus text exposition (format 0.0.4): one HELP/TYPE per metric, no duplicate series. */
import { expect } from 'vitest';

// prom-client writes NaN as "Nan" (the event-loop mean when no delay was sampled since the last scrape);
// Prometheus reads it, its float parser ignores case.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|Nan|[+-]Inf)$/;

export function assertPrometheusText(text: string): void {
  const help = new Set<string>();
  const type = new Set<string>();
  const series = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (m) {
      const seen = m[1] === 'HELP' ? help : type;
      expect(seen.has(m[2]), `duplicate ${m[1]} for ${m[2]}`).toBe(false);
      seen.add(m[2]);
      continue;
    }
    expect(line, 'a sample line').toMatch(SAMPLE);
    const key = line.slice(0, line.lastIndexOf(' '));
    expect(series.has(key), `duplicate series ${key}`).toBe(false);
    series.add(key);
  }
}
