/**
 * Technical alarm conditions of the link, on gateway time:
 * COMM_LOSS (no frame, or no telemetry, for max(3 s, 3 telemetry periods) while not IDLE/ENDED, or the
 * transport reports the link lost), FRAME_LOSS (sequence gaps above 1 % over 60 s), DISCARD_RATE (CRC and
 * other discards), CLOCK_SKEW (device clock off by more than 2 s) and DATA_DELAYED (samples arriving more than
 * 5 s later than the console's clock says they were taken: live values that are not live). Pure: inputs and
 * time are given.
 */
import type { LinkState } from '../bus.js';
import type { DeviceSnapshot } from '../model/types.js';
import type { SessionState } from '../protocol/types.js';
import type { TechnicalConfig } from './ruleSchema.js';
import type { AlarmPriority } from './types.js';

export type TechnicalRule = 'COMM_LOSS' | 'FRAME_LOSS' | 'DISCARD_RATE' | 'CLOCK_SKEW' | 'DATA_DELAYED';
export const TECHNICAL_RULES: readonly TechnicalRule[] = ['COMM_LOSS', 'FRAME_LOSS', 'DISCARD_RATE', 'CLOCK_SKEW', 'DATA_DELAYED'];

export interface TechnicalCondition {
  rule: TechnicalRule;
  /** null: the condition is absent. */
  priority: AlarmPriority | null;
  value: number | null;
  limit: number | null;
  message: string;
}

interface CounterSample { at: number; lost: number; seq: number; frames: number; discards: number }

interface Track {
  lastRx: number | null;
  lastTelemetryRx: number | null;
  state: SessionState | null;
  stateKnown: boolean;
  /** Gateway time since which the device is in a state where telemetry is expected. */
  activeSince: number;
  linkLostAt: number | null;
  linkReason: string;
  samples: CounterSample[];
  skewed: boolean;
  delayed: boolean;
}

const round1 = (ms: number) => Math.round(ms / 100) / 10;

export class LinkMonitor {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly cfg: TechnicalConfig, private readonly now: () => number) {}

  devices(): string[] {
    return [...this.tracks.keys()];
  }

  /** Any frame from the device (telemetry true for `T`), received at gateway time rx. */
  frame(deviceId: string, rx: number, telemetry: boolean): void {
    const t = this.track(deviceId);
    if (t.lastRx === null || rx > t.lastRx) t.lastRx = rx;
    if (telemetry && (t.lastTelemetryRx === null || rx > t.lastTelemetryRx)) t.lastTelemetryRx = rx;
    if (t.linkLostAt !== null && rx >= t.linkLostAt) t.linkLostAt = null;
  }

  state(deviceId: string, state: SessionState, rx: number): void {
    const t = this.track(deviceId);
    if (this.quiet(t.state) && !this.quiet(state)) t.activeSince = rx;
    t.state = state;
    t.stateKnown = true;
  }

  link(deviceId: string, link: LinkState, at: number, reason: string): void {
    const t = this.track(deviceId);
    if (link === 'lost') {
      t.linkLostAt = at;
      t.linkReason = reason;
    } else {
      t.linkLostAt = null;
    }
  }

  /**
   * Makes a device known that was restored with an active COMM_LOSS: absent data is never normal. Until its
   * first telemetry the condition holds; a HELLO alone does not clear it, since the broker replays a dead
   * console's retained HELLO at every subscribe (ICD §2), which would clear and re-raise the alarm.
   */
  know(deviceId: string): void {
    const t = this.track(deviceId);
    if (t.lastTelemetryRx === null) t.activeSince = -Infinity;
  }

  commLoss(deviceId: string, snap: DeviceSnapshot | undefined): TechnicalCondition {
    const now = this.now();
    const t = this.track(deviceId);
    const c = this.cfg.commLoss;
    const state = t.stateKnown ? t.state : snap?.state ?? null;
    const limitMs = Math.max(c.minSilenceS * 1000, c.periods * (snap?.telemetryPeriodMs ?? 0));
    const base = { rule: 'COMM_LOSS' as const, priority: null, value: null, limit: round1(limitMs) };
    if (this.quiet(state)) return { ...base, message: `no link supervision in ${state}` };
    const lastSeen = Math.max(t.lastRx ?? -Infinity, snap?.lastSeen ?? -Infinity);
    const silentMs = now - lastSeen;
    const telemetrySilentMs = now - Math.max(t.lastTelemetryRx ?? -Infinity, t.activeSince);
    const lost = { ...base, priority: c.priority };
    if (t.linkLostAt !== null) {
      const message = `Link to ${deviceId} lost: ${t.linkReason}`;
      // Lost by silence (the device model's "no frame for x s"): the silence against its limit is the measurement.
      if (/^no frame for /.test(t.linkReason ?? '')) return { ...lost, value: round1(Math.max(0, silentMs)), message };
      // Lost by the transport or the console itself (status offline, port closed): the reason is the information,
      // not the silence so far ("0.1 (limit 3)" read as a measurement), so neither value nor limit is shown.
      return { ...lost, value: null, limit: null, message };
    }
    if (silentMs > limitMs) {
      const since = Number.isFinite(silentMs) ? `for ${round1(silentMs)} s` : 'since the gateway started';
      return { ...lost, value: Number.isFinite(silentMs) ? round1(silentMs) : null, message: `No frame from ${deviceId} ${since}` };
    }
    if (telemetrySilentMs > limitMs) {
      const finite = Number.isFinite(telemetrySilentMs);
      const since = finite ? `for ${round1(telemetrySilentMs)} s` : 'since the gateway started';
      return {
        ...lost, value: finite ? round1(telemetrySilentMs) : null,
        message: `No telemetry from ${deviceId} ${since} in ${state ?? 'an unknown state'}`,
      };
    }
    return { ...base, message: 'frames flowing' };
  }

  /** FRAME_LOSS, DISCARD_RATE and CLOCK_SKEW from the device model's counters; called once per tick. */
  linkQuality(deviceId: string, snap: DeviceSnapshot | undefined): TechnicalCondition[] {
    if (!snap) return [];
    const now = this.now();
    const t = this.track(deviceId);
    const c = snap.counters;
    const sample: CounterSample = {
      at: now, lost: c.framesLost, seq: c.telemetry + c.states + c.events, frames: c.frames,
      discards: Object.values(c.discards).reduce((a, b) => a + b, 0),
    };
    const first = t.samples[0];
    if (first && (sample.lost < first.lost || sample.seq < first.seq || sample.discards < first.discards || sample.frames < first.frames)) {
      t.samples.length = 0; // counters were reset: start the windows again
    }
    t.samples.push(sample);
    const horizon = now - Math.max(this.cfg.frameLoss.windowS, this.cfg.discardRate.windowS) * 1000;
    while (t.samples.length > 2 && t.samples[1].at <= horizon) t.samples.shift();
    return [this.frameLoss(t, sample, snap.state), this.discardRate(t, sample), this.clockSkew(t, snap), this.dataDelay(t, snap, now)];
  }

  private frameLoss(t: Track, cur: CounterSample, state: SessionState | null): TechnicalCondition {
    const cfg = this.cfg.frameLoss;
    const base = this.baseline(t, cur.at - cfg.windowS * 1000);
    const lost = cur.lost - base.lost;
    const got = cur.seq - base.seq;
    const pct = lost + got > 0 ? (lost * 100) / (lost + got) : 0;
    const out = { rule: 'FRAME_LOSS' as const, value: Math.round(pct * 100) / 100, limit: cfg.percent };
    // In IDLE/ENDED only 5 s keep-alives flow: one lost frame would read as a large percentage.
    if (this.quiet(t.stateKnown ? t.state : state) || lost <= 0 || pct <= cfg.percent) {
      return { ...out, priority: null, message: 'sequence gaps within limits' };
    }
    return { ...out, priority: cfg.priority, message: `${lost} of ${lost + got} frames lost in ${cfg.windowS} s (${out.value} %)` };
  }

  private discardRate(t: Track, cur: CounterSample): TechnicalCondition {
    const cfg = this.cfg.discardRate;
    const base = this.baseline(t, cur.at - cfg.windowS * 1000);
    const discards = cur.discards - base.discards;
    const lines = discards + (cur.frames - base.frames);
    const pct = lines > 0 ? (discards * 100) / lines : 0;
    const out = { rule: 'DISCARD_RATE' as const, value: discards, limit: cfg.perWindow };
    if (discards > cfg.perWindow && pct > cfg.percent) {
      return { ...out, priority: cfg.priority, message: `${discards} of ${lines} lines discarded in ${cfg.windowS} s (CRC, length or format)` };
    }
    return { ...out, priority: null, message: 'discards within limits' };
  }

  private clockSkew(t: Track, snap: DeviceSnapshot): TechnicalCondition {
    const cfg = this.cfg.clockSkew;
    const limitMs = cfg.maxOffsetS * 1000;
    const off = snap.clockOffsetMs;
    const out = { rule: 'CLOCK_SKEW' as const, value: off === null ? null : round1(off), limit: cfg.maxOffsetS };
    // 10 % hysteresis so that an offset hovering at the limit does not chatter.
    if (off !== null) t.skewed = Math.abs(off) > (t.skewed ? 0.9 * limitMs : limitMs);
    if (!t.skewed) return { ...out, priority: null, message: 'device clock within limits' };
    return { ...out, priority: cfg.priority, message: `Device clock off by ${round1(off ?? 0)} s: send CMD SYNC` };
  }

  private dataDelay(t: Track, snap: DeviceSnapshot, now: number): TechnicalCondition {
    const cfg = this.cfg.dataDelay;
    const limitMs = cfg.maxLateS * 1000;
    const late = snap.dataLateMs;
    const out = { rule: 'DATA_DELAYED' as const, value: late === null ? null : round1(late), limit: cfg.maxLateS };
    // Only while samples arrive: silence is COMM_LOSS. 10 % hysteresis against chatter at the limit.
    const flowing = t.lastTelemetryRx !== null && now - t.lastTelemetryRx <= this.cfg.commLoss.minSilenceS * 1000;
    t.delayed = flowing && late !== null && late > (t.delayed ? 0.9 * limitMs : limitMs);
    if (!t.delayed) return { ...out, priority: null, message: 'samples arrive on time' };
    return {
      ...out, priority: cfg.priority,
      message: `Data from ${snap.id} arrive ${round1(late ?? 0)} s late: values shown as live are that old`,
    };
  }

  /** The oldest sample inside the window (or the first one we have). */
  private baseline(t: Track, from: number): CounterSample {
    for (const s of t.samples) if (s.at >= from) return s;
    return t.samples[t.samples.length - 1];
  }

  private quiet(state: SessionState | null): boolean {
    return state !== null && this.cfg.commLoss.quietStates.includes(state);
  }

  forget(id: string): void {
    this.tracks.delete(id);
  }

  private track(id: string): Track {
    let t = this.tracks.get(id);
    if (!t) {
      t = {
        lastRx: null, lastTelemetryRx: null, state: null, stateKnown: false, activeSince: this.now(),
        linkLostAt: null, linkReason: '', samples: [], skewed: false, delayed: false,
      };
      this.tracks.set(id, t);
    }
    return t;
  }
}
