/**
 * SessionService: the recorder plus the reads the API needs, over the journal's database.
 * The database may be away (unwritable or full disk): reads then throw StorageUnavailableError (503).
 */
import type { AuditSink } from '../audit/auditLog.js';
import type { EventBus } from '../bus.js';
import type { Db } from '../storage/schema.js';
import { StorageUnavailableError } from '../storage/types.js';
import { exportSession, type ExportFile, type ExportOptions } from './export.js';
import { findRecords, readRecords } from './records.js';
import { SessionReader } from './reader.js';
import { SessionRecorder, type ParticipantResult } from './recorder.js';
import type { Actor } from '../alarms/types.js';
import type { SessionFilter, SessionRecord, SessionSummary } from './types.js';

export type FindResult =
  | { ok: true; record: SessionRecord }
  | { ok: false; status: 404 | 409; message: string };

export interface SessionServiceOptions {
  bus: EventBus;
  audit: AuditSink;
  /** The journal's current handle, or null while it cannot be opened. */
  database: () => Db | null;
  now: () => number;
  logger: { error(obj: object, msg?: string): void };
}

export class SessionService {
  readonly recorder: SessionRecorder;

  constructor(private readonly opts: SessionServiceOptions) {
    this.recorder = new SessionRecorder({ bus: opts.bus, audit: opts.audit, logger: opts.logger });
  }

  start(): void {
    this.recorder.start();
  }

  stop(): void {
    this.recorder.stop();
  }

  /** Wire to `journal.onOpen`. */
  useDatabase(db: Db): void {
    this.recorder.useDatabase(db);
  }

  /** Records with their duration and start and end as UTC ISO 8601 ("start and end (UTC)"). */
  list(filter: SessionFilter): Array<SessionRecord & { startedUtc: string; endedUtc: string | null; durationMs: number; running: boolean }> {
    const now = this.opts.now();
    return readRecords(this.db(), filter).map((r) => ({
      ...r,
      startedUtc: new Date(r.startedAt).toISOString(),
      endedUtc: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
      durationMs: Math.max(0, (r.endedAt ?? now) - r.startedAt),
      running: r.endedAt === null,
    }));
  }

  /** The session with this id (on `device` when given). The same id on two consoles needs `device`. */
  find(sessionId: string, device?: string): FindResult {
    const found = findRecords(this.db(), sessionId, device);
    if (found.length === 0) return { ok: false, status: 404, message: `no session ${sessionId}${device ? ` on ${device}` : ''}` };
    const devices = [...new Set(found.map((r) => r.device))];
    if (devices.length > 1) {
      return { ok: false, status: 409, message: `session ${sessionId} ran on ${devices.join(', ')}: add ?device=` };
    }
    // The same id again on the same console (after RESET): the newest one.
    return { ok: true, record: found[0] };
  }

  summary(record: SessionRecord): Promise<SessionSummary> {
    return new SessionReader(() => this.db()).summary(record, this.opts.now());
  }

  export(record: SessionRecord, opts: Omit<ExportOptions, 'now'>): Promise<ExportFile> {
    return exportSession(() => this.db(), record, { ...opts, now: this.opts.now() });
  }

  setParticipant(record: SessionRecord, code: string, reason: string, actor: Actor): ParticipantResult {
    return this.recorder.setParticipant(record.key, code, reason, actor);
  }

  private db(): Db {
    const db = this.opts.database();
    if (!db) throw new StorageUnavailableError('session records unavailable: the journal cannot be opened (see /healthz)');
    return db;
  }
}
