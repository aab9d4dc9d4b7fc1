/**
 * Alarm instance shape shared by the alarm engine, the API, the live stream and storage.
 * IEC 60601-1-8 priorities; ISA-18.2 / IEC 62682 states.
 */
import type { Rule } from './ruleSchema.js';

export type AlarmPriority = 'HIGH' | 'MEDIUM' | 'LOW';
export type AlarmSource = 'device' | 'process' | 'technical';
export type AlarmState =
  | 'NORMAL'
  | 'UNACK'
  | 'ACKED'
  | 'RTN_UNACK'
  | 'SHELVED'
  | 'SUPPRESSED'
  | 'OUT_OF_SERVICE';

/** Who did something, for the audit trail and alarm history. */
export interface Actor {
  user: string;
  role: string;
}

export interface AlarmInstance {
  /** Stable per condition per device: `${device}:${rule}`. */
  id: string;
  device: string;
  rule: string;
  source: AlarmSource;
  priority: AlarmPriority;
  state: AlarmState;
  /** Whether the condition is present now (independent of acknowledgement). */
  active: boolean;
  latching: boolean;
  raisedAt: number | null;
  clearedAt: number | null;
  value: number | string | null;
  limit: number | string | null;
  message: string;
  ackedBy: string | null;
  ackedAt: number | null;
  shelvedUntil: number | null;
  sessionId: string | null;
  /** Sources reporting the condition now (one instance however many report it). */
  sources?: AlarmSource[];
  shelvedBy?: string | null;
  shelveReason?: string | null;
  outOfServiceBy?: string | null;
  outOfServiceReason?: string | null;
}

export type AlarmTransitionKind =
  | 'raise'
  | 'clear'
  | 'ack'
  | 'shelve'
  | 'unshelve'
  | 'escalate'
  | 'reannunciate'
  | 'suppress'
  | 'unsuppress'
  | 'out_of_service'
  | 'return_to_service'
  | 'reset';

/** One transition of one alarm instance, carried on the bus as `alarm`. */
export interface AlarmTransition {
  kind: AlarmTransitionKind;
  at: number;
  from: AlarmState;
  to: AlarmState;
  alarm: AlarmInstance;
  actor: Actor | null;
  reason: string | null;
}

/** Operator actions answer with a typed result; the API maps not_found 404, invalid_transition 409, invalid_argument 400. */
export type ActionError = 'not_found' | 'invalid_transition' | 'invalid_argument';
export type ActionResult = { ok: true; alarm: AlarmInstance } | { ok: false; error: ActionError; message: string };
export type AudioPauseResult =
  | { ok: true; deviceId: string; until: number }
  | { ok: false; error: ActionError; message: string };

export interface AlarmListFilter {
  /** `active` (default): every instance not NORMAL, shelved and suppressed ones included; `all`: also NORMAL. */
  state?: 'active' | 'all';
  device?: string;
}

/**
 * What the evaluator (and its sensor-fault part) reports to the engine: a condition raised at a priority or
 * cleared. Here rather than in evaluator.ts because both the evaluator and sensorFaults.ts use it.
 */
export interface ConditionChange {
  deviceId: string;
  /** Rule id, or SENSOR_FAULT_<CH> for a channel in fault. */
  rule: string;
  source: 'process' | 'technical';
  /** Priority now; null when the condition cleared. */
  priority: AlarmPriority | null;
  value: number | null;
  limit: number | null;
  message: string;
  latching: boolean;
  /** Session of the frame (or state) that completed the change. */
  sessionId: string | null;
  /** Gateway time of the frame or tick that completed the change. */
  at: number;
  /** The rule (process conditions only): re-annunciation and escalation settings. */
  ruleDef: Rule | null;
}

export interface ConditionSink {
  condition(change: ConditionChange): void;
}
