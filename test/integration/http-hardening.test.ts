/**
 * Hardening of the HTTP side, through the assembled gateway on real HTTP: refused tokens are counted in /metrics
 * and logged per source (throttled, never the token); /healthz without a valid token says only live, ready and
 * why; JSON and metrics answers are `Cache-Control: no-store`; per-device routes answer 404 for a console that
 * was never seen (live or in the journal), and still serve one the journal knows after a restart.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import type { DeviceLink } from '../../src/model/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const KNOWN = 'MSC-H001';
const NEVER = 'MSC-NEVER-SEEN';
const link: DeviceLink = { kind: 'serial', source: '/dev/ttyHARDEN', send: async () => {} };

const CONFIG = { auth: { rateLimit: { burst: 1000, perSecond: 1000 } } };
let dataDir: string;
let gw: TestGateway;
/** The gateway answering now: the test gateway, then the one restarted on its data directory. */
let url: string;
let restarted: Gateway | null = null;
const logs: string[] = [];
const logStream = new Writable({ write(chunk: Buffer, _e, done) { logs.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
const lines = () => logs.map((l) => JSON.parse(l) as Record<string, any>);

async function call(method: string, path: string, token: string | null, body?: unknown) {
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, headers: r.headers, json, text };
}

function unauthorizedMetric(text: string, transport: 'http' | 'ws'): number {
  const m = new RegExp(`^msc_http_unauthorized_total\\{transport="${transport}"\\} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`no msc_http_unauthorized_total{transport="${transport}"} in /metrics`);
  return Number(m[1]);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'msc-http-hardening-'));
  gw = await startTestGateway(CONFIG, { dataDir, logger: createLogger('info', logStream) });
  url = gw.url;
  // A console seen by this gateway (its frames are journaled before ingest resolves).
  await gw.gateway.hub.ingest(KNOWN, [
    { type: 'HELLO', deviceId: KNOWN, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN-H001' },
    { type: 'S', seq: 1, t: Date.now(), state: 'RUNNING', sessionId: 'S-H1' },
    { type: 'T', seq: 2, t: Date.now(), v: { QB: 150, PV: 80 } },
  ] as never, link);
});

afterAll(async () => {
  await gw?.stop();
  await restarted?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('refused tokens leave a trace', () => {
  it('counts every HTTP and live-stream 401 in /metrics and logs the source once a minute, never the token', async () => {
    const metrics0 = (await call('GET', '/metrics', gw.tokens.viewer)).text;
    const http0 = unauthorizedMetric(metrics0, 'http');
    const ws0 = unauthorizedMetric(metrics0, 'ws');
    const linesBefore = lines().length;
    const guesses = Array.from({ length: 30 }, () => randomBytes(32).toString('base64url'));
    for (const g of guesses) expect((await call('GET', '/api/devices', g)).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await call('GET', '/api/devices', null)).status).toBe(401);

    // The live stream: an unknown token on the upgrade, then one in an `auth` message.
    const wsUrl = url.replace('http', 'ws') + '/ws';
    const upgrade = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${guesses[0]}` } });
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('open', () => reject(new Error('upgrade with an unknown token accepted')));
      ws.on('error', () => {});
    });
    expect(upgrade).toBe(401);
    const closed = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(wsUrl);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: guesses[1] })));
      ws.on('close', (code) => resolve(code));
      ws.on('error', reject);
    });
    expect(closed).toBe(4401);

    const metrics1 = (await call('GET', '/metrics', gw.tokens.viewer)).text;
    expect(unauthorizedMetric(metrics1, 'http') - http0).toBe(35);
    expect(unauthorizedMetric(metrics1, 'ws') - ws0).toBe(2);
    expect(metrics1).toMatch(/^# TYPE msc_http_unauthorized_total counter$/m);

    // 37 refusals from one address within a minute: one warning line with its address and route.
    const refused = lines().slice(linesBefore).filter((l) => /unauthorized request/.test(l.msg));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, module: 'auth', transport: 'http', reason: 'unknown token', route: '/api/devices', suppressed: 0 });
    expect(refused[0].source).toMatch(/127\.0\.0\.1/);
    const text = logs.join('\n');
    for (const g of guesses) expect(text).not.toContain(g);
    for (const t of Object.values(gw.tokens)) expect(text).not.toContain(t);
  });
});

describe('/healthz', () => {
  it('without a token: live, ready and reasons only (no console ids, states or counts)', async () => {
    const r = await call('GET', '/healthz', null);
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(['live', 'ready', 'reasons', 'status']);
    expect(r.json).toMatchObject({ live: true, ready: true, status: 'ok', reasons: [] });
    expect(r.text).not.toContain(KNOWN);
    expect(r.text).not.toContain('RUNNING');
  });

  it('with an unknown token: the same summary, and the guess is counted', async () => {
    const before = unauthorizedMetric((await call('GET', '/metrics', gw.tokens.viewer)).text, 'http');
    const r = await call('GET', '/healthz', randomBytes(32).toString('base64url'));
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(['live', 'ready', 'reasons', 'status']);
    expect(unauthorizedMetric((await call('GET', '/metrics', gw.tokens.viewer)).text, 'http')).toBe(before + 1);
  });

  it('with a valid token of any role: the full report, consoles and states included', async () => {
    for (const role of ['viewer', 'operator', 'engineer', 'admin'] as const) {
      const r = await call('GET', '/healthz', gw.tokens[role]);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ live: true, ready: true, uptimeS: expect.any(Number), transports: [], journal: { writable: true } });
      expect(r.json.devices).toEqual([expect.objectContaining({ id: KNOWN, state: 'RUNNING' })]);
    }
  });
});

describe('Cache-Control: no-store', () => {
  it('on every /api answer (success, 400, 401, 403, 404) and on /metrics; not on the static screens', async () => {
    const cases: Array<[string, string, string | null, number, unknown?]> = [
      ['GET', '/api/devices', gw.tokens.viewer, 200],
      ['GET', `/api/devices/${KNOWN}`, gw.tokens.viewer, 200],
      ['GET', '/api/alarms', gw.tokens.viewer, 200],
      ['GET', '/api/me', gw.tokens.viewer, 200],
      ['GET', `/api/devices/${NEVER}`, gw.tokens.viewer, 404],
      ['GET', '/api/audit?from=yesterday', gw.tokens.engineer, 400],
      ['GET', '/api/audit', gw.tokens.viewer, 403],
      ['GET', '/api/devices', null, 401],
      ['GET', '/api/nothing-here', gw.tokens.viewer, 404],
      ['POST', `/api/devices/${KNOWN}/commands`, gw.tokens.operator, 400, { verb: 'FLY' }],
      ['GET', '/metrics', gw.tokens.viewer, 200],
      ['GET', '/metrics', null, 401],
    ];
    for (const [method, path, token, status, body] of cases) {
      const r = await call(method, path, token, body);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect({ path, cache: r.headers.get('cache-control') }).toEqual({ path, cache: 'no-store' });
    }
    // Hashed script and style files are cached for ever on purpose; they carry no data.
    const asset = await call('GET', '/assets/no-such-file.js', null);
    expect(asset.headers.get('cache-control')).not.toBe('no-store');
  });
});

describe('a console that was never seen is 404 on its routes', () => {
  it('PUT limits: 404, nothing audited, nothing stored; the seen console is changed', async () => {
    const audit0 = (await call('GET', '/api/audit', gw.tokens.engineer)).json.records.length;
    const limits = { rule: 'PV_HIGH', limit: 240, reason: 'hardening test' };
    const r = await call('PUT', `/api/devices/${NEVER}/limits`, gw.tokens.engineer, limits);
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ error: 'not_found', message: expect.stringContaining(NEVER) });
    expect((await call('GET', '/api/audit', gw.tokens.engineer)).json.records.length).toBe(audit0);
    expect(existsSync(join(dataDir, 'alarm-profile.json'))).toBe(false);
    // Bad bodies are still 400 first, whatever the device.
    expect((await call('PUT', `/api/devices/${NEVER}/limits`, gw.tokens.engineer, { rule: 'PV_HIGH' })).status).toBe(400);
    expect((await call('PUT', `/api/devices/${KNOWN}/limits`, gw.tokens.engineer, limits)).status).toBe(200);
    // A console not yet connected is set up by name in the profile document; then its limits can be changed too.
    const future = 'MSC-FUTURE';
    expect((await call('PUT', `/api/devices/${future}/limits`, gw.tokens.engineer, limits)).status).toBe(404);
    const named = { devices: { [KNOWN]: { PV_HIGH: { limit: 240 } }, [future]: { PV_HIGH: { limit: 245 } } } };
    expect((await call('PUT', '/api/alarms/profile', gw.tokens.engineer, { profile: named, reason: 'new console' })).status).toBe(200);
    expect((await call('PUT', `/api/devices/${future}/limits`, gw.tokens.engineer, limits)).status).toBe(200);
  });

  it('history, sessions, alarm history and CSV export: 404 for it, 200 for the seen console', async () => {
    const now = Date.now();
    const reads = [
      (id: string) => `/api/devices/${id}/telemetry`,
      (id: string) => `/api/devices/${id}/sessions`,
      (id: string) => `/api/devices/${id}/alarm-history`,
      (id: string) => `/api/devices/${id}/telemetry.csv?from=${now - 60_000}&to=${now + 60_000}`,
    ];
    for (const path of reads) {
      const never = await call('GET', path(NEVER), gw.tokens.engineer);
      expect({ path: path(NEVER), status: never.status }).toEqual({ path: path(NEVER), status: 404 });
      expect(never.json).toMatchObject({ error: 'not_found' });
      const seen = await call('GET', path(KNOWN), gw.tokens.engineer);
      expect({ path: path(KNOWN), status: seen.status }).toEqual({ path: path(KNOWN), status: 200 });
    }
    // The ones that already answered 404 still do.
    expect((await call('POST', `/api/devices/${NEVER}/commands`, gw.tokens.operator, { verb: 'SILENCE' })).status).toBe(404);
    expect((await call('POST', `/api/devices/${NEVER}/annotations`, gw.tokens.operator, { kind: 'note', text: 'x' })).status).toBe(404);
    expect((await call('POST', `/api/devices/${NEVER}/audio-pause`, gw.tokens.operator, {})).status).toBe(404);
  });

  it('after a restart, a console known only from the journal is served, a never-seen one is still 404', async () => {
    await gw.gateway.stop();
    // The same data directory: tokens.json keeps the first gateway's tokens.
    restarted = new Gateway(parseConfig({ http: { host: '127.0.0.1', port: 0 }, dataDir, ...CONFIG }), { logger: createLogger('info', logStream) });
    await restarted.start();
    url = restarted.httpUrl;
    expect((await call('GET', `/api/devices/${KNOWN}`, gw.tokens.viewer)).status).toBe(404); // not connected since
    const history = await call('GET', `/api/devices/${KNOWN}/telemetry?from=${Date.now() - 600_000}`, gw.tokens.viewer);
    expect(history.status).toBe(200);
    expect(history.json.samples.length).toBe(1);
    expect((await call('PUT', `/api/devices/${KNOWN}/limits`, gw.tokens.engineer, { rule: 'PV_HIGH', limit: 230, reason: 'again' })).status).toBe(200);
    expect((await call('GET', `/api/devices/${NEVER}/telemetry`, gw.tokens.viewer)).status).toBe(404);
  });
});
