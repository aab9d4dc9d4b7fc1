/**
 * Operations: /healthz tells live from ready with reasons, and SIGTERM to the built CLI commits the
 * journal's last batch and closes connected WebSockets with 1001 (going away) before exiting 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-D001';
let dir: string;
let broker: MosquittoBroker;
let sim: Simulator | null = null;
let gw: GatewayProcess | null = null;
let token: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'msc-shutdown-'));
  broker = await startMosquitto();
  const made = await runCli(['tokens', 'add', '--name', 'ops', '--role', 'viewer', '--data-dir', dir]);
  expect(made.code, made.stderr).toBe(0);
  token = made.stdout.trim();
});

afterAll(async () => {
  await sim?.stop();
  await gw?.kill('SIGKILL');
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('health and graceful shutdown of the msc-gateway process', () => {
  it('/healthz: live but not ready while the broker is unreachable, with the reason', async () => {
    const deadPort = await freePort();
    const port = await freePort();
    const made = await runCli(['tokens', 'add', '--name', 'ops', '--role', 'viewer', '--data-dir', join(dir, 'down')]);
    expect(made.code, made.stderr).toBe(0);
    const p = await startGatewayProcess(['--mqtt', `mqtt://127.0.0.1:${deadPort}`, '--data-dir', join(dir, 'down'), '--log-level', 'warn'], port);
    try {
      // Without a token: live, ready and the reasons, nothing else.
      const h = await (await fetch(`${p.url}/healthz`)).json();
      expect(h).toEqual({ live: true, ready: false, status: 'degraded', reasons: [expect.stringMatching(/mqtt .* down/)] });
      // With one (any role): the full report.
      const full = await (await fetch(`${p.url}/healthz`, { headers: { authorization: `Bearer ${made.stdout.trim()}` } })).json();
      expect(full.journal.writable).toBe(true);
      expect(full.transports).toEqual([expect.objectContaining({ kind: 'mqtt', up: false })]);
    } finally {
      expect(await p.kill('SIGTERM')).toBe(0);
    }
  });

  it('SIGTERM: the last journal batch is committed, WebSockets close with 1001, exit 0', async () => {
    const port = await freePort();
    gw = await startGatewayProcess(['--mqtt', broker.url, '--mqtt-client-id', `gw-shutdown-${process.pid}`, '--data-dir', dir, '--log-level', 'warn'], port);
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEV], rate: 50, autoRun: true, phases: { selftestMs: 100, primingMs: 100 } });
    const auth = { authorization: `Bearer ${token}` };
    const device = async () => (await (await fetch(`${gw!.url}/api/devices/${DEV}`, { headers: auth })).json()) as any;
    await waitFor(async () => (await device()).state === 'RUNNING', { timeoutMs: 20_000, message: 'RUNNING' });
    const health = await (await fetch(`${gw.url}/healthz`)).json();
    expect(health).toMatchObject({ live: true, ready: true, status: 'ok', reasons: [] });

    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: auth });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });

    // Samples keep arriving at 50 Hz: what the gateway had accepted when asked must all be in the journal.
    const accepted = (await device()).counters.telemetry as number;
    expect(accepted).toBeGreaterThan(0);
    const code = await gw.kill('SIGTERM');
    expect(code).toBe(0);
    expect(await closed).toBe(1001);

    const db = new Database(join(dir, 'journal.sqlite'), { readonly: true });
    try {
      const rows = (db.prepare('SELECT count(*) AS n FROM telemetry WHERE device = ?').get(DEV) as { n: number }).n;
      expect(rows).toBeGreaterThanOrEqual(accepted);
    } finally {
      db.close();
    }
  });
});
