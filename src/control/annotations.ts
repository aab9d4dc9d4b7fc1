/**
 * Session annotations: clinical events a perfusionist notes during a session, above all suspected
 * adverse events, which the trial counts per session. Each one is an audit record AND a row of a small
 * `annotations` table (queried by device, session and time), written in one transaction: both or neither.
 */
import type { Database, Statement } from 'better-sqlite3';
import { z } from 'zod';
import type { Actor } from '../alarms/types.js';
import type { AuditSink } from '../audit/auditLog.js';
import { counter, type Registry } from '../metrics.js';
import { SESSION_ID_RE } from '../protocol/commands.js';
import { GatewayError } from '../errors.js';
import { durableTransaction } from '../storage/schema.js';
import { journalUnavailable } from '../storage/types.js';

export const ANNOTATION_KINDS = ['adverse_event', 'note', 'intervention'] as const;
export type AnnotationKind = (typeof ANNOTATION_KINDS)[number];
/** Suspected adverse events of an extracorporeal liver-support session. */
export const ADVERSE_EVENT_TYPES = ['hypotension', 'fever', 'chills', 'bleeding', 'circuit_clotting', 'other'] as const;
export type AdverseEventType = (typeof ADVERSE_EVENT_TYPES)[number];

export const ANNOTATION_TEXT_MAX = 2000;
export const ANNOTATION_REASON_MAX = 500;
/** How far ahead of the gateway clock an annotation's time may be (clock skew of the ward PC), ms. */
export const ANNOTATION_FUTURE_SLACK_MS = 60_000;
/** No trial session happened before 2000-01-01: an earlier time is a unit mistake (seconds, not ms) or a probe. */
export const ANNOTATION_EARLIEST_MS = Date.UTC(2000, 0, 1);

/**
 * Characters refused in annotation text: C0 controls except TAB, LF and CR (multi-line notes are allowed, and a
 * browser may send CRLF), DEL, C1 controls, the bidi embeddings, overrides and isolates that make a note read
 * differently from what is stored (U+202A-U+202E, U+2066-U+2069), and lone surrogates (not valid Unicode).
 * Text flows into the audit trail, CSV and JSON exports, Grafana and log lines; none of these should carry them.
 */
const FORBIDDEN_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]|\p{Surrogate}/u;

/** Why a text is refused (the first offending character and its position), or null. */
export function forbiddenCharacter(text: string): string | null {
  const m = FORBIDDEN_TEXT.exec(text);
  if (!m) return null;
  const code = m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  const what = /[\u202A-\u202E\u2066-\u2069]/.test(m[0]) ? 'bidi control' : /\p{Surrogate}/u.test(m[0]) ? 'lone surrogate' : 'control character';
  return `${what} U+${code} at position ${m.index} is not allowed (tab and line breaks are)`;
}

/** Why annotations were refused, counted for /metrics. */
export const ANNOTATION_REFUSALS = ['invalid_body', 'control_characters', 'unknown_device', 'time', 'session', 'reason_required'] as const;
export type AnnotationRefusal = (typeof ANNOTATION_REFUSALS)[number];

/** Refusal counters; kept apart from the store, which exists only once the journal is open. */
export class AnnotationStats {
  readonly refused: Record<AnnotationRefusal, number> = Object.fromEntries(ANNOTATION_REFUSALS.map((r) => [r, 0])) as Record<AnnotationRefusal, number>;

  refuse(reason: AnnotationRefusal): void {
    this.refused[reason]++;
  }

  registerMetrics(registry: Registry): void {
    counter(registry, {
      name: 'msc_annotations_refused_total', help: 'Annotations refused, by reason.', labelNames: ['reason'],
      read: () => ANNOTATION_REFUSALS.map((reason) => [{ reason }, this.refused[reason]] as const),
    });
  }
}

export const AnnotationBodySchema = z.object({
  /** When the event happened: epoch ms or ISO 8601 with offset; defaults to now. */
  t: z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })]).optional(),
  kind: z.enum(ANNOTATION_KINDS),
  /** Required for `adverse_event`, absent otherwise. */
  subtype: z.enum(ADVERSE_EVENT_TYPES).optional(),
  text: z.string().trim().min(1).max(ANNOTATION_TEXT_MAX).superRefine((text, ctx) => {
    const why = forbiddenCharacter(text);
    if (why) ctx.addIssue({ code: 'custom', message: why, params: { refusal: 'control_characters' } });
  }),
  /** Defaults to the device's current session. */
  session: z.string().regex(SESSION_ID_RE).optional(),
  /**
   * Why the record changes: required once the session's record has a signature (the annotation is then an
   * amendment of a signed record, 21 CFR 11.10(e)); kept in the audit record's detail.
   */
  reason: z.string().trim().min(1).max(ANNOTATION_REASON_MAX).superRefine((reason, ctx) => {
    const why = forbiddenCharacter(reason);
    if (why) ctx.addIssue({ code: 'custom', message: why, params: { refusal: 'control_characters' } });
  }).optional(),
}).strict().superRefine((b, ctx) => {
  if (b.kind === 'adverse_event' && !b.subtype) {
    ctx.addIssue({ code: 'custom', path: ['subtype'], message: `required for adverse_event: one of ${ADVERSE_EVENT_TYPES.join(', ')}` });
  }
  if (b.kind !== 'adverse_event' && b.subtype) {
    ctx.addIssue({ code: 'custom', path: ['subtype'], message: 'only adverse_event has a subtype' });
  }
});
export type AnnotationBody = z.infer<typeof AnnotationBodySchema>;

/** The 400's message when a signed session's annotation comes without a reason. */
export function reasonRequiredMessage(device: string, session: string): string {
  return `required: the record of session ${session} on ${device} is signed, so an annotation amends a signed record; say why (1-${ANNOTATION_REASON_MAX} characters)`;
}

export interface Annotation {
  id: number;
  device: string;
  session: string | null;
  /** When the event happened, epoch ms. */
  t: number;
  kind: AnnotationKind;
  subtype: AdverseEventType | null;
  text: string;
  user: string;
  role: string;
  /** When it was written, epoch ms. */
  createdAt: number;
  auditId: number;
}

export interface AnnotationQuery {
  device?: string;
  session?: string;
  from?: number;
  to?: number;
  limit?: number;
}

export interface AnnotationStoreOptions {
  /** The journal's handle; null in the gateway until the journal first opens (reads and writes are then 503). */
  db: Database | null;
  audit: AuditSink;
  now?: () => number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS annotations (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  session TEXT,
  t INTEGER NOT NULL,
  kind TEXT NOT NULL,
  subtype TEXT,
  text TEXT NOT NULL,
  user TEXT NOT NULL,
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  audit_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_device_t ON annotations(device, t);
CREATE INDEX IF NOT EXISTS annotations_session ON annotations(session, t);
`;

export const ANNOTATION_QUERY_MAX = 5000;

interface Row {
  id: number; device: string; session: string | null; t: number; kind: AnnotationKind; subtype: AdverseEventType | null;
  text: string; user: string; role: string; created_at: number; audit_id: number;
}

export class AnnotationStore {
  private insert: Statement<unknown[]> | null = null;
  private readonly now: () => number;
  private db: Database | null;
  private started = false;

  constructor(private readonly opts: AnnotationStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.db = opts.db;
  }

  /** Creates the table (without a handle, when it comes). */
  start(): void {
    this.started = true;
    const db = this.db;
    if (this.insert || !db) return;
    db.exec(SCHEMA);
    this.insert = db.prepare(`INSERT INTO annotations (device, session, t, kind, subtype, text, user, role, created_at, audit_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  stop(): void {}

  /** Switches to the journal's new handle after it reopened (`journal.onOpen`). */
  useDatabase(db: Database): void {
    if (db === this.db) return;
    this.db = db;
    this.insert = null;
    if (this.started) this.start();
  }

  /** The event time of a body, or why it is refused (a time in the future is not a record of what happened). */
  eventTime(body: AnnotationBody): { ok: true; t: number } | { ok: false; message: string } {
    const now = this.now();
    const t = body.t === undefined ? now : typeof body.t === 'number' ? body.t : Date.parse(body.t);
    if (!Number.isSafeInteger(t)) return { ok: false, message: 'not a valid time: epoch milliseconds or ISO 8601 with offset' };
    if (t < ANNOTATION_EARLIEST_MS) return { ok: false, message: 'is before 2000-01-01: epoch milliseconds are expected' };
    if (t > now + ANNOTATION_FUTURE_SLACK_MS) return { ok: false, message: 'is in the future' };
    return { ok: true, t };
  }

  /**
   * Whether `session` ran on `device`: a session record of that console (SessionRecorder), or, for journals
   * older than the records, a state frame of that console carrying the id. The same id on another console is
   * another session: an annotation attached there would count as that console's adverse event.
   */
  sessionRanOn(device: string, session: string): boolean {
    const db = this.database();
    const has = (table: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
    if (has('session_record') && db.prepare('SELECT 1 FROM session_record WHERE device = ? AND session = ? LIMIT 1').get(device, session)) return true;
    return has('state') && db.prepare('SELECT 1 FROM state WHERE device = ? AND session = ? LIMIT 1').get(device, session) !== undefined;
  }

  /**
   * Whether the record of `session` on `device` has been signed (an audit record `record.signed`): an annotation
   * of that session then changes a signed record and needs a reason.
   */
  sessionSigned(device: string, session: string): boolean {
    const db = this.database();
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get() === undefined) return false;
    return db.prepare(`SELECT 1 FROM audit WHERE device = ? AND session = ? AND action = 'record.signed' LIMIT 1`).get(device, session) !== undefined;
  }

  /**
   * Stores an annotation and its audit record (with `reason` when given). Refused with a 400 on `reason` when the
   * session's record is signed and no reason is given; checked again inside the transaction, so a signature that
   * lands between the route's check and the write cannot be passed by.
   */
  add(device: string, session: string | null, t: number, body: AnnotationBody, actor: Actor): Annotation {
    if (!this.insert) throw this.started ? journalUnavailable('annotations') : new Error('AnnotationStore.add before start()');
    const createdAt = this.now();
    return durableTransaction(this.database(), (): Annotation => {
      if (body.reason === undefined && session !== null && this.sessionSigned(device, session)) {
        throw new GatewayError('bad_request', undefined, [{ path: 'reason', message: reasonRequiredMessage(device, session) }]);
      }
      const rec = this.opts.audit.append({
        user: actor.user, role: actor.role, device, session, action: 'annotation.add', outcome: 'done', at: createdAt,
        detail: { t, kind: body.kind, subtype: body.subtype ?? null, text: body.text, ...(body.reason !== undefined ? { reason: body.reason } : {}) },
      });
      const info = this.insert!.run(device, session, t, body.kind, body.subtype ?? null, body.text, actor.user, actor.role, createdAt, rec.id);
      return {
        id: Number(info.lastInsertRowid), device, session, t, kind: body.kind, subtype: body.subtype ?? null,
        text: body.text, user: actor.user, role: actor.role, createdAt, auditId: rec.id,
      };
    });
  }

  query(q: AnnotationQuery = {}): Annotation[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.device !== undefined) { where.push('device = ?'); params.push(q.device); }
    if (q.session !== undefined) { where.push('session = ?'); params.push(q.session); }
    if (q.from !== undefined) { where.push('t >= ?'); params.push(q.from); }
    if (q.to !== undefined) { where.push('t <= ?'); params.push(q.to); }
    const limit = Math.max(1, Math.min(q.limit ?? 1000, ANNOTATION_QUERY_MAX));
    const rows = this.database().prepare(`SELECT * FROM annotations ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY t, id LIMIT ${limit}`).all(...params) as Row[];
    return rows.map((r) => ({
      id: r.id, device: r.device, session: r.session, t: r.t, kind: r.kind, subtype: r.subtype, text: r.text,
      user: r.user, role: r.role, createdAt: r.created_at, auditId: r.audit_id,
    }));
  }

  /**
   * Suspected adverse events of one session, per type (every type present, zero when none). With `device`,
   * of that console's session only, as the session summary counts them (an id may recur on another console).
   */
  adverseEventCounts(session: string, device?: string): Record<AdverseEventType, number> {
    const counts = Object.fromEntries(ADVERSE_EVENT_TYPES.map((k) => [k, 0])) as Record<AdverseEventType, number>;
    const db = this.database();
    const rows = (device === undefined
      ? db.prepare(`SELECT subtype, COUNT(*) AS n FROM annotations
      WHERE session = ? AND kind = 'adverse_event' GROUP BY subtype`).all(session)
      : db.prepare(`SELECT subtype, COUNT(*) AS n FROM annotations
      WHERE session = ? AND device = ? AND kind = 'adverse_event' GROUP BY subtype`).all(session, device)) as Array<{ subtype: AdverseEventType; n: number }>;
    for (const r of rows) if (Object.hasOwn(counts, r.subtype)) counts[r.subtype] = r.n;
    return counts;
  }

  private database(): Database {
    if (!this.db) throw journalUnavailable('annotations');
    return this.db;
  }
}
