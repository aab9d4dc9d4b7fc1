/**
 * Trial session records and summaries. A session is what the ICD calls one: `START` with its
 * session id to `ENDED` on one console (ICD §1 "Session states").
 */
import type { SessionState } from '../protocol/types.js';

/** Pseudonymous participant study code: never a name, so no spaces and no more than 32 characters. */
export const PARTICIPANT_CODE_RE = /^[A-Za-z0-9-]{1,32}$/;

export interface SessionRecord {
  /** Row id: the same session id may recur on another console (or after RESET on the same one). */
  key: number;
  sessionId: string;
  /** The console (device id) the session ran on. */
  device: string;
  /** Device time of the first state frame carrying the session id, epoch ms (UTC). */
  startedAt: number;
  /** Gateway time of that frame: alarms and audit records are stamped on the gateway clock. */
  startedRx: number;
  /** Device time of `ENDED`, or of the state that closed an unfinished session; null while it runs. */
  endedAt: number | null;
  endedRx: number | null;
  /** `ENDED`, or why the record was closed without it (`IDLE` after a RESET from FAULT, `superseded`). */
  endReason: string | null;
  /** Milliseconds of device time in each state while the session was open. */
  stateMs: Partial<Record<SessionState, number>>;
  /** State at the last change seen, and since when (device time): the open interval of stateMs. */
  lastState: SessionState;
  lastStateAt: number;
  participant: string | null;
}

export interface SessionFilter {
  device?: string;
  /** Sessions overlapping [from, to) (device time, epoch ms). */
  from?: number;
  to?: number;
  limit?: number;
}

export interface AlarmRuleSummary {
  rule: string;
  priority: string;
  /** `raise` transitions in the session. */
  raised: number;
  acknowledged: number;
  /** Time from raise to the first acknowledgement after it, ms. */
  ackMs: { median: number | null; max: number | null };
}

export interface ChannelStats {
  /** Null when every reading of the channel was a fault. */
  min: number | null;
  mean: number | null;
  max: number | null;
  /** Samples with a valid value; faults are counted apart. */
  samples: number;
  faults: number;
}

export interface CommandSummary {
  at: number;
  cmdId: string | null;
  verb: string | null;
  args: unknown[];
  user: string;
  /** Final outcome: OK, REJ, ERR, TIMEOUT, `OK (late)` etc., conflict, refused, or `pending` when no outcome was recorded. */
  outcome: string;
}

export interface SessionSummary {
  sessionId: string;
  device: string;
  participant: string | null;
  startedAt: string;
  endedAt: string | null;
  /** Whole session (to now while it runs), ms. */
  durationMs: number;
  running: boolean;
  stateMs: Partial<Record<SessionState, number>>;
  runningMs: number;
  pausedMs: number;
  alarms: { total: number; byPriority: Record<string, number>; byRule: AlarmRuleSummary[] };
  annotations: { total: number; adverseEvents: number; byKind: Record<string, number>; items: unknown[] };
  commands: { total: number; byOutcome: Record<string, number>; items: CommandSummary[] };
  /** Frames by seq (ICD §1); see SeqCompleteness for keep-alives. */
  completeness: {
    received: number; expected: number; stored: number; keepAlivesAssumed: number; lost: number;
    ratio: number | null; restarts: number;
  };
  channels: Record<string, ChannelStats>;
  temperature: {
    /** Percent of covered time TR was within its setpoint (STR) ± 0.5 °C; null without TR and STR. */
    trInBandPct: number | null;
    coveredMs: number;
  };
}
