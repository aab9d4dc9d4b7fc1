/**
 * Trial session records, summaries and exports through the whole gateway: a simulated console on
 * a real mosquitto runs a session with an air-in-line stop, an acknowledged alarm, an annotation and
 * commands; the record, the summary, the participant code, the HTTP export (hash header and embedded
 * hash) and `msc-gateway export` (built CLI, journal read-only beside the running daemon) are checked.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { exportCommand } from '../../src/cli/export.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-S001';
const SESSION = 'S-SES-1';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let broker: MosquittoBroker;
let sim: Simulator;
let gw: TestGateway;
let dataDir: string;

async function call(method: string, path: string, token: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(gw.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
}
const json = (b: Buffer) => JSON.parse(b.toString('utf8'));

async function command(verb: string, args: unknown[] = []) {
  const r = await gw.post(`/api/devices/${DEV}/commands`, { verb, args });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.result, JSON.stringify(r.body)).toBe('OK');
  return r.body;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'msc-sessions-'));
  broker = await startMosquitto();
  // The gateway first: its persistent session then holds everything the console publishes.
  gw = await startTestGateway({ mqtt: { url: broker.url, clientId: `gw-ses-${process.pid}` } }, { dataDir });
  sim = await startSimulator({
    transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEV], rate: 10, autoRun: { sessionId: SESSION },
    phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 300 },
  });

  await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.state === 'RUNNING', { timeoutMs: 20_000, message: 'RUNNING' });
  sim.apply({ action: 'air_in_line', duration: '1s' } as never);
  // The console stops itself on air (ICD §1); the operator acknowledges, notes it, resumes, then ends.
  const alarm = await waitFor(async () => {
    const list = (await gw.get('/api/alarms?device=' + DEV)).body;
    return (list.alarms ?? list).find((a: any) => a.rule === 'AIR_IN_LINE' && a.device === DEV);
  }, { timeoutMs: 20_000, message: 'AIR_IN_LINE alarm' }).catch(async (err) => {
    throw new Error(`${err.message}: ${JSON.stringify((await gw.get('/api/devices/' + DEV)).body)}`);
  });
  await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.state === 'PAUSED', { timeoutMs: 10_000, message: 'PAUSED' });
  const ack = await gw.post(`/api/alarms/${encodeURIComponent(alarm.id)}/ack`, {});
  expect(ack.status, JSON.stringify(ack.body)).toBe(200);
  const note = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'adverse_event', subtype: 'hypotension', text: 'MAP 58 after air stop' });
  expect(note.status, JSON.stringify(note.body)).toBe(201);
  await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.values?.AIR?.v === 0, { timeoutMs: 10_000, message: 'air cleared' });
  // The console refuses RESUME until its own air condition has cleared (EV cleared): retry until OK.
  await waitFor(async () => (await gw.post(`/api/devices/${DEV}/commands`, { verb: 'RESUME', args: [] })).body.result === 'OK', {
    timeoutMs: 10_000, intervalMs: 200, message: 'RESUME accepted',
  });
  await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.state === 'RUNNING', { timeoutMs: 10_000, message: 'RUNNING again' });
  // A second of running after the resume, measured on the console's own clock (not a sleep).
  const resumedAt = (await gw.get(`/api/devices/${DEV}`)).body.stateSince as number;
  await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.values?.QB?.t > resumedAt + 1_000, { timeoutMs: 10_000 });
  await command('END');
  await waitFor(async () => (await gw.get(`/api/sessions?device=${DEV}`)).body.sessions?.[0]?.endedAt, {
    timeoutMs: 10_000, message: 'session record closed',
  });
}, 90_000);

afterAll(async () => {
  await sim?.stop();
  await gw?.stop();
  await broker?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('session records and summaries', () => {
  it('keeps one record from START to ENDED with time in each state', async () => {
    const r = await gw.get(`/api/sessions?device=${DEV}`, gw.tokens.viewer);
    expect(r.status).toBe(200);
    expect(r.body.sessions).toHaveLength(1);
    const s = r.body.sessions[0];
    expect(s).toMatchObject({ sessionId: SESSION, device: DEV, endReason: 'ENDED', running: false, participant: null });
    expect(s.endedAt).toBeGreaterThan(s.startedAt);
    expect(s.startedUtc).toBe(new Date(s.startedAt).toISOString());
    expect(s.durationMs).toBe(s.endedAt - s.startedAt);
    expect(s.stateMs.RUNNING).toBeGreaterThan(1_000);
    expect(s.stateMs.PAUSED).toBeGreaterThan(0);
    const later = await gw.get(`/api/sessions?device=${DEV}&from=${s.endedAt + 1}`, gw.tokens.viewer);
    expect(later.body.sessions).toHaveLength(0);
  });

  it('summarises alarms with time to acknowledge, annotations, commands, completeness and channels', async () => {
    const r = await gw.get(`/api/sessions/${SESSION}`, gw.tokens.viewer);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const s = r.body.summary;
    expect(s.durationMs).toBeGreaterThan(s.runningMs);
    expect(s.pausedMs).toBeGreaterThan(0);
    const air = s.alarms.byRule.find((x: any) => x.rule === 'AIR_IN_LINE');
    expect(air).toMatchObject({ priority: 'HIGH', raised: 1, acknowledged: 1 });
    expect(air.ackMs.max).toBeGreaterThanOrEqual(0);
    expect(s.alarms.byPriority.HIGH).toBeGreaterThanOrEqual(1);
    expect(s.annotations).toMatchObject({ total: 1, adverseEvents: 1 });
    expect(s.commands.items.map((c: any) => [c.verb, c.outcome])).toEqual(expect.arrayContaining([['RESUME', 'OK'], ['END', 'OK']]));
    expect(s.completeness.expected).toBeGreaterThan(20);
    expect(s.completeness.lost).toBe(0);
    expect(s.completeness.ratio).toBe(1);
    expect(s.channels.QB.samples).toBeGreaterThan(20);
    expect(s.channels.QB.min).toBeLessThanOrEqual(s.channels.QB.mean);
    expect(s.channels.QB.mean).toBeLessThanOrEqual(s.channels.QB.max);
    expect(s.channels.AIR.max).toBe(1);
    expect(s.temperature.trInBandPct).toBeGreaterThan(50);
    const same = await gw.get(`/api/sessions/${SESSION}/summary`, gw.tokens.viewer);
    expect(same.body.summary.alarms).toEqual(s.alarms);
    expect((await gw.get('/api/sessions/S-NONE', gw.tokens.viewer)).status).toBe(404);
  });

  it('sets a pseudonymous participant code: operator only, validated, audited', async () => {
    const put = (token: string, body: unknown) => call('PUT', `/api/sessions/${SESSION}/participant`, token, body);
    expect((await put(gw.tokens.viewer, { code: 'P-0007', reason: 'enrolment' })).status).toBe(403);
    const name = await put(gw.tokens.operator, { code: 'John Smith', reason: 'enrolment' });
    expect(name.status).toBe(400);
    expect((await put(gw.tokens.operator, { code: 'P-0007' })).status).toBe(400);
    const ok = await put(gw.tokens.operator, { code: 'P-0007', reason: 'enrolment' });
    expect(ok.status, ok.bytes.toString()).toBe(200);
    expect(json(ok.bytes).participant).toBe('P-0007');
    expect((await gw.get(`/api/sessions/${SESSION}`)).body.summary.participant).toBe('P-0007');
    const audit = (await gw.get(`/api/audit?device=${DEV}`, gw.tokens.engineer)).body;
    const rec = (audit.records ?? audit).find((a: any) => a.action === 'session.participant');
    expect(rec).toMatchObject({ user: 'test-operator', session: SESSION, outcome: 'done' });
    expect(rec.detail).toMatchObject({ code: 'P-0007', previous: null, reason: 'enrolment' });
  });
});

describe('session export', () => {
  it('JSON: the header hashes the body, the embedded sha256 the body without it; every table is there', async () => {
    expect((await call('GET', `/api/sessions/${SESSION}/export`, gw.tokens.operator)).status).toBe(403);
    const r = await call('GET', `/api/sessions/${SESSION}/export?format=json`, gw.tokens.engineer);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-content-sha256')).toBe(sha256(r.bytes));
    const text = r.bytes.toString('utf8');
    const doc = JSON.parse(text);
    expect(text.startsWith(`{"sha256":"${doc.sha256}",`)).toBe(true);
    expect(sha256('{' + r.bytes.subarray(77).toString('utf8'))).toBe(doc.sha256);
    // The session's samples are those from its first state frame to ENDED, on the console's clock.
    const journalRows = (gw.gateway.journal!.database()!.prepare('SELECT count(*) AS n FROM telemetry WHERE device = ? AND t >= ? AND t <= ?')
      .get(DEV, doc.session.startedAt, doc.session.endedAt) as { n: number }).n;
    expect(journalRows).toBeGreaterThan(10);
    expect(doc.telemetry.samples).toHaveLength(journalRows);
    expect(doc.telemetry.samples.every((x: any) => x.t >= doc.session.startedAt && x.t <= doc.session.endedAt)).toBe(true);
    expect(doc.states.map((s: any) => s.state)).toEqual(expect.arrayContaining(['RUNNING', 'PAUSED', 'ENDED']));
    expect(doc.alarms.some((a: any) => a.kind === 'ack' && a.alarm.rule === 'AIR_IN_LINE')).toBe(true);
    expect(doc.annotations[0]).toMatchObject({ kind: 'adverse_event', subtype: 'hypotension' });
    expect(doc.audit.map((a: any) => a.action)).toEqual(expect.arrayContaining(['command.requested', 'annotation.add', 'session.participant']));
    expect(doc.summary.sessionId).toBe(SESSION);
  });

  it('CSV aggregated with every: sections for each table, hash header', async () => {
    const r = await call('GET', `/api/sessions/${SESSION}/export?format=csv&every=1s`, gw.tokens.engineer);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(r.headers.get('x-content-sha256')).toBe(sha256(r.bytes));
    const text = r.bytes.toString('utf8');
    const sections = text.split('\r\n\r\n');
    expect(sections.map((s) => s.split('\r\n')[0])).toEqual(
      ['# session', '# telemetry (mean per 1000 ms)', '# states', '# events', '# alarms', '# annotations', '# audit']);
    expect(sections[0].split('\r\n')[2]).toMatch(new RegExp(`^${SESSION},${DEV},P-0007,`));
    const telemetry = sections[1].split('\r\n');
    expect(telemetry[1]).toMatch(/^time_utc,t_ms,seq,.*QB/);
    const seconds = telemetry.slice(2).map((l) => Number(l.split(',')[1]));
    expect(seconds.length).toBeGreaterThan(2);
    expect(seconds.every((t) => t % 1000 === 0)).toBe(true);
    expect((await call('GET', `/api/sessions/${SESSION}/export?format=xml`, gw.tokens.engineer)).status).toBe(400);
  });

  it('msc-gateway export writes the same document from the journal and prints its sha256', async () => {
    const out = join(dataDir, 'export-cli.json');
    const r = await runCli(['export', SESSION, '--out', out, '--data-dir', dataDir], {}, 30_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no progress bar when stderr is not a terminal
    const bytes = readFileSync(out);
    expect(r.stdout).toBe(`${sha256(bytes)}  ${out}\n`);
    const doc = JSON.parse(bytes.toString('utf8'));
    expect(sha256('{' + bytes.subarray(77).toString('utf8'))).toBe(doc.sha256);
    expect(doc.session).toMatchObject({ sessionId: SESSION, participant: 'P-0007' });
    expect(doc.telemetry.samples.length).toBeGreaterThan(20);
    const missing = await runCli(['export', 'S-NONE', '--out', join(dataDir, 'x.json'), '--data-dir', dataDir]);
    expect(missing.code).toBe(1);
    expect((await runCli(['export', SESSION, '--data-dir', dataDir])).code).toBe(2);
  });

  it('draws a progress bar on stderr when it is a terminal, and writes CSV for a .csv file', async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let stdout = '';
    let stderr = '';
    out.on('data', (d) => (stdout += d));
    err.on('data', (d) => (stderr += d));
    const file = join(dataDir, 'export-tty.csv');
    const code = await exportCommand([SESSION, '--out', file, '--data-dir', dataDir], {}, { out, err, isTTY: true });
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/\r\[#{30}\] 100%  \d+\/\d+ samples\n$/);
    const bytes = readFileSync(file);
    expect(stdout).toBe(`${sha256(bytes)}  ${file}\n`);
    expect(bytes.toString('utf8').startsWith('# session\r\n')).toBe(true);
  });
});
