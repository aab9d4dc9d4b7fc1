/**
 * Rules compiled into flat typed arrays for the per-frame hot path (target: < 3 µs per frame with
 * the default profile): a rule is a list of terms (its condition and its `or` conditions), a term a list of
 * levels (threshold or duration, deadband, priority). Channels are indices into one per-device value array.
 */
import { SESSION_STATES, type SessionState } from '../protocol/types.js';
import { rank, type Condition, type Rule, type TechnicalConfig } from './ruleSchema.js';

export const K_HIGH = 0;
export const K_LOW = 1;
export const K_DEVIATION = 2;
export const K_RISE = 3;
export const K_DETECTOR = 4;
export const K_STATE_DURATION = 5;
const KIND_CODE: Record<Condition['kind'], number> = {
  high: K_HIGH, low: K_LOW, deviation: K_DEVIATION, rise: K_RISE, detector: K_DETECTOR, stateDuration: K_STATE_DURATION,
};

/** Rise windows are kept as this many min-buckets (window / 60 resolution: 30 s for a 30 min window). */
export const RISE_BUCKETS = 60;

const STATE_BIT = new Map<SessionState, number>(SESSION_STATES.map((s, i) => [s, 1 << i]));
const ALL_STATES = (1 << SESSION_STATES.length) - 1;

export function stateMask(states: readonly SessionState[] | 'any'): number {
  if (states === 'any') return ALL_STATES;
  let m = 0;
  for (const s of states) m |= STATE_BIT.get(s) ?? 0;
  return m;
}

/** The bit of the state a device is in; an unknown state counts as `unknownStateAs` (absent data is never normal). */
export function stateBit(state: SessionState | null, technical: TechnicalConfig): number {
  return STATE_BIT.get(state ?? technical.unknownStateAs) ?? 0;
}

export function ruleActiveIn(rule: Rule, state: SessionState | null, technical: TechnicalConfig): boolean {
  return (stateMask(rule.states) & stateBit(state, technical)) !== 0;
}

export interface CompiledRules {
  readonly rules: readonly Rule[];
  readonly ruleIndex: ReadonlyMap<string, number>;
  /** Channel keys read by any rule, then the required channels (technical.sensorFault). */
  readonly channels: readonly string[];
  readonly channelIndex: ReadonlyMap<string, number>;
  /** Per channel: priority rank of SENSOR_FAULT_<CH> (highest rule reading it; LOW for others). */
  readonly channelRank: Uint8Array;
  /** Per channel: 1 when a missing reading counts as a sensor fault. */
  readonly channelRequired: Uint8Array;
  // Per rule
  readonly ruleStates: Int32Array;
  readonly onDelayMs: Float64Array;
  readonly offDelayMs: Float64Array;
  readonly termStart: Int32Array;
  // Per term
  readonly termKind: Uint8Array;
  readonly termCh: Int16Array;
  /** Setpoint (deviation) or `percentOf` channel, -1 when none. */
  readonly termRef: Int16Array;
  /** 1 when limit and deadband are percent of the ref channel. */
  readonly termPercent: Uint8Array;
  readonly termInState: Int32Array;
  readonly termSessionScope: Uint8Array;
  readonly termWindowMs: Float64Array;
  /** Index of the term's rise ring buffer, -1 when not a rise term. */
  readonly termRise: Int16Array;
  readonly levelStart: Int32Array;
  readonly riseTerms: number;
  // Per level
  readonly levelThr: Float64Array;
  readonly levelDb: Float64Array;
  readonly levelRank: Uint8Array;
  /** The rule each level belongs to (for the tick, which walks levels). */
  readonly levelRule: Int32Array;
  readonly technical: TechnicalConfig;
}

interface LevelSpec { thr: number; db: number; rank: number }

function levelsOf(c: Condition, rulePriority: string): LevelSpec[] {
  if (c.kind === 'detector') return [{ thr: 0, db: 0, rank: rank(rulePriority) }];
  if (c.kind === 'stateDuration') {
    if (c.levels) return c.levels.map((l) => ({ thr: l.after * 1000, db: 0, rank: rank(l.priority) }));
    return [{ thr: (c.after ?? 0) * 1000, db: 0, rank: rank(rulePriority) }];
  }
  if (c.levels) return c.levels.map((l) => ({ thr: l.threshold, db: c.deadband, rank: rank(l.priority) }));
  return [{ thr: c.limit ?? 0, db: c.deadband, rank: rank(rulePriority) }];
}

export function compileRules(rules: readonly Rule[], technical: TechnicalConfig): CompiledRules {
  const channels: string[] = [];
  const channelIndex = new Map<string, number>();
  const chanRank: number[] = [];
  const channel = (key: string, r: number): number => {
    let i = channelIndex.get(key);
    if (i === undefined) {
      i = channels.length;
      channels.push(key);
      channelIndex.set(key, i);
      chanRank.push(1);
    }
    if (r > chanRank[i]) chanRank[i] = r;
    return i;
  };

  const terms: Array<{ c: Condition; rule: number; levels: LevelSpec[] }> = [];
  const termStart: number[] = [];
  rules.forEach((rule, ri) => {
    termStart.push(terms.length);
    for (const c of [rule as Condition, ...(rule.or ?? [])]) terms.push({ c, rule: ri, levels: levelsOf(c, rule.priority) });
  });
  termStart.push(terms.length);

  const nT = terms.length;
  const termKind = new Uint8Array(nT);
  const termCh = new Int16Array(nT).fill(-1);
  const termRef = new Int16Array(nT).fill(-1);
  const termPercent = new Uint8Array(nT);
  const termInState = new Int32Array(nT);
  const termSessionScope = new Uint8Array(nT);
  const termWindowMs = new Float64Array(nT);
  const termRise = new Int16Array(nT).fill(-1);
  const levelStart: number[] = [];
  const levels: Array<LevelSpec & { rule: number }> = [];
  let riseTerms = 0;

  terms.forEach(({ c, rule, levels: ls }, ti) => {
    const maxRank = Math.max(...ls.map((l) => l.rank));
    termKind[ti] = KIND_CODE[c.kind];
    if (c.kind === 'stateDuration') {
      termInState[ti] = stateMask(c.inState);
      termSessionScope[ti] = c.scope === 'session' ? 1 : 0;
    } else {
      termCh[ti] = channel(c.channel, maxRank);
    }
    if (c.kind === 'deviation') {
      termRef[ti] = channel(c.setpoint, maxRank);
      termPercent[ti] = c.mode === 'percent' ? 1 : 0;
    }
    if ((c.kind === 'high' || c.kind === 'low') && c.percentOf !== undefined) {
      termRef[ti] = channel(c.percentOf, maxRank);
      termPercent[ti] = 1;
    }
    if (c.kind === 'rise') {
      termWindowMs[ti] = c.windowS * 1000;
      termRise[ti] = riseTerms++;
    }
    levelStart.push(levels.length);
    for (const l of ls) levels.push({ ...l, rule });
  });
  levelStart.push(levels.length);

  const required = new Set(technical.sensorFault.requiredChannels);
  for (const key of required) channel(key, 1);
  const channelRequired = new Uint8Array(channels.length);
  channels.forEach((k, i) => { channelRequired[i] = required.has(k) ? 1 : 0; });

  return {
    rules,
    ruleIndex: new Map(rules.map((r, i) => [r.id, i])),
    channels,
    channelIndex,
    channelRank: Uint8Array.from(chanRank),
    channelRequired,
    ruleStates: Int32Array.from(rules.map((r) => stateMask(r.states))),
    onDelayMs: Float64Array.from(rules.map((r) => r.onDelayS * 1000)),
    offDelayMs: Float64Array.from(rules.map((r) => r.offDelayS * 1000)),
    termStart: Int32Array.from(termStart),
    termKind, termCh, termRef, termPercent, termInState, termSessionScope, termWindowMs, termRise,
    levelStart: Int32Array.from(levelStart),
    riseTerms,
    levelThr: Float64Array.from(levels.map((l) => l.thr)),
    levelDb: Float64Array.from(levels.map((l) => l.db)),
    levelRank: Uint8Array.from(levels.map((l) => l.rank)),
    levelRule: Int32Array.from(levels.map((l) => l.rule)),
    technical,
  };
}
