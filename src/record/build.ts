/**
 * buildPerfusionRecord: the perfusion record of one session (src/record/types.ts), read from the journal.
 *
 * Deterministic: the same journal content gives the same record, so the same canonical JSON and the same
 * SHA-256 (src/record/hash.ts). Every list comes from a query with a total order (device rows by (t, seq),
 * alarms by (at, id), audit records and annotations by id), nothing in it is a generation time, and a running
 * session's open state is counted to `now` only while it runs (such a record cannot be signed).
 *
 * Telemetry is read once, page by page in (t, seq) order (SessionReader.telemetry), feeding both the session
 * summary's per-channel statistics and TR band time (ChannelAccumulator, the same code as the summary) and the
 * trend buckets (min / mean / max per bucket): a 24-hour session at 25 Hz is 2.16 million rows and never in
 * memory at once. Measured against SQL aggregation (json_extract ... GROUP BY bucket), the streaming pass was
 * several times faster: SQLite parses the JSON again for every json_extract call (docs/engineer.md,
 * "Perfusion record").
 */
import type { AlarmTransition } from '../alarms/types.js';
import type { ChannelValues } from '../protocol/types.js';
import { SessionReader } from '../sessions/reader.js';
import { ChannelAccumulator, commandRequests, summarizeSession } from '../sessions/summary.js';
import type { SessionRecord } from '../sessions/types.js';
import type { Db } from '../storage/schema.js';
import { consoleHelloFor } from './consoleInfo.js';
import {
  RECORD_FORMAT, RECORD_VERSION, TREND_CHARTS, type PerfusionRecord, type RecordAlarmRow, type RecordCommandRow,
  type RecordTrends, type TrendSeries,
} from './types.js';

export type RecordSite = PerfusionRecord['site'];

export interface BuildOptions {
  site: RecordSite;
  /** Gateway time now: the end of a running session. */
  now: number;
}

/** Most points a trend chart gets. */
export const TREND_MAX_BUCKETS = 1_500;
/** Round bucket widths, ms, smallest first; the smallest that keeps a chart within TREND_MAX_BUCKETS is used. */
export const TREND_BUCKET_STEPS_MS: readonly number[] = [
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
  60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/** Channels charted by TREND_CHARTS, in chart order, each once. */
export const TREND_CHANNELS: readonly string[] = [...new Set(TREND_CHARTS.flatMap((c) => c.channels))];

/** Bucket width for device times [from, to]: buckets are aligned to the epoch (as history queries are). */
export function trendBucketMs(from: number, to: number): number {
  for (const b of TREND_BUCKET_STEPS_MS) {
    if (Math.floor(to / b) - Math.floor(from / b) + 1 <= TREND_MAX_BUCKETS) return b;
  }
  return TREND_BUCKET_STEPS_MS[TREND_BUCKET_STEPS_MS.length - 1];
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/**
 * Min / mean / max per bucket of the trend channels, fed samples in device-time order. A bucket exists once any
 * sample falls in it; a channel's value there is null when the bucket had no valid reading of it (absent: not
 * measured; null: a sensor fault, ICD §1).
 */
export class TrendAccumulator {
  private readonly t: number[] = [];
  private readonly series = new Map<string, TrendSeries>();
  private readonly seen = new Set<string>();
  private bucket: number | null = null;
  private readonly cur: Array<{ min: number; max: number; sum: number; n: number }>;

  constructor(private readonly bucketMs: number, private readonly channels: readonly string[] = TREND_CHANNELS) {
    this.cur = channels.map(() => ({ min: Infinity, max: -Infinity, sum: 0, n: 0 }));
    for (const key of channels) this.series.set(key, { min: [], mean: [], max: [] });
  }

  add(t: number, v: ChannelValues): void {
    const b = t - (((t % this.bucketMs) + this.bucketMs) % this.bucketMs);
    if (b !== this.bucket) {
      this.close();
      this.bucket = b;
    }
    for (let i = 0; i < this.channels.length; i++) {
      const key = this.channels[i];
      if (!(key in v)) continue;
      this.seen.add(key);
      const x = v[key];
      if (typeof x !== 'number' || !Number.isFinite(x)) continue;
      const c = this.cur[i];
      if (x < c.min) c.min = x;
      if (x > c.max) c.max = x;
      c.sum += x;
      c.n += 1;
    }
  }

  result(): RecordTrends {
    this.close();
    const series: Record<string, TrendSeries> = {};
    for (const key of this.channels) if (this.seen.has(key)) series[key] = this.series.get(key)!;
    return { bucketMs: this.bucketMs, t: this.t, series };
  }

  private close(): void {
    if (this.bucket === null) return;
    this.t.push(this.bucket);
    this.channels.forEach((key, i) => {
      const c = this.cur[i];
      const s = this.series.get(key)!;
      s.min.push(c.n > 0 ? c.min : null);
      s.mean.push(c.n > 0 ? round4(c.sum / c.n) : null);
      s.max.push(c.n > 0 ? c.max : null);
      this.cur[i] = { min: Infinity, max: -Infinity, sum: 0, n: 0 };
    });
    this.bucket = null;
  }
}

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
  const channels = new ChannelAccumulator();
  const trends = new TrendAccumulator(trendBucketMs(rec.startedAt, Math.max(rec.startedAt, end)));
  for await (const page of reader.telemetry(rec, now)) {
    for (const s of page) {
      channels.add(s.t, s.v);
      trends.add(s.t, s.v);
    }
  }
  const alarms = reader.alarms(rec, now);
  const annotations = reader.annotations(rec);
  const audit = reader.audit(rec, now);
  const summary = summarizeSession({
    record: rec, alarms, annotations, audit, channels: channels.result(), completeness: reader.completeness(rec, now),
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
    trends: trends.result(),
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
