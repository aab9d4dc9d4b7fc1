/** Session summaries, pure: fixed clock, rows in, numbers out. */
import { describe, expect, it } from 'vitest';
import type { AlarmTransition } from '../../../src/alarms/types.js';
import {
  ChannelAccumulator, commandSummary, SAMPLE_GAP_CAP_MS, SeqCompleteness, summarizeSession, type AuditRow,
} from '../../../src/sessions/summary.js';
import type { SessionRecord } from '../../../src/sessions/types.js';

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0);

function record(over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    key: 1, sessionId: 'S-1', device: 'MSC-0001', startedAt: T0, startedRx: T0 + 5, endedAt: null, endedRx: null, endReason: null,
    stateMs: {}, lastState: 'RUNNING', lastStateAt: T0, participant: null, ...over,
  };
}

function transition(kind: AlarmTransition['kind'], at: number, rule: string, priority: 'HIGH' | 'MEDIUM' | 'LOW' = 'HIGH'): AlarmTransition {
  return {
    kind, at, from: 'NORMAL', to: 'UNACK', actor: null, reason: null,
    alarm: {
      id: `MSC-0001:${rule}`, device: 'MSC-0001', rule, source: 'process', priority, state: 'UNACK', active: true, latching: false,
      raisedAt: at, clearedAt: null, value: null, limit: null, message: rule, ackedBy: null, ackedAt: null, shelvedUntil: null, sessionId: 'S-1',
    },
  };
}

describe('ChannelAccumulator', () => {
  it('min, mean and max per channel; faults counted apart and left out of the numbers', () => {
    const acc = new ChannelAccumulator();
    acc.add(T0, { QB: 100, PV: 50 });
    acc.add(T0 + 100, { QB: 200, PV: null });
    acc.add(T0 + 200, { QB: 150 });
    const { channels } = acc.result();
    expect(channels.QB).toEqual({ min: 100, mean: 150, max: 200, samples: 3, faults: 0 });
    expect(channels.PV).toEqual({ min: 50, mean: 50, max: 50, samples: 1, faults: 1 });
  });

  it('a channel that only ever faulted has no numbers, not zeros', () => {
    const acc = new ChannelAccumulator();
    acc.add(T0, { DO: null });
    expect(acc.result().channels.DO).toEqual({ min: null, mean: null, max: null, samples: 0, faults: 1 });
  });

  it('TR within STR ± 0.5 °C by time: each sample holds until the next; a fault counts against', () => {
    const acc = new ChannelAccumulator();
    acc.add(T0, { TR: 37.0, STR: 37.0 }); // in band for 1 s
    acc.add(T0 + 1000, { TR: 37.5 }); // edge: in band for 1 s (setpoint carried over)
    acc.add(T0 + 2000, { TR: 37.6 }); // out for 1 s
    acc.add(T0 + 3000, { TR: null }); // fault: out for 1 s
    acc.add(T0 + 4000, { TR: 36.9 });
    const r = acc.result();
    expect(r.coveredMs).toBe(4000);
    expect(r.trInBandPct).toBe(50);
  });

  it('a gap longer than the cap counts neither way; no setpoint yet means no claim', () => {
    const acc = new ChannelAccumulator();
    acc.add(T0 - 1000, { TR: 30 }); // no STR known: not covered
    acc.add(T0, { TR: 37, STR: 37 });
    acc.add(T0 + 60_000, { TR: 37 });
    const r = acc.result();
    expect(r.coveredMs).toBe(SAMPLE_GAP_CAP_MS);
    expect(r.trInBandPct).toBe(100);
    expect(new ChannelAccumulator().result().trInBandPct).toBeNull();
  });
});

describe('SeqCompleteness (ICD §1 sequence numbers)', () => {
  it('counts lost frames between first and last seq', () => {
    const c = new SeqCompleteness();
    for (const s of [10, 11, 12, 15, 16]) c.add(s, T0 + s);
    expect(c.result()).toMatchObject({ received: 5, expected: 7, lost: 2, ratio: 0.714286, restarts: 0 });
  });

  it('a late frame fills its gap; the counter wrapping at 2^32 is no loss', () => {
    const c = new SeqCompleteness();
    for (const s of [4294967294, 4294967295, 1, 0, 2]) c.add(s, T0);
    expect(c.result()).toMatchObject({ received: 5, expected: 5, lost: 0, ratio: 1 });
  });

  it('a device restart (seq back to 0 after power-up) starts a new run instead of a huge loss', () => {
    const c = new SeqCompleteness();
    for (let s = 5000; s < 5010; s++) c.add(s, T0);
    for (let s = 0; s < 5; s++) c.add(s, T0 + 10);
    expect(c.result()).toMatchObject({ received: 15, expected: 15, lost: 0, restarts: 1 });
  });

  it('unjournaled keep-alive S frames: at most one per 5 s of device time is assumed, the rest is loss', () => {
    const c = new SeqCompleteness();
    c.add(0, T0);
    c.add(5, T0 + 10_000); // 4 missing over 10 s: 2 keep-alives at most, 2 lost
    expect(c.result()).toMatchObject({ stored: 2, keepAlivesAssumed: 2, received: 4, expected: 6, lost: 2 });
  });
});

describe('commandSummary', () => {
  const rec = (id: number, action: string, outcome: string, detail: Record<string, unknown>): AuditRow =>
    ({ id, at: T0 + id, user: 'nurse', action, outcome, detail });
  it('one item per cmd_id with its final outcome, one per refused request', () => {
    const s = commandSummary([
      rec(1, 'command.requested', 'accepted', { cmdId: 'a1', verb: 'SET', args: ['QB', 160] }),
      rec(2, 'command.sent', 'sent', { cmdId: 'a1', verb: 'SET' }),
      rec(3, 'command.acknowledged', 'OK', { cmdId: 'a1', verb: 'SET' }),
      rec(4, 'command.requested', 'refused', { verb: 'SET', args: ['QB', 999] }),
      rec(5, 'command.requested', 'accepted', { cmdId: 'b2', verb: 'PAUSE', args: [] }),
      rec(6, 'command.timed_out', 'TIMEOUT', { cmdId: 'b2', verb: 'PAUSE' }),
      rec(7, 'command.late_ack', 'OK', { cmdId: 'b2' }),
      rec(8, 'command.requested', 'accepted', { cmdId: 'c3', verb: 'RESUME', args: [] }),
      rec(9, 'alarm.ack', 'ACKED', {}),
    ]);
    expect(s.items.map((i) => [i.verb, i.outcome])).toEqual([['SET', 'OK'], ['SET', 'refused'], ['PAUSE', 'OK (late)'], ['RESUME', 'pending']]);
    expect(s.byOutcome).toEqual({ OK: 1, refused: 1, 'OK (late)': 1, pending: 1 });
  });

  it('conflict: contradicting answers, reported as such or found after the first one was reported', () => {
    const s = commandSummary([
      rec(1, 'command.requested', 'accepted', { cmdId: 'a1', verb: 'RESUME', args: [] }),
      rec(2, 'command.conflict', 'conflict', { cmdId: 'a1', verb: 'RESUME' }),
      rec(3, 'command.requested', 'accepted', { cmdId: 'b2', verb: 'PAUSE', args: [] }),
      rec(4, 'command.acknowledged', 'OK', { cmdId: 'b2', verb: 'PAUSE' }),
      rec(5, 'command.ack_conflict', 'conflict', { count: 1, sample: { cmdId: 'b2' } }),
      rec(6, 'command.conflict', 'conflict', { cmdId: 'b2', verb: 'PAUSE', reported: 'OK' }),
      rec(7, 'command.ack_unknown', 'unknown', { count: 40, sample: { cmdId: 'zz' } }),
    ]);
    expect(s.items.map((i) => [i.cmdId, i.outcome])).toEqual([['a1', 'conflict'], ['b2', 'conflict']]);
    expect(s.byOutcome).toEqual({ conflict: 2 });
  });
});

describe('summarizeSession', () => {
  const empty = { channels: {}, trInBandPct: null, coveredMs: 0 };
  const completeness = { received: 0, expected: 0, stored: 0, keepAlivesAssumed: 0, lost: 0, ratio: null, restarts: 0 };

  it('a running session lasts until now and its current state runs until now', () => {
    const s = summarizeSession({
      record: record({ stateMs: { RUNNING: 60_000, PAUSED: 30_000 }, lastState: 'RUNNING', lastStateAt: T0 + 90_000 }),
      alarms: [], annotations: [], audit: [], channels: empty, completeness,
    }, T0 + 120_000);
    expect(s).toMatchObject({ running: true, durationMs: 120_000, runningMs: 90_000, pausedMs: 30_000, endedAt: null });
    expect(s.startedAt).toBe('2026-11-25T09:00:00.000Z');
  });

  it('an ended session does not grow with the clock', () => {
    const r = record({ endedAt: T0 + 50_000, endedRx: T0 + 50_010, endReason: 'ENDED', stateMs: { RUNNING: 50_000 }, lastState: 'ENDED', lastStateAt: T0 + 50_000 });
    const s = summarizeSession({ record: r, alarms: [], annotations: [], audit: [], channels: empty, completeness }, T0 + 10 ** 9);
    expect(s).toMatchObject({ running: false, durationMs: 50_000, runningMs: 50_000, endedAt: '2026-11-25T09:00:50.000Z' });
  });

  it('alarm counts by rule and priority, time to acknowledge from each raise to the first ack after it', () => {
    const s = summarizeSession({
      record: record(),
      alarms: [
        transition('raise', T0 + 1000, 'PV_HIGH'), transition('ack', T0 + 5000, 'PV_HIGH'), transition('ack', T0 + 9000, 'PV_HIGH'),
        transition('raise', T0 + 20_000, 'PV_HIGH'), transition('ack', T0 + 22_000, 'PV_HIGH'),
        transition('raise', T0 + 30_000, 'TR_LOW', 'MEDIUM'), transition('clear', T0 + 31_000, 'TR_LOW', 'MEDIUM'),
      ],
      annotations: [
        { t: T0, kind: 'adverse_event', subtype: 'fever', text: 'x', user: 'u' },
        { t: T0, kind: 'note', subtype: null, text: 'y', user: 'u' },
      ],
      audit: [], channels: empty, completeness,
    }, T0 + 60_000);
    expect(s.alarms.total).toBe(3);
    expect(s.alarms.byPriority).toEqual({ HIGH: 2, MEDIUM: 1 });
    expect(s.alarms.byRule).toEqual([
      { rule: 'PV_HIGH', priority: 'HIGH', raised: 2, acknowledged: 2, ackMs: { median: 3000, max: 4000 } },
      { rule: 'TR_LOW', priority: 'MEDIUM', raised: 1, acknowledged: 0, ackMs: { median: null, max: null } },
    ]);
    expect(s.annotations).toMatchObject({ total: 2, adverseEvents: 1, byKind: { adverse_event: 1, note: 1 } });
  });
});
