import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/bus.js';
import { AlarmEngine } from '../../../src/alarms/engine.js';
import {
  FileAlarmStore, MemoryAlarmStore, emptyAlarms, type AlarmStore, type PersistedAlarms,
} from '../../../src/alarms/store.js';
import { ManualClock } from '../../../src/util/clock.js';
import { waitFor } from '../../helpers/waitFor.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'msc-alarms-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sample: PersistedAlarms = {
  version: 1, savedAt: 5,
  instances: [{
    alarm: {
      id: 'D1:AIR_IN_LINE', device: 'D1', rule: 'AIR_IN_LINE', source: 'process', priority: 'HIGH', state: 'RTN_UNACK',
      active: false, latching: true, raisedAt: 1, clearedAt: 2, value: 1, limit: 0, message: 'Air', ackedBy: null, ackedAt: null,
      shelvedUntil: null, sessionId: 'S1', sources: [],
    },
    ranks: { device: 0, process: 0, technical: 0 }, reannunciateMs: 300_000, escalateAfterMs: null, unackSince: 1,
  }],
  audioPauses: [{ deviceId: 'D1', until: 99, maxRank: 3, actor: { user: 'u', role: 'operator' } }],
};

/** One contract, every implementation. */
const implementations: Array<[string, () => () => AlarmStore]> = [
  ['MemoryAlarmStore', () => { const s = new MemoryAlarmStore(); return () => s; }],
  ['FileAlarmStore', () => { const dir = tempDir(); return () => new FileAlarmStore({ dataDir: dir }); }],
];

describe.each(implementations)('AlarmStore contract: %s', (_name, make) => {
  it('loads an empty state at first', () => {
    expect(make()().load()).toEqual(emptyAlarms());
  });

  it('returns what was saved, after flush, to a new instance', () => {
    const open = make();
    const a = open();
    a.save({ ...sample, savedAt: 1 });
    a.save(sample);
    a.flush();
    expect(open().load()).toEqual(sample);
  });
});

describe('FileAlarmStore', () => {
  it('writes within the debounce without flush, atomically (no tmp file left)', async () => {
    const dir = tempDir();
    const store = new FileAlarmStore({ dataDir: dir, debounceMs: 50 });
    store.save(sample);
    expect(existsSync(store.file)).toBe(false);
    await waitFor(() => existsSync(store.file), { timeoutMs: 2000, message: 'alarm file written' });
    expect(readdirSync(dir)).toEqual(['alarms.json']);
    expect(new FileAlarmStore({ dataDir: dir }).load()).toEqual(sample);
  });

  it('sets a corrupt file aside and reports the problem instead of throwing', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'alarms.json'), '{"version":1,"instan');
    const loaded = new FileAlarmStore({ dataDir: dir }).load();
    expect(loaded.instances).toEqual([]);
    expect(loaded.problem).toMatch(/not JSON/);
    expect(readdirSync(dir).some((f) => f.startsWith('alarms.json.corrupt-'))).toBe(true);
  });

  it('reports a failed write and keeps the state pending', () => {
    const dir = tempDir();
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const store = new FileAlarmStore({ dataDir: blocker });
    const errors: Array<string | null> = [];
    store.onWriteError = (m) => errors.push(m);
    store.save(sample);
    store.flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/cannot write/);
  });
});

describe('restart persistence through the file store', () => {
  const NURSE = { user: 'nurse1', role: 'operator' };
  const OK = { PV: 100, PA: -100, QB: 150, SQB: 150, QP: 30, TMP: 40, DPR: 20, TR: 37, STR: 37, AIR: 0, BLD: 0, DO: 80 };

  function gateway(dir: string, clock: ManualClock) {
    const bus = new EventBus();
    const engine = new AlarmEngine({
      bus, devices: { get: () => undefined, list: () => [] }, store: new FileAlarmStore({ dataDir: dir }),
      clock,
    });
    let seq = 0;
    const frame = (v: Record<string, number>) => bus.emit('telemetry', { deviceId: 'D1', sessionId: 'S1', seq: seq++, t: clock.now(), rx: clock.now(), v });
    const state = () => bus.emit('state', { deviceId: 'D1', seq: seq++, t: clock.now(), rx: clock.now(), state: 'RUNNING', sessionId: 'S1', previous: null });
    return { bus, engine, frame, state };
  }

  it('active alarms, latches, unacknowledged states, shelves and audio pauses survive a restart', () => {
    const dir = tempDir();
    const clock = new ManualClock(1_000_000);
    const a = gateway(dir, clock);
    a.engine.start();
    a.state();
    a.frame({ ...OK, AIR: 1 });
    a.frame(OK); // AIR_IN_LINE latched: RTN_UNACK
    for (let i = 0; i <= 2; i++) { a.frame({ ...OK, PV: 300 }); clock.advance(1000); } // PV_HIGH active, UNACK
    for (let i = 0; i <= 60; i++) { a.frame({ ...OK, PV: 300, DO: 30 }); clock.advance(1000); }
    a.engine.shelve('D1:DO_LOW', 10, 'probe recalibrating', NURSE);
    a.engine.audioPause('D1', NURSE);
    const before = a.engine.list();
    a.engine.stop();

    const b = gateway(dir, clock);
    b.engine.start();
    expect(b.engine.list()).toEqual(before);
    expect(b.engine.get('D1:AIR_IN_LINE')).toMatchObject({ state: 'RTN_UNACK', latching: true });
    expect(b.engine.get('D1:PV_HIGH')).toMatchObject({ state: 'UNACK', active: true });
    expect(b.engine.get('D1:DO_LOW')).toMatchObject({ state: 'SHELVED', shelveReason: 'probe recalibrating' });
    expect(b.engine.audioPauseOf('D1')).not.toBeNull();

    // The restored active alarm is cleared by a normal reading (not left dangling); it latches unacknowledged.
    b.state();
    b.frame({ ...OK, DO: 30 });
    expect(b.engine.get('D1:PV_HIGH')).toMatchObject({ state: 'RTN_UNACK', active: false });
    expect(b.engine.ack('D1:AIR_IN_LINE', NURSE)).toMatchObject({ ok: true, alarm: { state: 'NORMAL' } });
    // The shelf still expires by itself, on the engine's own tick, after the restart.
    clock.advance(10 * 60_000);
    expect(b.engine.get('D1:DO_LOW')).toMatchObject({ state: 'UNACK', active: true });
    b.engine.stop();
  });

  it('an unreadable alarm file raises a gateway technical alarm', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'alarms.json'), 'garbage');
    const g = gateway(dir, new ManualClock(1));
    g.engine.start();
    expect(g.engine.get('gateway:ALARM_STORE')).toMatchObject({ state: 'UNACK', priority: 'MEDIUM', source: 'technical' });
    g.engine.stop();
  });
});
