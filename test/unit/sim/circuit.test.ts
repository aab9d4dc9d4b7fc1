import { describe, expect, it } from 'vitest';
import { encodeDeviceFrame } from '../../../src/protocol/serial.js';
import type { TelemetryFrame } from '../../../src/protocol/types.js';
import { DEFAULT_DECIMALS, FAST_CHANNELS, SENSOR_RANGES } from '../../../device-sim/src/channels.js';
import { harness, running } from './harness.js';

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]): number => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const values = (frames: TelemetryFrame[], key: string): number[] =>
  frames.map((f) => f.v[key]).filter((v): v is number => typeof v === 'number');

/** Every channel value is inside its sensor range and carries its declared decimals. */
function expectPlausible(frames: TelemetryFrame[]): void {
  const bad: string[] = [];
  for (const f of frames) {
    for (const [k, v] of Object.entries(f.v)) {
      if (v === null) continue;
      const range = SENSOR_RANGES[k as keyof typeof SENSOR_RANGES];
      const d = DEFAULT_DECIMALS[k] ?? 0;
      const ok = Number.isFinite(v)
        && (!range || (v >= range[0] && v <= range[1]))
        && (k !== 'AIR' && k !== 'BLD' ? true : v === 0 || v === 1)
        && Math.abs(v * 10 ** d - Math.round(v * 10 ** d)) < 1e-6;
      if (!ok && bad.length < 10) bad.push(`seq ${f.seq}: ${k}=${v}`);
    }
  }
  expect(bad).toEqual([]);
}

describe('circuit while RUNNING', () => {
  it('settles in the ICD typical ranges at the default setpoints', () => {
    const h = running();
    const mark = h.frames.length;
    h.advance(10 * 60_000);
    const t = h.telemetry(mark);
    const typical: Record<string, [number, number]> = {
      QB: [100, 200], QP: [20, 50], QR: [150, 250], PA: [-150, -50], PF: [100, 200], PV: [50, 150], PP: [50, 120],
      TMP: [20, 60], DPR: [10, 40], TR: [36.5, 37.5], TB: [35.5, 37.5], HEP: [0, 10], PH: [7.3, 7.45], DO: [60, 100],
    };
    for (const [k, [lo, hi]] of Object.entries(typical)) {
      const xs = values(t, k);
      expect(xs.length, k).toBe(t.length);
      expect(Math.min(...xs), k).toBeGreaterThanOrEqual(lo);
      expect(Math.max(...xs), k).toBeLessThanOrEqual(hi);
    }
    expect(values(t, 'AIR').every((v) => v === 0)).toBe(true);
    expect(values(t, 'BLD').every((v) => v === 0)).toBe(true);
  });

  it('computes TMP = (PF+PV)/2 − PP from the rounded values in the frame', () => {
    const h = running();
    h.advance(60_000);
    for (const f of h.telemetry()) {
      const { PF, PV, PP, TMP } = f.v as Record<string, number>;
      expect(TMP).toBe(Math.round(((PF + PV) / 2 - PP) * 10) / 10 || 0);
    }
  });

  it('ripples the pressures at the roller-pump frequency, and not with the pump stopped', () => {
    const h = running();
    let mark = h.frames.length;
    h.advance(5000);
    expect(sd(values(h.telemetry(mark), 'PA'))).toBeGreaterThan(4);
    h.send('p1', 'PAUSE');
    h.advance(2000);
    mark = h.frames.length;
    h.advance(5000);
    expect(sd(values(h.telemetry(mark), 'PA'))).toBeLessThan(1.5);
    expect(values(h.telemetry(mark), 'QB').every((q) => q === 0)).toBe(true);
  });

  it('follows the flows: a higher QB raises PV and PF and draws PA lower', () => {
    const h = running();
    let mark = h.frames.length;
    h.advance(5000);
    const at150 = h.telemetry(mark);
    h.send('q1', 'SET', 'QB', 250);
    h.advance(20_000);
    mark = h.frames.length;
    h.advance(5000);
    const at250 = h.telemetry(mark);
    expect(mean(values(at250, 'QB'))).toBeCloseTo(250, 0);
    expect(mean(values(at250, 'PV'))).toBeGreaterThan(mean(values(at150, 'PV')) + 30);
    expect(mean(values(at250, 'PF'))).toBeGreaterThan(mean(values(at150, 'PF')) + 40);
    expect(mean(values(at250, 'PA'))).toBeLessThan(mean(values(at150, 'PA')) - 40);
  });

  it('settles the reactor heater on a new setpoint', () => {
    const h = running();
    h.send('t1', 'SET', 'TR', 38.5);
    h.advance(10 * 60_000);
    const mark = h.frames.length;
    h.advance(10_000);
    expect(mean(values(h.telemetry(mark), 'TR'))).toBeCloseTo(38.5, 1);
    expect(h.telemetry().at(-1)?.v.STR).toBe(38.5);
  });

  it('creeps DPR and TMP up over hours as the circuit clots', () => {
    const h = running({ rate: 1 });
    let mark = h.frames.length;
    h.advance(60_000);
    const early = h.telemetry(mark);
    h.advance(8 * 3_600_000);
    mark = h.frames.length;
    h.advance(60_000);
    const late = h.telemetry(mark);
    expect(mean(values(late, 'DPR'))).toBeGreaterThan(mean(values(early, 'DPR')) * 1.5);
    expect(mean(values(late, 'TMP'))).toBeGreaterThan(mean(values(early, 'TMP')) * 1.3);
    expectPlausible(late);
  });
});

describe('telemetry frames', () => {
  it('stays inside the sensor ranges with the ICD decimals over a long run with every fault', () => {
    const h = running({ rate: 1 });
    const start = h.frames.length;
    const episodes = [
      { action: 'venous_kink', duration: '2m' }, { action: 'access_collapse', duration: '2m' },
      { action: 'return_disconnect', duration: '2m' }, { action: 'reactor_clotting', duration: '1h', params: { ratePerMin: 2 } },
      { action: 'heater_failure', duration: '1h' }, { action: 'heater_failure', duration: '2h', params: { mode: 'runaway' } },
    ] as const;
    for (const e of episodes) {
      h.act(e);
      h.advance(2 * 3_600_000);
      h.send(`r${h.frames.length % 1000}`, 'RESUME');
    }
    h.send('k1', 'SET', 'QB', 300);
    h.act({ action: 'venous_kink', duration: '5m', params: { severity: 20 } });
    h.advance(10 * 60_000);
    expectPlausible(h.telemetry(start));
  });

  it('omits PH and DO when those optional sensors are not fitted', () => {
    const h = harness({ optionalSensors: { PH: false, DO: false } });
    h.advance(1000);
    const v = h.telemetry().at(-1)?.v ?? {};
    expect(Object.keys(v)).not.toContain('PH');
    expect(Object.keys(v)).not.toContain('DO');
    expect(Object.keys(v)).toContain('TR');
  });

  it('above 20 Hz sends a full frame 10 times a second and the fast channels in between, within 115200 baud', () => {
    const h = running({ rate: 100, seqStart: 4_000_000_000 });
    const mark = h.frames.length;
    h.advance(10_000);
    const t = h.telemetry(mark);
    expect(t).toHaveLength(1000);
    const full = t.filter((f) => 'TR' in f.v);
    expect(full).toHaveLength(100);
    for (const f of t.filter((x) => !('TR' in x.v))) expect(Object.keys(f.v).every((k) => FAST_CHANNELS.has(k))).toBe(true);
    const bytesPerSecond = h.since(mark)
      .reduce((n, f) => n + Buffer.byteLength(encodeDeviceFrame(f, DEFAULT_DECIMALS)), 0) / 10;
    expect(bytesPerSecond).toBeLessThan(11_520);
  });

  it('is reproducible with the same seed and differs with another', () => {
    const run = (seed: number): string => {
      const h = running({ seed });
      h.send('a1', 'SET', 'QB', 180);
      h.act({ action: 'venous_kink', duration: '20s' });
      h.advance(60_000);
      return JSON.stringify(h.frames);
    };
    expect(run(42)).toBe(run(42));
    expect(run(42)).not.toBe(run(43));
  });
});
