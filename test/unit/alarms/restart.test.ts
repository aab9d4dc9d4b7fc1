/**
 * What the alarm engine knows across a gateway restart (docs/alarms.md "Missing data is never normal",
 * "Technical alarms"): a restored COMM_LOSS is not cleared by a replayed retained HELLO, and a device's saved
 * session state, not RUNNING, governs its rules until its first `S` frame.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileAlarmStore, MemoryAlarmStore } from '../../../src/alarms/store.js';
import type { SessionState } from '../../../src/protocol/types.js';
import { OK, harness } from './engineHarness.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'msc-alarms-restart-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

type Harness = ReturnType<typeof harness>;

/** What the broker delivers at every subscribe for a console that has died: its retained HELLO (ICD §2). */
function retainedHello(h: Harness, device = 'D1'): void {
  h.bus.emit('hello', {
    deviceId: device, transport: 'mqtt', source: `msc/${device}`,
    hello: { type: 'HELLO', deviceId: device, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN1' },
  });
}

describe('a restored COMM_LOSS across a restart', () => {
  it('stays active while only a retained HELLO (and a state frame) arrives; real telemetry clears it', () => {
    const store = new MemoryAlarmStore();
    const a = harness({ store }).start();
    a.state('RUNNING');
    a.frame(OK);
    a.advance(4000); // the console dies: no frame for > 3 s
    expect(a.get('D1:COMM_LOSS')).toMatchObject({ active: true, state: 'UNACK', priority: 'HIGH' });
    a.engine.stop();

    const b = harness({ store, start: a.clock.now() + 60_000 }).start();
    expect(b.get('D1:COMM_LOSS')).toMatchObject({ active: true, state: 'UNACK' });
    // Right after start, well within the 3 s silence limit, and again at every resubscribe for 10 s.
    b.clock.advance(200);
    for (let i = 0; i < 10; i++) {
      retainedHello(b);
      b.advance(1000);
      expect(b.get('D1:COMM_LOSS'), `after HELLO #${i + 1}`).toMatchObject({ active: true, state: 'UNACK' });
    }
    // Neither cleared nor re-raised (which would re-annunciate a dead console every few seconds).
    expect(b.kinds('D1:COMM_LOSS')).toEqual([]);

    // A state frame is not telemetry either (docs: "no telemetry … while state frames still arrive").
    b.state('RUNNING');
    b.advance(1000);
    expect(b.get('D1:COMM_LOSS')).toMatchObject({ active: true, state: 'UNACK' });

    b.frame(OK);
    expect(b.get('D1:COMM_LOSS')).toMatchObject({ active: false, state: 'NORMAL' });
    expect(b.kinds('D1:COMM_LOSS')).toEqual(['clear:NORMAL']);
    b.engine.stop();
  });
});

describe('the saved session state governs rules until the first S frame after a restart', () => {
  it.each<SessionState>(['PAUSED', 'FAULT'])('a console saved %s does not raise PV_LOW with its pumps stopped', (saved) => {
    const dir = tempDir();
    const a = harness({ store: new FileAlarmStore({ dataDir: dir }) }).start();
    a.state('RUNNING');
    a.advance(5000, OK);
    a.state(saved);
    a.advance(5000, { ...OK, PV: 0, QB: 0 });
    expect(a.get('D1:PV_LOW')).toBeUndefined();
    a.engine.stop();
    expect(new FileAlarmStore({ dataDir: dir }).load().deviceStates).toEqual([
      { deviceId: 'D1', state: saved, sessionId: 'S1', at: expect.any(Number) as number },
    ]);

    const b = harness({ store: new FileAlarmStore({ dataDir: dir }), start: a.clock.now() + 30_000 }).start();
    // Telemetry from both the known console and one never seen before, before either sends an S frame.
    b.clock.advance(100);
    for (let i = 0; i < 10; i++) {
      b.frame({ ...OK, PV: 0, QB: 0 }, 'D1');
      b.frame({ ...OK, PV: 0, QB: 0 }, 'D2');
      b.advance(1000);
    }
    expect(b.get('D1:PV_LOW')).toBeUndefined();
    expect(b.engine.list({ device: 'D1' }).filter((x) => x.source === 'process')).toEqual([]);
    // The never-seen console is evaluated as RUNNING (technical.unknownStateAs): absent data is never normal.
    expect(b.get('D2:PV_LOW')).toMatchObject({ state: 'UNACK', active: true, priority: 'HIGH', latching: true });

    // The saved state holds only until the console's first S frame.
    b.state('RUNNING');
    b.advance(3000, { ...OK, PV: 0 });
    expect(b.engine.list({ device: 'D1' }).map((x) => x.rule)).toEqual(['PV_LOW']);
    expect(b.get('D1:PV_LOW')).toMatchObject({ state: 'UNACK', active: true, priority: 'HIGH' });
    b.engine.stop();
  });
});
