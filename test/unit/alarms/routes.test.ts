import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/bus.js';
import { AlarmEngine } from '../../../src/alarms/engine.js';
import { alarmRoutes } from '../../../src/api/alarmRoutes.js';
import { ManualClock } from '../../../src/util/clock.js';

const OK = { PV: 100, PA: -100, QB: 150, SQB: 150, QP: 30, TMP: 40, DPR: 20, TR: 37, STR: 37, AIR: 0, BLD: 0 };
const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function setup(auditAvailable?: () => boolean) {
  const clock = new ManualClock(1_000_000);
  const bus = new EventBus();
  const engine = new AlarmEngine({ bus, devices: { get: () => undefined, list: () => [] }, clock });
  engine.start();
  const app = Fastify();
  apps.push(app);
  await app.register(alarmRoutes, {
    engine,
    actorOf: (req) => ({ user: String(req.headers['x-user'] ?? 'anonymous'), role: 'operator' }),
    auditAvailable,
  });
  await app.ready();
  let seq = 0;
  const frame = (v: Record<string, number>, device = 'D1') =>
    bus.emit('telemetry', { deviceId: device, sessionId: 'S1', seq: seq++, t: clock.now(), rx: clock.now(), v });
  bus.emit('state', { deviceId: 'D1', seq: seq++, t: clock.now(), rx: clock.now(), state: 'RUNNING', sessionId: 'S1', previous: null });
  frame({ ...OK, AIR: 1 });
  return { app, engine, clock, frame };
}

const AIR = encodeURIComponent('D1:AIR_IN_LINE');

describe('alarm routes', () => {
  it('refuses shelve and out-of-service (503) while the audit trail cannot be written; ack still works', async () => {
    const { app } = await setup(() => false);
    const shelve = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/shelve`, payload: { minutes: 30, reason: 'x' } });
    expect(shelve.statusCode).toBe(503);
    expect(shelve.json().error).toBe('audit_unavailable');
    const oos = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/out-of-service`, payload: { reason: 'x' } });
    expect(oos.statusCode).toBe(503);
    const ack = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/ack`, payload: {} });
    expect(ack.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/alarms' })).json().alarms[0].state).toBe('ACKED');
  });


  it('GET /api/alarms lists active alarms with the documented fields, filtered by device and state', async () => {
    const { app, frame } = await setup();
    frame(OK);
    frame({ ...OK, AIR: 1 }, 'D2');
    const res = await app.inject({ method: 'GET', url: '/api/alarms?device=D1' });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { alarms: Array<Record<string, unknown>> };
    expect(body.alarms).toHaveLength(1);
    const a = body.alarms[0];
    for (const k of ['id', 'device', 'rule', 'source', 'priority', 'state', 'raisedAt', 'clearedAt', 'value', 'limit', 'message', 'ackedBy', 'ackedAt']) {
      expect(a).toHaveProperty(k);
    }
    expect(a).toMatchObject({ id: 'D1:AIR_IN_LINE', device: 'D1', rule: 'AIR_IN_LINE', source: 'process', priority: 'HIGH', state: 'RTN_UNACK' });
    expect((await app.inject({ method: 'GET', url: '/api/alarms' })).json().alarms).toHaveLength(2);
    expect((await app.inject({ method: 'GET', url: '/api/alarms?state=bogus' })).statusCode).toBe(400);
  });

  it('state=all includes NORMAL instances', async () => {
    const { app, frame } = await setup();
    frame(OK);
    await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/ack`, payload: {} });
    expect((await app.inject({ method: 'GET', url: '/api/alarms' })).json().alarms).toHaveLength(0);
    const all = (await app.inject({ method: 'GET', url: '/api/alarms?state=all' })).json().alarms;
    expect(all).toMatchObject([{ id: 'D1:AIR_IN_LINE', state: 'NORMAL' }]);
  });

  it('POST ack records the actor; a second ack is 409; an unknown alarm is 404', async () => {
    const { app } = await setup();
    const res = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/ack`, headers: { 'x-user': 'nurse1' }, payload: { reason: 'seen' } });
    expect(res.statusCode).toBe(200);
    expect(res.json().alarm).toMatchObject({ state: 'ACKED', ackedBy: 'nurse1' });
    expect((await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/ack` })).statusCode).toBe(409);
    const missing = await app.inject({ method: 'POST', url: '/api/alarms/D1:NOPE/ack' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
  });

  it('POST shelve validates its body with field paths; shelve and unshelve', async () => {
    const { app } = await setup();
    const bad = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/shelve`, payload: { minutes: 600, reason: '' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().issues.map((i: { path: string }) => i.path).sort()).toEqual(['minutes', 'reason']);
    const extra = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/shelve`, payload: { minutes: 5, reason: 'x', until: 1 } });
    expect(extra.json().issues).toMatchObject([{ path: 'until' }]);
    const ok = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/shelve`, payload: { minutes: 30, reason: 'detector being replaced' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().alarm).toMatchObject({ state: 'SHELVED', shelveReason: 'detector being replaced' });
    const un = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/unshelve` });
    expect(un.json().alarm.state).toBe('UNACK');
    expect((await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/unshelve` })).statusCode).toBe(409);
  });

  it('out of service needs a reason; return to service', async () => {
    const { app } = await setup();
    expect((await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/out-of-service`, payload: {} })).statusCode).toBe(400);
    const oos = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/out-of-service`, payload: { reason: 'sensor swap' } });
    expect(oos.json().alarm.state).toBe('OUT_OF_SERVICE');
    const rts = await app.inject({ method: 'POST', url: `/api/alarms/${AIR}/return-to-service` });
    expect(rts.json().alarm.state).toBe('UNACK');
  });

  it('POST /api/devices/:id/audio-pause pauses 120 s; unknown device 404', async () => {
    const { app, clock } = await setup();
    const res = await app.inject({ method: 'POST', url: '/api/devices/D1/audio-pause' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ deviceId: 'D1', until: clock.now() + 120_000 });
    expect((await app.inject({ method: 'POST', url: '/api/devices/NOPE/audio-pause' })).statusCode).toBe(404);
  });

  it('GET /api/alarms/:id', async () => {
    const { app } = await setup();
    expect((await app.inject({ method: 'GET', url: `/api/alarms/${AIR}` })).json().alarm.id).toBe('D1:AIR_IN_LINE');
    expect((await app.inject({ method: 'GET', url: '/api/alarms/x' })).statusCode).toBe(404);
  });

  it('GET /api/alarms/profile shows the profile in force, or the rules of one device', async () => {
    const { app } = await setup();
    const all = (await app.inject({ method: 'GET', url: '/api/alarms/profile' })).json();
    expect(all.profile.rules.map((r: { id: string }) => r.id)).toContain('PV_HIGH');
    expect(all.profile.technical.audioPauseS).toBe(120);
    const one = (await app.inject({ method: 'GET', url: '/api/alarms/profile?device=D1' })).json();
    expect(one).toMatchObject({ device: 'D1', model: null });
    expect(one.rules.find((r: { id: string }) => r.id === 'PV_HIGH')).toMatchObject({ limit: 250, onDelayS: 2 });
  });
});
