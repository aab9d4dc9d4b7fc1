/** Local time on the record: the site's IANA zone with its offset at that instant, and the site configuration. */
import { describe, expect, it } from 'vitest';
import { applyOverrides, ConfigError, overridesFromEnv, parseConfig } from '../../../src/config.js';
import { formatLocal, isValidTimeZone, processTimeZone } from '../../../src/record/time.js';

describe('formatLocal', () => {
  it('shows the wall clock of the zone with the offset in force at that instant', () => {
    expect(formatLocal(Date.UTC(2026, 0, 5, 23, 30, 15, 999), 'Europe/Berlin')).toBe('2026-01-06 00:30:15 +01:00');
    expect(formatLocal(Date.UTC(2026, 6, 1, 12, 0, 0), 'Europe/Berlin')).toBe('2026-07-01 14:00:00 +02:00');
    expect(formatLocal(Date.UTC(2026, 0, 5, 3, 4, 5), 'America/New_York')).toBe('2026-01-04 22:04:05 -05:00');
    expect(formatLocal(Date.UTC(2026, 0, 5, 0, 0, 0), 'Asia/Kolkata')).toBe('2026-01-05 05:30:00 +05:30');
    expect(formatLocal(Date.UTC(2026, 0, 5, 0, 0, 0), 'UTC')).toBe('2026-01-05 00:00:00 +00:00');
    // Midnight is 00, never 24.
    expect(formatLocal(Date.UTC(2026, 2, 1, 23, 0, 0), 'Europe/London')).toBe('2026-03-01 23:00:00 +00:00');
    expect(formatLocal(Date.UTC(2026, 2, 2, 0, 0, 0), 'Europe/London')).toBe('2026-03-02 00:00:00 +00:00');
  });

  it('around a DST change: the same wall hour twice, told apart by the offset', () => {
    // Europe/Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET.
    expect(formatLocal(Date.UTC(2026, 9, 25, 0, 30), 'Europe/Berlin')).toBe('2026-10-25 02:30:00 +02:00');
    expect(formatLocal(Date.UTC(2026, 9, 25, 1, 30), 'Europe/Berlin')).toBe('2026-10-25 02:30:00 +01:00');
  });

  it('knows IANA zones and refuses invented ones', () => {
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(isValidTimeZone(processTimeZone())).toBe(true);
  });
});

describe('site configuration', () => {
  it('defaults: no name, the host name, the process\'s zone', () => {
    const site = parseConfig({}).site;
    expect(site.name).toBeNull();
    expect(typeof site.gateway).toBe('string');
    expect(site.timeZone).toBe(processTimeZone());
  });

  it('takes a name and an IANA zone from the file or MSC_SITE_NAME / MSC_SITE_TIMEZONE, and refuses a bad zone', () => {
    const env = overridesFromEnv({ MSC_SITE_NAME: 'Ward 7, University Hospital', MSC_SITE_TIMEZONE: 'Europe/Berlin' });
    const site = parseConfig(applyOverrides({ site: { gateway: 'gw-ward7', timeZone: 'UTC' } }, env)).site;
    expect(site).toEqual({ name: 'Ward 7, University Hospital', gateway: 'gw-ward7', timeZone: 'Europe/Berlin' });
    expect(() => parseConfig({ site: { timeZone: 'Mars/Olympus_Mons' } })).toThrow(ConfigError);
    expect(() => parseConfig({ site: { timeZone: 'Mars/Olympus_Mons' } })).toThrow(/site\.timeZone: must be an IANA time zone/);
    expect(() => parseConfig({ site: { name: 'Ward\n7' } })).toThrow(/site\.name/);
    expect(parseConfig({ site: { gateway: null } }).site.gateway).toBeNull();
  });
});
