/**
 * Live-stream cost: 24 simulated consoles at 25 Hz through a real DeviceHub, EventBus and
 * LiveHub to 50 real WebSocket clients on loopback. Reports p50/p99 latency from the sample's device time
 * (device time = gateway clock here) to receipt by a client, and the gateway's CPU and RSS.
 * Targets: p99 < 20 ms, RSS < 150 MB.
 * The gateway and the clients each run in their own child process, so the gateway's CPU and memory are measured
 * honestly (not mixed with the clients' JSON work or with the bench runner's other modules).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import WebSocket from 'ws';
import { TokenStore } from '../src/auth/tokenStore.js';
import { EventBus } from '../src/bus.js';
import { LiveHub } from '../src/live/liveHub.js';
import { silentLogger } from '../src/log.js';
import { DeviceHub } from '../src/model/deviceHub.js';
import type { DeviceLink } from '../src/model/types.js';
import type { BenchResult } from './types.js';

const CONSOLES = 24;
const RATE_HZ = 25;
const CLIENTS = 50;
const WARMUP_MS = 2000;
const MEASURE_MS = 10_000;

/** Wall-clock time with sub-millisecond resolution, comparable across processes on one machine. */
const wallNow = () => performance.timeOrigin + performance.now();

type Msg = { type: string; [k: string]: unknown };
const send = (m: Msg) => process.send?.(m);

function waitMessage(child: ChildProcess, type: string, timeoutMs = 60_000): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench child did not send ${type} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: Msg) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`bench child exited (${code}) before ${type}`)));
  });
}

/** ICD §1 channels of a RUNNING console, values jittered around typical ones. */
function frameValues(): Record<string, number> {
  const j = (mid: number, span: number) => Math.round((mid + (Math.random() - 0.5) * span) * 100) / 100;
  return {
    QB: j(150, 2), QP: j(30, 1), QR: j(200, 2), PA: j(-85, 2), PF: j(142, 2), PV: j(118, 2), PP: j(86, 2), TMP: j(44, 1),
    DPR: j(25, 1), TR: j(37, 0.05), TB: j(36.6, 0.05), HEP: 5, AIR: 0, BLD: 0, PH: j(7.38, 0.02), DO: j(80, 2),
    SQB: 150, SQP: 30, STR: 37, SHEP: 5,
  };
}

/** Child 1: the gateway side, with the consoles feeding its DeviceHub. */
async function gatewayMain(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'msc-bench-stream-'));
  const tokens = new TokenStore({ dataDir: dir });
  tokens.start();
  const added = tokens.add('bench', 'viewer', { user: 'bench', role: 'admin' });
  if (!added.ok) throw new Error(added.reason);
  const bus = new EventBus();
  const logger = silentLogger();
  const hub = new DeviceHub({ bus, logger });
  hub.start();
  const app = Fastify();
  const live = new LiveHub({ bus, devices: hub, tokens, logger });
  await app.listen({ host: '127.0.0.1', port: 0 });
  live.start(app.server);
  const link: DeviceLink = { kind: 'serial', source: '/dev/null', send: async () => {} };
  const ids = Array.from({ length: CONSOLES }, (_, i) => `MSC-${String(i + 1).padStart(4, '0')}`);
  const seq = new Array<number>(CONSOLES).fill(0);
  // The hub makes a console of an id only after its HELLO.
  for (const id of ids) void hub.ingest(id, [{ type: 'HELLO', deviceId: id, model: 'MSC-ALS 2', fw: 'bench', icd: 1, serialNo: id }], link);
  const period = 1000 / RATE_HZ;
  let due: number[] = [];
  let producer: NodeJS.Timeout | null = null;
  let emitted = 0;
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  let rssMax = 0;
  const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage().rss); }, 250);

  process.on('message', (m: Msg) => {
    if (m.type === 'start') {
      // Consoles are not in phase with each other: each starts at a random point of its period.
      const now = performance.now();
      due = ids.map(() => now + Math.random() * period);
      producer = setInterval(() => {
        const t = performance.now();
        for (let i = 0; i < CONSOLES; i++) {
          while (due[i] <= t) {
            due[i] += period;
            void hub.ingest(ids[i], [{ type: 'T', seq: ++seq[i], t: wallNow(), v: frameValues() }], link);
            emitted++;
          }
        }
      }, 2);
    } else if (m.type === 'measure') {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      rssMax = process.memoryUsage().rss;
      emitted = 0;
    } else if (m.type === 'report') {
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'report', cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100, rssMb: rssMax / 2 ** 20, emitted, wallMs,
        conflations: live.stats.conflations, dropped: live.stats.dropped });
    } else if (m.type === 'stop') {
      if (producer) clearInterval(producer);
      clearInterval(rssTimer);
      void live.stop().then(() => app.close()).then(() => {
        hub.stop();
        rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      });
    }
  });
  send({ type: 'ready', url: `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`, token: added.value.token });
}

/** Child 2: the clients; they read `t` straight from the bytes so their parsing cost stays small. */
async function clientsMain(url: string, token: string): Promise<void> {
  let recording = false;
  let latencies = new Float64Array(1 << 20);
  let n = 0;
  let received = 0;
  const T_KEY = Buffer.from('"t":');
  const sockets: WebSocket[] = [];
  await Promise.all(Array.from({ length: CLIENTS }, () => new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    sockets.push(ws);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', devices: '*' })));
    ws.on('message', (data: Buffer) => {
      const rx = wallNow();
      if (data[9] !== 0x74 /* {"type":"t… */) {
        if (String(data).includes('"snapshot"')) resolve();
        return;
      }
      if (!recording) return;
      const at = data.indexOf(T_KEY);
      const end = data.indexOf(0x2c, at);
      const t = Number(data.toString('latin1', at + 4, end));
      received++;
      if (n === latencies.length) {
        const bigger = new Float64Array(n * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[n++] = rx - t;
    });
  })));
  process.on('message', (m: Msg) => {
    if (m.type === 'measure') recording = true;
    else if (m.type === 'report') {
      recording = false;
      const sorted = latencies.subarray(0, n).sort();
      const q = (p: number) => sorted[Math.min(n - 1, Math.floor(p * n))];
      send({ type: 'report', received, p50: q(0.5), p99: q(0.99), max: sorted[n - 1] });
    } else if (m.type === 'stop') {
      for (const s of sockets) s.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  send({ type: 'connected' });
}

export async function run(): Promise<BenchResult[]> {
  const self = fileURLToPath(import.meta.url);
  const gateway = fork(self, ['--stream-gateway'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let clients: ChildProcess | null = null;
  try {
    const ready = await waitMessage(gateway, 'ready');
    clients = fork(self, ['--stream-clients', String(ready.url), String(ready.token)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await waitMessage(clients, 'connected');
    gateway.send({ type: 'start' });
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    gateway.send({ type: 'measure' });
    clients.send({ type: 'measure' });
    await new Promise((r) => setTimeout(r, MEASURE_MS));
    const reports = Promise.all([waitMessage(gateway, 'report'), waitMessage(clients, 'report')]);
    clients.send({ type: 'report' });
    gateway.send({ type: 'report' });
    const [g, c] = await reports;
    const emitted = Number(g.emitted);
    const perS = (Number(c.received) / Number(g.wallMs)) * 1000;
    const setup = `${CONSOLES} consoles x ${RATE_HZ} Hz, ${CLIENTS} ws clients on loopback, ${MEASURE_MS / 1000} s`;
    return [
      { name: 'stream.latency_p50', value: Number(c.p50), unit: 'ms', note: setup },
      { name: 'stream.latency_p99', value: Number(c.p99), unit: 'ms', target: '< 20' },
      { name: 'stream.latency_max', value: Number(c.max), unit: 'ms' },
      { name: 'stream.gateway_cpu', value: Number(g.cpuPct), unit: '% of one core', note: 'hub + live hub + 24 simulated consoles' },
      { name: 'stream.gateway_rss', value: Number(g.rssMb), unit: 'MB', target: '< 150' },
      { name: 'stream.messages_delivered', value: perS, unit: 'msg/s', baseline: `${CONSOLES * RATE_HZ * CLIENTS} offered` },
      {
        name: 'stream.delivered_ratio', value: Number(c.received) / (emitted * CLIENTS), unit: 'ratio', target: '~1',
        note: `conflations ${g.conflations}, conflated away ${g.dropped} (counted from the measure window on both sides)`,
      },
    ];
  } finally {
    for (const p of [clients, gateway]) if (p?.connected) p.send({ type: 'stop' });
    await Promise.all([gateway, clients].map((p) => p && p.exitCode === null
      ? new Promise((r) => { p.once('exit', r); setTimeout(() => { p.kill(); r(null); }, 5000).unref(); })
      : null));
  }
}

const role = process.argv[2];
if (role === '--stream-gateway') {
  gatewayMain().catch((err) => { process.stderr.write(`${(err as Error).stack}\n`); process.exit(1); });
} else if (role === '--stream-clients') {
  clientsMain(process.argv[3], process.argv[4]).catch((err) => { process.stderr.write(`${(err as Error).stack}\n`); process.exit(1); });
}
