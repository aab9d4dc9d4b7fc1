/**
 * The telemetry part of an ended session's perfusion record (channel statistics, TR band time, trend buckets,
 * completeness), kept in the journal's database after it was first computed, so the record and its PDF do not
 * read millions of rows again at every request (a 24-hour session at 25 Hz is 2.16 million rows: seconds of CPU).
 *
 * A kept result is used only while the session's rows are provably the same: its fingerprint is the number of
 * rows and the largest row id of the session's telemetry, states and events (one step down each table's
 * (device, t, seq) index, which holds the row id). Journal rows are never updated in place and their ids are
 * AUTOINCREMENT, never reused: a row added to the range has an id above every id there (the largest id changes),
 * a row removed lowers the count. Any change means the result is computed again from the rows. A running session
 * is never kept (its rows change all the time).
 *
 * At most CACHE_MAX sessions are kept (the least recently used go); a journal that cannot be written simply
 * keeps nothing.
 */
import { deviceRange } from '../sessions/reader.js';
import { tableExists } from '../sessions/records.js';
import type { SessionRecord } from '../sessions/types.js';
import type { Db } from '../storage/schema.js';
import type { TelemetryPassResult } from './telemetryPass.js';

export const TELEMETRY_CACHE_SCHEMA = `
CREATE TABLE IF NOT EXISTS record_telemetry_cache (
  session_key INTEGER PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  used_at INTEGER NOT NULL,
  data TEXT NOT NULL
);
`;

/** Sessions whose telemetry results are kept (a 24 h one is about 0.4 MB). */
export const CACHE_MAX = 32;
/** Bumped when what the pass computes changes, so older kept results are not used. */
const FORMAT = 2;

/** What the session's rows are now: for an ended session, equal fingerprints mean equal rows. */
export function telemetryFingerprint(db: Db, rec: SessionRecord, now: number, bucketMs: number): string {
  const range = deviceRange(rec, now);
  const parts: unknown[] = [FORMAT, rec.device, range.from, range.to, bucketMs];
  for (const table of ['telemetry', 'state', 'event']) {
    const row = db.prepare(`SELECT count(*) AS n, max(id) AS last FROM ${table} WHERE device = ? AND t >= ? AND t < ?`)
      .get(rec.device, range.from, range.to) as { n: number; last: number | null };
    parts.push(row.n, row.last);
  }
  return JSON.stringify(parts);
}

export function readKept(db: Db, rec: SessionRecord, fingerprint: string, now: number): TelemetryPassResult | null {
  if (rec.endedAt === null || !tableExists(db, 'record_telemetry_cache')) return null;
  const row = db.prepare('SELECT fingerprint, data FROM record_telemetry_cache WHERE session_key = ?').get(rec.key) as
    | { fingerprint: string; data: string } | undefined;
  if (!row || row.fingerprint !== fingerprint) return null;
  try {
    db.prepare('UPDATE record_telemetry_cache SET used_at = ? WHERE session_key = ?').run(now, rec.key);
  } catch {
    // A read-only or failing journal: the result is still good.
  }
  return JSON.parse(row.data) as TelemetryPassResult;
}

/** Keeps the result of an ended session; never fails the caller (nothing is kept when the journal cannot be written). */
export function keep(db: Db, rec: SessionRecord, fingerprint: string, result: TelemetryPassResult, now: number): boolean {
  if (rec.endedAt === null) return false;
  try {
    db.exec(TELEMETRY_CACHE_SCHEMA);
    db.transaction(() => {
      db.prepare(`INSERT INTO record_telemetry_cache (session_key, fingerprint, used_at, data) VALUES (?, ?, ?, ?)
        ON CONFLICT (session_key) DO UPDATE SET fingerprint = excluded.fingerprint, used_at = excluded.used_at, data = excluded.data`)
        .run(rec.key, fingerprint, now, JSON.stringify(result));
      db.prepare(`DELETE FROM record_telemetry_cache WHERE session_key NOT IN
        (SELECT session_key FROM record_telemetry_cache ORDER BY used_at DESC, session_key DESC LIMIT ${CACHE_MAX})`).run();
    })();
    return true;
  } catch {
    return false;
  }
}
