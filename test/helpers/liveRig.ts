/**
 * The gateway as deployed under a disk fault: its own process (with an LD_PRELOAD fault injector in `env`), MQTT
 * QoS 1 from simulated consoles through a real mosquitto, the journal on, and a WebSocket client that records
 * when each sample and alarm reaches it. Used by the slow- and stalled-disk tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startGatewayProcess, type GatewayProcess } from './gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from './mosquitto.js';
import { freePort } from './net.js';
import { waitFor } from './waitFor.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
export const RATE_HZ = 25;

export interface Arrival { device: string; seq: number; t: number; at: number }

export function summary(ages: number[]): { n: number; p50: number; p99: number } {
  const sorted = [...ages].sort((a, b) => a - b);
  return { n: sorted.length, p50: sorted[Math.floor(sorted.length / 2)], p99: sorted[Math.floor(sorted.length * 0.99)] };
}

export interface LiveRig {
  base: string;
  devices: string[];
  gw: GatewayProcess;
  sim: Simulator;
  arrivals: Arrival[];
  alarms: Array<{ rule: string; device: string; active: boolean; at: number }>;
  metric(name: string): Promise<number>;
  /**
   * Sample ages at the client for arrivals in [from, to): arrival minus device time, less the console's clock offset
   * (the simulator's clock starts a little after its epoch), estimated as the smallest difference seen before
   * `from` (transport delay only ever adds to it).
   */
  latencies(from: number, to: number): number[];
  /** Waits until `ms` of live data has arrived after `from`. */
  liveFor(from: number, ms: number, timeoutMs?: number): Promise<void>;
  /** Stops the consoles, waits until the gateway has every frame they sent, stops it, and checks the journal holds each sample. */
  journalHoldsEverySample(): Promise<Array<{ device: string; sent: number[]; stored: number[] }>>;
  stop(): Promise<void>;
}

export async function startLiveRig(opts: { name: string; devices: number; env: (base: string) => NodeJS.ProcessEnv }): Promise<LiveRig> {
  const token = randomBytes(32).toString('base64url');
  const devices = Array.from({ length: opts.devices }, (_, i) => `MSC-07${String(i + 1).padStart(2, '0')}`);
  const broker: MosquittoBroker = await startMosquitto();
  const base = mkdtempSync(join(tmpdir(), `msc-${opts.name}-`));
  const arrivals: Arrival[] = [];
  const alarms: LiveRig['alarms'] = [];
  let gw: GatewayProcess | null = null;
  let sim: Simulator | null = null;
  let ws: WebSocket | null = null;
  const stop = async () => {
    ws?.close();
    await sim?.stop();
    await gw?.kill('SIGKILL');
    await broker.stop();
    rmSync(base, { recursive: true, force: true });
  };
  try {
    const config = join(base, 'gateway.json');
    writeFileSync(config, JSON.stringify({
      mqtt: { url: broker.url, clientId: `gw-${opts.name}` },
      dataDir: join(base, 'data'),
      auth: { tokens: [{ name: 'viewer', role: 'viewer', sha256: createHash('sha256').update(token).digest('hex') }] },
      log: { level: 'warn' },
    }));
    const g = (gw = await startGatewayProcess(['--config', config], await freePort(), opts.env(base)));
    await waitFor(async () => ((await (await fetch(`${g.url}/healthz`)).json()) as { ready: boolean }).ready, { message: 'gateway subscribed' });
    const socket = (ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws`, { headers: { Authorization: `Bearer ${token}` } }));
    socket.on('message', (data) => {
      const at = Date.now();
      const m = JSON.parse(String(data)) as {
        type: string; device: string; seq: number; t: number; alarm?: { rule: string; device: string; active: boolean };
      };
      if (m.type === 'telemetry') arrivals.push({ device: m.device, seq: m.seq, t: m.t, at });
      if (m.type === 'alarm' && m.alarm) alarms.push({ rule: m.alarm.rule, device: m.alarm.device, active: m.alarm.active, at });
    });
    await new Promise<void>((resolve, reject) => { socket.once('open', () => resolve()); socket.once('error', reject); });
    socket.send(JSON.stringify({ type: 'subscribe', devices: '*' }));
    const s = (sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: devices, rate: RATE_HZ, batch: 1, autoRun: true, phases: FAST_PHASES, seed: 71, record: true,
    }));
    await waitFor(() => devices.every((d) => arrivals.some((a) => a.device === d)), { message: 'every console live' });
    const live = Date.now();
    await waitFor(() => arrivals[arrivals.length - 1].at > live + 1_000, { message: '1 s to learn the clock offsets' });
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${g.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    };
    return {
      base, devices, gw: g, sim: s, arrivals, alarms, metric, stop,
      latencies(from, to) {
        const offset = new Map<string, number>();
        for (const a of arrivals) if (a.at < from) offset.set(a.device, Math.min(offset.get(a.device) ?? Infinity, a.at - a.t));
        return arrivals.filter((a) => a.at >= from && a.at < to && offset.has(a.device)).map((a) => a.at - a.t - offset.get(a.device)!);
      },
      async liveFor(from, ms, timeoutMs = ms + 10_000) {
        await waitFor(() => arrivals.length > 0 && arrivals[arrivals.length - 1].at > from + ms, { timeoutMs, message: `${ms} ms of live data` });
      },
      async journalHoldsEverySample() {
        await s.stop();
        const sentSeqs = (id: string) => s.recorded(id).filter((r) => r.delivery === 'sent' && r.frame.type === 'T').map((r) => (r.frame as { seq: number }).seq);
        for (const id of devices) {
          await waitFor(async () => {
            const d = (await (await fetch(`${g.url}/api/devices/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { counters?: { telemetry?: number } };
            return d.counters?.telemetry === sentSeqs(id).length;
          }, { message: `${id}: the gateway received all it was sent` });
        }
        await g.kill('SIGTERM');
        const db = new Database(join(base, 'data', 'journal.sqlite'), { readonly: true, fileMustExist: true });
        try {
          return devices.map((id) => ({
            device: id,
            sent: [...sentSeqs(id)].sort((a, b) => a - b),
            stored: (db.prepare('SELECT seq FROM telemetry WHERE device = ? ORDER BY seq').all(id) as Array<{ seq: number }>).map((r) => r.seq),
          }));
        } finally {
          db.close();
        }
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
