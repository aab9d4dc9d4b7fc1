import { afterEach, describe, expect, it } from 'vitest';
import { keepAliveClock, ManualClock, systemClock } from '../../../src/util/clock.js';

describe('ManualClock', () => {
  it('runs due timeouts in due-time order, with now() at each due time, and moves to the end', () => {
    const c = new ManualClock(1_000);
    const seen: Array<[string, number]> = [];
    c.setTimeout(() => seen.push(['b', c.now()]), 200);
    c.setTimeout(() => seen.push(['a', c.now()]), 100);
    c.setTimeout(() => seen.push(['c', c.now()]), 500);
    c.advance(99);
    expect(seen).toEqual([]);
    c.advance(150);
    expect(seen).toEqual([['a', 1_100], ['b', 1_200]]);
    expect(c.now()).toBe(1_249);
    expect(c.pending).toBe(1);
    c.advance(10_000);
    expect(seen.map(([k]) => k)).toEqual(['a', 'b', 'c']);
    expect(c.now()).toBe(11_249);
    expect(c.pending).toBe(0);
  });

  it('fires an interval every time it falls due within one advance, until cleared', () => {
    const c = new ManualClock();
    const at: number[] = [];
    const h = c.setInterval(() => at.push(c.now()), 250);
    c.advance(1_000);
    expect(at).toEqual([250, 500, 750, 1_000]);
    c.clearInterval(h);
    c.advance(1_000);
    expect(at).toHaveLength(4);
    expect(c.pending).toBe(0);
  });

  it('keeps the arming order for equal due times, interleaving intervals and timeouts by due time', () => {
    const c = new ManualClock();
    const seen: string[] = [];
    c.setInterval(() => seen.push('tick'), 100);
    c.setTimeout(() => seen.push('t150'), 150);
    c.setTimeout(() => seen.push('t200'), 200);
    c.advance(200);
    expect(seen).toEqual(['tick', 't150', 'tick', 't200']);
  });

  it('runs a timer armed by a callback in the same advance when it falls due within it', () => {
    const c = new ManualClock();
    const seen: number[] = [];
    c.setTimeout(() => {
      seen.push(c.now());
      c.setTimeout(() => seen.push(c.now()), 50);
    }, 100);
    c.advance(120);
    expect(seen).toEqual([100]);
    c.advance(30);
    expect(seen).toEqual([100, 150]);
  });

  it('a cleared or fired timeout is a no-op to clear; null and undefined too; a callback may clear another', () => {
    const c = new ManualClock();
    let fired = 0;
    const later = c.setTimeout(() => fired++, 200);
    const first = c.setTimeout(() => c.clearTimeout(later), 100);
    c.advance(500);
    expect(fired).toBe(0);
    expect(() => {
      c.clearTimeout(first);
      c.clearTimeout(null);
      c.clearInterval(undefined);
    }).not.toThrow();
  });

  it('counts a delay under 1 ms as 1 ms, like Node, and refuses to go back in time', () => {
    const c = new ManualClock();
    let fired = 0;
    c.setTimeout(() => fired++, 0);
    c.advance(0);
    expect(fired).toBe(0);
    c.advance(1);
    expect(fired).toBe(1);
    expect(() => c.advance(-1)).toThrow(RangeError);
  });
});

describe('system clocks', () => {
  const handles: NodeJS.Timeout[] = [];
  afterEach(() => {
    for (const h of handles.splice(0)) clearTimeout(h);
  });

  it('systemClock unrefs its timers, keepAliveClock does not; both read Date.now', () => {
    const a = systemClock.setTimeout(() => {}, 60_000) as NodeJS.Timeout;
    const b = systemClock.setInterval(() => {}, 60_000) as NodeJS.Timeout;
    const c = keepAliveClock.setTimeout(() => {}, 60_000) as NodeJS.Timeout;
    const d = keepAliveClock.setInterval(() => {}, 60_000) as NodeJS.Timeout;
    handles.push(a, b, c, d);
    expect([a.hasRef(), b.hasRef(), c.hasRef(), d.hasRef()]).toEqual([false, false, true, true]);
    const before = Date.now();
    expect(systemClock.now()).toBeGreaterThanOrEqual(before);
    expect(keepAliveClock.now()).toBeLessThanOrEqual(Date.now());
    keepAliveClock.clearTimeout(c);
    keepAliveClock.clearInterval(d);
    expect(() => systemClock.clearTimeout(null)).not.toThrow();
  });
});
