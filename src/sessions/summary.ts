/**
 * Session summaries, pure: rows in, summary out; no I/O and no clock of its own.
 * The accumulators take telemetry and sequence numbers one page at a time, so a four-hour session at
 * 25 Hz never has to be in memory at once.
 */
import type { AlarmTransition } from '../alarms/types.js';
import type { ChannelValues } from '../protocol/types.js';
import { dec, decAll, enc, encAll, type ExactNumber } from '../util/exactJson.js';
import type {
  AlarmRuleSummary, ChannelStats, CommandSummary, SessionRecord, SessionSummary,
} from './types.js';

/** Percent of the covered time TR stayed within its setpoint (STR) +/- 0.5 °C. */
export const TR_BAND_C = 0.5;
/**
 * Longest interval one sample stands for. A longer gap is lost or unmeasured time: it counts neither
 * for nor against the band (the ratio is over covered time, reported beside it).
 */
export const SAMPLE_GAP_CAP_MS = 2_000;

const U32 = 2 ** 32;
/** ICD §1: seq restarts at 0 after power-up; a drop to a small value is a restart, not a late frame. */
const RESTART_BELOW = 1_000;
const WRAP_MARGIN = 2 ** 20;

/** Min / mean / max of one channel: valid readings, and faults (null) counted apart. */
export class ChannelSlot {
  min = Infinity;
  max = -Infinity;
  sum = 0;
  n = 0;
  faults = 0;

  push(x: number | null | undefined): void {
    if (typeof x === 'number' && Number.isFinite(x)) {
      if (x < this.min) this.min = x;
      if (x > this.max) this.max = x;
      this.sum += x;
      this.n += 1;
    } else {
      this.faults += 1;
    }
  }
}

/**
 * Min / mean / max per channel and the time TR spent within STR ± 0.5 °C, fed in (t, seq) order: a sample at a
 * time (`add`), or value by value (`slot(key).push(x)` for each channel, then `endSample`), which lets the
 * perfusion record feed values it reads without building an object per sample.
 */
export class ChannelAccumulator {
  private readonly stats = new Map<string, ChannelSlot>();
  private setpoint: number | null = null;
  /** The previous sample's TR reading, as it stands until the next sample. */
  private prev: { t: number; inBand: boolean | null } | null = null;
  private coveredMs = 0;
  private inBandMs = 0;

  add(t: number, v: ChannelValues): void {
    for (const key in v) this.slot(key).push(v[key]);
    this.endSample(t, 'TR' in v ? v.TR : undefined, v.STR);
  }

  /** The statistics of a channel (created at its first value). */
  slot(key: string): ChannelSlot {
    let s = this.stats.get(key);
    if (!s) this.stats.set(key, (s = new ChannelSlot()));
    return s;
  }

  /** Closes a sample at device time `t` whose TR and STR were `tr` and `str` (undefined: absent from it). */
  endSample(t: number, tr: number | null | undefined, str: number | null | undefined): void {
    if (this.prev && this.prev.inBand !== null) {
      const dt = Math.min(Math.max(0, t - this.prev.t), SAMPLE_GAP_CAP_MS);
      this.coveredMs += dt;
      if (this.prev.inBand) this.inBandMs += dt;
    }
    if (typeof str === 'number' && Number.isFinite(str)) this.setpoint = str;
    // ICD §1: an absent key was not measured (no claim either way); `!` (null) is a fault, which cannot
    // show the reactor was in band, so it counts against it: the safe reading.
    let inBand: boolean | null = null;
    if (tr !== undefined && this.setpoint !== null) {
      inBand = typeof tr === 'number' && Number.isFinite(tr) && Math.abs(tr - this.setpoint) <= TR_BAND_C + 1e-9;
    }
    this.prev = { t, inBand };
  }

  /** The whole state as JSON values; `restore` gives an accumulator that goes on exactly as this one would. */
  save(): SavedChannels {
    return {
      stats: [...this.stats].map(([key, s]) => [key, [enc(s.min), enc(s.max), enc(s.sum), s.n, s.faults]]),
      setpoint: this.setpoint === null ? null : enc(this.setpoint),
      prev: this.prev && { t: this.prev.t, inBand: this.prev.inBand },
      coveredMs: this.coveredMs,
      inBandMs: this.inBandMs,
    };
  }

  static restore(saved: SavedChannels): ChannelAccumulator {
    const a = new ChannelAccumulator();
    for (const [key, [min, max, sum, n, faults]] of saved.stats) {
      const s = a.slot(key);
      s.min = dec(min);
      s.max = dec(max);
      s.sum = dec(sum);
      s.n = n;
      s.faults = faults;
    }
    a.setpoint = saved.setpoint === null ? null : dec(saved.setpoint);
    a.prev = saved.prev && { t: saved.prev.t, inBand: saved.prev.inBand };
    a.coveredMs = saved.coveredMs;
    a.inBandMs = saved.inBandMs;
    return a;
  }

  result(): { channels: Record<string, ChannelStats>; trInBandPct: number | null; coveredMs: number } {
    const channels: Record<string, ChannelStats> = {};
    for (const key of [...this.stats.keys()].sort()) {
      const s = this.stats.get(key)!;
      channels[key] = s.n > 0
        ? { min: s.min, mean: round(s.sum / s.n, 4), max: s.max, samples: s.n, faults: s.faults }
        : { min: null, mean: null, max: null, samples: 0, faults: s.faults };
    }
    return {
      channels,
      trInBandPct: this.coveredMs > 0 ? round((100 * this.inBandMs) / this.coveredMs, 2) : null,
      coveredMs: this.coveredMs,
    };
  }
}

/** ChannelAccumulator.save(): per channel [min, max, sum, samples, faults]. */
export interface SavedChannels {
  stats: Array<[string, [ExactNumber, ExactNumber, ExactNumber, number, number]]>;
  setpoint: ExactNumber | null;
  prev: { t: number; inBand: boolean | null } | null;
  coveredMs: number;
  inBandMs: number;
}

/** SeqCompleteness.save(). */
export interface SavedSeqs {
  segments: Array<{ min: number; max: number }>;
  cur: { min: number; max: number } | null;
  offset: number;
  lastRaw: number | null;
  stored: number;
  restarts: number;
  t: ExactNumber[];
}

/** ICD §1: an `S` frame every 5 s as a keep-alive. */
export const KEEPALIVE_MS = 5_000;

/**
 * Received vs expected frames from `seq` (ICD §1: one counter for T, S and EV; wraps at 2^32; restarts at
 * 0 after power-up). Fed every journaled frame of the session in arrival order; expected is, per run of
 * the counter, last − first + 1.
 *
 * ICD: keep-alive `S` frames take a seq but repeat the state, and the gateway journals state changes only,
 * so they are missing from the rows without being lost. Their number is not recorded; at most one per
 * 5 s of device time was sent, and up to that many of the missing frames are counted as keep-alives
 * (`keepAlivesAssumed`). The rest is loss. This can only understate loss by the keep-alives that were
 * themselves lost, never overstate it.
 */
export class SeqCompleteness {
  private segments: Array<{ min: number; max: number }> = [];
  private cur: { min: number; max: number } | null = null;
  private offset = 0;
  private lastRaw: number | null = null;
  private stored = 0;
  private restarts = 0;
  private tMin = Infinity;
  private tMax = -Infinity;

  add(seq: number, t: number): void {
    this.stored += 1;
    if (t < this.tMin) this.tMin = t;
    if (t > this.tMax) this.tMax = t;
    if (this.lastRaw !== null) {
      if (this.lastRaw >= U32 - WRAP_MARGIN && seq < WRAP_MARGIN) {
        this.offset += U32;
      } else if (seq < RESTART_BELOW && this.cur && this.cur.max - (seq + this.offset) > RESTART_BELOW) {
        this.segments.push(this.cur);
        this.cur = null;
        this.offset = 0;
        this.restarts += 1;
      }
    }
    this.lastRaw = seq;
    const u = seq + this.offset;
    if (!this.cur) this.cur = { min: u, max: u };
    else {
      if (u < this.cur.min) this.cur.min = u;
      if (u > this.cur.max) this.cur.max = u;
    }
  }

  /** The whole state as JSON values; `restore` gives a counter that goes on exactly as this one would. */
  save(): SavedSeqs {
    return {
      segments: this.segments.map((g) => ({ ...g })), cur: this.cur && { ...this.cur }, offset: this.offset,
      lastRaw: this.lastRaw, stored: this.stored, restarts: this.restarts, t: encAll([this.tMin, this.tMax]),
    };
  }

  static restore(saved: SavedSeqs): SeqCompleteness {
    const c = new SeqCompleteness();
    c.segments = saved.segments.map((g) => ({ min: g.min, max: g.max }));
    c.cur = saved.cur && { min: saved.cur.min, max: saved.cur.max };
    c.offset = saved.offset;
    c.lastRaw = saved.lastRaw;
    c.stored = saved.stored;
    c.restarts = saved.restarts;
    [c.tMin, c.tMax] = decAll(saved.t);
    return c;
  }

  result(): SessionSummary['completeness'] {
    const all = this.cur ? [...this.segments, this.cur] : this.segments;
    const expected = all.reduce((n, s) => n + (s.max - s.min + 1), 0);
    const span = this.stored > 0 ? this.tMax - this.tMin : 0;
    const keepAlivesAssumed = Math.max(0, Math.min(expected - this.stored, Math.floor(span / KEEPALIVE_MS)));
    const received = this.stored + keepAlivesAssumed;
    return {
      received, expected, stored: this.stored, keepAlivesAssumed, lost: Math.max(0, expected - received),
      ratio: expected > 0 ? round(Math.min(1, received / expected), 6) : null,
      restarts: this.restarts,
    };
  }
}

/** The slice of an annotation a summary needs (src/control/annotations.ts `Annotation`). */
export interface AnnotationRow {
  t: number;
  kind: string;
  subtype: string | null;
  text: string;
  user: string;
}

/** The slice of an audit record a summary needs (src/audit/auditLog.ts `AuditRecord`). */
export interface AuditRow {
  id: number;
  at: number;
  user: string;
  action: string;
  outcome: string;
  detail: Record<string, unknown>;
}

export interface SummaryInput {
  record: SessionRecord;
  /** Alarm transitions of the console during the session, in order. */
  alarms: AlarmTransition[];
  annotations: AnnotationRow[];
  /** Audit records of the console during the session, in id order (commands are taken from them). */
  audit: AuditRow[];
  channels: ReturnType<ChannelAccumulator['result']>;
  completeness: SessionSummary['completeness'];
}

export function summarizeSession(input: SummaryInput, now: number): SessionSummary {
  const r = input.record;
  const end = r.endedAt ?? now;
  const stateMs = { ...r.stateMs };
  // The state the session is in now has run since lastStateAt.
  if (r.endedAt === null) stateMs[r.lastState] = (stateMs[r.lastState] ?? 0) + Math.max(0, now - r.lastStateAt);
  const byKind: Record<string, number> = {};
  for (const a of input.annotations) byKind[a.kind] = (byKind[a.kind] ?? 0) + 1;
  return {
    sessionId: r.sessionId,
    device: r.device,
    participant: r.participant,
    startedAt: new Date(r.startedAt).toISOString(),
    endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
    durationMs: Math.max(0, end - r.startedAt),
    running: r.endedAt === null,
    stateMs,
    runningMs: stateMs.RUNNING ?? 0,
    pausedMs: stateMs.PAUSED ?? 0,
    alarms: alarmSummary(input.alarms),
    annotations: {
      total: input.annotations.length,
      adverseEvents: byKind.adverse_event ?? 0,
      byKind,
      items: input.annotations.map((a) => ({ ...a, time: new Date(a.t).toISOString() })),
    },
    commands: commandSummary(input.audit),
    completeness: input.completeness,
    channels: input.channels.channels,
    temperature: { trInBandPct: input.channels.trInBandPct, coveredMs: input.channels.coveredMs },
  };
}

export function alarmSummary(transitions: AlarmTransition[]): SessionSummary['alarms'] {
  const groups = new Map<string, { rule: string; priority: string; raised: number; acks: number[] }>();
  const raisedAt = new Map<string, { at: number; key: string }>();
  const byPriority: Record<string, number> = {};
  let total = 0;
  for (const tr of transitions) {
    const a = tr.alarm;
    if (tr.kind === 'raise') {
      const key = `${a.rule}\u0000${a.priority}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { rule: a.rule, priority: a.priority, raised: 0, acks: [] }));
      g.raised += 1;
      total += 1;
      byPriority[a.priority] = (byPriority[a.priority] ?? 0) + 1;
      raisedAt.set(a.id, { at: tr.at, key });
    } else if (tr.kind === 'ack') {
      const open = raisedAt.get(a.id);
      if (open) {
        groups.get(open.key)!.acks.push(Math.max(0, tr.at - open.at));
        raisedAt.delete(a.id);
      }
    }
  }
  const byRule: AlarmRuleSummary[] = [...groups.values()]
    .sort((x, y) => x.rule.localeCompare(y.rule) || x.priority.localeCompare(y.priority))
    .map((g) => ({
      rule: g.rule, priority: g.priority, raised: g.raised, acknowledged: g.acks.length,
      ackMs: { median: median(g.acks), max: g.acks.length > 0 ? Math.max(...g.acks) : null },
    }));
  return { total, byPriority, byRule };
}

const FINAL: Record<string, (outcome: string) => string> = {
  'command.acknowledged': (o) => o,
  'command.rejected': (o) => o,
  'command.error': (o) => o,
  'command.timed_out': () => 'TIMEOUT',
  'command.late_ack': (o) => `${o} (late)`,
  // The console's answers contradicted each other: whatever was reported first is in doubt.
  'command.conflict': () => 'conflict',
};

/**
 * Commands from the audit trail: one item per cmd_id (its final outcome), one per refused request, each with the
 * `command.requested` record it came from (the perfusion record also shows its role and reason).
 */
export function commandRequests<A extends AuditRow>(audit: A[]): Array<{ item: CommandSummary; request: A }> {
  const out: Array<{ item: CommandSummary; request: A }> = [];
  const byId = new Map<string, CommandSummary>();
  for (const rec of audit) {
    if (!rec.action.startsWith('command.')) continue;
    const d = rec.detail;
    const cmdId = typeof d.cmdId === 'string' ? d.cmdId : null;
    const args = Array.isArray(d.args) ? d.args : [];
    const verb = typeof d.verb === 'string' ? d.verb : null;
    if (rec.action === 'command.requested') {
      const item: CommandSummary = {
        at: rec.at, cmdId, verb, args, user: rec.user, outcome: rec.outcome === 'refused' ? 'refused' : 'pending',
      };
      out.push({ item, request: rec });
      if (cmdId) byId.set(cmdId, item);
      continue;
    }
    const final = FINAL[rec.action];
    const item = cmdId ? byId.get(cmdId) : undefined;
    if (final && item) item.outcome = final(rec.outcome);
  }
  return out;
}

/** Commands from the audit trail: one item per cmd_id (its final outcome), one per refused request. */
export function commandSummary(audit: AuditRow[]): SessionSummary['commands'] {
  const items = commandRequests(audit).map((c) => c.item);
  const byOutcome: Record<string, number> = {};
  for (const i of items) byOutcome[i.outcome] = (byOutcome[i.outcome] ?? 0) + 1;
  return { total: items.length, byOutcome, items };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
