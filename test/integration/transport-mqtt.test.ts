/**
 * MqttTransport against a real mosquitto: the PUBACK waits for durability, the persistent session brings back
 * what was queued or unacknowledged, and a broker restart ends with the subscription back and data flowing.
 */
import { connect, connectAsync, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { IngestSink } from '../../src/model/types.js';
import { MqttTransport, type MqttTransportOptions } from '../../src/transports/mqtt.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/waitFor.js';
import { capturingLogger, recordingSink } from '../helpers/recordingSink.js';

const PREFIX = 'msc/v1';
const DEVICE = 'MSC-0001';
const T0 = 1764061200000;

type Broker = Awaited<ReturnType<typeof startMosquitto>>;

/** Records every sink call; `gate` (when set) decides when an ingest resolves. */
describe('MqttTransport with mosquitto', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function broker(): Promise<Broker> {
    const b = await startMosquitto();
    cleanups.push(() => b.stop());
    return b;
  }

  async function device(b: Broker, opts: { reconnect?: boolean } = {}): Promise<MqttClient> {
    const c = await connectAsync(b.url, { clientId: `device-${DEVICE}-${Math.random().toString(36).slice(2)}`, reconnectPeriod: opts.reconnect ? 200 : 0 });
    cleanups.push(() => c.endAsync(true));
    return c;
  }

  async function gateway(b: Broker | string, sink: IngestSink, extra: Partial<MqttTransportOptions> = {}): Promise<MqttTransport> {
    const t = new MqttTransport({
      url: typeof b === 'string' ? b : b.url, prefix: PREFIX, clientId: 'gw-test', sink,
      logger: capturingLogger().logger, initialBackoffMs: 100, maxBackoffMs: 400, stopTimeoutMs: 300, ...extra,
    });
    cleanups.push(() => t.stop());
    await t.start();
    return t;
  }

  const telemetry = (c: MqttClient, seq: number) =>
    c.publishAsync(`${PREFIX}/${DEVICE}/telemetry`, JSON.stringify({ seq, t: T0 + seq, v: { QB: 150 } }), { qos: 1 });

  it.each([5, 4] as const)('MQTT %s: withholds the PUBACK until ingest resolves: an unfinished ingest is delivered again, a finished one is not', async (protocolVersion) => {
    const b = await broker();
    const dev = await device(b);
    const first = recordingSink();
    first.setGate(() => new Promise<void>(() => undefined)); // never durable
    const a = await gateway(b, first.sink, { protocolVersion });
    await waitFor(() => a.status().up);
    await telemetry(dev, 1);
    await waitFor(() => first.seqs().includes(1), { message: 'seq 1 reached the first gateway' });
    await a.stop(); // gives up waiting after stopTimeoutMs; no PUBACK went out for seq 1

    const second = recordingSink();
    const g2 = await gateway(b, second.sink, { protocolVersion });
    await waitFor(() => second.seqs().includes(1), { message: 'seq 1 redelivered to the resumed session' });
    await telemetry(dev, 2);
    await waitFor(() => second.seqs().includes(2));
    await g2.stop();

    // Control: what the second gateway made durable (1 and 2) was acknowledged and does not come back.
    const third = recordingSink();
    const g3 = await gateway(b, third.sink, { protocolVersion });
    await waitFor(() => g3.status().up);
    await telemetry(dev, 3);
    await waitFor(() => third.seqs().includes(3));
    expect(third.seqs()).toEqual([3]);
  });

  it('hands every message to the sink as it arrives, in order; each PUBACK waits for its message to be durable, in order', async () => {
    const b = await broker();
    const dev = await device(b);
    const rec = recordingSink();
    const durable = new Map<number, () => void>();
    rec.setGate((frames) => new Promise<void>((resolve) => durable.set((frames[0] as { seq: number }).seq, resolve)));
    const g = await gateway(b, rec.sink);
    await waitFor(() => g.status().up);
    for (const seq of [1, 2, 3, 4, 5]) await telemetry(dev, seq);
    // The live path does not wait for the journal: all five reach the device model while none is durable.
    await waitFor(() => rec.seqs().length === 5, { message: 'all five ingested before any is durable' });
    expect(rec.seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(g.acks()).toEqual({ pending: 5, acked: 0 });
    // PUBACKs go in the order the PUBLISHes came (MQTT-4.6.0-2): 3 durable first acks nothing.
    durable.get(3)!();
    await new Promise((r) => setImmediate(r));
    expect(g.acks()).toEqual({ pending: 5, acked: 0 });
    durable.get(1)!();
    await waitFor(() => g.acks().acked === 1, { message: 'PUBACK 1' });
    durable.get(2)!();
    await waitFor(() => g.acks().acked === 3, { message: 'PUBACKs 2 and 3 together' });
    durable.get(5)!();
    durable.get(4)!();
    await waitFor(() => g.acks().acked === 5 && g.acks().pending === 0, { message: 'PUBACKs 4 and 5' });
  });

  it('delivers what the broker queued while the gateway was away, in order (persistent session)', async () => {
    const b = await broker();
    const dev = await device(b);
    const first = recordingSink();
    const g1 = await gateway(b, first.sink);
    await waitFor(() => g1.status().up);
    await g1.stop();
    for (const seq of [10, 11, 12]) await telemetry(dev, seq);
    const second = recordingSink();
    await gateway(b, second.sink);
    await waitFor(() => second.seqs().length === 3, { message: 'queued messages' });
    expect(second.seqs()).toEqual([10, 11, 12]);
  });

  it('after a broker restart re-subscribes, reports the device reconnected and data flows again', async () => {
    const b = await broker();
    const dev = await device(b, { reconnect: true });
    const rec = recordingSink();
    const g = await gateway(b, rec.sink);
    await waitFor(() => g.status().up);
    await dev.publishAsync(`${PREFIX}/${DEVICE}/hello`, JSON.stringify({ deviceId: DEVICE, model: 'M', fw: '1', icd: 1, serialNo: 'S' }), { qos: 1, retain: true });
    await telemetry(dev, 1);
    await waitFor(() => rec.seqs().includes(1));

    await b.restart();
    await waitFor(() => !g.status().up || g.status().reconnects > 0, { message: 'gateway saw the broker go' });
    await waitFor(() => g.status().up && g.status().reconnects === 1, { message: 'gateway back', timeoutMs: 20_000 });
    expect(rec.calls.filter((c) => c.op === 'linkDown')).toEqual([]); // the device may be fine: COMM_LOSS judges silence
    await waitFor(() => rec.calls.some((c) => c.op === 'reconnected' && c.deviceId === DEVICE));
    await waitFor(() => dev.connected, { timeoutMs: 20_000 });
    await telemetry(dev, 2);
    await waitFor(() => rec.seqs().includes(2), { message: 'data after broker restart' });
    expect(g.status().detail).toBe('subscribed, data flowing');
  });

  it('warns and re-subscribes when no data follows a reconnect', async () => {
    const b = await broker();
    const dev = await device(b, { reconnect: true });
    const rec = recordingSink();
    const log = capturingLogger();
    const g = await gateway(b, rec.sink, { logger: log.logger, verifyTimeoutMs: 500 });
    await waitFor(() => g.status().up);
    await telemetry(dev, 1); // telemetry only: nothing retained comes back by itself after a restart
    await waitFor(() => rec.seqs().includes(1));
    await b.restart();
    await waitFor(() => g.status().reconnects === 1 && g.status().up, { timeoutMs: 20_000 });
    await waitFor(() => /no data within 500 ms/.test(g.status().detail), { message: 'flow check failed' });
    expect(log.lines.filter((l) => l.msg === 'no data after reconnect; re-subscribing')).toHaveLength(1);
    await waitFor(() => dev.connected, { timeoutMs: 20_000 });
    await telemetry(dev, 2);
    await waitFor(() => g.status().detail === 'subscribed, data flowing');
  });

  it('counts bad payloads, acks them, and logs at most one line per device and reason per 10 s', async () => {
    const b = await broker();
    const dev = await device(b);
    const rec = recordingSink();
    const log = capturingLogger();
    const g = await gateway(b, rec.sink, { logger: log.logger });
    await waitFor(() => g.status().up);
    for (let i = 0; i < 5; i++) await dev.publishAsync(`${PREFIX}/${DEVICE}/telemetry`, '{not json', { qos: 1 });
    await dev.publishAsync(`${PREFIX}/${DEVICE}/state`, JSON.stringify({ seq: 'x' }), { qos: 1 });
    await dev.publishAsync(`${PREFIX}/${DEVICE}/firmware/blob`, 'x', { qos: 1 });
    await telemetry(dev, 1);
    await waitFor(() => rec.seqs().includes(1));
    const reasons = rec.calls.filter((c) => c.op === 'discard').map((c) => [c.deviceId, c.d?.reason]);
    expect(reasons).toEqual([...Array(5).fill([DEVICE, 'invalid_json']), [DEVICE, 'schema'], [DEVICE, 'unknown_type']]);
    const warned = log.lines.filter((l) => l.msg === 'MQTT payload discarded');
    expect(warned.map((l) => (l.obj as { reason: string }).reason)).toEqual(['invalid_json', 'schema', 'unknown_type']);
    expect(warned[0].obj).toMatchObject({ suppressed: 0 });
    expect(warned[0].obj).toMatchObject({ device: DEVICE, topic: `${PREFIX}/${DEVICE}/telemetry` });
  });

  it('does not ack a message whose ingest failed: it reconnects and the broker delivers it again', async () => {
    const b = await broker();
    const dev = await device(b);
    const rec = recordingSink();
    let failures = 1;
    rec.setGate(() => (failures-- > 0 ? Promise.reject(new Error('journal unavailable')) : Promise.resolve()));
    const log = capturingLogger();
    const g = await gateway(b, rec.sink, { logger: log.logger });
    await waitFor(() => g.status().up);
    await telemetry(dev, 1);
    await waitFor(() => rec.seqs().filter((s) => s === 1).length === 2, { message: 'seq 1 redelivered after the failed ingest' });
    expect(g.status().reconnects).toBe(1);
    expect(log.lines.some((l) => l.level === 'error' && l.msg === 'ingest failed')).toBe(true);
    await telemetry(dev, 2);
    await waitFor(() => rec.seqs().includes(2));
    expect(rec.seqs()).toEqual([1, 1, 2]);
  });

  it('reports status offline as link down, ignores cmd echoes, and publishes commands at QoS 1', async () => {
    const b = await broker();
    const dev = await device(b);
    const cmds: string[] = [];
    dev.on('message', (_t, p) => cmds.push(p.toString()));
    await dev.subscribeAsync(`${PREFIX}/${DEVICE}/cmd`, { qos: 1 });
    const rec = recordingSink();
    const g = await gateway(b, rec.sink);
    await waitFor(() => g.status().up);
    await dev.publishAsync(`${PREFIX}/${DEVICE}/status`, 'online', { qos: 1, retain: true });
    await waitFor(() => rec.calls.some((c) => c.op === 'ingest'));
    const link = rec.calls.find((c) => c.op === 'ingest')!.link!;
    expect(link).toMatchObject({ kind: 'mqtt', source: b.url });
    await link.send({ cmdId: 'c18', verb: 'START', args: ['S-20261125-01'] });
    await waitFor(() => cmds.length === 1);
    expect(JSON.parse(cmds[0])).toEqual({ id: 'c18', verb: 'START', args: ['S-20261125-01'] });
    await dev.publishAsync(`${PREFIX}/${DEVICE}/status`, '"offline"', { qos: 1, retain: true });
    await waitFor(() => rec.calls.some((c) => c.op === 'linkDown'));
    expect(rec.calls.filter((c) => c.op === 'linkDown')).toEqual([{ op: 'linkDown', deviceId: DEVICE, reason: 'device status offline' }]);
    expect(rec.calls.filter((c) => c.op === 'discard')).toEqual([]);
    await b.stop();
    await waitFor(() => !g.status().up);
    await expect(link.send({ cmdId: 'c19', verb: 'PAUSE', args: [] })).rejects.toThrow(/not connected/);
  });

  it('a command queued for a console that is away expires at the broker: no stale command after TIMEOUT', async () => {
    const b = await broker();
    // The console has a persistent session with a cmd subscription, then goes away.
    const persistent = { clientId: `console-${DEVICE}`, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 }, reconnectPeriod: 0 };
    const away = await connectAsync(b.url, persistent);
    await away.subscribeAsync(`${PREFIX}/${DEVICE}/cmd`, { qos: 1 });
    await away.endAsync();
    const rec = recordingSink();
    const g = await gateway(b, rec.sink);
    await waitFor(() => g.status().up);
    const other = await device(b);
    await other.publishAsync(`${PREFIX}/${DEVICE}/status`, 'online', { qos: 1, retain: true });
    await waitFor(() => rec.calls.some((c) => c.op === 'ingest'));
    const link = rec.calls.find((c) => c.op === 'ingest')!.link!;
    const sentAt = Date.now();
    await link.send({ cmdId: 'stale1', verb: 'START', args: ['S-1'] });
    // The expiry is a property of elapsed time: wait until it has certainly passed.
    // mosquitto keeps expiry times in whole seconds: 3 s can last almost 4.
    await waitFor(() => Date.now() - sentAt > 4500, { timeoutMs: 6000, intervalMs: 100 });
    // The handler is attached before CONNACK: a queued message is delivered right after it.
    const back = connect(b.url, persistent);
    cleanups.push(() => back.endAsync(true));
    const got: string[] = [];
    back.on('message', (_t, p) => got.push(JSON.parse(p.toString()).id));
    await new Promise<void>((resolve) => back.once('connect', () => resolve()));
    await link.send({ cmdId: 'fresh1', verb: 'PAUSE', args: [] });
    await waitFor(() => got.includes('fresh1'), { message: 'the fresh command arrives' });
    expect(got).toEqual(['fresh1']);
  });

  it('keeps a dead console down when the broker replays its retained HELLO and last will', async () => {
    const b = await broker();
    const dev = await connectAsync(b.url, {
      clientId: 'device-dead', reconnectPeriod: 0,
      will: { topic: `${PREFIX}/${DEVICE}/status`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    // status before hello: mosquitto replays retained topics in creation order, so `offline` comes first and
    // the HELLO after it (the order a gateway cannot rely on either way).
    await dev.publishAsync(`${PREFIX}/${DEVICE}/status`, 'online', { qos: 1, retain: true });
    await dev.publishAsync(`${PREFIX}/${DEVICE}/hello`, JSON.stringify({ deviceId: DEVICE, model: 'M', fw: '1', icd: 1, serialNo: 'S' }), { qos: 1, retain: true });
    dev.stream.destroy(); // dies: the broker publishes the will and keeps it retained
    const watcher = await device(b);
    const wills: string[] = [];
    watcher.on('message', (_t, p) => wills.push(p.toString()));
    await watcher.subscribeAsync(`${PREFIX}/${DEVICE}/status`, { qos: 1 });
    await waitFor(() => wills.includes('offline'), { message: 'last will retained' });

    const rec = recordingSink();
    const g = await gateway(b, rec.sink);
    await waitFor(() => g.status().up && rec.calls.some((c) => c.op === 'ingest') && rec.calls.some((c) => c.op === 'linkDown'));
    const mine = rec.calls.filter((c) => c.deviceId === DEVICE);
    expect(mine.at(-1)).toEqual({ op: 'linkDown', deviceId: DEVICE, reason: 'device status offline' });
  });

  it('survives a broker that is down at start and never logs the password', async () => {
    const port = await freePort();
    const rec = recordingSink();
    const log = capturingLogger();
    const g = await gateway(`mqtt://gw:s3cret@127.0.0.1:${port}`, rec.sink, { logger: log.logger });
    await waitFor(() => g.status().lastError !== null, { message: 'connection refused seen' });
    await waitFor(() => log.lines.some((l) => l.msg.includes('still retrying')), { message: 'capped backoff reached', timeoutMs: 15_000 });
    expect(g.status()).toMatchObject({ kind: 'mqtt', up: false, source: `mqtt://gw@127.0.0.1:${port}` });
    expect(g.status().detail).toMatch(/broker unreachable/);
    expect(JSON.stringify(log.lines)).not.toContain('s3cret');
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1); // same error every try: logged once
  });
});
