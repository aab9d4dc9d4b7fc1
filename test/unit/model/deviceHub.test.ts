import { describe, expect, it } from 'vitest';
import { EventBus, type BusEvents } from '../../../src/bus.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import type { DeviceFrame } from '../../../src/protocol/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { metricsTextOf } from '../../../src/metrics.js';

const link: DeviceLink = { kind: 'serial', source: '/dev/ttyX', send: async () => {} };
const hello: DeviceFrame = { type: 'HELLO', deviceId: 'MSC-0001', model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN1' };

/** A console exists once it said HELLO: every test of a device's frames starts with one. */
function greet(hub: DeviceHub, id: string, l: DeviceLink = link): Promise<void> {
  return hub.ingest(id, [{ ...hello, deviceId: id }], l);
}

/** A started hub on a ManualClock: advancing it runs the hub's own silence check as it falls due. */
function setup(clock = new ManualClock(1_000_000)) {
  const bus = new EventBus();
  const seen: Array<[keyof BusEvents, unknown]> = [];
  const owner = {};
  for (const k of ['telemetry', 'state', 'event', 'link', 'hello', 'ack', 'discard'] as const) {
    bus.on(owner, k, (p) => seen.push([k, p]));
  }
  const hub = new DeviceHub({ bus, logger: silentLogger(), clock });
  hub.start();
  return { bus, hub, seen, clock };
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

  it('keeps each channel\'s latest reading (written in place): a snapshot is a copy, a fault shows and clears', async () => {
    const { hub } = setup();
    await greet(hub, 'MSC-0001');
    await hub.ingest('MSC-0001', [{ type: 'T', seq: 1, t: 1_000, v: { QB: 150, PV: 110 } }], link);
    const before = hub.get('MSC-0001')!;
    await hub.ingest('MSC-0001', [
      { type: 'T', seq: 2, t: 1_040, v: { QB: 151, PV: null } },
      { type: 'T', seq: 3, t: 1_020, v: { QB: 1 } }, // late: never overwrites a newer value
    ], link);
    expect(before.values).toStrictEqual({ QB: { v: 150, t: 1_000 }, PV: { v: 110, t: 1_000 } });
    expect(hub.get('MSC-0001')!.values).toStrictEqual({ QB: { v: 151, t: 1_040 }, PV: { v: null, t: 1_040, fault: true } });
    await hub.ingest('MSC-0001', [{ type: 'T', seq: 4, t: 1_080, v: { QB: 152, PV: 112 } }], link);
    expect(hub.get('MSC-0001')!.values).toStrictEqual({ QB: { v: 152, t: 1_080 }, PV: { v: 112, t: 1_080 } });
  });

  it('emits state on change only, not on the 5 s keep-alive', async () => {
    const { hub, seen } = setup();
    await greet(hub, 'D');
    await hub.ingest('D', [{ type: 'S', seq: 1, t: 1, state: 'IDLE', sessionId: null }], link);
    await hub.ingest('D', [{ type: 'S', seq: 2, t: 2, state: 'IDLE', sessionId: null }], link);
    await hub.ingest('D', [{ type: 'S', seq: 3, t: 3, state: 'SELFTEST', sessionId: null }], link);
    expect(seen.filter(([k]) => k === 'state').length).toBe(2);
  });

  it('counts gaps, lost frames and duplicates and drops duplicates from the bus', async () => {
    const { hub, seen } = setup();
    await greet(hub, 'D');
    const T = (seq: number) => ({ type: 'T' as const, seq, t: 1000 + seq, v: { QB: seq } });
    await hub.ingest('D', [T(1), T(2), T(6), T(6)], link);
    const c = hub.get('D')!.counters;
    expect([c.seqGaps, c.framesLost, c.duplicates]).toEqual([1, 3, 1]);
    expect(seen.filter(([k]) => k === 'telemetry').length).toBe(3);
  });

  it('estimates the device clock offset from the least-delayed frame', async () => {
    const { hub, clock } = setup();
    await greet(hub, 'D');
    // Device clock 5 s ahead; frames arrive 10–200 ms after they were stamped.
    for (const [i, delay] of [[0, 200], [1, 10], [2, 80]] as const) {
      if (i > 0) clock.advance(100);
      await hub.ingest('D', [{ type: 'T', seq: i, t: clock.now() + 5000 - delay, v: {} }], link);
    }
    expect(hub.get('D')!.clockOffsetMs).toBe(4990);
  });

  it('does not let a delay that builds up into the clock offset: the lateness of each sample shows it (10 min memory)', async () => {
    const { hub, clock, seen } = setup();
    await greet(hub, 'D');
    // Device clock 2 s ahead. On time for 30 s, then every second the samples arrive 250 ms later, for 60 s.
    let seq = 0;
    for (let ms = 0; ms <= 90_000; ms += 40) {
      if (ms > 0) clock.advance(40);
      const delay = ms <= 30_000 ? 5 : 5 + Math.floor((ms - 30_000) / 1000) * 250;
      await hub.ingest('D', [{ type: 'T', seq: ++seq, t: clock.now() + 2000 - delay, v: { QB: 1 } }], link);
    }
    const d = hub.get('D')!;
    expect(d.clockOffsetMs).toBe(1995);
    expect(d.dataLateMs).toBe(60 * 250);
    const last = seen.filter(([k]) => k === 'telemetry').at(-1)![1] as { lateMs: number };
    expect(last.lateMs).toBe(15_000);
  });

  it('forgets the learned offset after 10 minutes, and at a HELLO (a console that restarts may have had its clock set)', async () => {
    const { hub, clock } = setup();
    await greet(hub, 'D');
    await hub.ingest('D', [{ type: 'T', seq: 1, t: clock.now() + 5000, v: {} }], link);
    // The clock is set back by 5 s: 10 minutes later the old offset has left the memory.
    let seq = 1;
    for (let ms = 1000; ms <= 11 * 60_000; ms += 1000) {
      clock.advance(1000);
      await hub.ingest('D', [{ type: 'T', seq: ++seq, t: clock.now(), v: {} }], link);
    }
    expect(hub.get('D')!.clockOffsetMs).toBe(0);
    await hub.ingest('D', [{ type: 'T', seq: ++seq, t: clock.now() + 3000, v: {} }], link);
    expect(hub.get('D')!.clockOffsetMs).toBe(3000);
    await hub.ingest('D', [{ ...hello, deviceId: 'D' }, { type: 'T', seq: ++seq, t: clock.now() - 1000, v: {} }], link);
    expect(hub.get('D')!.clockOffsetMs).toBe(-1000);
    expect(hub.get('D')!.dataLateMs).toBe(0);
  });

  it('marks the link lost on silence and on linkDown, and connected again on frames', async () => {
    const { hub, clock, seen } = setup();
    await greet(hub, 'D');
    await hub.ingest('D', [{ type: 'S', seq: 1, t: 1, state: 'RUNNING', sessionId: 'x' }], link);
    clock.advance(3500);
    expect(hub.get('D')!.link).toBe('lost');
    await hub.ingest('D', [{ type: 'T', seq: 2, t: 2, v: {} }], link);
    expect(hub.get('D')!.link).toBe('connected');
    hub.linkDown('D', 'port closed');
    expect(hub.get('D')).toMatchObject({ link: 'lost', linkReason: 'port closed' });
    expect(seen.filter(([k]) => k === 'link').map(([, p]) => (p as { link: string }).link)).toEqual(['connected', 'lost', 'connected', 'lost']);
  });

  it('keeps an IDLE device connected through the keep-alive interval', async () => {
    const { hub, clock } = setup();
    await greet(hub, 'D');
    await hub.ingest('D', [{ type: 'S', seq: 1, t: 1, state: 'IDLE', sessionId: null }], link);
    clock.advance(5500);
    expect(hub.get('D')!.link).toBe('connected');
    clock.advance(6000);
    expect(hub.get('D')!.link).toBe('lost');
  });

  it('does not mark a link connected on a HELLO alone (MQTT replays a dead console\'s retained HELLO)', async () => {
    const { hub } = setup();
    await hub.ingest('MSC-0001', [hello], link);
    expect(hub.get('MSC-0001')!.link).toBe('lost');
    await hub.ingest('MSC-0001', [{ type: 'S', seq: 1, t: 1, state: 'IDLE', sessionId: null }], link);
    expect(hub.get('MSC-0001')!.link).toBe('connected');
  });

  it('counts discards per device, and per source before identity, then hands them over', async () => {
    const { hub } = setup();
    hub.discard(null, '/dev/ttyX', { type: 'discard', reason: 'bad_crc', raw: '', detail: '' });
    void hub.ingest('MSC-0001', [hello], link);
    hub.discard('MSC-0001', '/dev/ttyX', { type: 'discard', reason: 'bad_crc', raw: '', detail: '' });
    expect(hub.get('MSC-0001')!.counters.discards).toEqual({ bad_crc: 2 });
    expect(await metricsTextOf((r) => hub.registerMetrics(r))).toContain('msc_discards_total{device="MSC-0001",reason="bad_crc"} 2');
  });

  it('keeps ingesting when the journal cannot tell the last seq (unwritable data directory)', async () => {
    const bus = new EventBus();
    const hub = new DeviceHub({
      bus, logger: silentLogger(),
      seqMemory: { lastSeq: () => { throw new Error('journal unavailable'); } },
    });
    await hub.ingest('D', [{ ...hello, deviceId: 'D' }, { type: 'T', seq: 1, t: 1, v: { QB: 150 } }], link);
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
    void greet(hub, 'D');
    const p = hub.ingest('D', [{ type: 'T', seq: 1, t: 1, v: {} }], link).then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    release();
    await p;
    expect(done).toBe(true);
  });

  it('counts a seq no console could reach apart and keeps it out of the loss count and the gaps', async () => {
    const { hub, clock, seen } = setup();
    await greet(hub, 'D');
    const T = (seq: number) => ({ type: 'T' as const, seq, t: clock.now(), v: { QB: 1 } });
    await hub.ingest('D', [T(1), T(2)], link);
    clock.advance(100);
    await hub.ingest('D', [T(2_000_000_000)], link);
    clock.advance(100);
    await hub.ingest('D', [T(3), T(5)], link);
    const c = hub.get('D')!.counters;
    expect([c.framesLost, c.seqGaps, c.seqImplausible]).toEqual([1, 1, 1]);
    expect(seen.filter(([k]) => k === 'telemetry').length).toBe(5); // the suspect frame is kept, not lost
    expect(await metricsTextOf((r) => hub.registerMetrics(r))).toContain('msc_seq_implausible_total{device="D"} 1');
    expect(await metricsTextOf((r) => hub.registerMetrics(r))).toContain('msc_frames_lost_total{device="D"} 1');
  });

  it('makes no console of an id that never sent a HELLO: counted under its source as no_hello, nothing on the bus', async () => {
    const { hub, seen } = setup();
    const mqtt: DeviceLink = { kind: 'mqtt', source: 'mqtt://broker:1883', send: async () => {} };
    await hub.ingest('X-1', [{ type: 'T', seq: 1, t: 1, v: { QB: 1 } }, { type: 'T', seq: 2, t: 2, v: { QB: 1 } }], mqtt);
    await hub.ingest('X-2', [{ type: 'S', seq: 1, t: 1, state: 'RUNNING', sessionId: 's' }], mqtt);
    await hub.ingest('X-3', [{ type: 'ACK', cmdId: 'c1', result: 'OK', detail: '' }], mqtt);
    await hub.ingest('X-4', [{ type: 'STATUS', online: true }], mqtt); // a retained status: no record, no count
    expect(hub.list()).toEqual([]);
    expect(hub.has('X-1')).toBe(false);
    expect(hub.anonymousDiscardCounts().get('mqtt://broker:1883')).toEqual({ no_hello: 4 });
    expect(seen.map(([k]) => k)).toEqual(['discard', 'discard', 'discard']);
    // The console that then says HELLO exists from then on; the broker's counts stay the broker's.
    await hub.ingest('X-1', [{ ...hello, deviceId: 'X-1' }], mqtt);
    await hub.ingest('X-1', [{ type: 'T', seq: 3, t: 3, v: { QB: 2 } }], mqtt);
    expect(hub.get('X-1')!.values.QB.v).toBe(2);
    expect(hub.get('X-1')!.counters.discards).toEqual({});
    expect(await metricsTextOf((r) => hub.registerMetrics(r))).toContain('msc_discards_total{device="",source="mqtt://broker:1883",reason="no_hello"} 4');
  });

  it('admits a console the journal knows without a new HELLO (a resumed MQTT session delivers its queue before the retained HELLO)', async () => {
    const asked: string[] = [];
    const hub = new DeviceHub({
      bus: new EventBus(), logger: silentLogger(), now: () => 10_000,
      seqMemory: { lastSeq: (id) => { asked.push(id); return id === 'KNOWN' ? { seq: 41, rx: 9_000 } : null; } },
    });
    await hub.ingest('KNOWN', [{ type: 'T', seq: 44, t: 1, v: { QB: 1 } }], link);
    expect(hub.get('KNOWN')!.counters).toMatchObject({ telemetry: 1, framesLost: 2, seqGaps: 1 });
    await hub.ingest('STRANGER', [{ type: 'T', seq: 1, t: 1, v: { QB: 1 } }], link);
    await hub.ingest('STRANGER', [{ type: 'T', seq: 2, t: 2, v: { QB: 1 } }], link);
    expect(hub.has('STRANGER')).toBe(false);
    expect(asked.filter((id) => id === 'STRANGER')).toHaveLength(1); // a refused id costs one journal read
  });

  it('asks the journal again about an id it could not answer for (unreadable journal), and admits it once it knows it', async () => {
    let readable = false;
    const hub = new DeviceHub({
      bus: new EventBus(), logger: silentLogger(),
      seqMemory: { lastSeq: () => { if (!readable) throw new Error('SQLITE_IOERR'); return { seq: 1, rx: 0 }; } },
    });
    await hub.ingest('KNOWN', [{ type: 'T', seq: 2, t: 1, v: { QB: 1 } }], link);
    expect(hub.has('KNOWN')).toBe(false);
    expect(hub.anonymousDiscardCounts().get('/dev/ttyX')).toEqual({ no_hello: 1 });
    readable = true;
    await hub.ingest('KNOWN', [{ type: 'T', seq: 3, t: 2, v: { QB: 1 } }], link);
    expect(hub.get('KNOWN')!.counters).toMatchObject({ telemetry: 1, framesLost: 1 });
  });

  it('holds at most maxConsoles: a new console beyond is refused and counted, never a record or an alarm source', async () => {
    const bus = new EventBus();
    const events: string[] = [];
    bus.on({}, 'hello', (h) => events.push(h.deviceId));
    const hub = new DeviceHub({ bus, logger: silentLogger(), maxConsoles: 2 });
    for (const id of ['A', 'B', 'C']) {
      await hub.ingest(id, [{ ...hello, deviceId: id }, { type: 'T', seq: 1, t: 1, v: { QB: 1 } }], link);
    }
    expect(hub.list().map((d) => d.id)).toEqual(['A', 'B']);
    expect(events).toEqual(['A', 'B']);
    expect(hub.anonymousDiscardCounts().get('/dev/ttyX')).toEqual({ too_many_consoles: 2 });
    await hub.ingest('A', [{ type: 'T', seq: 2, t: 2, v: { QB: 1 } }], link); // known ones go on
    expect(hub.get('A')!.counters.telemetry).toBe(2);
  });

  it('keeps at most 64 distinct channel keys per console, the ICD channels always: what the bus carries is capped', async () => {
    const { hub, seen } = setup();
    await greet(hub, 'D');
    const many: Record<string, number> = {};
    for (let i = 0; i < 20_000; i++) many[`X${i}`] = i;
    await hub.ingest('D', [{ type: 'T', seq: 1, t: 1, v: { ...many, QB: 150, TR: 37 } }], link);
    const sample = seen.filter(([k]) => k === 'telemetry').at(-1)![1] as { v: Record<string, number> };
    const keys = Object.keys(sample.v);
    expect(keys).toHaveLength(44 + 2);
    expect(sample.v).toMatchObject({ QB: 150, TR: 37, X0: 0, X43: 43 });
    expect(sample.v.X44).toBeUndefined();
    expect(Object.keys(hub.get('D')!.values)).toHaveLength(46);
    // The console's keys stay the ones it had; the ICD channels are never dropped.
    await hub.ingest('D', [{ type: 'T', seq: 2, t: 2, v: { X0: 1, NEW: 2, PV: 100, SHEP: 5 } }], link);
    expect((seen.filter(([k]) => k === 'telemetry').at(-1)![1] as { v: object }).v).toEqual({ X0: 1, PV: 100, SHEP: 5 });
    expect(hub.get('D')!.counters.discards).toEqual({ too_many_channels: 2 });
  });
});
