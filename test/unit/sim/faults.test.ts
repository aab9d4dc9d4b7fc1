import { describe, expect, it } from 'vitest';
import type { TelemetryFrame } from '../../../src/protocol/types.js';
import { running } from './harness.js';

const nums = (frames: TelemetryFrame[], key: string): number[] =>
  frames.map((f) => f.v[key]).filter((v): v is number => typeof v === 'number');
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('scenario actions on the produced frames', () => {
  it('venous_kink drives PV above 250 within its window, and PV recovers after it', () => {
    const h = running();
    h.act({ action: 'venous_kink', duration: '60s' });
    h.advance(2000);
    const mark = h.frames.length;
    h.advance(57_000); // the window ends at 60 s; the sample at 60.0 s already sees the line open
    expect(Math.min(...nums(h.telemetry(mark), 'PV'))).toBeGreaterThan(250);
    h.advance(6000);
    const after = h.frames.length;
    h.advance(5000);
    expect(Math.max(...nums(h.telemetry(after), 'PV'))).toBeLessThan(150);
  });

  it('access_collapse drives PA below −200 (access pressure alarm territory)', () => {
    const h = running();
    h.act({ action: 'access_collapse', duration: '30s' });
    const mark = h.frames.length;
    h.advance(29_000);
    expect(Math.max(...nums(h.telemetry(mark).slice(10), 'PA'))).toBeLessThan(-200);
  });

  it('return_disconnect drops PV below 20 mmHg', () => {
    const h = running();
    h.act({ action: 'return_disconnect', duration: '30s' });
    const mark = h.frames.length;
    h.advance(29_000);
    expect(Math.max(...nums(h.telemetry(mark), 'PV'))).toBeLessThan(20);
  });

  it('air_in_line: AIR=1, EV AIR_DETECTED H, the device pauses itself; RESUME refused until it clears', () => {
    const h = running();
    const mark = h.frames.length;
    h.act({ action: 'air_in_line', duration: '10s' });
    expect(h.since(mark).map((f) => f.type)).toEqual(['EV', 'S']);
    expect(h.events(mark)[0]).toMatchObject({ code: 'AIR_DETECTED', prio: 'H', active: true, text: 'Air detected in venous line' });
    expect(h.states(mark)[0]).toMatchObject({ state: 'PAUSED', sessionId: 'S-TEST-1' });
    h.advance(1000);
    expect(h.telemetry().at(-1)?.v).toMatchObject({ AIR: 1, QB: 0 });
    h.send('r1', 'RESUME');
    expect(h.frames.at(-1)).toMatchObject({ type: 'ACK', cmdId: 'r1', result: 'REJ' });
    h.advance(9000);
    expect(h.events().at(-1)).toMatchObject({ code: 'AIR_DETECTED', active: false });
    expect(h.telemetry().at(-1)?.v.AIR).toBe(0);
    expect(h.console.state).toBe('PAUSED');
    h.send('r2', 'RESUME');
    expect(h.console.state).toBe('RUNNING');
  });

  it('blood_leak: BLD=1, EV BLOOD_LEAK H, PAUSED', () => {
    const h = running();
    const mark = h.frames.length;
    h.act({ action: 'blood_leak' });
    h.advance(1000);
    expect(h.events(mark)[0]).toMatchObject({ code: 'BLOOD_LEAK', prio: 'H', active: true });
    expect(h.console.state).toBe('PAUSED');
    expect(h.telemetry().at(-1)?.v.BLD).toBe(1);
  });

  it('heater_failure cools the reactor below 36 °C with EV HEATER_FAULT; runaway heats it above 39 °C', () => {
    const off = running();
    const mark = off.frames.length;
    off.act({ action: 'heater_failure', duration: '30m' });
    expect(off.events(mark)[0]).toMatchObject({ code: 'HEATER_FAULT', prio: 'M', active: true });
    off.advance(10 * 60_000);
    expect(off.telemetry().at(-1)?.v.TR).toBeLessThan(36);
    off.advance(20 * 60_000);
    expect(off.events().at(-1)).toMatchObject({ code: 'HEATER_FAULT', active: false });

    const hot = running();
    const hotMark = hot.frames.length;
    hot.act({ action: 'heater_failure', params: { mode: 'runaway', silent: true } });
    hot.advance(10 * 60_000);
    expect(hot.telemetry().at(-1)?.v.TR).toBeGreaterThan(39);
    expect(hot.events(hotMark)).toEqual([]);
  });

  it('reactor_clotting raises DPR fast, and the clot stays when the episode ends', () => {
    const h = running();
    const base = mean(nums(h.telemetry().slice(-50), 'DPR'));
    h.act({ action: 'reactor_clotting', duration: '10m' });
    h.advance(10 * 60_000);
    const clotted = mean(nums(h.telemetry().slice(-50), 'DPR'));
    expect(clotted).toBeGreaterThan(base * 4);
    h.advance(10 * 60_000);
    expect(mean(nums(h.telemetry().slice(-50), 'DPR'))).toBeGreaterThan(clotted * 0.95);
  });

  it('sensor_fault sends `!` (null) on the channel and on TMP, which depends on it; absent leaves it out', () => {
    const h = running();
    h.act({ action: 'sensor_fault', duration: '5s', params: { channel: 'PV' } });
    h.advance(1000);
    const v = h.telemetry().at(-1)?.v ?? {};
    expect(v.PV).toBeNull();
    expect(v.TMP).toBeNull();
    expect(v.PF).toBeTypeOf('number');
    h.advance(5000);
    expect(h.telemetry().at(-1)?.v.PV).toBeTypeOf('number');
    h.act({ action: 'sensor_fault', params: { channel: 'DO', mode: 'absent' } });
    h.advance(1000);
    expect('DO' in (h.telemetry().at(-1)?.v ?? {})).toBe(false);
  });

  it('clock_skew jumps the device clock by the skew', () => {
    const h = running();
    h.advance(100);
    const before = h.telemetry().at(-1)?.t ?? 0;
    h.act({ action: 'clock_skew', params: { ms: -3_600_000 } });
    h.advance(100);
    expect(h.telemetry().at(-1)?.t).toBe(before + 100 - 3_600_000);
  });

  it('set_rate changes the telemetry rate; command acts like the panel (no ACK)', () => {
    const h = running();
    h.act({ action: 'set_rate', params: { hz: 25 } });
    let mark = h.frames.length;
    h.advance(1000);
    expect(h.telemetry(mark)).toHaveLength(25);
    mark = h.frames.length;
    h.act({ action: 'command', params: { verb: 'SET', args: ['QB', 200] } });
    h.act({ action: 'command', params: { verb: 'PAUSE' } });
    expect(h.console.state).toBe('PAUSED');
    expect(h.console.setpoints.QB).toBe(200);
    expect(h.since(mark).some((f) => f.type === 'ACK')).toBe(false);
  });

  it('link actions are not the console’s to apply', () => {
    const h = running();
    expect(() => h.act({ action: 'link_drop', duration: '5s' })).toThrow(/link/);
  });
});
