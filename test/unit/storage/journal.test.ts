import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/bus.js';
import { Journal } from '../../../src/storage/journal.js';
import { ManualClock } from '../../../src/util/clock.js';
import type { StorageCondition } from '../../../src/storage/types.js';
import { waitFor } from '../../helpers/waitFor.js';
import { alarmTransition, deviceEvent, fullValues, sample, stateChange, T0, tempDir } from './fixtures.js';

let tmp: ReturnType<typeof tempDir>;
const journals: Journal[] = [];
/** Every test runs twice: commits on the event loop, and in the writer thread (what the gateway runs). */
let writerThread = false;

function journal(opts: Partial<ConstructorParameters<typeof Journal>[0]> = {}): Journal {
  const j = new Journal({ dataDir: tmp.dir, writerThread, ...opts });
  journals.push(j);
  return j;
}

/** A second, independent connection: what is there is on disk, not in the journal's memory. */
function countOnDisk(table: string, dir = tmp.dir): number {
  const db = new Database(join(dir, 'journal.sqlite'), { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

beforeEach(() => {
  tmp = tempDir();
});

/** The writer thread answers asynchronously: wait for its `commits`-th commit (at once when committing inline). */
async function written(j: Journal, commits: number): Promise<void> {
  if (writerThread) await waitFor(() => j.status().commits >= commits, { message: `commit ${commits} written` });
}
afterEach(async () => {
  for (const j of journals.splice(0)) await j.stop();
  tmp.cleanup();
});

for (const threaded of [false, true]) describe(threaded ? 'with the writer thread' : 'committing on the event loop', () => {
  beforeEach(() => {
    writerThread = threaded;
  });

  describe('Journal commit cadence', () => {
    it('holds an append in memory, then commits it on the 100 ms cadence without anyone waiting', async () => {
      // The cadence is the journal's own interval on its clock: a ManualClock fires it exactly when advanced, however
      // loaded the machine. fs callbacks, setImmediate and the checkpoint worker stay real.
      const clock = new ManualClock(T0);
      const j = journal({ clock });
      await j.start();
      j.appendTelemetry(sample(1, { QB: 150 }));
      expect(j.status()).toMatchObject({ pending: 1, committed: 0, commits: 0 });
      clock.advance(99);
      expect(j.status()).toMatchObject({ pending: 1, committed: 0, commits: 0 });
      expect(countOnDisk('telemetry')).toBe(0);
      clock.advance(1);
      await written(j, 1);
      expect(j.status()).toMatchObject({ pending: 0, committed: 1, commits: 1 });
      expect(countOnDisk('telemetry')).toBe(1);
      // And again on the next tick, for what came in meanwhile; an idle tick commits nothing.
      j.appendTelemetry(sample(2, { QB: 151 }));
      clock.advance(99);
      expect(j.status()).toMatchObject({ pending: 1, committed: 1, commits: 1 });
      clock.advance(1);
      await written(j, 2);
      expect(j.status()).toMatchObject({ pending: 0, committed: 2, commits: 2 });
      clock.advance(100);
      expect(j.status().commits).toBe(2);
      expect(countOnDisk('telemetry')).toBe(2);
    });

    it('group-commits on the next turn when committed() is awaited, in one transaction for all waiters', async () => {
      const j = journal({ commitIntervalMs: 60_000 });
      await j.start();
      for (let i = 0; i < 50; i++) j.appendTelemetry(sample(i, fullValues(i)));
      const before = j.status().commits;
      await Promise.all([j.committed(), j.committed(), j.committed()]);
      expect(j.status().commits - before).toBe(1);
      expect(j.status().pending).toBe(0);
      expect(countOnDisk('telemetry')).toBe(50);
    });

    it('committed() with nothing pending resolves at once', async () => {
      const j = journal({ commitIntervalMs: 60_000 });
      await j.start();
      await j.committed();
      expect(j.status().commits).toBe(0);
    });

    it('does not resolve committed() before start() has opened the database', async () => {
      const j = journal();
      j.appendTelemetry(sample(1, { QB: 1 }));
      let done = false;
      const p = j.committed().then(() => (done = true));
      await new Promise((r) => setImmediate(r));
      expect(done).toBe(false);
      await j.start();
      await p;
      expect(countOnDisk('telemetry')).toBe(1);
    });

    it('journals telemetry, state, events and alarms from the bus, and stop() detaches it (safe twice)', async () => {
      const bus = new EventBus();
      const j = journal({ bus });
      await j.start();
      bus.emit('telemetry', sample(1, { QB: 150 }));
      bus.emit('state', stateChange(2, 'RUNNING', { previous: 'PRIMED' }));
      bus.emit('event', deviceEvent(3, 'AIR_DETECTED'));
      bus.emit('alarm', alarmTransition(T0 + 200));
      await j.committed();
      expect([countOnDisk('telemetry'), countOnDisk('state'), countOnDisk('event'), countOnDisk('alarm')]).toEqual([1, 1, 1, 1]);
      await j.stop();
      await j.stop();
      bus.emit('telemetry', sample(4, { QB: 150 }));
      expect(countOnDisk('telemetry')).toBe(1);
    });
  });

  describe('Journal contents', () => {
    it('stores a redelivered record (same device, seq, t) once, and counts the duplicate', async () => {
      const j = journal();
      await j.start();
      j.appendTelemetry(sample(7, { QB: 150 }));
      j.appendTelemetry(sample(7, { QB: 150 }));
      await j.committed();
      j.appendTelemetry(sample(7, { QB: 150 }));
      j.appendState(stateChange(8, 'RUNNING'));
      j.appendState(stateChange(8, 'RUNNING'));
      j.appendEvent(deviceEvent(9, 'AIR_DETECTED'));
      j.appendEvent(deviceEvent(9, 'AIR_DETECTED'));
      // Same seq after a power-up (seq restarts at 0) at another device time is another frame.
      j.appendTelemetry(sample(7, { QB: 151 }, { t: T0 + 999_999 }));
      await j.committed();
      expect(countOnDisk('telemetry')).toBe(2);
      expect(countOnDisk('state')).toBe(1);
      expect(countOnDisk('event')).toBe(1);
      expect(j.status().duplicates).toBe(4);
    });

    it('dedupes and keeps arrival order inside large batches too (multi-row inserts)', async () => {
      const j = journal({ commitIntervalMs: 60_000 });
      await j.start();
      const order = [...Array(37).keys()].reverse();
      for (const i of order) {
        j.appendTelemetry(sample(i, { QB: i }));
        j.appendTelemetry(sample(i, { QB: i }));
      }
      await j.committed();
      expect(j.status()).toMatchObject({ committed: 74, duplicates: 37 });
      const seqs = j.database()!.prepare('SELECT seq FROM telemetry ORDER BY id').pluck().all();
      expect(seqs).toEqual(order);
    });

    it('keeps a sensor fault (null) apart from an unmeasured channel, and keeps unknown keys', async () => {
      const j = journal();
      await j.start();
      j.appendTelemetry(sample(1, { QB: 150.1, PV: null, NEWCH: 3.25 }));
      await j.committed();
      const pages = [];
      for await (const page of j.iterateTelemetry('MSC-0001', T0, T0 + 1_000)) pages.push(...page);
      expect(pages).toHaveLength(1);
      expect(pages[0].v).toEqual({ QB: 150.1, PV: null, NEWCH: 3.25 });
      expect('TR' in pages[0].v).toBe(false);
      expect(pages[0]).toMatchObject({ deviceId: 'MSC-0001', sessionId: 'S-1', seq: 1, t: T0 + 40, rx: T0 + 45 });
      expect(j.knownChannels('MSC-0001')).toEqual(['NEWCH', 'PV', 'QB']);
    });

    it('lastSeq() is the latest sequenced frame across telemetry, state and events, per device', async () => {
      const j = journal();
      await j.start();
      expect(j.lastSeq('MSC-0001')).toBeNull();
      j.appendTelemetry(sample(10, { QB: 1 }));
      j.appendState(stateChange(11, 'PAUSED'));
      j.appendEvent(deviceEvent(12, 'AIR_DETECTED'));
      j.appendTelemetry(sample(5, { QB: 1 }, { deviceId: 'MSC-0002' }));
      await j.committed();
      expect(j.lastSeq('MSC-0001')).toEqual({ seq: 12, t: T0 + 12 * 40, rx: expect.any(Number) });
      expect(j.lastSeq('MSC-0002')).toEqual({ seq: 5, t: T0 + 5 * 40, rx: expect.any(Number) });
    });

    it('returns raw history in time order with the chosen channels, and says when the limit cut it', async () => {
      const j = journal();
      await j.start();
      // Appended out of order: history is ordered by device time, not by arrival.
      for (const i of [3, 1, 2, 0]) j.appendTelemetry(sample(i, { QB: 100 + i, PV: i === 2 ? null : 50 + i, TR: 37 }));
      j.appendTelemetry(sample(1, { QB: 999 }, { deviceId: 'MSC-0002' }));
      await j.committed();
      const all = await j.telemetry('MSC-0001', { from: T0, to: T0 + 1_000, channels: ['QB', 'PV'] });
      expect(all.truncated).toBe(false);
      expect(all.samples.map((s) => s.t)).toEqual([0, 1, 2, 3].map((i) => T0 + i * 40));
      expect(all.samples[2].v).toEqual({ QB: 102, PV: null });
      const cut = await j.telemetry('MSC-0001', { from: T0 + 40, to: T0 + 1_000, limit: 2 });
      expect(cut.truncated).toBe(true);
      expect(cut.samples.map((s) => s.v.QB)).toEqual([101, 102]);
      expect(cut.channels).toEqual(['PV', 'QB', 'TR']);
    });

    it('aggregates the mean per epoch-aligned bucket in SQL, leaving faults out of the mean', async () => {
      const j = journal();
      await j.start();
      // One sample a second for 20 s from an aligned start; QB = i, PV faulted on every odd second.
      for (let i = 0; i < 20; i++) {
        j.appendTelemetry(sample(i, { QB: i, PV: i % 2 === 1 ? null : 100 }, { t: T0 + i * 1_000 }));
      }
      await j.committed();
      const r = await j.telemetry('MSC-0001', { from: T0, to: T0 + 20_000, everyMs: 5_000, channels: ['QB', 'PV', 'DO'] });
      expect(r.samples).toEqual([
        { t: T0, v: { QB: 2, PV: 100 } },
        { t: T0 + 5_000, v: { QB: 7, PV: 100 } },
        { t: T0 + 10_000, v: { QB: 12, PV: 100 } },
        { t: T0 + 15_000, v: { QB: 17, PV: 100 } },
      ]);
      // A range that starts inside a bucket labels it with the bucket start and averages only what is in range.
      const inner = await j.telemetry('MSC-0001', { from: T0 + 3_000, to: T0 + 7_000, everyMs: 5_000, channels: ['QB'] });
      expect(inner.samples).toEqual([{ t: T0, v: { QB: 3.5 } }, { t: T0 + 5_000, v: { QB: 5.5 } }]);
      // Without named channels, every channel the device ever sent is aggregated.
      const allCh = await j.telemetry('MSC-0001', { from: T0, to: T0 + 5_000, everyMs: 5_000 });
      expect(allCh.channels).toEqual(['PV', 'QB']);
    });

    it('iterates a long range in chunks, in (t, seq) order, across chunk boundaries', async () => {
      const j = journal();
      await j.start();
      for (let i = 0; i < 12_000; i++) j.appendTelemetry(sample(i, { QB: i }));
      await j.committed();
      const sizes: number[] = [];
      let last = -1;
      for await (const page of j.iterateTelemetry('MSC-0001', T0, T0 + 12_000 * 40, 5_000)) {
        sizes.push(page.length);
        for (const s of page) {
          expect(s.seq).toBe(last + 1);
          last = s.seq;
        }
      }
      expect(sizes).toEqual([5_000, 5_000, 2_000]);
    });

    it('returns states, events and alarms for a range', async () => {
      const j = journal();
      await j.start();
      j.appendState(stateChange(1, 'RUNNING', { previous: 'PRIMED' }));
      j.appendEvent(deviceEvent(2, 'AIR_DETECTED', { active: false }));
      j.appendAlarm(alarmTransition(T0 + 100));
      j.appendAlarm(alarmTransition(T0 + 300, 'PV_HIGH', 'ack'));
      await j.committed();
      const range = { from: T0, to: T0 + 1_000 };
      expect(j.states('MSC-0001', range)).toEqual([stateChange(1, 'RUNNING', { previous: 'PRIMED' })]);
      expect(j.events('MSC-0001', range)).toEqual([deviceEvent(2, 'AIR_DETECTED', { active: false })]);
      expect(j.alarms('MSC-0001', range).map((a) => a.kind)).toEqual(['raise', 'ack']);
      expect(j.alarms(null, { from: T0 + 200, to: T0 + 1_000 })).toEqual([alarmTransition(T0 + 300, 'PV_HIGH', 'ack')]);
    });
  });

  describe('Journal failure handling', () => {
    it('an unwritable data dir (a path under a regular file) raises STORAGE_FAILURE, keeps acking, and recovers', async () => {
      // Tests run as root, where chmod 0500 does not stop writes: a path below a regular file
      // (ENOTDIR) is unwritable for root too.
      const blocker = join(tmp.dir, 'not-a-dir');
      writeFileSync(blocker, 'x');
      const conditions: StorageCondition[] = [];
      const logs: string[] = [];
      const log = { info: () => {}, warn: () => {}, error: (_o: object, msg?: string) => void logs.push(msg ?? '') };
      const j = journal({ dataDir: join(blocker, 'data'), retryMinMs: 20, retryMaxMs: 40, onCondition: (c) => conditions.push(c), log });
      const opened: unknown[] = [];
      j.onOpen((db) => opened.push(db));
      await expect(j.start()).resolves.toBeUndefined();
      expect(opened).toHaveLength(0);
      expect(j.status().writable).toBe(false);
      expect(j.status().lastError).toMatch(/ENOTDIR|EEXIST/);
      expect(conditions).toEqual([expect.objectContaining({ rule: 'STORAGE_FAILURE', active: true })]);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toContain(join(blocker, 'data'));
      expect(() => j.lastSeq('MSC-0001')).toThrow(/unavailable/);

      j.appendTelemetry(sample(1, { QB: 150 }));
      await j.committed(); // resolves although nothing could be written
      expect(j.status().pending).toBe(1);
      await waitFor(() => j.status().failures >= 4, { message: 'several retries' }); // still one log line, one condition
      expect(logs).toHaveLength(1);
      expect(conditions).toHaveLength(1);

      rmSync(blocker);
      mkdirSync(join(blocker, 'data'), { recursive: true });
      await waitFor(() => j.status().writable, { timeoutMs: 5_000, message: 'journal reopened' });
      expect(conditions.at(-1)).toMatchObject({ rule: 'STORAGE_FAILURE', active: false });
      expect(j.status().droppedWhileFailed).toBe(0);
      expect(countOnDisk('telemetry', join(blocker, 'data'))).toBe(1);
      // Modules with their own tables in the journal's database get the new handle.
      expect(opened).toEqual([j.database()]);
    });

    it('a full database (SQLITE_FULL) alarms, bounds what it holds in memory and counts what it drops', async () => {
      const conditions: StorageCondition[] = [];
      const j = journal({
        hardLimitBytes: 256 * 1024, maxBufferedWhileFailed: 1_000, retryMinMs: 20, retryMaxMs: 40,
        onCondition: (c) => conditions.push(c),
      });
      await j.start();
      let i = 0;
      while (j.status().writable && i < 100_000) {
        for (let k = 0; k < 200; k++, i++) j.appendTelemetry(sample(i, fullValues(i)));
        await j.committed();
      }
      expect(j.status().writable).toBe(false);
      expect(j.status().lastError).toMatch(/SQLITE_FULL/);
      expect(conditions[0]).toMatchObject({ rule: 'STORAGE_FAILURE', priority: 'MEDIUM', active: true });
      for (let k = 0; k < 3_000; k++, i++) j.appendTelemetry(sample(i, fullValues(i)));
      await j.committed();
      const s = j.status();
      expect(s.pending).toBeLessThanOrEqual(1_000);
      expect(s.committed + s.pending + s.droppedWhileFailed).toBe(i);
      expect(s.droppedWhileFailed).toBeGreaterThan(0);
    });
  });
});
