/**
 * Device input that would cost the gateway more than it costs the sender, through a real mosquitto into an
 * in-process gateway: invented device ids, a console flood beyond maxConsoles, a seq that poisons the loss
 * count, a HELLO with a megabyte model, a frame with 20,000 channel keys.
 */
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMqttPayload } from '../../src/protocol/mqtt.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const topic = (id: string, kind: string) => `msc/v1/${id}/${kind}`;
const hello = (id: string, model = 'MSC-ALS 2') => encodeMqttPayload({ type: 'HELLO', deviceId: id, model, fw: '3.4.1', icd: 1, serialNo: `SN-${id}` });
const telemetry = (seq: number, v: Record<string, number> = { QB: 150 }) => JSON.stringify({ seq, t: Date.now(), v });

describe('device input bounded by what a console can be (real mosquitto)', () => {
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let pub: MqttClient;

  const devices = async () => (await gw.get<{ devices: Array<{ id: string }> }>('/api/devices')).body.devices.map((d) => d.id);
  const device = async (id: string) => (await gw.get<any>(`/api/devices/${id}`)).body;
  const metrics = async () => (await gw.get<string>('/metrics')).body;

  beforeAll(async () => {
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-device-input' }, maxConsoles: 3 });
    await waitFor(() => gw.gateway.health().ready, { message: 'gateway subscribed' });
    pub = await new Promise<MqttClient>((ok, fail) => {
      const c = connect(broker.url, { clientId: 'attacker', protocolVersion: 5 });
      c.once('connect', () => ok(c));
      c.once('error', fail);
    });
  });

  afterAll(async () => {
    pub?.end(true);
    await gw?.stop();
    await broker?.stop();
  });

  it('makes no console of ids that never said HELLO: counted under the broker as no_hello, no record, no alarm', async () => {
    for (let i = 0; i < 300; i++) await pub.publishAsync(topic(`FAKE-${i}`, 'telemetry'), telemetry(i), { qos: 1 });
    await pub.publishAsync(topic('FAKE-S', 'state'), JSON.stringify({ seq: 1, t: Date.now(), state: 'RUNNING', sessionId: 'x' }), { qos: 1 });
    // A real console after them, on the same connection: once its frame is in, everything before it was read.
    await pub.publishAsync(topic('MSC-0001', 'hello'), hello('MSC-0001'), { qos: 1, retain: true });
    await pub.publishAsync(topic('MSC-0001', 'telemetry'), telemetry(1), { qos: 1 });
    await waitFor(async () => (await device('MSC-0001'))?.counters?.telemetry === 1, { message: 'real console ingested' });
    expect(await devices()).toEqual(['MSC-0001']);
    expect(await metrics()).toContain(`msc_discards_total{device="",source="${broker.url}",reason="no_hello"} 301`);
    expect((await device('MSC-0001')).counters.discards).toEqual({});
    const alarms = (await gw.get<{ alarms: Array<{ device: string }> }>('/api/alarms')).body.alarms;
    expect(alarms.filter((a) => a.device.startsWith('FAKE-'))).toEqual([]);
  });

  it('does not let one frame poison the loss count: an implausible seq is counted apart', async () => {
    await pub.publishAsync(topic('MSC-0001', 'telemetry'), telemetry(2), { qos: 1 });
    await pub.publishAsync(topic('MSC-0001', 'telemetry'), telemetry(2_000_000_000), { qos: 1 });
    await pub.publishAsync(topic('MSC-0001', 'telemetry'), telemetry(3), { qos: 1 });
    await pub.publishAsync(topic('MSC-0001', 'telemetry'), telemetry(5), { qos: 1 });
    const d = await waitFor(async () => { const x = await device('MSC-0001'); return x.counters.telemetry === 5 ? x : null; });
    expect(d.counters).toMatchObject({ framesLost: 1, seqGaps: 1, seqImplausible: 1 });
    expect(await metrics()).toContain('msc_seq_implausible_total{device="MSC-0001"} 1');
  });

  it('refuses a HELLO with a 1,000,000-character model as a schema discard, never a console', async () => {
    await pub.publishAsync(topic('BIG-1', 'hello'), hello('BIG-1', 'M'.repeat(1_000_000)), { qos: 1 });
    await pub.publishAsync(topic('BIG-1', 'telemetry'), telemetry(1), { qos: 1 });
    await waitFor(async () => (await metrics()).includes(`source="${broker.url}",reason="no_hello"} 302`), { message: 'telemetry after the refused HELLO counted' });
    expect(await devices()).not.toContain('BIG-1');
    expect(await metrics()).toContain(`msc_discards_total{device="",source="${broker.url}",reason="schema"} 1`);
  });

  it('keeps at most 64 channel keys of a console: the API, the journal history and the CSV export see the capped frame', async () => {
    const v: Record<string, number> = { QB: 151, TR: 37 };
    for (let i = 0; i < 20_000; i++) v[`K${i}`] = i;
    const t0 = Date.now();
    await pub.publishAsync(topic('MSC-0001', 'telemetry'), JSON.stringify({ seq: 6, t: t0, v }), { qos: 1 });
    const d = await waitFor(async () => { const x = await device('MSC-0001'); return x.counters.telemetry === 6 ? x : null; });
    expect(Object.keys(d.values).length).toBeLessThanOrEqual(64);
    expect(d.values.QB.v).toBe(151);
    expect(d.counters.discards).toEqual({ too_many_channels: 1 });
    const history = await waitFor(async () => {
      const r = await gw.get<{ samples: Array<{ t: number; v: Record<string, number> }> }>(`/api/devices/MSC-0001/telemetry?from=${t0}&to=${t0 + 1}`);
      return r.body.samples?.find((s) => s.t === t0);
    }, { message: 'sample journaled' });
    expect(Object.keys(history.v).length).toBeLessThanOrEqual(64);
    expect(history.v.QB).toBe(151);
    const csv = await fetch(`${gw.url}/api/devices/MSC-0001/telemetry.csv?from=${t0}&to=${t0 + 1}`, { headers: { authorization: `Bearer ${gw.tokens.engineer}` } });
    const header = (await csv.text()).split('\r\n')[0].split(',');
    expect(header.length - 3).toBeLessThanOrEqual(64); // time, t_ms, seq, then the channels
    expect(header).toContain('QB');
  });

  it('holds at most maxConsoles: a HELLO beyond is refused and counted as too_many_consoles', async () => {
    for (const id of ['MSC-0002', 'MSC-0003', 'MSC-0004']) {
      await pub.publishAsync(topic(id, 'hello'), hello(id), { qos: 1, retain: true });
      await pub.publishAsync(topic(id, 'telemetry'), telemetry(1), { qos: 1 });
    }
    // The 4th console's HELLO is refused; its telemetry then comes from an id that never got a record.
    await waitFor(async () => (await metrics()).includes(`source="${broker.url}",reason="too_many_consoles"} 1`), { message: 'HELLO of the 4th refused' });
    await waitFor(async () => (await metrics()).includes(`source="${broker.url}",reason="no_hello"} 303`), { message: 'telemetry of the 4th refused' });
    expect(await devices()).toEqual(['MSC-0001', 'MSC-0002', 'MSC-0003']);
  });
});
