/**
 * Reads on the journal database: history, replay, restart bookkeeping. Each function is one short
 * statement (or a few), so callers can interleave them with commits without stalling ingest.
 */
import type { AlarmTransition } from '../alarms/types.js';
import type { DeviceEvent, StateChange, TelemetrySample } from '../bus.js';
import type { ChannelValues, DevicePriority, SessionState } from '../protocol/types.js';
import { decodeValues } from './journalRows.js';
import type { Db } from './schema.js';
import type { HistoryPoint, TimeRange } from './types.js';

/** A position in one device's (t, seq) order: the keyset for paging without OFFSET. */
export interface TelemetryKey {
  t: number;
  seq: number;
}

/**
 * Latest sequenced frame of a device (T, S and EV share one counter, ICD §1), by device time, with the gateway
 * time it was received (how far the count could have moved since, see SequenceTracker).
 */
export function lastSeq(db: Db, deviceId: string): { seq: number; t: number; rx: number } | null {
  let best: { seq: number; t: number; rx: number } | null = null;
  for (const table of ['telemetry', 'state', 'event']) {
    const row = db
      .prepare(`SELECT seq, t, rx FROM ${table} WHERE device = ? ORDER BY t DESC, seq DESC LIMIT 1`)
      .get(deviceId) as { seq: number; t: number; rx: number } | undefined;
    if (row && (!best || row.t > best.t || (row.t === best.t && row.seq > best.seq))) best = row;
  }
  return best;
}

interface TelemetryRow {
  session: string | null;
  seq: number;
  t: number;
  rx: number;
  v: string;
}

/**
 * Samples of one device in [from, to) strictly after `after`, in (t, seq) order. The index range starts at
 * `after.t`: with `t >= from` as its lower bound instead, SQLite walks every earlier row of the range again on
 * each page, and reading a 24-hour session page by page took minutes instead of seconds.
 */
export function telemetryPage(
  db: Db, deviceId: string, range: TimeRange, after: TelemetryKey | null, limit: number,
): TelemetrySample[] {
  const rows = (
    after
      ? db.prepare(
        `SELECT session, seq, t, rx, v FROM telemetry WHERE device = ? AND t >= ? AND t < ?
           AND (t, seq) > (?, ?) ORDER BY t, seq LIMIT ?`,
      ).all(deviceId, Math.max(range.from, after.t), range.to, after.t, after.seq, limit)
      : db.prepare(
        'SELECT session, seq, t, rx, v FROM telemetry WHERE device = ? AND t >= ? AND t < ? ORDER BY t, seq LIMIT ?',
      ).all(deviceId, range.from, range.to, limit)
  ) as TelemetryRow[];
  return rows.map((r) => ({ deviceId, sessionId: r.session, seq: r.seq, t: r.t, rx: r.rx, v: decodeValues(r.v) }));
}

/** One stored sample as read for a pass over a whole session: device time, seq, gateway time, values as stored (JSON). */
export type TelemetryTextRow = [t: number, seq: number, rx: number, v: string];

/** Like telemetryPage, without decoding: [t, seq, rx, v] rows, for callers that read the values themselves. */
export function telemetryTextPage(
  db: Db, deviceId: string, range: TimeRange, after: TelemetryKey | null, limit: number,
): TelemetryTextRow[] {
  return (after
    ? db.prepare(`SELECT t, seq, rx, v FROM telemetry WHERE device = ? AND t >= ? AND t < ? AND (t, seq) > (?, ?)
        ORDER BY t, seq LIMIT ?`).raw(true).all(deviceId, Math.max(range.from, after.t), range.to, after.t, after.seq, limit)
    : db.prepare('SELECT t, seq, rx, v FROM telemetry WHERE device = ? AND t >= ? AND t < ? ORDER BY t, seq LIMIT ?')
      .raw(true).all(deviceId, range.from, range.to, limit)) as TelemetryTextRow[];
}

/** Keeps the named channels of a raw sample: a fault stays null, an unmeasured channel stays absent. */
export function pickChannels(v: ChannelValues, channels: string[] | null): ChannelValues {
  if (!channels) return v;
  const out: ChannelValues = {};
  for (const key of channels) if (key in v) out[key] = v[key];
  return out;
}

/** JSON path of a channel key; keys that cannot be quoted safely are not queryable. */
function jsonPath(key: string): string | null {
  return /^[^"\\]+$/.test(key) ? `$."${key}"` : null;
}

/**
 * Mean per channel per bucket in SQL, buckets aligned to the epoch like InfluxQL GROUP BY time().
 * `from` should be bucket-aligned by the caller so slices do not split a bucket. Faults (JSON
 * null) and unmeasured channels are both NULL to avg(), so they are left out of the mean.
 */
export function telemetryBuckets(
  db: Db, deviceId: string, range: TimeRange, everyMs: number, channels: string[],
): HistoryPoint[] {
  const usable = channels.filter((c) => jsonPath(c) !== null);
  if (usable.length === 0) return [];
  const cols = usable.map((_, i) => `avg(json_extract(v, ?)) AS c${i}`).join(', ');
  // `%` works on integers even though better-sqlite3 binds JS numbers as REAL (where `/` would not).
  const sql = `SELECT t - (t % ?) AS b, ${cols} FROM telemetry WHERE device = ? AND t >= ? AND t < ?
    GROUP BY b ORDER BY b`;
  const rows = db.prepare(sql).raw(true)
    .all(everyMs, ...usable.map((c) => jsonPath(c)), deviceId, range.from, range.to) as Array<
    Array<number | null>
  >;
  return rows.map((row) => {
    const v: ChannelValues = {};
    usable.forEach((key, i) => {
      const mean = row[i + 1];
      if (mean !== null && mean !== undefined) v[key] = mean;
    });
    return { t: row[0] as number, v };
  });
}

/** Every channel key a device has sent, unknown ones included (ICD §1: newer firmware adds channels). */
export function channelKeys(db: Db, deviceId: string): string[] {
  return (db.prepare('SELECT key FROM channel_key WHERE device = ? ORDER BY key').all(deviceId) as Array<{
    key: string;
  }>).map((r) => r.key);
}

/**
 * Whether the journal holds anything of a device: a channel it sent (never deleted by retention), a sample, a
 * state, an event or an alarm transition. Each probe is one step down a (device, …) index.
 */
export function hasDevice(db: Db, deviceId: string): boolean {
  const row = db.prepare(
    `SELECT EXISTS (SELECT 1 FROM channel_key WHERE device = @id) OR EXISTS (SELECT 1 FROM telemetry WHERE device = @id)
       OR EXISTS (SELECT 1 FROM state WHERE device = @id) OR EXISTS (SELECT 1 FROM event WHERE device = @id)
       OR EXISTS (SELECT 1 FROM alarm WHERE device = @id) AS seen`,
  ).get({ id: deviceId }) as { seen: number };
  return row.seen === 1;
}

/** Channel keys of every device, to know which are new without a query per sample. */
export function allChannelKeys(db: Db): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of db.prepare('SELECT device, key FROM channel_key').all() as Array<{ device: string; key: string }>) {
    let set = out.get(r.device);
    if (!set) out.set(r.device, (set = new Set()));
    set.add(r.key);
  }
  return out;
}

export function states(db: Db, deviceId: string, range: TimeRange, limit: number): StateChange[] {
  const rows = db.prepare(
    `SELECT session, seq, t, rx, state, previous FROM state WHERE device = ? AND t >= ? AND t < ?
      ORDER BY t, seq LIMIT ?`,
  ).all(deviceId, range.from, range.to, limit) as Array<{
    session: string | null; seq: number; t: number; rx: number; state: string; previous: string | null;
  }>;
  return rows.map((r) => ({
    deviceId, sessionId: r.session, seq: r.seq, t: r.t, rx: r.rx,
    state: r.state as SessionState, previous: r.previous as SessionState | null,
  }));
}

export function events(db: Db, deviceId: string, range: TimeRange, limit: number): DeviceEvent[] {
  const rows = db.prepare(
    `SELECT session, seq, t, rx, code, prio, active, text FROM event WHERE device = ? AND t >= ? AND t < ?
      ORDER BY t, seq LIMIT ?`,
  ).all(deviceId, range.from, range.to, limit) as Array<{
    session: string | null; seq: number; t: number; rx: number; code: string; prio: string; active: number;
    text: string;
  }>;
  return rows.map((r) => ({
    deviceId, sessionId: r.session, seq: r.seq, t: r.t, rx: r.rx, code: r.code,
    prio: r.prio as DevicePriority, active: r.active === 1, text: r.text,
  }));
}

/** Alarm transitions in gateway time order; all devices when `deviceId` is null. */
export function alarms(db: Db, deviceId: string | null, range: TimeRange, limit: number): AlarmTransition[] {
  const rows = (
    deviceId === null
      ? db.prepare('SELECT payload FROM alarm WHERE at >= ? AND at < ? ORDER BY at, id LIMIT ?')
        .all(range.from, range.to, limit)
      : db.prepare('SELECT payload FROM alarm WHERE device = ? AND at >= ? AND at < ? ORDER BY at, id LIMIT ?')
        .all(deviceId, range.from, range.to, limit)
  ) as Array<{ payload: string }>;
  return rows.map((r) => JSON.parse(r.payload) as AlarmTransition);
}

export function readCursor(db: Db, name: string, stream: string): number {
  const r = db.prepare('SELECT last_id FROM cursor WHERE name = ? AND stream = ?').get(name, stream) as
    | { last_id: number }
    | undefined;
  return r?.last_id ?? 0;
}

export function writeCursors(db: Db, name: string, positions: Record<string, number>): void {
  const upsert = db.prepare(
    `INSERT INTO cursor (name, stream, last_id) VALUES (?, ?, ?)
      ON CONFLICT (name, stream) DO UPDATE SET last_id = excluded.last_id`,
  );
  db.transaction(() => {
    for (const [stream, id] of Object.entries(positions)) upsert.run(name, stream, id);
  })();
}
