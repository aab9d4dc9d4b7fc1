/**
 * Store-and-forward from the journal to InfluxDB. Reads each journal stream in id order
 * from a cursor persisted in the journal database, writes batches of up to `batchLines` lines (or
 * what accumulated in `batchMs`), and advances the cursor only after a 2xx. Failures retry with
 * exponential backoff and jitter, forever; nothing here blocks ingest, which only ever appends to
 * the journal. Telegraf's and Node-RED's way (drop on overflow or failure) is what this replaces.
 */
import { Backoff } from '../util/backoff.js';
import { keepAliveClock, systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import type { Registry } from '../metrics.js';
import { createInfluxClient, httpStatus, postLines, type InfluxTarget } from './influxConfig.js';
import { LineReader } from './influxLines.js';
import type { Journal } from './journal.js';
import { readCursor, writeCursors } from './journalQueries.js';
import { registerForwarderMetrics } from './metrics.js';
import type { Db } from './schema.js';
import { silentLog, STREAMS, type ConditionSink, type ForwarderStatus, type StorageLog, type Stream } from './types.js';

export type { ForwarderStatus } from './types.js';

export interface ForwarderConfig extends InfluxTarget {
  /** Most lines per write (5,000). */
  batchLines?: number;
  /** Longest a line waits for a batch that is not full, ms (1 s). */
  batchMs?: number;
  /** Backlog age that raises STORAGE_BACKLOG (LOW), s. */
  backlogAlarmSeconds?: number;
  /** Backoff bounds for retries, ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /**
   * Batches on the wire at once while draining a backlog (default 2: InfluxDB parses one while the other
   * travels, and the next batch is built meanwhile; measured faster than 1 in every full bench run,
   * bench/storage.ts). The cursor still advances in order; a failure re-sends from the first unconfirmed batch.
   */
  inFlight?: number;
  /** Name of the persisted cursor (one per InfluxDB target). */
  cursorName?: string;
}

interface Batch {
  body: string;
  lines: number;
  cursors: Record<Stream, number>;
  full: boolean;
}

/** Writes on the wire at once while behind (see ForwarderConfig.inFlight). */
const DEFAULT_IN_FLIGHT = 2;
/** Longest a confirmed cursor stays in memory only, while draining, ms. */
const CURSOR_PERSIST_MS = 1_000;
/** Rows read and encoded between two turns of the event loop. */
const CHUNK_ROWS = 500;
/** Consecutive loop failures that raise FORWARDER_FAILURE. */
const LOOP_FAILURES_ALARM = 3;
/** "Caught up" for the backlog alarm: within a few batch windows of real time. */
const CAUGHT_UP_SECONDS = 5;

export class InfluxForwarder {
  private readonly log: StorageLog;
  private readonly now: () => number;
  private readonly influx: ReturnType<typeof createInfluxClient>;
  private readonly target: string;
  private readonly reader = new LineReader();
  private readonly backoff: Backoff;
  private cursors: Record<Stream, number> | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private backlogTimer: TimerHandle | null = null;
  private databaseReady = false;
  private backlogActive = false;
  private counters = { written: 0, batches: 0, errors: 0, restarts: 0 };
  /** Loop failures since the last confirmed batch, and the last one's text. */
  private loopFailures = 0;
  private loopError: string | null = null;
  private loopAlarm = false;
  private readonly loopBackoff: Backoff;
  private lastError: string | null = null;
  private connected = false;
  private lastBacklog = { lines: 0, seconds: 0 };
  private persistedAt = 0;
  private readonly housekeeping: Clock;
  private readonly sleeps: Clock;

  constructor(
    private readonly opts: {
      journal: Journal;
      config: ForwarderConfig;
      log?: StorageLog;
      /**
       * The backlog check (default: systemClock, unref'd) and the retry and batch sleeps (default: keepAliveClock:
       * a pending retry is work still to do); one given clock serves both.
       */
      clock?: Clock;
      /** Overrides clock.now for timestamps (kept for callers that inject time alone). */
      now?: () => number;
      /** STORAGE_BACKLOG raised and cleared. */
      onCondition?: ConditionSink;
      random?: () => number;
    },
  ) {
    this.log = opts.log ?? silentLog;
    this.housekeeping = opts.clock ?? systemClock;
    this.sleeps = opts.clock ?? keepAliveClock;
    this.now = opts.now ?? (() => this.housekeeping.now());
    this.influx = createInfluxClient(opts.config);
    this.target = this.influx.redacted;
    // Equal jitter (each delay between half and all of its step): gateways that lost one InfluxDB do not retry in step.
    const retry = { initialMs: opts.config.retryMinMs ?? 250, maxMs: opts.config.retryMaxMs ?? 30_000, jitter: 0.5, random: opts.random };
    this.backoff = new Backoff(retry);
    this.loopBackoff = new Backoff(retry);
  }

  async start(): Promise<void> {
    if (this.running || this.loop) return;
    this.running = true;
    this.backlogTimer = this.housekeeping.setInterval(() => this.checkBacklog(), 1_000);
    this.loop = this.supervise();
  }

  /**
   * The forwarding loop handles every InfluxDB and journal error itself; what still ends it is a bug. It must
   * not end forwarding for good while /healthz says ok: start it again from the confirmed cursors with
   * backoff, count it, and raise FORWARDER_FAILURE (MEDIUM) while it keeps failing.
   */
  private async supervise(): Promise<void> {
    while (this.running) {
      try {
        await this.run();
        return;
      } catch (err) {
        this.counters.restarts += 1;
        this.loopFailures += 1;
        this.loopError = err instanceof Error ? err.message : String(err);
        this.cursors = null; // re-read the persisted (confirmed) cursors: nothing is skipped
        this.log.error({ err: err instanceof Error ? err.stack : String(err), failures: this.loopFailures },
          'forwarder: loop ended by an unexpected error; restarting');
        if (this.loopFailures >= LOOP_FAILURES_ALARM && !this.loopAlarm) {
          this.loopAlarm = true;
          this.opts.onCondition?.({
            rule: 'FORWARDER_FAILURE', priority: 'MEDIUM', active: true,
            message: `InfluxDB forwarding keeps failing (${this.loopFailures} restarts): ${this.loopError}`,
          });
        }
        if (this.running) await this.sleep(this.loopBackoff.next());
      }
    }
  }

  /** Stops after the write in flight (bounded by the request timeout). Safe to call twice. */
  async stop(): Promise<void> {
    this.running = false;
    this.housekeeping.clearInterval(this.backlogTimer);
    this.backlogTimer = null;
    this.wake?.();
    await this.loop;
  }

  status(): ForwarderStatus {
    this.measureBacklog();
    return {
      ...this.lastBacklog, lastError: this.lastError, connected: this.connected, ...this.counters, target: this.target,
      loopError: this.loopError,
    };
  }

  /** The `msc_forwarder_*` families (the journal registers its own). */
  registerMetrics(registry: Registry): void {
    registerForwarderMetrics(registry, () => this.status());
  }

  private async run(): Promise<void> {
    const batchMs = this.opts.config.batchMs ?? 1_000;
    const inFlight = this.opts.config.inFlight ?? DEFAULT_IN_FLIGHT;
    const window: Array<{ batch: Batch; done: Promise<boolean> }> = [];
    let building: Promise<Batch | null> | null = null;
    const settle = async () => {
      await Promise.all(window.splice(0).map((w) => w.done));
      await building;
      building = null;
    };
    while (this.running) {
      const db = this.opts.journal.database();
      if (!db) {
        await settle(); // unconfirmable: re-sent from the cursor later, and overwrites itself
        await this.sleep(batchMs);
        continue;
      }
      if (!this.databaseReady && !(await this.ensureDatabase())) continue;
      this.cursors ??= this.loadCursors(db);
      const last = window.at(-1)?.batch;
      // Behind (the last batch was full): build the next one while InfluxDB works on those in flight.
      if (!building && (!last || last.full)) building = this.buildBatch(db, last ? last.cursors : this.cursors);
      if (building && window.length < inFlight) {
        const batch = await building;
        building = null;
        if (batch && batch.lines > 0) {
          window.push({ batch, done: this.write(batch) });
          continue;
        }
      }
      const head = window.shift();
      if (!head) {
        await this.sleep(batchMs);
      } else if (await head.done) {
        this.confirm(head.batch);
        if (!head.batch.full && window.length === 0) await this.sleep(batchMs);
      } else {
        // Later batches may have landed anyway; they are re-sent from the cursor and overwrite themselves.
        await settle();
        await this.sleep(this.backoff.next());
      }
    }
    // Stopping: confirm what lands, in order, so a restart re-sends as little as possible.
    for (const w of window) {
      if (!(await w.done)) break;
      this.confirm(w.batch);
    }
    await building;
    this.persistCursors();
  }

  private loadCursors(db: Db): Record<Stream, number> {
    return Object.fromEntries(STREAMS.map((s) => [s, readCursor(db, this.cursorName(), s)])) as Record<Stream, number>;
  }

  /** InfluxDB answered 2xx for this batch and every one before it: move the persisted cursor. */
  private confirm(batch: Batch): void {
    if (this.loopFailures > 0) this.loopRecovered();
    this.counters.written += batch.lines;
    this.counters.batches += 1;
    this.cursors = batch.cursors;
    // Each persist is an fsync'd commit; while draining, once a second is enough: a crash re-sends
    // at most that second's batches, which overwrite themselves.
    if (!batch.full || this.now() - this.persistedAt >= CURSOR_PERSIST_MS) this.persistCursors();
  }

  /**
   * Up to `batchLines` lines from the cursor on, built a few hundred rows at a time with a turn of
   * the event loop between: the request in flight keeps being written to its socket, and ingest
   * and the live view never wait more than a millisecond or two. Null when the journal's database
   * went away meanwhile (the loop starts over from the confirmed cursor).
   */
  private async buildBatch(db: Db, from: Record<Stream, number>): Promise<Batch | null> {
    const max = this.opts.config.batchLines ?? 5_000;
    const cursors = { ...from };
    let body = '';
    let lines = 0;
    try {
      // The small streams first, so state changes and alarms are never starved by telemetry.
      for (const stream of ['alarm', 'event', 'state', 'telemetry'] as const) {
        while (lines < max) {
          if (this.opts.journal.database() !== db) return null;
          const part = this.reader.read(db, stream, cursors[stream], Math.min(CHUNK_ROWS, max - lines));
          if (part.lines === 0) break;
          cursors[stream] = part.lastId;
          body = lines === 0 ? part.body : `${body}\n${part.body}`;
          lines += part.lines;
          await new Promise((r) => setImmediate(r));
        }
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'forwarder: reading the journal failed; retrying');
      return null;
    }
    return { body, lines, cursors, full: lines >= max };
  }

  private async write(batch: Batch): Promise<boolean> {
    try {
      await postLines(this.influx, batch.body, this.opts.config.requestTimeoutMs ?? 10_000);
      this.succeeded();
      return true;
    } catch (err) {
      // InfluxDB 1.x answers 404 when the database was dropped behind our back: create it again.
      if (httpStatus(err) === 404) this.databaseReady = false;
      this.failed(err, `write of ${batch.lines} lines failed`);
      return false;
    }
  }

  /** `CREATE DATABASE` is idempotent on 1.x; 2.x (DBRP mapping) and 3 Core refuse it but need none. */
  private async ensureDatabase(): Promise<boolean> {
    try {
      await this.influx.client.createDatabase(this.influx.database);
    } catch (err) {
      const status = httpStatus(err);
      if (status === null || status >= 500 || status === 401 || status === 403) {
        this.failed(err, `cannot create database ${this.influx.database}`);
        await this.sleep(this.backoff.next());
        return false;
      }
      this.log.warn({ err: String(err), database: this.influx.database }, 'forwarder: CREATE DATABASE refused; assuming it exists');
    }
    this.databaseReady = true;
    return true;
  }

  private succeeded(): void {
    if (this.lastError !== null || !this.connected) {
      this.log.info({ target: this.target }, 'forwarder: InfluxDB writes succeed');
    }
    this.connected = true;
    this.lastError = null;
    this.backoff.reset();
  }

  private failed(err: unknown, what: string): void {
    this.counters.errors += 1;
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    // One log line per change of state, not one per retry.
    if (this.connected || this.lastError === null) {
      this.log.warn({ target: this.target, err: message }, 'forwarder: InfluxDB unavailable; retrying with backoff');
    }
    this.connected = false;
    this.lastError = message;
  }

  private persistCursors(): void {
    const db = this.opts.journal.database();
    if (!db || !this.cursors) return; // Unpersisted: the batches are sent again after a restart.
    this.persistedAt = this.now();
    try {
      writeCursors(db, this.cursorName(), this.cursors);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'forwarder: cursor not persisted; the batch will be re-sent after a restart');
    }
  }

  private measureBacklog(): void {
    const db = this.opts.journal.database();
    if (!db) return;
    // Runs on a timer and under /healthz: a failing read (I/O error, corruption) keeps the last figures, never throws.
    try {
      const cursors = this.cursors ?? this.loadCursors(db);
      let lines = 0;
      let oldest: number | null = null;
      for (const stream of STREAMS) {
        const b = this.reader.backlog(db, stream, cursors[stream]);
        lines += Math.max(0, b.maxId - cursors[stream]);
        if (b.firstAt !== null && (oldest === null || b.firstAt < oldest)) oldest = b.firstAt;
      }
      const seconds = oldest === null ? 0 : Math.max(0, (this.now() - oldest) / 1_000);
      this.lastBacklog = { lines, seconds };
    } catch (err) {
      this.lastError = `backlog measurement failed: ${(err as Error).message}`;
    }
  }

  private loopRecovered(): void {
    this.loopFailures = 0;
    this.loopError = null;
    this.loopBackoff.reset();
    if (!this.loopAlarm) return;
    this.loopAlarm = false;
    this.opts.onCondition?.({ rule: 'FORWARDER_FAILURE', priority: 'MEDIUM', active: false, message: `InfluxDB forwarding works again (${this.target})` });
  }

  private checkBacklog(): void {
    this.measureBacklog();
    const { seconds, lines } = this.lastBacklog;
    const limit = this.opts.config.backlogAlarmSeconds ?? 60;
    if (!this.backlogActive && seconds > limit) {
      this.backlogActive = true;
      const message = `InfluxDB backlog ${Math.round(seconds)} s (${lines} lines) behind ${this.target}: ${this.lastError ?? 'slow writes'}`;
      this.log.warn({ seconds, lines }, message);
      this.opts.onCondition?.({ rule: 'STORAGE_BACKLOG', priority: 'LOW', active: true, message });
    } else if (this.backlogActive && seconds <= CAUGHT_UP_SECONDS) {
      this.backlogActive = false;
      const message = `InfluxDB forwarder caught up with ${this.target}`;
      this.log.info({ seconds, lines }, message);
      this.opts.onCondition?.({ rule: 'STORAGE_BACKLOG', priority: 'LOW', active: false, message });
    }
  }

  private cursorName(): string {
    return this.opts.config.cursorName ?? 'influx';
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const clock = this.sleeps;
      const timer = clock.setTimeout(done, ms);
      function done() {
        clock.clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
