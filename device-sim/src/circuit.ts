/**
 * A plausible extracorporeal circuit, as pure functions of state, time step and noise source:
 * roller blood pump → plasma separator → reactor loop with heated cell cartridge → venous return.
 * No I/O, no clock: the console calls `step` once per telemetry sample and `measure` to read sensors.
 */
import type { ChannelValues } from '../../src/protocol/types.js';
import { DEFAULT_DECIMALS, SENSOR_RANGES, clamp, roundTo } from './channels.js';
import type { Rng } from './rng.js';

/** What the pumps do, set by the console from its session state. */
export type PumpMode = 'stopped' | 'priming' | 'standby' | 'running' | 'rinseback';

export interface Setpoints {
  QB: number;
  QP: number;
  TR: number;
  HEP: number;
}

export interface CircuitFaults {
  /** Venous return resistance multiplier while the line is kinked; 1 = open. */
  venousResistance: number;
  /** Access (arterial) resistance multiplier while the access collapses; 1 = normal. */
  accessResistance: number;
  returnDisconnected: boolean;
  heater: 'ok' | 'off' | 'runaway';
  /** Extra reactor clotting, per minute of reactor flow (the reactor_clotting scenario). */
  clotRatePerMin: number;
  air: boolean;
  bloodLeak: boolean;
}

export interface CircuitState {
  mode: PumpMode;
  setpoints: Setpoints;
  faults: CircuitFaults;
  /** Actual flows (mL/min), temperatures (°C) and chemistry, before sensor noise. */
  qb: number;
  qp: number;
  qr: number;
  tr: number;
  tb: number;
  ph: number;
  dissolvedO2: number;
  /** Reactor cartridge clot burden; DPR scales with (1 + clot). */
  clot: number;
  /** Plasma separator membrane fouling; TMP scales with (1 + fouling). */
  fouling: number;
  /** Roller pump angle (rad) that drives the pressure ripple. */
  pumpPhase: number;
}

export const DEFAULT_SETPOINTS: Readonly<Setpoints> = { QB: 150, QP: 30, TR: 37.0, HEP: 5.0 };
export const NO_FAULTS: Readonly<CircuitFaults> = {
  venousResistance: 1, accessResistance: 1, returnDisconnected: false, heater: 'ok',
  clotRatePerMin: 0, air: false, bloodLeak: false,
};

const REACTOR_FLOW = 200;
const PRIMING_FLOW = 100;
const RINSEBACK_FLOW = 80;
const AMBIENT_C = 24;
const RUNAWAY_C = 42.5;
/** Tube volume pushed per roller pass; the pulse frequency is QB / stroke. */
const STROKE_ML = 4;
/** Baseline creep while plasma flows: DPR ×1.8 and TMP ×1.5 after 8 h. */
const CLOT_PER_HOUR = 0.1;
const FOULING_PER_HOUR = 0.06;

export function initialCircuit(setpoints: Setpoints = DEFAULT_SETPOINTS): CircuitState {
  return {
    mode: 'stopped',
    setpoints: { ...setpoints },
    faults: { ...NO_FAULTS },
    qb: 0, qp: 0, qr: 0,
    // The cartridge arrives pre-warmed from the incubator and the heater holds it from power-up.
    tr: setpoints.TR,
    tb: 35.8,
    ph: 7.38,
    dissolvedO2: 80,
    clot: 0,
    fouling: 0,
    pumpPhase: 0,
  };
}

/** First-order approach of `value` to `target` with time constant `tauS` over `dtS`. */
function approach(value: number, target: number, tauS: number, dtS: number): number {
  return target + (value - target) * Math.exp(-dtS / tauS);
}

function flowTargets(s: CircuitState): { qb: number; qp: number; qr: number } {
  switch (s.mode) {
    case 'running': return { qb: s.setpoints.QB, qp: s.setpoints.QP, qr: REACTOR_FLOW };
    case 'priming': return { qb: PRIMING_FLOW, qp: 0, qr: REACTOR_FLOW };
    case 'rinseback': return { qb: RINSEBACK_FLOW, qp: 0, qr: REACTOR_FLOW };
    case 'standby': return { qb: 0, qp: 0, qr: REACTOR_FLOW };
    case 'stopped': return { qb: 0, qp: 0, qr: 0 };
  }
}

export function step(s: CircuitState, dtMs: number, rng: Rng): CircuitState {
  const dtS = Math.max(0, dtMs) / 1000;
  const target = flowTargets(s);
  // Roller pumps are positive-displacement: they ramp up over seconds but stop dead.
  const pump = (q: number, to: number, tauS: number): number => (to === 0 ? 0 : approach(q, to, tauS, dtS));
  const qb = pump(s.qb, target.qb, 2);
  // The plasma pump is slaved to the blood pump so QP stays under 30 % of QB while ramping.
  const qp = pump(s.qp, target.qb > 0 ? target.qp * Math.min(1, qb / target.qb) : 0, 2);
  const qr = pump(s.qr, target.qr, 3);

  const heaterTarget = s.faults.heater === 'off' ? AMBIENT_C : s.faults.heater === 'runaway' ? RUNAWAY_C : s.setpoints.TR;
  // A heater heats fast; the cartridge loses heat slowly (passive cooling to a lower target or a dead heater).
  const heaterTau = s.faults.heater === 'runaway' ? 400 : heaterTarget >= s.tr ? 90 : s.faults.heater === 'off' ? 1200 : 600;
  const tr = approach(s.tr, heaterTarget, heaterTau, dtS);
  const tb = approach(s.tb, qb > 10 ? 36.4 + 0.5 * (tr - 37) : 35.8, 60, dtS);

  const sqrtDt = Math.sqrt(dtS);
  const ph = clamp(approach(s.ph, 7.38, 1800, dtS) + 0.0004 * rng.gaussian() * sqrtDt, [7.0, 7.7]);
  const dissolvedO2 = clamp(approach(s.dissolvedO2, qr > 10 ? 80 : 50, 300, dtS) + 0.05 * rng.gaussian() * sqrtDt, [0, 150]);

  const plasmaFlowing = qp > 1;
  const reactorFlowing = qr > 10;
  const clot = s.clot
    + (plasmaFlowing ? CLOT_PER_HOUR * dtS / 3600 : 0)
    + (reactorFlowing ? s.faults.clotRatePerMin * dtS / 60 : 0);
  const fouling = s.fouling + (plasmaFlowing ? FOULING_PER_HOUR * dtS / 3600 : 0);
  const pumpPhase = (s.pumpPhase + 2 * Math.PI * (qb / 60 / STROKE_ML) * dtS) % (2 * Math.PI);

  return { ...s, qb, qp, qr, tr, tb, ph, dissolvedO2, clot, fouling, pumpPhase };
}

export interface MeasureOptions {
  /** Optional sensors fitted (ICD marks PH and DO optional). Absent sensors send no key. */
  optionalSensors: { PH: boolean; DO: boolean };
  /** Channels whose sensor is faulted: sent as `!` / null. */
  faulted: ReadonlySet<string>;
  /** Channels not measured in this frame: key omitted. */
  absent: ReadonlySet<string>;
}

/**
 * Reads every sensor with noise, saturates at the sensor range and rounds to the decimals the frame
 * carries. TMP is computed by the device from the rounded PF, PV, PP (ICD §1: (PF+PV)/2 − PP) so a
 * receiver can check it exactly.
 * ICD: silent on TMP when an input sensor faults. Safe reading: TMP is `!` too, never a number
 * computed from a missing pressure.
 */
export function measure(s: CircuitState, rng: Rng, opts: MeasureOptions): ChannelValues {
  const ripple = Math.sin(s.pumpPhase);
  const kinked = s.faults.venousResistance;
  const venousOffset = s.faults.returnDisconnected ? -4 : 15;
  const venousRes = s.faults.returnDisconnected ? 0.03 : kinked;

  const pa = 8 - 0.55 * s.qb * s.faults.accessResistance * (1 + 0.1 * ripple);
  const pv = venousOffset + 0.55 * s.qb * venousRes * (1 + 0.06 * ripple);
  const pf = pv + 0.3 * s.qb * (1 + 0.08 * ripple);
  const pp = (pf + pv) / 2 - 1.2 * s.qp * (1 + s.fouling);
  const dpr = 0.1 * s.qr * (1 + s.clot);

  const noisyFlow = (q: number, sd: number): number => (q < 0.05 ? 0 : q + sd * rng.gaussian());
  const raw: Record<string, number> = {
    QB: noisyFlow(s.qb, 0.3),
    QP: noisyFlow(s.qp, 0.2),
    QR: noisyFlow(s.qr, 0.4),
    PA: pa + rng.gaussian(),
    PF: pf + rng.gaussian(),
    PV: pv + rng.gaussian(),
    PP: pp + rng.gaussian(),
    DPR: dpr + 0.5 * rng.gaussian(),
    TR: s.tr + 0.015 * rng.gaussian(),
    TB: s.tb + 0.015 * rng.gaussian(),
    PH: s.ph + 0.004 * rng.gaussian(),
    DO: s.dissolvedO2 + 0.5 * rng.gaussian(),
  };
  raw.HEP = s.mode === 'running' ? s.setpoints.HEP : 0;

  const read = (key: keyof typeof SENSOR_RANGES): number =>
    roundTo(clamp(raw[key] ?? 0, SENSOR_RANGES[key]), DEFAULT_DECIMALS[key] ?? 1);

  const v: ChannelValues = {};
  const put = (key: string, value: number | null): void => {
    if (opts.absent.has(key)) return;
    v[key] = opts.faulted.has(key) ? null : value;
  };
  const pfR = opts.faulted.has('PF') ? null : read('PF');
  const pvR = opts.faulted.has('PV') ? null : read('PV');
  const ppR = opts.faulted.has('PP') ? null : read('PP');
  const tmp = pfR === null || pvR === null || ppR === null
    ? null
    : roundTo(clamp((pfR + pvR) / 2 - ppR, SENSOR_RANGES.TMP), DEFAULT_DECIMALS.TMP ?? 1);

  put('QB', read('QB'));
  put('QP', read('QP'));
  put('QR', read('QR'));
  put('PA', read('PA'));
  put('PF', pfR);
  put('PV', pvR);
  put('PP', ppR);
  put('TMP', tmp);
  put('DPR', read('DPR'));
  put('TR', read('TR'));
  put('TB', read('TB'));
  put('HEP', read('HEP'));
  put('AIR', s.faults.air ? 1 : 0);
  put('BLD', s.faults.bloodLeak ? 1 : 0);
  if (opts.optionalSensors.PH) put('PH', read('PH'));
  if (opts.optionalSensors.DO) put('DO', read('DO'));
  put('SQB', roundTo(s.setpoints.QB, DEFAULT_DECIMALS.SQB ?? 1));
  put('SQP', roundTo(s.setpoints.QP, DEFAULT_DECIMALS.SQP ?? 1));
  put('STR', roundTo(s.setpoints.TR, DEFAULT_DECIMALS.STR ?? 2));
  put('SHEP', roundTo(s.setpoints.HEP, DEFAULT_DECIMALS.SHEP ?? 1));
  return v;
}
