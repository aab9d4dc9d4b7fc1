/** The record's telemetry pass: the value scanner reads what JSON.parse reads; completeness equals the reader's in any order. */
import { describe, expect, it } from 'vitest';
import { SessionReader } from '../../../src/sessions/reader.js';
import { ChannelSlot } from '../../../src/sessions/summary.js';
import type { SessionRecord } from '../../../src/sessions/types.js';
import { prepareCommit } from '../../../src/storage/journalRows.js';
import { openJournalDb } from '../../../src/storage/schema.js';
import { telemetryPass, ValueScanner, type ChannelEntry } from '../../../src/record/telemetryPass.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function scanner() {
  const made = new Map<string, ChannelEntry>();
  const s = new ValueScanner((key) => {
    let e = made.get(key);
    if (!e) made.set(key, (e = { key, slot: new ChannelSlot(), trend: -1, band: 0 }));
    return e;
  });
  return (text: string): Record<string, number | null> | null => {
    const n = s.scan(text);
    if (n < 0) return null;
    const out: Record<string, number | null> = {};
    for (let k = 0; k < n; k++) out[s.entries[k].key] = s.values[k];
    return out;
  };
}

describe('ValueScanner', () => {
  it('reads every number exactly as JSON.parse does, faults as null', () => {
    const scan = scanner();
    const values = [0, -0, 1, -1, 37.2, 36.95, -100.25, 7.38, 0.1, 0.3, 123456.789, 1e-7, 2.5e21, 1.2345678901234567, 9007199254740993, 150, null];
    for (const v of values) {
      const text = JSON.stringify({ QB: v, TR: v, X_NEW: v });
      const got = scan(text);
      expect(got, text).toEqual(JSON.parse(text));
      if (v !== null) expect(Object.is(got!.QB, JSON.parse(text).QB), text).toBe(true);
    }
    let seed = 7;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const x = Math.round(((seed / 2 ** 31) * 1000 - 500) * 10 ** (i % 5)) / 10 ** (i % 5);
      const text = JSON.stringify({ PA: x, PV: -x });
      expect(scan(text)).toEqual(JSON.parse(text));
    }
  });

  it('follows keys that change between texts, and leaves anything else to JSON.parse', () => {
    const scan = scanner();
    expect(scan('{"QB":150,"TR":37.1}')).toEqual({ QB: 150, TR: 37.1 });
    expect(scan('{"QB":151,"TRX":37.2}')).toEqual({ QB: 151, TRX: 37.2 });
    expect(scan('{"Q":1,"QB":2}')).toEqual({ Q: 1, QB: 2 });
    expect(scan('{}')).toEqual({});
    for (const odd of ['{"Q\\"B":1}', '{ "QB":1}', '{"QB": 1}', '{"QB":"1"}', '{"QB":true}', '{"QB":1', '[1]', '{"QB":1}x', '{"QB":nul}']) {
      expect(scan(odd), odd).toBeNull();
    }
  });
});

describe('telemetryPass completeness', () => {
  it('equals the reader\'s sorted count whether frames arrived in order or not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-pass-'));
    const db = openJournalDb(dir, { now: () => 0 });
    try {
      const T0 = Date.UTC(2026, 0, 5);
      const commit = prepareCommit(db);
      const rec = (device: string): SessionRecord => ({
        key: 1, sessionId: 'S-1', device, startedAt: T0, startedRx: T0, endedAt: T0 + 100_000, endedRx: T0 + 100_000,
        endReason: 'ENDED', stateMs: {}, lastState: 'ENDED', lastStateAt: T0 + 100_000, participant: null,
      });
      // In order, with a lost frame and a power-up restart; then the same frames with a late-delivered backlog.
      for (const [device, late] of [['MSC-IN', false], ['MSC-LATE', true]] as const) {
        let seq = 5_000;
        for (let i = 0; i < 400; i++) {
          const t = T0 + i * 200;
          if (i === 150) seq = 0; // restart
          if (i === 40) seq++; // lost
          const rx = late && i >= 100 && i < 120 ? T0 + 90_000 + i : t + 3;
          if (i % 50 === 0) commit([{ kind: 'state', change: { deviceId: device, seq: seq++, t, rx, state: 'RUNNING', sessionId: 'S-1', previous: null } }]);
          commit([{ kind: 'telemetry', sample: { deviceId: device, sessionId: 'S-1', seq: seq++, t, rx, v: { QB: i } } }]);
        }
        const reader = new SessionReader(() => db);
        const pass = await telemetryPass(() => db, reader, rec(device), T0 + 200_000, 1_000);
        expect(pass.completeness).toEqual(reader.completeness(rec(device), T0 + 200_000));
        expect(pass.completeness.restarts).toBe(1);
        expect(pass.completeness.expected).toBeGreaterThan(pass.completeness.stored); // the lost frame
      }
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
