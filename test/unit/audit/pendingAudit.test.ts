/**
 * PendingAudit with a real AuditLog on a real SQLite file: records of actions taken while the trail cannot be
 * written (its database closed, as the journal closes it on a disk failure) wait in order with the action's time,
 * raise AUDIT_PENDING, and are appended, chained, when the database is back; the chain verifies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEntry } from '../../../src/audit/auditLog.js';
import { PendingAudit } from '../../../src/audit/pendingAudit.js';
import { metricsTextOf } from '../../../src/metrics.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const entry = (action: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  user: 'alice', role: 'operator', device: 'MSC-0001', action, outcome: 'ok', detail: { n: action }, ...extra,
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'msc-pending-audit-'));
  dirs.push(dir);
  const file = join(dir, 'journal.sqlite');
  let now = 1_700_000_000_000;
  const log = new AuditLog({ db: new Database(file), now: () => now });
  log.start();
  const conditions: Array<string | null> = [];
  const errors: Array<{ obj: object; msg: string }> = [];
  const pending = new PendingAudit({
    sink: log, now: () => now, retryMs: 60_000,
    logger: { error: (obj, msg) => errors.push({ obj, msg }), info: () => undefined },
    onCondition: (m) => conditions.push(m),
  });
  return { file, log, pending, conditions, errors, tick: (ms: number) => { now += ms; return now; } };
}

describe('PendingAudit', () => {
  it('writes at once while the trail works', () => {
    const { log, pending, conditions } = setup();
    pending.record(entry('command.sent'));
    expect(log.query().map((r) => r.action)).toEqual(['command.sent']);
    expect(pending.pending).toBe(0);
    expect(conditions).toEqual([]);
    pending.stop();
  });

  it('keeps records in order with their action time while the trail is down, alarms, and writes them chained once it is back', async () => {
    const { file, log, pending, conditions, errors, tick } = setup();
    pending.record(entry('command.sent'));
    const db = (log as unknown as { opts: { db: Database.Database } }).opts.db;
    db.close(); // the journal closes its handle on a disk failure
    const t1 = tick(1_000);
    pending.record(entry('command.ok'));
    const t2 = tick(1_000);
    pending.record(entry('alarm.ack', { outcome: 'ACKED' }));
    expect(pending.pending).toBe(2);
    expect(conditions.at(-1)).toMatch(/^2 audit record\(s\) of actions taken wait for the audit trail/);
    expect(errors.map((e) => e.msg)).toEqual(['audit trail unavailable: records of actions taken are kept in memory until it is back']);
    expect(await metricsTextOf((r) => pending.registerMetrics(r))).toMatch(/^msc_audit_pending_records 2$/m);

    tick(5_000);
    pending.flush(); // still down: nothing lost, nothing reordered
    expect(pending.pending).toBe(2);

    log.useDatabase(new Database(file)); // the journal reopened
    pending.flush();
    expect(pending.pending).toBe(0);
    expect(conditions.at(-1)).toBeNull();
    const records = log.query();
    expect(records.map((r) => [r.action, r.at])).toEqual([
      ['command.sent', 1_700_000_000_000], ['command.ok', t1], ['alarm.ack', t2],
    ]);
    expect(log.verify()).toMatchObject({ ok: true, count: 3 });
    expect(await metricsTextOf((r) => pending.registerMetrics(r))).toMatch(/^msc_audit_deferred_total 2$/m);
    pending.stop();
  });

  it('a record too large for the trail goes in without its detail, saying so; at stop what is left is logged record by record', () => {
    const { log, pending, errors } = setup();
    pending.record(entry('command.ok', { detail: { reply: 'x'.repeat(200_000) } }));
    expect(log.query()).toEqual([expect.objectContaining({ action: 'command.ok', detail: { detailRefused: expect.stringMatching(/too large/) } })]);
    (log as unknown as { opts: { db: Database.Database } }).opts.db.close();
    pending.record(entry('alarm.shelve'));
    pending.stop();
    expect(errors.filter((e) => e.msg.startsWith('audit record NOT written')).map((e) => (e.obj as { record: AuditEntry }).record.action))
      .toEqual(['alarm.shelve']);
  });
});
