/**
 * Alarm instance shape shared by the alarm engine, the API, the live stream and storage.
 * IEC 60601-1-8 priorities; ISA-18.2 / IEC 62682 states.
 */
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
