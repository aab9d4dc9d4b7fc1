/**
 * Control commands to a console (issue 5; ICD §1 "Commands to the device", §2 `cmd`/`ack`).
 * A command is checked against the ICD's limits (with the device's current setpoints) before anything is sent,
 * sent over whichever transport the device is on now, re-sent with the SAME cmd_id when no ACK comes within
 * 500 ms (the device answers a repeated cmd_id with its first result and does not execute it twice, ICD §1),
 * and reported TIMEOUT after 1 + 3 unanswered tries. Every step is in the audit trail.
 */
import type { Actor } from '../alarms/types.js';
import type { EventBus } from '../bus.js';
import type { AuditEntry, AuditSink } from '../audit/auditLog.js';
import type { Logger } from '../log.js';
import type { DeviceLink, DeviceSnapshot } from '../model/types.js';
import { checkCommand, type SetpointChannel } from '../protocol/commands.js';
import type { AckFrame, Command } from '../protocol/types.js';

export type CommandResult = 'OK' | 'REJ' | 'ERR' | 'TIMEOUT';
export type RefusalCode =
  | 'malformed' | 'out_of_limits' | 'wrong_state' | 'unknown_device' | 'link_lost' | 'audit_unavailable';

export interface CommandRequest {
  verb: string;
  args: unknown[];
  reason?: string | null;
}

/** `ok: true`: the command went out (result says what came back); `ok: false`: nothing was sent. */
export type CommandResponse =
  | { ok: true; cmdId: string; result: CommandResult; detail: string; tries: number }
  | { ok: false; status: 400 | 404 | 409 | 503; code: RefusalCode; detail: string };

export interface CommandTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface CommandServiceOptions {
  bus: EventBus;
  hub: { get(id: string): DeviceSnapshot | undefined; linkOf(id: string): DeviceLink | undefined };
  audit: AuditSink;
  /**
   * Records of what already happened (sent, answered, timed out, refused): never refuse, never lose (the
   * gateway's PendingAudit). Without it they are appended directly and a failure is logged.
   */
  afterAction?: (entry: AuditEntry) => void;
  logger: Logger;
  now?: () => number;
  timers?: CommandTimers;
  /** ICD §1: the device answers within 500 ms. */
  ackTimeoutMs?: number;
  /** Re-sends after the first try (issue 5: up to 3). */
  retries?: number;
  /** How long an answered or timed-out cmd_id is remembered (ICD §1: the device remembers it 60 s). */
  memoryMs?: number;
  /** Refuse (400, nothing sent) a verb the device's last reported state does not accept, instead of sending it. */
  refuseWrongState?: boolean;
  random?: () => number;
}

const SETPOINT_KEYS: Record<SetpointChannel, string> = { QB: 'SQB', QP: 'SQP', TR: 'STR', HEP: 'SHEP' };
const AUDIT_ACTION: Record<Exclude<CommandResult, 'TIMEOUT'>, string> = {
  OK: 'command.acknowledged', REJ: 'command.rejected', ERR: 'command.error',
};

/** What ends the wait for an ACK early: the ACK, or stop(). */
type AckOrStop = AckFrame | 'stopped';
interface Pending {
  resolve: (ack: AckOrStop) => void;
}
interface Remembered {
  state: 'answered' | 'timed_out';
  actor: Actor;
  expires: number;
}

export class CommandService {
  private readonly pending = new Map<string, Pending>();
  private readonly recent = new Map<string, Remembered>();
  private readonly now: () => number;
  private readonly timers: CommandTimers;
  private counter = 0;
  private prefix: string | null = null;
  private stopped = false;
  private readonly counters = { requested: 0, refused: 0, sent: 0, retries: 0, OK: 0, REJ: 0, ERR: 0, TIMEOUT: 0, lateAcks: 0 };

  constructor(private readonly opts: CommandServiceOptions) {
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    };
  }

  start(): void {
    this.stopped = false;
    this.opts.bus.removeOwner(this);
    this.opts.bus.on(this, 'ack', ({ deviceId, ack }) => this.onAck(deviceId, ack));
  }

  /** Commands still waiting end as TIMEOUT ("gateway stopping"): their outcome is unknown. Safe twice. */
  stop(): void {
    this.stopped = true;
    this.opts.bus.removeOwner(this);
    for (const p of this.pending.values()) p.resolve('stopped');
    this.pending.clear();
  }

  async execute(deviceId: string, req: CommandRequest, actor: Actor): Promise<CommandResponse> {
    this.counters.requested++;
    const reason = req.reason?.trim() || null;
    const snap = this.opts.hub.get(deviceId);
    const session = snap?.sessionId ?? null;
    const base = { user: actor.user, role: actor.role, device: deviceId, session };
    const refuse = (status: 400 | 404 | 409 | 503, code: RefusalCode, detail: string): CommandResponse => {
      this.counters.refused++;
      this.tryAudit({ ...base, action: 'command.requested', outcome: 'refused',
        detail: { verb: req.verb, args: req.args, reason, refusal: code, why: detail } });
      return { ok: false, status, code, detail };
    };
    if (this.stopped) return refuse(409, 'link_lost', 'the gateway is stopping');
    if (!snap) return refuse(404, 'unknown_device', `no device ${deviceId}`);

    const setpoints: Partial<Record<SetpointChannel, number | null>> = {};
    for (const [ch, key] of Object.entries(SETPOINT_KEYS) as Array<[SetpointChannel, string]>) {
      const reading = snap.values[key];
      if (reading) setpoints[ch] = reading.v;
    }
    const cmdId = this.nextCmdId();
    const raw = { cmdId, verb: req.verb, args: req.args };
    // Limits first, whatever the state (checkCommand reports wrong_state before out_of_limits): an
    // out-of-limit value is never sent.
    const check = checkCommand(raw, { state: null, setpoints });
    if (!check.ok) return refuse(400, check.code, check.detail);
    // ICD §1 makes the device the judge of its state ("REJ not allowed now") and issue 5 expects "REJ for
    // out-of-state" from it. Safe reading: the gateway's view of the state can be a frame old, and refusing a
    // PAUSE or END on a stale view could hold back an urgent stop, so a command the gateway expects to be
    // refused still goes out and the device's REJ is the answer; the expectation is audited beside it.
    const stateCheck = checkCommand(raw, { state: snap.state, setpoints });
    const expectedRej = !stateCheck.ok && stateCheck.code === 'wrong_state' ? stateCheck.detail : null;
    if (expectedRej && this.opts.refuseWrongState) return refuse(400, 'wrong_state', expectedRej);
    const link = this.opts.hub.linkOf(deviceId);
    if (!link || snap.link !== 'connected') {
      return refuse(409, 'link_lost', `device ${deviceId} link is ${snap.link}${snap.linkReason ? ` (${snap.linkReason})` : ''}: nothing sent`);
    }

    const cmd = check.cmd;
    const previous = cmd.verb === 'SET' ? setpoints[cmd.args[0] as SetpointChannel] ?? null : undefined;
    try {
      this.opts.audit.append({ ...base, action: 'command.requested', outcome: 'accepted',
        detail: { cmdId, verb: cmd.verb, args: cmd.args, reason, state: snap.state, previous, expectedRej } });
    } catch (err) {
      // Part 11: an action that cannot be recorded is not taken.
      this.opts.logger.error({ err, device: deviceId }, 'audit unavailable; command not sent');
      this.counters.refused++;
      return { ok: false, status: 503, code: 'audit_unavailable', detail: 'the audit trail cannot be written; nothing sent' };
    }
    return this.run(deviceId, cmd, actor, session);
  }

  private async run(deviceId: string, cmd: Command, actor: Actor, session: string | null): Promise<CommandResponse> {
    const key = `${deviceId}\0${cmd.cmdId}`;
    const started = this.now();
    const tries = 1 + (this.opts.retries ?? 3);
    const waitMs = this.opts.ackTimeoutMs ?? 500;
    let resolveAck!: (ack: AckOrStop) => void;
    const acked = new Promise<AckOrStop>((r) => { resolveAck = r; });
    // Registered before the first write: on a loopback link the ACK can arrive before send() resolves.
    this.pending.set(key, { resolve: resolveAck });
    const base = { user: actor.user, role: actor.role, device: deviceId };
    try {
      for (let attempt = 1; attempt <= tries; attempt++) {
        if (attempt > 1) this.counters.retries++;
        const link = this.opts.hub.linkOf(deviceId);
        let sendError: string | null = link ? null : 'device link gone';
        if (link) {
          try {
            await link.send(cmd);
            this.counters.sent++;
          } catch (err) {
            sendError = (err as Error).message;
          }
        }
        this.tryAudit({ ...base, session: this.sessionOf(deviceId, session), action: 'command.sent',
          outcome: sendError ? 'send_failed' : 'sent',
          detail: { cmdId: cmd.cmdId, verb: cmd.verb, try: attempt, transport: link?.kind ?? null, source: link?.source ?? null, error: sendError } });
        const ack = await this.waitAck(acked, waitMs);
        if (ack) {
          if (ack === 'stopped') return this.timedOut(deviceId, cmd, actor, session, attempt, 'gateway stopped before the ACK');
          const result = ack.result;
          this.counters[result]++;
          this.remember(key, 'answered', actor);
          this.tryAudit({ ...base, session: this.sessionOf(deviceId, session), action: AUDIT_ACTION[result], outcome: result,
            detail: { cmdId: cmd.cmdId, verb: cmd.verb, args: cmd.args, reply: ack.detail, tries: attempt, latencyMs: this.now() - started } });
          return { ok: true, cmdId: cmd.cmdId, result, detail: ack.detail, tries: attempt };
        }
      }
      return this.timedOut(deviceId, cmd, actor, session, tries, `no ACK after ${tries} tries of ${waitMs} ms`);
    } finally {
      this.pending.delete(key);
    }
  }

  private timedOut(deviceId: string, cmd: Command, actor: Actor, session: string | null, tries: number, detail: string): CommandResponse {
    this.counters.TIMEOUT++;
    this.remember(`${deviceId}\0${cmd.cmdId}`, 'timed_out', actor);
    this.tryAudit({ user: actor.user, role: actor.role, device: deviceId, session: this.sessionOf(deviceId, session),
      action: 'command.timed_out', outcome: 'TIMEOUT', detail: { cmdId: cmd.cmdId, verb: cmd.verb, args: cmd.args, tries, why: detail } });
    return { ok: true, cmdId: cmd.cmdId, result: 'TIMEOUT', detail, tries };
  }

  private waitAck(acked: Promise<AckOrStop>, ms: number): Promise<AckOrStop | null> {
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => resolve(null), ms);
      acked.then((ack) => {
        this.timers.clearTimeout(timer);
        resolve(ack);
      });
    });
  }

  private onAck(deviceId: string, ack: AckFrame): void {
    const key = `${deviceId}\0${ack.cmdId}`;
    const p = this.pending.get(key);
    if (p) {
      this.pending.delete(key);
      p.resolve(ack);
      return;
    }
    this.prune();
    const seen = this.recent.get(key);
    if (seen?.state !== 'timed_out') return; // a repeat answer to a retry, or not one of ours
    // The device did answer after all, after we reported TIMEOUT: the command may have been executed.
    this.counters.lateAcks++;
    this.recent.set(key, { ...seen, state: 'answered' });
    this.opts.logger.warn({ device: deviceId, cmdId: ack.cmdId, result: ack.result }, 'ACK after TIMEOUT');
    this.tryAudit({ user: seen.actor.user, role: seen.actor.role, device: deviceId, session: this.sessionOf(deviceId, null),
      action: 'command.late_ack', outcome: ack.result, detail: { cmdId: ack.cmdId, reply: ack.detail } });
  }

  /**
   * 8 characters of [0-9a-z] (ICD §1: 1-8 of [A-Za-z0-9]): 3 from the start second (mod 36^3), 1 random,
   * 4 from a counter. Unique within a run; a restart gets a new prefix, so a new command never reuses the
   * cmd_id of one the device still remembers (it would answer with the old result and not execute it).
   */
  nextCmdId(): string {
    if (this.prefix === null) {
      const seconds = Math.floor(this.now() / 1000) % 36 ** 3;
      const rnd = Math.floor((this.opts.random ?? Math.random)() * 36) % 36;
      this.prefix = seconds.toString(36).padStart(3, '0') + rnd.toString(36);
    }
    const n = this.counter++ % 36 ** 4;
    return this.prefix + n.toString(36).padStart(4, '0');
  }

  private remember(key: string, state: Remembered['state'], actor: Actor): void {
    this.prune();
    this.recent.delete(key);
    this.recent.set(key, { state, actor, expires: this.now() + (this.opts.memoryMs ?? 60_000) });
  }

  private prune(): void {
    const now = this.now();
    for (const [k, r] of this.recent) {
      if (r.expires > now) break; // insertion order is expiry order
      this.recent.delete(k);
    }
  }

  private sessionOf(deviceId: string, fallback: string | null): string | null {
    return this.opts.hub.get(deviceId)?.sessionId ?? fallback;
  }

  private tryAudit(entry: AuditEntry): void {
    if (this.opts.afterAction) return this.opts.afterAction(entry);
    try {
      this.opts.audit.append(entry);
    } catch (err) {
      this.opts.logger.error({ err, action: entry.action, device: entry.device }, 'audit append failed');
    }
  }

  metricsText(): string {
    const c = this.counters;
    return [
      '# HELP msc_commands_total Control commands by outcome.', '# TYPE msc_commands_total counter',
      `msc_commands_total{outcome="refused"} ${c.refused}`,
      ...(['OK', 'REJ', 'ERR', 'TIMEOUT'] as const).map((r) => `msc_commands_total{outcome="${r}"} ${c[r]}`),
      '# HELP msc_command_retries_total Re-sends of a command with the same cmd_id.', '# TYPE msc_command_retries_total counter',
      `msc_command_retries_total ${c.retries}`,
      '# HELP msc_command_late_acks_total ACKs that came after the command was reported TIMEOUT.', '# TYPE msc_command_late_acks_total counter',
      `msc_command_late_acks_total ${c.lateAcks}`,
    ].join('\n') + '\n';
  }
}
