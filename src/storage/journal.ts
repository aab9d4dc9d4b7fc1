/**
 * The embedded journal: every accepted sample, state change, device event, alarm
 * transition and audit record goes here first, under `<dataDir>/journal.sqlite`.
 *
 * Appends are synchronous into an in-memory batch; one transaction commits the batch at least every
 * `commitIntervalMs` (100 ms), and on the next event-loop turn when someone awaits `committed()`
 * (group commit: the MQTT transport acks QoS 1 only after it, so `kill -9` loses nothing). A commit is
 * written, not fsynced: the WAL is fsynced from the thread pool every `syncIntervalMs` (relaxed, the
 * default) or before `committed()` resolves (strict), and checkpointed in a worker, so no disk wait ever
 * holds the event loop (docs/storage.md, "Durability modes"). With `writerThread` (the gateway) the transaction
 * itself runs in a writer thread with its own connection (journalWriter.ts): one batch in flight, the next one
 * gathering meanwhile, `committed()` resolving when the thread says the batch holding the records is written.
 *
 * When the disk is full or the directory unwritable the journal raises STORAGE_FAILURE, retries with
 * backoff, keeps what it could not write in a bounded buffer and still resolves `committed()`: the
 * bedside view and the broker session must not stall because a disk failed. What overflows that
 * buffer is counted in `droppedWhileFailed`: the loss is alarmed and counted, never silent. The same holds, in relaxed
 * mode, for a disk whose writes stop completing (the writer thread leaves a batch unanswered for WRITER_STALL_MS):
 * STORAGE_FAILURE, `committed()` resolving from memory, the records written when the disk answers.
 */
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { AlarmTransition } from '../alarms/types.js';
import type { DeviceEvent, EventBus, StateChange, TelemetrySample } from '../bus.js';
import type { Registry } from '../metrics.js';
import { Checkpointer } from './checkpointer.js';
import { iterateTelemetry, readTelemetry, type JournalTelemetry } from './journalHistory.js';
import * as q from './journalQueries.js';
import { registerJournalMetrics } from './metrics.js';
import { prepareCommit, type CommitBatch, type JournalRecord } from './journalRows.js';
import { WriterThread, writerError, type WriterReply } from './journalWriter.js';
import { describeStorageError, JOURNAL_FILE, journalFileBytes, openJournalDb, type Db } from './schema.js';
import {
  silentLog, StorageUnavailableError,
  type JournalOptions, type JournalStatus, type StorageLog, type TelemetryQuery, type TimeRange,
} from './types.js';
import { WalSync } from './walSync.js';
import { Backoff } from '../util/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export type { JournalOptions, JournalStatus } from './types.js';

/** Longest a stop waits for the last fsync and for the checkpoint worker, ms. */
const STOP_SYNC_MS = 1_500;
/**
 * With the writer thread two connections write the database: the thread (journal rows) and the journal's own (the
 * audit trail, annotations, sessions, the forwarder's cursors, retention). Each waits this long for the other's
 * transaction before SQLITE_BUSY, ms. The thread's wait holds no one; the event loop's lasts at most one of the
 * thread's commits (milliseconds), or this long while the disk stalls.
 */
const WRITER_BUSY_MS = 10_000;
/**
 * Batches handed to the writer thread and not yet answered, at most. More than one: a PUBACK waits for its own
 * batch only, not also for the one before it, so the broker's in-flight window (100 messages) keeps flowing; the
 * thread commits them one after the other, in order.
 */
const WRITER_BATCHES_IN_FLIGHT = 4;
export const OWN_BUSY_WITH_WRITER_MS = 1_000;
/**
 * writerThread: how long the thread may leave a batch unanswered before the journal counts its disk as stalled (a
 * write(2) held once the kernel's dirty-page limit is reached, a hung device), ms. Then STORAGE_FAILURE is raised
 * and, in relaxed mode, acknowledgements go on from memory (docs/storage.md, "Durability modes").
 */
export const WRITER_STALL_MS = 1_000;
/** Records per batch handed to the writer thread, at most (tens of ms of the thread's work). */
const WRITER_BATCH_MAX = 10_000;

/** Real time, whatever the clock: it bounds a real disk at stop, and a test clock never advanced must not hold it. */
function settleWithin(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))])
    .finally(() => clearTimeout(timer));
}

export class Journal {
  private readonly log: StorageLog;
  private readonly now: () => number;
  private db: Db | null = null;
  private commitBatch: CommitBatch | null = null;
  private pending: JournalRecord[] = [];
  private waiters: Array<() => void> = [];
  /** The promise handed out for a list of waiters (whenReleased). */
  private readonly released = new WeakMap<Array<() => void>, Promise<void>>();
  private readonly channelsSeen = new Map<string, Set<string>>();
  private readonly openListeners: Array<(db: Db) => void> = [];
  private readonly clock: Clock;
  private timer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly retry: Backoff;
  private started = false;
  private stopped = false;
  private failing = false;
  private lastError: string | null = null;
  private counters = { appended: 0, committed: 0, duplicates: 0, dropped: 0, commits: 0 };
  private lastCommitAt: number | null = null;
  private walSync: WalSync | null = null;
  /** fsyncs of WAL files closed before (the journal reopens after a failure). */
  private fsyncsBefore = 0;
  private checkpointer: Checkpointer | null = null;
  /** writerThread mode: the thread, and the batches handed to it (oldest first), each with its committed() calls. */
  private writer: WriterThread | null = null;
  private inFlight: Array<{ id: number; batch: JournalRecord[]; waiters: Array<() => void> }> = [];
  /** When the thread last answered, or was handed a batch with none in flight (journal clock, ms). */
  private writerProgressAt = 0;
  /** Set while the thread has left a batch unanswered for longer than the stall limit. */
  private stalledSince: number | null = null;

  constructor(private readonly opts: JournalOptions) {
    this.log = opts.log ?? silentLog;
    this.clock = opts.clock ?? systemClock;
    this.now = opts.now ?? (() => this.clock.now());
    // Equal jitter (each delay between half and all of its step): many gateways on one storage do not retry in step.
    this.retry = new Backoff({ initialMs: opts.retryMinMs ?? 500, maxMs: opts.retryMaxMs ?? 30_000, jitter: 0.5 });
  }

  /** Opens the database; never throws for an unwritable directory (it alarms and retries instead). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const bus = this.opts.bus;
    if (bus) {
      bus.on(this, 'telemetry', (s) => this.appendTelemetry(s));
      bus.on(this, 'state', (c) => this.appendState(c));
      bus.on(this, 'event', (e) => this.appendEvent(e));
      bus.on(this, 'alarm', (a) => this.appendAlarm(a));
      bus.on(this, 'forget', (f) => this.channelsSeen.delete(f.deviceId));
    }
    this.tryOpen();
    this.timer = this.clock.setInterval(() => {
      this.checkStall();
      this.flush();
    }, this.opts.commitIntervalMs ?? 100);
  }

  /** Commits what is pending and closes. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.opts.bus?.removeOwner(this);
    this.clock.clearInterval(this.timer);
    this.clock.clearTimeout(this.retryTimer);
    if (this.immediate) clearImmediate(this.immediate);
    this.flush();
    // The writer thread finishes what it was handed (bounded like the fsync below).
    if (this.writer) await settleWithin(this.drained(), STOP_SYNC_MS);
    const lost = this.pendingRecords();
    if (lost > 0) {
      this.counters.dropped += lost;
      this.log.error({ lost, lastError: this.lastError }, 'journal: stopped before these records were written; records not journaled');
    }
    this.pending = [];
    for (const f of this.inFlight) this.waiters.push(...f.waiters);
    this.inFlight = [];
    this.releaseWaiters();
    // A clean stop leaves nothing unsynced (bounded: a stalled disk must not hold SIGTERM past its deadline).
    await settleWithin(this.walSync?.synced(), STOP_SYNC_MS);
    await settleWithin(this.checkpointer?.stop(), STOP_SYNC_MS);
    this.checkpointer = null;
    await this.writer?.close(STOP_SYNC_MS);
    this.closeDb();
  }

  appendTelemetry(sample: TelemetrySample): void {
    if (!this.accepting()) return;
    let seen = this.channelsSeen.get(sample.deviceId);
    if (!seen) this.channelsSeen.set(sample.deviceId, (seen = new Set()));
    for (const key in sample.v) {
      if (!seen.has(key)) {
        seen.add(key);
        this.pending.push({ kind: 'channel', device: sample.deviceId, key });
      }
    }
    this.push({ kind: 'telemetry', sample });
  }

  appendState(change: StateChange): void {
    if (this.accepting()) this.push({ kind: 'state', change });
  }

  appendEvent(event: DeviceEvent): void {
    if (this.accepting()) this.push({ kind: 'event', event });
  }

  appendAlarm(transition: AlarmTransition): void {
    if (this.accepting()) this.push({ kind: 'alarm', transition });
  }

  /**
   * Resolves when everything appended before the call is committed, or at once while the journal
   * is failing (see the file comment: ack anyway, the loss is alarmed and counted).
   */
  committed(): Promise<void> {
    const written = this.written();
    return this.opts.durability === 'strict' ? written.then(() => this.walSync?.synced()) : written;
  }

  /** Resolves once everything appended before the call is in a committed (written, maybe unsynced) transaction. */
  private written(): Promise<void> {
    if ((this.pending.length === 0 && this.inFlight.length === 0) || this.failing || this.stopped || this.acksFromMemory()) {
      this.trimWhileFailed();
      return Promise.resolve();
    }
    // Nothing left here: everything appended so far is in the batch the writer thread is committing.
    if (this.pending.length === 0) return this.whenReleased(this.inFlight[this.inFlight.length - 1].waiters);
    this.immediate ??= setImmediate(() => {
      this.immediate = null;
      this.flush();
    });
    return this.whenReleased(this.waiters);
  }

  /**
   * One promise per list of waiters, resolved when the list is: every message of a batch shares it (a promise and
   * a resolver per message were a tenth of what the MQTT ingest allocated, and collected, per message).
   */
  private whenReleased(list: Array<() => void>): Promise<void> {
    let p = this.released.get(list);
    if (!p) {
      p = new Promise<void>((resolve) => list.push(resolve));
      this.released.set(list, p);
    }
    return p;
  }

  /**
   * Commits the pending batch now, in one transaction. Returns false when it could not. With the writer thread it
   * hands the batch over (unless one is in flight) and returns whether nothing is left here: the commit follows.
   */
  flush(): boolean {
    if (this.writer) {
      if (this.acksFromMemory()) this.trimWhileFailed();
      return this.handOver();
    }
    let ok = this.pending.length === 0;
    if (!ok && this.db && this.commitBatch) {
      const batch = this.pending;
      this.pending = [];
      try {
        const { records, written } = this.commitBatch(batch);
        this.counters.committed += records;
        this.counters.duplicates += records - written;
        this.counters.commits += 1;
        this.lastCommitAt = this.now();
        this.walSync?.noteCommit();
        ok = true;
        if (this.failing) this.recovered();
      } catch (err) {
        this.pending = batch.concat(this.pending);
        this.fail(err);
      }
    }
    // Before start() nothing can commit yet: waiters keep waiting for the first open.
    if (this.pending.length === 0 || this.failing || this.stopped) {
      if (!this.db) this.trimWhileFailed();
      this.releaseWaiters();
    }
    return ok;
  }

  /** Resolves once nothing is left to write, or at once while failing (stop()). */
  private drained(): Promise<void> {
    if ((this.pending.length === 0 && this.inFlight.length === 0) || this.failing || !this.writer) return Promise.resolve();
    return new Promise<void>((resolve) => {
      if (this.pending.length === 0) this.inFlight[this.inFlight.length - 1].waiters.push(resolve);
      else this.waiters.push(resolve);
    });
  }

  private handOver(): boolean {
    while (this.pending.length > 0 && this.inFlight.length < WRITER_BATCHES_IN_FLIGHT && this.writer) {
      // At most WRITER_BATCH_MAX records a transaction: a backlog gathered behind a slow commit is handed over in
      // parts, so that no single answer takes long enough to look like a stalled disk.
      const all = this.pending.length <= WRITER_BATCH_MAX;
      const batch = all ? this.pending : this.pending.slice(0, WRITER_BATCH_MAX);
      this.pending = all ? [] : this.pending.slice(WRITER_BATCH_MAX);
      const id = this.writer.commit(batch);
      if (this.inFlight.length === 0) this.writerProgressAt = this.now();
      // Waiters wait for everything appended before their call: they go with the part that empties what is pending.
      this.inFlight.push({ id, batch, waiters: all ? this.waiters : [] });
      if (all) this.waiters = [];
    }
    return this.pending.length === 0;
  }

  /** The writer thread wrote a batch (or could not). */
  private onWriterReply(reply: WriterReply): void {
    const f = this.inFlight[0];
    if (!f || f.id !== reply.id) return;
    if (!reply.ok) {
      this.writerFailed(writerError(reply));
      return;
    }
    this.inFlight.shift();
    this.writerProgressAt = this.now();
    if (this.stalledSince !== null) this.stallEnded();
    this.counters.committed += reply.records;
    this.counters.duplicates += reply.records - reply.written;
    this.counters.commits += 1;
    this.lastCommitAt = this.now();
    this.walSync?.noteCommit();
    if (this.failing) this.recovered();
    for (const resolve of f.waiters) resolve();
    // Someone waits for what gathered meanwhile: the next batch goes now (else the 100 ms cadence takes it).
    if (this.pending.length > 0 && this.waiters.length > 0) this.flush();
  }

  /** A batch the thread could not write, or the thread ended: the batch comes back, in order, and the journal fails. */
  private writerFailed(err: unknown): void {
    this.stalledSince = null; // a failure now: STORAGE_FAILURE stays raised until the journal writes again
    const back = this.inFlight;
    this.inFlight = [];
    if (back.length > 0) {
      this.pending = back.flatMap((f) => f.batch).concat(this.pending);
      this.waiters = back.flatMap((f) => f.waiters).concat(this.waiters);
    }
    this.fail(err);
    this.trimWhileFailed();
    this.releaseWaiters();
  }

  private pendingRecords(): number {
    let n = 0;
    for (const r of this.pending) if (r.kind !== 'channel') n++;
    for (const f of this.inFlight) for (const r of f.batch) if (r.kind !== 'channel') n++;
    return n;
  }

  lastSeq(deviceId: string): { seq: number; t: number; rx: number } | null {
    return q.lastSeq(this.requireDb(), deviceId);
  }

  /** Whether the device ever sent anything that was journaled (throws when the journal cannot be read). */
  hasDevice(deviceId: string): boolean {
    return q.hasDevice(this.requireDb(), deviceId);
  }

  /** Channel keys a device has sent, unknown ones included. */
  knownChannels(deviceId: string): string[] {
    return q.channelKeys(this.requireDb(), deviceId);
  }

  /**
   * Time-ordered samples of one device; with `everyMs`, the mean per bucket in SQL. Runs in slices
   * with a turn of the event loop between them, so ingest and the live view keep going.
   */
  telemetry(deviceId: string, query: TelemetryQuery): Promise<JournalTelemetry> {
    return readTelemetry(() => this.requireDb(), deviceId, query);
  }

  /** Replay: samples of one device in [from, to), (t, seq) order, in chunks; index (device, t) makes the first fast. */
  iterateTelemetry(deviceId: string, from: number, to: number, chunkRows?: number): AsyncGenerator<TelemetrySample[]> {
    return iterateTelemetry(() => this.requireDb(), deviceId, { from, to }, chunkRows);
  }

  states(deviceId: string, range: TimeRange, limit = 10_000): StateChange[] {
    return q.states(this.requireDb(), deviceId, range, limit);
  }

  events(deviceId: string, range: TimeRange, limit = 10_000): DeviceEvent[] {
    return q.events(this.requireDb(), deviceId, range, limit);
  }

  alarms(deviceId: string | null, range: TimeRange, limit = 10_000): AlarmTransition[] {
    return q.alarms(this.requireDb(), deviceId, range, limit);
  }

  status(): JournalStatus {
    const sync = this.walSync?.status();
    return {
      durability: this.opts.durability ?? 'relaxed',
      fsyncs: this.fsyncsBefore + (sync?.fsyncs ?? 0),
      unsyncedMs: sync?.unsyncedMs ?? 0,
      fsyncInProgressMs: sync?.fsyncInProgressMs ?? 0,
      writeInProgressMs: this.writer && this.inFlight.length > 0 ? Math.max(0, this.now() - this.writerProgressAt) : 0,
      lastFsyncMs: sync?.lastFsyncMs ?? null,
      checkpoint: this.checkpointer?.status() ?? null,
      writable: this.db !== null && !this.failing,
      lastError: this.lastError,
      pending: this.pendingRecords(),
      appended: this.counters.appended,
      committed: this.counters.committed,
      duplicates: this.counters.duplicates,
      droppedWhileFailed: this.counters.dropped,
      failures: this.retry.attempts,
      commits: this.counters.commits,
      lastCommitAt: this.lastCommitAt,
      dbBytes: journalFileBytes(this.opts.dataDir),
    };
  }

  /** The `msc_journal_*` families. */
  registerMetrics(registry: Registry): void {
    registerJournalMetrics(registry, () => this.status());
  }

  /**
   * The open database (forwarder, retention, and modules keeping their own tables here); null while
   * failing. The handle is replaced when the journal reopens after a failure: hold the Journal, or
   * use onOpen(), rather than keeping the handle.
   */
  database(): Db | null {
    return this.db;
  }

  /** Called with each newly opened handle (at once when already open): prepare statements there. */
  onOpen(listener: (db: Db) => void): void {
    this.openListeners.push(listener);
    if (this.db) listener(this.db);
  }

  /** The writer thread (writerThread mode, while open): for diagnostics, and for the tests that end it as a crash would. */
  writerThread(): Worker | null {
    return this.writer?.thread ?? null;
  }

  private accepting(): boolean {
    if (!this.stopped) return true;
    this.counters.dropped += 1;
    return false;
  }

  private push(record: JournalRecord): void {
    this.counters.appended += 1;
    this.pending.push(record);
  }

  private tryOpen(): void {
    this.retryTimer = null;
    if (this.stopped) return;
    try {
      const db = openJournalDb(this.opts.dataDir, { now: this.now, hardLimitBytes: this.opts.hardLimitBytes });
      this.db = db;
      if (this.opts.writerThread) this.startWriter(db);
      else this.commitBatch = prepareCommit(db);
      this.startDurability();
      this.reloadChannels(db);
      for (const listener of this.openListeners) {
        try {
          listener(db);
        } catch (err) {
          this.log.error({ err: describeStorageError(err) }, 'journal: an onOpen listener failed');
        }
      }
      // With the writer thread, what was held while failing is written when the thread answers (and recovers then).
      const held = this.writer !== null && this.pending.length > 0;
      if (this.flush() && this.failing && !held) this.recovered();
    } catch (err) {
      this.fail(err);
    }
  }

  private startWriter(db: Db): void {
    db.pragma(`busy_timeout = ${OWN_BUSY_WITH_WRITER_MS}`);
    const writer: WriterThread = new WriterThread({
      file: join(this.opts.dataDir, JOURNAL_FILE),
      hardLimitBytes: this.opts.hardLimitBytes,
      busyTimeoutMs: WRITER_BUSY_MS,
      onReply: (reply) => {
        if (this.writer === writer) this.onWriterReply(reply);
      },
      onExit: (err) => {
        if (this.writer === writer) this.writerFailed(err);
      },
    });
    this.writer = writer;
  }

  /** Relaxed mode while the disk stalls: committed() resolves at once, the records held in memory (bounded). */
  private acksFromMemory(): boolean {
    return this.stalledSince !== null && this.opts.durability !== 'strict';
  }

  /** On the commit timer: has the writer thread left its oldest batch unanswered for too long? */
  private checkStall(): void {
    if (!this.writer || this.inFlight.length === 0 || this.stalledSince !== null || this.failing || this.stopped) return;
    const limit = this.opts.writerStallMs ?? WRITER_STALL_MS;
    if (this.now() - this.writerProgressAt < limit) return;
    this.stalledSince = this.now();
    const relaxed = this.opts.durability !== 'strict';
    const message = `journal's disk has not completed a write for ${+(limit / 1000).toFixed(1)} s: `
      + (relaxed
        ? `acknowledging from memory (up to ${this.opts.maxBufferedWhileFailed ?? 100_000} records held) until it does`
        : 'acknowledgements wait for it (strict durability)');
    this.log.error({ dataDir: this.opts.dataDir, inFlight: this.inFlight.length, pending: this.pending.length }, message);
    this.opts.onCondition?.({ rule: 'STORAGE_FAILURE', priority: 'MEDIUM', active: true, message });
    // The thread holds the write lock while its write hangs: a write on this connection (sessions, audit,
    // annotations) would hold the event loop for its whole busy timeout. Until the disk answers they fail at once
    // instead (their owners keep the record for later, or answer 503).
    this.setOwnBusyTimeout(0);
    if (relaxed) {
      for (const f of this.inFlight) {
        const waiters = f.waiters;
        f.waiters = [];
        for (const resolve of waiters) resolve();
      }
      this.trimWhileFailed();
      this.releaseWaiters();
    }
  }

  private stallEnded(): void {
    const ms = this.now() - this.stalledSince!;
    this.stalledSince = null;
    this.setOwnBusyTimeout(OWN_BUSY_WITH_WRITER_MS);
    if (this.failing) return;
    const message = `journal's disk answered again after ${(ms / 1000).toFixed(1)} s; ${this.counters.dropped} records were dropped while failing`;
    this.log.info({ stalledMs: ms, droppedWhileFailed: this.counters.dropped }, message);
    this.opts.onCondition?.({ rule: 'STORAGE_FAILURE', priority: 'MEDIUM', active: false, message });
  }

  private setOwnBusyTimeout(ms: number): void {
    try {
      this.db?.pragma(`busy_timeout = ${ms}`);
    } catch (err) {
      this.log.warn({ err: describeStorageError(err) }, 'journal: cannot set the busy timeout');
    }
  }

  private fail(err: unknown): void {
    this.lastError = describeStorageError(err);
    this.closeDb();
    if (!this.failing) {
      this.failing = true;
      const message = `journal cannot write to ${join(this.opts.dataDir, JOURNAL_FILE)}: ${this.lastError}`;
      this.log.error({ err: this.lastError, dataDir: this.opts.dataDir }, message);
      this.opts.onCondition?.({ rule: 'STORAGE_FAILURE', priority: 'MEDIUM', active: true, message });
    }
    if (!this.stopped && !this.retryTimer) {
      this.retryTimer = this.clock.setTimeout(() => this.tryOpen(), this.retry.next());
    }
  }

  private recovered(): void {
    this.failing = false;
    this.retry.reset();
    const message = `journal writable again; ${this.counters.dropped} records were dropped while failing`;
    this.log.info({ droppedWhileFailed: this.counters.dropped }, message);
    this.opts.onCondition?.({ rule: 'STORAGE_FAILURE', priority: 'MEDIUM', active: false, message });
  }

  private trimWhileFailed(): void {
    const max = this.opts.maxBufferedWhileFailed ?? 100_000;
    if (this.pending.length <= max) return;
    const excess = this.pending.splice(0, this.pending.length - max);
    const records = excess.filter((r) => r.kind !== 'channel').length;
    if (this.counters.dropped === 0 && records > 0) {
      this.log.error({ max }, 'journal: failure buffer full; dropping the oldest records (counted)');
    }
    this.counters.dropped += records;
    // A dropped channel record must be found again once the journal is writable.
    if (excess.some((r) => r.kind === 'channel')) this.channelsSeen.clear();
  }

  private releaseWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private reloadChannels(db: Db): void {
    this.channelsSeen.clear();
    for (const [device, keys] of q.allChannelKeys(db)) this.channelsSeen.set(device, keys);
  }


  private requireDb(): Db {
    if (!this.db) throw new StorageUnavailableError(`journal unavailable: ${this.lastError ?? 'not started'}`);
    return this.db;
  }

  private startDurability(): void {
    const file = join(this.opts.dataDir, JOURNAL_FILE);
    const onError = (what: string) => (message: string) => {
      this.log.warn({ err: message }, `journal: ${what} failed; retrying`);
    };
    this.walSync = new WalSync({ walPath: `${file}-wal`, intervalMs: this.opts.syncIntervalMs ?? 200, now: this.now, clock: this.clock, onError: onError('WAL fsync') });
    this.walSync.start();
    this.checkpointer = new Checkpointer({ file, intervalMs: this.opts.checkpointIntervalMs ?? 1_000, now: this.now, clock: this.clock, onError: onError('checkpoint') });
    this.checkpointer.start();
  }

  private closeDb(): void {
    if (this.walSync) this.fsyncsBefore += this.walSync.status().fsyncs;
    this.walSync?.stop();
    this.walSync = null;
    // The worker's connection closes on its own; the journal's close below checkpoints what is left.
    void this.checkpointer?.stop();
    this.checkpointer = null;
    this.writer?.abandon();
    this.writer = null;
    const db = this.db;
    this.db = null;
    this.commitBatch = null;
    try {
      db?.close();
    } catch {
      // Closing a database whose file vanished can fail; it is being abandoned either way.
    }
  }

}
