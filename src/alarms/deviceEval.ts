/**
 * Per-device evaluation state for the alarm evaluator: flat typed arrays sized by the compiled rules,
 * allocated once per device (no allocation per frame), and the device's monotonic clock.
 */
import type { SessionState } from '../protocol/types.js';
import { RISE_BUCKETS, stateBit, type CompiledRules } from './compile.js';

/**
 * A device clock step larger than this (CMD SYNC, a wrong clock being corrected) is not elapsed time:
 * across a step the evaluator follows gateway time, so delays neither freeze nor complete at once.
 */
export const CLOCK_STEP_MS = 5000;

export interface FaultState {
  /** Device time since the channel reads valid again; NaN while faulted. */
  validSince: number;
  /** true when raised because a required channel went unreported (not a `!`). */
  stale: boolean;
  rank: number;
}

export class DeviceEval {
  /** Last known value per compiled channel; NaN when unknown or in sensor fault (holds the condition). */
  readonly vals: Float64Array;
  /** Device time (monotonic) of the last reading of each channel, fault included. */
  readonly seenAt: Float64Array;
  /** Per channel: states in which a rule reads it (a missing required channel matters there only). */
  readonly channelStates: Int32Array;
  readonly asserted: Uint8Array;
  readonly raw: Uint8Array;
  readonly since: Float64Array;
  readonly levelLim: Float64Array;
  readonly termX: Float64Array;
  readonly ruleRank: Uint8Array;
  readonly ruleOn: Uint8Array;
  readonly sessionStart: Float64Array;
  readonly riseMins: Float64Array;
  readonly riseBucket: Float64Array;
  readonly risePrev: Float64Array;
  readonly faults = new Map<string, FaultState>();

  state: SessionState | null = null;
  stateBit: number;
  sessionId: string | null = null;
  /** Session of the latest frame, reported with conditions. */
  lastSessionId: string | null = null;
  stateSince = NaN;
  /** Since when the device is in a non-quiet state (for missing-channel detection). */
  activeSince = NaN;
  quiet = false;
  nextStaleCheck = -Infinity;
  nextKeyScan = -Infinity;

  /** Monotonic device time: device clock deltas, with gateway time across clock steps. */
  mono = NaN;
  lastT = NaN;
  lastRx = NaN;

  constructor(readonly id: string, readonly cr: CompiledRules) {
    const nCh = cr.channels.length;
    const nL = cr.levelThr.length;
    const nT = cr.termKind.length;
    this.vals = new Float64Array(nCh).fill(NaN);
    this.seenAt = new Float64Array(nCh).fill(NaN);
    this.channelStates = new Int32Array(nCh);
    for (let t = 0; t < nT; t++) {
      const r = ruleOfTerm(cr, t);
      if (cr.termCh[t] >= 0) this.channelStates[cr.termCh[t]] |= cr.ruleStates[r];
    }
    this.asserted = new Uint8Array(nL);
    this.raw = new Uint8Array(nL);
    this.since = new Float64Array(nL).fill(NaN);
    this.levelLim = new Float64Array(nL).fill(NaN);
    this.termX = new Float64Array(nT).fill(NaN);
    this.ruleRank = new Uint8Array(cr.rules.length);
    this.ruleOn = new Uint8Array(cr.rules.length);
    this.sessionStart = new Float64Array(nT).fill(NaN);
    this.riseMins = new Float64Array(cr.riseTerms * RISE_BUCKETS).fill(Infinity);
    this.riseBucket = new Float64Array(cr.riseTerms).fill(NaN);
    this.risePrev = new Float64Array(cr.riseTerms).fill(Infinity);
    this.stateBit = stateBit(null, cr.technical);
    for (let r = 0; r < cr.rules.length; r++) this.ruleOn[r] = (cr.ruleStates[r] & this.stateBit) !== 0 ? 1 : 0;
  }

  /** Advances the monotonic clock with a frame's device time `t`, received at gateway time `rx`. */
  advance(t: number, rx: number): void {
    // Never past the codec; should a time be missing, gateway time stands in so that delays still complete.
    if (!Number.isFinite(rx)) rx = this.lastRx === this.lastRx ? this.lastRx : 0;
    if (!Number.isFinite(t)) t = this.lastT === this.lastT ? this.lastT + Math.max(0, rx - this.lastRx) : rx;
    if (this.lastT !== this.lastT) {
      this.mono = t;
      this.lastT = t;
      this.lastRx = rx;
      if (this.activeSince !== this.activeSince) this.activeSince = t;
      return;
    }
    const dt = t - this.lastT;
    const drx = rx - this.lastRx;
    if (dt >= 0 && dt <= drx + CLOCK_STEP_MS) {
      this.mono += dt;
    } else if (dt < 0 && dt >= -CLOCK_STEP_MS) {
      return; // ICD §2: telemetry, state and event travel on separate topics and may arrive out of order.
    } else {
      this.mono += drx > 0 ? drx : 0;
    }
    this.lastT = t;
    this.lastRx = rx;
  }

  /** Device time now, extrapolated from the last frame with gateway time. */
  deviceNow(nowGateway: number): number {
    const d = nowGateway - this.lastRx;
    return this.mono + (d > 0 ? d : 0);
  }

  /** Forgets a rule's evaluation (it left its active states, or re-enters them fresh). */
  resetRule(r: number): void {
    const cr = this.cr;
    for (let t = cr.termStart[r]; t < cr.termStart[r + 1]; t++) {
      for (let l = cr.levelStart[t]; l < cr.levelStart[t + 1]; l++) {
        this.asserted[l] = 0;
        this.raw[l] = 0;
        this.since[l] = NaN;
      }
      const i = cr.termRise[t];
      if (i >= 0) {
        this.riseMins.fill(Infinity, i * RISE_BUCKETS, (i + 1) * RISE_BUCKETS);
        this.riseBucket[i] = NaN;
        this.risePrev[i] = Infinity;
      }
    }
    this.ruleRank[r] = 0;
  }

  /** After a restart: the alarm already stands at `rank`, so a normal reading clears it (not left dangling). */
  seedRule(r: number, rank: number): void {
    const cr = this.cr;
    const t = cr.termStart[r];
    let top = 0;
    for (let l = cr.levelStart[t]; l < cr.levelStart[t + 1]; l++) {
      if (l === cr.levelStart[t] || cr.levelRank[l] <= rank) {
        this.asserted[l] = 1;
        this.raw[l] = 1;
        if (cr.levelRank[l] > top) top = cr.levelRank[l];
      }
    }
    this.ruleRank[r] = Math.max(top, rank);
  }

  /** Window rise: value − lowest value of the window, kept as RISE_BUCKETS minima. */
  rise(t: number, v: number, now: number, update: boolean): number {
    const cr = this.cr;
    const i = cr.termRise[t];
    const base = i * RISE_BUCKETS;
    const b = Math.floor(now / (cr.termWindowMs[t] / RISE_BUCKETS));
    if (update && v === v) {
      const last = this.riseBucket[i];
      if (last !== b) {
        const mins = this.riseMins;
        if (last === last && b > last) {
          const steps = Math.min(RISE_BUCKETS, b - last);
          for (let k = 1; k <= steps; k++) mins[base + ((last + k) % RISE_BUCKETS)] = Infinity;
        } else if (last !== last) {
          mins.fill(Infinity, base, base + RISE_BUCKETS);
        }
        this.riseBucket[i] = b;
        const cur = b % RISE_BUCKETS;
        let m = Infinity;
        for (let k = 0; k < RISE_BUCKETS; k++) if (k !== cur && mins[base + k] < m) m = mins[base + k];
        this.risePrev[i] = m;
      }
      const slot = base + (b % RISE_BUCKETS);
      if (v < this.riseMins[slot]) this.riseMins[slot] = v;
    }
    const lastB = this.riseBucket[i];
    if (v !== v || lastB !== lastB) return NaN;
    const cur = this.riseMins[base + (lastB % RISE_BUCKETS)];
    return v - (cur < this.risePrev[i] ? cur : this.risePrev[i]);
  }
}

export function ruleOfTerm(cr: CompiledRules, t: number): number {
  let r = 0;
  while (cr.termStart[r + 1] <= t) r++;
  return r;
}
