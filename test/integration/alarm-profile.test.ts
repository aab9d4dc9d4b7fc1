/**
 * Alarm-limit and rule changes at run time (engineer; audit trail with old value, new value, reason)
 * through the whole gateway: a per-device PV_HIGH limit and a profile document are changed over HTTP, are in
 * force (the profile API, and a simulated console on a real mosquitto alarming at the new limit), audited, kept
 * across a restart on the same data directory; wrong roles, bad bodies and a missing audit trail change nothing;
 * a corrupt stored file does not stop the gateway.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { generateToken, hashToken } from '../../src/auth/tokenHash.js';
import { parseConfig, type ConfigInput } from '../../src/config.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { DeviceLink } from '../../src/model/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';
import { helloFrame } from '../helpers/hello.js';

const DEV = 'MSC-0001';
const OTHER = 'MSC-0002';
/** Many bad requests in a row: the write-route rate limit is not what this test is about. */
const CONFIG: ConfigInput = { auth: { rateLimit: { burst: 1000, perSecond: 1000 } } };

type Res = { status: number; body: any };
async function request(url: string, method: string, path: string, token: string, body?: unknown): Promise<Res> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/**
 * A console has to have been seen before its limits can be changed (a typo in the id is 404): one state frame
 * through the gateway's device model, journaled like any other.
 */
async function seen(gateway: Gateway, deviceId: string): Promise<void> {
  const link: DeviceLink = { kind: 'serial', source: '/dev/ttyPROFILE', send: async () => {} };
  await gateway.hub.ingest(deviceId, [helloFrame(deviceId), { type: 'S', seq: 1, t: Date.now(), state: 'IDLE', sessionId: null }], link);
}

const gateways: Gateway[] = [];
async function startGateway(dataDir: string, config: ConfigInput = CONFIG, logger = silentLogger()): Promise<Gateway> {
  const gateway = new Gateway(parseConfig({ http: { host: '127.0.0.1', port: 0 }, dataDir, ...config }), { logger });
  gateways.push(gateway);
  await gateway.start();
  return gateway;
}

function ruleOf(body: { rules: Array<Record<string, unknown>> }, id: string): Record<string, unknown> | undefined {
  return body.rules.find((r) => r.id === id);
}

let dataDir: string;
let gw: TestGateway;
let put: (path: string, body: unknown, token?: string) => Promise<Res>;
const auditOf = async (action: string) =>
  ((await gw.get('/api/audit', gw.tokens.engineer)).body.records as Array<Record<string, any>>).filter((r) => r.action === action);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'msc-alarm-profile-'));
  gw = await startTestGateway(CONFIG, { dataDir });
  await seen(gw.gateway, DEV);
  put = (path, body, token = gw.tokens.engineer) => request(gw.url, 'PUT', path, token, body);
});

afterAll(async () => {
  await gw?.stop();
  for (const g of gateways) await g.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('alarm profile changes', () => {
  it('an engineer changes one device\'s PV_HIGH limit: in force for that device only, audited with old, new and reason', async () => {
    const r = await put(`/api/devices/${DEV}/limits`, { rule: 'PV_HIGH', limit: 240, onDelayMs: 1000, reason: 'smaller return cannula' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({
      device: DEV, old: { limit: 250, deadband: 10, onDelayMs: 2000 }, new: { limit: 240, deadband: 10, onDelayMs: 1000 },
      rule: { id: 'PV_HIGH', limit: 240, onDelayS: 1, deadband: 10, priority: 'HIGH' },
    });

    const mine = await gw.get(`/api/alarms/profile?device=${DEV}`, gw.tokens.viewer);
    expect(mine.status).toBe(200);
    expect(ruleOf(mine.body, 'PV_HIGH')).toMatchObject({ limit: 240, onDelayS: 1, latching: true });
    expect(ruleOf((await gw.get(`/api/alarms/profile?device=${OTHER}`)).body, 'PV_HIGH')).toMatchObject({ limit: 250, onDelayS: 2 });

    const [rec, ...more] = await auditOf('alarm.limit.change');
    expect(more).toHaveLength(0);
    expect(rec).toMatchObject({
      user: 'test-engineer', role: 'engineer', device: DEV, outcome: 'accepted',
      detail: {
        rule: 'PV_HIGH', reason: 'smaller return cannula',
        old: { limit: 250, deadband: 10, onDelayMs: 2000 }, new: { limit: 240, deadband: 10, onDelayMs: 1000 },
        profile: { old: {}, new: { devices: { [DEV]: { PV_HIGH: { limit: 240, onDelayS: 1 } } } } },
      },
    });
  });

  it('operators and viewers get 403, no token 401, and nothing changes', async () => {
    const before = (await gw.get('/api/alarms/profile')).body;
    const auditBefore = (await gw.get('/api/audit', gw.tokens.engineer)).body.records.length;
    const limits = { rule: 'PV_HIGH', limit: 200, reason: 'try' };
    for (const role of ['operator', 'viewer'] as const) {
      expect((await put(`/api/devices/${DEV}/limits`, limits, gw.tokens[role])).status).toBe(403);
      expect((await put('/api/alarms/profile', { profile: {}, reason: 'try' }, gw.tokens[role])).status).toBe(403);
    }
    expect((await put(`/api/devices/${DEV}/limits`, limits, '')).status).toBe(401);
    expect((await gw.get('/api/alarms/profile')).body).toEqual(before);
    expect((await gw.get('/api/audit', gw.tokens.engineer)).body.records.length).toBe(auditBefore);
  });

  it('bad bodies are 400 naming the field paths; an unknown rule is 404; a rule without one limit is 409', async () => {
    const before = (await gw.get('/api/alarms/profile')).body;
    const auditBefore = (await gw.get('/api/audit', gw.tokens.engineer)).body.records.length;
    const paths = (r: Res) => (r.body.issues as Array<{ path: string }>).map((i) => i.path);
    const lim = (body: unknown) => put(`/api/devices/${DEV}/limits`, body);

    let r = await lim({ rule: 'PV_HIGH', limit: '240', bogus: 1 });
    expect(r.status).toBe(400);
    expect(paths(r)).toEqual(expect.arrayContaining(['limit', 'reason', 'bogus']));
    r = await lim({ rule: 'PV_HIGH', limit: 240, reason: '   ' });
    expect([r.status, paths(r)]).toEqual([400, ['reason']]);
    r = await lim({ rule: 'PV_HIGH', limit: 240, reason: 'x'.repeat(501) });
    expect([r.status, paths(r)]).toEqual([400, ['reason']]);
    r = await lim({ rule: 'PV_HIGH', limit: 240, onDelayMs: -5, reason: 'r' });
    expect([r.status, paths(r)]).toEqual([400, ['onDelayMs']]);
    // ICD §1: PV reads -100 to +500 mmHg; a high limit at the top could never be crossed.
    for (const limit of [600, 500, -101]) {
      r = await lim({ rule: 'PV_HIGH', limit, reason: 'r' });
      expect([r.status, paths(r)], JSON.stringify(r.body)).toEqual([400, ['limit']]);
      expect(r.body.message).toMatch(/ICD sensor range of PV/);
    }
    r = await lim({ rule: 'TR_CRITICAL', limit: 46, reason: 'r' });
    expect([r.status, paths(r)]).toEqual([400, ['limit']]);
    r = await lim({ rule: 'NO_SUCH_RULE', limit: 1, reason: 'r' });
    expect(r.status).toBe(404);
    for (const rule of ['AIR_IN_LINE', 'TMP_HIGH']) expect((await lim({ rule, limit: 1, reason: 'r' })).status).toBe(409);

    const prof = (body: unknown) => put('/api/alarms/profile', body);
    r = await prof({ profile: { devices: { D9: { PV_HIGH: { limit: 'high' } } } }, reason: 'r' });
    expect([r.status, paths(r)]).toEqual([400, ['profile.devices.D9.PV_HIGH.limit']]);
    r = await prof({ profile: { defaults: [{ id: 'PV_HIGH', limit: 240, levels: [{ threshold: 1, priority: 'HIGH' }] }] }, reason: 'r' });
    expect([r.status, paths(r)]).toEqual([400, ['profile.defaults.0.limit']]);
    r = await prof({ profile: { rules: [] } });
    expect([r.status, paths(r).sort()]).toEqual([400, ['profile.rules', 'reason']]);
    r = await prof({ profile: { technical: { commLoss: { minSilenceS: 9 } } }, reason: 'r' });
    expect([r.status, paths(r)]).toEqual([400, ['profile.technical']]);

    expect((await gw.get('/api/alarms/profile')).body).toEqual(before);
    expect((await gw.get('/api/audit', gw.tokens.engineer)).body.records.length).toBe(auditBefore);
  });

  it('PUT /api/alarms/profile replaces the run-time document, audited with the old and new documents', async () => {
    const prev = { devices: { [DEV]: { PV_HIGH: { limit: 240, onDelayS: 1 } } } };
    const next = { ...prev, defaults: [{ id: 'DO_LOW', escalateAfterS: 600 }], models: { 'MSC-ALS 3': { PH_LOW: { enabled: false } } } };
    const r = await put('/api/alarms/profile', { profile: next, reason: 'protocol amendment 4' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.document).toEqual(next);
    expect(r.body.profile.rules.find((x: any) => x.id === 'DO_LOW')).toMatchObject({ escalateAfterS: 600 });

    const profile = (await gw.get('/api/alarms/profile')).body.profile;
    expect(profile.rules.find((x: any) => x.id === 'DO_LOW').escalateAfterS).toBe(600);
    expect(profile.models['MSC-ALS 3']).toEqual({ PH_LOW: { enabled: false } });
    expect(ruleOf((await gw.get(`/api/alarms/profile?device=${DEV}`)).body, 'PV_HIGH')).toMatchObject({ limit: 240 });

    const [rec] = await auditOf('alarm.profile.change');
    expect(rec).toMatchObject({
      user: 'test-engineer', role: 'engineer', device: null, outcome: 'accepted',
      detail: { old: prev, new: next, reason: 'protocol amendment 4' },
    });
  });

  it('the changes survive a restart on the same data directory', async () => {
    await gw.gateway.stop();
    const g = await startGateway(dataDir);
    // Tokens are kept (hashed) in the data directory: the first gateway's still work.
    const get = async (path: string) => request(g.httpUrl, 'GET', path, gw.tokens.engineer);
    expect(ruleOf((await get(`/api/alarms/profile?device=${DEV}`)).body, 'PV_HIGH')).toMatchObject({ limit: 240, onDelayS: 1 });
    expect(ruleOf((await get(`/api/alarms/profile?device=${OTHER}`)).body, 'PV_HIGH')).toMatchObject({ limit: 250 });
    expect((await get('/api/alarms/profile')).body.profile.rules.find((x: any) => x.id === 'DO_LOW').escalateAfterS).toBe(600);

    const r = await request(g.httpUrl, 'PUT', `/api/devices/${DEV}/limits`, gw.tokens.engineer, { rule: 'PV_HIGH', limit: 230, reason: 'again' });
    expect(r.status).toBe(200);
    expect(r.body.old).toMatchObject({ limit: 240, onDelayMs: 1000 });
    const records = (await get('/api/audit')).body.records.filter((x: any) => x.action === 'alarm.limit.change');
    expect(records.map((x: any) => x.detail.new.limit)).toEqual([240, 230]);
    await g.stop();
  });

  it('a corrupt stored file does not stop the gateway: the configured profile runs and an error is logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-alarm-profile-corrupt-'));
    try {
      writeFileSync(join(dir, 'alarm-profile.json'), '{"format":1,"profile":{"devi');
      const lines: Array<{ level: number; msg: string }> = [];
      const sink = new Writable({
        write(chunk, _e, done) {
          for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
          done();
        },
      });
      const token = generateToken();
      const g = await startGateway(dir, {
        ...CONFIG, auth: { tokens: [{ name: 'eng', role: 'engineer', sha256: hashToken(token) }] },
      }, createLogger('info', sink));
      const r = await request(g.httpUrl, 'GET', '/api/alarms/profile', token);
      expect(r.status).toBe(200);
      expect(r.body.profile.rules.find((x: any) => x.id === 'PV_HIGH').limit).toBe(250);
      expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([expect.stringMatching(/alarm profile changes NOT applied/)]);
      expect(readdirSync(dir).some((f) => f.startsWith('alarm-profile.json.corrupt-'))).toBe(true);
      await g.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unusable stored profile raises ALARM_PROFILE (HIGH) and a /healthz reason, across a restart, until an engineer confirms', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-alarm-profile-alarm-'));
    try {
      writeFileSync(join(dir, 'alarm-profile.json'), '{"format":1,"profile":{"devices":{"MSC-0001":{"PV_HIGH":{"limit":"x"}}}}}');
      const eng = generateToken();
      const viewer = generateToken();
      const config = {
        ...CONFIG, auth: { tokens: [{ name: 'eng', role: 'engineer', sha256: hashToken(eng) }, { name: 'v', role: 'viewer', sha256: hashToken(viewer) }] },
      } as ConfigInput;
      const profileAlarm = async (url: string) => ((await request(url, 'GET', '/api/alarms', viewer)).body.alarms as any[])
        .find((a) => a.device === 'gateway' && a.rule === 'ALARM_PROFILE' && a.active);
      let g = await startGateway(dir, config);
      const raised = await waitFor(() => profileAlarm(g.httpUrl), { message: 'ALARM_PROFILE raised' });
      expect(raised).toMatchObject({ priority: 'HIGH', source: 'technical', message: expect.stringContaining('alarm-profile.json') });
      const health = await request(g.httpUrl, 'GET', '/healthz', eng);
      expect(health.body.reasons).toEqual(expect.arrayContaining([expect.stringMatching(/^alarm profile changes not in force: .*alarm-profile\.json/)]));
      await g.stop();

      // Still there after a restart: the file was set aside, nobody has confirmed.
      g = await startGateway(dir, config);
      await waitFor(() => profileAlarm(g.httpUrl), { message: 'ALARM_PROFILE raised again after a restart' });
      expect((await request(g.httpUrl, 'POST', '/api/alarms/profile/confirm', viewer, { reason: 'checked' })).status).toBe(403);
      expect((await request(g.httpUrl, 'POST', '/api/alarms/profile/confirm', eng, {})).status).toBe(400);
      const ok = await request(g.httpUrl, 'POST', '/api/alarms/profile/confirm', eng, { reason: 'limits in force checked against the protocol' });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      await waitFor(async () => (await profileAlarm(g.httpUrl)) === undefined, { message: 'ALARM_PROFILE cleared' });
      expect((await request(g.httpUrl, 'GET', '/healthz', eng)).body.reasons).not.toEqual(
        expect.arrayContaining([expect.stringMatching(/alarm profile/)]));
      const audit = ((await request(g.httpUrl, 'GET', '/api/audit', eng)).body.records as any[]).filter((r) => r.action === 'alarm.profile.confirm');
      expect(audit).toEqual([expect.objectContaining({ user: 'eng', detail: expect.objectContaining({ reason: 'limits in force checked against the protocol' }) })]);
      expect((await request(g.httpUrl, 'POST', '/api/alarms/profile/confirm', eng, { reason: 'again' })).status).toBe(409);
      await g.stop();

      // Confirmed: a later start raises nothing.
      g = await startGateway(dir, config);
      await new Promise((r) => setImmediate(r));
      expect(await profileAlarm(g.httpUrl)).toBeUndefined();
      expect(readdirSync(dir).filter((f) => f.includes('.corrupt-')).every((f) => f.endsWith('.confirmed'))).toBe(true);
      await g.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a change that cannot be written to the data directory is refused with 503, not applied, and audited as failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-alarm-profile-nowrite-'));
    try {
      const g = await startTestGateway(CONFIG, { dataDir: dir });
      await seen(g.gateway, DEV);
      // The gateway runs in this process: its temporary file's name taken by a directory makes the write fail.
      mkdirSync(join(dir, `alarm-profile.json.${process.pid}.tmp`));
      const r = await request(g.url, 'PUT', `/api/devices/${DEV}/limits`, g.tokens.engineer, { rule: 'PV_HIGH', limit: 240, reason: 'r' });
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('not_persisted');
      expect(ruleOf((await g.get(`/api/alarms/profile?device=${DEV}`)).body, 'PV_HIGH')).toMatchObject({ limit: 250 });
      const records = (await g.get('/api/audit', g.tokens.engineer)).body.records.filter((x: any) => x.action === 'alarm.limit.change');
      expect(records.map((x: any) => x.outcome)).toEqual(['accepted', 'failed']);
      expect(records[1].detail).toMatchObject({ auditId: records[0].id, error: expect.any(String) });
      expect(existsSync(join(dir, 'alarm-profile.json'))).toBe(false);
      await g.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without an audit trail a change is refused with 503 and nothing changes or is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-alarm-profile-noaudit-'));
    try {
      const token = generateToken();
      const g = await startGateway(dir, {
        ...CONFIG, journal: false, auth: { tokens: [{ name: 'eng', role: 'engineer', sha256: hashToken(token) }] },
      });
      await seen(g, DEV);
      const r = await request(g.httpUrl, 'PUT', `/api/devices/${DEV}/limits`, token, { rule: 'PV_HIGH', limit: 240, reason: 'r' });
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('audit_unavailable');
      expect((await request(g.httpUrl, 'PUT', '/api/alarms/profile', token, { profile: {}, reason: 'r' })).status).toBe(503);
      expect(ruleOf((await request(g.httpUrl, 'GET', `/api/alarms/profile?device=${DEV}`, token)).body, 'PV_HIGH')).toMatchObject({ limit: 250 });
      expect(existsSync(join(dir, 'alarm-profile.json'))).toBe(false);
      await g.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a changed limit is what the alarm engine evaluates', () => {
  let broker: MosquittoBroker;
  let sim: Simulator;
  let dir: string;

  afterAll(async () => {
    await sim?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a running console alarms at its new PV_HIGH limit; its neighbour with the default limit does not', async () => {
    dir = mkdtempSync(join(tmpdir(), 'msc-alarm-profile-sim-'));
    broker = await startMosquitto();
    const g = await startTestGateway({ ...CONFIG, mqtt: { url: broker.url, clientId: `gw-prof-${process.pid}` } }, { dataDir: dir });
    try {
      const A = 'PRF-0001', B = 'PRF-0002';
      sim = await startSimulator({
        transport: 'mqtt', mqttUrl: broker.url, deviceIds: [A, B], rate: 10, autoRun: { sessionId: 'S-PRF' },
        phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 300 },
      });
      for (const id of [A, B]) {
        await waitFor(async () => (await g.get(`/api/devices/${id}`)).body.state === 'RUNNING', { timeoutMs: 20_000, message: `${id} RUNNING` });
      }
      // ICD §1: PV typically reads 50-150 mmHg while RUNNING, so 40 is crossed at once.
      const r = await request(g.url, 'PUT', `/api/devices/${A}/limits`, g.tokens.engineer,
        { rule: 'PV_HIGH', limit: 40, deadband: 5, onDelayMs: 0, reason: 'alarm path check' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const alarm = await waitFor(async () => ((await g.get(`/api/alarms?device=${A}`)).body.alarms as any[])
        .find((a) => a.rule === 'PV_HIGH'), { timeoutMs: 10_000, message: `${A}:PV_HIGH` });
      expect(alarm).toMatchObject({ device: A, priority: 'HIGH', limit: 40, active: true });
      expect(((await g.get(`/api/alarms?device=${B}&state=all`)).body.alarms as any[]).filter((a) => a.rule === 'PV_HIGH')).toEqual([]);
    } finally {
      await sim?.stop();
      await g.stop();
    }
  });
});
