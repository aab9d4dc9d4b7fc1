/**
 * Records every human alarm action in the audit trail: acknowledge, shelve, unshelve,
 * out-of-service, return-to-service and audio pause. The alarm engine announces each transition on the bus
 * with its actor; a transition without an actor is the engine's own doing (raise, clear, escalate) and is
 * journalled as alarm history, not audited as a user action.
 * Limit and rule changes carry old value, new value and reason and are appended directly by the part that
 * makes them (AuditSink), because the bus does not carry them.
 */
import type { EventBus } from '../bus.js';
import type { Logger } from '../log.js';
import type { AuditSink } from './auditLog.js';

export interface BusAuditorOptions {
  bus: EventBus;
  audit: AuditSink;
  /** The acknowledgement or pause already took effect: the gateway's PendingAudit keeps its record until written. */
  afterAction?: (entry: Parameters<AuditSink['append']>[0]) => void;
  logger: Logger;
  /** Current session of a device, for records whose event does not carry it. */
  sessionOf?: (deviceId: string) => string | null;
}

export class BusAuditor {
  private started = false;

  constructor(private readonly opts: BusAuditorOptions) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    const { bus } = this.opts;
    bus.on(this, 'alarm', (tr) => {
      if (!tr.actor) return;
      this.append({
        user: tr.actor.user, role: tr.actor.role, device: tr.alarm.device, session: tr.alarm.sessionId,
        action: `alarm.${tr.kind}`, outcome: tr.to, at: tr.at,
        detail: {
          alarmId: tr.alarm.id, rule: tr.alarm.rule, priority: tr.alarm.priority, from: tr.from, to: tr.to,
          reason: tr.reason, shelvedUntil: tr.alarm.shelvedUntil,
        },
      });
    });
    bus.on(this, 'audioPause', (p) => {
      if (!p.actor) return;
      this.append({
        user: p.actor.user, role: p.actor.role, device: p.deviceId, session: this.opts.sessionOf?.(p.deviceId) ?? null,
        action: 'alarm.audio_pause', outcome: p.until === null ? 'ended' : 'paused', detail: { until: p.until },
      });
    });
  }

  stop(): void {
    this.opts.bus.removeOwner(this);
    this.started = false;
  }

  private append(entry: Parameters<AuditSink['append']>[0]): void {
    if (this.opts.afterAction) return this.opts.afterAction(entry);
    try {
      this.opts.audit.append(entry);
    } catch (err) {
      // A full disk must not take the alarm engine's listener down with it; the failure is loud in the log.
      this.opts.logger.error({ err, action: entry.action, device: entry.device }, 'audit append failed');
    }
  }
}
