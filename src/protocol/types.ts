/**
 * Frame and command types of the device ICD (../shared/device-icd.md, version 1).
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
  | 'schema';

export const DISCARD_REASONS: readonly DiscardReason[] = [
  'bad_crc', 'too_long', 'malformed', 'unknown_type', 'leading_garbage', 'invalid_json', 'schema',
];

/** Device bytes that were not a frame: data, never an exception (style.md §4). */
export interface Discard {
  type: 'discard';
  reason: DiscardReason;
  /** The raw text, cut to 128 characters for logs. */
  raw: string;
  detail: string;
}

export function isSequenced(f: DeviceFrame): f is SequencedFrame {
  return f.type === 'T' || f.type === 'S' || f.type === 'EV';
}
