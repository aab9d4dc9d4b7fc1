/**
 * The journal database: file layout, pragmas and tables (docs/storage.md, "Journal").
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createPrivateFile, makePrivateDir } from '../util/privateFiles.js';

export type Db = Database.Database;

export const JOURNAL_FILE = 'journal.sqlite';
const SCHEMA_VERSION = 1;

/*
 * Other modules keep their own tables in this database (src/audit: `audit`, `audit_head`; src/control:
 * `annotations`), so the journal's generic audit table is `journal_audit`.
 * Ids are AUTOINCREMENT: the forwarder's cursor is "last id sent", and a plain rowid may be reused
 * once retention has deleted the newest rows, which would make the cursor skip new data.
 * One UNIQUE index per device table on (device, t, seq) both stores a redelivered frame once
 * (same device, seq and device time) and serves time-range reads for one device.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL, session TEXT, seq INTEGER NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL,
  v TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS telemetry_device_t ON telemetry (device, t, seq);
CREATE TABLE IF NOT EXISTS state (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL, session TEXT, seq INTEGER NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL,
  state TEXT NOT NULL, previous TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS state_device_t ON state (device, t, seq);
CREATE TABLE IF NOT EXISTS event (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL, session TEXT, seq INTEGER NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL,
  code TEXT NOT NULL, prio TEXT NOT NULL, active INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS event_device_t ON event (device, t, seq);
CREATE TABLE IF NOT EXISTS alarm (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL, at INTEGER NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL,
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_device_at ON alarm (device, at);
CREATE TABLE IF NOT EXISTS channel_key (
  device TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (device, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursor (
  name TEXT NOT NULL, stream TEXT NOT NULL, last_id INTEGER NOT NULL, PRIMARY KEY (name, stream)
) WITHOUT ROWID;
`;

export interface OpenOptions {
  /** Hard ceiling on the database file; beyond it SQLite reports SQLITE_FULL (a full disk, on purpose). */
  hardLimitBytes?: number;
  now: () => number;
}

/**
 * Opens (creating when missing) `<dataDir>/journal.sqlite` and proves it writable. Throws the
 * filesystem or SQLite error as is: the journal classifies it and keeps the gateway alive.
 */
export function openJournalDb(dataDir: string, opts: OpenOptions): Db {
  makePrivateDir(dataDir);
  // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm the database file's mode.
  createPrivateFile(join(dataDir, JOURNAL_FILE));
  const db = new Database(join(dataDir, JOURNAL_FILE));
  try {
    db.pragma('journal_mode = WAL');
    /*
     * NORMAL in WAL mode: a commit is written to the WAL (page cache) without an fsync, so it survives a
     * process crash, and nothing waits for the disk on the event loop. The journal makes it durable against
     * a power cut from libuv's thread pool (walSync.ts: every `syncIntervalMs`, or before each MQTT ack in
     * strict mode), and checkpoints run in a worker (checkpointer.ts), never here: docs/storage.md.
     */
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('busy_timeout = 50');
    db.pragma('journal_size_limit = 67108864');
    db.pragma('cache_size = -16000');
    if (opts.hardLimitBytes !== undefined) {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(opts.hardLimitBytes / pageSize))}`);
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`journal schema version ${version} is newer than this gateway (${SCHEMA_VERSION})`);
    }
    db.exec(DDL);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    // A real write, so a read-only file or directory fails here and not at the first sample.
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)").run(String(opts.now()));
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Errors that mean "the journal cannot be written now" rather than a bug: they raise STORAGE_FAILURE. */
export function describeStorageError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Bytes of the journal file and its WAL on disk (0 for a missing file). */
export function journalFileBytes(dataDir: string): number {
  let total = 0;
  for (const suffix of ['', '-wal']) {
    try {
      total += statSync(join(dataDir, JOURNAL_FILE + suffix)).size;
    } catch {
      // Missing file: nothing to count.
    }
  }
  return total;
}

/**
 * Runs a transaction that is on disk when it returns: the journal commits with synchronous = NORMAL
 * (fsynced off the event loop, docs/storage.md), but an audit record must survive a power cut before the
 * action it records is reported done (21 CFR 11.10(e)), so this commit alone runs with FULL, which also
 * makes every commit before it durable. Inside an open transaction it is a savepoint of that one, whose
 * own commit must come through here too. IMMEDIATE takes the write lock before anything is read.
 */
export function durableTransaction<T>(db: Db, fn: () => T): T {
  const tx = db.transaction(fn);
  if (db.inTransaction) return tx();
  const previous = db.pragma('synchronous', { simple: true }) as number;
  if (previous >= 2) return tx.immediate();
  db.pragma('synchronous = FULL');
  try {
    return tx.immediate();
  } finally {
    db.pragma(`synchronous = ${previous}`);
  }
}
