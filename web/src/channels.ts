/** The console's channels as the screens show them (ICD §1 "Telemetry channels"). */
export interface ChannelInfo {
  key: string;
  label: string;
  unit: string;
  decimals: number;
  /** The setpoint channel the device reports beside it (SQB for QB …). */
  setpoint?: string;
  /** Shown only when the console reports it (optional sensors). */
  optional?: boolean;
}

export const NUMERICS: readonly ChannelInfo[] = [
  { key: 'QB', label: 'Blood flow', unit: 'mL/min', decimals: 0, setpoint: 'SQB' },
  { key: 'QP', label: 'Plasma flow', unit: 'mL/min', decimals: 1, setpoint: 'SQP' },
  { key: 'QR', label: 'Reactor flow', unit: 'mL/min', decimals: 0 },
  { key: 'PA', label: 'Arterial', unit: 'mmHg', decimals: 0 },
  { key: 'PF', label: 'Pre-filter', unit: 'mmHg', decimals: 0 },
  { key: 'PV', label: 'Venous', unit: 'mmHg', decimals: 0 },
  { key: 'PP', label: 'Plasma side', unit: 'mmHg', decimals: 0 },
  { key: 'TMP', label: 'Transmembrane', unit: 'mmHg', decimals: 0 },
  { key: 'DPR', label: 'Reactor ΔP', unit: 'mmHg', decimals: 0 },
  { key: 'TR', label: 'Reactor temp', unit: '°C', decimals: 2, setpoint: 'STR' },
  { key: 'TB', label: 'Blood return', unit: '°C', decimals: 1 },
  { key: 'HEP', label: 'Heparin', unit: 'mL/h', decimals: 1, setpoint: 'SHEP' },
  { key: 'PH', label: 'Reactor pH', unit: 'pH', decimals: 2, optional: true },
  { key: 'DO', label: 'Dissolved O₂', unit: '% sat', decimals: 0, optional: true },
];

/** The overview's at-a-glance channels. */
export const GLANCE = ['QB', 'PV', 'TMP', 'TR'] as const;

/** One chart per channel, so each carries its own limit bands; setpoints dashed. */
export const TRENDS: ReadonlyArray<{ key: string; setpoint?: string }> = [
  { key: 'QB', setpoint: 'SQB' }, { key: 'PA' }, { key: 'PV' }, { key: 'TMP' }, { key: 'DPR' }, { key: 'TR', setpoint: 'STR' },
];

export const SETPOINTS: ReadonlyArray<{ key: 'QB' | 'QP' | 'TR' | 'HEP'; sp: string; min: number; max: number; step: number }> = [
  // ICD §1 CMD SET limits; QP ≤ 30 % of QB is checked by the gateway and the device.
  { key: 'QB', sp: 'SQB', min: 0, max: 300, step: 5 },
  { key: 'QP', sp: 'SQP', min: 0, max: 60, step: 1 },
  { key: 'TR', sp: 'STR', min: 35, max: 39, step: 0.1 },
  { key: 'HEP', sp: 'SHEP', min: 0, max: 20, step: 0.5 },
];

export function info(key: string): ChannelInfo {
  return NUMERICS.find((c) => c.key === key) ?? { key, label: key, unit: '', decimals: 1 };
}

export function format(key: string, v: number | null | undefined): string {
  if (v === null) return 'FAULT';
  if (v === undefined || !Number.isFinite(v)) return '---';
  const text = v.toFixed(info(key).decimals);
  // -0.3 mmHg rounded to 0 decimals is a zero, not a negative reading.
  return /^-0(\.0+)?$/.test(text) ? text.slice(1) : text;
}
