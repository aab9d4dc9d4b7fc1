/**
 * Annotations are bound to their console, through the real server: two consoles on a real mosquitto each run a
 * session; an operator may annotate a console's current or past sessions only, never another console's session
 * or one that never ran (it would count as that session's adverse event in one place and not in its summary).
 * Event times are real epoch milliseconds, and control or bidi characters in the text are refused. Every
 * refusal is a 400 naming the field, counted on /metrics, and stores nothing.
 */
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMqttPayload } from '../../src/protocol/mqtt.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const A = 'MSC-ANN-A';
const B = 'MSC-ANN-B';
let broker: MosquittoBroker;
let gw: TestGateway;
let consoleA: MqttClient;
let consoleB: MqttClient;
const seq: Record<string, number> = { [A]: 0, [B]: 0 };

async function console_(id: string): Promise<MqttClient> {
  const c = await new Promise<MqttClient>((ok, fail) => {
    const m = connect(broker.url, { clientId: `console-${id}-${process.pid}`, protocolVersion: 5 });
    m.once('connect', () => ok(m));
    m.once('error', fail);
  });
  await c.publishAsync(`msc/v1/${id}/hello`, encodeMqttPayload({ type: 'HELLO', deviceId: id, model: 'MSC-R1', fw: '1.0', icd: 1, serialNo: `SN-${id}` }), { qos: 1, retain: true });
  return c;
}

async function state(c: MqttClient, id: string, s: 'RUNNING' | 'ENDED' | 'IDLE', sessionId: string | null): Promise<void> {
  await c.publishAsync(`msc/v1/${id}/state`, encodeMqttPayload({ type: 'S', seq: ++seq[id], t: Date.now(), state: s, sessionId }), { qos: 1 });
  await waitFor(async () => {
    const d = (await gw.get(`/api/devices/${id}`)).body;
    return d.state === s && d.sessionId === sessionId;
  }, { message: `${id} ${s} ${sessionId}` });
}

const annotate = (device: string, body: Record<string, unknown>) => gw.post(`/api/devices/${device}/annotations`, body);
const stored = async () => (await gw.get('/api/annotations?limit=5000')).body.annotations as Array<Record<string, unknown>>;
const refusals = async (reason: string) => {
  const text = (await gw.get('/metrics', '')).body as string;
  const m = new RegExp(`^msc_annotations_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

beforeAll(async () => {
  broker = await startMosquitto();
  // Many refusals in a row from one operator: the write rate limit is not what this test is about.
  gw = await startTestGateway({ mqtt: { url: broker.url, clientId: `gw-ann-${process.pid}` }, auth: { rateLimit: { burst: 1000, perSecond: 1000 } } });
  consoleA = await console_(A);
  consoleB = await console_(B);
  // A ran S-A-OLD to its end and now runs S-A-NOW; B runs S-B-1.
  await state(consoleA, A, 'RUNNING', 'S-A-OLD');
  await state(consoleA, A, 'ENDED', 'S-A-OLD');
  await state(consoleA, A, 'IDLE', null);
  await state(consoleA, A, 'RUNNING', 'S-A-NOW');
  await state(consoleB, B, 'RUNNING', 'S-B-1');
  await waitFor(async () => (await gw.get('/api/sessions')).body.sessions?.length === 3, { message: 'three session records' });
}, 60_000);

afterAll(async () => {
  await consoleA?.endAsync();
  await consoleB?.endAsync();
  await gw?.stop();
  await broker?.stop();
});

describe('annotations bound to their console', () => {
  it("refuses another console's session and a session that never ran, and counts them", async () => {
    const before = await refusals('session');
    for (const session of ['S-B-1', 'S-NEVER']) {
      const r = await annotate(A, { kind: 'adverse_event', subtype: 'bleeding', text: 'oozing at the access site', session });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.issues).toEqual([{ path: 'session', message: expect.stringContaining(`no session ${session} on ${A}`) }]);
      expect(r.body.message).toMatch(/^session: /);
    }
    expect(await refusals('session')).toBe(before + 2);
    expect(await stored()).toEqual([]);
    // B's session stays free of A's notes, in the list, its counts and its summary alike.
    const list = (await gw.get(`/api/annotations?session=S-B-1`, gw.tokens.viewer)).body;
    expect(list.annotations).toEqual([]);
    expect(list.adverseEvents.bleeding).toBe(0);
    expect((await gw.get('/api/sessions/S-B-1', gw.tokens.viewer)).body.summary.annotations.adverseEvents).toBe(0);
    const audit = (await gw.get('/api/audit', gw.tokens.engineer)).body;
    expect((audit.records ?? audit).filter((a: { action: string }) => a.action === 'annotation.add')).toEqual([]);
  });

  it("accepts the console's current session, its own past session, and the default", async () => {
    const now = await annotate(A, { kind: 'adverse_event', subtype: 'fever', text: '38.4 °C', session: 'S-A-NOW' });
    expect(now.status, JSON.stringify(now.body)).toBe(201);
    const old = await annotate(A, { kind: 'note', text: 'noted after the end of the session', session: 'S-A-OLD' });
    expect(old.status, JSON.stringify(old.body)).toBe(201);
    expect(old.body).toMatchObject({ device: A, session: 'S-A-OLD' });
    const byDefault = await annotate(B, { kind: 'adverse_event', subtype: 'chills', text: 'shivering' });
    expect(byDefault.body).toMatchObject({ device: B, session: 'S-B-1' });
    const summary = (await gw.get('/api/sessions/S-A-NOW', gw.tokens.viewer)).body.summary;
    expect(summary.annotations).toMatchObject({ total: 1, adverseEvents: 1 });
    const counts = (await gw.get(`/api/annotations?session=S-A-NOW&device=${A}`, gw.tokens.viewer)).body.adverseEvents;
    expect(counts).toMatchObject({ fever: 1, chills: 0 });
  });

  it('refuses times that are not epoch milliseconds of this era, naming t', async () => {
    const before = await refusals('time');
    const n = (await stored()).length;
    const bad: unknown[] = [0, 1, Math.floor(Date.now() / 1000), Date.UTC(1999, 11, 31, 23, 59), '1999-12-31T23:59:59Z',
      Date.now() + 2 * 86_400_000, 8.64e15, '9999-12-31T23:59:59Z'];
    for (const t of bad) {
      const r = await annotate(A, { kind: 'note', text: 'x', t });
      expect(r.status, `${t}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.issues[0].path, String(t)).toBe('t');
    }
    for (const t of [1.5, -1, 'yesterday', '2026-01-05T10:00:00']) {
      const r = await annotate(A, { kind: 'note', text: 'x', t });
      expect(r.status, `${t}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.issues[0].path).toBe('t');
    }
    expect(await refusals('time')).toBe(before + bad.length);
    expect((await stored()).length).toBe(n);
    const ok = await annotate(A, { kind: 'note', text: 'x', t: Date.now() - 60_000 });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
  });

  it('refuses control and bidi characters in the text with the character named; tab and line breaks pass', async () => {
    const before = await refusals('control_characters');
    const n = (await stored()).length;
    const bad: Array<[string, string]> = [
      ['bell\u0007', 'U+0007'], ['\u001b[31mred\u001b[0m', 'U+001B'], ['nul\u0000byte', 'U+0000'], ['del\u007f', 'U+007F'],
      ['next\u0085line', 'U+0085'], ['csi\u009b', 'U+009B'], ['abc\u202edcba', 'U+202E'], ['x\u202ay', 'U+202A'],
      ['iso\u2066late\u2069', 'U+2066'], ['x\u2068y', 'U+2068'], ['half\ud800', 'U+D800'], ['vt\u000bx', 'U+000B'],
    ];
    for (const [text, code] of bad) {
      const r = await annotate(A, { kind: 'note', text });
      expect(r.status, JSON.stringify(text)).toBe(400);
      expect(r.body.issues).toEqual([{ path: 'text', message: expect.stringContaining(code) }]);
    }
    expect(await refusals('control_characters')).toBe(before + bad.length);
    expect((await stored()).length).toBe(n);
    const multi = await annotate(A, { kind: 'note', text: 'line one\nline two\r\n\tindented' });
    expect(multi.status, JSON.stringify(multi.body)).toBe(201);
    expect(multi.body.text).toBe('line one\nline two\r\n\tindented');
    const arabic = await annotate(A, { kind: 'note', text: 'ضغط منخفض \u200f MAP 55' });
    expect(arabic.status, JSON.stringify(arabic.body)).toBe(201);
  });
});
