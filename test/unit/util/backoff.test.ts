import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../src/util/backoff.js';

describe('Backoff', () => {
  it('doubles from the initial delay to the cap and stays there; reset starts over', () => {
    const b = new Backoff({ initialMs: 250, maxMs: 5000, random: () => 0 });
    const seq = Array.from({ length: 8 }, () => b.next());
    expect(seq).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    expect(b.attempts).toBe(8);
    expect(b.capped).toBe(true);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.capped).toBe(false);
    expect(b.next()).toBe(250);
  });

  it('says capped from the attempt whose nominal delay reaches the cap (the transports log "still retrying" then)', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 5000, random: () => 0 });
    const capped: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      b.next();
      capped.push(b.capped);
    }
    // Nominal delays handed out: 1000, 2000, 4000, 5000, 5000; capped looks at the next one.
    expect(capped).toEqual([false, false, true, true, true]);
    expect(new Backoff({ initialMs: 1000, maxMs: 1000 }).capped).toBe(true);
  });

  it('jitter only shortens a delay, by at most the jitter fraction', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.1, random: () => 0.999 });
    expect(b.next()).toBe(900);
    const r = new Backoff({ initialMs: 1000, maxMs: 8000 });
    for (let i = 0; i < 50; i++) {
      const nominal = r.nominalNext();
      const d = r.next();
      expect(d).toBeLessThanOrEqual(nominal);
      expect(d).toBeGreaterThanOrEqual(nominal * 0.9 - 1);
    }
  });

  it('jitter 0.5 ("equal jitter", journal and forwarder) keeps each delay between half and all of its step', () => {
    const at = (x: number) => new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.5, random: () => x });
    const low = at(0.999);
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const high = at(0);
    expect(Array.from({ length: 6 }, () => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(at(0.5).next()).toBe(75);
  });

  it('never hands out 0 ms, and a long outage neither overflows nor leaves the cap', () => {
    const tiny = new Backoff({ initialMs: 1, maxMs: 1, jitter: 1, random: () => 0.999 });
    expect(tiny.next()).toBe(1);
    const b = new Backoff({ initialMs: 250, maxMs: 30_000, jitter: 0 });
    for (let i = 0; i < 5_000; i++) b.next();
    expect(b.nominalNext()).toBe(30_000);
    expect(b.next()).toBe(30_000);
  });

  it('jitter 0 is exact (the serial identify re-ask)', () => {
    const b = new Backoff({ initialMs: 2000, maxMs: 10_000, jitter: 0, random: () => 0.7 });
    expect(Array.from({ length: 4 }, () => b.next())).toEqual([2000, 4000, 8000, 10_000]);
  });

  it('rejects nonsense parameters (a programmer error)', () => {
    expect(() => new Backoff({ initialMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 100, maxMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 100, maxMs: 1000, jitter: 1.5 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 100, maxMs: 1000, factor: 0.5 })).toThrow(RangeError);
  });
});
