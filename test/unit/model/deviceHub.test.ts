import { describe, expect, it } from 'vitest';
import { EventBus, type BusEvents } from '../../../src/bus.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import type { DeviceFrame } from '../../../src/protocol/types.js';

const link: DeviceLink = { kind: 'serial', source: '/dev/ttyX', send: async () => {} };
const hello: DeviceFrame = { type: 'HELLO', deviceId: 'MSC-0001', model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN1' };

function setup(now = { t: 1_000_000 }) {
  const bus = new EventBus();
  const seen: Array<[keyof BusEvents, unknown]> = [];
  const owner = {};
  for (const k of ['telemetry', 'state', 'event', 'link', 'hello', 'ack', 'discard'] as const) {
    bus.on(owner, k, (p) => seen.push([k, p]));
  }
  const hub = new DeviceHub({ bus, logger: silentLogger(), now: () => now.t });
  return { bus, hub, seen, now };
}

describe('DeviceHub', () => {
  it('builds the device model from HELLO, T, S and EV frames', async () => {
    const { hub, seen } = setup();
    await hub.ingest('MSC-0001', [
      hello,
      { type: 'S', seq: 1, t: 999_900, state: 'RUNNING', sessionId: 'S-1' },
      { type: 'T', seq: 2, t: 1_000_000, v: { QB: 150.2, PV: null, NEWCH: 3 } },
      { type: 'EV', seq: 3, t: 1_000_050, code: 'AIR_DETECTED', prio: 'H', active: true, text: 'Air' },
    ], link);
    const d = hub.get('MSC-0001')!;
    expect(d).toMatchObject({
      id: 'MSC-0001', model: 'MSC-ALS 2', fw: '3.4.1', serialNo: 'SN1', transport: 'serial', link: 'connected',
      lastSeen: 1_000_000, state: 'RUNNING', sessionId: 'S-1',
      values: { QB: { v: 150.2, t: 1_000_000 }, PV: { v: null, t: 1_000_000, fault: true }, NEWCH: { v: 3, t: 1_000_000 } },
    });
    expect(d.counters).toMatchObject({ frames: 4, telemetry: 1, states: 1, events: 1, seqGaps: 0, framesLost: 0 });
    expect(seen.map(([k]) => k)).toEqual(['hello', 'link', 'state', 'telemetry', 'event']);
    const t = seen.find(([k]) => k === 'telemetry')![1];
    expect(t).toMatchObject({ deviceId: 'MSC-0001', sessionId: 'S-1', seq: 2 });
  });

  it('emits state on change only, not on the 5 s keep-alive', async () => {
    const { hub, seen } = setup();
    await hub.ingest('D', [{ type: 'S', seq: 1, t: 1, state: 'IDLE', sessionId: null }], link);
    await hub.ingest('D', [{ type: 'S', seq: 2, t: 2, state: 'IDLE', sessionId: null }], link);
    await hub.ingest('D', [{ type: 'S', seq: 3, t: 3, state: 'SELFTEST', sessionId: null }], link);
    expect(seen.filter(([k]) => k === 'state').length).toBe(2);
  });

  it('counts gaps, lost frames and duplicates and drops duplicates from the bus', async () => {
    const { hub, seen } = setup();
    const T = (seq: number) => ({ type: 'T' as const, seq, t: 1000 + seq, v: { QB: seq } });
    await hub.ingest('D', [T(1), T(2), T(6), T(6)], link);
    const c = hub.get('D')!.counters;
    expect([c.seqGaps, c.framesLost, c.duplicates]).toEqual([1, 3, 1]);
    expect(seen.filter(([k]) => k === 'telemetry').length).toBe(3);
  });

  it('estimates the device clock offset from the least-delayed frame', async () => {
    const { hub, now } = setup();
    // Device clock 5 s ahead; frames arrive 10–200 ms after they were stamped.
    for (const [i, delay] of [[0, 200], [1, 10], [2, 80]] as const) {
      now.t = 1_000_000 + i * 100;
      await hub.ingest('D', [{ type: 'T', seq: i, t: now.t + 5000 - delay, v: {} }], link);
    }
    expect(hub.get('D')!.clockOffsetMs).toBe(4990);
  });

  it('does not let a delay that builds up into the clock offset: the lateness of each sample shows it (10 min memory)', async () => {
    const { hub, now, seen } = setup();
    // Device clock 2 s ahead. On time for 30 s, then every second the samples arrive 250 ms later, for 60 s.
    let seq = 0;
    for (let ms = 0; ms <= 90_000; ms += 40) {
      now.t = 1_000_000 + ms;
      const delay = ms <= 30_000 ? 5 : 5 + Math.floor((ms - 30_000) / 1000) * 250;
      await hub.ingest('D', [{ type: 'T', seq: ++seq, t: now.t + 2000 - delay, v: { QB: 1 } }], link);
    }
    const d = hub.get('D')!;
    expect(d.clockOffsetMs).toBe(1995);
    expect(d.dataLateMs).toBe(60 * 250);
    const last = seen.filter(([k]) => k === 'telemetry').at(-1)![1] as { lateMs: number };
    expect(last.lateMs).toBe(15_000);
  });

  it('forgets the learned offset after 10 minutes, and at a HELLO (a console that restarts may have had its clock set)', async () => {
    const { hub, now } = setup();
    now.t = 1_000_000;
    await hub.ingest('D', [{ type: 'T', seq: 1, t: now.t + 5000, v: {} }], link);
    // The clock is set back by 5 s: 10 minutes later the old offset has left the memory.
    let seq = 1;
    for (let ms = 1000; ms <= 11 * 60_000; ms += 1000) {
      now.t = 1_000_000 + ms;
      await hub.ingest('D', [{ type: 'T', seq: ++seq, t: now.t, v: {} }], link);
    }
    expect(hub.get('D')!.clockOffsetMs).toBe(0);
    await hub.ingest('D', [{ type: 'T', seq: ++seq, t: now.t + 3000, v: {} }], link);
    expect(hub.get('D')!.clockOffsetMs).toBe(3000);
    await hub.ingest('D', [{ ...hello, deviceId: 'D' }, { type: 'T', seq: ++seq, t: now.t - 1000, v: {} }], link);
    expect(hub.get('D')!.clockOffsetMs).toBe(-1000);
    expect(hub.get('D')!.dataLateMs).toBe(0);
  });

  it('marks the link lost on silence and on linkDown, and connected again on frames', async () => {
    const { hub, now, seen } = setup();
    await hub.ingest('D', [{ type: 'S', seq: 1, t: 1, state: 'RUNNING', sessionId: 'x' }], link);
    now.t += 3500;
    (hub as unknown as { checkSilence(): void }).checkSilence();
    expect(hub.get('D')!.link).toBe('lost');
    await hub.ingest('D', [{ type: 'T', seq: 2, t: 2, v: {} }], link);
    expect(hub.get('D')!.link).toBe('connected');
    hub.linkDown('D', 'port closed');
    expect(hub.get('D')).toMatchObject({ link: 'lost', linkReason: 'port closed' });
    expect(seen.filter(([k]) => k === 'link').map(([, p]) => (p as { link: string }).link)).toEqual(['connected', 'lost', 'connected', 'lost']);
  });

  it('keeps an IDLE device connected through the keep-alive interval', async () => {
    const { hub, now } = setup();
    await hub.ingest('D', [{ type: 'S', seq: 1, t: 1, state: 'IDLE', sessionId: null }], link);
    now.t += 5500;
    (hub as unknown as { checkSilence(): void }).checkSilence();
    expect(hub.get('D')!.link).toBe('connected');
    now.t += 6000;
    (hub as unknown as { checkSilence(): void }).checkSilence();
    expect(hub.get('D')!.link).toBe('lost');
  });

  it('does not mark a link connected on a HELLO alone (MQTT replays a dead console\'s retained HELLO)', async () => {
    const { hub } = setup();
    await hub.ingest('MSC-0001', [hello], link);
    expect(hub.get('MSC-0001')!.link).toBe('lost');
    await hub.ingest('MSC-0001', [{ type: 'S', seq: 1, t: 1, state: 'IDLE', sessionId: null }], link);
    expect(hub.get('MSC-0001')!.link).toBe('connected');
  });

  it('counts discards per device, and per source before identity, then hands them over', () => {
    const { hub } = setup();
    hub.discard(null, '/dev/ttyX', { type: 'discard', reason: 'bad_crc', raw: '', detail: '' });
    void hub.ingest('MSC-0001', [hello], link);
    hub.discard('MSC-0001', '/dev/ttyX', { type: 'discard', reason: 'bad_crc', raw: '', detail: '' });
    expect(hub.get('MSC-0001')!.counters.discards).toEqual({ bad_crc: 2 });
    expect(hub.metricsText()).toContain('msc_discards_total{device="MSC-0001",reason="bad_crc"} 2');
  });

  it('keeps ingesting when the journal cannot tell the last seq (unwritable data directory)', async () => {
    const bus = new EventBus();
    const hub = new DeviceHub({
      bus, logger: silentLogger(),
      seqMemory: { lastSeq: () => { throw new Error('journal unavailable'); } },
    });
    await hub.ingest('D', [{ type: 'T', seq: 1, t: 1, v: { QB: 150 } }], link);
    expect(hub.get('D')!.values.QB.v).toBe(150);
  });

  it('refuses an invalid or reserved device id: counted under its source, no device created', async () => {
    const { hub } = setup();
    await hub.ingest('gateway', [{ type: 'T', seq: 1, t: 1, v: { QB: 1 } }], link);
    await hub.ingest('bad id/with slash', [{ type: 'T', seq: 1, t: 1, v: { QB: 1 } }], link);
    expect(hub.list()).toEqual([]);
    expect(hub.anonymousDiscardCounts().get('/dev/ttyX')).toEqual({ schema: 2 });
  });

  it('resolves ingest only after the journal committed', async () => {
    const bus = new EventBus();
    let release!: () => void;
    const durable = new Promise<void>((r) => (release = r));
    const hub = new DeviceHub({ bus, logger: silentLogger(), durability: { committed: () => durable } });
    let done = false;
    const p = hub.ingest('D', [{ type: 'T', seq: 1, t: 1, v: {} }], link).then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    release();
    await p;
    expect(done).toBe(true);
  });
});
