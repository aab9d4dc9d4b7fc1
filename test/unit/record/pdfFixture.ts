/**
 * A realistic RecordView for the PDF tests: a 4 h 10 min session on a console in Berlin with a pause, a link
 * gap, a PV sensor fault stretch, three alarms of different priorities (one shelved with a reason), a rejected
 * command, an adverse event, two signatures (one made before a later amendment, so changed since) and the
 * amendment. `big` scales it to the size the PDF must stay bounded at.
 */
import type { PerfusionRecord, RecordAlarmRow, RecordAnnotationRow, RecordEventRow, RecordView, TrendSeries } from '../../../src/record/types.js';

export const T0 = Date.UTC(2026, 11, 2, 8, 0, 0);
const MIN = 60_000;
export const SHA_NOW = 'c0ffee'.padEnd(64, '0').replace(/0{8}$/, '1234abcd');
export const SHA_OLD = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

/** Deterministic noise (LCG), so a failing layout is reproducible. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function series(t: number[], value: (i: number, tt: number) => number | null, spread: number, rnd: () => number, decimals = 2): TrendSeries {
  const r = (v: number) => Number(v.toFixed(decimals));
  const out: TrendSeries = { min: [], mean: [], max: [] };
  t.forEach((tt, i) => {
    const v = value(i, tt);
    if (v === null) {
      out.min.push(null); out.mean.push(null); out.max.push(null);
      return;
    }
    const m = v + rnd() * spread;
    out.mean.push(r(m));
    out.min.push(r(m - Math.abs(rnd()) * spread * 2));
    out.max.push(r(m + Math.abs(rnd()) * spread * 2));
  });
  return out;
}

export interface FixtureSize { buckets?: number; alarms?: number; events?: number }

export function recordView(size: FixtureSize = {}): RecordView {
  const durationMs = 250 * MIN;
  const end = T0 + durationMs;
  const buckets = size.buckets ?? 1500;
  const bucketMs = Math.max(1000, Math.ceil(durationMs / buckets / 1000) * 1000);
  const rnd = noise(42);
  // A 5-minute link gap at 11:00 local (10:00 UTC): no bucket at all.
  const gapFrom = T0 + 120 * MIN;
  const gapTo = gapFrom + 5 * MIN;
  const t: number[] = [];
  for (let x = T0; x < end; x += bucketMs) if (x < gapFrom || x >= gapTo) t.push(x);
  const paused = (tt: number) => tt >= T0 + 90 * MIN && tt < T0 + 100 * MIN;
  const rinse = (tt: number) => tt >= T0 + 240 * MIN;
  const sqb = (tt: number) => (paused(tt) ? 0 : tt < T0 + 60 * MIN ? 150 : 160);
  const str = (tt: number) => (tt < T0 + 150 * MIN ? 37 : 37.5);
  const trends = {
    bucketMs,
    t,
    series: {
      QB: series(t, (_, tt) => (rinse(tt) ? 80 : sqb(tt)), 2, rnd, 0),
      SQB: series(t, (_, tt) => (rinse(tt) ? 80 : sqb(tt)), 0, rnd, 0),
      PA: series(t, (_, tt) => (paused(tt) ? -10 : -110), 6, rnd, 0),
      // A PV sensor fault from 09:00 to 09:10 UTC: null buckets break the line.
      PV: series(t, (_, tt) => (tt >= T0 + 60 * MIN && tt < T0 + 70 * MIN ? null : paused(tt) ? 15 : 120 + (tt > T0 + 134 * MIN && tt < T0 + 142 * MIN ? 150 : 0)), 5, rnd, 0),
      TMP: series(t, () => 42, 4, rnd, 0),
      DPR: series(t, (i) => 18 + (i / t.length) * 16, 1.5, rnd, 1),
      TR: series(t, (_, tt) => str(tt) - (tt > T0 + 40 * MIN && tt < T0 + 55 * MIN ? 1.3 : 0), 0.12, rnd, 2),
      TB: series(t, () => 36.4, 0.1, rnd, 2),
      STR: series(t, (_, tt) => str(tt), 0, rnd, 1),
      HEP: series(t, (_, tt) => (paused(tt) ? 0 : 2), 0.05, rnd, 2),
      SHEP: series(t, (_, tt) => (paused(tt) ? 0 : 2), 0, rnd, 1),
    },
  };
  const alarms: RecordAlarmRow[] = [
    {
      id: 'MSC-0007:TR_DEVIATION', rule: 'TR_DEVIATION', priority: 'MEDIUM', message: 'Reactor temperature deviates from setpoint',
      value: 35.62, limit: 1, raisedAt: T0 + 45 * MIN, ackedAt: T0 + 45 * MIN + 42_000, ackedBy: 'nurse.kim', timeToAckMs: 42_000,
      clearedAt: T0 + 55 * MIN, shelves: [], other: [],
    },
    {
      id: 'MSC-0007:PV_HIGH', rule: 'PV_HIGH', priority: 'HIGH', message: 'Venous pressure high', value: 268, limit: 250,
      raisedAt: T0 + 135 * MIN, ackedAt: T0 + 135 * MIN + 8_000, ackedBy: 'dr.lee', timeToAckMs: 8_000, clearedAt: T0 + 142 * MIN,
      shelves: [{ at: T0 + 136 * MIN, by: 'dr.lee', reason: 'Return line kinked at the patient, repositioning', until: T0 + 146 * MIN }],
      other: [],
    },
    {
      id: 'MSC-0007:DPR_HIGH', rule: 'DPR_HIGH', priority: 'LOW', message: 'Reactor pressure drop rising', value: 33.5, limit: 30,
      raisedAt: T0 + 200 * MIN, ackedAt: null, ackedBy: null, timeToAckMs: null, clearedAt: T0 + 238 * MIN, shelves: [],
      other: [{ kind: 'escalate', at: T0 + 210 * MIN, by: null, reason: null }],
    },
  ];
  const events: RecordEventRow[] = [
    { t: T0 + 90 * MIN, code: 'PUMP_PAUSED', prio: 'LOW', active: true, text: 'Blood pump paused on operator request' },
    { t: T0 + 100 * MIN, code: 'PUMP_PAUSED', prio: 'LOW', active: false, text: 'Blood pump running' },
  ];
  const annotations: RecordAnnotationRow[] = [
    { id: 11, t: T0 + 91 * MIN, kind: 'note', subtype: null, text: 'Patient repositioned; arterial access line checked and re-taped.', user: 'perf.jones', role: 'operator', createdAt: T0 + 93 * MIN, auditId: 310 },
    { id: 12, t: T0 + 134 * MIN, kind: 'adverse_event', subtype: 'hypotension', text: 'BP 82/45 mmHg at 11:14, fluid bolus 250 mL NaCl 0.9 % given, recovered to 104/62 mmHg.', user: 'perf.jones', role: 'operator', createdAt: T0 + 300 * MIN, auditId: 402 },
  ];
  const nAlarms = size.alarms ?? alarms.length;
  for (let i = alarms.length; i < nAlarms; i++) {
    const at = T0 + Math.floor((i / nAlarms) * durationMs);
    const pr = ['HIGH', 'MEDIUM', 'LOW'][i % 3];
    alarms.push({
      id: `MSC-0007:R${i}`, rule: `RULE_${i % 17}`, priority: pr, message: `Synthetic alarm ${i} with a message long enough to wrap in its column`,
      value: i % 50, limit: 40, raisedAt: at, ackedAt: at + 15_000, ackedBy: 'nurse.kim', timeToAckMs: 15_000, clearedAt: at + 60_000,
      shelves: i % 10 === 0 ? [{ at: at + 20_000, by: 'dr.lee', reason: 'Known artefact while flushing the line', until: at + 600_000 }] : [], other: [],
    });
  }
  for (let i = events.length; i < (size.events ?? events.length); i++) {
    events.push({ t: T0 + Math.floor((i / (size.events ?? 1)) * durationMs), code: `EV_${i % 9}`, prio: 'LOW', active: i % 2 === 0, text: `Synthetic device event ${i}` });
  }
  const channels: PerfusionRecord['channels'] = {};
  for (const [k, s] of Object.entries(trends.series)) {
    const vals = s.mean.filter((v): v is number => v !== null);
    channels[k] = { min: Math.min(...vals), mean: vals.reduce((a, b) => a + b, 0) / vals.length, max: Math.max(...vals), samples: vals.length * 10, faults: k === 'PV' ? 600 : 0 };
  }
  const record: PerfusionRecord = {
    format: 'msc-gateway.perfusion-record',
    version: 1,
    site: { name: 'Charit\u00e9 ICU 3 \u2013 Berlin', gateway: 'gw-icu3-a', timeZone: 'Europe/Berlin' },
    console: { device: 'MSC-0007', model: 'MSC-ALS 3', serialNo: 'SN-2026-00417', fw: '3.2.1' },
    session: {
      key: 17, sessionId: 'S-2026-1202-A', participant: 'P-0042', startedAt: new Date(T0).toISOString(), endedAt: new Date(end).toISOString(),
      endReason: 'ENDED', durationMs, running: false,
      stateMs: { RUNNING: 230 * MIN, PAUSED: 10 * MIN, RINSEBACK: 10 * MIN },
    },
    states: [
      { t: T0, state: 'RUNNING', previous: 'PRIMED' },
      { t: T0 + 90 * MIN, state: 'PAUSED', previous: 'RUNNING' },
      { t: T0 + 100 * MIN, state: 'RUNNING', previous: 'PAUSED' },
      { t: T0 + 240 * MIN, state: 'RINSEBACK', previous: 'RUNNING' },
      { t: end, state: 'ENDED', previous: 'RINSEBACK' },
    ],
    trends,
    alarms,
    events,
    commands: [
      { at: T0 + 89 * MIN, cmdId: 'c101', verb: 'PAUSE', args: [], user: 'perf.jones', role: 'operator', reason: 'Patient repositioning', outcome: 'OK' },
      { at: T0 + 95 * MIN, cmdId: 'c102', verb: 'SET', args: ['TR', 37.5], user: 'perf.jones', role: 'operator', reason: 'Raise reactor temperature per protocol step 4', outcome: 'REJ' },
      { at: T0 + 100 * MIN, cmdId: 'c103', verb: 'RESUME', args: [], user: 'perf.jones', role: 'operator', reason: null, outcome: 'OK' },
    ],
    annotations,
    completeness: { received: 149_700, expected: 150_000, stored: 149_700, keepAlivesAssumed: 0, lost: 300, ratio: 0.998, restarts: 0 },
    channels,
    temperature: { trInBandPct: 93.4, coveredMs: durationMs - 5 * MIN },
  };
  return {
    record,
    sha256: SHA_NOW,
    signatures: [
      {
        auditId: 395, user: 'perf.jones', printedName: 'Dana Jones', role: 'operator', meaning: 'authored', at: end + 20 * MIN,
        atUtc: new Date(end + 20 * MIN).toISOString(), atLocal: '2026-12-02 13:30:00 +01:00', recordSha256: SHA_OLD, changedSince: true,
      },
      {
        auditId: 410, user: 'dr.lee', printedName: 'Dr. Amelia Lee', role: 'supervisor', meaning: 'reviewed', at: end + 70 * MIN,
        atUtc: new Date(end + 70 * MIN).toISOString(), atLocal: '2026-12-02 14:20:00 +01:00', recordSha256: SHA_NOW, changedSince: false,
      },
    ],
    amendments: [
      { auditId: 402, at: T0 + 300 * MIN, user: 'perf.jones', role: 'operator', action: 'annotation.add', summary: 'adverse_event hypotension added (annotation 12)', reason: 'Late entry after review of the nursing chart' },
    ],
    changedSinceSigned: true,
    generatedAt: new Date(end + 90 * MIN).toISOString(),
  };
}
