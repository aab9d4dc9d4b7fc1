/** The alarm engine on a manual clock, a real EventBus and a fake DeviceView (unit tests only). */
import { EventBus, type BusEvents } from '../../../src/bus.js';
import { AlarmEngine } from '../../../src/alarms/engine.js';
import type { AlarmProfile } from '../../../src/alarms/rules.js';
import { MemoryAlarmStore, type AlarmStore } from '../../../src/alarms/store.js';
import type { AlarmTransition } from '../../../src/alarms/types.js';
import type { DeviceSnapshot } from '../../../src/model/types.js';
import type { SessionState } from '../../../src/protocol/types.js';
import { ManualClock } from '../../../src/util/clock.js';

export const NURSE = { user: 'nurse1', role: 'operator' };
export const ENGINEER = { user: 'eng1', role: 'engineer' };

export function snapshot(id: string, over: Partial<DeviceSnapshot> = {}): DeviceSnapshot {
  return {
    id, model: 'MSC-ALS 2', fw: '3.4.1', serialNo: 'SN1', icd: 1, transport: 'serial', source: '/dev/x', link: 'connected',
    linkReason: null, lastSeen: null, state: null, stateSince: null, sessionId: null, values: {},
    counters: { frames: 0, telemetry: 0, states: 0, events: 0, acks: 0, discards: {}, seqGaps: 0, framesLost: 0, duplicates: 0, reconnects: 0 },
    clockOffsetMs: 0, dataLateMs: 0, telemetryPeriodMs: 100, ...over,
  };
}

/**
 * An engine on a ManualClock (gateway time = device time = `clock.now()`; its 1 s technical tick runs when the clock
 * is advanced past it), a real bus, a fake device view.
 */
export function harness(opts: { profile?: AlarmProfile; store?: AlarmStore; start?: number } = {}) {
  const clock = new ManualClock(opts.start ?? 1_000_000);
  const bus = new EventBus();
  const snaps = new Map<string, DeviceSnapshot>();
  const devices = { get: (id: string) => snaps.get(id), list: () => [...snaps.values()] };
  const engine = new AlarmEngine({
    bus, devices, profile: opts.profile, store: opts.store ?? new MemoryAlarmStore(), clock,
  });
  const transitions: AlarmTransition[] = [];
  const audio: Array<BusEvents['audioPause']> = [];
  const owner = {};
  bus.on(owner, 'alarm', (t) => transitions.push(t));
  bus.on(owner, 'audioPause', (a) => audio.push(a));
  let seq = 0;
  const h = {
    clock, bus, engine, transitions, audio, snaps,
    start() { engine.start(); return h; },
    frame(v: Record<string, number | null>, device = 'D1') {
      bus.emit('telemetry', { deviceId: device, sessionId: 'S1', seq: seq++, t: clock.now(), rx: clock.now(), v });
    },
    state(state: SessionState, device = 'D1') {
      bus.emit('state', { deviceId: device, seq: seq++, t: clock.now(), rx: clock.now(), state, sessionId: 'S1', previous: null });
    },
    event(code: string, prio: 'H' | 'M' | 'L' | 'I', active: boolean, device = 'D1') {
      bus.emit('event', { deviceId: device, sessionId: 'S1', seq: seq++, t: clock.now(), rx: clock.now(), code, prio, active, text: `${code} text` });
    },
    /**
     * Advances the clock in steps of at most 1 s (the engine's tick runs as it falls due), optionally sending a
     * frame now and after each step.
     */
    advance(ms: number, v?: Record<string, number | null>, device = 'D1') {
      const end = clock.now() + ms;
      if (v) h.frame(v, device);
      while (clock.now() < end) {
        clock.advance(Math.min(1000, end - clock.now()));
        if (v) h.frame(v, device);
      }
    },
    get: (id: string) => engine.get(id),
    kinds: (id: string) => transitions.filter((t) => t.alarm.id === id).map((t) => `${t.kind}:${t.to}`),
  };
  return h;
}

export const OK = { PV: 100, PA: -100, QB: 150, SQB: 150, QP: 30, TMP: 40, DPR: 20, TR: 37, STR: 37, AIR: 0, BLD: 0 };
