import { describe, expect, it } from 'vitest';
import { counter, gauge, oncePerScrape, Registry } from '../../src/metrics.js';

describe('families read at scrape time', () => {
  it('show the totals the part holds, scrape after scrape (never added up), and only the label sets it returns', async () => {
    const registry = new Registry();
    const counts: Record<string, number> = { a: 2, b: 1 };
    counter(registry, { name: 't_total', help: 'h', labelNames: ['k'], read: () => Object.entries(counts).map(([k, n]) => [{ k }, n] as const) });
    gauge(registry, { name: 't_size', help: 'h', read: () => Object.keys(counts).length });
    const first = await registry.metrics();
    expect(await registry.metrics()).toBe(first);
    expect(first).toContain('t_total{k="a"} 2\nt_total{k="b"} 1\n');
    expect(first).toContain('t_size 2\n');
    delete counts.b;
    counts.a = 5;
    const later = await registry.metrics();
    expect(later).toContain('t_total{k="a"} 5\n');
    expect(later).not.toContain('k="b"');
    expect(later).toContain('t_size 1\n');
  });

  it('escape label values (backslash, quote, newline) and leave out the label keys a sample does not carry', async () => {
    const registry = new Registry();
    counter(registry, {
      name: 't_total', help: 'h', labelNames: ['device', 'source', 'reason'],
      read: () => [[{ device: 'D', reason: 'x' }, 1], [{ device: '', source: 'a\\b"c\nd', reason: 'y' }, 2]],
    });
    const text = await registry.metrics();
    expect(text).toContain('t_total{device="D",reason="x"} 1\n');
    expect(text).toContain('t_total{device="",source="a\\\\b\\"c\\nd",reason="y"} 2\n');
  });

  it('oncePerScrape reads a status once for all the families of one scrape, and again at the next', async () => {
    const registry = new Registry();
    let reads = 0;
    const status = oncePerScrape(() => ({ n: ++reads }));
    for (const name of ['t_one', 't_two', 't_three']) gauge(registry, { name, help: 'h', read: () => status().n });
    expect(await registry.metrics()).toMatch(/^t_three 1$/m);
    expect(reads).toBe(1);
    expect(await registry.metrics()).toMatch(/^t_one 2$/m);
    expect(reads).toBe(2);
  });
});
