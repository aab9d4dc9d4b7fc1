/**
 * The alarm book: every alarm instance (one per condition per device, however many sources report it) and
 * its ISA-18.2 / IEC 62682 state: NORMAL → UNACK → ACKED → NORMAL; a latching alarm that clears unacknowledged
 * goes to RTN_UNACK until acknowledged; SHELVED, SUPPRESSED (by state design), OUT_OF_SERVICE. Every transition
 * is emitted with who, when and why. Audio pause per device (IEC 60601-1-8). Pure: time is injected.
 */
import type { BusEvents } from '../bus.js';
import type { Registry } from '../metrics.js';
import { AlarmRate } from './alarmRate.js';
import { RANK_PRIORITY, rank, type TechnicalConfig } from './ruleSchema.js';
import type { PersistedAlarms, PersistedInstance } from './store.js';
import type {
  ActionError, ActionResult, Actor, AlarmInstance, AlarmListFilter, AlarmPriority, AlarmSource, AlarmState,
  AlarmTransition, AlarmTransitionKind, AudioPauseResult,
} from './types.js';

export type { ActionError, ActionResult, AlarmListFilter, AudioPauseResult } from './types.js';

/** One source's view of one condition: raised at a priority, or cleared (priority null). */
export interface ConditionReport {
  device: string;
  rule: string;
  source: AlarmSource;
  priority: AlarmPriority | null;
  latching: boolean;
  value: number | string | null;
  limit: number | string | null;
  message: string;
  sessionId: string | null;
  reannunciateS: number | null;
  escalateAfterS: number | null;
  reason?: string | null;
}

/** An instance and what its state machine needs; persisted as is. */
type Entry = PersistedInstance;

interface AudioPause { until: number; maxRank: number; actor: Actor | null }

export interface AlarmBookOptions {
  now: () => number;
  technical: TechnicalConfig;
  emit: (t: AlarmTransition) => void;
  audio: (e: BusEvents['audioPause']) => void;
  /** Something worth persisting changed. */
  changed: () => void;
}

const STATE_ORDER: Record<AlarmState, number> = {
  UNACK: 0, RTN_UNACK: 1, ACKED: 2, SHELVED: 3, SUPPRESSED: 4, OUT_OF_SERVICE: 5, NORMAL: 6,
};
const ANNUNCIATED: ReadonlySet<AlarmState> = new Set(['UNACK', 'ACKED', 'RTN_UNACK']);

const fail = (error: ActionError, message: string) => ({ ok: false as const, error, message });

export class AlarmBook {
  private readonly entries = new Map<string, Entry>();
  /**
   * The same entries by device: the live stream's snapshot asks for one device's alarms at a time, and a scan of
   * every entry per device made a snapshot of a large fleet quadratic (seconds of a blocked event loop).
   */
  private readonly byDevice = new Map<string, Map<string, Entry>>();
  private readonly pauses = new Map<string, AudioPause>();
  private readonly rate: AlarmRate;

  constructor(private readonly opts: AlarmBookOptions) {
    this.rate = new AlarmRate(opts.technical.flood);
  }

  report(r: ConditionReport): void {
    const id = `${r.device}:${r.rule}`;
    let e = this.entries.get(id);
    const newRank = r.priority === null ? 0 : rank(r.priority);
    if (!e) {
      if (newRank === 0) return;
      e = this.create(id, r);
    }
    const wasActive = active(e);
    e.ranks[r.source] = newRank;
    if (newRank > 0) {
      e.alarm.latching ||= r.latching;
      if (r.reannunciateS !== null) e.reannunciateMs = r.reannunciateS * 1000;
      if (r.escalateAfterS !== null) e.escalateAfterMs = r.escalateAfterS * 1000;
    }
    const isActive = active(e);
    e.alarm.sources = sourcesOf(e);
    if (!wasActive && isActive) this.raise(e, r);
    else if (wasActive && !isActive) this.clear(e, r.reason ?? 'condition cleared');
    else if (isActive && maxRank(e) > rank(e.alarm.priority)) this.worsen(e, r);
  }

  /** Current rank (0 none, 1 LOW … 3 HIGH) of one source of an instance. */
  sourceRank(id: string, source: AlarmSource): number {
    return this.entries.get(id)?.ranks[source] ?? 0;
  }

  /** The process rule is not evaluated in the device's state: ISA-18.2 suppression by design. */
  suppress(id: string, reason: string): void {
    const e = this.entries.get(id);
    if (!e || e.ranks.process === 0) return;
    e.ranks.process = 0;
    e.alarm.sources = sourcesOf(e);
    if (active(e)) return;
    const a = e.alarm;
    // IEC 60601-1-8 latching: an unacknowledged latched alarm stays visible whatever the state.
    if (a.state === 'UNACK' && a.latching) return this.clear(e, reason);
    if (a.state === 'UNACK' || a.state === 'ACKED') {
      a.active = false;
      return this.move(e, 'suppress', 'SUPPRESSED', null, reason);
    }
    a.active = false;
    a.clearedAt = this.opts.now();
    this.move(e, 'clear', a.state, null, reason);
  }

  unsuppress(id: string, reason: string): void {
    const e = this.entries.get(id);
    if (e?.alarm.state === 'SUPPRESSED' && !active(e)) this.move(e, 'unsuppress', 'NORMAL', null, reason);
  }

  ack(id: string, actor: Actor, reason: string | null = null): ActionResult {
    const e = this.entries.get(id);
    if (!e) return fail('not_found', `no alarm ${id}`);
    const a = e.alarm;
    if (a.state !== 'UNACK' && a.state !== 'RTN_UNACK') return fail('invalid_transition', `cannot acknowledge an alarm in state ${a.state}`);
    a.ackedBy = actor.user;
    a.ackedAt = this.opts.now();
    this.move(e, 'ack', a.state === 'UNACK' && a.active ? 'ACKED' : 'NORMAL', actor, reason);
    return { ok: true, alarm: { ...a } };
  }

  shelve(id: string, minutes: number, reason: string, actor: Actor): ActionResult {
    const e = this.entries.get(id);
    if (!e) return fail('not_found', `no alarm ${id}`);
    const max = this.opts.technical.maxShelveMinutes;
    if (!Number.isFinite(minutes) || minutes <= 0 || minutes > max) return fail('invalid_argument', `minutes must be > 0 and ≤ ${max}`);
    if (typeof reason !== 'string' || reason.trim() === '') return fail('invalid_argument', 'a reason is required to shelve an alarm');
    const a = e.alarm;
    if (!(a.state === 'NORMAL' || ANNUNCIATED.has(a.state))) return fail('invalid_transition', `cannot shelve an alarm in state ${a.state}`);
    a.shelvedUntil = this.opts.now() + minutes * 60_000;
    a.shelvedBy = actor.user;
    a.shelveReason = reason.trim();
    this.move(e, 'shelve', 'SHELVED', actor, reason.trim());
    return { ok: true, alarm: { ...a } };
  }

  unshelve(id: string, actor: Actor | null, reason: string | null = null): ActionResult {
    const e = this.entries.get(id);
    if (!e) return fail('not_found', `no alarm ${id}`);
    if (e.alarm.state !== 'SHELVED') return fail('invalid_transition', `alarm ${id} is not shelved (${e.alarm.state})`);
    e.alarm.shelvedUntil = null;
    this.restoreAnnunciation(e, 'unshelve', actor, reason);
    return { ok: true, alarm: { ...e.alarm } };
  }

  outOfService(id: string, reason: string, actor: Actor): ActionResult {
    const e = this.entries.get(id);
    if (!e) return fail('not_found', `no alarm ${id}`);
    if (typeof reason !== 'string' || reason.trim() === '') return fail('invalid_argument', 'a reason is required');
    if (e.alarm.state === 'OUT_OF_SERVICE') return fail('invalid_transition', `alarm ${id} is already out of service`);
    e.alarm.shelvedUntil = null;
    e.alarm.outOfServiceBy = actor.user;
    e.alarm.outOfServiceReason = reason.trim();
    this.move(e, 'out_of_service', 'OUT_OF_SERVICE', actor, reason.trim());
    return { ok: true, alarm: { ...e.alarm } };
  }

  returnToService(id: string, actor: Actor, reason: string | null = null): ActionResult {
    const e = this.entries.get(id);
    if (!e) return fail('not_found', `no alarm ${id}`);
    if (e.alarm.state !== 'OUT_OF_SERVICE') return fail('invalid_transition', `alarm ${id} is not out of service`);
    e.alarm.outOfServiceBy = null;
    e.alarm.outOfServiceReason = null;
    this.restoreAnnunciation(e, 'return_to_service', actor, reason);
    return { ok: true, alarm: { ...e.alarm } };
  }

  /**
   * IEC 60601-1-8 AUDIO PAUSED for one device. It ends by itself, or breaks through when an alarm of a higher
   * priority than the highest annunciated at pause time is raised (an escalation counts as raised).
   */
  audioPause(deviceId: string, actor: Actor): AudioPauseResult {
    let maxRank = 0;
    for (const e of this.entries.values()) {
      if (e.alarm.device === deviceId && ANNUNCIATED.has(e.alarm.state)) maxRank = Math.max(maxRank, rank(e.alarm.priority));
    }
    const until = this.opts.now() + this.opts.technical.audioPauseS * 1000;
    this.pauses.set(deviceId, { until, maxRank, actor });
    this.opts.audio({ deviceId, until, actor });
    this.opts.changed();
    return { ok: true, deviceId, until };
  }

  audioPauseOf(deviceId: string): { until: number; actor: Actor | null } | null {
    const p = this.pauses.get(deviceId);
    return p ? { until: p.until, actor: p.actor } : null;
  }

  /** Shelf expiry, escalation, re-annunciation and audio-pause expiry, on gateway time. */
  tick(): void {
    const now = this.opts.now();
    for (const e of this.entries.values()) {
      const a = e.alarm;
      if (a.state === 'SHELVED' && a.shelvedUntil !== null && now >= a.shelvedUntil) {
        a.shelvedUntil = null;
        this.restoreAnnunciation(e, 'unshelve', null, 'shelf expired');
      } else if (a.state === 'UNACK' && a.active && e.escalateAfterMs !== null && e.unackSince !== null
        && now - e.unackSince >= e.escalateAfterMs && rank(a.priority) < 3) {
        a.priority = RANK_PRIORITY[rank(a.priority) + 1] as AlarmPriority;
        this.toUnack(e, 'escalate', null, `unacknowledged for ${Math.round(e.escalateAfterMs / 1000)} s`);
      } else if (a.state === 'ACKED' && a.active && e.reannunciateMs !== null && a.ackedAt !== null
        && now - a.ackedAt >= e.reannunciateMs) {
        this.toUnack(e, 'reannunciate', null, `still present ${Math.round(e.reannunciateMs / 1000)} s after acknowledgement`);
      }
    }
    for (const [deviceId, p] of this.pauses) if (now >= p.until) this.endPause(deviceId);
  }

  get(id: string): AlarmInstance | undefined {
    const e = this.entries.get(id);
    return e ? { ...e.alarm } : undefined;
  }

  list(filter: AlarmListFilter = {}): AlarmInstance[] {
    const out: AlarmInstance[] = [];
    const scope = filter.device !== undefined ? this.byDevice.get(filter.device)?.values() ?? [] : this.entries.values();
    for (const e of scope) {
      const a = e.alarm;
      if (filter.device !== undefined && a.device !== filter.device) continue;
      if ((filter.state ?? 'active') === 'active' && a.state === 'NORMAL') continue;
      out.push({ ...a });
    }
    return out.sort((x, y) => rank(y.priority) - rank(x.priority) || STATE_ORDER[x.state] - STATE_ORDER[y.state]
      || (y.raisedAt ?? 0) - (x.raisedAt ?? 0) || x.id.localeCompare(y.id));
  }

  /** Ids of the instances of one device (for state design and rule changes). */
  idsOf(deviceId: string): string[] {
    return [...this.byDevice.get(deviceId)?.keys() ?? []];
  }

  /**
   * A console forgotten (silent outside a session, or refused): its alarms are closed, not kept. Each instance
   * not yet NORMAL goes there with a `reset` transition naming the reason (journaled and forwarded like every
   * transition), then every instance, its audio pause and its alarm-rate history are dropped.
   */
  forgetDevice(deviceId: string, reason: string): number {
    const own = this.byDevice.get(deviceId);
    let closed = 0;
    for (const e of own?.values() ?? []) {
      if (e.alarm.state !== 'NORMAL' || e.alarm.active) {
        e.alarm.active = false;
        e.alarm.clearedAt ??= this.opts.now();
        e.ranks = { device: 0, process: 0, technical: 0 };
        this.move(e, 'reset', 'NORMAL', null, reason);
        closed += 1;
      }
      this.entries.delete(e.alarm.id);
    }
    this.byDevice.delete(deviceId);
    if (this.pauses.delete(deviceId)) this.opts.audio({ deviceId, until: null, actor: null });
    this.rate.forget(deviceId);
    this.opts.changed();
    return closed;
  }

  devices(): Set<string> {
    const out = new Set<string>(this.rate.devices());
    for (const e of this.entries.values()) out.add(e.alarm.device);
    return out;
  }

  /** Alarm rate and flood per device (ISA-18.2), and instances not NORMAL; `devices` adds consoles without alarms. */
  registerMetrics(registry: Registry, devices: () => Iterable<string>): void {
    this.rate.registerMetrics(registry, {
      devices: () => [...devices(), ...this.devices()], instances: () => this.entries.values(), now: () => this.opts.now(),
    });
  }

  /** What survives a restart: every instance not NORMAL, and running audio pauses. */
  snapshot(): PersistedAlarms {
    const instances = [...this.entries.values()].filter((e) => e.alarm.state !== 'NORMAL').map(copyEntry);
    const audioPauses = [...this.pauses].map(([deviceId, p]) => ({ deviceId, ...p }));
    return { version: 1, savedAt: this.opts.now(), instances, audioPauses };
  }

  restore(p: PersistedAlarms): void {
    for (const i of p.instances) this.put(copyEntry(i));
    const now = this.opts.now();
    for (const a of p.audioPauses) if (a.until > now) this.pauses.set(a.deviceId, { until: a.until, maxRank: a.maxRank, actor: a.actor });
  }

  private create(id: string, r: ConditionReport): Entry {
    const e: Entry = {
      alarm: {
        id, device: r.device, rule: r.rule, source: r.source, priority: r.priority ?? 'LOW', state: 'NORMAL',
        active: false, latching: r.latching, raisedAt: null, clearedAt: null, value: null, limit: null,
        message: r.message, ackedBy: null, ackedAt: null, shelvedUntil: null, sessionId: r.sessionId, sources: [],
      },
      ranks: { device: 0, process: 0, technical: 0 },
      reannunciateMs: null, escalateAfterMs: null, unackSince: null,
    };
    this.put(e);
    return e;
  }

  /** Entries are only ever added (an instance goes back to NORMAL, it is never removed). */
  private put(e: Entry): void {
    this.entries.set(e.alarm.id, e);
    let own = this.byDevice.get(e.alarm.device);
    if (!own) this.byDevice.set(e.alarm.device, (own = new Map()));
    own.set(e.alarm.id, e);
  }

  private raise(e: Entry, r: ConditionReport): void {
    const a = e.alarm;
    const now = this.opts.now();
    a.priority = RANK_PRIORITY[Math.max(e.ranks.device, e.ranks.process, e.ranks.technical)] as AlarmPriority;
    a.active = true;
    a.source = r.source;
    a.raisedAt = now;
    a.clearedAt = null;
    a.value = r.value;
    a.limit = r.limit;
    a.message = r.message;
    a.sessionId = r.sessionId;
    if (a.state === 'SHELVED' || a.state === 'OUT_OF_SERVICE') return this.move(e, 'raise', a.state, null, r.reason ?? null);
    this.rate.record(a.device, now);
    this.toUnack(e, 'raise', null, r.reason ?? null);
  }

  /** A higher priority while active (a level crossed, the device re-raised higher): never downgraded. */
  private worsen(e: Entry, r: ConditionReport): void {
    const a = e.alarm;
    a.priority = RANK_PRIORITY[maxRank(e)] as AlarmPriority;
    a.value = r.value;
    a.limit = r.limit;
    a.message = r.message;
    if (a.state === 'UNACK' || a.state === 'ACKED') return this.toUnack(e, 'escalate', null, r.reason ?? 'condition worsened');
    this.move(e, 'escalate', a.state, null, r.reason ?? 'condition worsened');
  }

  private clear(e: Entry, reason: string): void {
    const a = e.alarm;
    a.active = false;
    a.clearedAt = this.opts.now();
    const to: AlarmState = a.state === 'UNACK' ? (a.latching ? 'RTN_UNACK' : 'NORMAL') : a.state === 'ACKED' ? 'NORMAL' : a.state;
    this.move(e, 'clear', to, null, reason);
  }

  private restoreAnnunciation(e: Entry, kind: AlarmTransitionKind, actor: Actor | null, reason: string | null): void {
    if (e.alarm.active) this.toUnack(e, kind, actor, reason);
    else this.move(e, kind, 'NORMAL', actor, reason);
  }

  private toUnack(e: Entry, kind: AlarmTransitionKind, actor: Actor | null, reason: string | null): void {
    const a = e.alarm;
    a.ackedBy = null;
    a.ackedAt = null;
    e.unackSince = this.opts.now();
    this.move(e, kind, 'UNACK', actor, reason);
    const p = this.pauses.get(a.device);
    if (p && rank(a.priority) > p.maxRank) this.endPause(a.device);
  }

  private endPause(deviceId: string): void {
    this.pauses.delete(deviceId);
    this.opts.audio({ deviceId, until: null, actor: null });
    this.opts.changed();
  }

  private move(e: Entry, kind: AlarmTransitionKind, to: AlarmState, actor: Actor | null, reason: string | null): void {
    const from = e.alarm.state;
    e.alarm.state = to;
    if (to === 'NORMAL') e.unackSince = null;
    this.opts.emit({ kind, at: this.opts.now(), from, to, alarm: { ...e.alarm }, actor, reason });
    this.opts.changed();
  }
}

function active(e: Entry): boolean {
  return e.ranks.device > 0 || e.ranks.process > 0 || e.ranks.technical > 0;
}

function maxRank(e: Entry): number {
  return Math.max(e.ranks.device, e.ranks.process, e.ranks.technical, e.alarm.active ? rank(e.alarm.priority) : 0);
}

function sourcesOf(e: Entry): AlarmSource[] {
  const out: AlarmSource[] = [];
  if (e.ranks.device > 0) out.push('device');
  if (e.ranks.process > 0) out.push('process');
  if (e.ranks.technical > 0) out.push('technical');
  return out;
}

function copyEntry(e: Entry): Entry {
  return { ...e, alarm: { ...e.alarm, sources: [...(e.alarm.sources ?? [])] }, ranks: { ...e.ranks } };
}
