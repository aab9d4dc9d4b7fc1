/**
 * Replay end to end. Over the WebSocket: a stored 24 h session starts streaming within 300 ms,
 * paced by device time, flagged `replay: true`, seekable, engineer only. In Chromium: a recorded session
 * (with an alarm and an annotation) replays with its markers on the timeline, labelled REPLAY, and exports CSV.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
// @ts-expect-error plain ESM build script without types
import { buildWeb } from '../../scripts/build-web.mjs';
import { silentLogger } from '../../src/log.js';
import { Journal } from '../../src/storage/journal.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startInfluxd, type InfluxdHandle } from '../helpers/influxd.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';
import { ARTIFACTS, launchChromium, pageProblems, signIn } from './browser.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
const DAY_MS = 24 * 3600_000;

type Msg = { type: string; [k: string]: any };

/** A live-stream client that records every message. */
async function streamClient(url: string, token: string): Promise<{ ws: WebSocket; messages: Msg[]; next: (pred: (m: Msg) => boolean, timeoutMs?: number) => Promise<Msg> }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', ['msc.v1', `bearer.${token}`]);
  const messages: Msg[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d))));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const next = (pred: (m: Msg) => boolean, timeoutMs = 5_000) => waitFor(() => messages.find(pred) ?? null, { timeoutMs, intervalMs: 2, message: 'stream message' });
  await next((m) => m.type === 'welcome');
  return { ws, messages, next };
}

describe('replay over the WebSocket, from a 24 h journal', () => {
  let dataDir: string;
  let gw: TestGateway;
  const t0 = Date.UTC(2026, 10, 20, 8, 0, 0);

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'msc-replay-'));
    // A whole day of one console at 10 Hz, written through the journal itself (864 000 samples).
    const journal = new Journal({ dataDir, commitIntervalMs: 60_000 });
    await journal.start();
    const state = (seq: number, t: number, s: 'PRIMED' | 'RUNNING' | 'ENDED' | 'IDLE', sessionId: string | null, previous: string | null) =>
      journal.appendState({ deviceId: 'MSC-DAY', seq, t, rx: t, state: s, sessionId, previous: previous as never });
    state(0, t0 - 60_000, 'PRIMED', null, null);
    state(1, t0, 'RUNNING', 'S-24H', 'PRIMED');
    let seq = 2;
    for (let i = 0; i < DAY_MS / 100; i++) {
      const t = t0 + i * 100;
      journal.appendTelemetry({ deviceId: 'MSC-DAY', sessionId: 'S-24H', seq: seq++, t, rx: t, v: { QB: 150 + (i % 10), PV: 110, TR: 37, SQB: 150, STR: 37 } });
      if (i % 50_000 === 0) journal.flush();
    }
    state(seq++, t0 + DAY_MS, 'ENDED', 'S-24H', 'RUNNING');
    state(seq++, t0 + DAY_MS + 60_000, 'IDLE', null, 'ENDED');
    journal.flush();
    await journal.stop();
    gw = await startTestGateway({}, { dataDir, logger: silentLogger() });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists the session and streams its first sample within 300 ms, paced by device time', async () => {
    const sessions = (await gw.get('/api/devices/MSC-DAY/sessions', gw.tokens.viewer)).body.sessions;
    expect(sessions).toEqual([{ sessionId: 'S-24H', from: t0, to: t0 + DAY_MS + 60_000, states: ['RUNNING', 'ENDED'] }]);

    const c = await streamClient(gw.url, gw.tokens.engineer);
    const sentAt = performance.now();
    c.ws.send(JSON.stringify({ type: 'replay', device: 'MSC-DAY', session: 'S-24H', speed: 1, id: 'r1' }));
    const first = await c.next((m) => m.type === 'telemetry');
    const latency = performance.now() - sentAt;
    expect(latency, `first replayed sample after ${latency.toFixed(0)} ms`).toBeLessThan(300);
    expect(first).toMatchObject({ replay: true, device: 'MSC-DAY' });
    expect(first.samples[0]).toMatchObject({ t: t0, v: { QB: 150, PV: 110 } });

    const started = c.messages.find((m) => m.type === 'replay' && m.status === 'started')!;
    expect(started).toMatchObject({ replay: true, id: 'r1', from: t0, to: t0 + DAY_MS + 60_000, speed: 1, source: 'journal' });
    const markers = await c.next((m) => m.type === 'replayMarkers');
    expect(markers.states.map((s: { state: string }) => s.state)).toEqual(['RUNNING', 'ENDED']);
    // Every replay message is flagged so no client can take it for live data.
    expect(c.messages.filter((m) => m.type !== 'welcome').every((m) => m.replay === true)).toBe(true);

    // Paced at 1×: after half a second of wall time, about half a second of device time has been sent.
    const wallStart = performance.now();
    await waitFor(() => performance.now() - wallStart > 500 && c.messages.filter((m) => m.type === 'telemetry').length > 3, { intervalMs: 20 });
    const sent = c.messages.filter((m) => m.type === 'telemetry').flatMap((m) => m.samples);
    const span = sent[sent.length - 1].t - t0;
    expect(span).toBeGreaterThan(300);
    expect(span).toBeLessThan(performance.now() - sentAt + 300);

    // Seek to the middle of the day: the next samples come from there.
    const mid = t0 + DAY_MS / 2;
    c.ws.send(JSON.stringify({ type: 'replay', action: 'seek', t: mid }));
    await c.next((m) => m.status === 'seeked');
    const after = await c.next((m) => m.type === 'telemetry' && m.samples[0].t >= mid, 2_000);
    expect(after.samples[0].t).toBe(mid);

    c.ws.send(JSON.stringify({ type: 'replay', action: 'stop' }));
    await c.next((m) => m.status === 'stopped');
    c.ws.close();
  });

  it('replays as fast as the client takes it at speed max, to the end', async () => {
    const c = await streamClient(gw.url, gw.tokens.engineer);
    c.ws.send(JSON.stringify({ type: 'replay', device: 'MSC-DAY', from: t0, to: t0 + 10 * 60_000, speed: 'max' }));
    await c.next((m) => m.status === 'ended', 20_000);
    const samples = c.messages.filter((m) => m.type === 'telemetry').flatMap((m) => m.samples);
    expect(samples).toHaveLength(6_000);
    expect(samples.every((s, i) => i === 0 || s.t > samples[i - 1].t)).toBe(true);
    c.ws.close();
  });

  it('refuses replay below engineer and explains a bad request', async () => {
    const op = await streamClient(gw.url, gw.tokens.operator);
    op.ws.send(JSON.stringify({ type: 'replay', device: 'MSC-DAY', session: 'S-24H' }));
    expect(await op.next((m) => m.type === 'error')).toMatchObject({ code: 'forbidden' });
    op.ws.close();
    const eng = await streamClient(gw.url, gw.tokens.engineer);
    eng.ws.send(JSON.stringify({ type: 'replay', device: 'MSC-DAY', session: 'NOPE' }));
    expect(await eng.next((m) => m.status === 'error')).toMatchObject({ error: 'not_found' });
    eng.ws.send(JSON.stringify({ type: 'replay', device: 'MSC-DAY' }));
    expect(await eng.next((m) => m.status === 'error' && m.error === 'invalid_message')).toMatchObject({ message: expect.stringContaining('session') });
    // An id that can never be a console is a bad request naming the field, like a subscribe, not a not_found.
    eng.ws.send(JSON.stringify({ type: 'replay', device: 'no such id!', session: 'S-24H', id: 'bad-id' }));
    expect(await eng.next((m) => m.status === 'error' && m.id === 'bad-id')).toMatchObject({
      error: 'invalid_message', issues: [{ path: 'device', message: 'not a device id' }],
    });
    eng.ws.close();
  });

  it('exports a range as CSV (engineer), faults as ! and unmeasured channels empty', async () => {
    const r = await fetch(`${gw.url}/api/devices/MSC-DAY/telemetry.csv?from=${t0}&to=${t0 + 1000}`, { headers: { authorization: `Bearer ${gw.tokens.engineer}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/csv');
    const lines = (await r.text()).trim().split('\r\n');
    expect(lines[0]).toBe('time,t_ms,seq,PV,QB,SQB,STR,TR');
    expect(lines).toHaveLength(11);
    expect(lines[1]).toBe(`${new Date(t0).toISOString()},${t0},2,110,150,150,37,37`);
  });
});

describe('replay screen in Chromium', () => {
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let sim: Simulator;
  let browser: Browser;
  const DEVICE = 'MSC-E2E9';
  /** Signed in as an engineer, the recorded session chosen on the replay screen and loaded at `speed`. */
  const loadRecorded = async (speed: string) => {
    const page = await signIn(browser, gw.url, gw.tokens.engineer);
    await page.click('a.nav-link[href="#/replay"]');
    await page.waitForSelector(`select[name="device"] option[value="${DEVICE}"]`, { state: 'attached' });
    await page.selectOption('select[name="device"]', DEVICE);
    await page.waitForSelector('select[name="session"] option[value="S-E2E-REC"]', { state: 'attached' });
    await page.selectOption('select[name="session"]', 'S-E2E-REC');
    await page.click(`[data-speed="${speed}"]`);
    await page.click('[data-action="load"]');
    return page;
  };

  beforeAll(async () => {
    await buildWeb();
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-e2e-replay' } });
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEVICE], autoRun: { sessionId: 'S-E2E-REC' }, phases: FAST_PHASES, seed: 5 });
    browser = await launchChromium();
    // Record a session with a HIGH alarm and an annotation in it.
    await waitFor(async () => {
      const d = (await gw.get(`/api/devices/${DEVICE}`)).body;
      return d.state === 'RUNNING' && d.values.QB?.v > 100;
    }, { timeoutMs: 20_000, message: 'RUNNING at flow' });
    sim.apply({ action: 'air_in_line', device: DEVICE, duration: '2s' });
    await waitFor(async () => (await gw.get(`/api/alarms?device=${DEVICE}`)).body.alarms.some((a: { rule: string }) => a.rule === 'AIR_IN_LINE'), { message: 'AIR alarm' });
    const note = await gw.post(`/api/devices/${DEVICE}/annotations`, { kind: 'note', text: 'air bubble seen at the trap' });
    expect(note.status).toBe(201);
    // Two more seconds of samples after the alarm, so it sits inside the recording.
    const seen = (await gw.get(`/api/devices/${DEVICE}`)).body.counters.telemetry;
    await waitFor(async () => (await gw.get(`/api/devices/${DEVICE}`)).body.counters.telemetry > seen + 20, { message: '2 s more samples' });
    await sim.stop();
  });

  afterAll(async () => {
    await browser?.close();
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
  });

  it('replays a recorded session with its state, alarm and annotation markers, labelled REPLAY, and exports CSV', async () => {
    const page = await loadRecorded('60');
    await page.waitForSelector('.timeline .tl-alarm[data-priority="HIGH"]');
    await page.waitForSelector('.timeline .tl-state[data-state="RUNNING"]');
    await page.waitForSelector('.timeline .tl-note');
    await expect.poll(async () => Number(await page.locator('.num[data-channel="TR"] .num-value').textContent()), { timeout: 10_000 }).toBeGreaterThan(30);
    expect(await page.locator('.replay-banner').textContent()).toContain('REPLAY');
    expect(await page.locator('.num[data-channel="QB"] .replay-tag').textContent()).toBe('REPLAY');
    expect(await page.locator('.trends h2').textContent()).toContain('REPLAY');
    // The replayed alarm appears in the replay's own alarm bar when the playhead passes it.
    await page.waitForSelector('.replay-view .alarm[data-rule="AIR_IN_LINE"]', { timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'replay.png') });

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-action="csv-range"]')]);
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\r\n');
    expect(csv[0]).toMatch(/^time,t_ms,seq,.*QB/);
    expect(csv.length).toBeGreaterThan(20);
    expect(pageProblems(page)).toEqual([]);
  });

  it('carries on from the playhead when the connection drops mid-replay and comes back', async () => {
    const page = await loadRecorded('1');
    await expect.poll(async () => Number(await page.locator('.num[data-channel="TR"] .num-value').textContent()), { timeout: 10_000 }).toBeGreaterThan(30);
    // The network drops: the server forgets the replay with the socket; the page reconnects by itself.
    for (const c of (gw.gateway.live as unknown as { clients: Set<{ ws: { terminate(): void } }> }).clients) c.ws.terminate();
    await page.waitForSelector('.replay-view .cmd-result:text-matches("Connection back: replay resumed from")', { timeout: 10_000 });
    // It plays on to the end of the session (without the resume it stays "playing" for ever, fed by nothing).
    await page.waitForSelector('.rp-status:text-is("ended")', { timeout: 30_000 });
    expect(pageProblems(page)).toEqual([]);
  });
});

describe('replay from InfluxDB when it is configured', () => {
  let influxd: InfluxdHandle;
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let sim: Simulator;
  const DEVICE = 'MSC-E2E7';
  const count = async (where: string) => {
    const body = await influxd.query(`SELECT count(seq) FROM telemetry WHERE device = '${DEVICE}'${where}`, 'msc_replay');
    return (body.results?.[0]?.series?.[0]?.values?.[0]?.[1] as number | undefined) ?? 0;
  };

  beforeAll(async () => {
    influxd = await startInfluxd();
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-e2e-influx' }, influx: { url: `${influxd.url}/msc_replay` } });
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEVICE], autoRun: { sessionId: 'S-INFLUX' }, phases: FAST_PHASES, seed: 9 });
    await waitFor(async () => (await gw.get(`/api/devices/${DEVICE}`)).body.counters?.telemetry > 40, { timeoutMs: 20_000, message: '4 s of samples' });
    await sim.stop();
    const received = (await gw.get(`/api/devices/${DEVICE}`)).body.counters.telemetry;
    await waitFor(async () => (await count('')) === received, { timeoutMs: 20_000, message: 'every sample forwarded to InfluxDB' });
  });

  afterAll(async () => {
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
    await influxd?.dispose();
  });

  it('streams the session from InfluxDB, every stored sample once and in order', async () => {
    const c = await streamClient(gw.url, gw.tokens.engineer);
    c.ws.send(JSON.stringify({ type: 'replay', device: DEVICE, session: 'S-INFLUX', speed: 'max' }));
    const started = await c.next((m) => m.status === 'started');
    expect(started.source).toBe('influx');
    await c.next((m) => m.status === 'ended', 20_000);
    const samples = c.messages.filter((m) => m.type === 'telemetry').flatMap((m) => m.samples);
    expect(samples.length).toBe(await count(` AND time >= ${started.from}ms AND time < ${started.to}ms`));
    expect(samples.length).toBeGreaterThan(20);
    expect(samples.every((s, i) => s.seq === null && (i === 0 || s.t > samples[i - 1].t))).toBe(true);
    expect(typeof samples[0].v.QB).toBe('number');
    c.ws.close();
  });
});
