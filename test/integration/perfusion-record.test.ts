/**
 * The perfusion record end to end: a simulated console (running faster than real time) on a real mosquitto runs a
 * session with an air-in-line stop and its acknowledged alarm, a setpoint command with a reason, a note and a
 * suspected adverse event, a participant code, and ends. Then:
 * - the record's PDF is fetched over HTTP and read back with `pdftotext` (poppler-utils): header fields, every
 *   alarm raised, the command, the annotations and the record hash are in it, and the hash is the one of the JSON
 *   record (recomputed here from its canonical JSON) and of the `x-record-sha256` header;
 * - a signing password is set with the built CLI (`msc-gateway users set-password`, password on stdin); a wrong
 *   password is refused and counted, someone else's name is refused, the right one signs; the PDF then carries the
 *   manifest; a late annotation needs a reason, is shown as an amendment, and the signature is marked as changed
 *   since signed; `msc-gateway audit verify` passes.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { canonicalJson } from '../../src/audit/canonical.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { CLI, runCli } from '../helpers/gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-R001';
const SESSION = 'S-REC-1';
const SIGNER = 'test-operator';
const PASSWORD = 'correct horse battery staple';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let broker: MosquittoBroker;
let sim: Simulator;
let gw: TestGateway;
let dataDir: string;
let work: string;

async function call(method: string, path: string, token: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(gw.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
}
const json = (b: Buffer) => JSON.parse(b.toString('utf8'));

/** The built CLI with `input` on stdin (the password never goes into argv). */
function cliWithInput(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`msc-gateway ${args.join(' ')} did not exit`)); }, 30_000);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    p.stdin.end(input);
  });
}

/** The PDF's text as pdftotext reads it (one string, runs of spaces folded). */
async function pdfText(): Promise<{ text: string; sha256Header: string | null; pages: number }> {
  const r = await call('GET', `/api/sessions/${SESSION}/record.pdf`, gw.tokens.viewer);
  expect(r.status, r.bytes.toString('utf8', 0, 300)).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^application\/pdf/);
  expect(r.headers.get('content-disposition')).toContain(`${DEV}_${SESSION}_record.pdf`);
  expect(r.bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  const file = join(work, `record-${Date.now()}.pdf`);
  writeFileSync(file, r.bytes);
  const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
  const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
  const pages = Number(/^Pages:\s+(\d+)/m.exec(info)?.[1]);
  return { text: text.replace(/[ \t]+/g, ' '), sha256Header: r.headers.get('x-record-sha256'), pages };
}

async function recordView() {
  const r = await call('GET', `/api/sessions/${SESSION}/record`, gw.tokens.viewer);
  expect(r.status, r.bytes.toString()).toBe(200);
  return json(r.bytes);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'msc-record-work-'));
  dataDir = mkdtempSync(join(tmpdir(), 'msc-record-'));
  broker = await startMosquitto();
  gw = await startTestGateway({ mqtt: { url: broker.url, clientId: `gw-rec-${process.pid}` } }, { dataDir });
  sim = await startSimulator({
    transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEV], rate: 10, speed: 4, autoRun: { sessionId: SESSION },
    phases: { selftestMs: 400, primingMs: 800, rinsebackMs: 800 },
  });
  const device = async () => (await gw.get(`/api/devices/${DEV}`)).body;
  await waitFor(async () => (await device()).state === 'RUNNING', { timeoutMs: 30_000, message: 'RUNNING' });

  const set = await gw.post(`/api/devices/${DEV}/commands`, { verb: 'SET', args: ['QB', 160], reason: 'raise blood flow for the reactor' });
  expect(set.status, JSON.stringify(set.body)).toBe(200);
  expect(set.body.result).toBe('OK');
  const note = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'note', text: 'Reactor primed, circuit stable' });
  expect(note.status, JSON.stringify(note.body)).toBe(201);

  sim.apply({ action: 'air_in_line', duration: '2s' } as never);
  const alarm = await waitFor(async () => {
    const list = (await gw.get('/api/alarms?device=' + DEV)).body;
    return (list.alarms ?? list).find((a: any) => a.rule === 'AIR_IN_LINE' && a.device === DEV);
  }, { timeoutMs: 20_000, message: 'AIR_IN_LINE alarm' });
  const ack = await gw.post(`/api/alarms/${encodeURIComponent(alarm.id)}/ack`, {});
  expect(ack.status, JSON.stringify(ack.body)).toBe(200);
  const ae = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'adverse_event', subtype: 'hypotension', text: 'MAP 58 mmHg after the air stop' });
  expect(ae.status, JSON.stringify(ae.body)).toBe(201);
  await waitFor(async () => (await device()).values?.AIR?.v === 0, { timeoutMs: 20_000, message: 'air cleared' });
  await waitFor(async () => (await gw.post(`/api/devices/${DEV}/commands`, { verb: 'RESUME', args: [] })).body.result === 'OK', {
    timeoutMs: 20_000, intervalMs: 200, message: 'RESUME accepted',
  });
  const resumedAt = (await device()).stateSince as number;
  await waitFor(async () => (await device()).values?.QB?.t > resumedAt + 2_000, { timeoutMs: 20_000, message: 'running again' });
  const end = await gw.post(`/api/devices/${DEV}/commands`, { verb: 'END', args: [] });
  expect(end.body.result, JSON.stringify(end.body)).toBe('OK');
  await waitFor(async () => (await gw.get(`/api/sessions?device=${DEV}`)).body.sessions?.[0]?.endedAt, { timeoutMs: 20_000, message: 'session ended' });
  // The participant code is set with PUT (src/api/sessionRoutes.ts), as an operator.
  const code = await call('PUT', `/api/sessions/${SESSION}/participant`, gw.tokens.operator, { code: 'P-0042', reason: 'enrolment log' });
  expect(code.status, code.bytes.toString()).toBe(200);
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  await gw?.stop();
  await broker?.stop();
  for (const d of [dataDir, work]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('the perfusion record of a session that just ended', () => {
  it('is a JSON record whose hash is the SHA-256 of its canonical JSON', async () => {
    const v = await recordView();
    expect(v.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sha256(canonicalJson(v.record))).toBe(v.sha256);
    expect(v.record.console).toMatchObject({ device: DEV, model: 'MSC-ALS 2', fw: '3.4.1', serialNo: `SN-${DEV}` });
    expect(v.record.session).toMatchObject({ sessionId: SESSION, participant: 'P-0042', running: false });
    expect(v.record.alarms.map((a: any) => a.rule)).toContain('AIR_IN_LINE');
    const air = v.record.alarms.find((a: any) => a.rule === 'AIR_IN_LINE');
    expect(air.ackedBy).toBe('test-operator');
    expect(air.timeToAckMs).toBeGreaterThanOrEqual(0);
    expect(v.record.commands.find((c: any) => c.verb === 'SET')).toMatchObject({ user: 'test-operator', reason: 'raise blood flow for the reactor', outcome: 'OK' });
    expect(v.record.annotations.map((a: any) => a.kind).sort()).toEqual(['adverse_event', 'note']);
    expect(v.record.trends.t.length).toBeGreaterThan(3);
    expect(v.record.trends.series.QB.mean.some((x: number | null) => x !== null)).toBe(true);
    expect(v.signatures).toEqual([]);
    // Nothing changes between two reads of an ended session: the hash is of the record, not of the moment.
    expect((await recordView()).sha256).toBe(v.sha256);
  });

  it('is a PDF that pdftotext reads back with the header, every alarm, the command, the annotations and the hash', async () => {
    const v = await recordView();
    const { text, sha256Header, pages } = await pdfText();
    expect(sha256Header).toBe(v.sha256);
    for (const s of [DEV, SESSION, 'P-0042', 'MSC-ALS 2', '3.4.1', `SN-${DEV}`, 'Not signed']) expect(text, s).toContain(s);
    for (const a of v.record.alarms) expect(text, a.rule).toContain(a.rule);
    expect(text).toContain('raise blood flow for the reactor');
    expect(text).toContain('SET');
    expect(text).toContain('Reactor primed, circuit stable');
    expect(text).toContain('MAP 58 mmHg after the air stop');
    // The hash on one line, whole, and the same as the JSON record's.
    expect(text).toContain(v.sha256);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(text).toContain(`page 1 of ${pages}`);
    expect(text).toContain(`page ${pages} of ${pages}`);
  });

  it('is signed with the signing password only, by the token\'s own user; an amendment marks it changed since signed', async () => {
    const set = await cliWithInput(['users', 'set-password', SIGNER, '--printed-name', 'Olga Operator', '--data-dir', dataDir], `${PASSWORD}\n`);
    expect(set.code, set.stderr + set.stdout).toBe(0);
    expect(set.stdout + set.stderr).not.toContain(PASSWORD);
    const before = await recordView();

    // The daemon notices the new password without a restart.
    const wrong = await waitFor(async () => {
      const r = await call('POST', `/api/sessions/${SESSION}/signatures`, gw.tokens.operator, { meaning: 'reviewed', password: 'not the password' });
      return r.status === 403 && json(r.bytes).error === 'signature_refused' ? r : null;
    }, { timeoutMs: 10_000, message: 'wrong password refused as such' });
    expect(json(wrong.bytes).error).toBe('signature_refused');
    const metrics = await (await fetch(gw.url + '/metrics', { headers: { authorization: `Bearer ${gw.tokens.admin}` } })).text();
    expect(metrics).toMatch(/msc_signature_refusals_total\{why="wrong_password"\} [1-9]/);

    const otherName = await call('POST', `/api/sessions/${SESSION}/signatures`, gw.tokens.operator, { meaning: 'reviewed', password: PASSWORD, user: 'test-admin' });
    expect(otherName.status).toBe(403);

    const ok = await call('POST', `/api/sessions/${SESSION}/signatures`, gw.tokens.operator, { meaning: 'reviewed', password: PASSWORD, recordSha256: before.sha256 });
    expect(ok.status, ok.bytes.toString()).toBe(201);
    const signed = json(ok.bytes);
    expect(signed.signature).toMatchObject({ user: SIGNER, printedName: 'Olga Operator', role: 'operator', meaning: 'reviewed', recordSha256: before.sha256, changedSince: false });
    expect(signed.view.sha256).toBe(before.sha256);

    let pdf = await pdfText();
    expect(pdf.text).toContain('Olga Operator');
    expect(pdf.text).toContain('reviewed');
    expect(pdf.text).not.toContain('CHANGED SINCE SIGNED');

    // After a signature, a late annotation is an amendment and needs a reason.
    const noReason = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'note', t: before.record.trends.t[1], text: 'late note', session: SESSION } as never);
    expect(noReason.status, JSON.stringify(noReason.body)).toBe(400);
    const late = await gw.post(`/api/devices/${DEV}/annotations`, {
      kind: 'note', t: before.record.trends.t[1], text: 'Late entry: heparin bolus given at start', session: SESSION, reason: 'entered from the paper chart',
    } as never);
    expect(late.status, JSON.stringify(late.body)).toBe(201);
    const after = await recordView();
    expect(after.sha256).not.toBe(before.sha256);
    expect(after.changedSinceSigned).toBe(true);
    expect(after.signatures[0]).toMatchObject({ recordSha256: before.sha256, changedSince: true });
    expect(after.amendments.map((a: any) => a.reason)).toContain('entered from the paper chart');
    pdf = await pdfText();
    expect(pdf.text).toContain('CHANGED SINCE SIGNED');
    expect(pdf.text).toContain('entered from the paper chart');
    expect(pdf.text).toContain(after.sha256);

    const verify = await runCli(['audit', 'verify', '--data-dir', dataDir]);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);
  });
});
