/** Axis ticks of the record page's SVG charts (web/src/recordChart.ts). */
import { describe, expect, it } from 'vitest';
import { niceTicks, timeTicks } from '../../../web/src/recordChart.js';
import { zoned } from '../../../web/src/recordTime.js';

const MIN = 60_000;

describe('record chart ticks', () => {
  it('puts time ticks on round local times of the site, with seconds only for short spans', () => {
    const t0 = Date.UTC(2026, 10, 20, 8, 3, 20); // 09:03:20 in Amsterdam
    const long = timeTicks(t0, t0 + 40 * MIN, 'Europe/Amsterdam');
    expect(long.seconds).toBe(false);
    expect(long.ticks.map((t) => zoned(t, 'Europe/Amsterdam').slice(11, 16))).toEqual(['09:10', '09:20', '09:30', '09:40']);
    // An hour step in a half-hour zone lands on the local hour.
    const kolkata = timeTicks(Date.UTC(2026, 0, 1, 0, 10), Date.UTC(2026, 0, 1, 5, 0), 'Asia/Kolkata');
    expect(zoned(kolkata.ticks[0], 'Asia/Kolkata').slice(11, 19)).toBe('06:00:00');
    expect(kolkata.ticks.every((t) => zoned(t, 'Asia/Kolkata').slice(14, 19) === '00:00')).toBe(true);
    const short = timeTicks(t0, t0 + 5_000, 'UTC');
    expect(short.seconds).toBe(true);
    expect(short.ticks).toHaveLength(6);
    expect(short.ticks.every((t, i) => i === 0 || t - short.ticks[i - 1] === 1_000)).toBe(true);
    // A day-long session: no more than about six labels.
    expect(timeTicks(t0, t0 + 24 * 60 * MIN, 'UTC').ticks.length).toBeLessThanOrEqual(6);
  });

  it('gives round value ticks covering the range', () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(35.6, 37.4, 5)).toEqual([36, 36.5, 37]);
    expect(niceTicks(-130, 210, 5)).toEqual([-100, 0, 100, 200]);
    expect(niceTicks(5, 5)).toEqual([5]);
  });
});
