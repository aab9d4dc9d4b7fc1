/**
 * Durability of the journal without an fsync on the event loop (docs/storage.md, "Durability modes").
 *
 * The journal commits with `synchronous = NORMAL` in WAL mode: a commit is written to the WAL through the
 * page cache (it survives `kill -9`) and nothing is fsynced on the event loop. This class makes what was
 * written durable against a power cut by fsyncing the WAL file from libuv's thread pool:
 * - every `intervalMs` when anything was committed since the last fsync (PostgreSQL's WAL writer with
 *   `synchronous_commit = off` and `wal_writer_delay`): the power-cut window is about one interval plus
 *   one fsync;
 * - at once, back to back, while someone waits in `synced()` (strict mode: the MQTT PUBACK waits for it,
 *   as with PostgreSQL's `synchronous_commit = on`, and concurrent waiters share one fsync: group commit).
 *
 * fsync(2) flushes the file's data whichever descriptor it is called on, so a descriptor of our own on the
 * `-wal` file covers frames written by SQLite's connection.
 */
import { closeSync, fsync, openSync } from 'node:fs';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface WalSyncStatus {
  /** Completed fsyncs of the WAL since start. */
  fsyncs: number;
  /** Duration of the last fsync, ms. */
  lastFsyncMs: number | null;
  /** Commits written but not yet fsynced (0 when everything written is durable). */
  unsyncedCommits: number;
  /** Age of the oldest commit not yet fsynced, ms (0 when none): the power-cut window right now. */
  unsyncedMs: number;
  /** A fsync in progress for longer than this, ms (0 when none): a stalled disk shows here. */
  fsyncInProgressMs: number;
  lastError: string | null;
}

export class WalSync {
  private fd: number | null = null;
  /** Commits written (counted by noteCommit) and commits known durable. */
  private written = 0;
  private durable = 0;
  private oldestUnsyncedAt: number | null = null;
  private inFlightSince: number | null = null;
  private waiters: Array<{ upTo: number; resolve: () => void }> = [];
  private timer: TimerHandle | null = null;
  private fsyncs = 0;
  private lastFsyncMs: number | null = null;
  private lastError: string | null = null;
  /** A descriptor stop() could not close while its fsync was in flight. */
  private closeWhenLanded: number | null = null;

  constructor(
    private readonly opts: {
      /** Path of the `-wal` file. */
      walPath: string;
      intervalMs: number;
      now: () => number;
      /** The interval's clock (default: systemClock, unref'd). */
      clock?: Clock;
      onError?: (message: string) => void;
    },
  ) {}

  /** Opens the WAL file (it exists once the database is in WAL mode and written) and starts the interval. */
  start(): void {
    if (this.fd === null) this.fd = openSync(this.opts.walPath, 'r');
    if (!this.timer) {
      this.timer = (this.opts.clock ?? systemClock).setInterval(() => this.kick(), this.opts.intervalMs);
    }
  }

  /** Closes the descriptor (after the fsync in flight); waiters are released: the journal closes or reopens. */
  stop(): void {
    (this.opts.clock ?? systemClock).clearInterval(this.timer);
    this.timer = null;
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) {
      if (this.inFlightSince === null) closeQuietly(fd);
      else this.closeWhenLanded = fd;
    }
    this.release(Number.POSITIVE_INFINITY);
  }

  /** A transaction was committed (written to the WAL). */
  noteCommit(): void {
    this.written += 1;
    this.oldestUnsyncedAt ??= this.opts.now();
  }

  /** Resolves once every commit noted before the call is fsynced (strict mode); starts a fsync now. */
  synced(): Promise<void> {
    if (this.durable >= this.written || this.fd === null) return Promise.resolve();
    const upTo = this.written;
    return new Promise<void>((resolve) => {
      this.waiters.push({ upTo, resolve });
      this.kick();
    });
  }

  status(): WalSyncStatus {
    const now = this.opts.now();
    return {
      fsyncs: this.fsyncs,
      lastFsyncMs: this.lastFsyncMs,
      unsyncedCommits: this.written - this.durable,
      unsyncedMs: this.oldestUnsyncedAt === null ? 0 : now - this.oldestUnsyncedAt,
      fsyncInProgressMs: this.inFlightSince === null ? 0 : now - this.inFlightSince,
      lastError: this.lastError,
    };
  }

  /** One fsync at a time; another follows at once when waiters remain. */
  private kick(): void {
    if (this.inFlightSince !== null || this.fd === null || this.durable >= this.written) return;
    const upTo = this.written;
    const started = this.opts.now();
    this.inFlightSince = started;
    const fd = this.fd;
    fsync(fd, (err) => {
      this.inFlightSince = null;
      if (this.closeWhenLanded === fd) {
        this.closeWhenLanded = null;
        closeQuietly(fd);
        return;
      }
      if (err) {
        // The journal's own commits report a failing disk; here it is noted and retried on the next tick.
        this.lastError = `${err.code ?? 'EIO'}: ${err.message}`;
        this.opts.onError?.(this.lastError);
        return;
      }
      this.fsyncs += 1;
      this.lastError = null;
      this.lastFsyncMs = this.opts.now() - started;
      this.durable = Math.max(this.durable, upTo);
      this.oldestUnsyncedAt = this.durable >= this.written ? null : started;
      this.release(upTo);
      if (this.waiters.length > 0) this.kick();
    });
  }

  private release(upTo: number): void {
    if (this.waiters.length === 0) return;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.upTo <= upTo) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // A descriptor of a file being abandoned: nothing left to release.
  }
}
