import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { Journal } from '../../../src/storage/journal.js';
import { writeCursors } from '../../../src/storage/journalQueries.js';
import { Retention } from '../../../src/storage/retention.js';
import { alarmTransition, deviceEvent, fullValues, sample, stateChange, T0, tempDir } from './fixtures.js';

const DAY = 86_400_000;
let tmp: ReturnType<typeof tempDir>;
let journal: Journal;

function count(table: string): number {
  return (journal.database()!.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** `days` days of one sample per hour (gateway time), plus one state, event and alarm per day. */
async function fill(days: number): Promise<void> {
  for (let h = 0; h < days * 24; h++) {
    const rx = T0 + h * 3_600_000;
    journal.appendTelemetry(sample(h, fullValues(h), { t: rx, rx }));
    if (h % 24 === 0) {
      journal.appendState(stateChange(100_000 + h, 'RUNNING', { t: rx, rx }));
      journal.appendEvent(deviceEvent(200_000 + h, 'PAUSED', { t: rx, rx }));
      journal.appendAlarm(alarmTransition(rx));
    }
  }
  // The audit trail (src/audit) keeps its own table in the journal's database; retention must never touch it.
  const audit = new AuditLog({ db: journal.database()!, now: () => T0 });
  audit.start();
  audit.append({ user: 'nurse1', role: 'operator', action: 'alarm.ack', outcome: 'done', at: T0 });
  await journal.committed();
}

beforeEach(async () => {
  tmp = tempDir();
  journal = new Journal({ dataDir: tmp.dir });
  await journal.start();
});
afterEach(async () => {
  await journal.stop();
  tmp.cleanup();
});

describe('Retention', () => {
  it('without InfluxDB prunes everything older than N days, and never the audit trail', async () => {
    await fill(20);
    const now = T0 + 20 * DAY;
    const r = new Retention({ journal, keepDays: 14, now: () => now, chunkRows: 7 });
    const report = await r.runOnce();
    expect(report?.deletedByAge.telemetry).toBe(6 * 24);
    expect(count('telemetry')).toBe(14 * 24);
    expect(count('state')).toBe(14);
    expect(count('event')).toBe(14);
    expect(count('alarm')).toBe(14);
    expect(count('audit')).toBe(1);
    const oldest = journal.database()!.prepare('SELECT min(rx) AS m FROM telemetry').get() as { m: number };
    expect(oldest.m).toBeGreaterThanOrEqual(now - 14 * DAY);
    await r.stop();
    await r.stop();
  });

  it('with InfluxDB configured prunes only rows the forwarder has confirmed', async () => {
    await fill(20);
    const db = journal.database()!;
    const confirmed = (db.prepare('SELECT id FROM telemetry ORDER BY id LIMIT 1 OFFSET 49').get() as { id: number }).id;
    writeCursors(db, 'influx', { telemetry: confirmed, state: 0, event: 0, alarm: 0 });
    const r = new Retention({ journal, keepDays: 14, now: () => T0 + 20 * DAY, confirmedBy: { cursorName: 'influx' }, chunkRows: 10 });
    const report = await r.runOnce();
    expect(report?.deletedByAge.telemetry).toBe(50);
    expect(report?.heldForInflux).toBe(true);
    expect(count('telemetry')).toBe(20 * 24 - 50);
    expect(count('state')).toBe(20);
    expect((db.prepare('SELECT min(id) AS m FROM telemetry').get() as { m: number }).m).toBe(confirmed + 1);
  });

  it('prunes the oldest telemetry when the journal is over its size limit', async () => {
    for (let i = 0; i < 20_000; i++) journal.appendTelemetry(sample(i, fullValues(i), { rx: T0 + i }));
    await journal.committed();
    const used = () => {
      const db = journal.database()!;
      const n = (k: string) => db.pragma(k, { simple: true }) as number;
      return (n('page_count') - n('freelist_count')) * n('page_size');
    };
    const before = used();
    const limit = Math.floor(before / 2);
    const r = new Retention({ journal, keepDays: 14, maxBytes: limit, now: () => T0 + 1_000, chunkRows: 500 });
    const report = await r.runOnce();
    expect(report!.deletedBySize).toBeGreaterThan(5_000);
    expect(used()).toBeLessThanOrEqual(limit);
    expect(report!.usedBytes).toBe(used());
    // Oldest first: what is left is the newest, contiguous to the end.
    const left = journal.database()!.prepare('SELECT min(seq) AS lo, max(seq) AS hi, count(*) AS n FROM telemetry').get() as {
      lo: number; hi: number; n: number;
    };
    expect(left.hi).toBe(19_999);
    expect(left.hi - left.lo + 1).toBe(left.n);
  });

  it('does nothing while everything is younger than N days and under the size limit', async () => {
    await fill(3);
    const r = new Retention({ journal, keepDays: 14, now: () => T0 + 3 * DAY });
    const report = await r.runOnce();
    expect(report).toMatchObject({ deletedBySize: 0, heldForInflux: false });
    expect(Object.values(report!.deletedByAge)).toEqual([0, 0, 0, 0]);
    expect(count('telemetry')).toBe(72);
  });
});
