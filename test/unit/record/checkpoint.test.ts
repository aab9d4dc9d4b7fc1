/**
 * The record's telemetry pass resumed from saved states: in chunks, with a save, a JSON round trip and a restore
 * between chunks, it gives byte for byte the result of one pass (faults, absent channels, gaps, a seq restart,
 * frames arriving out of order, text JSON.parse reads); a checkpoint whose rows changed (a late row inside it) is
 * dropped; the background checkpointer keeps a running session's checkpoint up to the rows received LAG ago.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/audit/canonical.js';
import {
  CHECK_WINDOW_MS, LATE_ROWS_SQL, loadCheckpoint, passStats, RecordCheckpointer, type RecordCheckpointerOptions, saveCheckpoint, telemetryPassFromCheckpoint,
} from '../../../src/record/checkpoint.js';
import {
  foldLevel, TelemetryPassState, telemetryPass, trendBucketMs, type SavedPass,
} from '../../../src/record/telemetryPass.js';
import { deviceRange, SessionReader } from '../../../src/sessions/reader.js';
import { readRecords } from '../../../src/sessions/records.js';
import { SESSION_SCHEMA } from '../../../src/sessions/recorder.js';
import type { SessionRecord } from '../../../src/sessions/types.js';
import { openJournalDb, type Db } from '../../../src/storage/schema.js';
import { dec, enc } from '../../../src/util/exactJson.js';
import { waitFor } from '../../helpers/waitFor.js';

const T0 = Date.UTC(2026, 0, 5, 7, 0, 0) + 337;
const dirs: string[] = [];
const dbs: Db[] = [];

afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function journal(): Db {
  const dir = mkdtempSync(join(tmpdir(), 'msc-ckpt-'));
  dirs.push(dir);
  const db = openJournalDb(dir, { now: () => 0 });
  dbs.push(db);
  db.exec(SESSION_SCHEMA);
  return db;
}

interface Shape {
  device: string;
  rows: number;
  stepMs: number;
  /** Rows [a, b) arrive late (a serial backlog delivered after the rows after them). */
  late?: [number, number];
}

/** Writes a session's rows; returns the device time of its last row. */
function writeRows(db: Db, s: Shape, fromRow = 0, toRow = s.rows): number {
  const tel = db.prepare('INSERT INTO telemetry (device, session, seq, t, rx, v) VALUES (?, ?, ?, ?, ?, ?)');
  const st = db.prepare('INSERT INTO state (device, session, seq, t, rx, state, previous) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const ev = db.prepare('INSERT INTO event (device, session, seq, t, rx, code, prio, active, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  let seed = 11 + fromRow;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let lastT = T0;
  db.transaction(() => {
    for (let i = fromRow; i < toRow; i++) {
      // A 40-step gap in the middle; a seq restart (power-up) at 60 %; seq 3 per row (T, S and EV share it).
      const t = T0 + i * s.stepMs + (i > s.rows / 3 ? 40 * s.stepMs : 0);
      const seq = i < s.rows * 0.6 ? 50_000 + 3 * i : 3 * (i - Math.ceil(s.rows * 0.6));
      const late = s.late && i >= s.late[0] && i < s.late[1];
      const rx = late ? T0 + (s.rows + 100) * s.stepMs + i : t + 7;
      const qb = Math.round((150 + 30 * rnd()) * 1000) / 1000;
      const tr = i % 37 === 0 ? 'null' : String(Math.round((37 + rnd() - 0.5) * 100) / 100);
      const pa = -Math.round((80 + 40 * rnd()) * 10) / 10;
      const tb = i % 2 === 0 ? `,"TB":${Math.round((36.4 + 0.3 * rnd()) * 1000) / 1000}` : '';
      const text = i % 53 === 0
        ? `{ "QB": ${qb}, "PA": ${pa}, "TR": ${tr}, "STR": 37 }` // not the compact form: JSON.parse reads it
        : `{"QB":${qb},"PA":${pa},"TR":${tr},"STR":${i % 400 < 200 ? 37 : 37.5}${tb},"DPR":${(i % 11) / 10}}`;
      tel.run(s.device, 'S-1', seq, t, rx, text);
      if (i % 97 === 0) st.run(s.device, 'S-1', seq + 1, t + 1, rx, i % 2 ? 'RUNNING' : 'PAUSED', 'RUNNING');
      if (i % 61 === 0) ev.run(s.device, 'S-1', seq + 2, t + 2, rx + 1, 'E_AIR', 'M', 1, 'air');
      lastT = t;
    }
  })();
  return lastT;
}

function record(db: Db, device: string, startedAt: number, endedAt: number | null): SessionRecord {
  db.prepare(`INSERT INTO session_record (session, device, started_at, started_rx, ended_at, ended_rx, end_reason, state_ms,
    last_state, last_state_at) VALUES ('S-1', ?, ?, ?, ?, ?, ?, '{}', 'RUNNING', ?)`)
    .run(device, startedAt, startedAt + 7, endedAt, endedAt === null ? null : endedAt + 7, endedAt === null ? null : 'ENDED', startedAt);
  return readRecords(db, { device })[0];
}

function end(db: Db, rec: SessionRecord, endedAt: number): SessionRecord {
  db.prepare("UPDATE session_record SET ended_at = ?, ended_rx = ?, end_reason = 'ENDED' WHERE key = ?").run(endedAt, endedAt + 7, rec.key);
  return readRecords(db, { device: rec.device })[0];
}

const roundTrip = (s: TelemetryPassState) => TelemetryPassState.restore(JSON.parse(JSON.stringify(s.save())) as SavedPass)!;

describe('exact JSON numbers', () => {
  it('reads back every double as the same double, -0 and the infinities included', () => {
    for (const x of [0, -0, 1.1, -37.25, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, Infinity, -Infinity, 2 ** 53 + 2]) {
      expect(Object.is(dec(JSON.parse(JSON.stringify(enc(x)))), x), String(x)).toBe(true);
    }
    expect(Number.isNaN(dec(JSON.parse(JSON.stringify(enc(NaN)))))).toBe(true);
    expect(() => dec('1.5')).toThrow(/not a saved number/);
  });
});

describe('resumable telemetry pass', () => {
  const shapes: Array<Shape & { chunk: number }> = [
    { device: 'MSC-SHORT', rows: 1_200, stepMs: 40, chunk: 97 }, // 1 s buckets
    { device: 'MSC-LONG', rows: 4_000, stepMs: 23_000, chunk: 333 }, // ~26 h: 2 min buckets folded 1 s > ... > 1 min > 2 min
    { device: 'MSC-LATE', rows: 3_000, stepMs: 3_100, chunk: 211, late: [900, 1_000] }, // ~2.6 h, a late backlog
  ];

  for (const shape of shapes) {
    it(`in chunks with saves and restores equals one pass, byte for byte (${shape.device})`, async () => {
      const db = journal();
      const lastT = writeRows(db, shape);
      const rec = record(db, shape.device, T0, lastT + 500);
      const now = lastT + 10_000;
      const reader = new SessionReader(() => db);
      const bucketMs = trendBucketMs(rec.startedAt, rec.endedAt!);
      const once = await telemetryPass(() => db, reader, rec, now, bucketMs);

      let state = TelemetryPassState.fresh(rec.device, rec.startedAt);
      let chunks = 0;
      for (;;) {
        const r = await state.advance(() => db, { to: deviceRange(rec, now).to, maxRows: shape.chunk, pageRows: shape.chunk });
        chunks++;
        state = roundTrip(state);
        // As the background checkpointer does: the buckets kept at the widest base the session can still use.
        state.trends.coarsen(foldLevel(trendBucketMs(rec.startedAt, state.key!.t)));
        if (r.done) break;
      }
      expect(chunks).toBeGreaterThan(5);
      if (shape.device === 'MSC-LONG') expect(state.trends.level).toBeGreaterThan(2);
      expect(state.inOrder).toBe(shape.late === undefined);
      const chunked = roundTrip(state).finish(() => db, reader, rec, now, bucketMs);
      expect(canonicalJson(chunked)).toBe(canonicalJson(once));
      // What the pass found: so the comparison above is about something.
      expect(once.trends.bucketMs).toBe(bucketMs);
      expect(once.trends.t.length).toBeGreaterThan(40);
      expect(once.channels.channels.TR.faults).toBeGreaterThan(0);
      expect(once.completeness.restarts).toBe(1);
      expect(once.completeness.stored).toBeGreaterThan(shape.rows);
    });
  }

  it('a trend mean is the fold of 1 s sums in time order, whichever way the pass went', () => {
    // Values whose sum depends on the order of the additions: the fold gives one fixed order.
    const state = TelemetryPassState.fresh('MSC-X', T0);
    const i = state.trends.channels.indexOf('QB');
    const xs = [0.1, 0.2, 0.3, 1e16, -1e16, 0.7];
    xs.forEach((x, k) => { state.trends.sample(T0 + k * 1_000); state.trends.value(i, x); });
    const folded = roundTrip(state).trends.result(60_000).series.QB.mean[0];
    const direct = Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 1e4) / 1e4;
    // Summed 1 s at a time then folded: ((((0.1 + 0.2) + 0.3) + 1e16) + -1e16) + 0.7, the same as the direct sum here...
    expect(folded).toBe(direct);
    // ...and the same after the kept buckets were folded early (a running session's checkpoint).
    const early = TelemetryPassState.fresh('MSC-X', T0);
    xs.forEach((x, k) => { early.trends.sample(T0 + k * 1_000); early.trends.value(i, x); if (k === 2) early.trends.coarsen(foldLevel(60_000)); });
    expect(early.trends.result(60_000).series.QB.mean[0]).toBe(folded);
  });
});

describe('telemetry checkpoints', () => {
  const shape: Shape = { device: 'MSC-CK', rows: 2_000, stepMs: 200 };

  it('the record reads only the tail after a checkpoint whose rows are unchanged, and starts again when a late row lands inside it', async () => {
    const db = journal();
    const midT = writeRows(db, shape, 0, 1_200);
    let rec = record(db, shape.device, T0, null);
    const now = midT + 3_600_000;
    const ck = new RecordCheckpointer({ database: () => db, now: () => now, logger: { info: () => {}, warn: () => {} }, pageRows: 500, chunkRows: 500 });
    await ck.turn();
    expect(ck.stats.saved).toBeGreaterThan(0);
    const kept = await loadCheckpoint(db, rec);
    expect(kept.invalid).toBe(false);
    expect(kept.state!.key!.t).toBe(midT);
    expect(kept.state!.telemetry.n).toBe(1_200);

    const lastT = writeRows(db, shape, 1_200);
    rec = end(db, rec, lastT + 100);
    const reader = new SessionReader(() => db);
    const bucketMs = trendBucketMs(rec.startedAt, rec.endedAt!);
    const before = { ...passStats };
    const resumed = await telemetryPassFromCheckpoint(() => db, reader, rec, now, bucketMs);
    expect(passStats.restored - before.restored).toBe(1);
    expect(passStats.tailRows - before.tailRows).toBe(800);
    expect(canonicalJson(resumed)).toBe(canonicalJson(await telemetryPass(() => db, reader, rec, now, bucketMs)));

    // A serial console's backlog lands inside the checkpoint's rows: it no longer describes them.
    db.prepare('INSERT INTO telemetry (device, session, seq, t, rx, v) VALUES (?, ?, ?, ?, ?, ?)')
      .run(shape.device, 'S-1', 7, T0 + 5 * 200 + 50, now, '{"QB":999,"TR":30}');
    expect(await loadCheckpoint(db, rec)).toEqual({ state: null, invalid: true });
    const again = await telemetryPassFromCheckpoint(() => db, reader, rec, now, bucketMs);
    expect(passStats.invalidated - before.invalidated).toBe(1);
    expect(again.channels.channels.QB.max).toBe(999);
    expect(canonicalJson(again)).toBe(canonicalJson(await telemetryPass(() => db, reader, rec, now, bucketMs)));

    // So is a state frame received before the checkpoint's last row but written after it, and a removed row.
    await ck.turn(); // the session has ended: nothing is moved on
    const fresh = TelemetryPassState.fresh(rec.device, rec.startedAt);
    await fresh.advance(() => db, { to: deviceRange(rec, now).to });
    expect(saveCheckpoint(db, rec, fresh, now)).toBe(true);
    expect((await loadCheckpoint(db, rec)).invalid).toBe(false);
    db.prepare('INSERT INTO state (device, session, seq, t, rx, state, previous) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(shape.device, 'S-1', 8, T0 + 3_000, T0 + 3_000, 'PAUSED', 'RUNNING');
    expect((await loadCheckpoint(db, rec)).invalid).toBe(true);
    expect(saveCheckpoint(db, rec, fresh, now)).toBe(true);
    db.prepare('DELETE FROM telemetry WHERE id = (SELECT min(id) FROM telemetry)').run();
    expect((await loadCheckpoint(db, rec)).invalid).toBe(true);
  });

  it('a checkpoint past the session\'s end (device times after ENDED) is not used', async () => {
    const db = journal();
    const lastT = writeRows(db, shape);
    let rec = record(db, shape.device, T0, null);
    const ck = new RecordCheckpointer({ database: () => db, now: () => lastT + 3_600_000, logger: { info: () => {}, warn: () => {} } });
    await ck.turn();
    rec = end(db, rec, T0 + 100_000); // ended before the rows the checkpoint passed
    const before = { ...passStats };
    const reader = new SessionReader(() => db);
    const bucketMs = trendBucketMs(rec.startedAt, rec.endedAt!);
    const got = await telemetryPassFromCheckpoint(() => db, reader, rec, lastT, bucketMs);
    expect(passStats.fromStart - before.fromStart).toBe(1);
    expect(canonicalJson(got)).toBe(canonicalJson(await telemetryPass(() => db, reader, rec, lastT, bucketMs)));
  });

  it('the background checkpointer keeps a running session\'s checkpoint up to the rows received LAG ago, found from the session table', async () => {
    const db = journal();
    let lastT = writeRows(db, shape, 0, 1_000);
    const rec = record(db, shape.device, T0, null); // a journal with a running session: no bus event needed
    let now = lastT + 60_000;
    const infos: string[] = [];
    const ck = new RecordCheckpointer({
      database: () => db, now: () => now, intervalMs: 20, firstDelayMs: 0, lagMs: 10_000, pageRows: 300, chunkRows: 300,
      logger: { info: (_o, m) => infos.push(m ?? ''), warn: () => {} },
    });
    ck.start();
    try {
      const at = async () => (await loadCheckpoint(db, rec)).state?.key?.t ?? null;
      await waitFor(async () => (await at()) === lastT, { message: 'checkpoint at the last row' });
      expect(ck.stats.rows).toBe(1_000);
      // Rows received 5 s ago are left for later (they may still be arriving out of order)...
      const recentT = writeRows(db, { ...shape }, 1_000, 1_100);
      db.prepare('UPDATE telemetry SET rx = ? WHERE device = ? AND t > ?').run(now - 5_000, shape.device, lastT);
      const turns = ck.stats.turns;
      await waitFor(() => ck.stats.turns >= turns + 2, { message: 'two more turns' });
      expect(await at()).toBe(lastT);
      // ...and passed once they are older than the lag.
      now += 10_000;
      await waitFor(async () => (await at()) === recentT, { message: 'checkpoint moved on' });
      lastT = recentT;
      expect(ck.stats.rows).toBe(1_100);
      expect(ck.stats.restarts).toBe(0);
      expect(infos).toContain('record checkpoint saved');
    } finally {
      await ck.stop();
    }
    const turns = ck.stats.turns;
    await new Promise((r) => setImmediate(r));
    expect(ck.stats.turns).toBe(turns);
  });
});

describe('checking a checkpoint without stalling the event loop', () => {
  const shape: Shape = { device: 'MSC-INC', rows: 2_000, stepMs: 200 };
  const quiet = { info: () => {}, warn: () => {} };
  const lag = 10_000;
  const insertTelemetry = (db: Db, seq: number, t: number, rx: number, v = '{"QB":999,"TR":30}') =>
    db.prepare('INSERT INTO telemetry (device, session, seq, t, rx, v) VALUES (?, ?, ?, ?, ?, ?)').run(shape.device, 'S-1', seq, t, rx, v);
  /** The journal's checkpoint as JSON, and a fresh pass over every row received LAG before `now` as the checkpointer runs it. */
  const saved = (db: Db, rec: SessionRecord) =>
    (db.prepare('SELECT data FROM record_checkpoint WHERE session_key = ?').get(rec.key) as { data: string }).data;
  async function freshPass(db: Db, rec: SessionRecord, now: number, pageRows: number): Promise<SavedPass> {
    const fresh = TelemetryPassState.fresh(rec.device, rec.startedAt);
    await fresh.advance(() => db, { to: Infinity, rxBefore: now - lag, pageRows, runningSince: rec.startedAt });
    return fresh.save();
  }

  it('the full check counts the prefix window by window, yielding between windows, with the same answers', async () => {
    const db = journal();
    writeRows(db, shape, 0, 1_200);
    const rec = record(db, shape.device, T0, null);
    const state = TelemetryPassState.fresh(rec.device, rec.startedAt);
    await state.advance(() => db, { to: Infinity });
    expect(saveCheckpoint(db, rec, state, 0)).toBe(true);
    const key = state.key!;
    // ~248 s of rows every 200 ms with an 8 s gap: windows of 10 s start on row times (a boundary row counted twice
    // or not at all would show), windows of 1 s meet empty ones in the gap, 7.777 s ones fall between rows, and one
    // window of 15 min holds it all.
    const windows = [10_000, 1_000, 7_777, CHECK_WINDOW_MS];
    const invalid = async () => Promise.all(windows.map(async (windowMs) => (await loadCheckpoint(db, rec, { windowMs })).invalid));
    expect(await invalid()).toEqual([false, false, false, false]);

    // Not one synchronous block: an immediate scheduled before the check runs before the check ends...
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    await loadCheckpoint(db, rec, { windowMs: 10_000 }).then(() => order.push('check'));
    expect(order).toEqual(['immediate', 'check']);
    // ...while a check within one window is (the comparison above is about something).
    order.length = 0;
    setImmediate(() => order.push('immediate'));
    await loadCheckpoint(db, rec, { windowMs: CHECK_WINDOW_MS }).then(() => order.push('check'));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['check', 'immediate']);

    // A row just after the key, in the last window, is not inside the prefix; a late row in a middle window is.
    const after = insertTelemetry(db, key.seq + 1, key.t, T0).lastInsertRowid;
    expect(await invalid()).toEqual([false, false, false, false]);
    db.prepare('DELETE FROM telemetry WHERE id = ?').run(after);
    const late = insertTelemetry(db, 7, T0 + 100_000 + 50, T0).lastInsertRowid;
    expect(await invalid()).toEqual([true, true, true, true]);
    db.prepare('DELETE FROM telemetry WHERE id = ?').run(late);
    expect(await invalid()).toEqual([false, false, false, false]);
    // A removed row in a middle window.
    db.prepare('DELETE FROM telemetry WHERE device = ? AND t = ?').run(shape.device, T0 + 60_000);
    expect(await invalid()).toEqual([true, true, true, true]);
  });

  it('the incremental check reads the new rows by rowid range, not the session\'s prefix through the index', () => {
    const db = journal();
    for (const [table, sql] of Object.entries(LATE_ROWS_SQL)) {
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ w: 1, device: 'X', from: 0, keyT: 0, keySeq: 0, lastRx: 0, lastSeq: 0 }) as Array<{ detail: string }>;
      expect(plan.map((p) => p.detail)).toEqual([`SEARCH ${table} USING INTEGER PRIMARY KEY (rowid>?)`]);
    }
  });

  /** A running session of 1,000 rows and a checkpointer over it (pages and chunks of 300 rows, windows of 10 s). */
  function runningSession(over: Partial<RecordCheckpointerOptions> = {}) {
    const db = journal();
    writeRows(db, shape, 0, 1_000);
    const rec = record(db, shape.device, T0, null);
    const now = T0 + 3_600_000;
    const ck = new RecordCheckpointer({
      database: () => db, now: () => now, logger: quiet, lagMs: lag, pageRows: 300, chunkRows: 300, checkWindowMs: 10_000, ...over,
    });
    return { db, rec, now, ck };
  }

  it('between turns the checkpointer counts only the rows added since its previous turn, not the whole prefix', async () => {
    const db = journal();
    writeRows(db, shape, 0, 1_000);
    const rec = record(db, shape.device, T0, null);
    const now = T0 + 3_600_000;
    const opts = { database: () => db, now: () => now, logger: quiet, lagMs: lag, pageRows: 300, chunkRows: 300, checkWindowMs: 10_000 };
    const ck = new RecordCheckpointer(opts);
    await ck.turn(); // no checkpoint yet: nothing to check
    expect(ck.stats).toMatchObject({ rows: 1_000, fullChecks: 0, incrementalChecks: 0, restarts: 0 });
    writeRows(db, shape, 1_000, 1_400);
    await ck.turn();
    expect(ck.stats).toMatchObject({ rows: 1_400, fullChecks: 0, incrementalChecks: 1, restarts: 0 });
    await ck.turn(); // nothing new: the checkpoint is not saved again, and is still known
    writeRows(db, shape, 1_400, 1_500);
    await ck.turn();
    expect(ck.stats).toMatchObject({ rows: 1_500, fullChecks: 0, incrementalChecks: 3, restarts: 0 });
    expect(JSON.parse(saved(db, rec))).toEqual(await freshPass(db, rec, now, 300));

    // A gateway started again knows nothing: the full check.
    const again = new RecordCheckpointer(opts);
    await again.turn();
    expect(again.stats).toMatchObject({ fullChecks: 1, incrementalChecks: 0, restarts: 0 });
    await again.turn();
    expect(again.stats).toMatchObject({ fullChecks: 1, incrementalChecks: 1, restarts: 0 });
    // A checkpoint in the journal that is not the one the checkpointer saved: the full check.
    const other = TelemetryPassState.fresh(rec.device, rec.startedAt);
    await other.advance(() => db, { to: T0 + 50_000 });
    expect(saveCheckpoint(db, rec, other, now)).toBe(true);
    await again.turn();
    expect(again.stats).toMatchObject({ fullChecks: 2, incrementalChecks: 1, restarts: 0 });
    expect(JSON.parse(saved(db, rec))).toEqual(await freshPass(db, rec, now, 300));
  });

  it('after a failed turn, and for a session that stopped running, the checkpointer checks in full again', async () => {
    const db = journal();
    writeRows(db, shape, 0, 1_000);
    let rec = record(db, shape.device, T0, null);
    const now = T0 + 3_600_000;
    let failSave = false;
    const ck = new RecordCheckpointer({
      database: () => db, now: () => now, lagMs: lag, checkWindowMs: 10_000,
      logger: { info: (_o, m) => { if (failSave && m === 'record checkpoint saved') throw new Error('log sink gone'); }, warn: () => {} },
    });
    await ck.turn();
    writeRows(db, shape, 1_000, 1_100);
    failSave = true; // the turn fails after it saved its checkpoint
    await ck.turn();
    expect(ck.stats).toMatchObject({ failed: 1, fullChecks: 0, incrementalChecks: 1 });
    failSave = false;
    await ck.turn();
    expect(ck.stats).toMatchObject({ failed: 1, fullChecks: 1, incrementalChecks: 1, restarts: 0 });
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 1, incrementalChecks: 2 });
    // A turn that does not list the session (it ended) forgets it; were it running again, it is checked in full.
    rec = end(db, rec, T0 + 500_000);
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 1, incrementalChecks: 2 });
    db.prepare('UPDATE session_record SET ended_at = NULL, ended_rx = NULL, end_reason = NULL WHERE key = ?').run(rec.key);
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 2, incrementalChecks: 2, restarts: 0 });
  });

  it('a late telemetry row landing inside the checkpoint between two turns is found by the incremental check', async () => {
    const { db, rec, now, ck } = runningSession();
    await ck.turn();
    const lastT = writeRows(db, shape, 1_000, 1_200);
    await ck.turn();
    expect(ck.stats).toMatchObject({ incrementalChecks: 1, restarts: 0 });
    // A serial console's backlog: received with the last rows (rx = device time + 7), its device time inside the
    // checkpoint's rows.
    insertTelemetry(db, 7, T0 + 5 * 200 + 50, lastT + 7);
    writeRows(db, shape, 1_200, 1_300);
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 0, incrementalChecks: 2, restarts: 1 });
    const kept = JSON.parse(saved(db, rec)) as SavedPass;
    expect(kept.telemetry.n).toBe(1_301);
    expect(kept).toEqual(await freshPass(db, rec, now, 300));
    // The pass started again is known in turn: no needless restart after it.
    writeRows(db, shape, 1_300, 1_400);
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 0, incrementalChecks: 3, restarts: 1 });
    expect(JSON.parse(saved(db, rec))).toEqual(await freshPass(db, rec, now, 300));
  });

  it('a row landing inside the checkpoint while a turn moves it on is found the next turn (watermarks read before the advance)', async () => {
    const { db, rec, now, ck } = runningSession({ pageRows: 100, chunkRows: 10_000 });
    await ck.turn();
    const lastT = writeRows(db, shape, 1_000, 1_400);
    // The turn yields between pages of its advance: the row lands there, behind the pass, after the watermarks.
    let landedDuringTurn = -1;
    setImmediate(() => {
      insertTelemetry(db, 7, T0 + 5 * 200 + 50, lastT + 7);
      landedDuringTurn = ck.stats.turns;
    });
    await ck.turn();
    expect(landedDuringTurn).toBe(1);
    expect(ck.stats).toMatchObject({ rows: 1_400, fullChecks: 0, incrementalChecks: 1, restarts: 0 });
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 0, incrementalChecks: 2, restarts: 1 });
    const kept = JSON.parse(saved(db, rec)) as SavedPass;
    expect(kept.telemetry.n).toBe(1_401);
    expect(kept).toEqual(await freshPass(db, rec, now, 100));
  });

  it('a late state row received within the checkpoint\'s rows is found by the incremental check', async () => {
    const { db, rec, now, ck } = runningSession();
    await ck.turn();
    const before = JSON.parse(saved(db, rec)) as SavedPass;
    // Received before the checkpoint's last telemetry row, written after it.
    db.prepare('INSERT INTO state (device, session, seq, t, rx, state, previous) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(shape.device, 'S-1', 8, T0 + 3_000, T0 + 3_000, 'PAUSED', 'RUNNING');
    writeRows(db, shape, 1_000, 1_100);
    await ck.turn();
    expect(ck.stats).toMatchObject({ fullChecks: 0, incrementalChecks: 1, restarts: 1 });
    const kept = JSON.parse(saved(db, rec)) as SavedPass;
    expect(kept.state.n).toBe(before.state.n + 2); // that row, and the one rows 1,000-1,099 brought
    expect(kept).toEqual(await freshPass(db, rec, now, 300));
  });

  it('a row removed inside the checkpoint is not seen between turns, but the record built when the session ends finds it', async () => {
    const s = runningSession();
    const { db, now, ck } = s;
    let rec = s.rec;
    await ck.turn();
    db.prepare('DELETE FROM telemetry WHERE device = ? AND t = ?').run(shape.device, T0 + 60_000);
    const lastT = writeRows(db, shape, 1_000, 1_200);
    await ck.turn();
    // The incremental check looks at added rows only (module comment): the checkpoint stays...
    expect(ck.stats).toMatchObject({ fullChecks: 0, incrementalChecks: 1, restarts: 0 });
    rec = end(db, rec, lastT + 100);
    const reader = new SessionReader(() => db);
    const bucketMs = trendBucketMs(rec.startedAt, rec.endedAt!);
    const before = { ...passStats };
    // ...and the record's own full check drops it: the pass goes from the first row.
    const got = await telemetryPassFromCheckpoint(() => db, reader, rec, now, bucketMs);
    expect(passStats.invalidated - before.invalidated).toBe(1);
    expect(passStats.fromStart - before.fromStart).toBe(1);
    expect(passStats.restored - before.restored).toBe(0);
    expect(canonicalJson(got)).toBe(canonicalJson(await telemetryPass(() => db, reader, rec, now, bucketMs)));
  });
});
