import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { annotationRoutes } from '../../../src/api/annotationRoutes.js';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { EventBus } from '../../../src/bus.js';
import { AnnotationStore } from '../../../src/control/annotations.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import { SESSION_SCHEMA } from '../../../src/sessions/recorder.js';
import { helloFrame } from '../../helpers/hello.js';

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
let clock: number;
let db: Database.Database;
let audit: AuditLog;
let store: AnnotationStore;
let app: FastifyInstance;

beforeEach(async () => {
  clock = T0;
  db = new Database(':memory:');
  audit = new AuditLog({ db, now: () => clock });
  audit.start();
  store = new AnnotationStore({ db, audit, now: () => clock });
  store.start();
  const hub = new DeviceHub({ bus: new EventBus(), logger: silentLogger() });
  const link = { kind: 'mqtt' as const, source: 'mqtt://x', send: async () => {} };
  await hub.ingest('MSC-0001', [helloFrame('MSC-0001'), { type: 'S', seq: 1, t: T0, state: 'RUNNING', sessionId: 'S-1' }], link);
  app = Fastify();
  // Stand-in for the auth hook: the route reads the principal it sets.
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => { req.principal = { user: 'nurse1', role: 'operator' }; });
  await app.register(annotationRoutes, { annotations: store, devices: hub });
  await app.ready();
});
afterEach(async () => {
  await app.close();
  db.close();
});

const post = (payload: unknown, device = 'MSC-0001') =>
  app.inject({ method: 'POST', url: `/api/devices/${device}/annotations`, payload: payload as object });

describe('annotations', () => {
  it('stores an adverse event with the device session, as a row and an audit record', async () => {
    const r = await post({ t: T0 - 60_000, kind: 'adverse_event', subtype: 'hypotension', text: 'MAP 55 mmHg' });
    expect(r.statusCode).toBe(201);
    const a = r.json();
    expect(a).toMatchObject({ device: 'MSC-0001', session: 'S-1', t: T0 - 60_000, kind: 'adverse_event', subtype: 'hypotension', user: 'nurse1', role: 'operator' });
    const rec = audit.query()[0];
    expect(rec).toMatchObject({ id: a.auditId, action: 'annotation.add', user: 'nurse1', device: 'MSC-0001', session: 'S-1' });
    expect(rec.detail).toMatchObject({ kind: 'adverse_event', subtype: 'hypotension', text: 'MAP 55 mmHg', t: T0 - 60_000 });
  });

  it('requires a subtype for adverse events only, and refuses future times, naming the field', async () => {
    let r = await post({ kind: 'adverse_event', text: 'x' });
    expect(r.statusCode).toBe(400);
    expect(r.json().issues[0].path).toBe('subtype');
    r = await post({ kind: 'note', subtype: 'fever', text: 'x' });
    expect(r.statusCode).toBe(400);
    r = await post({ kind: 'note', text: '   ' });
    expect(r.json().issues[0].path).toBe('text');
    r = await post({ kind: 'note', text: 'x', t: T0 + 3_600_000 });
    expect(r.statusCode).toBe(400);
    expect(r.json().issues[0].path).toBe('t');
    r = await post({ kind: 'other', text: 'x' });
    expect(r.json().issues[0].path).toBe('kind');
    expect((await post({ kind: 'note', text: 'x' }, 'MSC-9999')).statusCode).toBe(404);
    expect(audit.query()).toEqual([]);
  });

  it('accepts ISO times with an offset and defaults t to now', async () => {
    const r = await post({ kind: 'intervention', text: 'heparin bolus', t: '2026-01-05T10:30:00+01:00' });
    expect(r.json().t).toBe(Date.UTC(2026, 0, 5, 9, 30));
    expect((await post({ kind: 'note', text: 'x' })).json().t).toBe(T0);
  });

  it('queries by device, session and time, and counts adverse events per session', async () => {
    for (const [dt, subtype] of [[1, 'fever'], [2, 'chills'], [3, 'fever']] as const) {
      await post({ t: T0 - 10_000 + dt, kind: 'adverse_event', subtype, text: subtype });
    }
    // S-2 ran on MSC-0001 before S-1 (a session record); the same id on MSC-0002 is another session.
    db.exec(SESSION_SCHEMA);
    const record = db.prepare(`INSERT INTO session_record (session, device, started_at, started_rx, state_ms, last_state, last_state_at)
      VALUES (?, ?, ?, ?, '{}', 'ENDED', ?)`);
    record.run('S-2', 'MSC-0001', T0 - 7200_000, T0 - 7200_000, T0 - 3600_000);
    record.run('S-3', 'MSC-0002', T0 - 7200_000, T0 - 7200_000, T0 - 3600_000);
    expect((await post({ t: T0 - 5000, kind: 'note', text: 'n', session: 'S-2' })).statusCode).toBe(201);
    const foreign = await post({ t: T0 - 5000, kind: 'adverse_event', subtype: 'fever', text: 'n', session: 'S-3' });
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json().issues[0].path).toBe('session');
    const r = await app.inject({ url: `/api/annotations?session=S-1&from=${T0 - 10_000 + 2}` });
    expect(r.json().annotations.map((a: { subtype: string }) => a.subtype)).toEqual(['chills', 'fever']);
    expect(r.json().adverseEvents).toEqual({ hypotension: 0, fever: 2, chills: 1, bleeding: 0, circuit_clotting: 0, other: 0 });
    expect(store.query({ session: 'S-2' })).toHaveLength(1);
    expect(store.query({ device: 'MSC-0002' })).toEqual([]);
    expect(store.adverseEventCounts('S-1', 'MSC-0002').fever).toBe(0);
    expect(store.adverseEventCounts('S-1', 'MSC-0001').fever).toBe(2);
    // Journals older than the session records: a state frame of the console carrying the id is enough.
    db.exec("CREATE TABLE state (device TEXT NOT NULL, session TEXT); INSERT INTO state VALUES ('MSC-0001', 'S-OLD')");
    expect(store.sessionRanOn('MSC-0001', 'S-OLD')).toBe(true);
    expect(store.sessionRanOn('MSC-0002', 'S-OLD')).toBe(false);
    expect(store.sessionRanOn('MSC-0001', 'S-3')).toBe(false);
    expect((await app.inject({ url: '/api/annotations?to=soon' })).statusCode).toBe(400);
  });

  it('writes both or neither: a failed audit append leaves no annotation row', async () => {
    db.exec("CREATE TRIGGER fail BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END;");
    const r = await post({ kind: 'note', text: 'x' });
    expect(r.statusCode).toBe(500);
    expect(store.query()).toEqual([]);
  });

  it('takes an optional reason into the audit detail, and requires one once the session\'s record is signed', async () => {
    const plain = await post({ kind: 'note', text: 'before signing' });
    expect(plain.statusCode).toBe(201);
    expect(audit.query().at(-1)!.detail).toEqual({ t: T0, kind: 'note', subtype: null, text: 'before signing' });
    const withReason = await post({ kind: 'note', text: 'late entry', reason: '  transcribed from the paper chart  ' });
    expect(withReason.statusCode).toBe(201);
    expect(audit.query().at(-1)!.detail).toMatchObject({ reason: 'transcribed from the paper chart' });
    expect((await post({ kind: 'note', text: 'x', reason: '' })).statusCode).toBe(400);
    expect((await post({ kind: 'note', text: 'x', reason: 'r'.repeat(501) })).json().issues[0].path).toBe('reason');
    expect((await post({ kind: 'note', text: 'x', reason: 'bad\u202Ereason' })).json().issues[0].path).toBe('reason');

    // Another console's signature of a session with the same id does not count; this console's does.
    audit.append({ user: 'nurse2', role: 'operator', device: 'MSC-0002', session: 'S-1', action: 'record.signed', outcome: 'signed', detail: {} });
    expect((await post({ kind: 'note', text: 'still unsigned here' })).statusCode).toBe(201);
    audit.append({ user: 'nurse1', role: 'operator', device: 'MSC-0001', session: 'S-1', action: 'record.signed', outcome: 'signed',
      detail: { sessionKey: 1, meaning: 'authored', recordSha256: 'a'.repeat(64), printedName: 'Ann Nurse' } });
    const count = store.query().length;
    const refused = await post({ kind: 'adverse_event', subtype: 'fever', text: 'fever noted after the end' });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ error: 'bad_request', issues: [{ path: 'reason', message: expect.stringMatching(/^required: the record of session S-1 on MSC-0001 is signed/) }] });
    expect(store.query()).toHaveLength(count);
    const amended = await post({ kind: 'adverse_event', subtype: 'fever', text: 'fever noted after the end', reason: 'reported by the ward after signing' });
    expect(amended.statusCode).toBe(201);
    expect(audit.query().at(-1)).toMatchObject({ action: 'annotation.add', detail: { reason: 'reported by the ward after signing' } });
  });

  it('refuses a reasonless annotation of a signed session in the store too (a signature landing after the route checked)', () => {
    audit.append({ user: 'nurse1', role: 'operator', device: 'MSC-0001', session: 'S-1', action: 'record.signed', outcome: 'signed', detail: {} });
    expect(() => store.add('MSC-0001', 'S-1', T0, { kind: 'note', text: 'x' }, { user: 'nurse1', role: 'operator' }))
      .toThrow(expect.objectContaining({ code: 'bad_request', issues: [expect.objectContaining({ path: 'reason' })] }));
    expect(store.add('MSC-0001', null, T0, { kind: 'note', text: 'no session' }, { user: 'nurse1', role: 'operator' }).session).toBeNull();
  });
});
