/** The record page's site-time formatting (web/src/recordTime.ts): same format as the server's `atLocal`, DST-correct. */
import { describe, expect, it } from 'vitest';
import { formatLocal } from '../../../src/record/time.js';
import { utc, zoned } from '../../../web/src/recordTime.js';

describe('record page times', () => {
  it('formats an instant in the site time zone with its offset, across daylight-saving changes', () => {
    expect(zoned(Date.UTC(2026, 10, 20, 8, 0, 0), 'Europe/Amsterdam')).toBe('2026-11-20 09:00:00 +01:00');
    expect(zoned(Date.UTC(2026, 6, 1, 22, 30, 5), 'Europe/Amsterdam')).toBe('2026-07-02 00:30:05 +02:00');
    // 2026-03-29 01:00Z: Amsterdam jumps from 02:00 +01:00 to 03:00 +02:00.
    expect(zoned(Date.UTC(2026, 2, 29, 0, 59, 59), 'Europe/Amsterdam')).toBe('2026-03-29 01:59:59 +01:00');
    expect(zoned(Date.UTC(2026, 2, 29, 1, 0, 0), 'Europe/Amsterdam')).toBe('2026-03-29 03:00:00 +02:00');
    expect(zoned(Date.UTC(2026, 0, 1, 12, 0, 0), 'America/St_Johns')).toBe('2026-01-01 08:30:00 -03:30');
    expect(zoned(Date.UTC(2026, 0, 1, 0, 0, 0), 'UTC')).toBe('2026-01-01 00:00:00 +00:00');
    // Sub-second instants keep their second (never rounded up into the next one).
    expect(zoned(Date.UTC(2026, 0, 1, 0, 0, 0) + 999, 'UTC')).toBe('2026-01-01 00:00:00 +00:00');
    expect(zoned(Date.UTC(2026, 0, 1, 0, 0, 0) - 1, 'Asia/Kolkata')).toBe('2026-01-01 05:29:59 +05:30');
  });

  it('reads exactly like the server\'s local times (signatures\' atLocal, the PDF)', () => {
    const zones = ['Europe/Amsterdam', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'UTC'];
    // Every 7 h 13 min 17.5 s through 2026: both DST changes of each zone are crossed.
    for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2027, 0, 1); ms += 26_037_500) {
      for (const z of zones) expect(zoned(ms, z), `${new Date(ms).toISOString()} ${z}`).toBe(formatLocal(ms, z));
    }
  });

  it('falls back to UTC for an unknown zone and shows a dash for no time', () => {
    expect(zoned(Date.UTC(2026, 0, 1, 0, 0, 0), 'Not/AZone')).toBe('2026-01-01 00:00:00 +00:00');
    expect(zoned(Number.NaN, 'UTC')).toBe('—');
    expect(utc(Date.UTC(2026, 10, 20, 8, 0, 0, 250))).toBe('2026-11-20 08:00:00Z');
  });
});
