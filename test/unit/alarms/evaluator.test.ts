import { describe, expect, it } from 'vitest';
import { compileRules } from '../../../src/alarms/compile.js';
import { AlarmEvaluator, type ConditionChange } from '../../../src/alarms/evaluator.js';
import { DEFAULT_RULES, RuleSchema, TechnicalSchema, type RuleInput } from '../../../src/alarms/rules.js';
import type { SessionState } from '../../../src/protocol/types.js';

type Values = Record<string, number | null>;
/** [device time ms, values] a frame, [t, 'STATE'] a state change, [t] a tick at gateway time t. */
type Step = [number, Values] | [number, SessionState] | [number];

function harness(rules: readonly RuleInput[], opts: { restoredRank?: Record<string, number>; technical?: object } = {}) {
  const technical = TechnicalSchema.parse(opts.technical ?? {});
  const compiled = compileRules(rules.map((r) => RuleSchema.parse(r)), technical);
  const changes: ConditionChange[] = [];
  const ev = new AlarmEvaluator({ condition: (c) => changes.push(c) }, {
    rulesFor: () => compiled,
    restoredRank: (_d, rule) => opts.restoredRank?.[rule] ?? 0,
  });
  let seq = 0;
  let previous: SessionState | null = null;
  /** Device clock = gateway clock unless `rx` is given. */
  const run = (steps: Step[], rxOffset = 0) => {
    for (const [t, x] of steps) {
      if (x === undefined) ev.tick(t + rxOffset);
      else if (typeof x === 'string') {
        ev.onState({ deviceId: 'D1', seq: seq++, t, rx: t + rxOffset, state: x, sessionId: 'S1', previous });
        previous = x;
      } else ev.onTelemetry({ deviceId: 'D1', sessionId: 'S1', seq: seq++, t, rx: t + rxOffset, v: x });
    }
  };
  const events = (rule?: string) => changes.filter((c) => rule === undefined || c.rule === rule).map((c) => [c.at, c.priority]);
  return { ev, run, events, changes };
}

const rule = (id: string) => DEFAULT_RULES.find((r) => r.id === id)!;
const every = (from: number, to: number, stepMs: number, v: Values): Step[] => {
  const out: Step[] = [];
  for (let t = from; t <= to; t += stepMs) out.push([t, v]);
  return out;
};

describe('condition kinds, delays and deadband edges (default profile rules)', () => {
  const cases: Array<{ name: string; rule: string; steps: Step[]; expect: Array<[number, string | null]> }> = [
    {
      name: 'high: PV > 250 for 2 s raises; clears only at <= 240 (deadband 10)',
      rule: 'PV_HIGH',
      steps: [[0, 'RUNNING'], ...every(0, 2000, 500, { PV: 260 }), [2500, { PV: 240.01 }], [3000, { PV: 240 }]],
      expect: [[2000, 'HIGH'], [3000, null]],
    },
    {
      name: 'high: exactly at the limit is not beyond it',
      rule: 'PV_HIGH',
      steps: [[0, 'RUNNING'], ...every(0, 5000, 500, { PV: 250 })],
      expect: [],
    },
    {
      name: 'low: PV < 20 for 2 s raises; clears only at >= 25 (deadband 5)',
      rule: 'PV_LOW',
      steps: [[0, 'RUNNING'], ...every(0, 2000, 1000, { PV: 19.9 }), [2500, { PV: 24.99 }], [3000, { PV: 25 }]],
      expect: [[2000, 'HIGH'], [3000, null]],
    },
    {
      name: 'on-delay restarts when the condition lapses',
      rule: 'PV_HIGH',
      steps: [[0, 'RUNNING'], [0, { PV: 260 }], [1000, { PV: 260 }], [1500, { PV: 200 }], [2000, { PV: 260 }], [3000, { PV: 260 }], [4000, { PV: 260 }]],
      expect: [[4000, 'HIGH']],
    },
    {
      name: 'tick completes an on-delay without further frames',
      rule: 'PV_HIGH',
      steps: [[0, 'RUNNING'], [0, { PV: 260 }], [1000], [2000]],
      expect: [[2000, 'HIGH']],
    },
    {
      name: 'deviation absolute: |TR − STR| > 1.0 for 60 s; clears at <= 0.8',
      rule: 'TR_DEVIATION',
      steps: [[0, 'RUNNING'], ...every(0, 60_000, 10_000, { TR: 38.1, STR: 37 }), [61_000, { TR: 37.85 }], [62_000, { TR: 37.8 }]],
      expect: [[60_000, 'MEDIUM'], [62_000, null]],
    },
    {
      name: 'deviation percent: |QB − SQB| > 10 % of SQB; deadband 2 % of SQB',
      rule: 'QB_DEVIATION',
      steps: [[0, 'RUNNING'], ...every(0, 10_000, 1000, { QB: 134, SQB: 150 }), [11_000, { QB: 137.1 }], [12_000, { QB: 138 }]],
      expect: [[10_000, 'MEDIUM'], [12_000, null]],
    },
    {
      name: 'deviation at exactly 10 % does not raise',
      rule: 'QB_DEVIATION',
      steps: [[0, 'RUNNING'], ...every(0, 20_000, 1000, { QB: 135, SQB: 150 })],
      expect: [],
    },
    {
      name: 'percent of another channel: QP > 30 % of QB; clears at <= 29 %',
      rule: 'PLASMA_FRACTION',
      steps: [[0, 'RUNNING'], ...every(0, 10_000, 1000, { QB: 150, QP: 45.1 }), [11_000, { QP: 43.6 }], [12_000, { QP: 43.5 }]],
      expect: [[10_000, 'MEDIUM'], [12_000, null]],
    },
    {
      name: 'rise: DPR up > 30 mmHg within 30 min raises (below the 80 limit); clears when the rise is <= 25',
      rule: 'DPR_HIGH',
      steps: [[0, 'RUNNING'], [0, { DPR: 20 }], ...every(600_000, 610_000, 1000, { DPR: 50.5 }), [611_000, { DPR: 45.5 }], [612_000, { DPR: 45 }]],
      expect: [[610_000, 'MEDIUM'], [612_000, null]],
    },
    {
      name: 'rise: a rise spread over more than the window does not raise',
      rule: 'DPR_HIGH',
      steps: [[0, 'RUNNING'], ...Array.from({ length: 61 }, (_, i) => [i * 60_000, { DPR: 20 + i * 0.9 }] as Step)],
      expect: [],
    },
    {
      name: 'rule with `or`: DPR > 80 raises by itself',
      rule: 'DPR_HIGH',
      steps: [[0, 'RUNNING'], ...every(0, 10_000, 1000, { DPR: 81 })],
      expect: [[10_000, 'MEDIUM']],
    },
    {
      name: 'detector: AIR = 1 raises at once (zero delay) and clears at 0',
      rule: 'AIR_IN_LINE',
      steps: [[0, 'RUNNING'], [0, { AIR: 0 }], [100, { AIR: 1 }], [200, { AIR: 0 }]],
      expect: [[100, 'HIGH'], [200, null]],
    },
    {
      name: 'levels: TMP > 100 MEDIUM, > 150 HIGH, each with its delay and deadband',
      rule: 'TMP_HIGH',
      steps: [
        [0, 'RUNNING'], ...every(0, 5000, 1000, { TMP: 120 }), ...every(6000, 11_000, 1000, { TMP: 160 }),
        [12_000, { TMP: 146 }], [13_000, { TMP: 145 }], [14_000, { TMP: 96 }], [15_000, { TMP: 95 }],
      ],
      expect: [[5000, 'MEDIUM'], [11_000, 'HIGH'], [13_000, 'MEDIUM'], [15_000, null]],
    },
    {
      name: 'TR_CRITICAL: below 35 or above 39 for 10 s',
      rule: 'TR_CRITICAL',
      steps: [[0, 'RUNNING'], ...every(0, 10_000, 1000, { TR: 39.1 }), [11_000, { TR: 38.8 }], ...every(12_000, 22_000, 1000, { TR: 34.9 })],
      expect: [[10_000, 'HIGH'], [11_000, null], [22_000, 'HIGH']],
    },
    {
      name: 'state duration with levels: PAUSED > 60 s MEDIUM, > 5 min HIGH, cleared on RESUME',
      rule: 'PUMP_STOPPED',
      steps: [[0, 'RUNNING'], [1000, 'PAUSED'], [61_000], [62_000], [301_000], [302_000], [303_000, 'RUNNING']],
      expect: [[62_000, 'MEDIUM'], [302_000, 'HIGH'], [303_000, null]],
    },
    {
      name: 'state duration, session scope: circuit age counts pauses, raises after 72 h',
      rule: 'CIRCUIT_AGE',
      steps: [[0, 'RUNNING'], [3_600_000, 'PAUSED'], [7_200_000, 'RUNNING'], [72 * 3_600_000], [72 * 3_600_000 + 1000]],
      expect: [[72 * 3_600_000 + 1000, 'LOW']],
    },
    {
      name: 'PH below 7.20 for 30 s; clears at >= 7.22',
      rule: 'PH_LOW',
      steps: [[0, 'RUNNING'], ...every(0, 30_000, 5000, { PH: 7.19 }), [31_000, { PH: 7.215 }], [32_000, { PH: 7.22 }]],
      expect: [[30_000, 'MEDIUM'], [32_000, null]],
    },
  ];

  it.each(cases)('$name', ({ rule: id, steps, expect: want }) => {
    const h = harness([rule(id)]);
    h.run(steps);
    expect(h.events(id)).toEqual(want);
  });

  it('off-delay: the condition must be absent for the whole off-delay to clear', () => {
    const h = harness([{ ...rule('PV_HIGH'), onDelayS: 0, offDelayS: 5 }]);
    h.run([[0, 'RUNNING'], [0, { PV: 300 }], [1000, { PV: 100 }], [3000, { PV: 300 }], [4000, { PV: 100 }], [8000, { PV: 100 }], [9000, { PV: 100 }]]);
    expect(h.events('PV_HIGH')).toEqual([[0, 'HIGH'], [9000, null]]);
  });

  it('reports durations in seconds and no limit for a detector', () => {
    const h = harness([rule('PUMP_STOPPED'), rule('AIR_IN_LINE')]);
    h.run([[0, 'PAUSED'], [61_000], [61_000, { AIR: 1 }]]);
    expect(h.changes.map((c) => [c.rule, c.value, c.limit])).toEqual([['PUMP_STOPPED', 61, 60], ['AIR_IN_LINE', 1, null]]);
  });

  it('reports value and limit of the level that raised', () => {
    const h = harness([rule('QB_DEVIATION')]);
    h.run([[0, 'RUNNING'], ...every(0, 10_000, 1000, { QB: 120, SQB: 150 })]);
    expect(h.changes[0]).toMatchObject({ rule: 'QB_DEVIATION', source: 'process', value: 30, limit: 15, latching: false });
    expect(h.changes[0].message).toMatch(/QB off SQB by 30, limit 15/);
  });
});

describe('sensor faults and missing data are never normal', () => {
  it('a faulted channel holds a raised alarm and raises SENSOR_FAULT_<CH> at the rule priority', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'RUNNING'], ...every(0, 2000, 1000, { PV: 300 }), ...every(3000, 20_000, 1000, { PV: null })]);
    expect(h.events('PV_HIGH')).toEqual([[2000, 'HIGH']]);
    expect(h.events('SENSOR_FAULT_PV')).toEqual([[3000, 'HIGH']]);
    h.run([[21_000, { PV: 100 }], [22_000, { PV: 100 }], [23_000, { PV: 100 }]]);
    expect(h.events('PV_HIGH')).toEqual([[2000, 'HIGH'], [21_000, null]]);
    expect(h.events('SENSOR_FAULT_PV')).toEqual([[3000, 'HIGH'], [23_000, null]]);
  });

  it('a fault during the on-delay holds the pending condition', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'RUNNING'], [0, { PV: 300 }], [1000, { PV: null }], [2000, { PV: 300 }]]);
    expect(h.events('PV_HIGH')).toEqual([[2000, 'HIGH']]);
  });

  it('a channel absent from frames holds the condition (not measured is not normal)', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'RUNNING'], ...every(0, 2000, 1000, { PV: 300, QB: 150 }), ...every(3000, 4000, 1000, { QB: 150 })]);
    expect(h.events('PV_HIGH')).toEqual([[2000, 'HIGH']]);
  });

  it('a deviation with an unknown setpoint neither raises nor clears', () => {
    const h = harness([rule('QB_DEVIATION')]);
    h.run([[0, 'RUNNING'], ...every(0, 30_000, 1000, { QB: 50 })]);
    expect(h.events()).toEqual([]);
  });

  it('a required channel not reported for > 5 s raises SENSOR_FAULT_<CH>; clears 2 s after it returns', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'RUNNING'], [0, { PV: 100 }], ...every(1000, 7000, 1000, { QB: 150 })]);
    expect(h.events('SENSOR_FAULT_PV')).toEqual([[6000, 'HIGH']]);
    expect(h.changes.at(-1)!.message).toMatch(/No reading of PV/);
    h.run([[8000, { PV: 100 }], [9000, { PV: 100 }], [10_000, { PV: 100 }]]);
    expect(h.events('SENSOR_FAULT_PV')).toEqual([[6000, 'HIGH'], [10_000, null]]);
  });

  it('a fault on a channel no rule reads is LOW; none is raised in IDLE', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'IDLE'], [0, { XYZ: null }], [1000, 'RUNNING'], [1000, { XYZ: null, PV: 100 }]]);
    expect(h.events()).toEqual([[1000, 'LOW']]);
    expect(h.changes[0].rule).toBe('SENSOR_FAULT_XYZ');
  });
});

describe('state design and clocks', () => {
  it('a rule is not evaluated outside its states and starts its delays afresh on entry', () => {
    const h = harness([rule('PV_LOW')]);
    h.run([[0, 'PRIMING'], ...every(0, 10_000, 1000, { PV: 0 }), [10_500, 'RUNNING'], ...every(11_000, 13_000, 1000, { PV: 0 })]);
    expect(h.events('PV_LOW')).toEqual([[13_000, 'HIGH']]);
  });

  it('with the state unknown (no S frame yet) rules are evaluated as in RUNNING', () => {
    const h = harness([rule('PV_LOW')]);
    h.run(every(0, 2000, 1000, { PV: 0 }));
    expect(h.events('PV_LOW')).toEqual([[2000, 'HIGH']]);
  });

  it('delays run on device time, not on arrival time (a batch of samples arriving at once)', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'RUNNING']]);
    for (let t = 0; t <= 2000; t += 100) h.ev.onTelemetry({ deviceId: 'D1', sessionId: 'S1', seq: t, t, rx: 5000, v: { PV: 300 } });
    expect(h.events('PV_HIGH')).toEqual([[5000, 'HIGH']]);
  });

  it('a device clock stepped back (CMD SYNC) neither freezes nor completes a delay at once', () => {
    const h = harness([rule('PV_HIGH')]);
    h.run([[0, 'RUNNING'], [0, { PV: 300 }]]);
    h.ev.onTelemetry({ deviceId: 'D1', sessionId: 'S1', seq: 10, t: -3_600_000, rx: 1000, v: { PV: 300 } });
    expect(h.events('PV_HIGH')).toEqual([]);
    h.ev.onTelemetry({ deviceId: 'D1', sessionId: 'S1', seq: 11, t: -3_599_000, rx: 2000, v: { PV: 300 } });
    expect(h.events('PV_HIGH')).toEqual([[2000, 'HIGH']]);
  });

  it('after a restart a restored alarm is cleared by a normal reading', () => {
    const h = harness([rule('PV_HIGH')], { restoredRank: { PV_HIGH: 3 } });
    h.run([[0, 'RUNNING'], [0, { PV: 300 }], [1000, { PV: 100 }]]);
    expect(h.events('PV_HIGH')).toEqual([[1000, null]]);
  });
});
