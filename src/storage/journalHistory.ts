/**
 * History and replay reads on the journal, in slices: better-sqlite3 is synchronous, so a 24 h
 * query runs as many short statements with a turn of the event loop between them and never holds
 * up ingest commits or the live view for long.
 */
import type { TelemetrySample } from '../bus.js';
import * as q from './journalQueries.js';
import type { Db } from './schema.js';
import type { HistoryPoint, TelemetryQuery, TimeRange } from './types.js';

export interface JournalTelemetry {
  samples: HistoryPoint[];
  channels: string[];
  truncated: boolean;
}

const DEFAULT_RAW_LIMIT = 50_000;
const PAGE_ROWS = 5_000;
/** Aggregation slice: ≈15k rows of one device at 25 Hz. */
const SLICE_MS = 10 * 60_000;

const nextTurn = () => new Promise((r) => setImmediate(r));

/** Samples of one device in [from, to), (t, seq) order, `chunkRows` at a time (keyset paging on (device, t, seq)). */
export async function* iterateTelemetry(
  db: () => Db, deviceId: string, range: TimeRange, chunkRows = PAGE_ROWS,
): AsyncGenerator<TelemetrySample[]> {
  let after: q.TelemetryKey | null = null;
  for (;;) {
    const page = q.telemetryPage(db(), deviceId, range, after, chunkRows);
    if (page.length > 0) yield page;
    if (page.length < chunkRows) return;
    const last = page[page.length - 1];
    after = { t: last.t, seq: last.seq };
  }
}

export async function readTelemetry(db: () => Db, deviceId: string, query: TelemetryQuery): Promise<JournalTelemetry> {
  const limit = query.limit ?? DEFAULT_RAW_LIMIT;
  const named = query.channels && query.channels.length > 0 ? query.channels : null;
  const samples: HistoryPoint[] = [];
  if (query.everyMs === undefined) {
    const found = new Set<string>();
    const chunk = Math.min(PAGE_ROWS, limit + 1);
    for await (const page of iterateTelemetry(db, deviceId, query, chunk)) {
      for (const s of page) {
        if (samples.length === limit) return { samples, channels: named ?? [...found].sort(), truncated: true };
        const v = q.pickChannels(s.v, named);
        if (!named) for (const k in v) found.add(k);
        samples.push({ t: s.t, v });
      }
      await nextTurn();
    }
    return { samples, channels: named ?? [...found].sort(), truncated: false };
  }
  const every = query.everyMs;
  const channels = named ?? q.channelKeys(db(), deviceId);
  // Slices are whole numbers of buckets from an aligned start, so no bucket is split between two.
  const sliceMs = every * Math.max(1, Math.floor(SLICE_MS / every));
  for (let start = Math.floor(query.from / every) * every; start < query.to; start += sliceMs) {
    const range = { from: Math.max(query.from, start), to: Math.min(query.to, start + sliceMs) };
    for (const point of q.telemetryBuckets(db(), deviceId, range, every, channels)) {
      if (samples.length === limit) return { samples, channels, truncated: true };
      samples.push(point);
    }
    await nextTurn();
  }
  return { samples, channels, truncated: false };
}
