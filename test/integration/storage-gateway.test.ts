/**
 * Nothing lost, end to end: simulated consoles -> MQTT QoS 1 -> the gateway's journal -> InfluxDB,
 * through an InfluxDB outage, a gateway restart and a `kill -9` of the gateway during ingest.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import type { TelemetryFrame } from '../../src/protocol/types.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startGatewayProcess } from '../helpers/gatewayProcess.js';
import { startInfluxd, type InfluxdHandle } from '../helpers/influxd.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { assertPrometheusText } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/waitFor.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
const BACKLOG_ZERO = /^msc_forwarder_backlog_lines(\{[^}]*\})? 0$/m;

function sentTelemetry(sim: Simulator, id: string): TelemetryFrame[] {
  return sim.recorded(id).filter((r) => r.delivery === 'sent' && r.frame.type === 'T').map((r) => r.frame as TelemetryFrame);
}

describe('storage end to end', () => {
  let broker: MosquittoBroker;
  let influx: InfluxdHandle;

  beforeAll(async () => {
    [broker, influx] = await Promise.all([startMosquitto(), startInfluxd()]);
  });
  afterAll(async () => {
    await Promise.allSettled([broker?.stop(), influx?.dispose()]);
  });

  it('InfluxDB holds exactly what the simulator sent, by count and value, through an InfluxDB outage', async () => {
    const db = `msc_e2e_${randomBytes(3).toString('hex')}`;
    const gw = await startTestGateway({
      mqtt: { url: broker.url, clientId: `gw-${db}` },
      influx: { url: `${influx.url}/${db}`, batchMs: 200 },
    });
    const ids = ['MSC-0301', 'MSC-0302'];
    const sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: ids, rate: 25, autoRun: true, phases: FAST_PHASES, seed: 11, record: true,
    });
    try {
      await waitFor(async () => (await gw.get('/api/devices/MSC-0301')).body.counters?.telemetry > 50, { message: 'first samples' });
      await waitFor(() => gw.gateway.forwarder!.status().written > 0, { message: 'forwarder wrote' });

      await influx.stop();
      await waitFor(() => gw.gateway.forwarder!.status().errors > 0, { message: 'forwarder saw the outage' });
      const during = gw.gateway.hub.get('MSC-0301')!.counters.telemetry;
      await waitFor(() => gw.gateway.hub.get('MSC-0301')!.counters.telemetry > during + 50, { message: 'ingest goes on during the outage' });
      await influx.start();

      await waitFor(async () => (await gw.get('/api/devices/MSC-0302')).body.counters.telemetry > during + 100, { message: 'more samples' });
      await sim.stop();
      for (const id of ids) {
        const expected = sentTelemetry(sim, id).length;
        await waitFor(() => gw.gateway.hub.get(id)!.counters.telemetry === expected, { message: `${id} received all ${expected}` });
      }
      // The consoles' stop publishes `status offline`: a COMM_LOSS raise per console is journaled after the last
      // sample, so "drained" means drained of those too, as /metrics reports it (the figure the test asserts).
      await waitFor(async () => {
        const active = (await gw.get<{ alarms: Array<{ device: string; rule: string }> }>('/api/alarms?state=active')).body.alarms;
        return ids.every((id) => active.some((a) => a.device === id && a.rule === 'COMM_LOSS'));
      }, { message: 'COMM_LOSS after the consoles went offline' });
      // Active in the alarm book is not yet committed: the journal commits every 100 ms on its writer thread. Wait for
      // the commit, or the backlog can read 0 before those rows land and grow by them after `before` below.
      await gw.gateway.journal!.committed();
      let metrics = '';
      await waitFor(async () => {
        metrics = (await gw.get<string>('/metrics')).body;
        return gw.gateway.forwarder!.status().lines === 0 && BACKLOG_ZERO.test(metrics);
      }, { timeoutMs: 30_000, message: 'backlog drained, as /metrics reports it' });

      for (const id of ids) {
        const sent = sentTelemetry(sim, id);
        const res = await influx.query(`SELECT * FROM telemetry WHERE device = '${id}' ORDER BY time ASC`, db);
        const series = res.results[0].series[0] as { columns: string[]; values: unknown[][] };
        const col = (name: string) => series.columns.indexOf(name);
        expect(series.values.length, `${id}: points in InfluxDB`).toBe(sent.length);
        const bySeq = new Map(series.values.map((row) => [row[col('seq')] as number, row]));
        expect(bySeq.size).toBe(sent.length); // no duplicates
        for (const f of sent) {
          const row = bySeq.get(f.seq);
          expect(row, `${id} seq ${f.seq}`).toBeDefined();
          expect(row![col('time')]).toBe(f.t);
          for (const [k, v] of Object.entries(f.v)) {
            if (v === null) expect(String(row![col('faults')])).toContain(k);
            else expect(row![col(k)], `${id} seq ${f.seq} ${k}`).toBe(v);
          }
        }
      }
      assertPrometheusText(metrics);
      expect(metrics).toMatch(BACKLOG_ZERO);

      // The forwarder's status, /healthz and /metrics compute the backlog when asked: rows committed a moment ago
      // are in all three at once, with no timer between (one turn of the event loop: nothing else lands meanwhile).
      // The journal's writer thread commits asynchronously: committed() resolves once the rows are in the database.
      const journal = gw.gateway.journal!;
      const before = gw.gateway.forwarder!.status().lines;
      for (let i = 0; i < 3; i++) journal.appendState({ deviceId: 'MSC-0301', sessionId: null, seq: 900_000 + i, t: Date.now(), rx: Date.now(), state: 'IDLE', previous: null });
      await journal.committed();
      const status = gw.gateway.forwarder!.status().lines;
      const health = gw.gateway.health().forwarder!.lines;
      const metricLines = Number(/^msc_forwarder_backlog_lines (\d+)$/m.exec(await gw.gateway.metricsText())?.[1]);
      expect({ status, health, metricLines }).toEqual({ status: before + 3, health: before + 3, metricLines: before + 3 });
    } finally {
      await sim.stop();
      await gw.stop();
    }
  });

  it('a gateway killed with SIGKILL during MQTT QoS 1 ingest and restarted loses nothing and stores nothing twice', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'msc-kill-'));
    const id = 'MSC-0401';
    const args = ['--mqtt', broker.url, '--mqtt-client-id', 'gw-kill9', '--data-dir', dataDir, '--log-level', 'warn'];
    const journalRows = () => {
      const db = new Database(join(dataDir, 'journal.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT seq, t FROM telemetry WHERE device = ? ORDER BY seq').all(id) as Array<{ seq: number; t: number }>;
      } finally {
        db.close();
      }
    };
    // The gateway's persistent session must exist before the console publishes: the broker queues only for it.
    let gw = await startGatewayProcess(args, await freePort());
    await waitFor(async () => (await (await fetch(`${gw.url}/healthz`)).json()).ready, { message: 'subscribed' });
    const sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: [id], rate: 50, autoRun: true, phases: FAST_PHASES, seed: 12, record: true,
    });
    try {
      await waitFor(() => journalRows().length > 100, { message: 'journal filling' });
      await gw.kill('SIGKILL');
      // The console goes on publishing at QoS 1 while the gateway is dead: the broker queues it for the session.
      const sentAtKill = sentTelemetry(sim, id).length;
      await waitFor(() => sentTelemetry(sim, id).length > sentAtKill + 100, { message: 'samples published while the gateway is dead' });
      gw = await startGatewayProcess(args, await freePort());
      await waitFor(() => journalRows().length > sentAtKill + 50, { message: 'restarted gateway stores again' });
      await sim.stop();
      const sent = sentTelemetry(sim, id);
      await waitFor(() => journalRows().length >= sent.length, { timeoutMs: 20_000, message: `journal holds all ${sent.length}` }).catch((e) => {
        const have = new Set(journalRows().map((r) => r.seq));
        const missing = sent.filter((f) => !have.has(f.seq)).map((f) => f.seq);
        throw new Error(`${(e as Error).message}; have ${have.size}, missing ${missing.length}: ${missing.slice(0, 40).join(',')}…; logs: ${JSON.stringify(gw.logs.slice(-5))}`);
      });
      await gw.kill('SIGTERM');
      const rows = journalRows();
      expect(rows.length).toBe(sent.length);
      expect(rows.map((r) => `${r.seq}@${r.t}`)).toEqual(sent.map((f) => `${f.seq}@${f.t}`).sort((a, b) => Number(a.split('@')[0]) - Number(b.split('@')[0])));
    } finally {
      await sim.stop();
      await gw.kill('SIGKILL');
    }
  });

  it('an unwritable data directory gives a clear error and a technical alarm, not a crash loop; live data keeps flowing', async () => {
    const base = mkdtempSync(join(tmpdir(), 'msc-unwritable-'));
    const blocker = join(base, 'not-a-dir');
    writeFileSync(blocker, 'a file where the data directory should be');
    const token = randomBytes(32).toString('base64url');
    const config = join(base, 'gateway.json');
    writeFileSync(config, JSON.stringify({
      mqtt: { url: broker.url, clientId: 'gw-unwritable' },
      dataDir: join(blocker, 'data'),
      auth: { tokens: [{ name: 'ops', role: 'admin', sha256: createHash('sha256').update(token).digest('hex') }] },
    }));
    const sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, deviceIds: ['MSC-0501'], autoRun: true, phases: FAST_PHASES, seed: 13 });
    const gw = await startGatewayProcess(['--config', config], await freePort());
    const get = async (path: string) => (await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } })).json();
    try {
      const alarms = await waitFor(async () => {
        const a = (await get('/api/alarms?state=active&device=gateway')).alarms as Array<{ rule: string; source: string; priority: string }>;
        return a.some((x) => x.rule === 'STORAGE_FAILURE') ? a : null;
      }, { message: 'STORAGE_FAILURE alarm' });
      expect(alarms.find((x) => x.rule === 'STORAGE_FAILURE')!.source).toBe('technical');
      const health = await (await fetch(`${gw.url}/healthz`)).json();
      expect(health.ready).toBe(false);
      expect(health.reasons.join(' ')).toMatch(/journal not writable/);
      const errorLines = gw.logs.filter((l) => Number(l.level) >= 50 && /journal|data/i.test(String(l.msg)));
      expect(errorLines.length).toBeGreaterThanOrEqual(1);
      // The live view keeps working.
      await waitFor(async () => (await get('/api/devices/MSC-0501')).values?.QB?.v > 0, { message: 'live values without a journal' });
      // Every route that reads the journal answers the same: 503 with the reason, never a 500.
      const now = Date.now();
      const range = `from=${now - 60_000}&to=${now}`;
      for (const path of [
        '/api/sessions', '/api/sessions/S-X', '/api/sessions/S-X/summary', '/api/sessions/S-X/export', '/api/devices/MSC-0501/sessions',
        '/api/devices/MSC-0501/alarm-history', `/api/devices/MSC-0501/telemetry.csv?${range}`, `/api/devices/MSC-0501/telemetry?${range}`,
        '/api/audit', '/api/annotations',
      ]) {
        const r = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
        const body = await r.json() as { error?: string; message?: string };
        expect({ path, status: r.status, error: body.error }).toEqual({ path, status: 503, error: 'storage_unavailable' });
        expect(body.message, path).toBeTruthy();
      }
      expect(gw.proc.exitCode).toBeNull();
      expect(await gw.kill('SIGTERM')).toBe(0);
    } finally {
      await sim.stop();
      await gw.kill('SIGKILL');
    }
  });
});
