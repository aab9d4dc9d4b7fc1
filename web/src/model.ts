/**
 * What the screens know about each console, fed by live messages (or by a replay). Times: `t` is device time;
 * `rxAt` is the browser's performance.now() when a sample arrived, which is what "stale" is measured on:
 * the device clock can be wrong, the browser's own clock cannot be.
 */
import type * as P from '../../src/live/protocol.js';

/** What the screens use of an alarm instance (a replay rebuilds these from its markers). */
export type Alarm = Pick<P.Alarm,
  | 'id' | 'device' | 'rule' | 'priority' | 'state' | 'active' | 'raisedAt' | 'clearedAt' | 'value' | 'limit' | 'message'
  | 'ackedBy' | 'shelvedUntil' | 'sessionId' | 'latching'>;

export interface Console {
  id: string;
  model: string | null;
  link: 'connected' | 'lost' | string;
  state: string | null;
  stateSince: number | null;
  sessionId: string | null;
  /** Device time the current session started, when known (from /api/devices/:id/sessions). */
  sessionFrom: number | null;
  values: Record<string, number | null>;
  /** Device time of the latest sample, and when it arrived (performance.now()). */
  lastT: number | null;
  rxAt: number | null;
  /** How late the latest sample reached the gateway, ms (behind the console's clock; 0 when on time). */
  lateMs: number;
  alarms: Map<string, Alarm>;
  audioPausedUntil: number | null;
}

export const STALE_MS = 2000;
const ANNUNCIATED = new Set(['UNACK', 'ACKED', 'RTN_UNACK']);
const RANK: Record<string, number> = { HIGH: 3, MEDIUM: 2, LOW: 1 };
const STATE_ORDER: Record<string, number> = { UNACK: 0, RTN_UNACK: 1, ACKED: 2, SHELVED: 3, SUPPRESSED: 4, OUT_OF_SERVICE: 5 };

export function newConsole(id: string): Console {
  return {
    id, model: null, link: 'lost', state: null, stateSince: null, sessionId: null, sessionFrom: null, values: {}, lastT: null,
    rxAt: null, lateMs: 0, alarms: new Map(), audioPausedUntil: null,
  };
}

/** Active alarms in the alarm bar's order: priority, then those needing action, then the newest. */
export function orderedAlarms(c: Console): Alarm[] {
  return [...c.alarms.values()].sort((a, b) => (RANK[b.priority] - RANK[a.priority])
    || ((STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9)) || ((b.raisedAt ?? 0) - (a.raisedAt ?? 0)));
}

export function annunciated(c: Console): Alarm[] {
  return orderedAlarms(c).filter((a) => ANNUNCIATED.has(a.state));
}

export function worstAlarm(c: Console): Alarm | null {
  return annunciated(c)[0] ?? null;
}

export function isStale(c: Console, now: number, connected: boolean): boolean {
  return !connected || c.rxAt === null || now - c.rxAt > STALE_MS;
}

/**
 * DELAYED: samples still arrive, but the newest is more than 2 s older than it should be (how late it reached the
 * gateway, plus how long ago it reached this screen). Stale (NO DATA) takes precedence. Returns the age in ms.
 */
export function delayedAge(c: Console, now: number, connected: boolean): number | null {
  if (isStale(c, now, connected)) return null;
  const age = c.lateMs + (now - c.rxAt!);
  return age > STALE_MS ? age : null;
}

/** The device clock now, estimated from the latest sample (for chart windows and elapsed times). */
export function deviceNow(c: Console, now: number): number | null {
  return c.lastT === null || c.rxAt === null ? null : c.lastT + (now - c.rxAt);
}

export function applySample(c: Console, t: number, v: Record<string, number | null>, rxAt: number, lateMs = 0): void {
  for (const k in v) c.values[k] = v[k];
  if (c.lastT === null || t >= c.lastT) {
    c.lastT = t;
    c.lateMs = lateMs;
  }
  c.rxAt = rxAt;
}

export function applyAlarm(c: Console, a: Alarm): void {
  if (a.state === 'NORMAL') c.alarms.delete(a.id);
  else c.alarms.set(a.id, a);
}

export function applySnapshot(c: Console, d: P.SnapshotDevice): void {
  c.model = d.model ?? null;
  c.link = d.link;
  c.state = d.state;
  c.stateSince = d.stateSince;
  c.sessionId = d.sessionId;
  c.values = {};
  let lastT: number | null = null;
  for (const [k, r] of Object.entries(d.values ?? {})) {
    c.values[k] = r.v;
    if (lastT === null || r.t > lastT) lastT = r.t;
  }
  // A snapshot says what was last received, not that data is flowing: it is stale until a sample arrives.
  c.lastT = lastT;
  c.alarms.clear();
  for (const a of d.alarms ?? []) applyAlarm(c, a);
}
