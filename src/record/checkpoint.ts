/**
 * Telemetry checkpoints: for every running session, the state of its record's telemetry pass (telemetryPass.ts,
 * TelemetryPassState) after the rows up to a key (t, seq), kept in the journal's database and moved on in the
 * background while the session runs (RecordCheckpointer). When the session ends, its record restores the state and
 * reads only the rows after it: seconds of reading become a short tail.
 *
 * A checkpoint is used only while the rows it passed are provably the rows there are now: it holds the number and
 * the largest id of the telemetry rows it passed (every row of the session with key <= its key) and of the state and
 * event rows it merged into the completeness count (every one received up to its last telemetry row's (rx, seq)).
 * Journal rows are never updated and their ids are never reused, so a row added inside that prefix afterwards (a
 * serial console's backlog, delivered late) raises the count, a row removed lowers it: either way the checkpoint is
 * dropped and the pass starts again from the first row. A checkpoint that reached past the session's end (device
 * times after ENDED) is not used either.
 *
 * The running pass stops before rows received in the last `lagMs` of gateway time (rows may still be arriving out of
 * order there), so what it passed does not change under it in the normal case.
 */
import { deviceRange, type SessionReader } from '../sessions/reader.js';
import { readRecords, rowToRecord, tableExists, type RecordRow } from '../sessions/records.js';
import type { SessionRecord } from '../sessions/types.js';
import type { Db } from '../storage/schema.js';
import { counter, type Registry } from '../metrics.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import {
  foldLevel, TelemetryPassState, trendBucketMs, type RowMark, type SavedPass, type TelemetryPassResult,
} from './telemetryPass.js';

export const CHECKPOINT_SCHEMA = `
CREATE TABLE IF NOT EXISTS record_checkpoint (
  session_key INTEGER PRIMARY KEY,
  saved_at INTEGER NOT NULL,
  data TEXT NOT NULL
);
`;

/** Checkpoints kept (running sessions first in practice; the least recently saved go). A 24 h one is about 1 MB. */
export const CHECKPOINT_MAX = 64;

/** How the telemetry of records was read (tests, logs): from a checkpoint, or from the first row. */
export const passStats = { restored: 0, invalidated: 0, fromStart: 0, tailRows: 0 };

function sameMark(db: Db, sql: string, params: unknown[], m: RowMark): boolean {
  const row = db.prepare(sql).get(...params) as { n: number; last: number | null };
  return row.n === m.n && row.last === m.maxId;
}

/** Whether the rows the saved pass went through are exactly the journal's rows there now. */
export function prefixUnchanged(db: Db, saved: SavedPass): boolean {
  if (saved.key === null) {
    if (saved.telemetry.n !== 0) return false;
  } else if (!sameMark(db, `SELECT count(*) AS n, max(id) AS last FROM telemetry WHERE device = ? AND t >= ? AND t <= ?
      AND (t, seq) <= (?, ?)`, [saved.device, saved.from, saved.key.t, saved.key.t, saved.key.seq], saved.telemetry)) {
    return false;
  }
  const rx = typeof saved.last.rx === 'number' ? saved.last.rx : null;
  const seq = typeof saved.last.seq === 'number' ? saved.last.seq : null;
  for (const [table, m] of [['state', saved.state], ['event', saved.event]] as const) {
    if (rx === null || seq === null) {
      if (m.n !== 0) return false;
      continue;
    }
    if (!sameMark(db, `SELECT count(*) AS n, max(id) AS last FROM ${table} WHERE device = ? AND t >= ? AND rx <= ? AND (rx, seq) <= (?, ?)`,
      [saved.device, saved.from, rx, rx, seq], m)) return false;
  }
  return true;
}

function readSaved(db: Db, rec: SessionRecord): SavedPass | null {
  if (!tableExists(db, 'record_checkpoint')) return null;
  const row = db.prepare('SELECT data FROM record_checkpoint WHERE session_key = ?').get(rec.key) as { data: string } | undefined;
  if (!row) return null;
  try {
    return JSON.parse(row.data) as SavedPass;
  } catch {
    return null;
  }
}

/**
 * The session's checkpoint as a pass state to go on from, or null (none, another format, or its rows changed:
 * `invalid` is then true).
 */
export function loadCheckpoint(db: Db, rec: SessionRecord): { state: TelemetryPassState | null; invalid: boolean } {
  const saved = readSaved(db, rec);
  if (!saved) return { state: null, invalid: false };
  const state = saved.device === rec.device && saved.from === rec.startedAt ? TelemetryPassState.restore(saved) : null;
  if (!state || !prefixUnchanged(db, saved)) return { state: null, invalid: true };
  return { state, invalid: false };
}

/** Keeps the state; never fails the caller (a journal that cannot be written keeps nothing). */
export function saveCheckpoint(db: Db, rec: SessionRecord, state: TelemetryPassState, now: number): boolean {
  try {
    const data = JSON.stringify(state.save());
    db.exec(CHECKPOINT_SCHEMA);
    db.transaction(() => {
      db.prepare(`INSERT INTO record_checkpoint (session_key, saved_at, data) VALUES (?, ?, ?)
        ON CONFLICT (session_key) DO UPDATE SET saved_at = excluded.saved_at, data = excluded.data`).run(rec.key, now, data);
      db.prepare(`DELETE FROM record_checkpoint WHERE session_key NOT IN
        (SELECT session_key FROM record_checkpoint ORDER BY saved_at DESC, session_key DESC LIMIT ${CHECKPOINT_MAX})`).run();
    })();
    return true;
  } catch {
    return false;
  }
}

export function dropCheckpoint(db: Db, rec: SessionRecord): void {
  if (tableExists(db, 'record_checkpoint')) db.prepare('DELETE FROM record_checkpoint WHERE session_key = ?').run(rec.key);
}

/**
 * The record's telemetry pass: from the session's checkpoint when it still holds (its rows unchanged, within the
 * session's range, buckets not wider than the chart's), else from the first row. The same rows give the same result
 * either way (telemetryPass.ts).
 */
export async function telemetryPassFromCheckpoint(
  db: () => Db, reader: SessionReader, rec: SessionRecord, now: number, bucketMs: number,
): Promise<TelemetryPassResult> {
  const range = deviceRange(rec, now);
  const level = foldLevel(bucketMs);
  let { state, invalid } = loadCheckpoint(db(), rec);
  if (state && ((state.key !== null && state.key.t >= range.to) || (state.otherMaxT !== null && state.otherMaxT >= range.to)
    || state.trends.level > level)) {
    state = null;
    invalid = true;
  }
  if (invalid) passStats.invalidated += 1;
  if (state) passStats.restored += 1;
  else passStats.fromStart += 1;
  const pass = state ?? TelemetryPassState.fresh(rec.device, range.from);
  pass.trends.coarsen(level);
  const { rows } = await pass.advance(db, { to: range.to });
  if (state) passStats.tailRows += rows;
  return pass.finish(db, reader, rec, now, bucketMs);
}

/** How often running sessions' checkpoints are moved on. */
export const CHECKPOINT_INTERVAL_MS = 45_000;
/** Rows received in the last LAG_MS are left for the next turn (they may still be arriving out of order). */
export const CHECKPOINT_LAG_MS = 10_000;
/** Rows read between two saves (a first checkpoint of a long session is saved as it goes). */
export const CHECKPOINT_CHUNK_ROWS = 250_000;

export interface RecordCheckpointerOptions {
  /** The journal's current handle, or null while it cannot be opened. */
  database: () => Db | null;
  /** Gateway time. */
  now: () => number;
  intervalMs?: number;
  /** The first turn, after start (default: 1 s). */
  firstDelayMs?: number;
  lagMs?: number;
  chunkRows?: number;
  /** Rows per page (tests). */
  pageRows?: number;
  /** Housekeeping timers (systemClock, unref'd, by default). */
  clock?: Clock;
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

/**
 * Moves on the checkpoint of every running session (the session_record table's open records, so a gateway started
 * on an existing journal picks them up) every `intervalMs`, one session at a time; the pass yields between pages.
 */
export class RecordCheckpointer {
  private timer: TimerHandle | null = null;
  private started = false;
  /** Set by stop(): a turn in progress ends at its next page. */
  private stopped = false;
  private running: Promise<void> | null = null;
  private readonly clock: Clock;
  /** Turns done, rows read, checkpoints saved, passes started again (rows changed), failures. */
  readonly stats = { turns: 0, rows: 0, saved: 0, restarts: 0, failed: 0 };

  constructor(private readonly opts: RecordCheckpointerOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    this.schedule(this.opts.firstDelayMs ?? 1_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
    this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  registerMetrics(registry: Registry): void {
    const c = (name: string, help: string, read: () => number) => counter(registry, { name, help, read });
    c('msc_record_checkpoint_rows_total', 'Telemetry rows read into running sessions\' record checkpoints.', () => this.stats.rows);
    c('msc_record_checkpoint_saves_total', 'Record telemetry checkpoints saved in the journal.', () => this.stats.saved);
    c('msc_record_checkpoint_restarts_total', 'Record checkpoints dropped because rows changed inside them (late rows); the pass starts again.', () => this.stats.restarts);
    c('msc_record_checkpoint_failures_total', 'Record checkpoint turns that failed (logged); the record then reads more rows at the end.', () => this.stats.failed);
    counter(registry, {
      name: 'msc_record_telemetry_passes_total', help: 'Record telemetry passes, by where they started: a checkpoint (the tail read) or the first row.',
      labelNames: ['from'], read: () => [[{ from: 'checkpoint' }, passStats.restored], [{ from: 'start' }, passStats.fromStart]] as const,
    });
  }

  private schedule(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.running = this.turn().finally(() => {
        this.running = null;
        this.schedule(this.opts.intervalMs ?? CHECKPOINT_INTERVAL_MS);
      });
    }, ms);
  }

  /** One turn: every running session's checkpoint moved on to the rows received LAG_MS ago. */
  async turn(): Promise<void> {
    const db = this.opts.database();
    if (!db) return;
    let open: SessionRecord[];
    try {
      open = readRecords(db, { openOnly: true, limit: 100 });
    } catch (err) {
      this.stats.failed += 1;
      this.opts.logger.warn({ err: String(err) }, 'record checkpoints: cannot list running sessions');
      return;
    }
    for (const rec of open) {
      if (this.stopped) return;
      try {
        await this.advance(rec);
      } catch (err) {
        if (this.stopped) return;
        this.stats.failed += 1;
        this.opts.logger.warn({ err: String(err), device: rec.device, session: rec.sessionId }, 'record checkpoint not moved on: the record reads more rows when the session ends');
      }
    }
    this.stats.turns += 1;
  }

  private async advance(rec: SessionRecord): Promise<void> {
    const handle = (): Db => {
      const db = this.opts.database();
      if (!db) throw new Error('journal unavailable');
      return db;
    };
    // The record as it is now: a session that ended since the list was read is passed only up to its end.
    const row = handle().prepare('SELECT * FROM session_record WHERE key = ?').get(rec.key) as RecordRow | undefined;
    if (!row) return;
    rec = rowToRecord(row);
    const to = rec.endedAt === null ? Infinity : rec.endedAt + 1;
    const loaded = loadCheckpoint(handle(), rec);
    if (loaded.invalid) {
      this.stats.restarts += 1;
      this.opts.logger.info({ device: rec.device, session: rec.sessionId }, 'record checkpoint dropped: rows changed inside it (late rows); reading the session again');
    }
    const state = loaded.state ?? TelemetryPassState.fresh(rec.device, rec.startedAt);
    const rxBefore = this.opts.now() - (this.opts.lagMs ?? CHECKPOINT_LAG_MS);
    for (;;) {
      const r = await state.advance(handle, { to, rxBefore, maxRows: this.opts.chunkRows ?? CHECKPOINT_CHUNK_ROWS, pageRows: this.opts.pageRows, shouldStop: () => this.stopped,
        // The chart's width can only grow with the session: the buckets are kept at the widest base it can still use.
        runningSince: rec.startedAt,
      });
      if (this.stopped) return;
      this.stats.rows += r.rows;
      if (r.rows > 0 || loaded.invalid || !loaded.state) {
        if (saveCheckpoint(handle(), rec, state, this.opts.now())) {
          this.stats.saved += 1;
          this.opts.logger.info({ device: rec.device, session: rec.sessionId, rows: state.telemetry.n, t: state.key?.t ?? null }, 'record checkpoint saved');
        }
      }
      if (r.done) return;
    }
  }
}
