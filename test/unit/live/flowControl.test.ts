/**
 * A slow client never slows the gateway or the other clients: real ws clients on loopback, one of
 * them with its socket paused, against a real LiveHub fed by a real EventBus and DeviceHub.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AlarmInstance } from '../../../src/alarms/types.js';
import { TokenStore } from '../../../src/auth/tokenStore.js';
import { EventBus } from '../../../src/bus.js';
import { LiveHub, type LiveHubOptions } from '../../../src/live/liveHub.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import { waitFor } from '../../helpers/waitFor.js';
import { helloFrame } from '../../helpers/hello.js';
import { metricsTextOf } from '../../../src/metrics.js';

type Msg = Record<string, any>;
const DEVICES = Array.from({ length: 24 }, (_, i) => `MSC-${String(i + 1).padStart(4, '0')}`);
/** ~60 channels: about 1 KB per telemetry message, as with newer firmware that adds channels. */
const CHANNELS = Array.from({ length: 60 }, (_, i) => `CH${i}`);
const link: DeviceLink = { kind: 'mqtt', source: 'mqtt://test', send: async () => {} };

let dir: string;
let app: FastifyInstance;
let bus: EventBus;
let hub: DeviceHub;
let live: LiveHub;
let token: string;
let store: TokenStore;
let url: string;
const seqs = new Map<string, number>();
const sockets: WebSocket[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'msc-flow-'));
  store = new TokenStore({ dataDir: dir });
  store.start();
  const r = store.add('viewer1', 'viewer', { user: 'setup', role: 'admin' });
  if (!r.ok) throw new Error(r.reason);
  token = r.value.token;
  bus = new EventBus();
  hub = new DeviceHub({ bus, logger: silentLogger() });
  seqs.clear();
  for (const d of DEVICES) await sample(d);
  app = Fastify();
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`;
  const opts: LiveHubOptions = { bus, devices: hub, tokens: store, logger: silentLogger() };
  live = new LiveHub(opts);
  live.start(app.server);
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await live.stop();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

function sample(device: string): Promise<void> {
  const seq = (seqs.get(device) ?? 0) + 1;
  seqs.set(device, seq);
  const v: Record<string, number> = {};
  for (const c of CHANNELS) v[c] = Math.round(Math.random() * 1e6) / 1000;
  const hello = hub.has(device) ? [] : [helloFrame(device)];
  return hub.ingest(device, [...hello, { type: 'T', seq, t: Date.now(), v }], link);
}

async function client() {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  sockets.push(ws);
  const msgs: Msg[] = [];
  const latencies: number[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d));
    if (m.type === 'telemetry') latencies.push(Date.now() - m.t);
    msgs.push(m);
  });
  ws.on('error', () => {});
  await waitFor(() => msgs.some((m) => m.type === 'welcome'));
  ws.send(JSON.stringify({ type: 'subscribe', devices: '*' }));
  await waitFor(() => msgs.some((m) => m.type === 'snapshot'));
  const socket = (ws as unknown as { _socket: Socket })._socket;
  return { ws, msgs, latencies, socket };
}

/** One round: a sample from every console (24 consoles at a time), then a short pause as a device rate would. */
async function round(): Promise<void> {
  for (const d of DEVICES) await sample(d);
  await new Promise((r) => setTimeout(r, 4));
}

const telemetrySeqs = (msgs: Msg[], device: string) => msgs.filter((m) => m.type === 'telemetry' && m.device === device).map((m) => m.seq as number);
const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await metricsTextOf((r) => live.registerMetrics(r)))?.[1] ?? NaN);

describe('slow live client', () => {
  it('is conflated while a normal client receives every sample in order and on time; nothing critical is dropped', async () => {
    const slow = await client();
    const normal = await client();
    const firstSeq = new Map(DEVICES.map((d) => [d, seqs.get(d)! + 1]));
    slow.socket.pause();

    // Produce until the slow client's socket backlog forces conflation (kernel buffers fill first), then more.
    const deadline = Date.now() + 60_000;
    while ((await metric('msc_ws_conflations_total')) < 1) {
      if (Date.now() > deadline) throw new Error('the slow client was never conflated');
      await round();
    }
    const alarm: AlarmInstance = {
      id: 'MSC-0003:AIR', device: 'MSC-0003', rule: 'AIR', source: 'device', priority: 'HIGH', state: 'UNACK', active: true,
      latching: true, raisedAt: Date.now(), clearedAt: null, value: 1, limit: null, message: 'Air in line', ackedBy: null,
      ackedAt: null, shelvedUntil: null, sessionId: null,
    };
    for (let i = 0; i < 40; i++) {
      await round();
      if (i === 10) bus.emit('alarm', { kind: 'raise', at: Date.now(), from: 'NORMAL', to: 'UNACK', alarm, actor: null, reason: null });
      if (i === 20) await hub.ingest('MSC-0003', [{ type: 'S', seq: seqs.get('MSC-0003')! + 1000, t: Date.now(), state: 'PAUSED', sessionId: 'S-9' }], link);
      if (i === 30) hub.linkDown('MSC-0007', 'cable pulled');
    }
    const lastSeq = new Map(DEVICES.map((d) => [d, seqs.get(d)!]));

    // The normal client: every sample of every console, in order, and on time.
    await waitFor(() => DEVICES.every((d) => telemetrySeqs(normal.msgs, d).at(-1) === lastSeq.get(d)), { timeoutMs: 20_000, message: 'normal client behind' });
    for (const d of DEVICES) {
      const got = telemetrySeqs(normal.msgs, d);
      const want = Array.from({ length: lastSeq.get(d)! - firstSeq.get(d)! + 1 }, (_, i) => firstSeq.get(d)! + i);
      expect(got).toEqual(want);
    }
    const sorted = [...normal.latencies].sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length * 0.99)]).toBeLessThan(500);
    expect(normal.msgs.some((m) => m.type === 'conflated')).toBe(false);

    // The slow client resumes: it was told, it gets the alarm, state and link messages, and the latest samples.
    slow.socket.resume();
    await waitFor(() => slow.msgs.some((m) => m.type === 'conflated' && m.active === false), { timeoutMs: 30_000, message: 'slow client never resumed' });
    await waitFor(() => DEVICES.every((d) => telemetrySeqs(slow.msgs, d).at(-1) === lastSeq.get(d)), { timeoutMs: 10_000 });
    const notice = slow.msgs.find((m) => m.type === 'conflated' && m.active === true);
    expect(notice?.devices).toEqual(expect.arrayContaining(DEVICES));
    expect(slow.msgs.filter((m) => m.type === 'alarm')).toEqual([expect.objectContaining({ device: 'MSC-0003', kind: 'raise' })]);
    expect(slow.msgs.filter((m) => m.type === 'state')).toEqual([expect.objectContaining({ device: 'MSC-0003', state: 'PAUSED' })]);
    // The console's next frame brings its link back: both transitions arrive, in order.
    expect(slow.msgs.filter((m) => m.type === 'link').map((m) => `${m.device} ${m.link}`)).toEqual(['MSC-0007 lost', 'MSC-0007 connected']);
    const resumed = slow.msgs.find((m) => m.type === 'conflated' && m.active === false)!;
    expect(resumed.dropped).toBeGreaterThan(0);
    let slowCount = 0;
    for (const d of DEVICES) {
      const got = telemetrySeqs(slow.msgs, d);
      slowCount += got.length;
      for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1]);
    }
    expect(slowCount).toBeLessThan(telemetrySeqs(normal.msgs, DEVICES[0]).length * DEVICES.length);
    expect(await metric('msc_ws_telemetry_dropped_total')).toBeGreaterThan(0);
  }, 120_000);

  it('disconnects a client that stays over the hard limit (1013), without touching the others', async () => {
    await live.stop();
    live = new LiveHub({
      bus, devices: hub, tokens: store, logger: silentLogger(),
      flow: { softBytes: 64 * 1024, lowBytes: 16 * 1024, hardBytes: 512 * 1024, hardMs: 300 },
    });
    live.start(app.server);
    const slow = await client();
    const normal = await client();
    slow.socket.pause();
    // Device events are never dropped, so only they can push a backlog past the hard bound.
    const text = 'x'.repeat(1000);
    const deadline = Date.now() + 60_000;
    let n = 0;
    while (live.clientCount > 1) {
      if (Date.now() > deadline) throw new Error('slow client never disconnected');
      for (let i = 0; i < 200; i++) {
        await hub.ingest('MSC-0001', [{ type: 'EV', seq: 100_000 + n++, t: Date.now(), code: 'INFO', prio: 'I', active: true, text }], link);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await metricsTextOf((r) => live.registerMetrics(r))).toMatch(/msc_ws_disconnects_total\{reason="slow"\} 1/);
    await waitFor(() => normal.msgs.filter((m) => m.type === 'event').length === n, { timeoutMs: 20_000 });
    expect(normal.ws.readyState).toBe(WebSocket.OPEN);
  }, 120_000);
});
