/**
 * Walking skeleton: the gateway reads simulated consoles over a real socat serial link and a real
 * mosquitto, and shows them over HTTP; each link-level fault of the simulator is visible in counters or state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { assertPrometheusText } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/waitFor.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };

describe('gateway ingest over serial and MQTT', () => {
  let broker: MosquittoBroker;
  let serialSim: Simulator;
  let mqttSim: Simulator;
  let gw: TestGateway;

  beforeAll(async () => {
    broker = await startMosquitto();
    serialSim = await startSimulator({
      transport: 'serial', pty: true, deviceIds: ['MSC-0101'], autoRun: { sessionId: 'S-SER-1' }, phases: FAST_PHASES, seed: 7, record: true,
    });
    gw = await startTestGateway({ serial: [{ path: serialSim.gatewayPath! }], mqtt: { url: broker.url, clientId: 'gw-ingest' } });
    mqttSim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: ['MSC-0201', 'MSC-0202'], autoRun: true, phases: FAST_PHASES, seed: 8, rate: 25,
    });
  });

  afterAll(async () => {
    await Promise.allSettled([serialSim?.stop(), mqttSim?.stop()]);
    await gw?.stop();
    await broker?.stop();
  });

  it('shows live values from every console, with identity, link, state and session', async () => {
    const devices = await waitFor(async () => {
      const { body } = await gw.get<{ devices: any[] }>('/api/devices');
      // The pumps ramp up for about 2 s after START.
      const running = body.devices.filter((d) => d.state === 'RUNNING' && d.values.QB?.v > 50 && d.link === 'connected');
      return running.length === 3 ? body.devices : null;
    }, { timeoutMs: 20_000, message: 'three RUNNING consoles' });
    const byId = Object.fromEntries(devices.map((d) => [d.id, d]));
    expect(byId['MSC-0101']).toMatchObject({ transport: 'serial', model: 'MSC-ALS 2', sessionId: 'S-SER-1' });
    expect(byId['MSC-0201']).toMatchObject({ transport: 'mqtt', model: 'MSC-ALS 2' });
    for (const d of devices) {
      expect(typeof d.fw).toBe('string');
      expect(typeof d.serialNo).toBe('string');
      for (const ch of ['QB', 'QP', 'PA', 'PV', 'TMP', 'TR', 'SQB', 'STR']) {
        expect(typeof d.values[ch].v, `${d.id} ${ch}`).toBe('number');
      }
      expect(d.values.QB.v).toBeGreaterThan(50);
      expect(Math.abs(d.clockOffsetMs)).toBeLessThan(1000);
      expect(d.counters.framesLost).toBe(0);
      expect(d.counters.discards).toEqual({});
    }
    const one = await gw.get('/api/devices/MSC-0101');
    expect(one.status).toBe(200);
    expect((await gw.get('/api/devices/NOPE')).status).toBe(404);
  });

  it('receives exactly what a serial console sent: telemetry, states and events, by count and last seq', async () => {
    const sim = await startSimulator({ transport: 'serial', pty: true, deviceIds: ['MSC-0199'], rate: 50, autoRun: true, phases: FAST_PHASES, seed: 3 });
    const own = await startTestGateway({ serial: [{ path: sim.gatewayPath! }] });
    try {
      await waitFor(async () => {
        const b = (await own.get('/api/devices/MSC-0199')).body;
        return b.state === 'RUNNING' && b.counters.telemetry > 50;
      }, { message: 'RUNNING with 50 samples' });
      // The console stops sending; the line stays up until the gateway has read all of it. sim.stop() closes
      // the pty pair too, and a pty hangs up the gateway's end with what it has not read yet thrown away.
      sim.consoles[0].stop();
      const sent = sim.stats().perDevice['MSC-0199'];
      const d = await waitFor(async () => {
        const b = (await own.get('/api/devices/MSC-0199')).body;
        const c = b.counters;
        return c.telemetry === sent.telemetry && c.states === sent.states && c.events === sent.events ? b : null;
      }, { message: `telemetry, states, events reach ${sent.telemetry}, ${sent.states}, ${sent.events}` });
      expect(d.counters).toMatchObject({ framesLost: 0, seqGaps: 0, duplicates: 0, discards: {} });
      expect(sent.telemetry).toBeGreaterThan(50);
    } finally {
      await sim.stop();
      await own.stop();
    }
  });

  it('counts garbage bytes and bad CRCs on the serial line as discards, and keeps going', async () => {
    serialSim.apply({ action: 'bad_crc', params: { count: 5 } });
    serialSim.apply({ action: 'garbage_bytes', params: { count: 200, mode: 'binary' } });
    const d = await waitFor(async () => {
      const b = (await gw.get('/api/devices/MSC-0101')).body;
      return (b.counters.discards.bad_crc ?? 0) >= 5 ? b : null;
    }, { message: 'bad_crc discards counted' });
    const total = Object.values(d.counters.discards as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(5);
    const before = d.counters.telemetry;
    await waitFor(async () => (await gw.get('/api/devices/MSC-0101')).body.counters.telemetry > before + 10, { message: 'frames still flow' });
    const metrics = (await gw.get<string>('/metrics')).body;
    expect(metrics).toMatch(/msc_discards_total\{device="MSC-0101",reason="bad_crc"\} [5-9]/);
    assertPrometheusText(metrics);
  });

  it('reports a sensor fault as a fault, not a number or a missing value', async () => {
    mqttSim.apply({ action: 'sensor_fault', device: 'MSC-0201', duration: '3s', params: { channel: 'PV' } });
    const d = await waitFor(async () => {
      const b = (await gw.get('/api/devices/MSC-0201')).body;
      return b.values.PV?.fault ? b : null;
    }, { message: 'PV fault visible' });
    expect(d.values.PV).toMatchObject({ v: null, fault: true });
    expect(typeof d.values.PV.t).toBe('number');
  });

  it('shows the device clock offset after a clock skew', async () => {
    mqttSim.apply({ action: 'clock_skew', device: 'MSC-0202', params: { ms: 7000 } });
    await waitFor(async () => {
      const b = (await gw.get('/api/devices/MSC-0202')).body;
      return b.clockOffsetMs > 6000 && b.clockOffsetMs < 8000;
    }, { message: 'clock offset ≈ 7 s' });
  });

  it('marks an MQTT console lost on link drop (last will), then connected, with the gap counted', async () => {
    mqttSim.apply({ action: 'link_drop', device: 'MSC-0202', duration: '2s' });
    await waitFor(async () => (await gw.get('/api/devices/MSC-0202')).body.link === 'lost', { message: 'link lost' });
    const d = await waitFor(async () => {
      const b = (await gw.get('/api/devices/MSC-0202')).body;
      return b.link === 'connected' && b.counters.framesLost > 0 ? b : null;
    }, { message: 'link back with frames lost counted' });
    expect(d.counters.seqGaps).toBeGreaterThanOrEqual(1);
  });

  it('marks a silent serial console lost (a pulled cable is silence), then connected again with the loss counted', async () => {
    // The device end of the pty closes; the gateway's end stays open, as a pulled RS-232 cable does: silence.
    const before = (await gw.get('/api/devices/MSC-0101')).body.counters.framesLost;
    serialSim.apply({ action: 'link_drop', duration: '4500ms' });
    const lost = await waitFor(async () => {
      const b = (await gw.get('/api/devices/MSC-0101')).body;
      return b.link === 'lost' ? b : null;
    }, { message: 'serial link lost on silence' });
    expect(lost.linkReason).toMatch(/no frame for/);
    await waitFor(async () => {
      const b = (await gw.get('/api/devices/MSC-0101')).body;
      return b.link === 'connected' && b.counters.framesLost > before;
    }, { timeoutMs: 20_000, message: 'serial link back, frames lost counted' });
  });

  it('reports transports and devices on /healthz', async () => {
    const h = await gw.get('/healthz');
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok', live: true, ready: true });
    expect(h.body.transports.map((t: any) => t.kind).sort()).toEqual(['mqtt', 'serial']);
  });
});
