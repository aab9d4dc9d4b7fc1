import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotationRoutes } from '../../../src/api/annotationRoutes.js';
import { actorOf, authPlugin } from '../../../src/api/authPlugin.js';
import { auditRoutes } from '../../../src/api/auditRoutes.js';
import { commandRoutes } from '../../../src/api/commandRoutes.js';
import { buildServer } from '../../../src/api/server.js';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { RateLimiter } from '../../../src/auth/rateLimiter.js';
import { ROLES, roleAtLeast, type Role } from '../../../src/auth/roles.js';
import { routeAccess, routeTable } from '../../../src/auth/routeRoles.js';
import { TokenStore } from '../../../src/auth/tokenStore.js';
import { EventBus } from '../../../src/bus.js';
import { AnnotationStore } from '../../../src/control/annotations.js';
import type { CommandService } from '../../../src/control/commandService.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import { Registry } from '../../../src/metrics.js';
import type { DeviceLink } from '../../../src/model/types.js';
import { helloFrame } from '../../helpers/hello.js';

let dir: string;
let db: Database.Database;
let app: FastifyInstance;
let logText = '';
const tokens: Record<Role, string> = {} as Record<Role, string>;
const link: DeviceLink = { kind: 'serial', source: '/dev/ttyTEST', send: async () => {} };
const executed: unknown[] = [];

/** Registered after the auth plugin, like a later feature: proves the hook covers it and deny-by-default. */
const lateRoutes: FastifyPluginAsync = async (inst) => {
  inst.get('/api/alarms', async (req) => ({ alarms: [], by: actorOf(req).user }));
  inst.get('/api/not-in-the-table', async () => ({ leaked: true }));
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'msc-authplugin-'));
  db = new Database(join(dir, 'journal.sqlite'));
  db.pragma('journal_mode = WAL');
  const audit = new AuditLog({ db });
  audit.start();
  const store = new TokenStore({ dataDir: dir, audit });
  store.start();
  for (const role of ROLES) {
    const r = store.add(`${role}1`, role, { user: 'setup', role: 'admin' });
    if (!r.ok) throw new Error(r.reason);
    tokens[role] = r.value.token;
  }
  const bus = new EventBus();
  const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logText += String(c); cb(); } }));
  const hub = new DeviceHub({ bus, logger });
  await hub.ingest('MSC-0001', [helloFrame('MSC-0001'), { type: 'S', seq: 1, t: Date.now(), state: 'RUNNING', sessionId: 'S-1' }], link);
  const annotations = new AnnotationStore({ db, audit });
  annotations.start();
  const commands: Pick<CommandService, 'execute'> = {
    execute: async (device, req, actor) => {
      executed.push({ device, req, actor });
      return { ok: true, cmdId: 'abc12345', result: 'OK', detail: '', tries: 1 };
    },
  };
  app = await buildServer({
    logger, devices: hub, loopbackOnly: false,
    health: () => ({ status: 'ok', live: true, ready: true, reasons: [] }),
    metrics: new Registry(),
    plugins: [
      { plugin: authPlugin, opts: { tokens: store, limiter: new RateLimiter({ burst: 30, perSecond: 0.001 }) } },
      { plugin: commandRoutes, opts: { commands } },
      { plugin: annotationRoutes, opts: { annotations, devices: hub } },
      { plugin: auditRoutes, opts: { audit } },
      { plugin: lateRoutes },
    ],
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (role: Role) => ({ authorization: `Bearer ${tokens[role]}` });

describe('route table', () => {
  it('orders roles viewer < operator < engineer < admin', () => {
    expect(roleAtLeast('operator', 'viewer')).toBe(true);
    expect(roleAtLeast('viewer', 'operator')).toBe(false);
    expect(roleAtLeast('admin', 'engineer')).toBe(true);
    expect(roleAtLeast('engineer', 'admin')).toBe(false);
  });

  it('denies by default and maps HEAD to GET', () => {
    expect(routeAccess('GET', '/api/not-in-the-table')).toBeNull();
    expect(routeAccess('DELETE', '/api/devices/:id')).toBeNull();
    expect(routeAccess('HEAD', '/api/devices')).toBe('viewer');
    expect(routeAccess('GET', '/healthz')).toBe('open');
    expect(routeAccess('POST', '/api/alarms/:id/out-of-service')).toBe('engineer');
    expect(routeTable().filter((r) => r.access === 'open').map((r) => r.url)).toEqual(['/healthz', '/', '/assets/*', '/favicon.ico']);
  });
});

describe('authorization matrix (unit server)', () => {
  const cases: Array<{ method: 'GET' | 'POST'; url: string; needs: Role | null; body?: unknown; ok: number }> = [
    { method: 'GET', url: '/metrics', needs: 'viewer', ok: 200 },
    { method: 'GET', url: '/api/devices', needs: 'viewer', ok: 200 },
    { method: 'GET', url: '/api/devices/MSC-0001', needs: 'viewer', ok: 200 },
    { method: 'GET', url: '/api/alarms', needs: 'viewer', ok: 200 },
    { method: 'GET', url: '/api/annotations', needs: 'viewer', ok: 200 },
    { method: 'POST', url: '/api/devices/MSC-0001/commands', needs: 'operator', body: { verb: 'SET', args: ['QB', 160], reason: 'r' }, ok: 200 },
    { method: 'POST', url: '/api/devices/MSC-0001/annotations', needs: 'operator', body: { kind: 'note', text: 'ok' }, ok: 201 },
    { method: 'GET', url: '/api/audit', needs: 'engineer', ok: 200 },
    { method: 'GET', url: '/api/not-in-the-table', needs: null, ok: 200 },
  ];
  for (const c of cases) {
    it(`${c.method} ${c.url}: 401 without or with an unknown token, 403 below ${c.needs ?? 'every role'}`, async () => {
      const none = await app.inject({ method: c.method, url: c.url, payload: c.body as object });
      expect(none.statusCode).toBe(401);
      expect(none.json()).toMatchObject({ error: 'unauthorized' });
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      const unknown = await app.inject({ method: c.method, url: c.url, payload: c.body as object, headers: { authorization: 'Bearer nope' } });
      expect(unknown.statusCode).toBe(401);
      for (const role of ROLES) {
        const r = await app.inject({ method: c.method, url: c.url, payload: c.body as object, headers: auth(role) });
        const allowed = c.needs !== null && roleAtLeast(role, c.needs);
        expect({ role, status: r.statusCode }).toEqual({ role, status: allowed ? c.ok : 403 });
        if (!allowed) expect(r.json()).toMatchObject({ error: 'forbidden' });
      }
    });
  }

  it('leaves /healthz open and HEAD follows GET', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'HEAD', url: '/api/devices' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'HEAD', url: '/api/devices', headers: auth('viewer') })).statusCode).toBe(200);
  });

  it('answers 401 for unknown urls without a token, 404 with one', async () => {
    expect((await app.inject({ url: '/api/nothing' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/nothing', headers: auth('viewer') })).statusCode).toBe(404);
  });

  it('attaches the principal for the audit trail', async () => {
    const r = await app.inject({ url: '/api/alarms', headers: auth('engineer') });
    expect(r.json()).toEqual({ alarms: [], by: 'engineer1' });
  });

  it('sends no CORS headers, even to a preflight', async () => {
    const r = await app.inject({ url: '/api/devices', headers: { ...auth('viewer'), origin: 'http://evil.example' } });
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await app.inject({ method: 'OPTIONS', url: '/api/devices', headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' } });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    expect(pre.statusCode).toBeGreaterThanOrEqual(400);
  });

  it('never logs a token, accepted or refused', async () => {
    await app.inject({ url: '/api/audit', headers: auth('viewer') });
    await app.inject({ url: '/api/audit', headers: { authorization: 'Bearer Zm9vYmFyc2VjcmV0dG9rZW4' } });
    expect(logText).toMatch(/access denied/);
    for (const t of Object.values(tokens)) expect(logText).not.toContain(t);
    expect(logText).not.toContain('Zm9vYmFyc2VjcmV0dG9rZW4');
  });
});

describe('request validation', () => {
  it('400 with the offending field paths; nothing executed', async () => {
    const before = executed.length;
    const r = await app.inject({
      method: 'POST', url: '/api/devices/MSC-0001/commands', headers: auth('operator'),
      payload: { verb: 'FLY', args: ['QB', { x: 1 }], extra: true },
    });
    expect(r.statusCode).toBe(400);
    const paths = r.json().issues.map((i: { path: string }) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['verb', 'args.1']));
    expect(paths.some((p: string) => p === '(body)' || p === 'extra')).toBe(true);
    expect(executed.length).toBe(before);
  });

  it('413 for an oversized body', async () => {
    const r = await app.inject({
      method: 'POST', url: '/api/devices/MSC-0001/commands', headers: auth('operator'),
      payload: { verb: 'SET', args: ['QB', 160], reason: 'x'.repeat(10_000) },
    });
    expect(r.statusCode).toBe(413);
  });

  it('400 for bad query parameters of the audit route', async () => {
    const r = await app.inject({ url: '/api/audit?from=yesterday&limit=0', headers: auth('engineer') });
    expect(r.statusCode).toBe(400);
    expect(r.json().issues.map((i: { path: string }) => i.path)).toEqual(expect.arrayContaining(['query.from', 'query.limit']));
  });
});

describe('rate limit on write routes', () => {
  it('429 with Retry-After once a user spent the burst; reads and other users unaffected', async () => {
    let limited = null;
    for (let i = 0; i < 40 && !limited; i++) {
      const r = await app.inject({ method: 'POST', url: '/api/devices/MSC-0001/commands', headers: auth('admin'), payload: { verb: 'ID' } });
      if (r.statusCode === 429) limited = r;
      else expect(r.statusCode).toBe(200);
    }
    expect(limited?.json()).toMatchObject({ error: 'too_many_requests' });
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0);
    expect((await app.inject({ url: '/api/devices', headers: auth('admin') })).statusCode).toBe(200);
    const other = await app.inject({ method: 'POST', url: '/api/devices/MSC-0001/commands', headers: auth('engineer'), payload: { verb: 'ID' } });
    expect(other.statusCode).toBe(200);
  });
});
