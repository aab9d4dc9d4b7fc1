/**
 * Alarm limits per channel from the rules in force (GET /api/alarms/profile?device=), for marking a numeric
 * outside its limits and drawing chart bands. Pure. Deviation and percent rules depend on the setpoint or the
 * reference channel, so limits are computed against the current values.
 */
export interface Limits { lo: number | null; hi: number | null }

interface Condition {
  kind: string;
  channel?: string;
  limit?: number;
  levels?: Array<{ threshold: number }>;
  percentOf?: string;
  setpoint?: string;
  mode?: 'absolute' | 'percent';
}
export interface RuleLike extends Condition {
  enabled?: boolean;
  states?: 'any' | string[];
  or?: Condition[];
}

/** Rules are evaluated as in RUNNING until the first state frame (docs/alarms.md: unknownStateAs). */
function activeIn(rule: RuleLike, state: string | null): boolean {
  if (rule.enabled === false) return false;
  const states = rule.states ?? ['RUNNING'];
  return states === 'any' || states.includes(state ?? 'RUNNING');
}

function threshold(c: Condition): number | null {
  if (typeof c.limit === 'number') return c.limit;
  // The first level is the nearest to normal: it is where the alarm starts.
  return c.levels?.[0]?.threshold ?? null;
}

export function channelLimits(rules: readonly RuleLike[], values: Record<string, number | null | undefined>, state: string | null): Map<string, Limits> {
  const out = new Map<string, Limits>();
  const tighten = (ch: string, lo: number | null, hi: number | null) => {
    const cur = out.get(ch) ?? { lo: null, hi: null };
    if (lo !== null && (cur.lo === null || lo > cur.lo)) cur.lo = lo;
    if (hi !== null && (cur.hi === null || hi < cur.hi)) cur.hi = hi;
    out.set(ch, cur);
  };
  for (const rule of rules) {
    if (!activeIn(rule, state)) continue;
    for (const c of [rule, ...(rule.or ?? [])]) {
      if (!c.channel) continue;
      const th = threshold(c);
      if (th === null) continue;
      if (c.kind === 'high' || c.kind === 'low') {
        let limit = th;
        if (c.percentOf) {
          const ref = values[c.percentOf];
          if (typeof ref !== 'number') continue;
          limit = (th / 100) * ref;
        }
        if (c.kind === 'high') tighten(c.channel, null, limit);
        else tighten(c.channel, limit, null);
      } else if (c.kind === 'deviation' && c.setpoint) {
        const sp = values[c.setpoint];
        if (typeof sp !== 'number') continue;
        const d = c.mode === 'percent' ? (th / 100) * Math.abs(sp) : th;
        tighten(c.channel, sp - d, sp + d);
      }
    }
  }
  return out;
}

export function outside(v: number | null | undefined, l: Limits | undefined): 'high' | 'low' | null {
  if (typeof v !== 'number' || !l) return null;
  if (l.hi !== null && v > l.hi) return 'high';
  if (l.lo !== null && v < l.lo) return 'low';
  return null;
}
