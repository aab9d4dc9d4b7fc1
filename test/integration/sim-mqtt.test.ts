/**
 * The simulator against a real mosquitto: retained hello and status, the last will on a link drop,
 * commands and ACKs, telemetry batching, and a clean `offline` on stop.
 */
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../../device-sim/src/index.js';
import type { Simulator } from '../../device-sim/src/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import type { MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

async function observer(url: string, filter: string): Promise<{ client: MqttClient; got: Received[] }> {
  const client = connect(url, { clientId: `obs-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 200 });
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, got };
}

const on = (got: Received[], topic: string): Received[] => got.filter((m) => m.topic === topic);

describe('simulator over MQTT', () => {
  let broker: MosquittoBroker;
  let sim: Simulator | null = null;
  const clients: MqttClient[] = [];

  beforeEach(async () => {
    broker = await startMosquitto();
  });
  afterEach(async () => {
    await sim?.stop();
    sim = null;
    for (const c of clients.splice(0)) await c.endAsync(true);
    await broker.stop();
  });

  it('publishes a retained hello and status online per console, then telemetry and state with seq', async () => {
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, devices: 2, seed: 1, record: true });
    await waitFor(() => sim!.stats().perDevice['MSC-0002']?.telemetry >= 3);
    // Subscribing after the fact: only retained messages can tell who is there.
    const obs = await observer(broker.url, 'msc/v1/+/+');
    clients.push(obs.client);
    await waitFor(() => on(obs.got, 'msc/v1/MSC-0002/hello').length > 0 && on(obs.got, 'msc/v1/MSC-0001/status').length > 0);
    const hello = on(obs.got, 'msc/v1/MSC-0002/hello')[0];
    expect(hello.retain).toBe(true);
    expect(JSON.parse(hello.payload)).toEqual({ deviceId: 'MSC-0002', model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN-MSC-0002' });
    expect(on(obs.got, 'msc/v1/MSC-0001/status')[0]).toMatchObject({ payload: 'online', retain: true });

    await waitFor(() => on(obs.got, 'msc/v1/MSC-0001/telemetry').length >= 5);
    const samples = on(obs.got, 'msc/v1/MSC-0001/telemetry').map((m) => JSON.parse(m.payload) as { seq: number; t: number; v: Record<string, number | null> });
    for (const s of samples) {
      expect(Number.isInteger(s.seq) && Number.isInteger(s.t)).toBe(true);
      expect(typeof s.v.QB).toBe('number');
    }
    expect(samples.map((s) => s.seq)).toEqual(samples.map((_, i) => samples[0].seq + i));
    await waitFor(() => on(obs.got, 'msc/v1/MSC-0001/state').length >= 1, { timeoutMs: 8000, message: 'keep-alive S' });
    expect(JSON.parse(on(obs.got, 'msc/v1/MSC-0001/state')[0].payload)).toMatchObject({ state: 'IDLE', sessionId: null });
  });

  it('answers cmd with ack (OK, REJ, ERR; a repeated id gets the first result) and acts on it', async () => {
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, seed: 2 });
    const obs = await observer(broker.url, 'msc/v1/MSC-0001/#');
    clients.push(obs.client);
    const cmd = (body: unknown) => obs.client.publishAsync('msc/v1/MSC-0001/cmd', JSON.stringify(body), { qos: 1 });
    const acks = () => on(obs.got, 'msc/v1/MSC-0001/ack').map((m) => JSON.parse(m.payload));

    await cmd({ id: 'a1', verb: 'SET', args: ['QB', 160] });
    await cmd({ id: 'a2', verb: 'START', args: ['S-1'] });
    await cmd({ id: 'a3', verb: 'SET', args: ['QB'] });
    await cmd({ id: 'a1', verb: 'SET', args: ['QB', 999] });
    await obs.client.publishAsync('msc/v1/MSC-0001/cmd', '{not json', { qos: 1 });
    await waitFor(() => acks().length >= 4, { message: '4 acks' });
    expect(acks()).toEqual([
      { id: 'a1', result: 'OK', detail: '' },
      { id: 'a2', result: 'REJ', detail: 'state IDLE does not accept START' },
      { id: 'a3', result: 'ERR', detail: expect.any(String) },
      { id: 'a1', result: 'OK', detail: '' },
    ]);
    expect(sim.consoles[0].setpoints.QB).toBe(160);
    await waitFor(() => sim!.stats().perDevice['MSC-0001'].commandsDiscarded === 1);
  });

  it('link_drop ends the connection without DISCONNECT: the broker publishes the last will, then the console is back', async () => {
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, seed: 3, record: true });
    const obs = await observer(broker.url, 'msc/v1/MSC-0001/status');
    clients.push(obs.client);
    await waitFor(() => on(obs.got, 'msc/v1/MSC-0001/status').some((m) => m.payload === 'online'));
    sim.apply({ action: 'link_drop', duration: '2s' });
    await waitFor(() => obs.got.some((m) => m.payload === 'offline'), { message: 'last will offline' });
    await waitFor(() => obs.got.at(-1)?.payload === 'online', { message: 'online again' });
    const stats = sim.stats().perDevice['MSC-0001'];
    expect(stats.linkDrops).toBe(1);
    expect(stats.dropped).toBeGreaterThan(5); // telemetry produced while down is lost (seq gap)
    expect(sim.recorded('MSC-0001').filter((r) => r.frame.type === 'HELLO' && r.delivery === 'sent').length).toBeGreaterThanOrEqual(2);
  });

  it('power_cycle drops the connection with the power: last will, then online, HELLO and seq from 0', async () => {
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, seed: 6, rate: 100 });
    const obs = await observer(broker.url, 'msc/v1/MSC-0001/+');
    clients.push(obs.client);
    await waitFor(() => (sim!.consoles[0].lastSeq ?? 0) > 300);
    const before = sim.consoles[0].lastSeq ?? 0;
    const mark = obs.got.length;
    sim.apply({ action: 'power_cycle', duration: '1s' });
    await waitFor(() => obs.got.slice(mark).some((m) => m.topic.endsWith('/status') && m.payload === 'offline'), { message: 'last will' });
    await waitFor(() => obs.got.slice(mark).some((m) => m.topic.endsWith('/hello')), { message: 'hello after boot' });
    const helloAt = mark + obs.got.slice(mark).findIndex((m) => m.topic.endsWith('/hello'));
    await waitFor(() => obs.got.slice(helloAt).some((m) => m.topic.endsWith('/telemetry')), { message: 'telemetry after boot' });
    const after = obs.got.slice(mark);
    expect(after.filter((m) => m.topic.endsWith('/status')).map((m) => m.payload)).toEqual(['offline', 'online']);
    const batch = JSON.parse(obs.got.slice(helloAt).find((m) => m.topic.endsWith('/telemetry'))?.payload ?? '[]') as Array<{ seq: number }>;
    expect(batch[0].seq).toBeLessThan(before); // seq restarted at 0 at power-up
  });

  it('batches telemetry above 20 Hz into arrays, in seq order, and loses none on a clean stop', async () => {
    const obs = await observer(broker.url, 'msc/v1/MSC-0001/telemetry');
    clients.push(obs.client);
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, seed: 4, rate: 50 });
    await waitFor(() => obs.got.length >= 5);
    await sim.stop();
    const stats = sim.stats().perDevice['MSC-0001'];
    const batches = () => obs.got.map((m) => JSON.parse(m.payload) as Array<{ seq: number }>);
    const received = () => batches().reduce((n, b) => n + b.length, 0);
    await waitFor(() => received() === stats.telemetry, { message: `all ${stats.telemetry} samples received` });
    expect(stats.messages).toBe(obs.got.length);
    const all = batches();
    expect(all.every((b) => Array.isArray(b) && b.length >= 1 && b.length <= 100)).toBe(true);
    expect(all.slice(1, -1).every((b) => b.length === 10)).toBe(true); // 50 Hz / 5 = 10 samples per message
    const seqs = all.flat().map((s) => s.seq);
    expect(seqs.slice(1).every((q, i) => q > seqs[i])).toBe(true);
  });

  it('publishes status offline (retained) on a clean stop', async () => {
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, seed: 5 });
    await sim.stop();
    const obs = await observer(broker.url, 'msc/v1/MSC-0001/status');
    clients.push(obs.client);
    await waitFor(() => obs.got.length > 0);
    expect(obs.got[0]).toMatchObject({ payload: 'offline', retain: true });
  });
});
