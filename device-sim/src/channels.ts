/**
 * Telemetry channels as the ICD lists them (§1 "Telemetry channels"): order on the wire, sensor
 * ranges (a sensor cannot report outside them, so the simulator saturates there) and decimals.
 */
export const MEASURED_CHANNELS = [
  'QB', 'QP', 'QR', 'PA', 'PF', 'PV', 'PP', 'TMP', 'DPR', 'TR', 'TB', 'HEP', 'AIR', 'BLD', 'PH', 'DO',
] as const;
export type MeasuredChannel = (typeof MEASURED_CHANNELS)[number];

export const SETPOINT_CHANNELS = ['SQB', 'SQP', 'STR', 'SHEP'] as const;
export type SetpointChannel = (typeof SETPOINT_CHANNELS)[number];

/** Channels a `SET` command addresses (ICD §1 "Commands to the device"). */
export type SettableChannel = 'QB' | 'QP' | 'TR' | 'HEP';

export const SENSOR_RANGES: Record<Exclude<MeasuredChannel, 'AIR' | 'BLD'>, readonly [number, number]> = {
  QB: [0, 400],
  QP: [0, 100],
  QR: [0, 500],
  PA: [-400, 100],
  PF: [-100, 500],
  PV: [-100, 500],
  PP: [-400, 300],
  TMP: [-100, 500],
  DPR: [0, 300],
  TR: [20, 45],
  TB: [20, 45],
  HEP: [0, 20],
  PH: [6.5, 8.0],
  DO: [0, 150],
};

/** Brief: flows/pressures 1, temperatures 2, PH 2, DO 1, HEP 1, AIR/BLD 0; setpoints like their channel. */
export const DEFAULT_DECIMALS: Readonly<Record<string, number>> = {
  QB: 1, QP: 1, QR: 1,
  PA: 1, PF: 1, PV: 1, PP: 1, TMP: 1, DPR: 1,
  TR: 2, TB: 2,
  HEP: 1,
  AIR: 0, BLD: 0,
  PH: 2, DO: 1,
  SQB: 1, SQP: 1, STR: 2, SHEP: 1,
};

/**
 * Channels carried in every frame above 20 Hz: the pulsatile pressures, the blood flow and the two
 * safety detectors. The rest rides in a full frame about 10 times a second.
 * ICD: allows rates to 100 Hz but 115200 baud 8N1 carries 11 520 bytes/s and a full frame is ~235
 * bytes, so 100 full frames a second cannot fit. Safe reading: send fewer channels (§1: a channel
 * not present was not measured in that frame) rather than overrun the line; safety channels stay.
 */
export const FAST_CHANNELS: ReadonlySet<string> = new Set(['QB', 'PA', 'PF', 'PV', 'PP', 'TMP', 'AIR', 'BLD']);

export function roundTo(value: number, decimals: number): number {
  const f = 10 ** decimals;
  const r = Math.round(value * f) / f;
  return Object.is(r, -0) ? 0 : r;
}

export function clamp(value: number, [lo, hi]: readonly [number, number]): number {
  return Math.min(hi, Math.max(lo, value));
}
