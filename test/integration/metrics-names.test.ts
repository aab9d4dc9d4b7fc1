/**
 * The names, types and label keys of /metrics are a contract with dashboards and alert rules: a running gateway
 * (a simulated console on a real mosquitto, an InfluxDB forwarder on a real influxd) is driven until every
 * labelled family has a sample, and what it exposes must match test/fixtures/metrics-names.txt line for line.
 * The only families allowed beyond the list are prom-client's Node.js process metrics (`process_*`, `nodejs_*`).
 * After a deliberate change of a metric, regenerate the list with UPDATE_METRICS_FIXTURE=1 and review the diff.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startInfluxd, type InfluxdHandle } from '../helpers/influxd.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { assertPrometheusText } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/waitFor.js';

const FIXTURE = new URL('../fixtures/metrics-names.txt', import.meta.url);
const DEV = 'MSC-0901';
const PROCESS_METRIC = /^(process|nodejs)_/;
class ThrowingPart {}

/** `name type label,keys` per family and label-key set ("-" for a sample without labels). */
function metricShapes(text: string): string[] {
  const types = new Map<string, string>();
  const shapes = new Set<string>();
  let family = '';
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      family = t[1];
      types.set(family, t[2]);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const labels = /\{(.*)\}/.exec(line)?.[1];
    const keys = labels ? [...labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)].map((m) => m[1]).sort().join(',') : '-';
    shapes.add(`${family} ${types.get(family)} ${keys}`);
  }
  // A family with no sample at all still counts by its TYPE line.
  for (const [name, type] of types) if (![...shapes].some((s) => s.startsWith(`${name} `))) shapes.add(`${name} ${type} (none)`);
  return [...shapes].sort();
}

describe('/metrics names and label keys', () => {
  let broker: MosquittoBroker;
  let influx: InfluxdHandle;
  let sim: Simulator;
  let gw: TestGateway;
  let pub: MqttClient;

  beforeAll(async () => {
    [broker, influx] = await Promise.all([startMosquitto(), startInfluxd()]);
    gw = await startTestGateway({
      mqtt: { url: broker.url, clientId: `gw-metrics-${process.pid}` },
      influx: { url: `${influx.url}/metrics_names`, batchMs: 200 },
    });
    gw.gateway.bus.on(new ThrowingPart(), 'telemetry', () => { throw new Error('a bug in one part'); });
    sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEV], autoRun: { sessionId: 'S-MET-1' },
      phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 500 }, rate: 10, seed: 5,
    });
    pub = await connectAsync(broker.url, { clientId: `metrics-pub-${process.pid}`, reconnectPeriod: 0 });
  }, 60_000);

  afterAll(async () => {
    await pub?.endAsync(true);
    await sim?.stop();
    await gw?.stop();
    await Promise.allSettled([broker?.stop(), influx?.dispose()]);
  });

  const metrics = async () => (await gw.get<string>('/metrics')).body;

  it('exposes the same families, types and label keys as the list', async () => {
    await waitFor(async () => (await gw.get(`/api/devices/${DEV}`)).body.state === 'RUNNING', { timeoutMs: 20_000, message: 'console RUNNING' });
    // Something for every labelled family that only shows once it happened.
    sim.apply({ action: 'air_in_line', device: DEV });
    await pub.publishAsync(`msc/v1/${DEV}/telemetry`, 'not json', { qos: 1 });
    await pub.publishAsync('msc/v1/MSC-0999/telemetry', JSON.stringify({ seq: 1, t: Date.now(), v: {} }), { qos: 1 });
    await pub.publishAsync(`msc/v1/${DEV}/ack`, JSON.stringify({ id: 'forged01', result: 'OK' }), { qos: 1 });
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`, { headers: { Authorization: `Bearer ${gw.tokens.viewer}` } });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send('not json');
    await waitFor(async () => {
      const m = await metrics();
      return [
        /^msc_alarms_active\{/m, /^msc_discards_total\{device="MSC-0901"/m, /^msc_discards_total\{device="",source=/m,
        /^msc_ack_unexpected_total\{/m, /^msc_ws_client_errors_total\{/m, /^msc_bus_listener_errors_total\{/m,
        /^msc_clock_offset_ms\{/m, /^msc_forwarder_written_total [1-9]/m,
      ].every((re) => re.test(m));
    }, { timeoutMs: 20_000, message: 'every labelled family has a sample' });
    ws.close();

    const text = await metrics();
    assertPrometheusText(text);
    const shapes = metricShapes(text);
    if (process.env.UPDATE_METRICS_FIXTURE) writeFileSync(FIXTURE, shapes.filter((s) => !PROCESS_METRIC.test(s)).join('\n') + '\n');
    const expected = readFileSync(FIXTURE, 'utf8').trim().split('\n');
    expect(shapes.filter((s) => !PROCESS_METRIC.test(s))).toEqual(expected);
  });

  it('adds the Node.js process metrics, event-loop lag first among them, with prom-client\'s Content-Type', async () => {
    const r = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${gw.tokens.viewer}` } });
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    for (const family of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'process_cpu_seconds_total',
      'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
      expect(text, family).toMatch(new RegExp(`^# TYPE ${family} `, 'm'));
    }
    expect(Number(/^nodejs_eventloop_lag_seconds (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(0);
  });

  it('escapes label values the exposition way (a serial path with a quote and a backslash)', async () => {
    const own = await startTestGateway({ serial: [{ path: '/nonexistent/tty"x\\y' }] });
    try {
      const text = (await own.get<string>('/metrics')).body;
      expect(text).toContain('msc_transport_up{kind="serial",source="/nonexistent/tty\\"x\\\\y"} 0\n');
      assertPrometheusText(text);
    } finally {
      await own.stop();
    }
  });
});
