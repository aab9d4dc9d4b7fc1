/**
 * Frame and command types of the device ICD (version 1, docs/icd.md).
 * One shape for both bindings: a serial line and an MQTT payload decode to the same frames.
 */

export const SESSION_STATES = [
  'IDLE', 'SELFTEST', 'PRIMING', 'PRIMED', 'RUNNING', 'PAUSED', 'RINSEBACK', 'ENDED', 'FAULT',
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Device priority letters (ICD §1 `EV`): High, Medium, Low, Information. */
export type DevicePriority = 'H' | 'M' | 'L' | 'I';
export type AckResult = 'OK' | 'REJ' | 'ERR';

/** A channel value: a number, or null for a sensor fault (`!` on serial, `null` over MQTT). */
export type ChannelValue = number | null;
export type ChannelValues = Record<string, ChannelValue>;

export interface HelloFrame {
  type: 'HELLO';
  deviceId: string;
  model: string;
  fw: string;
  icd: number;
  serialNo: string;
}
export interface TelemetryFrame {
  type: 'T';
  seq: number;
  /** Device clock, epoch ms. */
  t: number;
  v: ChannelValues;
}
export interface StateFrame {
  type: 'S';
  seq: number;
  t: number;
  state: SessionState;
  sessionId: string | null;
}
export interface EventFrame {
  type: 'EV';
  seq: number;
  t: number;
  code: string;
  prio: DevicePriority;
  active: boolean;
  text: string;
}
export interface AckFrame {
  type: 'ACK';
  cmdId: string;
  result: AckResult;
  detail: string;
}
/** `status` topic (MQTT only): the device's own online/offline, also its last will. */
export interface StatusFrame {
  type: 'STATUS';
  online: boolean;
}

export type DeviceFrame = HelloFrame | TelemetryFrame | StateFrame | EventFrame | AckFrame | StatusFrame;
/** Frames that carry the device's single sequence counter. */
export type SequencedFrame = TelemetryFrame | StateFrame | EventFrame;

export const COMMAND_VERBS = [
  'ID', 'SYNC', 'RATE', 'SET', 'PRIME', 'START', 'PAUSE', 'RESUME', 'RINSEBACK', 'END', 'RESET', 'SILENCE',
] as const;
export type CommandVerb = (typeof COMMAND_VERBS)[number];
export type CommandArg = string | number;

export interface Command {
  cmdId: string;
  verb: CommandVerb;
  args: CommandArg[];
}

export type DiscardReason =
  | 'bad_crc'
  | 'too_long'
  | 'malformed'
  | 'unknown_type'
  | 'leading_garbage'
  | 'invalid_json'
  | 'schema'
  // Decided by the device model, not the decoders: a frame from an id that never sent a HELLO, a console over
  // the gateway's limit, channel keys beyond a console's limit (dropped from a frame that is otherwise kept).
  | 'no_hello'
  | 'too_many_consoles'
  | 'too_many_channels';

export const DISCARD_REASONS: readonly DiscardReason[] = [
  'bad_crc', 'too_long', 'malformed', 'unknown_type', 'leading_garbage', 'invalid_json', 'schema',
  'no_hello', 'too_many_consoles', 'too_many_channels',
];

/** Device bytes that were not a frame: data, never an exception. */
export interface Discard {
  type: 'discard';
  reason: DiscardReason;
  /** The raw text, cut to 128 characters for logs. */
  raw: string;
  detail: string;
}

/**
 * ICD: `t_ms` is epoch ms and "can drift or be wrong", but not beyond what a clock can mean. Safe reading: a time
 * after 2255-01-01 (InfluxDB's ms range ends in 2262; JavaScript dates in 275760) is a broken clock or another
 * unit (µs), and the frame is discarded as malformed rather than stored with a time nothing downstream can hold.
 */
/**
 * ICD: device_id has no grammar of its own. Safe reading: 1–64 of [A-Za-z0-9._-], starting with a letter or digit
 * (a usable MQTT topic level and file name), and never `gateway`, which names the gateway's own alarms.
 */
export const DEVICE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const RESERVED_DEVICE_IDS: ReadonlySet<string> = new Set(['gateway']);
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_RE.test(id) && !RESERVED_DEVICE_IDS.has(id);
}

export const MAX_DEVICE_TIME_MS = 8_999_999_999_999;

export function isSequenced(f: DeviceFrame): f is SequencedFrame {
  return f.type === 'T' || f.type === 'S' || f.type === 'EV';
}

// ---- Helpers shared by both bindings (added by the codec; names above are unchanged) ----

/** A Discard with `raw` cut to 128 characters. */
export function discard(reason: DiscardReason, raw: string, detail: string): Discard {
  return { type: 'discard', reason, raw: raw.length > 128 ? raw.slice(0, 128) : raw, detail };
}

/** The telemetry channels the ICD lists (§1 "Telemetry channels"): never dropped by the per-console key limit. */
export const ICD_CHANNELS: ReadonlySet<string> = new Set([
  'QB', 'QP', 'QR', 'PA', 'PF', 'PV', 'PP', 'TMP', 'DPR', 'TR', 'TB', 'HEP', 'AIR', 'BLD', 'PH', 'DO',
  'SQB', 'SQP', 'STR', 'SHEP',
]);
/**
 * Distinct channel keys one console may use, the ICD's own among them. ICD: unknown keys must be kept (newer
 * firmware adds channels); safe reading: kept up to this bound, because every key becomes a column of the
 * journal, the live stream and the CSV export, and a console that invents keys without end would grow them all.
 */
export const MAX_CHANNELS_PER_CONSOLE = 64;

/**
 * HELLO text fields (model, fw, serialNo) at most this long, and icd_version at most HELLO_ICD_MAX. ICD: no
 * bound is given; a real model name or firmware version is a few dozen characters, and these strings reach the
 * API, the logs and every export.
 */
export const HELLO_FIELD_MAX = 64;
export const HELLO_ICD_MAX = 999;

/** Why a decoded HELLO is refused (field lengths, icd range), or null when it is acceptable. */
export function helloProblem(h: { model: string; fw: string; serialNo: string; icd: number }): string | null {
  for (const [name, value] of [['model', h.model], ['fw', h.fw], ['serialNo', h.serialNo]] as const) {
    if (value.length > HELLO_FIELD_MAX) return `${name} is ${value.length} characters, at most ${HELLO_FIELD_MAX}`;
  }
  if (h.icd > HELLO_ICD_MAX) return `icd ${h.icd} is over ${HELLO_ICD_MAX}`;
  return null;
}

/** Longest channel key accepted (ICD §1 leaves KEY open; see isChannelKey). */
export const CHANNEL_KEY_MAX = 32;

/**
 * Channel key grammar: a letter, then letters, digits or `_`, at most CHANNEL_KEY_MAX.
 * ICD: KEY has no grammar in §1 and unknown keys must be kept. Safe reading: accept every
 * identifier-like key (all ICD keys and any plausible new channel such as `SpO2`), because keys become
 * JSON properties, Influx field names and API names; `__proto__` and friends can never pass.
 */
export function isChannelKey(key: string): boolean {
  const n = key.length;
  if (n === 0 || n > CHANNEL_KEY_MAX) return false;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (letter) continue;
    if (i > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x5f)) continue;
    return false;
  }
  return true;
}

/**
 * Formats a number as the ICD decimal `-?[0-9]+(\.[0-9]+)?`: never exponent notation, never "-0".
 * `decimals` fixes the number of decimals; without it integers print as is and other numbers with up to
 * 3 decimals, trailing zeros trimmed. A non-finite value is a programmer error (RangeError).
 */
export function formatDecimal(value: number, decimals?: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`cannot encode ${value} as an ICD decimal`);
  let s: string;
  if (decimals !== undefined) {
    if (!Number.isInteger(decimals) || decimals < 0 || decimals > 15) {
      throw new RangeError(`decimals must be an integer 0..15, got ${decimals}`);
    }
    // toFixed switches to exponent notation from 1e21 on; such values are integers anyway.
    s = Math.abs(value) < 1e21
      ? value.toFixed(decimals)
      : BigInt(value).toString() + (decimals > 0 ? '.' + '0'.repeat(decimals) : '');
  } else if (Number.isInteger(value)) {
    s = Math.abs(value) < 1e21 ? String(value) : BigInt(value).toString();
  } else {
    s = value.toFixed(3);
    let end = s.length;
    while (s.charCodeAt(end - 1) === 0x30) end--;
    if (s.charCodeAt(end - 1) === 0x2e) end--;
    s = s.slice(0, end);
  }
  if (s.charCodeAt(0) === 0x2d && isAllZeros(s, 1)) s = s.slice(1);
  return s;
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * ICD §1 VALUE `-?[0-9]+(\.[0-9]+)?` -> number, NaN when not that grammar or not finite.
 * Up to 15 digits the mantissa is exact and one division by an exact power of ten is correctly rounded,
 * so the result equals Number(text); longer literals take Number() itself. The serial decoder's hot path.
 */
export function parseDecimal(text: string, from = 0, to = text.length): number {
  let i = from;
  const negative = i < to && text.charCodeAt(i) === 0x2d;
  if (negative) i++;
  const intStart = i;
  let mantissa = 0;
  let d = 0;
  while (i < to && (d = text.charCodeAt(i) - 0x30) >= 0 && d <= 9) { mantissa = mantissa * 10 + d; i++; }
  if (i === intStart) return NaN;
  let fraction = 0;
  if (i < to) {
    if (text.charCodeAt(i) !== 0x2e) return NaN;
    const fracStart = ++i;
    while (i < to && (d = text.charCodeAt(i) - 0x30) >= 0 && d <= 9) { mantissa = mantissa * 10 + d; i++; }
    fraction = i - fracStart;
    if (fraction === 0 || i < to) return NaN;
  }
  let value = i - intStart - (fraction > 0 ? 1 : 0) > 15
    ? Number(text.slice(intStart, to))
    : mantissa / POW10[fraction];
  if (!Number.isFinite(value)) return NaN;
  if (negative) value = -value;
  return value === 0 ? 0 : value; // "-0" and "-0.0" are zero, never -0
}

function isAllZeros(s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x30 && c !== 0x2e) return false;
  }
  return true;
}
