/**
 * buildPerfusionRecord: the perfusion record of one session (src/record/types.ts), read from the journal.
 *
 * Deterministic: the same journal content gives the same record, so the same canonical JSON and the same
 * SHA-256 (src/record/hash.ts). Every list comes from a query with a total order (device rows by (t, seq),
 * alarms by (at, id), audit records and annotations by id), nothing in it is a generation time, and a running
 * session's open state is counted to `now` only while it runs (such a record cannot be signed).
 *
 * Telemetry is read once (telemetryPass.ts) for the channel statistics, the TR band time, the trend buckets and,
 * in the usual case, completeness: a 24-hour session at 25 Hz is 2.16 million rows, never in memory at once. For an
 * ended session that result is kept in the journal and used again while the session's rows are unchanged
 * (telemetryCache.ts): the record of a long session costs its pass once. A running session's pass is kept up to
 * date in the background (checkpoint.ts), so the first record after it ends reads only the rows since its checkpoint.
 */
import type { AlarmTransition } from '../alarms/types.js';
import { SessionReader } from '../sessions/reader.js';
import { commandRequests, summarizeSession } from '../sessions/summary.js';
import type { SessionRecord } from '../sessions/types.js';
import type { Db } from '../storage/schema.js';
import { consoleHelloFor } from './consoleInfo.js';
import { keep, readKept, telemetryFingerprint } from './telemetryCache.js';
import { telemetryPassFromCheckpoint } from './checkpoint.js';
import { trendBucketMs } from './telemetryPass.js';
import {
  RECORD_FORMAT, RECORD_VERSION, type PerfusionRecord, type RecordAlarmRow, type RecordCommandRow,
} from './types.js';

export type RecordSite = PerfusionRecord['site'];

export interface BuildOptions {
  site: RecordSite;
  /** Gateway time now: the end of a running session. */
  now: number;
}

export { TREND_BUCKET_STEPS_MS, TREND_MAX_BUCKETS, trendBucketMs } from './telemetryPass.js';

/**
 * One row per raise of an alarm, with what happened to it until its next raise: acknowledgement (first one),
 * clearing (first one), shelving with reason, and every other transition. A transition of an alarm raised before
 * the session (an alarm still standing when it began) opens a row from the alarm's own raise time.
 */
export function alarmRows(transitions: AlarmTransition[]): RecordAlarmRow[] {
  const rows: RecordAlarmRow[] = [];
  const open = new Map<string, RecordAlarmRow>();
  for (const tr of transitions) {
    const a = tr.alarm;
    const by = tr.actor?.user ?? null;
    let row = open.get(a.id);
    if (tr.kind === 'raise' || !row) {
      row = {
        id: a.id, rule: a.rule, priority: a.priority, message: a.message, value: a.value ?? null, limit: a.limit ?? null,
        raisedAt: tr.kind === 'raise' ? tr.at : (a.raisedAt ?? tr.at),
        ackedAt: null, ackedBy: null, timeToAckMs: null, clearedAt: null, shelves: [], other: [],
      };
      rows.push(row);
      open.set(a.id, row);
      if (tr.kind === 'raise') continue;
    }
    switch (tr.kind) {
      case 'ack':
        if (row.ackedAt === null) {
          row.ackedAt = tr.at;
          row.ackedBy = by;
          row.timeToAckMs = Math.max(0, tr.at - row.raisedAt);
        } else {
          row.other.push({ kind: tr.kind, at: tr.at, by, reason: tr.reason });
        }
        break;
      case 'clear':
        if (row.clearedAt === null) row.clearedAt = tr.at;
        else row.other.push({ kind: tr.kind, at: tr.at, by, reason: tr.reason });
        break;
      case 'shelve':
        row.shelves.push({ at: tr.at, by, reason: tr.reason, until: a.shelvedUntil ?? null });
        break;
      default:
        row.other.push({ kind: tr.kind, at: tr.at, by, reason: tr.reason });
    }
  }
  return rows;
}

/** The perfusion record of one session from the journal (`db` throws StorageUnavailableError while it is away). */
export async function buildPerfusionRecord(db: () => Db, rec: SessionRecord, opts: BuildOptions): Promise<PerfusionRecord> {
  const now = opts.now;
  const reader = new SessionReader(db);
  const end = rec.endedAt ?? now;
  const bucketMs = trendBucketMs(rec.startedAt, Math.max(rec.startedAt, end));
  // An ended session's telemetry results are kept while its rows stay the same (telemetryCache.ts).
  const fingerprint = rec.endedAt === null ? null : telemetryFingerprint(db(), rec, now, bucketMs);
  let pass = fingerprint === null ? null : readKept(db(), rec, fingerprint, now);
  if (!pass) {
    pass = await telemetryPassFromCheckpoint(db, reader, rec, now, bucketMs);
    if (fingerprint !== null) keep(db(), rec, fingerprint, pass, now);
  }
  const alarms = reader.alarms(rec, now);
  const annotations = reader.annotations(rec);
  const audit = reader.audit(rec, now);
  const summary = summarizeSession({
    record: rec, alarms, annotations, audit, channels: pass.channels, completeness: pass.completeness,
  }, now);
  const hello = consoleHelloFor(db(), rec.device, rec.startedRx, rec.endedRx ?? now);

  const commands: RecordCommandRow[] = commandRequests(audit).map(({ item, request }) => ({
    at: item.at, cmdId: item.cmdId, verb: item.verb, args: item.args, user: item.user, role: request.role,
    reason: typeof request.detail.reason === 'string' ? request.detail.reason : null, outcome: item.outcome,
  }));

  return {
    format: RECORD_FORMAT,
    version: RECORD_VERSION,
    site: { name: opts.site.name, gateway: opts.site.gateway, timeZone: opts.site.timeZone },
    console: { device: rec.device, model: hello?.model ?? null, serialNo: hello?.serialNo ?? null, fw: hello?.fw ?? null },
    session: {
      key: rec.key,
      sessionId: rec.sessionId,
      participant: rec.participant,
      startedAt: summary.startedAt,
      endedAt: summary.endedAt,
      endReason: rec.endReason,
      durationMs: summary.durationMs,
      running: summary.running,
      stateMs: summary.stateMs,
    },
    states: reader.states(rec, now).map((s) => ({ t: s.t, state: s.state, previous: s.previous })),
    trends: pass.trends,
    alarms: alarmRows(alarms),
    events: reader.events(rec, now).map((e) => ({ t: e.t, code: e.code, prio: e.prio, active: e.active, text: e.text })),
    commands,
    annotations: annotations.map((a) => ({
      id: a.id, t: a.t, kind: a.kind, subtype: a.subtype, text: a.text, user: a.user, role: a.role,
      createdAt: a.createdAt, auditId: a.auditId,
    })),
    completeness: summary.completeness,
    channels: summary.channels,
    temperature: summary.temperature,
  };
}
