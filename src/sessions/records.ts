/**
 * Reads of the `session_record` table (written by SessionRecorder), shared by the API and the export CLI,
 * which opens the journal read-only.
 */
import type { SessionState } from '../protocol/types.js';
import type { Db } from '../storage/schema.js';
import type { SessionFilter, SessionRecord } from './types.js';

export interface RecordRow {
  key: number;
  session: string;
  device: string;
  started_at: number;
  started_rx: number;
  ended_at: number | null;
  ended_rx: number | null;
  end_reason: string | null;
  state_ms: string;
  last_state: string;
  last_state_at: number;
  participant: string | null;
}

export function rowToRecord(r: RecordRow): SessionRecord {
  return {
    key: r.key, sessionId: r.session, device: r.device, startedAt: r.started_at, startedRx: r.started_rx,
    endedAt: r.ended_at, endedRx: r.ended_rx, endReason: r.end_reason,
    stateMs: JSON.parse(r.state_ms) as SessionRecord['stateMs'], lastState: r.last_state as SessionState,
    lastStateAt: r.last_state_at, participant: r.participant,
  };
}

export function tableExists(db: Db, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

export const SESSION_LIST_MAX = 1_000;

/** Newest first. */
export function readRecords(db: Db, f: SessionFilter & { openOnly?: boolean } = {}): SessionRecord[] {
  if (!tableExists(db, 'session_record')) return [];
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.device !== undefined) { where.push('device = ?'); params.push(f.device); }
  // Overlap with [from, to): started before `to` and not ended before `from`.
  if (f.to !== undefined) { where.push('started_at < ?'); params.push(f.to); }
  if (f.from !== undefined) { where.push('(ended_at IS NULL OR ended_at >= ?)'); params.push(f.from); }
  if (f.openOnly) where.push('ended_at IS NULL');
  const limit = Math.max(1, Math.min(f.limit ?? 100, SESSION_LIST_MAX));
  const rows = db.prepare(`SELECT * FROM session_record ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
    ORDER BY started_at DESC, key DESC LIMIT ${limit}`).all(...params) as RecordRow[];
  return rows.map(rowToRecord);
}

/** Records of a session id, newest first (the same id may recur on another console). */
export function findRecords(db: Db, sessionId: string, device?: string): SessionRecord[] {
  if (!tableExists(db, 'session_record')) return [];
  const rows = (device === undefined
    ? db.prepare('SELECT * FROM session_record WHERE session = ? ORDER BY started_at DESC, key DESC').all(sessionId)
    : db.prepare('SELECT * FROM session_record WHERE session = ? AND device = ? ORDER BY started_at DESC, key DESC')
      .all(sessionId, device)) as RecordRow[];
  return rows.map(rowToRecord);
}
