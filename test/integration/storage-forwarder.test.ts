/**
 * The InfluxDB forwarder against a real influxd (Debian's 1.6): what the journal holds is what
 * InfluxDB holds, through an outage and across a forwarder restart.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TelemetrySample } from '../../src/bus.js';
import { metricsTextOf } from '../../src/metrics.js';
import { InfluxForwarder, type ForwarderConfig } from '../../src/storage/forwarder.js';
import { HistoryService } from '../../src/storage/history.js';
import { Journal } from '../../src/storage/journal.js';
import type { StorageCondition } from '../../src/storage/types.js';
import { startInfluxd, type InfluxdHandle } from '../helpers/influxd.js';
import { waitFor } from '../helpers/waitFor.js';
import { alarmTransition, deviceEvent, fullValues, sample, stateChange, T0, tempDir } from '../unit/storage/fixtures.js';

let influxd: InfluxdHandle;
let tmp: ReturnType<typeof tempDir>;
let journal: Journal;
let dbName: string;
let dbCounter = 0;
const forwarders: InfluxForwarder[] = [];

function forwarder(over: Partial<ForwarderConfig> = {}, onCondition?: (c: StorageCondition) => void): InfluxForwarder {
  const f = new InfluxForwarder({
    journal, onCondition,
    config: { url: `${influxd.url}/${dbName}`, retryMinMs: 50, retryMaxMs: 400, batchMs: 100, ...over },
  });
  forwarders.push(f);
  return f;
}

async function influxRows(q: string): Promise<Array<Record<string, unknown>>> {
  const body = await influxd.query(q, dbName);
  const series = body.results?.[0]?.series?.[0] as { columns: string[]; values: unknown[][] } | undefined;
  if (!series) return [];
  return series.values.map((row) => Object.fromEntries(series.columns.map((c, i) => [c, row[i]])));
}

async function influxCount(q: string): Promise<number> {
  const rows = await influxRows(q);
  return (rows[0]?.count as number | undefined) ?? 0;
}

function journalCount(table: string): number {
  return (journal.database()!.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

const caughtUp = (f: InfluxForwarder) => () => {
  const s = f.status();
  return s.lines === 0 && s.written > 0;
};

beforeAll(async () => {
  influxd = await startInfluxd();
}, 60_000);
afterAll(async () => {
  await influxd?.dispose();
});
beforeEach(async () => {
  dbName = `msc_test_${process.pid}_${++dbCounter}`;
  tmp = tempDir();
  journal = new Journal({ dataDir: tmp.dir });
  await journal.start();
});
afterEach(async () => {
  for (const f of forwarders.splice(0)) await f.stop();
  await journal.stop();
  tmp.cleanup();
});

describe('InfluxForwarder with a real influxd', () => {
  it('InfluxDB ends up holding exactly what the journal holds: counts and values', async () => {
    const devices = ['MSC-0001', 'MSC-0002', 'MSC-0003'];
    for (let i = 0; i < 4_000; i++) {
      const deviceId = devices[i % 3];
      const v = fullValues(i);
      if (i % 100 === 7) v.PV = null; // a sensor fault
      if (i % 50 === 3) v.NEWCH = i / 4; // firmware with a channel the ICD does not list
      journal.appendTelemetry(sample(i, v, { deviceId, sessionId: i < 2_000 ? 'S-A' : null }));
    }
    journal.appendState(stateChange(10_001, 'RUNNING', { previous: 'PRIMED' }));
    journal.appendEvent(deviceEvent(10_002, 'AIR_DETECTED'));
    journal.appendEvent(deviceEvent(10_002, 'AIR_DETECTED', { deviceId: 'MSC-0002' }));
    journal.appendAlarm(alarmTransition(T0 + 77));
    await journal.committed();

    const f = forwarder({ batchLines: 1_000 });
    await f.start();
    await waitFor(caughtUp(f), { timeoutMs: 30_000, message: 'forwarder drained the journal' });
    expect(f.status()).toMatchObject({ written: 4_000 + 4, errors: 0, connected: true, lastError: null });

    expect(await influxCount('SELECT count(seq) FROM telemetry')).toBe(4_000);
    for (const d of devices) {
      expect(await influxCount(`SELECT count(seq) FROM telemetry WHERE device = '${d}'`))
        .toBe(journal.database()!.prepare('SELECT count(*) AS n FROM telemetry WHERE device = ?').pluck().get(d));
    }
    // Values, sample by sample, for one device: InfluxDB against the journal.
    const rows = await influxRows(`SELECT * FROM telemetry WHERE device = 'MSC-0002' ORDER BY time`);
    const stored: TelemetrySample[] = [];
    for await (const page of journal.iterateTelemetry('MSC-0002', 0, Number.MAX_SAFE_INTEGER)) stored.push(...page);
    expect(rows).toHaveLength(stored.length);
    rows.forEach((row, i) => {
      const s = stored[i];
      expect(row.time).toBe(s.t);
      expect(row.seq).toBe(s.seq);
      expect(row.session ?? null).toBe(s.sessionId);
      for (const [key, value] of Object.entries(s.v)) {
        if (value === null) {
          expect(row[key]).toBeNull();
          expect(String(row.faults).split(',')).toContain(key);
        } else {
          expect(row[key]).toBe(value);
        }
      }
    });
    expect(await influxCount('SELECT count(state) FROM state')).toBe(1);
    expect(await influxCount('SELECT count(active) FROM device_event')).toBe(2);
    expect(await influxRows('SELECT * FROM alarm')).toEqual([
      expect.objectContaining({ time: T0 + 77, device: 'MSC-0001', rule: 'PV_HIGH', kind: 'raise', priority: 'HIGH', value: '312.5' }),
    ]);
  }, 60_000);

  it('influxd stopped mid-run then started: nothing missing, no duplicates, backlog alarm raised and cleared', async () => {
    const conditions: StorageCondition[] = [];
    // Two batches in flight: a failure must re-send from the first unconfirmed one.
    const f = forwarder({ batchLines: 500, backlogAlarmSeconds: 1, inFlight: 2 }, (c) => conditions.push(c));
    await f.start();
    let seq = 0;
    const feed = async (n: number) => {
      for (let i = 0; i < n; i++, seq++) journal.appendTelemetry(sample(seq, fullValues(seq), { rx: Date.now() }));
      await journal.committed();
    };
    await feed(2_000);
    await waitFor(caughtUp(f), { timeoutMs: 20_000, message: 'first part forwarded' });

    await influxd.stop();
    await feed(1_500);
    await waitFor(() => f.status().errors >= 2, { timeoutMs: 20_000, message: 'writes fail while influxd is down' });
    expect(f.status().connected).toBe(false);
    await feed(1_500);
    await waitFor(() => conditions.some((c) => c.rule === 'STORAGE_BACKLOG' && c.active), {
      timeoutMs: 20_000, message: 'backlog alarm',
    });
    expect(f.status().lines).toBeGreaterThanOrEqual(3_000);
    expect(conditions[0]).toMatchObject({ rule: 'STORAGE_BACKLOG', priority: 'LOW', active: true });

    await influxd.start();
    await feed(1_000);
    await waitFor(caughtUp(f), { timeoutMs: 30_000, message: 'backlog drained after influxd came back' });
    await waitFor(() => conditions.at(-1)?.active === false, { timeoutMs: 10_000, message: 'backlog alarm cleared' });

    expect(journalCount('telemetry')).toBe(6_000);
    expect(await influxCount('SELECT count(seq) FROM telemetry')).toBe(6_000);
    const seqs = (await influxRows('SELECT seq FROM telemetry')).map((r) => r.seq as number);
    expect(new Set(seqs).size).toBe(6_000);
    expect(Math.min(...seqs)).toBe(0);
    expect(Math.max(...seqs)).toBe(5_999);
  }, 120_000);

  it('a restarted forwarder resumes from its persisted cursor instead of re-sending everything', async () => {
    for (let i = 0; i < 3_000; i++) journal.appendTelemetry(sample(i, fullValues(i)));
    await journal.committed();
    const first = forwarder({ batchLines: 1_000 });
    await first.start();
    await waitFor(caughtUp(first), { timeoutMs: 20_000 });
    await first.stop();
    expect(first.status().written).toBe(3_000);

    for (let i = 3_000; i < 3_500; i++) journal.appendTelemetry(sample(i, fullValues(i)));
    await journal.committed();
    const second = forwarder({ batchLines: 1_000 });
    expect(second.status().lines).toBe(500);
    await second.start();
    await waitFor(caughtUp(second), { timeoutMs: 20_000 });
    expect(second.status().written).toBe(500);
    expect(second.status().batches).toBe(1);
    expect(await influxCount('SELECT count(seq) FROM telemetry')).toBe(3_500);
  }, 60_000);

  it('creates the database when it is missing, and exposes backlog and counters as Prometheus text', async () => {
    journal.appendTelemetry(sample(1, { QB: 150 }));
    await journal.committed();
    const f = forwarder();
    expect(await metricsTextOf((r) => f.registerMetrics(r))).toMatch(/^msc_forwarder_backlog_lines 1$/m);
    await f.start();
    await waitFor(caughtUp(f), { timeoutMs: 20_000 });
    const dbs = await influxRows('SHOW DATABASES');
    expect(dbs.map((r) => r.name)).toContain(dbName);
    const text = await metricsTextOf((r) => { f.registerMetrics(r); journal.registerMetrics(r); });
    expect(text).toMatch(/^msc_forwarder_backlog_lines 0$/m);
    expect(text).toMatch(/^msc_forwarder_written_total 1$/m);
    expect(text).toMatch(/^msc_journal_committed_total 1$/m);
  }, 30_000);
});

describe('HistoryService against InfluxDB', () => {
  it('answers raw and bucketed queries from InfluxDB the same as from the journal', async () => {
    for (let i = 0; i < 600; i++) {
      journal.appendTelemetry(sample(i, { QB: i, PV: i % 10 === 0 ? null : 100 + (i % 4), TR: 37 }, { t: T0 + i * 100 }));
    }
    await journal.committed();
    const f = forwarder();
    await f.start();
    await waitFor(caughtUp(f), { timeoutMs: 20_000 });

    const fromInflux = new HistoryService({ journal, influx: { url: `${influxd.url}/${dbName}` } });
    const fromJournal = new HistoryService({ journal });
    const range = { from: T0 + 1_000, to: T0 + 31_000 };
    for (const query of [
      { ...range, channels: ['QB', 'PV'] },
      { ...range, channels: ['QB', 'PV'], everyMs: 5_000 },
      { ...range, everyMs: 10_000 },
      { ...range, channels: ['PV'], limit: 25 },
    ]) {
      const a = await fromInflux.telemetry('MSC-0001', query);
      const b = await fromJournal.telemetry('MSC-0001', query);
      expect(a.source).toBe('influx');
      expect(b.source).toBe('journal');
      expect(a.samples.length).toBeGreaterThan(0);
      expect({ ...a, source: null }).toEqual({ ...b, source: null });
    }
    const raw = await fromInflux.telemetry('MSC-0001', { ...range, channels: ['PV'] });
    expect(raw.samples[0]).toEqual({ t: T0 + 1_000, v: { PV: null } });
  }, 30_000);

  it('keeps every sample of a console whose clock repeats milliseconds, idempotently, and reads them back', async () => {
    // A coarse device clock: 2,000 samples over 40 distinct device times, 50 per millisecond; two consoles alike.
    for (const deviceId of ['MSC-0001', 'MSC-0002']) {
      for (let i = 0; i < 2_000; i++) journal.appendTelemetry(sample(i + 1, { QB: i, TR: 37 }, { deviceId, t: T0 + Math.floor(i / 50) * 10 }));
    }
    journal.appendEvent(deviceEvent(5_001, 'AIR_DETECTED', { t: T0 }));
    journal.appendEvent(deviceEvent(5_002, 'AIR_DETECTED', { t: T0 }));
    await journal.committed();
    expect(journalCount('telemetry')).toBe(4_000);
    const f = forwarder({ batchLines: 700 });
    await f.start();
    await waitFor(caughtUp(f), { timeoutMs: 20_000 });
    expect(await influxCount('SELECT count("seq") FROM "telemetry"')).toBe(4_000);
    expect(await influxCount(`SELECT count("seq") FROM "telemetry" WHERE "device" = 'MSC-0002'`)).toBe(2_000);
    expect(await influxCount('SELECT count("seq") FROM "device_event"')).toBe(2);
    // Sent again from the start (a lost confirmation): the same points, not new ones.
    await f.stop();
    journal.database()!.prepare('DELETE FROM cursor').run();
    const again = forwarder();
    await again.start();
    await waitFor(() => again.status().written >= 4_002, { timeoutMs: 20_000, message: 'everything sent a second time' });
    expect(await influxCount('SELECT count("seq") FROM "telemetry"')).toBe(4_000);
    // Read back at millisecond precision: all 50 samples of one device millisecond, in seq order.
    const history = new HistoryService({ journal, influx: { url: `${influxd.url}/${dbName}` } });
    const one = await history.telemetry('MSC-0001', { from: T0 + 100, to: T0 + 101, channels: ['QB'] });
    expect(one.source).toBe('influx');
    expect(one.samples).toHaveLength(50);
    expect(one.samples.map((p) => p.t)).toEqual(Array(50).fill(T0 + 100));
    expect(one.samples.map((p) => p.v.QB)).toEqual(Array.from({ length: 50 }, (_, k) => 500 + k));
  }, 60_000);

  it('falls back to the journal when InfluxDB does not answer', async () => {
    journal.appendTelemetry(sample(1, { QB: 150 }));
    await journal.committed();
    const h = new HistoryService({ journal, influx: { url: 'http://127.0.0.1:9/none', requestTimeoutMs: 1_000 } });
    const r = await h.telemetry('MSC-0001', { from: T0, to: T0 + 1_000 });
    expect(r).toMatchObject({ source: 'journal', samples: [{ t: T0 + 40, v: { QB: 150 } }] });
  });
});
