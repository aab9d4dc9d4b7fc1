/**
 * Audit records of actions that already took effect (a command sent and answered, an alarm acknowledged, an audio
 * pause) when the trail cannot be written at that moment (a full disk, a journal reopening).
 *
 * The action cannot be undone, and 21 CFR 11.10(e) needs its record: refusing is not an option and a log line
 * is not a record. Such records are kept in memory in order, with the time of the action, and appended (chained
 * like any other) as soon as the trail takes them again, oldest first: a record never overtakes one before it.
 * While any wait, AUDIT_PENDING (MEDIUM) is raised and /healthz says how many. Nothing is dropped silently: a
 * record too large for the trail goes in with its detail replaced by what was too large; at stop, records that
 * still could not be written are logged one by one at error level.
 *
 * Actions that have not happened yet are audited before they happen and refused when that fails (the command
 * service, alarm routes): they do not come here.
 */
import type { AuditEntry, AuditSink } from './auditLog.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { counter, gauge, type Registry } from '../metrics.js';

export interface PendingAuditOptions {
  sink: AuditSink;
  now: () => number;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
  logger: { error(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** AUDIT_PENDING raised (message) or cleared (null). */
  onCondition?: (message: string | null) => void;
  retryMs?: number;
}

export class PendingAudit {
  private queue: AuditEntry[] = [];
  private timer: TimerHandle | null = null;
  private deferred = 0;
  private lastError: string | null = null;

  constructor(private readonly opts: PendingAuditOptions) {}

  /** Appends now, or keeps the record (stamped with the action's time) until the trail takes it. Never throws. */
  record(entry: AuditEntry): void {
    const stamped = { ...entry, at: entry.at ?? this.opts.now() };
    if (this.queue.length === 0 && this.tryAppend(stamped)) return;
    this.queue.push(stamped);
    this.deferred += 1;
    if (this.queue.length === 1) {
      this.opts.logger.error({ err: this.lastError, action: entry.action, device: entry.device },
        'audit trail unavailable: records of actions taken are kept in memory until it is back');
    }
    this.report();
    this.schedule();
  }

  /** Records waiting for the trail. */
  get pending(): number {
    return this.queue.length;
  }

  /** Tries the waiting records now, oldest first (also every `retryMs`, and when the journal reopens). */
  flush(): void {
    const before = this.queue.length;
    while (this.queue.length > 0 && this.tryAppend(this.queue[0])) this.queue.shift();
    if (before > 0 && this.queue.length === 0) {
      this.opts.logger.info({ records: before }, 'audit trail back: the records kept in memory are written');
    }
    if (before !== this.queue.length) this.report();
    if (this.queue.length > 0) this.schedule();
  }

  registerMetrics(registry: Registry): void {
    gauge(registry, {
      name: 'msc_audit_pending_records', help: 'Audit records of actions taken, waiting for the audit trail to be writable.',
      read: () => this.queue.length,
    });
    counter(registry, { name: 'msc_audit_deferred_total', help: 'Audit records that had to wait for the audit trail.', read: () => this.deferred });
  }

  /** A last try; whatever is still waiting goes to the log, record by record. */
  stop(): void {
    (this.opts.clock ?? systemClock).clearTimeout(this.timer);
    this.timer = null;
    this.flush();
    (this.opts.clock ?? systemClock).clearTimeout(this.timer);
    this.timer = null;
    for (const entry of this.queue) {
      this.opts.logger.error({ record: entry, err: this.lastError }, 'audit record NOT written (trail unavailable at stop)');
    }
  }

  private tryAppend(entry: AuditEntry): boolean {
    try {
      this.opts.sink.append(entry);
      this.lastError = null;
      return true;
    } catch (err) {
      if (err instanceof RangeError) return this.appendTooLarge(entry, err);
      this.lastError = err instanceof Error ? err.message : String(err);
      return false;
    }
  }

  /** The detail is over the trail's limit: the record goes in without it, saying so. */
  private appendTooLarge(entry: AuditEntry, err: RangeError): boolean {
    try {
      this.opts.sink.append({ ...entry, detail: { detailRefused: err.message } });
      return true;
    } catch (again) {
      this.lastError = again instanceof Error ? again.message : String(again);
      return false;
    }
  }

  private report(): void {
    this.opts.onCondition?.(this.queue.length === 0 ? null
      : `${this.queue.length} audit record(s) of actions taken wait for the audit trail: ${this.lastError ?? 'unavailable'}`);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = (this.opts.clock ?? systemClock).setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.opts.retryMs ?? 1_000);
  }
}
