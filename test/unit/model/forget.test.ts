/**
 * Memory that grows with what others send is bounded: a console silent for `forgetSilentMs` while not in a
 * session is forgotten in memory (record gone, the bus tells the other parts, the alarm engine closes its alarms
 * with a `reset`), never one in a session; a HELLO brings it back. A console refused beyond maxConsoles raises
 * CONSOLE_LIMIT, cleared 5 minutes after the last refusal.
 */
import { describe, expect, it } from 'vitest';
import { AlarmEngine } from '../../../src/alarms/engine.js';
import { MemoryAlarmStore } from '../../../src/alarms/store.js';
import type { AlarmTransition } from '../../../src/alarms/types.js';
import { EventBus, type BusEvents } from '../../../src/bus.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { helloFrame } from '../../helpers/hello.js';

const link: DeviceLink = { kind: 'mqtt', source: 'mqtt://broker', send: async () => {} };
const HOUR = 3600_000;

function setup(opts: { forgetSilentMs?: number; maxConsoles?: number } = {}) {
  const clock = new ManualClock(1_764_000_000_000);
  const bus = new EventBus();
  const forgets: Array<BusEvents['forget']> = [];
  bus.on({}, 'forget', (f) => forgets.push(f));
  const limit: Array<string | null> = [];
  const hub = new DeviceHub({
    // A 1 s silence check (the alarm engine's tick rate) keeps hours of ManualClock time cheap to advance.
    bus, logger: silentLogger(), clock, tickMs: 1000, forgetSilentMs: opts.forgetSilentMs ?? 2 * HOUR, maxConsoles: opts.maxConsoles,
    onConsoleLimit: (m) => limit.push(m),
  });
  hub.start();
  return { clock, bus, hub, forgets, limit };
}

describe('forgetting silent consoles', () => {
  it('forgets a console silent outside a session, keeps one in a session, and a HELLO brings it back', async () => {
    const { clock, hub, forgets } = setup();
    await hub.ingest('MSC-0001', [helloFrame('MSC-0001'), { type: 'S', seq: 1, t: clock.now(), state: 'IDLE', sessionId: null }], link);
    await hub.ingest('MSC-0002', [helloFrame('MSC-0002'), { type: 'S', seq: 1, t: clock.now(), state: 'RUNNING', sessionId: 'S-1' }], link);
    clock.advance(2 * HOUR - 1000);
    expect(hub.ids()).toEqual(['MSC-0001', 'MSC-0002']);
    clock.advance(1000);
    expect(hub.ids()).toEqual(['MSC-0002']); // in a session: never forgotten, however long it is silent
    expect(forgets).toEqual([{ deviceId: 'MSC-0001', reason: 'silent for 120 min outside a session', at: clock.now() }]);
    expect(hub.forgottenCount).toBe(1);
    clock.advance(100 * HOUR);
    expect(hub.ids()).toEqual(['MSC-0002']);
    await hub.ingest('MSC-0001', [helloFrame('MSC-0001')], link);
    expect(hub.get('MSC-0001')).toMatchObject({ id: 'MSC-0001', model: 'MSC-ALS 2' });
  });

  it('never forgets with forgetSilentMs 0', async () => {
    const { clock, hub } = setup({ forgetSilentMs: 0 });
    await hub.ingest('MSC-0001', [helloFrame('MSC-0001')], link);
    clock.advance(1000 * HOUR);
    expect(hub.ids()).toEqual(['MSC-0001']);
  });

  it('closes the alarms of a forgotten console with a reset naming the reason, and keeps none of them', async () => {
    const { clock, bus, hub } = setup();
    const store = new MemoryAlarmStore();
    const engine = new AlarmEngine({ bus, devices: hub, clock, logger: silentLogger(), store });
    engine.start();
    const transitions: AlarmTransition[] = [];
    bus.on({}, 'alarm', (a) => transitions.push(a));
    await hub.ingest('MSC-0001', [helloFrame('MSC-0001'), { type: 'S', seq: 1, t: clock.now(), state: 'ENDED', sessionId: null }], link);
    await hub.ingest('MSC-0001', [{ type: 'EV', seq: 2, t: clock.now(), code: 'AIR_DETECTED', prio: 'H', active: true, text: 'air' }], link);
    expect(engine.list({ state: 'active', device: 'MSC-0001' }).length).toBeGreaterThan(0);
    clock.advance(2 * HOUR - 1000);
    expect(hub.ids()).toEqual(['MSC-0001']); // the link was found lost long before
    clock.advance(1000);
    expect(hub.ids()).toEqual([]);
    expect(engine.list({ state: 'all', device: 'MSC-0001' })).toEqual([]);
    const resets = transitions.filter((t) => t.kind === 'reset');
    expect(resets.length).toBeGreaterThan(0);
    for (const r of resets) expect(r).toMatchObject({ to: 'NORMAL', reason: 'console forgotten: silent for 120 min outside a session' });
    engine.stop();
    expect(store.load().instances.filter((i) => i.alarm.device === 'MSC-0001')).toEqual([]);
  });
});

describe('CONSOLE_LIMIT', () => {
  it('is raised when a console is refused beyond maxConsoles, once, and cleared 5 minutes after the last refusal', async () => {
    const { clock, hub, limit } = setup({ maxConsoles: 1 });
    await hub.ingest('MSC-0001', [helloFrame('MSC-0001')], link);
    await hub.ingest('MSC-0002', [helloFrame('MSC-0002')], link);
    await hub.ingest('MSC-0003', [helloFrame('MSC-0003')], link);
    expect(limit).toEqual([expect.stringMatching(/^console MSC-0002 refused: the gateway already serves 1 consoles \(maxConsoles\)/)]);
    expect(hub.ids()).toEqual(['MSC-0001']);
    clock.advance(4 * 60_000);
    await hub.ingest('MSC-0002', [helloFrame('MSC-0002')], link);
    clock.advance(4 * 60_000);
    expect(limit).toHaveLength(1);
    clock.advance(60_000);
    expect(limit).toEqual([expect.any(String), null]);
  });
});
