/**
 * The alarm engine: wires the bus to the pure evaluator (process alarms and sensor faults), the
 * link monitor (technical alarms) and the alarm book (ISA-18.2 states, operator actions, audio pause), and
 * persists what must survive a restart. Emits bus `alarm` for every transition and `audioPause`.
 */
import type { BusEvents, DeviceEvent, EventBus, StateChange, TelemetrySample } from '../bus.js';
import type { Logger } from '../log.js';
import type { Registry } from '../metrics.js';
import type { DeviceView } from '../model/deviceHub.js';
import type { DevicePriority } from '../protocol/types.js';
import { AlarmBook, type ActionResult, type AlarmListFilter, type AudioPauseResult } from './book.js';
import { compileRules, ruleActiveIn, type CompiledRules } from './compile.js';
import { AlarmEvaluator, SENSOR_FAULT_PREFIX } from './evaluator.js';
import { defaultProfile, rank, resolveRules, type AlarmProfile, type Rule } from './rules.js';
import { MemoryAlarmStore, type AlarmStore, type PersistedAlarms, type PersistedDeviceState } from './store.js';
import { LinkMonitor, type TechnicalCondition } from './technical.js';
import type { Actor, AlarmInstance, AlarmPriority, ConditionChange } from './types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export type { ActionResult, AudioPauseResult, AlarmListFilter } from './book.js';

/** Gateway-wide technical alarms (storage backlog, storage failure, …) use this device id. */
export const GATEWAY_DEVICE = 'gateway';

export interface ExternalCondition {
  device: string;
  rule: string;
  active: boolean;
  priority: AlarmPriority;
  message: string;
  value?: number | string | null;
  limit?: number | string | null;
}

export interface AlarmEngineOptions {
  bus: EventBus;
  devices: DeviceView;
  profile?: AlarmProfile;
  store?: AlarmStore;
  logger?: Logger;
  /** The technical tick (default: systemClock, unref'd); a ManualClock's advance() drives it in tests. */
  clock?: Clock;
  /** Overrides clock.now (kept for callers that inject time alone). */
  now?: () => number;
  /** Technical alarm and timer tick, gateway time. */
  tickMs?: number;
}

const DEVICE_PRIORITY: Record<Exclude<DevicePriority, 'I'>, AlarmPriority> = { H: 'HIGH', M: 'MEDIUM', L: 'LOW' };

export class AlarmEngine {
  private profile: AlarmProfile;
  private readonly now: () => number;
  private readonly clock: Clock;
  private readonly store: AlarmStore;
  private readonly book: AlarmBook;
  private readonly evaluator: AlarmEvaluator;
  private readonly links: LinkMonitor;
  private readonly models = new Map<string, string>();
  private readonly commLossActive = new Set<string>();
  /** Each device's last session state, persisted with the alarms (see evaluator restoredState). */
  private readonly lastStates = new Map<string, PersistedDeviceState>();
  private timer: TimerHandle | null = null;
  private started = false;
  private saveQueued = false;

  constructor(private readonly opts: AlarmEngineOptions) {
    this.profile = opts.profile ?? defaultProfile;
    this.clock = opts.clock ?? systemClock;
    this.now = opts.now ?? (() => this.clock.now());
    this.store = opts.store ?? new MemoryAlarmStore();
    this.book = new AlarmBook({
      now: this.now,
      technical: this.profile.technical,
      emit: (t) => opts.bus.emit('alarm', t),
      audio: (e) => opts.bus.emit('audioPause', e),
      changed: () => this.queueSave(),
    });
    this.evaluator = new AlarmEvaluator({ condition: (c) => this.onCondition(c) }, {
      rulesFor: (id) => this.rulesFor(id),
      restoredRank: (id, rule) => this.book.sourceRank(`${id}:${rule}`, 'process'),
      restoredFaults: (id) => this.book.idsOf(id)
        .filter((aid) => aid.startsWith(`${id}:${SENSOR_FAULT_PREFIX}`) && this.book.sourceRank(aid, 'technical') > 0)
        .map((aid) => aid.slice(id.length + 1 + SENSOR_FAULT_PREFIX.length)),
      restoredState: (id) => this.lastStates.get(id) ?? null,
    });
    this.links = new LinkMonitor(this.profile.technical, this.now);
  }

  /** Restores persisted alarms, subscribes to the bus and starts the 1 s technical tick. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const restored = this.store.load();
    this.book.restore(restored);
    for (const s of restored.deviceStates ?? []) this.lastStates.set(s.deviceId, s);
    if (restored.problem) this.storeProblem(`Alarm state could not be restored: ${restored.problem}`);
    this.store.onWriteError = (msg) => this.storeProblem(msg);
    for (const a of this.book.list()) if (a.rule === 'COMM_LOSS' && a.active) this.knowCommLoss(a.device);

    const bus = this.opts.bus;
    bus.on(this, 'telemetry', (s) => this.onTelemetry(s));
    bus.on(this, 'state', (c) => this.onState(c));
    bus.on(this, 'event', (e) => this.onDeviceEvent(e));
    bus.on(this, 'ack', (a) => this.links.frame(a.deviceId, a.rx, false));
    bus.on(this, 'hello', (h) => this.onHello(h));
    bus.on(this, 'link', (l) => {
      this.links.link(l.deviceId, l.link, l.at, l.reason);
      this.checkCommLoss(l.deviceId);
    });
    bus.on(this, 'forget', (f) => this.forgetDevice(f.deviceId, `console forgotten: ${f.reason}`));
    this.timer = this.clock.setInterval(() => this.tick(), this.opts.tickMs ?? 1000);
  }

  /** Unsubscribes, stops the tick and writes the alarm state. Safe to call twice. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.opts.bus.removeOwner(this);
    this.clock.clearInterval(this.timer);
    this.timer = null;
    this.store.save(this.persisted());
    this.store.flush();
  }

  /** Timers on gateway time: evaluator delays, technical alarms, shelving, escalation, audio pauses. */
  tick(): void {
    const now = this.now();
    this.evaluator.tick(now);
    const snaps = new Map(this.opts.devices.list().map((d) => [d.id, d]));
    for (const id of new Set([...this.links.devices(), ...snaps.keys()])) {
      const snap = snaps.get(id);
      this.applyTechnical(id, this.links.commLoss(id, snap));
      for (const c of this.links.linkQuality(id, snap)) this.applyTechnical(id, c);
    }
    this.book.tick();
  }

  ack(id: string, actor: Actor, reason?: string): ActionResult {
    return this.book.ack(id, actor, reason ?? null);
  }

  shelve(id: string, minutes: number, reason: string, actor: Actor): ActionResult {
    return this.book.shelve(id, minutes, reason, actor);
  }

  unshelve(id: string, actor: Actor, reason?: string): ActionResult {
    return this.book.unshelve(id, actor, reason ?? null);
  }

  outOfService(id: string, reason: string, actor: Actor): ActionResult {
    return this.book.outOfService(id, reason, actor);
  }

  returnToService(id: string, actor: Actor, reason?: string): ActionResult {
    return this.book.returnToService(id, actor, reason ?? null);
  }

  /** IEC 60601-1-8 audio pause for one device (or `gateway`). */
  audioPause(deviceId: string, actor: Actor): AudioPauseResult {
    const known = deviceId === GATEWAY_DEVICE || this.opts.devices.get(deviceId) !== undefined
      || this.book.devices().has(deviceId) || this.links.devices().includes(deviceId);
    if (!known) return { ok: false, error: 'not_found', message: `no device ${deviceId}` };
    return this.book.audioPause(deviceId, actor);
  }

  audioPauseOf(deviceId: string): { until: number; actor: Actor | null } | null {
    return this.book.audioPauseOf(deviceId);
  }

  list(filter: AlarmListFilter = {}): AlarmInstance[] {
    return this.book.list(filter);
  }

  get(id: string): AlarmInstance | undefined {
    return this.book.get(id);
  }

  /** A condition owned by another part (storage backlog, storage failure): source technical. */
  setExternalCondition(c: ExternalCondition): void {
    this.book.report({
      device: c.device, rule: c.rule, source: 'technical', priority: c.active ? c.priority : null, latching: false,
      value: c.value ?? null, limit: c.limit ?? null, message: c.message, sessionId: null,
      reannunciateS: null, escalateAfterS: null,
    });
  }

  /** The profile in force; with a device, the rules that apply to it (its model's and its own patches). */
  currentProfile(): AlarmProfile {
    return this.profile;
  }

  rulesOf(deviceId: string): { model: string | null; rules: Rule[] } {
    const model = this.models.get(deviceId) ?? this.opts.devices.get(deviceId)?.model ?? null;
    return { model, rules: resolveRules(this.profile, deviceId, model) };
  }

  /** Replaces the rules (and model / device patches); technical thresholds stay those given at construction. */
  updateProfile(profile: AlarmProfile): void {
    this.profile = { ...profile, technical: this.profile.technical };
    for (const id of new Set([...this.models.keys(), ...this.links.devices()])) this.reconfigure(id);
  }

  /** Alarm rate and flood per device (ISA-18.2), active alarms. */
  registerMetrics(registry: Registry): void {
    this.book.registerMetrics(registry, () => this.opts.devices.list().map((d) => d.id));
  }

  private onTelemetry(s: TelemetrySample): void {
    this.links.frame(s.deviceId, s.rx, true);
    if (this.commLossActive.size > 0 && this.commLossActive.has(s.deviceId)) this.checkCommLoss(s.deviceId);
    this.evaluator.onTelemetry(s);
  }

  private onState(c: StateChange): void {
    this.lastStates.set(c.deviceId, { deviceId: c.deviceId, state: c.state, sessionId: c.sessionId, at: c.rx });
    this.queueSave();
    this.links.frame(c.deviceId, c.rx, false);
    this.links.state(c.deviceId, c.state, c.rx);
    this.evaluator.onState(c);
    this.applyStateDesign(c.deviceId);
    this.checkCommLoss(c.deviceId);
  }

  private onHello(h: BusEvents['hello']): void {
    this.links.frame(h.deviceId, this.now(), false);
    const before = this.models.get(h.deviceId);
    this.models.set(h.deviceId, h.hello.model);
    if (before !== h.hello.model) this.reconfigure(h.deviceId);
  }

  /** Device alarms pass through with the device's priority, never downgraded; `I` is information only. */
  private onDeviceEvent(e: DeviceEvent): void {
    this.links.frame(e.deviceId, e.rx, false);
    if (e.prio === 'I') {
      this.opts.logger?.info({ device: e.deviceId, code: e.code, active: e.active, text: e.text }, 'device information event');
      return;
    }
    const cfg = this.profile.technical.deviceAlarms;
    // ICD §1 knows H, M, L and I only; anything else (never expected past the codec) is taken as HIGH.
    const priority = DEVICE_PRIORITY[e.prio as keyof typeof DEVICE_PRIORITY] ?? 'HIGH';
    const rule = Object.hasOwn(cfg.codes, e.code) ? cfg.codes[e.code] : `DEV_${e.code}`;
    this.book.report({
      device: e.deviceId, rule, source: 'device',
      priority: e.active ? priority : null, latching: cfg.latching.includes(priority),
      value: e.code, limit: null, message: e.text || e.code, sessionId: e.sessionId,
      reannunciateS: cfg.reannunciateS, escalateAfterS: cfg.escalateAfterS,
      reason: e.active ? `device raised ${e.code}` : `device cleared ${e.code}`,
    });
  }

  private onCondition(c: ConditionChange): void {
    const rule = c.ruleDef;
    this.book.report({
      device: c.deviceId, rule: c.rule, source: c.source, priority: c.priority, latching: c.latching,
      value: c.value, limit: c.limit, message: c.message, sessionId: c.sessionId,
      reannunciateS: rule?.reannunciateS ?? null, escalateAfterS: rule?.escalateAfterS ?? null,
    });
  }

  /** ISA-18.2 suppression by design: a process alarm whose rule is not active in the device's state. */
  private applyStateDesign(deviceId: string): void {
    const state = this.evaluator.stateOf(deviceId);
    if (state === undefined) return; // not evaluated yet: nothing is known about its rules
    for (const id of this.book.idsOf(deviceId)) {
      const ruleId = id.slice(deviceId.length + 1);
      const rule = this.evaluator.rule(deviceId, ruleId);
      const a = this.book.get(id);
      if (!a) continue;
      if (!rule && a.state === 'SUPPRESSED') this.book.unsuppress(id, `${ruleId} is no longer configured for ${deviceId}`);
      if (!rule && this.book.sourceRank(id, 'process') > 0) {
        this.book.report({
          device: deviceId, rule: ruleId, source: 'process', priority: null, latching: a.latching, value: null, limit: null,
          message: a.message, sessionId: a.sessionId, reannunciateS: null, escalateAfterS: null,
          reason: `${ruleId} is no longer configured for ${deviceId}`,
        });
      }
      if (!rule) continue;
      const on = ruleActiveIn(rule, state, this.profile.technical);
      if (!on && this.book.sourceRank(id, 'process') > 0) {
        this.book.suppress(id, `${ruleId} is not evaluated in ${state ?? 'an unknown state'} (suppressed by design)`);
      } else if (on && a.state === 'SUPPRESSED') {
        this.book.unsuppress(id, `${ruleId} is evaluated again in ${state}`);
      }
    }
  }

  private reconfigure(deviceId: string): void {
    this.evaluator.reconfigure(deviceId);
    this.applyStateDesign(deviceId);
  }

  private rulesFor(deviceId: string): CompiledRules {
    return compileRules(this.rulesOf(deviceId).rules, this.profile.technical);
  }

  private checkCommLoss(deviceId: string): void {
    this.applyTechnical(deviceId, this.links.commLoss(deviceId, this.opts.devices.get(deviceId)));
  }

  private knowCommLoss(deviceId: string): void {
    this.links.know(deviceId);
    this.commLossActive.add(deviceId);
  }

  private applyTechnical(deviceId: string, c: TechnicalCondition): void {
    const id = `${deviceId}:${c.rule}`;
    const want = c.priority === null ? 0 : rank(c.priority);
    if (c.rule === 'COMM_LOSS') {
      if (want > 0) this.commLossActive.add(deviceId);
      else this.commLossActive.delete(deviceId);
    }
    if (this.book.sourceRank(id, 'technical') === want) return;
    const reannunciateS = c.rule === 'COMM_LOSS' ? this.profile.technical.commLoss.reannunciateS : null;
    this.book.report({
      device: deviceId, rule: c.rule, source: 'technical', priority: c.priority, latching: false,
      value: c.value, limit: c.limit, message: c.message, sessionId: this.opts.devices.get(deviceId)?.sessionId ?? null,
      reannunciateS, escalateAfterS: null,
    });
  }

  private storeProblem(message: string | null): void {
    this.setExternalCondition({
      device: GATEWAY_DEVICE, rule: 'ALARM_STORE', active: message !== null, priority: 'MEDIUM',
      message: message ?? 'Alarm state is written again',
    });
  }

  private persisted(): PersistedAlarms {
    return { ...this.book.snapshot(), deviceStates: [...this.lastStates.values()] };
  }

  /** One snapshot per burst of transitions; the store debounces the write itself. */
  /** A console forgotten in memory: its alarms are closed (`reset`, with the reason), and its state dropped. */
  forgetDevice(deviceId: string, reason: string): void {
    this.book.forgetDevice(deviceId, reason);
    this.evaluator.forget(deviceId);
    this.links.forget(deviceId);
    this.models.delete(deviceId);
    this.commLossActive.delete(deviceId);
    this.lastStates.delete(deviceId);
    this.queueSave();
  }

  private queueSave(): void {
    if (this.saveQueued || !this.started) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      if (this.started) this.store.save(this.persisted());
    });
  }
}
