import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AlarmInstance, AlarmTransition } from '../../../src/alarms/types.js';
import type { Role } from '../../../src/auth/roles.js';
import { TokenStore } from '../../../src/auth/tokenStore.js';
import { EventBus } from '../../../src/bus.js';
import type { CommandService } from '../../../src/control/commandService.js';
import { LiveHub, type LiveHubOptions } from '../../../src/live/liveHub.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import { waitFor } from '../../helpers/waitFor.js';
import { helloFrame } from '../../helpers/hello.js';
import { metricsTextOf } from '../../../src/metrics.js';

type Msg = Record<string, any>;
const DEV = 'MSC-0001';

let dir: string;
let app: FastifyInstance;
let bus: EventBus;
let hub: DeviceHub;
let store: TokenStore;
let live: LiveHub;
let url: string;
const tokens: Partial<Record<Role, string>> = {};
const clients: WebSocket[] = [];
const link: DeviceLink = { kind: 'serial', source: '/dev/ttyTEST', send: async () => {} };
let seq = 0;

const activeAlarm: AlarmInstance = {
  id: `${DEV}:PV_HIGH`, device: DEV, rule: 'PV_HIGH', source: 'process', priority: 'HIGH', state: 'UNACK', active: true,
  latching: true, raisedAt: 1, clearedAt: null, value: 260, limit: 250, message: 'Venous pressure high', ackedBy: null,
  ackedAt: null, shelvedUntil: null, sessionId: 'S-1',
};

async function setup(opts: Partial<LiveHubOptions> = {}): Promise<void> {
  live = new LiveHub({
    bus, devices: hub, tokens: store, logger: silentLogger(), alarmsOf: (d) => (d === DEV ? [activeAlarm] : []), ...opts,
  });
  live.start(app.server);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'msc-live-'));
  store = new TokenStore({ dataDir: dir, recheckMs: 0 });
  store.start();
  for (const role of ['viewer', 'operator'] as const) {
    const r = store.add(`${role}1`, role, { user: 'setup', role: 'admin' });
    if (!r.ok) throw new Error(r.reason);
    tokens[role] = r.value.token;
  }
  bus = new EventBus();
  hub = new DeviceHub({ bus, logger: silentLogger() });
  seq = 0;
  await telemetry(DEV, { QB: 150, SQB: 150 });
  await hub.ingest(DEV, [{ type: 'S', seq: ++seq, t: Date.now(), state: 'RUNNING', sessionId: 'S-1' }], link);
  app = Fastify();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  url = `ws://127.0.0.1:${addr.port}/ws`;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await live?.stop();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

function telemetry(device: string, v: Record<string, number | null>, t = Date.now()): Promise<void> {
  const hello = hub.has(device) ? [] : [helloFrame(device)];
  return hub.ingest(device, [...hello, { type: 'T', seq: ++seq, t, v }], link);
}

/** A real ws client that records every message it gets. */
function connect(opts: { role?: Role; protocols?: string[]; headers?: Record<string, string>; autoPong?: boolean } = {}) {
  const headers = opts.headers ?? (opts.role ? { authorization: `Bearer ${tokens[opts.role]}` } : {});
  const ws = new WebSocket(url, opts.protocols ?? [], { headers, autoPong: opts.autoPong ?? true });
  clients.push(ws);
  const msgs: Msg[] = [];
  const state = { closeCode: null as number | null, status: null as number | null, open: false };
  ws.on('message', (d) => msgs.push(JSON.parse(String(d))));
  ws.on('open', () => { state.open = true; });
  ws.on('close', (code) => { state.closeCode = code; });
  ws.on('unexpected-response', (_req, res) => { state.status = res.statusCode ?? null; ws.terminate(); });
  ws.on('error', () => {});
  const send = (m: unknown) => ws.send(JSON.stringify(m));
  const next = (type: string, from = 0) => waitFor(() => msgs.slice(from).find((m) => m.type === type), { message: `no ${type} message` });
  return { ws, msgs, state, send, next };
}

describe('LiveHub authentication', () => {
  beforeEach(() => setup({ authTimeoutMs: 300 }));

  it('refuses the upgrade with 401 without a token or with an unknown one', async () => {
    const a = connect({ headers: { authorization: 'Bearer nope' } });
    await waitFor(() => a.state.status === 401);
    const b = connect({ protocols: ['msc.v1', 'bearer.nope'] });
    await waitFor(() => b.state.status === 401);
  });

  it('accepts the Authorization header', async () => {
    const c = connect({ role: 'viewer' });
    expect(await c.next('welcome')).toMatchObject({ user: 'viewer1', role: 'viewer' });
  });

  it('accepts the bearer subprotocol and echoes msc.v1, never the token', async () => {
    const c = connect({ protocols: ['msc.v1', `bearer.${tokens.viewer}`] });
    await c.next('welcome');
    expect(c.ws.protocol).toBe('msc.v1');
  });

  it('accepts a first auth message, and closes 4401 when none comes in time or it is wrong', async () => {
    const good = connect();
    await waitFor(() => good.state.open);
    good.send({ type: 'subscribe', devices: '*' });
    await good.next('error');
    expect(good.msgs[0]).toMatchObject({ code: 'unauthenticated' });
    good.send({ type: 'auth', token: tokens.operator });
    expect(await good.next('welcome')).toMatchObject({ role: 'operator' });
    const silent = connect();
    await waitFor(() => silent.state.closeCode === 4401);
    const wrong = connect();
    await waitFor(() => wrong.state.open);
    wrong.send({ type: 'auth', token: 'nope' });
    await waitFor(() => wrong.state.closeCode === 4401);
    expect(good.state.closeCode).toBeNull();
  });

  it('closes open streams of a revoked token at the next heartbeat', async () => {
    await live.stop();
    await setup({ heartbeatMs: 100 });
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    store.revoke('viewer1', { user: 'root', role: 'admin' });
    await waitFor(() => c.state.closeCode === 4401);
  });
});

describe('LiveHub stream', () => {
  beforeEach(() => setup());

  it('sends a snapshot (values, state, link, active alarms), then live messages', async () => {
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    c.send({ type: 'subscribe', devices: [DEV] });
    const snap = await c.next('snapshot');
    expect(snap.devices).toHaveLength(1);
    expect(snap.devices[0]).toMatchObject({ id: DEV, state: 'RUNNING', sessionId: 'S-1', link: 'connected', values: { QB: { v: 150 } } });
    expect(snap.devices[0].alarms).toEqual([activeAlarm]);
    const t = Date.now();
    await telemetry(DEV, { QB: 151.5, PV: null, NEWCH: 7 }, t);
    await telemetry('MSC-0002', { QB: 99 });
    // `late` is measured on the wall clock here; deviceHub.test.ts computes it exactly, with an injected clock.
    expect(await c.next('telemetry')).toEqual({ type: 'telemetry', device: DEV, seq: seq - 1, t, v: { QB: 151.5, PV: null, NEWCH: 7 }, late: expect.any(Number) });
    await hub.ingest(DEV, [{ type: 'S', seq: ++seq, t, state: 'PAUSED', sessionId: 'S-1' }], link);
    expect(await c.next('state')).toMatchObject({ device: DEV, state: 'PAUSED', previous: 'RUNNING', sessionId: 'S-1' });
    await hub.ingest(DEV, [{ type: 'EV', seq: ++seq, t, code: 'AIR_DETECTED', prio: 'H', active: true, text: 'Air' }], link);
    expect(await c.next('event')).toMatchObject({ device: DEV, code: 'AIR_DETECTED', active: true });
    const tr: AlarmTransition = { kind: 'raise', at: t, from: 'NORMAL', to: 'UNACK', alarm: activeAlarm, actor: null, reason: null };
    bus.emit('alarm', tr);
    expect(await c.next('alarm')).toMatchObject({ device: DEV, kind: 'raise', to: 'UNACK', alarm: { rule: 'PV_HIGH' } });
    hub.linkDown(DEV, 'port closed');
    expect(await c.next('link')).toMatchObject({ device: DEV, link: 'lost', reason: 'port closed' });
    expect(c.msgs.some((m) => m.device === 'MSC-0002')).toBe(false);
  });

  it('subscribes to every device with "*", including devices seen later, and unsubscribes', async () => {
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    c.send({ type: 'subscribe', devices: '*' });
    await c.next('snapshot');
    await telemetry('MSC-0042', { QB: 1 });
    expect(await c.next('telemetry')).toMatchObject({ device: 'MSC-0042' });
    c.send({ type: 'unsubscribe', devices: '*' });
    c.send({ type: 'ping', id: 1 });
    await c.next('pong');
    const n = c.msgs.length;
    await telemetry('MSC-0042', { QB: 2 });
    c.send({ type: 'ping', id: 2 });
    await waitFor(() => c.msgs.find((m) => m.type === 'pong' && m.id === 2));
    expect(c.msgs.slice(n).filter((m) => m.type === 'telemetry')).toEqual([]);
  });

  it('refuses a subscription to ids that can never be a console, naming them, instead of matching nothing', async () => {
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    c.send({ type: 'subscribe', devices: ['*'] });
    c.send({ type: 'subscribe', devices: [DEV, 'no such id!'] });
    await waitFor(() => c.msgs.filter((m) => m.type === 'error').length === 2);
    const errors = c.msgs.filter((m) => m.type === 'error');
    expect(errors.map((m) => m.code)).toEqual(['invalid_message', 'invalid_message']);
    expect(errors[0].message).toMatch(/devices\.0: "\*" is not a device id \(for every device send "devices":"\*"/);
    expect(errors[1].message).toMatch(/devices\.1: "no such id!" is not a device id/);
    // Nothing was subscribed: a later sample of DEV does not arrive.
    expect(c.msgs.some((m) => m.type === 'snapshot')).toBe(false);
  });

  it('answers invalid JSON and unknown types with an error and keeps the connection', async () => {
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    c.ws.send('{nope');
    c.send({ type: 'teleport' });
    c.send({ type: 'subscribe', devices: 42 });
    c.ws.send(Buffer.from([1, 2, 3]));
    await waitFor(() => c.msgs.filter((m) => m.type === 'error').length === 4);
    expect(c.msgs.filter((m) => m.type === 'error').map((m) => m.code)).toEqual(['invalid_json', 'unknown_type', 'invalid_message', 'binary']);
    expect(await metricsTextOf((r) => live.registerMetrics(r))).toMatch(/msc_ws_client_errors_total\{code="invalid_json"\} 1/);
    c.send({ type: 'ping' });
    await c.next('pong');
  });

  it('terminates a client that stops answering pings, keeps the others', async () => {
    await live.stop();
    await setup({ heartbeatMs: 100 });
    const dead = connect({ role: 'viewer', autoPong: false });
    const alive = connect({ role: 'viewer' });
    await dead.next('welcome');
    await alive.next('welcome');
    await waitFor(() => dead.state.closeCode !== null, { timeoutMs: 3000 });
    expect(alive.state.closeCode).toBeNull();
    expect(await metricsTextOf((r) => live.registerMetrics(r))).toMatch(/msc_ws_disconnects_total\{reason="heartbeat"\} 1/);
  });

  it('closes every client with 1001 on stop()', async () => {
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    await live.stop();
    await live.stop();
    await waitFor(() => c.state.closeCode === 1001);
  });
});

describe('LiveHub commands', () => {
  const calls: unknown[] = [];
  const commands: Pick<CommandService, 'execute'> = {
    execute: async (device, req, actor) => {
      calls.push({ device, req, actor });
      return { ok: true, cmdId: 'k1a20001', result: 'OK', detail: '', tries: 1 };
    },
  };
  beforeEach(() => setup({ commands }));

  it('runs a command for an operator and answers with the client reference', async () => {
    const c = connect({ role: 'operator' });
    await c.next('welcome');
    c.send({ type: 'command', id: 'r1', device: DEV, verb: 'SET', args: ['QB', 160], reason: 'flow' });
    expect(await c.next('commandResult')).toEqual({ type: 'commandResult', id: 'r1', status: 200, cmdId: 'k1a20001', result: 'OK', detail: '', tries: 1 });
    expect(calls.at(-1)).toEqual({ device: DEV, req: { verb: 'SET', args: ['QB', 160], reason: 'flow' }, actor: { user: 'operator1', role: 'operator' } });
  });

  it('refuses a viewer (403) without running anything', async () => {
    const n = calls.length;
    const c = connect({ role: 'viewer' });
    await c.next('welcome');
    c.send({ type: 'command', id: 7, device: DEV, verb: 'PAUSE', args: [] });
    expect(await c.next('commandResult')).toMatchObject({ id: 7, status: 403, error: 'forbidden' });
    expect(calls.length).toBe(n);
  });
});
