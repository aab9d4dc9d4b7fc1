/** RecordWarmer: builds an ended session's record once, after the delay, one at a time; failures only logged. */
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/bus.js';
import { RecordWarmer } from '../../../src/record/warmer.js';
import type { SessionRecord } from '../../../src/sessions/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { waitFor } from '../../helpers/waitFor.js';

const T0 = Date.UTC(2026, 0, 5);
const record = (device: string, sessionId: string, ended = true): SessionRecord => ({
  key: 1, sessionId, device, startedAt: T0, startedRx: T0, endedAt: ended ? T0 + 1 : null, endedRx: ended ? T0 + 1 : null,
  endReason: ended ? 'ENDED' : null, stateMs: {}, lastState: 'ENDED', lastStateAt: T0 + 1, participant: null,
});

function setup(build: (rec: SessionRecord) => Promise<unknown>, find = (device: string, id: string) => record(device, id)) {
  const bus = new EventBus();
  const clock = new ManualClock(T0);
  const warnings: object[] = [];
  const warmer = new RecordWarmer({ bus, clock, delayMs: 30_000, build, find, logger: { warn: (o) => warnings.push(o) } });
  warmer.start();
  const end = (device: string, sessionId: string | null, state: 'ENDED' | 'RUNNING' = 'ENDED') =>
    bus.emit('state', { deviceId: device, seq: 1, t: clock.now(), rx: clock.now(), state, sessionId, previous: 'RINSEBACK' });
  return { bus, clock, warmer, warnings, end };
}

describe('RecordWarmer', () => {
  it('builds each ended session once, after the delay', async () => {
    const built: string[] = [];
    const { clock, warmer, end } = setup(async (rec) => { built.push(`${rec.device}/${rec.sessionId}`); });
    end('MSC-1', 'S-1');
    end('MSC-1', 'S-1'); // a repeated ENDED frame
    end('MSC-2', null);
    end('MSC-3', 'S-3', 'RUNNING');
    clock.advance(29_999);
    expect(built).toEqual([]);
    clock.advance(1);
    await waitFor(() => built.length === 1, { message: 'first warm-up' });
    expect(built).toEqual(['MSC-1/S-1']);
    expect(warmer.warmed).toBe(1);
    warmer.stop();
  });

  it('takes one session at a time, and a failure costs only its warm-up', async () => {
    const built: string[] = [];
    let release: () => void = () => {};
    const { clock, warmer, warnings, end } = setup(async (rec) => {
      if (rec.sessionId === 'S-BAD') throw new Error('journal away');
      built.push(rec.sessionId);
      if (rec.sessionId === 'S-A') await new Promise<void>((r) => { release = r; });
    });
    end('MSC-1', 'S-A');
    end('MSC-2', 'S-BAD');
    end('MSC-3', 'S-C');
    clock.advance(30_000);
    await waitFor(() => built.length === 1, { message: 'S-A started' });
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(built).toEqual(['S-A']); // still building S-A: nothing else starts
    release();
    // The next job's timer is due at once (1 ms on a manual clock, which fires it when told).
    await waitFor(() => { clock.advance(1); return built.length === 2; }, { message: 'S-C after S-A' });
    expect(built).toEqual(['S-A', 'S-C']);
    expect(warmer.failed).toBe(1);
    expect(warnings).toEqual([expect.objectContaining({ err: 'Error: journal away', session: 'S-BAD' })]);
    warmer.stop();
  });

  it('skips a session not found or not ended, and does nothing after stop', async () => {
    const built: string[] = [];
    const { clock, warmer, end } = setup(async (rec) => { built.push(rec.sessionId); }, (device, id) => (id === 'S-OPEN' ? record(device, id, false) : null));
    end('MSC-1', 'S-OPEN');
    end('MSC-1', 'S-GONE');
    clock.advance(30_000);
    await new Promise((r) => setImmediate(r));
    expect(built).toEqual([]);
    warmer.stop();
    end('MSC-1', 'S-LATE');
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(built).toEqual([]);
  });
});
