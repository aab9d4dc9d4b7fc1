/** buildPerfusionRecord on a real journal database: every section, and the same journal gives the same bytes. */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/audit/canonical.js';
import { alarmRows, buildPerfusionRecord, trendBucketMs, TREND_MAX_BUCKETS } from '../../../src/record/build.js';
import { recordSha256 } from '../../../src/record/hash.js';
import type { PerfusionRecord } from '../../../src/record/types.js';
import { SessionReader } from '../../../src/sessions/reader.js';
import { prepareCommit } from '../../../src/storage/journalRows.js';
import { JOURNAL_FILE } from '../../../src/storage/schema.js';
import { DEV, makeFixture, nurse, RX, SESSION, T0, type Fixture } from './fixture.js';

const site = { name: 'Ward 7, University Hospital', gateway: 'gw-ward7', timeZone: 'Europe/Berlin' };
let fx: Fixture;
let rec: PerfusionRecord;

beforeAll(async () => {
  fx = makeFixture();
  rec = await buildPerfusionRecord(() => fx.db, fx.record(), { site, now: fx.clock.now });
});
afterAll(() => fx?.close());

describe('buildPerfusionRecord', () => {
  it('heads the record with the site, the console from its journaled HELLO and the session', () => {
    expect(rec.format).toBe('msc-gateway.perfusion-record');
    expect(rec.version).toBe(1);
    expect(rec.site).toEqual(site);
    expect(rec.console).toEqual({ device: DEV, model: 'MSC-ALS 2', serialNo: `SN-${DEV}`, fw: '3.4.1' });
    expect(rec.session).toEqual({
      key: fx.record().key, sessionId: SESSION, participant: null,
      startedAt: new Date(T0).toISOString(), endedAt: new Date(T0 + 180_000).toISOString(), endReason: 'ENDED',
      durationMs: 180_000, running: false, stateMs: { RUNNING: 150_000, PAUSED: 30_000 },
    });
  });

  it('lists the state changes of the session in device time', () => {
    expect(rec.states).toEqual([
      { t: T0, state: 'RUNNING', previous: 'PRIMED' },
      { t: T0 + 60_000, state: 'PAUSED', previous: 'RUNNING' },
      { t: T0 + 90_000, state: 'RUNNING', previous: 'PAUSED' },
      { t: T0 + 180_000, state: 'ENDED', previous: 'RUNNING' },
    ]);
  });

  it('charts min, mean and max per bucket of the trend channels the session has; a fault is no value', () => {
    const tr = rec.trends;
    expect(tr.bucketMs).toBe(1_000);
    expect(tr.t).toHaveLength(181);
    expect(tr.t[0]).toBe(T0);
    expect(tr.t.every((t, i) => i === 0 || t === tr.t[i - 1] + 1_000)).toBe(true);
    expect(Object.keys(tr.series).sort()).toEqual(['PA', 'QB', 'SQB', 'STR', 'TR']);
    for (const s of Object.values(tr.series)) for (const k of ['min', 'mean', 'max'] as const) expect(s[k]).toHaveLength(181);
    expect([tr.series.QB.min[0], tr.series.QB.mean[0], tr.series.QB.max[0]]).toEqual([140, 150, 160]);
    // The last bucket holds the one sample at the end (140).
    expect([tr.series.QB.min[180], tr.series.QB.mean[180], tr.series.QB.max[180]]).toEqual([140, 140, 140]);
    const faulty = tr.t.indexOf(T0 + 100_000);
    expect([tr.series.TR.min[faulty], tr.series.TR.mean[faulty], tr.series.TR.max[faulty]]).toEqual([null, null, null]);
    expect(tr.series.TR.mean[faulty - 1]).toBe(37.2);
  });

  it('keeps the session summary\'s channel statistics, TR band time and completeness', async () => {
    expect(rec.channels.QB).toEqual({ min: 140, mean: 149.9723, max: 160, samples: 361, faults: 0 });
    expect(rec.channels.TR).toEqual({ min: 37.2, mean: 37.2, max: 37.2, samples: 359, faults: 2 });
    const summary = await new SessionReader(() => fx.db).summary(fx.record(), fx.clock.now);
    expect(rec.channels).toEqual(summary.channels);
    expect(rec.temperature).toEqual(summary.temperature);
    expect(rec.temperature.trInBandPct).toBeGreaterThan(99);
    expect(rec.temperature.trInBandPct).toBeLessThan(100);
    expect(rec.completeness).toEqual(summary.completeness);
    expect(rec.completeness).toMatchObject({ lost: 0, ratio: 1, restarts: 0 });
    expect(rec.completeness.stored).toBe(361 + 4 + 1);
  });

  it('gives one alarm row per raise with acknowledgement, time to acknowledge, shelving with reason, clearing and other transitions', () => {
    expect(rec.alarms).toEqual([
      {
        id: `${DEV}:PV_HIGH`, rule: 'PV_HIGH', priority: 'MEDIUM', message: 'Venous pressure high', value: 262, limit: 250,
        raisedAt: T0 + 10_000 + RX, ackedAt: T0 + 12_500 + RX, ackedBy: nurse.user, timeToAckMs: 2_500,
        clearedAt: T0 + 20_000 + RX,
        shelves: [{ at: T0 + 13_000 + RX, by: nurse.user, reason: 'line repositioned', until: T0 + 13_000 + RX + 600_000 }],
        other: [],
      },
      {
        id: `${DEV}:PV_HIGH`, rule: 'PV_HIGH', priority: 'MEDIUM', message: 'Venous pressure high', value: 262, limit: 250,
        raisedAt: T0 + 30_000 + RX, ackedAt: null, ackedBy: null, timeToAckMs: null, clearedAt: T0 + 31_000 + RX,
        shelves: [], other: [{ kind: 'escalate', at: T0 + 30_500 + RX, by: null, reason: null }],
      },
    ]);
  });

  it('opens a row for an alarm raised before the session from the alarm\'s own raise time', () => {
    const before = T0 - 30_000;
    const rows = alarmRows([{
      kind: 'ack', at: T0 + 1_000, from: 'UNACK', to: 'ACKED', actor: nurse, reason: null,
      alarm: { id: 'X:R', device: 'X', rule: 'R', source: 'process', priority: 'LOW', state: 'ACKED', active: true, latching: false,
        raisedAt: before, clearedAt: null, value: 1, limit: 0, message: 'm', ackedBy: nurse.user, ackedAt: T0 + 1_000, shelvedUntil: null, sessionId: null },
    }]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ raisedAt: before, ackedAt: T0 + 1_000, timeToAckMs: 31_000, ackedBy: nurse.user });
  });

  it('lists device events, commands with role, reason and outcome, and annotations', () => {
    expect(rec.events).toEqual([{ t: T0 + 10_000, code: 'E_PV', prio: 'M', active: true, text: 'venous pressure high' }]);
    expect(rec.commands).toEqual([{
      at: T0 + 59_000 + RX, cmdId: 'c-1', verb: 'PAUSE', args: [], user: nurse.user, role: 'operator',
      reason: 'check the access line', outcome: 'OK',
    }]);
    expect(rec.annotations.map((a) => [a.t, a.kind, a.subtype, a.text, a.user, a.role])).toEqual([
      [T0 + 60_500, 'adverse_event', 'hypotension', 'MAP 55 mmHg', nurse.user, 'operator'],
      [T0 + 119_000, 'note', null, 'filter changed', nurse.user, 'operator'],
    ]);
    expect(rec.annotations[0].createdAt).toBe(T0 + 61_000);
    expect(rec.annotations[0].auditId).toBeGreaterThan(0);
  });

  it('is deterministic: the same journal gives byte-identical canonical JSON, whenever and however it is read', async () => {
    const again = await buildPerfusionRecord(() => fx.db, fx.record(), { site, now: fx.clock.now + 86_400_000 });
    expect(canonicalJson(again)).toBe(canonicalJson(rec));
    const ro = new Database(join(fx.dir, JOURNAL_FILE), { readonly: true });
    try {
      const fromCopy = await buildPerfusionRecord(() => ro, fx.record(), { site, now: 0 });
      expect(recordSha256(fromCopy)).toBe(recordSha256(rec));
    } finally {
      ro.close();
    }
    expect(recordSha256(rec)).toMatch(/^[0-9a-f]{64}$/);
    // Anything the record says changes its hash.
    const other = await buildPerfusionRecord(() => fx.db, fx.record(), { site: { ...site, name: 'Ward 8' }, now: fx.clock.now });
    expect(recordSha256(other)).not.toBe(recordSha256(rec));
  });

  it('keeps an ended session\'s telemetry results, equal to a fresh pass, and computes them again when its rows change', async () => {
    const kept = () => fx.db.prepare('SELECT count(*) AS n FROM record_telemetry_cache WHERE session_key = ?').get(fx.record().key) as { n: number };
    expect(kept().n).toBe(1);
    const fromKept = await buildPerfusionRecord(() => fx.db, fx.record(), { site, now: fx.clock.now });
    fx.db.prepare('DELETE FROM record_telemetry_cache').run();
    const fresh = await buildPerfusionRecord(() => fx.db, fx.record(), { site, now: fx.clock.now });
    expect(canonicalJson(fromKept)).toBe(canonicalJson(fresh));
    expect(canonicalJson(fresh)).toBe(canonicalJson(rec));
    expect(kept().n).toBe(1);
    // A late frame of the session (a backlog delivered after ENDED) is in the next record.
    prepareCommit(fx.db)([{ kind: 'telemetry', sample: { deviceId: DEV, sessionId: SESSION, seq: 9_999, t: T0 + 179_999, rx: T0 + 400_000, v: { QB: 400 } } }]);
    const later = await buildPerfusionRecord(() => fx.db, fx.record(), { site, now: fx.clock.now });
    expect(later.channels.QB).toMatchObject({ max: 400, samples: 362 });
    expect(recordSha256(later)).not.toBe(recordSha256(rec));
  });

  it('chooses a round bucket width that keeps a chart within 1,500 points and never under a second', () => {
    const H = 3_600_000;
    expect(trendBucketMs(T0, T0)).toBe(1_000);
    expect(trendBucketMs(T0, T0 + 10 * 60_000)).toBe(1_000);
    expect(trendBucketMs(T0, T0 + 4 * H)).toBe(10_000);
    expect(trendBucketMs(T0, T0 + 24 * H)).toBe(60_000);
    expect(trendBucketMs(T0, T0 + 72 * H)).toBe(300_000);
    for (const span of [1, 1_499_000, 1_500_000, 7 * 24 * H, 40 * 24 * H]) {
      const b = trendBucketMs(T0 + 17, T0 + 17 + span);
      expect(Math.floor((T0 + 17 + span) / b) - Math.floor((T0 + 17) / b) + 1).toBeLessThanOrEqual(TREND_MAX_BUCKETS);
    }
  });
});
