/**
 * The alarm rule evaluator: PURE (no I/O, no clock of its own). It turns telemetry and state changes into
 * condition changes (raised at a priority, or cleared), applying on/off delays and deadbands on device time.
 * Timers (delays, state durations) also advance on `tick(nowGateway)`, extrapolating each device's
 * clock from its last frame. It knows nothing of acknowledgement, shelving or persistence: see AlarmBook.
 *
 * Sensor faults (ICD §1 `!`, MQTT null) and missing channels are never normal: a limit rule on such a channel
 * holds its previous condition, and the technical alarm SENSOR_FAULT_<CH> (one per channel) reports it.
 */
import type { StateChange, TelemetrySample } from '../bus.js';
import type { SessionState } from '../protocol/types.js';
import type { ConditionSink } from './types.js';
import {
  K_DETECTOR, K_DEVIATION, K_HIGH, K_LOW, K_RISE, K_STATE_DURATION, stateBit, stateMask, type CompiledRules,
} from './compile.js';
import { DeviceEval } from './deviceEval.js';
import { RANK_PRIORITY, type Rule } from './ruleSchema.js';
import { SensorFaults } from './sensorFaults.js';

export { SENSOR_FAULT_PREFIX } from './sensorFaults.js';
export type { ConditionChange, ConditionSink } from './types.js';

export interface EvaluatorHooks {
  /** Resolved rules for a device (by its model); called when the device is first seen or reconfigured. */
  rulesFor(deviceId: string): CompiledRules;
  /** After a restart: the rank (1 LOW … 3 HIGH) a process alarm already stands at, 0 for none. */
  restoredRank?(deviceId: string, ruleId: string): number;
  /** After a restart: channels whose SENSOR_FAULT alarm is active. */
  restoredFaults?(deviceId: string): readonly string[];
  /** After a restart: the device's last known session state, until its first `S` frame says otherwise. */
  restoredState?(deviceId: string): { state: SessionState; sessionId: string | null } | null;
}

export class AlarmEvaluator {
  private readonly devices = new Map<string, DeviceEval>();
  private readonly faults: SensorFaults;

  constructor(private readonly sink: ConditionSink, private readonly hooks: EvaluatorHooks) {
    this.faults = new SensorFaults(sink);
  }

  onTelemetry(s: TelemetrySample): void {
    const d = this.device(s.deviceId);
    d.advance(s.t, s.rx);
    d.lastSessionId = s.sessionId;
    const now = d.mono;
    const cr = d.cr;
    const v = s.v;
    const channels = cr.channels;
    const vals = d.vals;
    for (let i = 0; i < channels.length; i++) {
      const x = v[channels[i]];
      if (x === undefined) continue; // ICD §1: not measured in this frame: hold the last value
      d.seenAt[i] = now;
      if (x !== null) {
        vals[i] = x;
        continue;
      }
      vals[i] = NaN;
      if (!d.quiet) this.faults.seen(d, channels[i], s.rx);
    }
    if (!d.quiet) {
      if (now >= d.nextKeyScan) this.faults.scanOtherChannels(d, v, now, s.rx);
      if (d.faults.size > 0) this.faults.recover(d, v, now, s.rx);
      if (now >= d.nextStaleCheck) this.faults.checkStale(d, now, s.rx);
    }
    for (let r = 0; r < cr.rules.length; r++) if (d.ruleOn[r] === 1) this.evalRule(d, r, now, s.rx, true);
  }

  onState(c: StateChange): void {
    const d = this.device(c.deviceId);
    d.advance(c.t, c.rx);
    const now = d.mono;
    const cr = d.cr;
    if (c.state !== d.state || d.stateSince !== d.stateSince) d.stateSince = now;
    d.state = c.state;
    d.stateBit = stateBit(c.state, cr.technical);
    d.lastSessionId = c.sessionId;
    if (c.sessionId !== d.sessionId) {
      d.sessionId = c.sessionId;
      d.sessionStart.fill(NaN);
    }
    for (let t = 0; t < cr.termKind.length; t++) {
      if (cr.termSessionScope[t] === 1 && (cr.termInState[t] & d.stateBit) !== 0 && d.sessionStart[t] !== d.sessionStart[t]) {
        d.sessionStart[t] = now;
      }
    }
    const quiet = (stateMask(cr.technical.sensorFault.quietStates) & d.stateBit) !== 0;
    if (!quiet && (d.quiet || d.activeSince !== d.activeSince)) d.activeSince = now;
    d.quiet = quiet;
    this.faults.stateChanged(d, quiet, c.rx);
    for (let r = 0; r < cr.rules.length; r++) {
      const on = (cr.ruleStates[r] & d.stateBit) !== 0 ? 1 : 0;
      // Leaving the rule's states: suppressed by design (the engine moves the instance); entering: fresh delays.
      if (on !== d.ruleOn[r]) d.resetRule(r);
      d.ruleOn[r] = on;
      if (on === 1) this.evalRule(d, r, now, c.rx, false);
    }
  }

  /** Completes delays and state durations on gateway time, for devices that send nothing new. */
  tick(nowGateway: number): void {
    for (const d of this.devices.values()) {
      if (d.lastRx !== d.lastRx) continue;
      const now = d.deviceNow(nowGateway);
      for (let r = 0; r < d.cr.rules.length; r++) if (d.ruleOn[r] === 1) this.evalRule(d, r, now, nowGateway, false);
      if (d.faults.size > 0) this.faults.expire(d, now, nowGateway);
    }
  }

  /** The rules changed (profile update, new model in HELLO): re-evaluate from scratch, keeping state and clock. */
  reconfigure(deviceId: string): void {
    const old = this.devices.get(deviceId);
    if (!old) return;
    this.devices.delete(deviceId);
    const d = this.device(deviceId);
    d.state = old.state;
    d.stateBit = stateBit(old.state, d.cr.technical);
    d.sessionId = old.sessionId;
    d.lastSessionId = old.lastSessionId;
    d.stateSince = old.stateSince;
    d.activeSince = old.activeSince;
    d.quiet = old.quiet;
    d.mono = old.mono;
    d.lastT = old.lastT;
    d.lastRx = old.lastRx;
    for (const [ch, f] of old.faults) d.faults.set(ch, f);
    for (let r = 0; r < d.cr.rules.length; r++) {
      const on = (d.cr.ruleStates[r] & d.stateBit) !== 0 ? 1 : 0;
      if (on === 0) d.resetRule(r);
      d.ruleOn[r] = on;
    }
  }

  forget(deviceId: string): void {
    this.devices.delete(deviceId);
  }

  rule(deviceId: string, ruleId: string): Rule | undefined {
    const cr = this.devices.get(deviceId)?.cr;
    const i = cr?.ruleIndex.get(ruleId);
    return i === undefined ? undefined : cr!.rules[i];
  }

  stateOf(deviceId: string): DeviceEval['state'] | undefined {
    return this.devices.get(deviceId)?.state;
  }

  private device(id: string): DeviceEval {
    let d = this.devices.get(id);
    if (d) return d;
    d = new DeviceEval(id, this.hooks.rulesFor(id));
    const cr = d.cr;
    if (this.hooks.restoredRank) {
      for (let r = 0; r < cr.rules.length; r++) {
        const rank = this.hooks.restoredRank(id, cr.rules[r].id);
        if (rank > 0) d.seedRule(r, rank);
      }
    }
    this.faults.restore(d, this.hooks.restoredFaults?.(id) ?? []);
    const last = this.hooks.restoredState?.(id);
    if (last) {
      // A gateway restart mid-session: the circuit is most likely still in the state it was in. Taking it as
      // RUNNING (technical.unknownStateAs) would raise PV_LOW on every PAUSED console, latched until
      // acknowledged, before its next 5 s keep-alive. stateSince stays unknown: the first S frame sets it.
      d.state = last.state;
      d.stateBit = stateBit(last.state, cr.technical);
      d.sessionId = d.lastSessionId = last.sessionId;
      d.quiet = (stateMask(cr.technical.sensorFault.quietStates) & d.stateBit) !== 0;
      for (let r = 0; r < cr.rules.length; r++) d.ruleOn[r] = (cr.ruleStates[r] & d.stateBit) !== 0 ? 1 : 0;
    }
    this.devices.set(id, d);
    return d;
  }

  private evalRule(d: DeviceEval, r: number, now: number, at: number, fromFrame: boolean): void {
    const cr = d.cr;
    const vals = d.vals;
    const on = cr.onDelayMs[r];
    const off = cr.offDelayMs[r];
    let rankNow = 0;
    let top = -1;
    for (let t = cr.termStart[r]; t < cr.termStart[r + 1]; t++) {
      const kind = cr.termKind[t];
      let x = NaN;
      let scale = 1;
      let low = false;
      switch (kind) {
        case K_HIGH:
        case K_LOW:
          x = vals[cr.termCh[t]];
          low = kind === K_LOW;
          if (cr.termRef[t] >= 0) scale = vals[cr.termRef[t]] / 100;
          break;
        case K_DEVIATION: {
          const sp = vals[cr.termRef[t]];
          x = Math.abs(vals[cr.termCh[t]] - sp);
          if (cr.termPercent[t] === 1) scale = Math.abs(sp) / 100;
          break;
        }
        case K_RISE:
          x = d.rise(t, vals[cr.termCh[t]], now, fromFrame);
          break;
        case K_DETECTOR: {
          // ICD §1: detectors read 0 or 1; anything but 0 is treated as detected (safe reading).
          const v = vals[cr.termCh[t]];
          x = v !== v ? NaN : v !== 0 ? 1 : 0;
          break;
        }
        case K_STATE_DURATION: {
          const start = cr.termSessionScope[t] === 1 ? d.sessionStart[t]
            : (cr.termInState[t] & d.stateBit) !== 0 ? d.stateSince : NaN;
          x = start === start ? now - start : -Infinity;
          break;
        }
      }
      if (scale !== scale) x = NaN; // reference channel unknown or faulted: hold
      if (x === x) d.termX[t] = x;
      for (let l = cr.levelStart[t]; l < cr.levelStart[t + 1]; l++) {
        const asserted = d.asserted[l];
        if (x === x) {
          const thr = cr.levelThr[l] * scale;
          const db = cr.levelDb[l] * scale;
          d.levelLim[l] = thr;
          // Deadband: raised beyond the limit, cleared only `db` back inside it.
          d.raw[l] = low ? (asserted === 1 ? x < thr + db : x < thr) ? 1 : 0
            : (asserted === 1 ? x > thr - db : x > thr) ? 1 : 0;
        }
        const raw = d.raw[l];
        if (raw !== asserted) {
          let since = d.since[l];
          if (since !== since) d.since[l] = since = now;
          if (now - since >= (raw === 1 ? on : off)) {
            d.asserted[l] = raw;
            d.since[l] = NaN;
          }
        } else {
          d.since[l] = NaN;
        }
        if (d.asserted[l] === 1 && cr.levelRank[l] >= rankNow) {
          rankNow = cr.levelRank[l];
          top = l;
        }
      }
    }
    if (rankNow !== d.ruleRank[r]) {
      d.ruleRank[r] = rankNow;
      this.emitRule(d, r, rankNow, top, at);
    }
  }

  private emitRule(d: DeviceEval, r: number, rankNow: number, level: number, at: number): void {
    const cr = d.cr;
    const rule = cr.rules[r];
    let t = cr.termStart[r];
    if (level >= 0) while (cr.levelStart[t + 1] <= level) t++;
    const kind = cr.termKind[t];
    // Reported in the units of the configuration: state durations in seconds; a detector has no limit.
    const unit = kind === K_STATE_DURATION ? 1000 : 1;
    const x = d.termX[t];
    const value = x === x && Number.isFinite(x) ? x / unit : null;
    const limit = level >= 0 && kind !== K_DETECTOR && d.levelLim[level] === d.levelLim[level] ? d.levelLim[level] / unit : null;
    this.sink.condition({
      deviceId: d.id, rule: rule.id, source: 'process', priority: RANK_PRIORITY[rankNow] ?? null,
      value: value === null ? null : round(value), limit: limit === null ? null : round(limit),
      message: rankNow > 0 ? describe(rule, cr, t, value, limit) : rule.message,
      latching: rule.latching, sessionId: d.lastSessionId, at, ruleDef: rule,
    });
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function describe(rule: Rule, cr: CompiledRules, t: number, value: number | null, limit: number | null): string {
  const fmt = (x: number | null) => (x === null ? '?' : String(round(x)));
  const ch = cr.termCh[t] >= 0 ? cr.channels[cr.termCh[t]] : '';
  switch (cr.termKind[t]) {
    case K_HIGH: return `${rule.message} (${ch} ${fmt(value)} > ${fmt(limit)})`;
    case K_LOW: return `${rule.message} (${ch} ${fmt(value)} < ${fmt(limit)})`;
    case K_DEVIATION: return `${rule.message} (${ch} off ${cr.channels[cr.termRef[t]]} by ${fmt(value)}, limit ${fmt(limit)})`;
    case K_RISE: return `${rule.message} (${ch} rose ${fmt(value)} within ${cr.termWindowMs[t] / 60_000} min, limit ${fmt(limit)})`;
    case K_DETECTOR: return `${rule.message} (${ch} = 1)`;
    default: return `${rule.message} (for ${fmt(value)} s)`;
  }
}

