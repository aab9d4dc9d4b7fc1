import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlarmInstance } from '../../../src/alarms/types.js';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { BusAuditor } from '../../../src/audit/busAuditor.js';
import { EventBus } from '../../../src/bus.js';
import { silentLogger } from '../../../src/log.js';

const alarm: AlarmInstance = {
  id: 'MSC-0001:PV_HIGH', device: 'MSC-0001', rule: 'PV_HIGH', source: 'process', priority: 'HIGH', state: 'ACKED',
  active: true, latching: true, raisedAt: 1, clearedAt: null, value: 260, limit: 250, message: 'PV high', ackedBy: 'alice',
  ackedAt: 2, shelvedUntil: null, sessionId: 'S-1',
};

let db: Database.Database;
let audit: AuditLog;
let bus: EventBus;
let auditor: BusAuditor;

beforeEach(() => {
  db = new Database(':memory:');
  audit = new AuditLog({ db });
  audit.start();
  bus = new EventBus();
  auditor = new BusAuditor({ bus, audit, logger: silentLogger(), sessionOf: () => 'S-1' });
  auditor.start();
});
afterEach(() => db.close());

describe('BusAuditor', () => {
  it('audits human alarm actions with who, device, session, reason; not the engine\'s own transitions', () => {
    bus.emit('alarm', { kind: 'raise', at: 1, from: 'NORMAL', to: 'UNACK', alarm, actor: null, reason: null });
    bus.emit('alarm', { kind: 'ack', at: 2, from: 'UNACK', to: 'ACKED', alarm, actor: { user: 'alice', role: 'operator' }, reason: null });
    bus.emit('alarm', { kind: 'shelve', at: 3, from: 'ACKED', to: 'SHELVED', alarm: { ...alarm, shelvedUntil: 903 }, actor: { user: 'bob', role: 'operator' }, reason: 'sensor swap' });
    bus.emit('audioPause', { deviceId: 'MSC-0001', until: 120_000, actor: { user: 'alice', role: 'operator' } });
    bus.emit('audioPause', { deviceId: 'MSC-0001', until: null, actor: null });
    expect(audit.query().map((r) => ({ a: r.action, u: r.user, o: r.outcome, d: r.device, s: r.session }))).toEqual([
      { a: 'alarm.ack', u: 'alice', o: 'ACKED', d: 'MSC-0001', s: 'S-1' },
      { a: 'alarm.shelve', u: 'bob', o: 'SHELVED', d: 'MSC-0001', s: 'S-1' },
      { a: 'alarm.audio_pause', u: 'alice', o: 'paused', d: 'MSC-0001', s: 'S-1' },
    ]);
    expect(audit.query()[1].detail).toMatchObject({ reason: 'sensor swap', from: 'ACKED', to: 'SHELVED', shelvedUntil: 903, rule: 'PV_HIGH' });
    expect(audit.query()[0].at).toBe(2);
  });

  it('survives a failing audit append, and stops listening on stop()', () => {
    db.exec("CREATE TRIGGER full BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END;");
    const ack = () => bus.emit('alarm', { kind: 'ack', at: 2, from: 'UNACK', to: 'ACKED', alarm, actor: { user: 'a', role: 'operator' }, reason: null });
    expect(ack).not.toThrow();
    db.exec('DROP TRIGGER full');
    ack();
    expect(audit.query()).toHaveLength(1);
    auditor.stop();
    auditor.stop();
    ack();
    expect(audit.query()).toHaveLength(1);
  });
});
