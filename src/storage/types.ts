/**
 * Shapes shared by the journal, the InfluxDB forwarder, retention and history.
 */
import type { AlarmPriority } from '../alarms/types.js';
import type { EventBus } from '../bus.js';
import type { ChannelValues } from '../protocol/types.js';
import type { CheckpointStatus } from './checkpointer.js';
import type { Clock } from '../util/clock.js';

/** The journal tables the forwarder reads in order, each with its own persisted cursor. */
export const STREAMS = ['telemetry', 'state', 'event', 'alarm'] as const;
export type Stream = (typeof STREAMS)[number];

/**
 * A technical condition raised by storage; the composition root hands it to the alarm engine
 * (`setExternalCondition`). `rule` is stable so the alarm instance id is stable.
 */
export interface StorageCondition {
  rule: 'STORAGE_FAILURE' | 'STORAGE_BACKLOG' | 'FORWARDER_FAILURE';
  priority: AlarmPriority;
  active: boolean;
  message: string;
}
export type ConditionSink = (condition: StorageCondition) => void;

/** The slice of a pino logger storage uses (a pino `Logger` fits). */
export interface StorageLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLog: StorageLog = { info() {}, warn() {}, error() {} };

export interface TimeRange {
  /** Inclusive, epoch ms (device time). */
  from: number;
  /** Exclusive, epoch ms (device time). */
  to: number;
}

export interface TelemetryQuery extends TimeRange {
  /** Channel keys to return; all known channels when absent or empty. */
  channels?: string[];
  /** Bucket width: the mean per bucket (aligned to the epoch, like InfluxQL GROUP BY time()). */
  everyMs?: number;
  /** Most samples (or buckets) returned; `truncated` says when more existed. */
  limit?: number;
}

/**
 * One history point. Raw: `v[key] === null` is a sensor fault, an absent key was not measured
 * (ICD §1 VALUE). Aggregated: `t` is the bucket start and a key is absent when its bucket held
 * no valid value.
 */
export interface HistoryPoint {
  t: number;
  v: ChannelValues;
}

export interface HistoryResult {
  samples: HistoryPoint[];
  /** Channels asked for, or the channels found when none were named. */
  channels: string[];
  truncated: boolean;
  source: 'influx' | 'journal';
}

/** Thrown by journal reads while the database cannot be opened (the API maps it to 503). */
export class StorageUnavailableError extends Error {
  readonly code = 'STORAGE_UNAVAILABLE';
  readonly statusCode = 503;
  constructor(message: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}

/** A part kept in the journal's database asked for before the journal has opened (unwritable or full disk). */
export function journalUnavailable(what: string): StorageUnavailableError {
  return new StorageUnavailableError(`${what} unavailable: the journal cannot be written (see /healthz)`);
}

/** SQLite result codes that mean "the storage cannot be used now", not "this request is wrong". */
const STORAGE_CODES = /^SQLITE_(IOERR|FULL|CANTOPEN|CORRUPT|NOTADB|READONLY|BUSY|LOCKED|PERM|PROTOCOL|NOLFS)/;

/**
 * The reason when `err` means the journal (or a table in its database) cannot be read or written now: a closed or
 * missing handle, a SQLite I/O, full, corrupt or locked database. The HTTP API answers those 503
 * `storage_unavailable` with this reason, in one place (api/server.ts), whatever route met it.
 */
export function storageUnavailableReason(err: unknown): string | null {
  if (err instanceof StorageUnavailableError) return err.message;
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && STORAGE_CODES.test(code)) return `journal unavailable: ${code}: ${err.message}`;
  // better-sqlite3 on a handle the journal closed after a disk failure.
  if (err instanceof TypeError && /database connection is not open/i.test(err.message)) return `journal unavailable: ${err.message}`;
  return null;
}

export interface JournalOptions {
  /** `--data-dir`; the journal is `<dataDir>/journal.sqlite`. */
  dataDir: string;
  /** When given, the journal records `telemetry`, `state`, `event` and `alarm` from it. */
  bus?: EventBus;
  log?: StorageLog;
  /** Commit cadence, reopen retry, WAL fsync and checkpoint timers (default: systemClock, timers unref'd). */
  clock?: Clock;
  /** Overrides clock.now for timestamps (kept for callers that inject time alone). */
  now?: () => number;
  /** STORAGE_FAILURE raised and cleared (wired to the alarm engine's external conditions). */
  onCondition?: ConditionSink;
  /** Longest time an appended record waits for its transaction, ms (at least every 100 ms). */
  commitIntervalMs?: number;
  /** Records kept in memory while the journal cannot write; older ones beyond it are dropped and counted. */
  maxBufferedWhileFailed?: number;
  /** writerThread: a batch unanswered this long means the disk stalls (WRITER_STALL_MS, 1 s). */
  writerStallMs?: number;
  /** Hard ceiling on the database file (SQLite max_page_count); reaching it behaves like a full disk. */
  hardLimitBytes?: number;
  /** Reopen/rewrite backoff after a failure, ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /**
   * `relaxed` (default): `committed()` resolves once the transaction is written (survives a process crash);
   * the WAL is fsynced every `syncIntervalMs`. `strict`: it resolves only after the fsync (survives a power cut).
   */
  durability?: Durability;
  /** Longest a written commit waits for its fsync in relaxed mode, ms (the power-cut window). */
  syncIntervalMs?: number;
  /** How often the worker checkpoints the WAL into the database file, ms. */
  checkpointIntervalMs?: number;
  /**
   * Commits in a writer thread with its own connection (journalWriter.ts; what the gateway runs), so SQLite's
   * inserts and a stalled `write(2)` stay off the event loop; `committed()` keeps its meaning. Without it
   * (default) commits run on the calling thread and `flush()` commits synchronously.
   */
  writerThread?: boolean;
}

/** What the InfluxDB forwarder reports (API, metrics, fleet status). */
export interface ForwarderStatus {
  /** Journal lines not yet confirmed by InfluxDB (estimate from ids). */
  lines: number;
  /** Age of the oldest unconfirmed line, gateway clock, s. */
  seconds: number;
  lastError: string | null;
  /** The last request to InfluxDB succeeded. */
  connected: boolean;
  /** Lines and batches confirmed (2xx, in order) since start(). */
  written: number;
  batches: number;
  errors: number;
  target: string;
  /** Times the forwarding loop ended on an unexpected error and was started again. */
  restarts: number;
  /** The last such error while it keeps failing; null once a batch has gone through since. */
  loopError: string | null;
}

export type Durability = 'relaxed' | 'strict';

export interface JournalStatus {
  durability: Durability;
  /** WAL fsyncs done (thread pool). */
  fsyncs: number;
  /** Age of the oldest written commit not yet fsynced, ms: what a power cut would lose now. */
  unsyncedMs: number;
  /** How long the fsync in progress has been running, ms (0 when none): a stalled disk. */
  fsyncInProgressMs: number;
  /** writerThread: how long its oldest batch has waited for the thread's answer, ms (0 when none): a stalled write. */
  writeInProgressMs: number;
  lastFsyncMs: number | null;
  checkpoint: CheckpointStatus | null;
  writable: boolean;
  lastError: string | null;
  /** Records appended and not yet committed (includes those held while failing). */
  pending: number;
  appended: number;
  committed: number;
  /** Redelivered records (same device, seq, t) that were already stored. */
  duplicates: number;
  droppedWhileFailed: number;
  /** Consecutive failed open/commit attempts (0 when writable). */
  failures: number;
  commits: number;
  lastCommitAt: number | null;
  dbBytes: number;
}
