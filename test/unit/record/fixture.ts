/**
 * A small treatment session written into a real journal database in a temporary directory, through the parts
 * that write it in the gateway: the journal's row writers (telemetry, states, events, alarm transitions), the
 * session recorder (on the bus), the audit trail, the annotation store and the console-HELLO journal.
 *
 * Console MSC-R001 runs S-REC-1 for 180 s of device time (RUNNING, PAUSED 60-90 s, RUNNING, ENDED), two samples
 * a second (QB 140/160, SQB 150, PA, TR 37.2 with a sensor fault at 100 s, STR 37.0), an air-in-line event,
 * an alarm raised, acknowledged, shelved and cleared, then raised and cleared again, a PAUSE command with its
 * reason, and two annotations (an adverse event and a note). Gateway time = device time + 5 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlarmInstance, AlarmTransition, AlarmTransitionKind } from '../../../src/alarms/types.js';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { EventBus, type StateChange } from '../../../src/bus.js';
import { AnnotationStore } from '../../../src/control/annotations.js';
import type { SessionState } from '../../../src/protocol/types.js';
import { ConsoleInfoStore } from '../../../src/record/consoleInfo.js';
import { findRecords } from '../../../src/sessions/records.js';
import { SessionRecorder } from '../../../src/sessions/recorder.js';
import type { SessionRecord } from '../../../src/sessions/types.js';
import { prepareCommit, type JournalRecord } from '../../../src/storage/journalRows.js';
import { openJournalDb, type Db } from '../../../src/storage/schema.js';
import { helloFrame } from '../../helpers/hello.js';

export const DEV = 'MSC-R001';
export const SESSION = 'S-REC-1';
export const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
export const RX = 5;
export const nurse = { user: 'nurse-a', role: 'operator' };

export interface Fixture {
  dir: string;
  db: Db;
  bus: EventBus;
  audit: AuditLog;
  annotations: AnnotationStore;
  recorder: SessionRecorder;
  consoleInfo: ConsoleInfoStore;
  /** Gateway time as the parts see it; tests move it. */
  clock: { now: number };
  record(): SessionRecord;
  close(): void;
}

function alarm(kind: AlarmTransitionKind, at: number, over: Partial<AlarmInstance> = {}, extra: Partial<AlarmTransition> = {}): AlarmTransition {
  const a: AlarmInstance = {
    id: `${DEV}:PV_HIGH`, device: DEV, rule: 'PV_HIGH', source: 'process', priority: 'MEDIUM', state: 'UNACK', active: true,
    latching: false, raisedAt: at, clearedAt: null, value: 262, limit: 250, message: 'Venous pressure high',
    ackedBy: null, ackedAt: null, shelvedUntil: null, sessionId: SESSION, ...over,
  };
  return { kind, at, from: 'NORMAL', to: 'UNACK', alarm: a, actor: null, reason: null, ...extra };
}

export function makeFixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'msc-record-'));
  const clock = { now: T0 - 60_000 };
  const now = () => clock.now;
  const db = openJournalDb(dir, { now });
  const bus = new EventBus();
  const audit = new AuditLog({ db, now });
  audit.start();
  const annotations = new AnnotationStore({ db, audit, now });
  annotations.start();
  const logger = { error() {} };
  const recorder = new SessionRecorder({ bus, audit, logger });
  recorder.useDatabase(db);
  recorder.start();
  const consoleInfo = new ConsoleInfoStore({ bus, now, logger });
  consoleInfo.useDatabase(db);
  consoleInfo.start();
  const commit = prepareCommit(db);
  let seq = 100;
  const write = (...rows: JournalRecord[]) => commit(rows);

  bus.emit('hello', { deviceId: DEV, hello: helloFrame(DEV, 'MSC-ALS 2'), transport: 'serial', source: '/dev/ttyUSB0' });
  let previous: SessionState | null = 'IDLE';
  const state = (s: SessionState, sessionId: string | null, t: number) => {
    const c: StateChange = { deviceId: DEV, seq: seq++, t, rx: t + RX, state: s, sessionId, previous };
    previous = s;
    clock.now = t + RX;
    write({ kind: 'state', change: c });
    bus.emit('state', c);
  };
  const samplesUntil = (end: number) => {
    const rows: JournalRecord[] = [];
    for (let t = nextSample; t < end; t += 500) {
      const odd = (t - T0) % 1000 !== 0;
      const fault = t === T0 + 100_000 || t === T0 + 100_500;
      rows.push({ kind: 'telemetry', sample: {
        deviceId: DEV, sessionId: SESSION, seq: seq++, t, rx: t + RX,
        v: { QB: odd ? 160 : 140, SQB: 150, PA: -100, TR: fault ? null : 37.2, STR: 37.0 },
      } });
    }
    nextSample = end;
    write(...rows);
  };
  let nextSample = T0;

  state('PRIMED', null, T0 - 5_000);
  state('RUNNING', SESSION, T0);
  samplesUntil(T0 + 10_000);
  write({ kind: 'alarm', transition: alarm('raise', T0 + 10_000 + RX) });
  write({ kind: 'event', event: { deviceId: DEV, sessionId: SESSION, seq: seq++, t: T0 + 10_000, rx: T0 + 10_000 + RX, code: 'E_PV', prio: 'M', active: true, text: 'venous pressure high' } });
  write({ kind: 'alarm', transition: alarm('ack', T0 + 12_500 + RX, { state: 'ACKED', ackedBy: nurse.user, ackedAt: T0 + 12_500 + RX }, { actor: nurse }) });
  write({ kind: 'alarm', transition: alarm('shelve', T0 + 13_000 + RX, { state: 'SHELVED', shelvedUntil: T0 + 13_000 + RX + 600_000 }, { actor: nurse, reason: 'line repositioned' }) });
  write({ kind: 'alarm', transition: alarm('clear', T0 + 20_000 + RX, { state: 'NORMAL', active: false }) });
  samplesUntil(T0 + 30_000);
  write({ kind: 'alarm', transition: alarm('raise', T0 + 30_000 + RX, { raisedAt: T0 + 30_000 + RX }) });
  write({ kind: 'alarm', transition: alarm('escalate', T0 + 30_500 + RX, { priority: 'HIGH' }) });
  write({ kind: 'alarm', transition: alarm('clear', T0 + 31_000 + RX, { state: 'NORMAL', active: false }) });
  samplesUntil(T0 + 59_000);
  audit.append({ ...nurse, device: DEV, session: SESSION, action: 'command.requested', outcome: 'accepted', at: T0 + 59_000 + RX,
    detail: { cmdId: 'c-1', verb: 'PAUSE', args: [], reason: 'check the access line' } });
  audit.append({ ...nurse, device: DEV, session: SESSION, action: 'command.acknowledged', outcome: 'OK', at: T0 + 59_300 + RX,
    detail: { cmdId: 'c-1', verb: 'PAUSE' } });
  samplesUntil(T0 + 60_000);
  state('PAUSED', SESSION, T0 + 60_000);
  clock.now = T0 + 61_000;
  annotations.add(DEV, SESSION, T0 + 60_500, { kind: 'adverse_event', subtype: 'hypotension', text: 'MAP 55 mmHg' }, nurse);
  samplesUntil(T0 + 90_000);
  state('RUNNING', SESSION, T0 + 90_000);
  clock.now = T0 + 120_000;
  annotations.add(DEV, SESSION, T0 + 119_000, { kind: 'note', text: 'filter changed' }, nurse);
  samplesUntil(T0 + 180_000);
  state('ENDED', SESSION, T0 + 180_000);
  samplesUntil(T0 + 180_001);
  clock.now = T0 + 300_000;

  return {
    dir, db, bus, audit, annotations, recorder, consoleInfo, clock,
    record: () => findRecords(db, SESSION, DEV)[0],
    close() {
      recorder.stop();
      consoleInfo.stop();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
