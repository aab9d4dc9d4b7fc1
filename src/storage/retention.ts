/**
 * Journal retention: keep N days (default 14) or M GiB (default 20), whichever limit is
 * reached first, oldest first. With InfluxDB configured only rows the forwarder has confirmed
 * (id ≤ its cursor) are pruned, so an outage never costs data; without it, the journal is the
 * history and everything beyond the limits goes. The audit trail is never pruned here.
 *
 * Deletes run in small chunks, each its own transaction, with a turn of the event loop between
 * them, so ingest commits keep flowing during a large prune.
 */
import type { Journal } from './journal.js';
import { readCursor } from './journalQueries.js';
import type { Db } from './schema.js';
import { silentLog, type StorageLog, type Stream } from './types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface RetentionOptions {
  journal: Journal;
  keepDays?: number;
  maxBytes?: number;
  /** Cursor of the InfluxDB forwarder when one is configured; null prunes without confirmation. */
  confirmedBy?: { cursorName: string } | null;
  intervalMs?: number;
  chunkRows?: number;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
  /** Overrides clock.now (kept for callers that inject time alone). */
  now?: () => number;
  log?: StorageLog;
}

export interface RetentionReport {
  deletedByAge: Record<Stream, number>;
  deletedBySize: number;
  /** Bytes in use (not free pages) after the run. */
  usedBytes: number;
  /** A limit was exceeded but the rows were not confirmed by InfluxDB yet. */
  heldForInflux: boolean;
}

export const DEFAULT_KEEP_DAYS = 14;
export const DEFAULT_MAX_BYTES = 20 * 1024 ** 3;
const DAY_MS = 86_400_000;
/** Size pruning stops a little under the limit so it does not run on every pass. */
const SIZE_HYSTERESIS = 0.95;

/** The gateway-time column each prunable table is aged by. */
const AGE_COLUMN: Record<Stream, string> = { telemetry: 'rx', state: 'rx', event: 'rx', alarm: 'at' };

export class Retention {
  private timer: TimerHandle | null = null;
  private running: Promise<RetentionReport | null> | null = null;
  private stopped = false;
  private readonly log: StorageLog;
  private readonly now: () => number;
  private readonly clock: Clock;

  constructor(private readonly opts: RetentionOptions) {
    this.log = opts.log ?? silentLog;
    this.clock = opts.clock ?? systemClock;
    this.now = opts.now ?? (() => this.clock.now());
  }

  async start(): Promise<void> {
    if (this.timer || this.stopped) return;
    this.timer = this.clock.setInterval(() => void this.runOnce(), this.opts.intervalMs ?? 5 * 60_000);
  }

  /** Waits for a pass in progress. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass; null when the journal is not open. Concurrent calls share the pass in progress. */
  runOnce(): Promise<RetentionReport | null> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<RetentionReport | null> {
    const report: RetentionReport = {
      deletedByAge: { telemetry: 0, state: 0, event: 0, alarm: 0 }, deletedBySize: 0, usedBytes: 0, heldForInflux: false,
    };
    try {
      const cutoff = this.now() - (this.opts.keepDays ?? DEFAULT_KEEP_DAYS) * DAY_MS;
      for (const stream of ['telemetry', 'state', 'event', 'alarm'] as const) {
        report.deletedByAge[stream] = await this.pruneOldest(stream, (db) => this.isOlder(db, stream, cutoff), report);
      }
      const maxBytes = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
      if (this.usedBytes() > maxBytes) {
        report.deletedBySize = await this.pruneOldest(
          'telemetry', () => this.usedBytes() > maxBytes * SIZE_HYSTERESIS, report, true,
        );
      }
      report.usedBytes = this.usedBytes();
    } catch (err) {
      if (!this.opts.journal.database()) return null;
      this.log.warn({ err: String(err) }, 'retention: pass failed; next pass retries');
      return null;
    }
    if (report.heldForInflux) {
      this.log.warn({ usedBytes: report.usedBytes }, 'retention: limit reached but InfluxDB has not confirmed the oldest rows');
    }
    const byAge = Object.values(report.deletedByAge).reduce((a, b) => a + b, 0);
    if (byAge + report.deletedBySize > 0) {
      this.log.info({ ...report }, 'retention: pruned the journal');
    }
    return report;
  }

  /**
   * Deletes whole chunks of the oldest rows (by id, which follows arrival) while `needed` says so.
   * Age: a chunk is deleted only where rows are older than the cutoff, and the pass stops at the
   * first chunk that was not entirely old. Size: `all` deletes whole chunks until under the limit.
   */
  private async pruneOldest(
    stream: Stream, needed: (db: Db) => boolean, report: RetentionReport, all = false,
  ): Promise<number> {
    const chunk = this.opts.chunkRows ?? 5_000;
    const cutoff = this.now() - (this.opts.keepDays ?? DEFAULT_KEEP_DAYS) * DAY_MS;
    let deleted = 0;
    while (!this.stopped) {
      const db = this.opts.journal.database();
      if (!db || !needed(db)) break;
      const limitId = this.confirmedLimit(db, stream);
      const ageFilter = all ? '' : ` AND ${AGE_COLUMN[stream]} < ${Math.trunc(cutoff)}`;
      const changes = db.prepare(
        `DELETE FROM ${stream} WHERE id IN (SELECT id FROM ${stream} WHERE id <= ? ORDER BY id LIMIT ?)${ageFilter}`,
      ).run(limitId, chunk).changes;
      deleted += changes;
      if (changes < chunk) {
        // Nothing (more) deletable: the remaining old rows wait for InfluxDB's confirmation.
        if (this.opts.confirmedBy && needed(db) && this.hasRowsAfter(db, stream, limitId)) report.heldForInflux = true;
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    return deleted;
  }

  private isOlder(db: Db, stream: Stream, cutoff: number): boolean {
    const row = db.prepare(`SELECT ${AGE_COLUMN[stream]} AS at FROM ${stream} ORDER BY id LIMIT 1`).get() as
      | { at: number }
      | undefined;
    return row !== undefined && row.at < cutoff;
  }

  private hasRowsAfter(db: Db, stream: Stream, id: number): boolean {
    return db.prepare(`SELECT 1 FROM ${stream} WHERE id > ? LIMIT 1`).get(id) !== undefined;
  }

  private confirmedLimit(db: Db, stream: Stream): number {
    const by = this.opts.confirmedBy;
    return by ? readCursor(db, by.cursorName, stream) : Number.MAX_SAFE_INTEGER;
  }

  private usedBytes(): number {
    const db = this.opts.journal.database();
    if (!db) return 0;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    const size = db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }
}
