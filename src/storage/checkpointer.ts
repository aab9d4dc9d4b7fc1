/**
 * WAL checkpoints off the event loop (docs/storage.md, "Durability modes"). The journal's connection runs
 * with `wal_autocheckpoint = 0`: a checkpoint fsyncs the WAL and the database file, and on a slow or
 * stalled disk that would hold the event loop (live stream, alarms) for as long as the disk takes. A
 * worker thread with its own connection runs `wal_checkpoint(PASSIVE)` instead, which never blocks the
 * writer; SQLite restarts the WAL from its beginning at the next commit once a checkpoint has copied it all.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface CheckpointStatus {
  checkpoints: number;
  /** Duration of the last checkpoint, ms. */
  lastMs: number | null;
  /** WAL frames at the last checkpoint and how many of them it copied. */
  walFrames: number;
  copiedFrames: number;
  /** A checkpoint running for this long, ms (0 when none). */
  inProgressMs: number;
  lastError: string | null;
}

// Evaluated as CommonJS in the worker (a file would need a build step of its own under vitest).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
db.pragma('synchronous = NORMAL');
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  const started = Date.now();
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    parentPort.postMessage({ ok: true, ms: Date.now() - started, log: r.log, copied: r.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String((err && err.message) || err) });
  }
});
`;

export class Checkpointer {
  private worker: Worker | null = null;
  private timer: TimerHandle | null = null;
  private inFlightSince: number | null = null;
  private status_: CheckpointStatus = { checkpoints: 0, lastMs: null, walFrames: 0, copiedFrames: 0, inProgressMs: 0, lastError: null };

  constructor(
    private readonly opts: {
      /** Path of `journal.sqlite`. */
      file: string;
      intervalMs: number;
      now: () => number;
      /** The interval's clock (default: systemClock, unref'd). */
      clock?: Clock;
      onError?: (message: string) => void;
    },
  ) {}

  start(): void {
    if (this.worker) return;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file: this.opts.file } });
    worker.unref();
    worker.on('message', (m: { ok: boolean; ms?: number; log?: number; copied?: number; error?: string }) => {
      this.inFlightSince = null;
      if (m.ok) {
        this.status_ = {
          ...this.status_, checkpoints: this.status_.checkpoints + 1, lastMs: m.ms ?? null,
          walFrames: m.log ?? 0, copiedFrames: m.copied ?? 0, lastError: null,
        };
      } else {
        this.status_ = { ...this.status_, lastError: m.error ?? 'checkpoint failed' };
        this.opts.onError?.(this.status_.lastError!);
      }
    });
    worker.on('error', (err) => {
      this.inFlightSince = null;
      this.status_ = { ...this.status_, lastError: `checkpoint worker: ${err.message}` };
      this.opts.onError?.(this.status_.lastError!);
      if (this.worker === worker) this.worker = null;
    });
    this.worker = worker;
    this.timer = (this.opts.clock ?? systemClock).setInterval(() => this.run(), this.opts.intervalMs);
  }

  /** Ends the worker (its connection closes; the journal's own close checkpoints what is left). */
  async stop(): Promise<void> {
    (this.opts.clock ?? systemClock).clearInterval(this.timer);
    this.timer = null;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    // A checkpoint in flight on a stalled disk must not hold shutdown: terminate after a grace period.
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    // Real time, whatever the clock (a real thread on a real disk; a test clock never advanced must not hold stop).
    const grace = setTimeout(() => void worker.terminate(), 2_000);
    await exited;
    clearTimeout(grace);
  }

  status(): CheckpointStatus {
    return { ...this.status_, inProgressMs: this.inFlightSince === null ? 0 : this.opts.now() - this.inFlightSince };
  }

  private run(): void {
    if (!this.worker || this.inFlightSince !== null) return;
    this.inFlightSince = this.opts.now();
    this.worker.postMessage('checkpoint');
  }
}
