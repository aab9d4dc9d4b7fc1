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
 *
 * That check must not stall the event loop, which carries the live data (sample to WebSocket client, p99 20 ms):
 * counting a 24 h session's prefix at 25 Hz (2.16 million index entries) in one statement takes ~275 ms.
 *
 * - The full check (`prefixUnchanged`) counts the telemetry prefix in windows of device time (CHECK_WINDOW_MS,
 *   ~22,000 index entries at 25 Hz, a few ms each), yielding to the event loop between windows, and adds up the
 *   counts and takes the largest max(id). A row inserted while the check runs into a window already counted is the
 *   same as a row inserted just after a check, which the design accepts anyway: the next check finds it. (The state
 *   and event tables are small: one statement each.) The record itself always does the full check when its session
 *   has ended (telemetryPassFromCheckpoint), and that is what decides what a signed record contains.
 *
 * - Between its turns the checkpointer checks only the rows added since its previous turn. It keeps in memory, per
 *   session, the marks of the checkpoint it saved itself (row marks, key, last arrival) and watermarks W: the
 *   largest id of each of the telemetry, state and event tables (a rowid lookup), read at the start of that turn,
 *   before its check and before its advance. When the journal's checkpoint is still the one it saved, the next turn
 *   counts only the rows with id > W inside the checkpoint's prefix (a rowid range scan over the new rows, NOT
 *   INDEXED); any is a late row: the checkpoint is dropped and the pass starts again from the first row. Why that is
 *   enough: ids are AUTOINCREMENT and SQLite serialises writers, so once max(id) = M is read every row with id <= M
 *   is committed and visible, and every row committed later has an id > M. The check that turn saw every row with id
 *   <= M inside the old prefix (the full check counted it, or the incremental check found none in (W_old, M] and the
 *   turn before had vouched for the rest); the advance reads rows in (t, seq) order, each page a new query, and stops
 *   before the first row received in the last `lagMs` (rxBefore, taken with M), so it read every row with id <= M
 *   and (t, seq) up to its new key. A row landing in the prefix afterwards has an id > M and is found next turn. A row
 *   inserted after M was read and yet read by the same advance (only possible when a row reaches the journal more
 *   than `lagMs` after it was received, e.g. a stalled disk) is then reported as late: a needless restart, never a
 *   wrong record. Rows removed inside the prefix are not seen by the incremental check; the full check the record
 *   does when the session ends sees them. After a gateway restart, when the journal's checkpoint is not the one in
 *   memory, or after any failure, the checkpointer does the full check. Memory holds marks and watermarks only (a
 *   few numbers a session), never the pass state, which is restored from the journal every turn.
 */
import { deviceRange, type SessionReader } from '../sessions/reader.js';
import { readRecords, rowToRecord, tableExists, type RecordRow } from '../sessions/records.js';
import type { SessionRecord } from '../sessions/types.js';
import type { Db } from '../storage/schema.js';
import { counter, type Registry } from '../metrics.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { enc } from '../util/exactJson.js';
import {
  foldLevel, TelemetryPassState, type PassKey, type RowMark, type SavedPass, type TelemetryPassResult,
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

/** Device time the full check counts per statement: 15 min, ~22,000 index entries at 25 Hz (a few ms). */
export const CHECK_WINDOW_MS = 15 * 60_000;

export interface CheckOptions {
  /** Device time counted per statement (CHECK_WINDOW_MS). */
  windowMs?: number;
  /** Asked between windows: true abandons the check (it throws). */
  shouldStop?: () => boolean;
}

/** The journal's handle, or a function giving its current handle (the check yields: the handle is asked again). */
export type DbHandle = Db | (() => Db);
const handleOf = (db: DbHandle): (() => Db) => (typeof db === 'function' ? db : () => db);
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

type CountRow = { n: number; last: number | null };

/** The telemetry rows of `device` from device time `from` up to `key` (t, seq): counted window by window. */
async function telemetryMark(db: () => Db, device: string, from: number, key: PassKey, opts: CheckOptions): Promise<RowMark> {
  const windowMs = opts.windowMs ?? CHECK_WINDOW_MS;
  if (!(windowMs > 0)) throw new RangeError(`check window must be positive: ${windowMs}`);
  const m: RowMark = { n: 0, maxId: null };
  const add = (r: CountRow) => {
    m.n += r.n;
    if (r.last !== null && (m.maxId === null || r.last > m.maxId)) m.maxId = r.last;
  };
  let a = from;
  while (a + windowMs <= key.t) {
    const r = db().prepare('SELECT count(*) AS n, max(id) AS last FROM telemetry WHERE device = ? AND t >= ? AND t < ?')
      .get(device, a, a + windowMs) as CountRow;
    add(r);
    a += windowMs;
    if (r.n === 0) {
      // A stretch without rows (a long pause, a console clock set forward) is skipped in one step, not window by window.
      const next = db().prepare('SELECT t FROM telemetry WHERE device = ? AND t >= ? AND t <= ? ORDER BY t LIMIT 1')
        .get(device, a, key.t) as { t: number } | undefined;
      if (next === undefined) break;
      a = next.t;
    }
    await nextTurn();
    if (opts.shouldStop?.()) throw new Error('check abandoned: stopping');
  }
  // The last window ends at the key itself. Rows inserted meanwhile into a window already counted are as rows
  // inserted just after the check (module comment): the next check finds them.
  add(db().prepare('SELECT count(*) AS n, max(id) AS last FROM telemetry WHERE device = ? AND t >= ? AND t <= ? AND (t, seq) <= (?, ?)')
    .get(device, a, key.t, key.t, key.seq) as CountRow);
  return m;
}

const sameMark = (a: RowMark, b: RowMark): boolean => a.n === b.n && a.maxId === b.maxId;

/** (rx, seq) up to which states and events were merged in, or null (none yet). */
function lastArrival(saved: SavedPass): { rx: number; seq: number } | null {
  const rx = typeof saved.last.rx === 'number' ? saved.last.rx : null;
  const seq = typeof saved.last.seq === 'number' ? saved.last.seq : null;
  return rx === null || seq === null ? null : { rx, seq };
}

/**
 * Whether the rows the saved pass went through are exactly the journal's rows there now: the telemetry prefix
 * counted in windows of device time, yielding to the event loop between them (module comment).
 */
export async function prefixUnchanged(db: DbHandle, saved: SavedPass, opts: CheckOptions = {}): Promise<boolean> {
  const h = handleOf(db);
  if (saved.key === null) {
    if (saved.telemetry.n !== 0) return false;
  } else if (!sameMark(await telemetryMark(h, saved.device, saved.from, saved.key, opts), saved.telemetry)) {
    return false;
  }
  const last = lastArrival(saved);
  for (const [table, m] of [['state', saved.state], ['event', saved.event]] as const) {
    if (last === null) {
      if (m.n !== 0) return false;
      continue;
    }
    const r = h().prepare(`SELECT count(*) AS n, max(id) AS last FROM ${table} WHERE device = ? AND t >= ? AND rx <= ? AND (rx, seq) <= (?, ?)`)
      .get(saved.device, saved.from, last.rx, last.rx, last.seq) as CountRow;
    if (!sameMark({ n: r.n, maxId: r.last }, m)) return false;
  }
  return true;
}

/** The largest id of each table the checkpoint's prefix spans (0 for none): rowid lookups. */
export interface Watermarks {
  telemetry: number;
  state: number;
  event: number;
}

export function watermarks(db: Db): Watermarks {
  const max = (table: string) => (db.prepare(`SELECT max(id) AS m FROM ${table}`).get() as { m: number | null }).m ?? 0;
  return { telemetry: max('telemetry'), state: max('state'), event: max('event') };
}

/**
 * The incremental check's statements: rows with an id above the watermark inside the prefix. NOT INDEXED makes
 * SQLite read the new rows by rowid range (`SEARCH ... USING INTEGER PRIMARY KEY (rowid>?)`) rather than the
 * session's whole prefix through the (device, t, seq) index.
 */
export const LATE_ROWS_SQL = {
  telemetry: 'SELECT count(*) AS n FROM telemetry NOT INDEXED WHERE id > @w AND device = @device AND t >= @from AND (t, seq) <= (@keyT, @keySeq)',
  state: 'SELECT count(*) AS n FROM state NOT INDEXED WHERE id > @w AND device = @device AND t >= @from AND (rx, seq) <= (@lastRx, @lastSeq)',
  event: 'SELECT count(*) AS n FROM event NOT INDEXED WHERE id > @w AND device = @device AND t >= @from AND (rx, seq) <= (@lastRx, @lastSeq)',
} as const;

/** Rows inside the saved pass's prefix with an id above `w` (added since `w` was read): late rows. */
export function lateRows(db: Db, saved: SavedPass, w: Watermarks): number {
  const count = (sql: string, params: Record<string, number | string>) => (db.prepare(sql).get(params) as { n: number }).n;
  let n = 0;
  if (saved.key !== null) {
    n += count(LATE_ROWS_SQL.telemetry, { w: w.telemetry, device: saved.device, from: saved.from, keyT: saved.key.t, keySeq: saved.key.seq });
  }
  const last = lastArrival(saved);
  if (last !== null) {
    for (const table of ['state', 'event'] as const) {
      n += count(LATE_ROWS_SQL[table], { w: w[table], device: saved.device, from: saved.from, lastRx: last.rx, lastSeq: last.seq });
    }
  }
  return n;
}

/** What tells a checkpoint's prefix: its key, last arrival and row marks, as a short string. */
type PrefixMarks = Pick<SavedPass, 'device' | 'from' | 'key' | 'last' | 'telemetry' | 'state' | 'event'>;
const marksOf = (p: PrefixMarks): string => JSON.stringify([
  p.device, p.from, p.key && [p.key.t, p.key.seq], [p.last.rx, p.last.seq],
  [p.telemetry.n, p.telemetry.maxId], [p.state.n, p.state.maxId], [p.event.n, p.event.maxId],
]);
/** marksOf the state as `save()` would write it. */
const passMarks = (s: TelemetryPassState): string => {
  const a = s.lastArrival;
  return marksOf({
    device: s.device, from: s.from, key: s.key, last: { rx: enc(a.rx), seq: enc(a.seq) },
    telemetry: s.telemetry, state: s.state, event: s.event,
  });
};

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

type Loaded = { state: TelemetryPassState | null; invalid: boolean };

/** The saved state, when it is this session's, in this code's format, and `check` holds. */
async function restoreChecked(rec: SessionRecord, saved: SavedPass, check: () => boolean | Promise<boolean>): Promise<Loaded> {
  const state = saved.device === rec.device && saved.from === rec.startedAt ? TelemetryPassState.restore(saved) : null;
  if (!state || !(await check())) return { state: null, invalid: true };
  return { state, invalid: false };
}

/**
 * The session's checkpoint as a pass state to go on from, or null (none, another format, or its rows changed:
 * `invalid` is then true). The full check, yielding between windows.
 */
export async function loadCheckpoint(db: DbHandle, rec: SessionRecord, opts: CheckOptions = {}): Promise<Loaded> {
  const h = handleOf(db);
  const saved = readSaved(h(), rec);
  if (!saved) return { state: null, invalid: false };
  return restoreChecked(rec, saved, () => prefixUnchanged(h, saved, opts));
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
  let { state, invalid } = await loadCheckpoint(db, rec);
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
  /** Device time per statement of the full check (CHECK_WINDOW_MS; tests). */
  checkWindowMs?: number;
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
  /**
   * Turns done, rows read, checkpoints saved, passes started again (rows changed), failures; checks of a checkpoint
   * over its whole prefix (full) and over the rows added since the previous turn (incremental).
   */
  readonly stats = { turns: 0, rows: 0, saved: 0, restarts: 0, failed: 0, fullChecks: 0, incrementalChecks: 0 };
  /**
   * Per running session (key): the marks of the checkpoint this checkpointer saved (or checked) and the watermarks
   * read at the start of that turn, which its prefix was verified up to (module comment). Nothing else.
   */
  private readonly verified = new Map<number, { marks: string; w: Watermarks }>();

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
      name: 'msc_record_checkpoint_checks_total',
      help: 'Checks that a running session\'s checkpoint still matches the journal: over its whole prefix (full), or over the rows added since the previous turn (incremental).',
      labelNames: ['kind'], read: () => [[{ kind: 'full' }, this.stats.fullChecks], [{ kind: 'incremental' }, this.stats.incrementalChecks]] as const,
    });
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
    const running = new Set(open.map((r) => r.key));
    for (const key of this.verified.keys()) if (!running.has(key)) this.verified.delete(key);
    for (const rec of open) {
      if (this.stopped) return;
      try {
        await this.advance(rec);
      } catch (err) {
        this.verified.delete(rec.key); // the next turn checks in full
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
    // Read before the check and the advance (module comment): every row with an id up to them is committed, so the
    // check or the advance below sees it; rxBefore is taken with them.
    const w = watermarks(handle());
    const rxBefore = this.opts.now() - (this.opts.lagMs ?? CHECKPOINT_LAG_MS);
    const known = this.verified.get(rec.key);
    this.verified.delete(rec.key); // set again once checked or saved: a failure on the way leaves a full check
    const loaded = await this.load(handle, rec, known);
    if (loaded.invalid) {
      this.stats.restarts += 1;
      this.opts.logger.info({ device: rec.device, session: rec.sessionId }, 'record checkpoint dropped: rows changed inside it (late rows); reading the session again');
    }
    const state = loaded.state ?? TelemetryPassState.fresh(rec.device, rec.startedAt);
    if (loaded.state) this.verified.set(rec.key, { marks: passMarks(loaded.state), w });
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
          this.verified.set(rec.key, { marks: passMarks(state), w });
          this.opts.logger.info({ device: rec.device, session: rec.sessionId, rows: state.telemetry.n, t: state.key?.t ?? null }, 'record checkpoint saved');
        } else {
          this.verified.delete(rec.key);
        }
      }
      if (r.done) return;
    }
  }

  /**
   * The journal's checkpoint of the session, checked: only the rows added since `known.w` when it is the checkpoint
   * `known` describes (saved or checked by this checkpointer's previous turn), else in full.
   */
  private async load(handle: () => Db, rec: SessionRecord, known: { marks: string; w: Watermarks } | undefined): Promise<Loaded> {
    const saved = readSaved(handle(), rec);
    if (!saved) return { state: null, invalid: false };
    if (known && marksOf(saved) === known.marks) {
      return restoreChecked(rec, saved, () => {
        this.stats.incrementalChecks += 1;
        return lateRows(handle(), saved, known.w) === 0;
      });
    }
    return restoreChecked(rec, saved, () => {
      this.stats.fullChecks += 1;
      return prefixUnchanged(handle, saved, { windowMs: this.opts.checkWindowMs, shouldStop: () => this.stopped });
    });
  }
}
