/**
 * The audit trail (21 CFR Part 11 §11.10(e), ALCOA+): append-only, hash-chained records of every
 * command, alarm action, limit or rule change, token change and annotation, stored in the journal's SQLite
 * database. Each record holds the previous record's hash, so an edited, deleted or reordered record breaks
 * the chain at a point `verify()` names. Writes are synchronous single-row transactions: low rate, and
 * committed before the action they record is reported done.
 */
import type { Database, Statement } from 'better-sqlite3';
import { durableTransaction } from '../storage/schema.js';
import { journalUnavailable } from '../storage/types.js';
import { canonicalJson, GENESIS_HASH, recordHash } from './canonical.js';

/** What a caller records. `at` defaults to the injected clock. */
export interface AuditEntry {
  user: string;
  role: string;
  device?: string | null;
  session?: string | null;
  /** Dotted verb, e.g. `command.requested`, `alarm.ack`, `token.add`, `annotation.add`. */
  action: string;
  detail?: Record<string, unknown>;
  /** Short result word: `accepted`, `refused`, `OK`, `REJ`, `TIMEOUT`, `conflict`, `done`, … */
  outcome: string;
  at?: number;
}

export interface AuditRecord {
  id: number;
  /** UTC epoch milliseconds. */
  at: number;
  user: string;
  role: string;
  device: string | null;
  session: string | null;
  action: string;
  detail: Record<string, unknown>;
  outcome: string;
  prevHash: string;
  hash: string;
}

/** The one method other parts need: they depend on this, not on the SQLite class. */
export interface AuditSink {
  append(entry: AuditEntry): AuditRecord;
}

export interface AuditQuery {
  from?: number;
  to?: number;
  device?: string;
  /** Records with a larger id only (paging). */
  afterId?: number;
  limit?: number;
}

export type AuditVerdict =
  | { ok: true; count: number; headId: number; headHash: string }
  | { ok: false; firstBrokenId: number; reason: string; count: number };

export interface AuditLogOptions {
  /**
   * The journal's handle (or the test's / the CLI's own). Null in the gateway until the journal first opens:
   * appends and reads then throw StorageUnavailableError (503). See useDatabase() for a journal that reopens.
   */
  db: Database | null;
  now?: () => number;
  /** Opened read-only (the `audit verify` CLI): no schema is created. */
  readonly?: boolean;
}

interface Row {
  id: number;
  at: number;
  user: string;
  role: string;
  device: string | null;
  session: string | null;
  action: string;
  detail: string;
  outcome: string;
  prev_hash: string;
  hash: string;
}

export const AUDIT_QUERY_MAX = 10_000;
const DETAIL_MAX_CHARS = 64 * 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  user TEXT NOT NULL,
  role TEXT NOT NULL,
  device TEXT,
  session TEXT,
  action TEXT NOT NULL,
  detail TEXT NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_device_at ON audit(device, at);
-- The chain alone cannot show that its last records were cut off; the head row can (unless it is forged too).
CREATE TABLE IF NOT EXISTS audit_head (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  last_id INTEGER NOT NULL,
  last_hash TEXT NOT NULL
);
-- Append-only inside the database too: retention jobs and slips of the hand cannot rewrite the trail.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
`;

export class AuditLog implements AuditSink {
  private readonly now: () => number;
  private stmts: {
    last: Statement<[], { id: number; hash: string }>;
    insert: Statement<unknown[]>;
    head: Statement<[number, string]>;
  } | null = null;
  private appendTx: ((e: AuditEntry) => AuditRecord) | null = null;
  private db: Database | null;
  private started = false;

  constructor(private readonly opts: AuditLogOptions) {
    this.now = opts.now ?? Date.now;
    this.db = opts.db;
  }

  /** Creates the tables (unless read-only; without a handle, when it comes). Safe to call twice. */
  start(): void {
    this.started = true;
    const db = this.db;
    if (this.opts.readonly || this.stmts || !db) return;
    db.exec(SCHEMA);
    this.stmts = {
      last: db.prepare('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1'),
      insert: db.prepare(`INSERT INTO audit (id, at, user, role, device, session, action, detail, outcome, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      head: db.prepare(`INSERT INTO audit_head (one, last_id, last_hash) VALUES (1, ?, ?)
        ON CONFLICT(one) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash`),
    };
    // IMMEDIATE takes the write lock before the last hash is read, so two processes (the daemon and the
    // `tokens` CLI) appending at once still build one chain; the record is on disk when append returns.
    this.appendTx = (e) => durableTransaction(db, () => this.insert(e));
  }

  /** Nothing to release: the database handle belongs to the journal. */
  stop(): void {}

  /**
   * Switches to a new handle: the journal replaces its handle when it reopens after a storage failure
   * (`journal.onOpen((db) => audit.useDatabase(db))`). The chain continues from the last stored record.
   */
  useDatabase(db: Database): void {
    if (db === this.db) return;
    this.db = db;
    this.stmts = null;
    this.appendTx = null;
    if (this.started) this.start();
  }

  /** Whether append() can write now: started, with a handle whose tables are ready. */
  get canAppend(): boolean {
    return this.appendTx !== null;
  }

  append(entry: AuditEntry): AuditRecord {
    if (!this.appendTx) {
      // Started but without a usable handle: the journal has not opened (yet). Anything else is a bug.
      if (this.started && !this.opts.readonly) throw journalUnavailable('audit trail');
      throw new Error('AuditLog.append before start() (or on a read-only log)');
    }
    return this.appendTx(entry);
  }

  private insert(e: AuditEntry): AuditRecord {
    const s = this.stmts!;
    const detail = canonicalJson(e.detail ?? {});
    if (detail.length > DETAIL_MAX_CHARS) throw new RangeError(`audit detail of ${detail.length} chars is too large`);
    const last = s.last.get();
    const fields = {
      id: last ? last.id + 1 : 1,
      at: Math.trunc(e.at ?? this.now()),
      user: e.user,
      role: e.role,
      device: e.device ?? null,
      session: e.session ?? null,
      action: e.action,
      detail,
      outcome: e.outcome,
      prevHash: last ? last.hash : GENESIS_HASH,
    };
    const hash = recordHash(fields);
    s.insert.run(fields.id, fields.at, fields.user, fields.role, fields.device, fields.session, fields.action,
      fields.detail, fields.outcome, fields.prevHash, hash);
    s.head.run(fields.id, hash);
    return { ...fields, detail: JSON.parse(detail) as Record<string, unknown>, hash };
  }

  query(q: AuditQuery = {}): AuditRecord[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.from !== undefined) { where.push('at >= ?'); params.push(q.from); }
    if (q.to !== undefined) { where.push('at <= ?'); params.push(q.to); }
    if (q.device !== undefined) { where.push('device = ?'); params.push(q.device); }
    if (q.afterId !== undefined) { where.push('id > ?'); params.push(q.afterId); }
    const limit = Math.max(1, Math.min(q.limit ?? 1000, AUDIT_QUERY_MAX));
    const sql = `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT ${limit}`;
    return (this.database().prepare(sql).all(...params) as Row[]).map(toRecord);
  }

  private database(): Database {
    if (!this.db) throw journalUnavailable('audit trail');
    return this.db;
  }

  /**
   * Walks the whole chain: ids must run 1, 2, 3… without a gap, each prev_hash must be the previous record's
   * hash, each hash must match the record's content, and the last record must be the recorded head.
   */
  verify(): AuditVerdict {
    const db = this.database();
    if (!tableExists(db, 'audit')) return { ok: true, count: 0, headId: 0, headHash: GENESIS_HASH };
    let expectedId = 1;
    let prevHash = GENESIS_HASH;
    let count = 0;
    const rows = db.prepare('SELECT * FROM audit ORDER BY id').iterate() as IterableIterator<Row>;
    for (const r of rows) {
      const broken = (reason: string, id = r.id): AuditVerdict => ({ ok: false, firstBrokenId: id, reason, count });
      if (r.id !== expectedId) {
        return broken(r.id > expectedId
          ? `record ${expectedId}${r.id - expectedId > 1 ? `-${r.id - 1}` : ''} missing (record ${r.id} follows record ${expectedId - 1})`
          : `record id ${r.id} out of sequence (expected ${expectedId})`, expectedId);
      }
      if (r.prev_hash !== prevHash) return broken(`record ${r.id} does not link to record ${r.id - 1} (prev_hash mismatch)`);
      const hash = recordHash({
        id: r.id, at: r.at, user: r.user, role: r.role, device: r.device, session: r.session,
        action: r.action, detail: r.detail, outcome: r.outcome, prevHash: r.prev_hash,
      });
      if (hash !== r.hash) return broken(`record ${r.id} was altered (its content does not match its hash)`);
      prevHash = r.hash;
      expectedId++;
      count++;
    }
    const head = tableExists(db, 'audit_head')
      ? db.prepare('SELECT last_id, last_hash FROM audit_head WHERE one = 1').get() as { last_id: number; last_hash: string } | undefined
      : undefined;
    const lastId = expectedId - 1;
    if (head && (head.last_id !== lastId || head.last_hash !== prevHash)) {
      const firstBrokenId = head.last_id > lastId ? lastId + 1 : head.last_id;
      return { ok: false, firstBrokenId, count, reason: head.last_id > lastId
        ? `records ${lastId + 1}-${head.last_id} missing at the end of the trail (head says ${head.last_id})`
        : `head record ${head.last_id} does not match the chain's last record ${lastId}` };
    }
    if (!head && count > 0) return { ok: false, firstBrokenId: lastId, count, reason: 'the head record is missing' };
    return { ok: true, count, headId: lastId, headHash: prevHash };
  }
}

function tableExists(db: Database, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function toRecord(r: Row): AuditRecord {
  return {
    id: r.id, at: r.at, user: r.user, role: r.role, device: r.device, session: r.session, action: r.action,
    detail: JSON.parse(r.detail) as Record<string, unknown>, outcome: r.outcome, prevHash: r.prev_hash, hash: r.hash,
  };
}
