/**
 * Technical alarm SENSOR_FAULT_<CH>, one instance per channel: the channel reads `!` (ICD §1) or
 * null (ICD §2), or a required channel is no longer reported while a rule reading it is active. Absent data
 * is never normal. Priority: that of the highest rule reading the channel in the current state, LOW otherwise.
 * It clears after the channel has read valid for `sensorFault.offDelayS` (anti-chatter). Pure.
 */
import type { TelemetrySample } from '../bus.js';
import type { DeviceEval, FaultState } from './deviceEval.js';
import type { ConditionSink } from './types.js';
import { RANK_PRIORITY } from './ruleSchema.js';

export const SENSOR_FAULT_PREFIX = 'SENSOR_FAULT_';
const STALE_CHECK_MS = 1000;
const KEY_SCAN_MS = 1000;

export class SensorFaults {
  constructor(private readonly sink: ConditionSink) {}

  /** A `!` / null reading of channel `ch`. */
  seen(d: DeviceEval, ch: string, at: number): void {
    const f = d.faults.get(ch);
    if (f) {
      f.validSince = NaN;
      f.stale = false;
      return;
    }
    const nf: FaultState = { validSince: NaN, stale: false, rank: this.rankOf(d, ch) };
    d.faults.set(ch, nf);
    this.emit(d, ch, nf, nf.rank, at);
  }

  /**
   * Channels no rule reads (QR, PF, new firmware's): enumerating a frame's keys costs more than all the rules,
   * so their faults are looked for once per second of device time (they raise LOW alarms only).
   */
  scanOtherChannels(d: DeviceEval, v: TelemetrySample['v'], now: number, at: number): void {
    d.nextKeyScan = now + KEY_SCAN_MS;
    for (const k in v) if (v[k] === null && !d.cr.channelIndex.has(k)) this.seen(d, k, at);
  }

  /** Faulted channels reading valid again, for long enough, clear. */
  recover(d: DeviceEval, v: TelemetrySample['v'], now: number, at: number): void {
    const offMs = d.cr.technical.sensorFault.offDelayS * 1000;
    for (const [ch, f] of d.faults) {
      const x = v[ch];
      if (x === null) f.validSince = NaN;
      if (typeof x !== 'number') continue;
      if (f.validSince !== f.validSince) f.validSince = now;
      if (now - f.validSince >= offMs) this.clear(d, ch, f, at);
    }
  }

  /** The off-delay completes on the tick too, for a device that sends nothing new. */
  expire(d: DeviceEval, now: number, at: number): void {
    const offMs = d.cr.technical.sensorFault.offDelayS * 1000;
    for (const [ch, f] of d.faults) if (f.validSince === f.validSince && now - f.validSince >= offMs) this.clear(d, ch, f, at);
  }

  /** A required channel that the device stopped reporting, while a rule reading it is active. */
  checkStale(d: DeviceEval, now: number, at: number): void {
    const cr = d.cr;
    d.nextStaleCheck = now + STALE_CHECK_MS;
    const staleMs = cr.technical.sensorFault.staleS * 1000;
    for (let i = 0; i < cr.channels.length; i++) {
      if (cr.channelRequired[i] === 0 || (d.channelStates[i] & d.stateBit) === 0) continue;
      const seen = d.seenAt[i] === d.seenAt[i] && d.seenAt[i] > d.activeSince ? d.seenAt[i] : d.activeSince;
      const ch = cr.channels[i];
      if (now - seen <= staleMs || d.faults.has(ch)) continue;
      const nf: FaultState = { validSince: NaN, stale: true, rank: cr.channelRank[i] };
      d.faults.set(ch, nf);
      this.emit(d, ch, nf, nf.rank, at);
    }
  }

  /** The device changed state: in a quiet state faults do not matter; elsewhere their priority may rise. */
  stateChanged(d: DeviceEval, quiet: boolean, at: number): void {
    if (quiet) {
      for (const [ch, f] of d.faults) this.clear(d, ch, f, at);
      return;
    }
    for (const [ch, f] of d.faults) {
      const rank = this.rankOf(d, ch);
      if (rank > f.rank) this.emit(d, ch, f, rank, at);
    }
  }

  /** After a restart: these channels' alarms are active, so a valid reading clears them. */
  restore(d: DeviceEval, channels: readonly string[]): void {
    for (const ch of channels) d.faults.set(ch, { validSince: NaN, stale: false, rank: this.rankOf(d, ch) });
  }

  private rankOf(d: DeviceEval, ch: string): number {
    const i = d.cr.channelIndex.get(ch);
    return i === undefined || (d.channelStates[i] & d.stateBit) === 0 ? 1 : d.cr.channelRank[i];
  }

  private clear(d: DeviceEval, ch: string, f: FaultState, at: number): void {
    d.faults.delete(ch);
    this.emit(d, ch, f, null, at);
  }

  private emit(d: DeviceEval, ch: string, f: FaultState, rankNow: number | null, at: number): void {
    if (rankNow !== null) f.rank = rankNow;
    const staleS = d.cr.technical.sensorFault.staleS;
    const message = rankNow === null ? `Sensor ${ch} reads valid again`
      : f.stale ? `No reading of ${ch} for more than ${staleS} s: alarms on ${ch} cannot be evaluated`
        : `Sensor fault on ${ch}: alarms on ${ch} hold their last state`;
    this.sink.condition({
      deviceId: d.id, rule: SENSOR_FAULT_PREFIX + ch, source: 'technical',
      priority: rankNow === null ? null : RANK_PRIORITY[rankNow] ?? 'LOW',
      value: null, limit: null, message, latching: false, sessionId: d.lastSessionId, at, ruleDef: null,
    });
  }
}
