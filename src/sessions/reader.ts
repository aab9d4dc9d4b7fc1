/**
 * Everything about one session, read from the journal database: its telemetry, states, device events,
 * alarms, annotations and audit records, and the summary computed from them (summary.ts). Works on the
 * daemon's handle and on a read-only one (the export CLI), so both give the same answer.
 */
import type { AlarmTransition } from '../alarms/types.js';
import type { AuditRecord } from '../audit/auditLog.js';
import type { DeviceEvent, StateChange, TelemetrySample } from '../bus.js';
import * as q from '../storage/journalQueries.js';
import type { Db } from '../storage/schema.js';
import { tableExists } from './records.js';
import { ChannelAccumulator, SeqCompleteness, summarizeSession, type AnnotationRow } from './summary.js';
import type { SessionRecord, SessionSummary } from './types.js';

/** Commands that lead to a session (its START) are audited just before the first state carrying its id. */
const LEAD_IN_MS = 60_000;
const PAGE_ROWS = 5_000;
const nextTurn = () => new Promise((r) => setImmediate(r));

export interface SessionAnnotation extends AnnotationRow {
  id: number;
  device: string;
  session: string | null;
  role: string;
  createdAt: number;
  auditId: number;
}

/** Device-time range of a session's journal rows: [start, end] inclusive, to `now` while it runs. */
export function deviceRange(r: SessionRecord, now: number): { from: number; to: number } {
  return { from: r.startedAt, to: (r.endedAt ?? now) + 1 };
}

/** Gateway-time range (alarms and audit are stamped by the gateway). */
export function gatewayRange(r: SessionRecord, now: number): { from: number; to: number } {
  return { from: r.startedRx, to: (r.endedRx ?? now) + 1 };
}

export class SessionReader {
  constructor(private readonly db: () => Db) {}

  /** Telemetry pages in (t, seq) order. */
  async *telemetry(r: SessionRecord, now: number): AsyncGenerator<TelemetrySample[]> {
    const range = deviceRange(r, now);
    let after: q.TelemetryKey | null = null;
    for (;;) {
      const page = q.telemetryPage(this.db(), r.device, range, after, PAGE_ROWS);
      if (page.length > 0) yield page;
      if (page.length < PAGE_ROWS) return;
      after = { t: page[page.length - 1].t, seq: page[page.length - 1].seq };
      await nextTurn();
    }
  }

  telemetryCount(r: SessionRecord, now: number): number {
    const range = deviceRange(r, now);
    const row = this.db().prepare('SELECT count(*) AS n FROM telemetry WHERE device = ? AND t >= ? AND t < ?')
      .get(r.device, range.from, range.to) as { n: number };
    return row.n;
  }

  channelKeys(r: SessionRecord): string[] {
    return q.channelKeys(this.db(), r.device);
  }

  states(r: SessionRecord, now: number): StateChange[] {
    return q.states(this.db(), r.device, deviceRange(r, now), 1_000_000);
  }

  events(r: SessionRecord, now: number): DeviceEvent[] {
    return q.events(this.db(), r.device, deviceRange(r, now), 1_000_000);
  }

  alarms(r: SessionRecord, now: number): AlarmTransition[] {
    return q.alarms(this.db(), r.device, gatewayRange(r, now), 1_000_000);
  }

  annotations(r: SessionRecord): SessionAnnotation[] {
    const db = this.db();
    if (!tableExists(db, 'annotations')) return [];
    const rows = db.prepare('SELECT * FROM annotations WHERE device = ? AND session = ? ORDER BY t, id')
      .all(r.device, r.sessionId) as Array<Record<string, unknown>>;
    return rows.map((a) => ({
      id: a.id as number, device: a.device as string, session: a.session as string | null, t: a.t as number,
      kind: a.kind as string, subtype: a.subtype as string | null, text: a.text as string, user: a.user as string,
      role: a.role as string, createdAt: a.created_at as number, auditId: a.audit_id as number,
    }));
  }

  /** Audit records of the console during the session, with the command that started it. */
  audit(r: SessionRecord, now: number): AuditRecord[] {
    const db = this.db();
    if (!tableExists(db, 'audit')) return [];
    const g = gatewayRange(r, now);
    // Records naming the session count whenever they were written (a participant code set afterwards).
    const rows = db.prepare(`SELECT * FROM audit WHERE device = ? AND ((at >= ? AND at < ?) OR session = ?) ORDER BY id`)
      .all(r.device, g.from - LEAD_IN_MS, g.to, r.sessionId) as Array<Record<string, unknown>>;
    const out: AuditRecord[] = [];
    const leadCmdIds = new Set<string>();
    for (const row of rows) {
      const detail = JSON.parse(row.detail as string) as Record<string, unknown>;
      const at = row.at as number;
      const startsThis = Array.isArray(detail.args) && detail.args[0] === r.sessionId && detail.verb === 'START';
      if (startsThis && typeof detail.cmdId === 'string') leadCmdIds.add(detail.cmdId);
      const inLeadChain = typeof detail.cmdId === 'string' && leadCmdIds.has(detail.cmdId);
      if (at < g.from && row.session !== r.sessionId && !startsThis && !inLeadChain) continue;
      out.push({
        id: row.id as number, at, user: row.user as string, role: row.role as string, device: row.device as string | null,
        session: row.session as string | null, action: row.action as string, detail, outcome: row.outcome as string,
        prevHash: row.prev_hash as string, hash: row.hash as string,
      });
    }
    return out;
  }

  async summary(r: SessionRecord, now: number): Promise<SessionSummary> {
    const channels = new ChannelAccumulator();
    for await (const page of this.telemetry(r, now)) for (const s of page) channels.add(s.t, s.v);
    return summarizeSession({
      record: r,
      alarms: this.alarms(r, now),
      annotations: this.annotations(r),
      audit: this.audit(r, now),
      channels: channels.result(),
      completeness: this.completeness(r, now),
    }, now);
  }

  /** Every sequenced frame (ICD §1: T, S and EV share one counter) in arrival order. */
  completeness(r: SessionRecord, now: number): SessionSummary['completeness'] {
    const range = deviceRange(r, now);
    const acc = new SeqCompleteness();
    const stmt = this.db().prepare(`SELECT seq, t FROM (
        SELECT seq, t, rx FROM telemetry WHERE device = @device AND t >= @from AND t < @to
        UNION ALL SELECT seq, t, rx FROM state WHERE device = @device AND t >= @from AND t < @to
        UNION ALL SELECT seq, t, rx FROM event WHERE device = @device AND t >= @from AND t < @to)
      ORDER BY rx, seq`).raw(true);
    for (const [seq, t] of stmt.iterate({ device: r.device, ...range }) as Iterable<[number, number]>) acc.add(seq, t);
    return acc.result();
  }
}
