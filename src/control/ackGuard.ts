/**
 * ACKs that no honest console sends: an answer to a cmd_id the gateway did not send to that console (or no
 * longer remembers), and a second answer that contradicts the first (ICD §1: a repeated cmd_id is answered with
 * the FIRST result, so a different result for the same id is not the console retrying). Over MQTT anyone who may
 * publish on `<prefix>/<id>/ack` can send them; they are a security event, not noise.
 *
 * Each one is counted (metric, always). The log line and the audit record are throttled per console and kind
 * in windows of one minute, because a flood must not flood the log or grow the audit trail without bound:
 * the first event of a kind in a window is recorded at once, the rest of the window is folded into one summary
 * record (with its count) when the window ends, and a window that saw events is followed by another. A
 * gateway-wide budget caps the records of all consoles together per window (events held back by it stay
 * counted and go into a later summary). The console gets the technical alarm ACK_UNEXPECTED (MEDIUM) when its
 * first window opens; it clears when a whole window passes without one.
 */
import type { AuditSink } from '../audit/auditLog.js';
import type { Logger } from '../log.js';
import { counter, type Registry } from '../metrics.js';
import type { AckResult } from '../protocol/types.js';
import type { Clock } from '../util/clock.js';

export type UnexpectedKind = 'unknown' | 'conflict';
const KINDS: readonly UnexpectedKind[] = ['unknown', 'conflict'];

/** One unexpected ACK, as the command service classified it. */
export interface UnexpectedAck {
  deviceId: string;
  kind: UnexpectedKind;
  cmdId: string;
  result: AckResult;
  detail: string;
  /** conflict: the command and the answer that came first. */
  command?: { verb: string; first: AckResult };
}

/** The alarm engine's `setExternalCondition` fits. */
export interface AckCondition {
  device: string;
  rule: 'ACK_UNEXPECTED';
  active: boolean;
  priority: 'MEDIUM';
  message: string;
}

export interface AckGuardOptions {
  audit: AuditSink;
  logger: Logger;
  now: () => number;
  clock: Clock;
  onCondition?: (c: AckCondition) => void;
  sessionOf: (deviceId: string) => string | null;
  /** The throttle window and the alarm's quiet time. */
  windowMs?: number;
  /** Log lines and audit records of all consoles together per window. */
  maxRecordsPerWindow?: number;
}

interface Window {
  timer: unknown;
  /** Kinds already recorded in this window: later ones of that kind wait for the summary. */
  recorded: Set<UnexpectedKind>;
  /** Events not yet in a record, and the last of them as a sample. */
  held: Record<UnexpectedKind, number>;
  sample: Partial<Record<UnexpectedKind, UnexpectedAck>>;
  /** Events of any kind since this window opened. */
  events: number;
}

/** The audit trail's actor for what the gateway itself observed. */
const GATEWAY_ACTOR = { user: 'gateway', role: 'system' } as const;
/** Anyone can put text in a forged ACK: the record keeps enough of it to read, not all of it. */
const MAX_REPLY = 200;
const AUDIT_ACTION: Record<UnexpectedKind, string> = { unknown: 'command.ack_unknown', conflict: 'command.ack_conflict' };

export class AckGuard {
  private readonly totals = new Map<string, Record<UnexpectedKind, number>>();
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly budget: number;
  private budgetLeft: number;
  private budgetResetAt = -Infinity;

  constructor(private readonly opts: AckGuardOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.budget = opts.maxRecordsPerWindow ?? 20;
    this.budgetLeft = this.budget;
  }

  report(e: UnexpectedAck): void {
    let total = this.totals.get(e.deviceId);
    if (!total) this.totals.set(e.deviceId, (total = { unknown: 0, conflict: 0 }));
    total[e.kind]++;
    let w = this.windows.get(e.deviceId);
    if (!w) {
      w = { timer: null, recorded: new Set(), held: { unknown: 0, conflict: 0 }, sample: {}, events: 0 };
      this.windows.set(e.deviceId, w);
      w.timer = this.opts.clock.setTimeout(() => this.endWindow(e.deviceId), this.windowMs);
      this.opts.onCondition?.({
        device: e.deviceId, rule: 'ACK_UNEXPECTED', active: true, priority: 'MEDIUM', message: alarmMessage(e),
      });
    }
    w.events++;
    w.held[e.kind]++;
    w.sample[e.kind] = e;
    if (!w.recorded.has(e.kind) && this.record(e.deviceId, e.kind, w.held[e.kind], e, null)) {
      w.recorded.add(e.kind);
      w.held[e.kind] = 0;
    }
  }

  /**
   * Writes what is held back (so a stop loses no count), ends the windows and clears their alarms: nothing would
   * clear a restored one after a restart. A cleared alarm nobody acknowledged stays listed until someone does.
   */
  stop(): void {
    for (const [deviceId, w] of this.windows) {
      this.opts.clock.clearTimeout(w.timer);
      this.flush(deviceId, w);
      this.clearAlarm(deviceId, 'the gateway stopped watching');
    }
    this.windows.clear();
  }

  registerMetrics(registry: Registry): void {
    counter(registry, {
      name: 'msc_ack_unexpected_total',
      help: 'ACKs for a cmd_id the gateway did not send to that console (unknown), or contradicting the first answer (conflict).',
      labelNames: ['device', 'kind'],
      read: () => [...this.totals].flatMap(([device, t]) => KINDS.map((kind) => [{ device, kind }, t[kind]] as const)),
    });
  }

  private endWindow(deviceId: string): void {
    const w = this.windows.get(deviceId);
    if (!w) return;
    this.flush(deviceId, w);
    if (w.events > 0 || w.held.unknown + w.held.conflict > 0) {
      // Still going (or records held back by the budget): another window, summaries only.
      w.events = 0;
      w.recorded = new Set(KINDS);
      w.timer = this.opts.clock.setTimeout(() => this.endWindow(deviceId), this.windowMs);
      return;
    }
    this.windows.delete(deviceId);
    this.clearAlarm(deviceId, `no unexpected ACK for ${Math.round(this.windowMs / 1000)} s`);
  }

  private clearAlarm(deviceId: string, why: string): void {
    this.opts.onCondition?.({ device: deviceId, rule: 'ACK_UNEXPECTED', active: false, priority: 'MEDIUM', message: `${deviceId}: ${why}` });
  }

  private flush(deviceId: string, w: Window): void {
    for (const kind of KINDS) {
      const sample = w.sample[kind];
      if (w.held[kind] > 0 && sample && this.record(deviceId, kind, w.held[kind], sample, this.windowMs)) w.held[kind] = 0;
    }
  }

  /** One log line and one audit record for `count` events; false when the gateway-wide budget is spent. */
  private record(deviceId: string, kind: UnexpectedKind, count: number, sample: UnexpectedAck, windowMs: number | null): boolean {
    const now = this.opts.now();
    if (now >= this.budgetResetAt) {
      this.budgetResetAt = now + this.windowMs;
      this.budgetLeft = this.budget;
    }
    if (this.budgetLeft <= 0) return false;
    this.budgetLeft--;
    const detail = {
      count, windowS: windowMs === null ? null : Math.round(windowMs / 1000),
      sample: { cmdId: sample.cmdId, result: sample.result, reply: sample.detail.slice(0, MAX_REPLY), ...(sample.command ? { verb: sample.command.verb, first: sample.command.first } : {}) },
    };
    this.opts.logger.warn({ device: deviceId, kind, ...detail },
      kind === 'unknown' ? 'ACK for a cmd_id the gateway did not send to this console' : 'ACK contradicting the first answer to a command');
    try {
      this.opts.audit.append({
        ...GATEWAY_ACTOR, device: deviceId, session: this.opts.sessionOf(deviceId), action: AUDIT_ACTION[kind], outcome: kind, detail,
      });
    } catch (err) {
      this.opts.logger.error({ err, action: AUDIT_ACTION[kind], device: deviceId }, 'audit append failed');
    }
    return true;
  }
}

function alarmMessage(e: UnexpectedAck): string {
  if (e.kind === 'conflict' && e.command) {
    return `Conflicting answers from ${e.deviceId} to ${e.command.verb} (cmd_id ${e.cmdId}): ${e.command.first} then ${e.result}; verify the console's state`;
  }
  return `ACK from ${e.deviceId} for cmd_id ${e.cmdId}, which the gateway did not send: someone else may be answering as the console; verify its state`;
}
