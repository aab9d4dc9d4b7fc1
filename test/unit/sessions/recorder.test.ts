/** SessionRecorder: records from state changes, kept in the journal database; participant codes audited. */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecord, AuditSink } from '../../../src/audit/auditLog.js';
import { EventBus, type StateChange } from '../../../src/bus.js';
import type { SessionState } from '../../../src/protocol/types.js';
import { readRecords } from '../../../src/sessions/records.js';
import { SessionRecorder } from '../../../src/sessions/recorder.js';

const T0 = 1_764_061_200_000;
const actor = { user: 'nurse', role: 'operator' };

function setup(audit: AuditSink = recordingAudit()) {
  const bus = new EventBus();
  const db = new Database(':memory:');
  const recorder = new SessionRecorder({ bus, audit, logger: { error() {} } });
  recorder.useDatabase(db);
  recorder.start();
  let seq = 0;
  const state = (state: SessionState, sessionId: string | null, t: number, deviceId = 'MSC-0001') => {
    const c: StateChange = { deviceId, seq: seq++, t, rx: t + 7, state, sessionId, previous: null };
    bus.emit('state', c);
  };
  return { bus, db, recorder, state };
}

function recordingAudit(): AuditSink & { entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  return {
    entries,
    append(e) {
      entries.push(e);
      return { id: entries.length } as AuditRecord;
    },
  };
}

describe('SessionRecorder', () => {
  it('opens at the first state with a session id, adds up time per state, closes at ENDED', () => {
    const { db, state } = setup();
    state('PRIMED', null, T0 - 5000);
    state('RUNNING', 'S-1', T0);
    state('PAUSED', 'S-1', T0 + 60_000);
    state('RUNNING', 'S-1', T0 + 90_000);
    state('RINSEBACK', 'S-1', T0 + 150_000);
    state('ENDED', 'S-1', T0 + 160_000);
    state('IDLE', null, T0 + 200_000);
    const [r] = readRecords(db);
    expect(r).toMatchObject({
      sessionId: 'S-1', device: 'MSC-0001', startedAt: T0, startedRx: T0 + 7, endedAt: T0 + 160_000, endReason: 'ENDED',
      stateMs: { RUNNING: 120_000, PAUSED: 30_000, RINSEBACK: 10_000 },
    });
    expect(readRecords(db)).toHaveLength(1);
  });

  it('closes a session a RESET ends without ENDED (FAULT → IDLE), and one a new session id replaces', () => {
    const { db, state } = setup();
    state('RUNNING', 'S-1', T0);
    state('FAULT', 'S-1', T0 + 1000);
    state('IDLE', null, T0 + 2000);
    state('RUNNING', 'S-2', T0 + 3000, 'MSC-0002');
    state('RUNNING', 'S-3', T0 + 4000, 'MSC-0002');
    const byId = Object.fromEntries(readRecords(db).map((r) => [r.sessionId, r]));
    expect(byId['S-1']).toMatchObject({ endReason: 'IDLE', endedAt: T0 + 2000, stateMs: { RUNNING: 1000, FAULT: 1000 } });
    expect(byId['S-2']).toMatchObject({ endReason: 'superseded', endedAt: T0 + 4000 });
    expect(byId['S-3']).toMatchObject({ endedAt: null, device: 'MSC-0002' });
  });

  it('a restarted gateway continues the open record from the database', () => {
    const first = setup();
    first.state('RUNNING', 'S-1', T0);
    first.recorder.stop();
    const bus = new EventBus();
    const again = new SessionRecorder({ bus, audit: recordingAudit(), logger: { error() {} } });
    again.useDatabase(first.db);
    again.start();
    bus.emit('state', { deviceId: 'MSC-0001', seq: 9, t: T0 + 30_000, rx: T0 + 30_000, state: 'ENDED', sessionId: 'S-1', previous: null });
    const all = readRecords(first.db);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ endReason: 'ENDED', stateMs: { RUNNING: 30_000 } });
  });

  it('keeps changes while the database is away and writes them when it is back', () => {
    const bus = new EventBus();
    const recorder = new SessionRecorder({ bus, audit: recordingAudit(), logger: { error() {} } });
    recorder.start();
    bus.emit('state', { deviceId: 'MSC-0001', seq: 1, t: T0, rx: T0, state: 'RUNNING', sessionId: 'S-9', previous: null });
    expect(recorder.current('MSC-0001')?.sessionId).toBe('S-9');
    const db = new Database(':memory:');
    recorder.useDatabase(db);
    expect(readRecords(db).map((r) => r.sessionId)).toEqual(['S-9']);
  });

  it('participant code: validated (a study code, never a name), audited with the change in one transaction', () => {
    const audit = recordingAudit();
    const { db, recorder, state } = setup(audit);
    state('RUNNING', 'S-1', T0);
    const key = readRecords(db)[0].key;
    expect(recorder.setParticipant(key, 'Jane Doe', 'enrolment', actor)).toMatchObject({ ok: false, status: 400 });
    expect(recorder.setParticipant(key, 'x'.repeat(33), 'enrolment', actor)).toMatchObject({ ok: false, status: 400 });
    expect(recorder.setParticipant(key + 1, 'P-01', 'enrolment', actor)).toMatchObject({ ok: false, status: 404 });
    expect(audit.entries).toHaveLength(0);
    expect(recorder.setParticipant(key, 'P-01', 'enrolment', actor)).toMatchObject({ ok: true, record: { participant: 'P-01' } });
    expect(audit.entries[0]).toMatchObject({ action: 'session.participant', session: 'S-1', device: 'MSC-0001', detail: { code: 'P-01', previous: null } });
    state('PAUSED', 'S-1', T0 + 1000); // later saves of the open record keep the code
    expect(readRecords(db)[0].participant).toBe('P-01');

    const failing = setup({ append: () => { throw Object.assign(new Error('audit trail unavailable'), { statusCode: 503 }); } });
    failing.state('RUNNING', 'S-2', T0);
    const k = readRecords(failing.db)[0].key;
    expect(() => failing.recorder.setParticipant(k, 'P-02', 'enrolment', actor)).toThrow(/audit/);
    expect(readRecords(failing.db)[0].participant).toBeNull();
  });
});
