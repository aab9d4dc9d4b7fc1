/**
 * The perfusion record of one session: the document a perfusionist reviews, signs and files (21 CFR Part 11).
 *
 * Three layers:
 * - PerfusionRecord: WHAT THE RECORD SAYS. Deterministic for a given journal content (no "generated at", no
 *   signatures): its canonical JSON (src/audit/canonical.ts) is hashed with SHA-256, and that hash is what a
 *   signature binds. Any change to it (a late annotation, a participant code correction) changes the hash.
 * - RecordSignature / RecordAmendment: what was done TO the record, read from the hash-chained audit trail.
 * - RecordView: both together, as `GET /api/sessions/:id/record` returns it and as the PDF and the web page show it.
 *
 * Times are UTC epoch milliseconds unless a field says ISO. Device-time fields (telemetry, states, events) and
 * gateway-time fields (alarms, commands, annotations' createdAt, signatures) are labelled.
 */
import type { SessionSummary } from '../sessions/types.js';

export const RECORD_FORMAT = 'msc-gateway.perfusion-record';
export const RECORD_VERSION = 1;

/** Signature meanings (21 CFR 11.50(a)(3)). */
export const SIGNATURE_MEANINGS = ['authored', 'reviewed', 'approved'] as const;
export type SignatureMeaning = (typeof SIGNATURE_MEANINGS)[number];

/** Channels charted in the trends, in this order, grouped by chart (docs/icd.md channel table). */
export const TREND_CHARTS: ReadonlyArray<{ id: string; title: string; unit: string; channels: readonly string[]; band?: { around: string; halfWidth: number } }> = [
  { id: 'flow', title: 'Blood flow QB and setpoint SQB', unit: 'mL/min', channels: ['QB', 'SQB'] },
  { id: 'pressure', title: 'Pressures PA, PV, TMP, DPR', unit: 'mmHg', channels: ['PA', 'PV', 'TMP', 'DPR'] },
  { id: 'temperature', title: 'Temperatures TR, TB with STR \u00b1 0.5 \u00b0C', unit: '\u00b0C', channels: ['TR', 'TB', 'STR'], band: { around: 'STR', halfWidth: 0.5 } },
  { id: 'heparin', title: 'Heparin rate HEP', unit: 'mL/h', channels: ['HEP', 'SHEP'] },
];

export interface TrendSeries {
  /** Per bucket, aligned with RecordTrends.t; null where the bucket had no valid value of the channel. */
  min: Array<number | null>;
  mean: Array<number | null>;
  max: Array<number | null>;
}

export interface RecordTrends {
  /** Bucket width, ms: chosen from the session's length so a chart has at most ~1,500 points (never under 1 s). */
  bucketMs: number;
  /** Bucket start times (device time, ms), ascending; only buckets holding at least one sample. */
  t: number[];
  /** Per channel key (those of TREND_CHARTS that the session has). */
  series: Record<string, TrendSeries>;
}

export interface RecordAlarmRow {
  /** Alarm instance id (`device:rule`) and the raise time (gateway time, ms): one row per raise. */
  id: string;
  rule: string;
  priority: string;
  message: string;
  value: number | string | null;
  limit: number | string | null;
  raisedAt: number;
  ackedAt: number | null;
  ackedBy: string | null;
  /** ackedAt - raisedAt, ms. */
  timeToAckMs: number | null;
  clearedAt: number | null;
  /** Shelving while this raise lasted: who, when, for how long and why. */
  shelves: Array<{ at: number; by: string | null; reason: string | null; until: number | null }>;
  /** Other transitions (escalate, reset, out_of_service, ...) in order, for completeness. */
  other: Array<{ kind: string; at: number; by: string | null; reason: string | null }>;
}

export interface RecordEventRow {
  t: number;
  code: string;
  prio: string;
  active: boolean;
  text: string;
}

export interface RecordCommandRow {
  /** Gateway time of the request, ms. */
  at: number;
  cmdId: string | null;
  verb: string | null;
  args: unknown[];
  user: string;
  role: string;
  reason: string | null;
  /** OK, REJ, ERR, TIMEOUT, conflict, refused, pending (see SessionSummary commands). */
  outcome: string;
}

export interface RecordAnnotationRow {
  id: number;
  /** Clinical time the note is about (ms). */
  t: number;
  kind: string;
  /** Adverse event type for kind `adverse_event`. */
  subtype: string | null;
  text: string;
  user: string;
  role: string;
  createdAt: number;
  auditId: number;
}

export interface PerfusionRecord {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_VERSION;
  site: { name: string | null; gateway: string | null; timeZone: string };
  console: { device: string; model: string | null; serialNo: string | null; fw: string | null };
  session: {
    /** session_record row key: the same session id may recur. */
    key: number;
    sessionId: string;
    participant: string | null;
    /** ISO 8601 UTC. */
    startedAt: string;
    endedAt: string | null;
    endReason: string | null;
    durationMs: number;
    running: boolean;
    /** ms of device time per state. */
    stateMs: SessionSummary['stateMs'];
  };
  /** State changes during the session (device time), for the chart bands. */
  states: Array<{ t: number; state: string; previous: string | null }>;
  trends: RecordTrends;
  alarms: RecordAlarmRow[];
  events: RecordEventRow[];
  commands: RecordCommandRow[];
  annotations: RecordAnnotationRow[];
  completeness: SessionSummary['completeness'];
  channels: SessionSummary['channels'];
  temperature: SessionSummary['temperature'];
}

/** One entry of the signature manifest (21 CFR 11.50): read from the audit record `record.signed`. */
export interface RecordSignature {
  /** Id of the audit record that holds the signature. */
  auditId: number;
  /** The signer's user (token) name, their printed full name and role at the time of signing. */
  user: string;
  printedName: string;
  role: string;
  meaning: SignatureMeaning;
  /** Gateway time of signing: ms, ISO UTC, and the same instant in the site's time zone (`YYYY-MM-DD HH:MM:SS ±HH:MM`). */
  at: number;
  atUtc: string;
  atLocal: string;
  /** SHA-256 of the record's canonical JSON the signature applies to. */
  recordSha256: string;
  /** True when the record's hash now differs from recordSha256 (11.70). */
  changedSince: boolean;
}

/** A change to what the record contains made after its first signature, with the reason given (audit trail). */
export interface RecordAmendment {
  auditId: number;
  at: number;
  user: string;
  role: string;
  /** Audit action, e.g. `annotation.add`, `session.participant`. */
  action: string;
  /** Short human description of what changed. */
  summary: string;
  reason: string;
}

export interface RecordView {
  record: PerfusionRecord;
  /** SHA-256 (hex) of canonicalJson(record). */
  sha256: string;
  signatures: RecordSignature[];
  amendments: RecordAmendment[];
  /** Some signature no longer matches the current record. */
  changedSinceSigned: boolean;
  /** When this view was made (not hashed), ISO UTC. */
  generatedAt: string;
}
