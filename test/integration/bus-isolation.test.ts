/**
 * A part that throws while handling an event stops nothing else: a simulated console on a real mosquitto, a
 * gateway with its journal, and a faulty listener on the gateway's bus that throws on every other sample.
 * Every sample still reaches the journal, the live model and the alarm engine; the MQTT connection is not
 * dropped (before, the exception travelled into the transport, which dropped the connection and had the
 * broker deliver the same message again and again); the failures are counted in /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-0301';
class FaultyPart {}

describe('a throwing bus listener', () => {
  let broker: MosquittoBroker;
  let sim: Simulator;
  let gw: TestGateway;

  beforeAll(async () => {
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-bus-isolation' } });
    gw.gateway.bus.on(new FaultyPart(), 'telemetry', (s) => {
      if (s.seq % 2 === 0) throw new Error('a bug in one part');
    });
    sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEV], autoRun: true, rate: 25, seed: 11,
      phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 500 },
    });
  });

  afterAll(async () => {
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
  });

  it('leaves the journal, the model and the MQTT connection untouched, and counts the failures', async () => {
    await waitFor(async () => (await gw.get<any>(`/api/devices/${DEV}`)).body?.counters?.telemetry > 60, { message: '60 samples' });
    sim.consoles[0].stop();
    const sent = sim.stats().perDevice[DEV].telemetry;
    const d = await waitFor(async () => {
      const b = (await gw.get<any>(`/api/devices/${DEV}`)).body;
      return b.counters.telemetry === sent ? b : null;
    }, { message: `the model counts all ${sent} samples` });
    expect(d.counters).toMatchObject({ framesLost: 0, duplicates: 0 });
    const journal = gw.gateway.journal!;
    await waitFor(() => journal.status().pending === 0, { message: 'journal committed' });
    const rows = journal.database()!.prepare('SELECT count(*) AS n FROM telemetry WHERE device = ?').get(DEV) as { n: number };
    expect(rows.n).toBe(sent);
    const mqtt = gw.gateway.transports.find((t) => t.status().kind === 'mqtt')!.status();
    expect(mqtt).toMatchObject({ up: true, reconnects: 0 });
    const metrics = (await gw.get<string>('/metrics')).body;
    const failed = Number(/^msc_bus_listener_errors_total\{listener="FaultyPart",event="telemetry"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(failed).toBeGreaterThanOrEqual(Math.floor(sent / 2) - 1);
    expect(failed).toBeLessThanOrEqual(Math.ceil(sent / 2) + 1);
  });
});
