/**
 * Electronic signatures through the whole gateway: a console on a real mosquitto runs a session; signing is
 * refused while it runs; `msc-gateway users set-password` (the CLI's code, beside the running daemon) sets the
 * operator's signing password, which the daemon takes without a restart; the right password signs, a wrong one is
 * refused and counted, five in a row lock signing (423, Retry-After), someone else's name is refused, a record
 * changed since it was read is refused, an annotation after signing needs a reason, no password reaches the log,
 * and `msc-gateway audit verify` passes, then fails naming the `record.signed` row once its detail is edited.
 *
 * The record signed is the gateway's own (RecordService over the journal), as in production.
 */
import Database from 'better-sqlite3';
import { PassThrough, Writable } from 'node:stream';
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../src/cli/audit.js';
import { usersCommand } from '../../src/cli/users.js';
import { createLogger } from '../../src/log.js';
import { encodeMqttPayload } from '../../src/protocol/mqtt.js';
import type { RecordSignature } from '../../src/record/types.js';
import type { SessionRecord } from '../../src/sessions/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-SIG-1';
const SESSION = 'S-SIG-1';
const OPERATOR_PW = 'operator pass phrase 1';
const ENGINEER_PW = 'engineer pass phrase 2';
const WRONG = 'not my pass phrase';

let broker: MosquittoBroker;
let gw: TestGateway;
let device: MqttClient;
let seq = 0;
let logText = '';

/** The gateway's own perfusion records (the hash a signature binds). */
const records = { current: (rec: SessionRecord) => gw.gateway.recordService!.current(rec) };

async function state(s: 'RUNNING' | 'ENDED' | 'IDLE', sessionId: string | null): Promise<void> {
  await device.publishAsync(`msc/v1/${DEV}/state`, encodeMqttPayload({ type: 'S', seq: ++seq, t: Date.now(), state: s, sessionId }), { qos: 1 });
  await waitFor(async () => {
    const d = (await gw.get(`/api/devices/${DEV}`)).body;
    return d.state === s && d.sessionId === sessionId;
  }, { message: `${DEV} ${s} ${sessionId}` });
}

const sign = (body: Record<string, unknown>, token = gw.tokens.operator) => fetch(`${gw.url}/api/sessions/${SESSION}/signatures`, {
  method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
}).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() as any }));

const metric = async (name: string, labels: string) => {
  const text = (await gw.get('/metrics')).body as string;
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

function sink(): { stream: Writable; text: () => string } {
  let buf = '';
  return { stream: new Writable({ write(c, _e, cb) { buf += String(c); cb(); } }), text: () => buf };
}

async function setPassword(name: string, printedName: string, password: string): Promise<void> {
  const err = sink();
  const input = new PassThrough();
  const done = usersCommand(['set-password', name, '--printed-name', printedName, '--data-dir', gw.dataDir], {}, { out: sink().stream, err: err.stream, input });
  input.end(`${password}\n`);
  expect(await done, err.text()).toBe(0);
}

async function verify(): Promise<{ code: number; out: string }> {
  const out = sink();
  const err = sink();
  const code = await auditCommand(['verify', '--data-dir', gw.dataDir], {}, { out: out.stream, err: err.stream });
  return { code, out: out.text() + err.text() };
}

beforeAll(async () => {
  broker = await startMosquitto();
  const logStream = new Writable({ write(c, _e, cb) { logText += String(c); cb(); } });
  gw = await startTestGateway({ mqtt: { url: broker.url, clientId: `gw-sig-${process.pid}` }, auth: { rateLimit: { burst: 1000, perSecond: 1000 } } },
    { logger: createLogger('trace', logStream) });
  device = await new Promise<MqttClient>((ok, fail) => {
    const m = connect(broker.url, { clientId: `console-${DEV}-${process.pid}`, protocolVersion: 5 });
    m.once('connect', () => ok(m));
    m.once('error', fail);
  });
  await device.publishAsync(`msc/v1/${DEV}/hello`, encodeMqttPayload({ type: 'HELLO', deviceId: DEV, model: 'MSC-R1', fw: '1.0', icd: 1, serialNo: 'SN-1' }), { qos: 1, retain: true });
  await state('RUNNING', SESSION);
  await waitFor(async () => (await gw.get('/api/sessions')).body.sessions?.length === 1, { message: 'session record' });
}, 60_000);

afterAll(async () => {
  await device?.endAsync();
  await gw?.stop(); // a second stop of the gateway is a no-op; this one removes the data directory
  await broker?.stop();
});

describe('signing a session record', () => {
  it('refuses to sign while the session runs, and a user without a signing password', async () => {
    await setPassword('test-operator', 'Olga Operator', OPERATOR_PW);
    await waitFor(() => gw.gateway.signingPasswords.get('test-operator') !== null, { message: 'daemon sees the CLI\'s password' });
    const r = await sign({ meaning: 'authored', password: OPERATOR_PW });
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(r.body.error).toBe('session_running');

    await state('ENDED', SESSION);
    await state('IDLE', null);
    await waitFor(async () => (await gw.get(`/api/sessions/${SESSION}`)).body.record?.endedAt, { message: 'session ended' });
    const none = await sign({ meaning: 'reviewed', password: OPERATOR_PW }, gw.tokens.admin);
    expect(none.status).toBe(403);
    expect(none.body).toMatchObject({ error: 'no_signing_password', message: expect.stringContaining('msc-gateway users set-password test-admin') });
  });

  it('signs with the right password: 201 with the signature and the view listing it', async () => {
    const { sha256: hash } = await records.current((await gw.get(`/api/sessions/${SESSION}`)).body.record);
    const r = await sign({ meaning: 'authored', password: OPERATOR_PW, user: 'test-operator', recordSha256: hash });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.signature).toMatchObject({ user: 'test-operator', printedName: 'Olga Operator', role: 'operator', meaning: 'authored', recordSha256: hash, changedSince: false });
    expect(r.body.view.signatures).toEqual([r.body.signature]);
    const rec = gw.gateway.audit.query().find((a) => a.id === r.body.signature.auditId)!;
    expect(rec).toMatchObject({
      action: 'record.signed', outcome: 'signed', user: 'test-operator', role: 'operator', device: DEV, session: SESSION,
      detail: { meaning: 'authored', recordSha256: hash, printedName: 'Olga Operator', sessionKey: expect.any(Number) },
    });
    expect(await metric('msc_signatures_total', 'meaning="authored"')).toBe(1);
  });

  it('refuses a wrong password (counted, audited), another user\'s name, a viewer and a bad body', async () => {
    const before = await metric('msc_signature_refusals_total', 'why="wrong_password"');
    const wrong = await sign({ meaning: 'reviewed', password: WRONG });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toMatchObject({ error: 'signature_refused', message: expect.stringContaining('4 more wrong') });
    expect(await metric('msc_signature_refusals_total', 'why="wrong_password"')).toBe(before + 1);
    expect(gw.gateway.audit.query().at(-1)).toMatchObject({ action: 'record.sign', outcome: 'refused', user: 'test-operator', detail: { why: 'wrong_password', meaning: 'reviewed' } });

    const other = await sign({ meaning: 'reviewed', password: OPERATOR_PW, user: 'test-engineer' });
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({ error: 'forbidden', message: expect.stringContaining('this token is test-operator\'s') });
    expect(gw.gateway.audit.query().at(-1)).toMatchObject({ action: 'record.sign', outcome: 'refused', user: 'test-operator', detail: { why: 'user_mismatch', claimedUser: 'test-engineer' } });
    expect((await sign({ meaning: 'reviewed', password: OPERATOR_PW }, gw.tokens.viewer)).status).toBe(403);
    const bad = await sign({ meaning: 'witnessed', password: OPERATOR_PW, extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i: any) => i.path).sort()).toEqual(['extra', 'meaning']);
    expect(JSON.stringify(bad.body)).not.toContain(OPERATOR_PW);
    expect((await sign({ meaning: 'reviewed', password: OPERATOR_PW, device: 'MSC-NONE' })).status).toBe(404);
  });

  it('refuses a record changed since it was read; an annotation of the signed session needs a reason', async () => {
    const rec = (await gw.get(`/api/sessions/${SESSION}`)).body.record;
    const seen = (await records.current(rec)).sha256;
    const noReason = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'note', text: 'late entry', session: SESSION });
    expect(noReason.status).toBe(400);
    expect(noReason.body.issues).toEqual([{ path: 'reason', message: expect.stringMatching(/^required: the record of session S-SIG-1/) }]);
    const late = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'note', text: 'late entry', session: SESSION, reason: 'transcribed from the paper chart' });
    expect(late.status, JSON.stringify(late.body)).toBe(201);
    const changed = await sign({ meaning: 'reviewed', password: OPERATOR_PW, recordSha256: seen });
    expect(changed.status).toBe(409);
    expect(changed.body.error).toBe('record_changed');
    const again = await sign({ meaning: 'reviewed', password: OPERATOR_PW, recordSha256: (await records.current(rec)).sha256 });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    // The first signature no longer matches the record: the view says so.
    expect(again.body.view.changedSinceSigned).toBe(true);
    expect(again.body.view.signatures.map((s: RecordSignature) => [s.meaning, s.changedSince])).toEqual([['authored', true], ['reviewed', false]]);
  });

  it('locks signing after five wrong passwords in a row: 423 with Retry-After, even for the right one', async () => {
    await setPassword('test-engineer', 'Emil Engineer', ENGINEER_PW);
    await waitFor(() => gw.gateway.signingPasswords.get('test-engineer') !== null, { message: 'engineer password seen' });
    for (let i = 1; i <= 4; i++) {
      expect((await sign({ meaning: 'approved', password: `${WRONG} ${i}` }, gw.tokens.engineer)).status).toBe(403);
    }
    const fifth = await sign({ meaning: 'approved', password: `${WRONG} 5` }, gw.tokens.engineer);
    expect(fifth.status).toBe(423);
    expect(fifth.body.error).toBe('signing_locked');
    expect(Number(fifth.headers.get('retry-after'))).toBe(900);
    const right = await sign({ meaning: 'approved', password: ENGINEER_PW }, gw.tokens.engineer);
    expect(right.status).toBe(423);
    expect(right.body).toMatchObject({ error: 'signing_locked', message: expect.stringContaining('test-engineer') });
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(890);
    expect(Number(right.headers.get('retry-after'))).toBeLessThanOrEqual(900);
    const lockout = gw.gateway.audit.query().filter((r) => r.action === 'record.sign.lockout');
    expect(lockout).toEqual([expect.objectContaining({ user: 'test-engineer', outcome: 'locked', detail: { failures: 5, until: expect.any(Number) } })]);
    expect(await metric('msc_signature_refusals_total', 'why="locked"')).toBe(1);
    // The operator is not locked by the engineer's failures.
    expect((await sign({ meaning: 'approved', password: OPERATOR_PW })).status).toBe(201);
  });

  it('never logs a password', () => {
    expect(logText.length).toBeGreaterThan(0);
    for (const pw of [OPERATOR_PW, ENGINEER_PW, WRONG]) expect(logText).not.toContain(pw);
  });

  it('audit verify passes after signing and fails naming the record.signed row once its detail is edited', async () => {
    const ok = await verify();
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/audit trail intact/);
    const signed = gw.gateway.audit.query().find((r) => r.action === 'record.signed')!;
    await gw.gateway.stop(); // the data directory stays until afterAll
    const db = new Database(`${gw.dataDir}/journal.sqlite`);
    try {
      // As an attacker with file access would: the append-only triggers out of the way, then a forged meaning.
      db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
      const detail = db.prepare('SELECT detail FROM audit WHERE id = ?').pluck().get(signed.id) as string;
      expect(detail).toContain('"meaning":"authored"');
      db.prepare('UPDATE audit SET detail = ? WHERE id = ?').run(detail.replace('"meaning":"authored"', '"meaning":"approved"'), signed.id);
    } finally {
      db.close();
    }
    const broken = await verify();
    expect(broken.code).toBe(1);
    expect(broken.out).toContain(`BROKEN at record #${signed.id}`);
    expect(broken.out).toMatch(/altered/);
  });
});
