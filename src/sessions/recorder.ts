/**
 * SessionRecorder: follows every console's state changes on the bus and keeps one record per
 * treatment session in its own table of the journal database: console, start and end, time in each state,
 * and the participant study code an operator sets (audited).
 *
 * ICD §1: a RUNNING or PAUSED session always has a session_id; the simulator and the console keep it through
 * RINSEBACK, ENDED and FAULT and clear it in IDLE. A record opens at the first state carrying a new session
 * id and closes at ENDED. ICD: it is silent on FAULT → RESET → IDLE without ENDED; the record is then closed
 * at IDLE with that reason, so no session stays open for ever.
 */
import type { Actor } from '../alarms/types.js';
import type { AuditSink } from '../audit/auditLog.js';
import type { EventBus, StateChange } from '../bus.js';
import type { SessionState } from '../protocol/types.js';
import { durableTransaction, type Db } from '../storage/schema.js';
import { readRecords, rowToRecord, type RecordRow } from './records.js';
import { PARTICIPANT_CODE_RE, type SessionRecord } from './types.js';

export const SESSION_SCHEMA = `
CREATE TABLE IF NOT EXISTS session_record (
  key INTEGER PRIMARY KEY AUTOINCREMENT,
  session TEXT NOT NULL,
  device TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  started_rx INTEGER NOT NULL,
  ended_at INTEGER,
  ended_rx INTEGER,
  end_reason TEXT,
  state_ms TEXT NOT NULL,
  last_state TEXT NOT NULL,
  last_state_at INTEGER NOT NULL,
  participant TEXT,
  UNIQUE (device, session, started_at)
);
CREATE INDEX IF NOT EXISTS session_record_session ON session_record (session);
CREATE INDEX IF NOT EXISTS session_record_device ON session_record (device, started_at);
`;

/** States in which a console has no session (ICD §1: the session id is cleared in IDLE). */
const NO_SESSION: ReadonlySet<SessionState> = new Set(['IDLE']);

export type ParticipantResult =
  | { ok: true; record: SessionRecord }
  | { ok: false; status: 400 | 404 | 503; message: string };

export interface SessionRecorderOptions {
  bus: EventBus;
  audit: AuditSink;
  logger: { error(obj: object, msg?: string): void };
}

export class SessionRecorder {
  private db: Db | null = null;
  /** The open record of each console. */
  private readonly open = new Map<string, SessionRecord>();
  /** Records changed while the database was away, written when it is back. */
  private readonly dirty = new Set<SessionRecord>();
  private started = false;

  constructor(private readonly opts: SessionRecorderOptions) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.bus.on(this, 'state', (c) => this.onState(c));
  }

  stop(): void {
    this.opts.bus.removeOwner(this);
    this.started = false;
    this.persistDirty();
  }

  /** The journal's (re)opened handle (`journal.onOpen`): creates the table and reloads open records. */
  useDatabase(db: Db): void {
    this.db = db;
    try {
      db.exec(SESSION_SCHEMA);
      for (const r of readRecords(db, { openOnly: true, limit: 10_000 })) {
        if (!this.open.has(r.device)) this.open.set(r.device, r);
      }
    } catch (err) {
      this.opts.logger.error({ err: String(err) }, 'sessions: cannot prepare the session table');
      return;
    }
    this.persistDirty();
  }

  /** The open record of a console, if a session is running there. */
  current(device: string): SessionRecord | null {
    return this.open.get(device) ?? null;
  }

  onState(c: StateChange): void {
    let rec = this.open.get(c.deviceId) ?? null;
    if (rec) {
      this.accumulate(rec, c);
      if (c.sessionId !== null && c.sessionId !== rec.sessionId) this.close(rec, c, 'superseded');
      else if (c.state === 'ENDED') this.close(rec, c, 'ENDED');
      else if (NO_SESSION.has(c.state)) this.close(rec, c, c.state);
      else this.save(rec);
      rec = this.open.get(c.deviceId) ?? null;
    }
    if (!rec && c.sessionId !== null && c.state !== 'ENDED' && !NO_SESSION.has(c.state)) {
      const fresh: SessionRecord = {
        key: 0, sessionId: c.sessionId, device: c.deviceId, startedAt: c.t, startedRx: c.rx,
        endedAt: null, endedRx: null, endReason: null, stateMs: {}, lastState: c.state, lastStateAt: c.t, participant: null,
      };
      this.open.set(c.deviceId, fresh);
      this.save(fresh);
    }
  }

  /**
   * Sets the pseudonymous participant study code of a session; the audit record and the change are one
   * transaction, so neither exists without the other ("set by an operator and audited").
   */
  setParticipant(key: number, code: string, reason: string, actor: Actor): ParticipantResult {
    if (!PARTICIPANT_CODE_RE.test(code)) {
      return { ok: false, status: 400, message: 'code: 1-32 characters of A-Z a-z 0-9 and -, a study code, never a name' };
    }
    const db = this.db;
    if (!db) return { ok: false, status: 503, message: 'session records unavailable: the journal cannot be written' };
    const row = db.prepare('SELECT * FROM session_record WHERE key = ?').get(key) as RecordRow | undefined;
    if (!row) return { ok: false, status: 404, message: `no session record ${key}` };
    const previous = row.participant;
    durableTransaction(db, () => {
      this.opts.audit.append({
        user: actor.user, role: actor.role, device: row.device, session: row.session, action: 'session.participant',
        outcome: 'done', detail: { key, code, previous, reason },
      });
      db.prepare('UPDATE session_record SET participant = ? WHERE key = ?').run(code, key);
    });
    const open = this.open.get(row.device);
    if (open && open.key === key) open.participant = code;
    return { ok: true, record: rowToRecord({ ...row, participant: code }) };
  }

  private accumulate(rec: SessionRecord, c: StateChange): void {
    // Device time; a clock set backwards (CMD SYNC) must not subtract time.
    rec.stateMs[rec.lastState] = (rec.stateMs[rec.lastState] ?? 0) + Math.max(0, c.t - rec.lastStateAt);
    rec.lastState = c.state;
    rec.lastStateAt = c.t;
  }

  private close(rec: SessionRecord, c: StateChange, reason: string): void {
    rec.endedAt = c.t;
    rec.endedRx = c.rx;
    rec.endReason = reason;
    this.open.delete(rec.device);
    this.save(rec);
  }

  private save(rec: SessionRecord): void {
    this.dirty.add(rec);
    this.persistDirty();
  }

  private persistDirty(): void {
    const db = this.db;
    if (!db || this.dirty.size === 0) return;
    try {
      const insert = db.prepare(`INSERT INTO session_record (session, device, started_at, started_rx, ended_at, ended_rx,
        end_reason, state_ms, last_state, last_state_at, participant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (device, session, started_at) DO UPDATE SET ended_at = excluded.ended_at, ended_rx = excluded.ended_rx,
        end_reason = excluded.end_reason, state_ms = excluded.state_ms, last_state = excluded.last_state,
        last_state_at = excluded.last_state_at RETURNING key`);
      db.transaction(() => {
        for (const r of this.dirty) {
          const row = insert.get(r.sessionId, r.device, r.startedAt, r.startedRx, r.endedAt, r.endedRx, r.endReason,
            JSON.stringify(r.stateMs), r.lastState, r.lastStateAt, r.participant) as { key: number };
          r.key = row.key;
        }
      })();
      this.dirty.clear();
    } catch (err) {
      // The journal raises STORAGE_FAILURE itself; the records stay dirty and are written when it reopens.
      this.opts.logger.error({ err: String(err) }, 'sessions: cannot write session records (kept for later)');
    }
  }
}
