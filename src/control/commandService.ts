/**
 * Control commands to a console (ICD §1 "Commands to the device", §2 `cmd`/`ack`).
 * A command is checked against the ICD's limits (with the device's current setpoints) before anything is sent,
 * sent over whichever transport the device is on now, re-sent with the SAME cmd_id when no ACK comes within
 * 500 ms (the device answers a repeated cmd_id with its first result and does not execute it twice, ICD §1),
 * and reported TIMEOUT after 1 + 3 unanswered tries. Every step is in the audit trail.
 * The first ACK decides unless a different answer for the same cmd_id comes within a short settle time after it:
 * then the outcome is `conflict` (someone else may be answering as the console; its state must be checked).
 * ACKs no honest console sends (unknown cmd_id, contradicting answer) go to the AckGuard: counted, logged,
 * audited and alarmed.
 */
import { randomInt } from 'node:crypto';
import type { Actor } from '../alarms/types.js';
import type { EventBus } from '../bus.js';
import { statusOf, type ErrorCode } from '../errors.js';
import type { AuditEntry, AuditSink } from '../audit/auditLog.js';
import type { Logger } from '../log.js';
import { counter, type Registry } from '../metrics.js';
import type { DeviceLink, DeviceSnapshot } from '../model/types.js';
import { checkCommand, type SetpointChannel } from '../protocol/commands.js';
import type { AckFrame, AckResult, Command } from '../protocol/types.js';
import { AckGuard, type AckCondition } from './ackGuard.js';
import { keepAliveClock, type Clock } from '../util/clock.js';

/** `conflict`: the console's answers contradicted each other; its state must be checked at the console. */
export type CommandResult = AckResult | 'TIMEOUT' | 'conflict';
export type RefusalCode = Extract<ErrorCode,
  'malformed' | 'out_of_limits' | 'wrong_state' | 'unknown_device' | 'link_lost' | 'audit_unavailable'>;

export interface CommandRequest {
  verb: string;
  args: unknown[];
  reason?: string | null;
}

/** `ok: true`: the command went out (result says what came back); `ok: false`: nothing was sent. */
export type CommandResponse =
  | { ok: true; cmdId: string; result: CommandResult; detail: string; tries: number }
  | { ok: false; status: number; code: RefusalCode; detail: string };

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
  /** ACK waits, settle time and the AckGuard's window (default: keepAliveClock: a command in flight is work to finish). */
  clock?: Clock;
  /** Overrides clock.now (kept for callers that inject time alone). */
  now?: () => number;
  /** ICD §1: the device answers within 500 ms. */
  ackTimeoutMs?: number;
  /** Re-sends after the first try (up to 3). */
  retries?: number;
  /** How long an answered or timed-out cmd_id is remembered (ICD §1: the device remembers it 60 s). */
  memoryMs?: number;
  /** Refuse (400, nothing sent) a verb the device's last reported state does not accept, instead of sending it. */
  refuseWrongState?: boolean;
  /** How long after the first ACK a contradicting one still makes the outcome `conflict` (the response waits). */
  settleMs?: number;
  /** A uniform integer in [0, max): crypto.randomInt unless a test gives its own. */
  randomInt?: (max: number) => number;
  /** The ACK_UNEXPECTED technical alarm (the alarm engine's setExternalCondition). */
  onCondition?: (c: AckCondition) => void;
  /** AckGuard throttle window (default 1 min) and records per window over all consoles (default 20). */
  unexpectedWindowMs?: number;
  unexpectedRecordsPerWindow?: number;
}

const SETPOINT_KEYS: Record<SetpointChannel, string> = { QB: 'SQB', QP: 'SQP', TR: 'STR', HEP: 'SHEP' };
const AUDIT_ACTION: Record<Exclude<CommandResult, 'TIMEOUT'>, string> = {
  OK: 'command.acknowledged', REJ: 'command.rejected', ERR: 'command.error', conflict: 'command.conflict',
};
/** ICD §1: a cmd_id is 1-8 characters of [A-Za-z0-9]; 8 random ones are 47.6 bits nobody can guess. */
const CMD_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const CMD_ID_LENGTH = 8;
/** Draws before giving up on finding an id not in use: a collision is already a 1 in 2^47 event. */
const CMD_ID_DRAWS = 16;

/**
 * A console answers within 500 ms (ICD §1), an answer forged by someone watching the cmd topic can come first: the
 * console's own answer usually follows within a few ms. 200 ms catches that without making an operator wait long.
 */
const DEFAULT_SETTLE_MS = 200;

/** What ends the wait for an ACK early: the ACK, or stop(). */
type AckOrStop = AckFrame | 'stopped';
interface Pending {
  cmd: Command;
  /** The first answer; a different one (`conflict`) within the settle time makes the outcome `conflict`. */
  first: AckFrame | null;
  conflict: AckFrame | null;
  resolve: (ack: AckOrStop) => void;
  /** Ends the settle time early (a conflict is already known, or stop()). */
  wake: () => void;
}
interface Remembered {
  state: 'answered' | 'timed_out';
  actor: Actor;
  expires: number;
  cmd: Command;
  /** When the outcome was reported, and the answer it reported (null for TIMEOUT until a late ACK). */
  at: number;
  first: AckFrame | null;
  /** Its outcome is already recorded as `conflict`. */
  conflicted: boolean;
}

export class CommandService {
  private readonly pending = new Map<string, Pending>();
  private readonly recent = new Map<string, Remembered>();
  private readonly now: () => number;
  private readonly clock: Clock;
  private readonly guard: AckGuard;
  private stopped = false;
  private readonly counters = {
    requested: 0, refused: 0, sent: 0, retries: 0, OK: 0, REJ: 0, ERR: 0, TIMEOUT: 0, conflict: 0, lateAcks: 0,
  };

  constructor(private readonly opts: CommandServiceOptions) {
    this.clock = opts.clock ?? keepAliveClock;
    this.now = opts.now ?? (() => this.clock.now());
    this.guard = new AckGuard({
      audit: opts.audit, logger: opts.logger, now: this.now, clock: this.clock, onCondition: opts.onCondition,
      sessionOf: (id) => this.sessionOf(id, null), windowMs: opts.unexpectedWindowMs,
      maxRecordsPerWindow: opts.unexpectedRecordsPerWindow,
    });
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
    for (const p of this.pending.values()) {
      p.resolve('stopped');
      p.wake();
    }
    this.pending.clear();
    this.guard.stop();
  }

  async execute(deviceId: string, req: CommandRequest, actor: Actor): Promise<CommandResponse> {
    this.counters.requested++;
    const reason = req.reason?.trim() || null;
    const snap = this.opts.hub.get(deviceId);
    const session = snap?.sessionId ?? null;
    const base = { user: actor.user, role: actor.role, device: deviceId, session };
    const refuse = (code: RefusalCode, detail: string): CommandResponse => {
      this.counters.refused++;
      this.tryAudit({ ...base, action: 'command.requested', outcome: 'refused',
        detail: { verb: req.verb, args: req.args, reason, refusal: code, why: detail } });
      return { ok: false, status: statusOf(code), code, detail };
    };
    if (this.stopped) return refuse('link_lost', 'the gateway is stopping');
    if (!snap) return refuse('unknown_device', `no device ${deviceId}`);

    const setpoints: Partial<Record<SetpointChannel, number | null>> = {};
    for (const [ch, key] of Object.entries(SETPOINT_KEYS) as Array<[SetpointChannel, string]>) {
      const reading = snap.values[key];
      if (reading) setpoints[ch] = reading.v;
    }
    const cmdId = this.nextCmdId(deviceId);
    const raw = { cmdId, verb: req.verb, args: req.args };
    // Limits first, whatever the state (checkCommand reports wrong_state before out_of_limits): an
    // out-of-limit value is never sent.
    const check = checkCommand(raw, { state: null, setpoints });
    if (!check.ok) return refuse(check.code, check.detail);
    // ICD §1 makes the device the judge of its state ("REJ not allowed now"), and
    // docs/security.md, "Control commands", lets it answer out-of-state commands. Safe reading: the gateway's view of the state can be a frame old, and refusing a
    // PAUSE or END on a stale view could hold back an urgent stop, so a command the gateway expects to be
    // refused still goes out and the device's REJ is the answer; the expectation is audited beside it.
    const stateCheck = checkCommand(raw, { state: snap.state, setpoints });
    const expectedRej = !stateCheck.ok && stateCheck.code === 'wrong_state' ? stateCheck.detail : null;
    if (expectedRej && this.opts.refuseWrongState) return refuse('wrong_state', expectedRej);
    const link = this.opts.hub.linkOf(deviceId);
    if (!link || snap.link !== 'connected') {
      return refuse('link_lost', `device ${deviceId} link is ${snap.link}${snap.linkReason ? ` (${snap.linkReason})` : ''}: nothing sent`);
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
      return { ok: false, status: statusOf('audit_unavailable'), code: 'audit_unavailable', detail: 'the audit trail cannot be written; nothing sent' };
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
    const pend: Pending = { cmd, first: null, conflict: null, resolve: resolveAck, wake: () => {} };
    // Registered before the first write: on a loopback link the ACK can arrive before send() resolves.
    this.pending.set(key, pend);
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
          // A forged answer can come first; the console's own one, if different, comes right after it.
          await this.settle(pend);
          const conflict = pend.conflict;
          const result: CommandResult = conflict ? 'conflict' : ack.result;
          const detail = conflict ? conflictText(ack, conflict) : ack.detail;
          this.counters[result]++;
          this.remember(key, { state: 'answered', actor, cmd, first: ack, conflicted: conflict !== null });
          this.tryAudit({ ...base, session: this.sessionOf(deviceId, session), action: AUDIT_ACTION[result], outcome: result,
            detail: {
              cmdId: cmd.cmdId, verb: cmd.verb, args: cmd.args, reply: detail, tries: attempt, latencyMs: this.now() - started,
              ...(conflict ? { answers: answersOf(ack, conflict) } : {}),
            } });
          return { ok: true, cmdId: cmd.cmdId, result, detail, tries: attempt };
        }
      }
      return this.timedOut(deviceId, cmd, actor, session, tries, `no ACK after ${tries} tries of ${waitMs} ms`);
    } finally {
      this.pending.delete(key);
    }
  }

  private timedOut(deviceId: string, cmd: Command, actor: Actor, session: string | null, tries: number, detail: string): CommandResponse {
    this.counters.TIMEOUT++;
    this.remember(`${deviceId}\0${cmd.cmdId}`, { state: 'timed_out', actor, cmd, first: null, conflicted: false });
    this.tryAudit({ user: actor.user, role: actor.role, device: deviceId, session: this.sessionOf(deviceId, session),
      action: 'command.timed_out', outcome: 'TIMEOUT', detail: { cmdId: cmd.cmdId, verb: cmd.verb, args: cmd.args, tries, why: detail } });
    return { ok: true, cmdId: cmd.cmdId, result: 'TIMEOUT', detail, tries };
  }

  private waitAck(acked: Promise<AckOrStop>, ms: number): Promise<AckOrStop | null> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => resolve(null), ms);
      acked.then((ack) => {
        this.clock.clearTimeout(timer);
        resolve(ack);
      });
    });
  }

  /** Resolves settleMs after the first ACK, or at once when a conflict is known or the service stops. */
  private settle(p: Pending): Promise<void> {
    const ms = this.opts.settleMs ?? DEFAULT_SETTLE_MS;
    if (p.conflict || ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(resolve, ms);
      p.wake = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
    });
  }

  private onAck(deviceId: string, ack: AckFrame): void {
    const key = `${deviceId}\0${ack.cmdId}`;
    const p = this.pending.get(key);
    if (p) {
      if (!p.first) {
        p.first = ack;
        p.resolve(ack);
      } else if (ack.result !== p.first.result) {
        this.reportConflict(deviceId, ack, p.cmd, p.first);
        if (!p.conflict) {
          p.conflict = ack;
          p.wake();
        }
      } // else: the same answer again, to a retry (ICD §1)
      return;
    }
    this.prune();
    const seen = this.recent.get(key);
    if (!seen) {
      // Never sent to this console, or so long ago that the console itself no longer remembers it.
      this.guard.report({ deviceId, kind: 'unknown', cmdId: ack.cmdId, result: ack.result, detail: ack.detail });
      return;
    }
    if (seen.state === 'timed_out') {
      // The device did answer after all, after we reported TIMEOUT: the command may have been executed.
      this.counters.lateAcks++;
      seen.state = 'answered';
      seen.first = ack;
      this.opts.logger.warn({ device: deviceId, cmdId: ack.cmdId, result: ack.result }, 'ACK after TIMEOUT');
      this.tryAudit({ user: seen.actor.user, role: seen.actor.role, device: deviceId, session: this.sessionOf(deviceId, null),
        action: 'command.late_ack', outcome: ack.result, detail: { cmdId: ack.cmdId, reply: ack.detail } });
      return;
    }
    if (!seen.first || ack.result === seen.first.result) return; // a repeat answer to a retry
    this.reportConflict(deviceId, ack, seen.cmd, seen.first);
    if (seen.conflicted) return;
    // The outcome was already reported; the audit trail says it is in doubt, once per command.
    seen.conflicted = true;
    this.tryAudit({ user: seen.actor.user, role: seen.actor.role, device: deviceId, session: this.sessionOf(deviceId, null),
      action: 'command.conflict', outcome: 'conflict', detail: {
        cmdId: ack.cmdId, verb: seen.cmd.verb, args: seen.cmd.args, reply: conflictText(seen.first, ack),
        reported: seen.first.result, answers: answersOf(seen.first, ack), afterMs: this.now() - seen.at,
      } });
  }

  private reportConflict(deviceId: string, ack: AckFrame, cmd: Command, first: AckFrame): void {
    this.guard.report({
      deviceId, kind: 'conflict', cmdId: ack.cmdId, result: ack.result, detail: ack.detail,
      command: { verb: cmd.verb, first: first.result },
    });
  }

  /**
   * 8 random characters of [A-Za-z0-9] (ICD §1: 1-8 of them) from a cryptographic source: an id must not be
   * guessable, or whoever can publish on the ack topic answers the command before the console does. Never an
   * id still pending or sent to the same console within the last 60 s: the console would answer with the old
   * result and not execute the new command (ICD §1).
   */
  nextCmdId(deviceId = ''): string {
    const draw = this.opts.randomInt ?? randomInt;
    this.prune();
    for (let i = 0; i < CMD_ID_DRAWS; i++) {
      let id = '';
      for (let k = 0; k < CMD_ID_LENGTH; k++) id += CMD_ID_ALPHABET[draw(CMD_ID_ALPHABET.length)];
      const key = `${deviceId}\0${id}`;
      if (!this.pending.has(key) && !this.recent.has(key)) return id;
    }
    throw new Error(`no unused cmd_id after ${CMD_ID_DRAWS} draws: the random source is broken`);
  }

  private remember(key: string, r: Omit<Remembered, 'expires' | 'at'>): void {
    this.prune();
    this.recent.delete(key);
    const now = this.now();
    this.recent.set(key, { ...r, at: now, expires: now + (this.opts.memoryMs ?? 60_000) });
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

  /** `msc_commands_total`, retries, late ACKs, and the ACK guard's `msc_ack_unexpected_total`. */
  registerMetrics(registry: Registry): void {
    const c = this.counters;
    counter(registry, {
      name: 'msc_commands_total', help: 'Control commands by outcome.', labelNames: ['outcome'],
      read: () => (['refused', 'OK', 'REJ', 'ERR', 'TIMEOUT', 'conflict'] as const).map((outcome) => [{ outcome }, c[outcome]] as const),
    });
    counter(registry, { name: 'msc_command_retries_total', help: 'Re-sends of a command with the same cmd_id.', read: () => c.retries });
    counter(registry, { name: 'msc_command_late_acks_total', help: 'ACKs that came after the command was reported TIMEOUT.', read: () => c.lateAcks });
    this.guard.registerMetrics(registry);
  }
}

function conflictText(first: AckFrame, other: AckFrame): string {
  const say = (a: AckFrame) => (a.detail ? `${a.result} (${a.detail})` : a.result);
  return `conflicting answers from the console: ${say(first)}, then ${say(other)}; verify its state`;
}

function answersOf(first: AckFrame, other: AckFrame): Array<{ result: AckResult; reply: string }> {
  return [first, other].map((a) => ({ result: a.result, reply: a.detail }));
}
