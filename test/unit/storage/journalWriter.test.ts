/**
 * The journal's writer thread (src/storage/journalWriter.ts): what the gateway runs. The journal's own tests run with
 * and without it (journal.test.ts, durability.test.ts); these cover what only the thread can do: end like a crash,
 * hold a batch while the next one gathers, and share the database with the journal's own connection.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/storage/journal.js';
import { encodeBatch, WriterThread, type WriterReply } from '../../../src/storage/journalWriter.js';
import { durableTransaction, openJournalDb } from '../../../src/storage/schema.js';
import type { StorageCondition } from '../../../src/storage/types.js';
import { waitFor } from '../../helpers/waitFor.js';
import { alarmTransition, deviceEvent, fullValues, sample, stateChange, T0, tempDir } from './fixtures.js';

let tmp: ReturnType<typeof tempDir>;
const journals: Journal[] = [];

function journal(opts: Partial<ConstructorParameters<typeof Journal>[0]> = {}): Journal {
  const j = new Journal({ dataDir: tmp.dir, writerThread: true, ...opts });
  journals.push(j);
  return j;
}

/** A connection of the test's own: what is there is on disk, not in the journal's memory. */
function seqsOnDisk(): number[] {
  const db = new Database(join(tmp.dir, 'journal.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT seq FROM telemetry ORDER BY id').pluck().all() as number[];
  } finally {
    db.close();
  }
}

beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  for (const j of journals.splice(0)) await j.stop();
  tmp.cleanup();
});

describe('the journal writer thread', () => {
  it('commits in the thread: committed() resolves once the rows are on disk, in arrival order', async () => {
    const j = journal({ commitIntervalMs: 60_000 });
    await j.start();
    const order = [...Array(100).keys()].reverse();
    for (const i of order) j.appendTelemetry(sample(i, fullValues(i)));
    j.appendState(stateChange(200, 'RUNNING'));
    j.appendEvent(deviceEvent(201, 'AIR_DETECTED'));
    j.appendAlarm(alarmTransition(T0 + 5));
    await j.committed();
    expect(j.writerThread()).not.toBeNull();
    expect(seqsOnDisk()).toEqual(order);
    expect(j.status()).toMatchObject({ committed: 103, pending: 0, duplicates: 0 });
    // The thread writes exactly what the event-loop writer did: the values' text is the same JSON.
    const row = j.database()!.prepare('SELECT v FROM telemetry WHERE seq = 3').pluck().get();
    expect(row).toBe(JSON.stringify(fullValues(3)));
  });

  it('commits the batches handed over in order; each waiter resolves once the batch holding its records is written', async () => {
    const j = journal({ commitIntervalMs: 60_000 });
    await j.start();
    const waits: Array<Promise<void>> = [];
    const resolvedWith: number[] = [];
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 50; k++) j.appendTelemetry(sample(round * 50 + k, fullValues(k)));
      const upTo = (round + 1) * 50;
      // Whatever resolves a waiter, the rows it waited for are on disk by then.
      waits.push(j.committed().then(() => void resolvedWith.push(upTo - seqsOnDisk().length)));
      if (round % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waits);
    expect(resolvedWith.every((missing) => missing <= 0)).toBe(true);
    expect(seqsOnDisk()).toEqual([...Array(1_000).keys()]);
    // Fewer transactions than waiters: while the thread is busy, the next batch gathers.
    expect(j.status().commits).toBeLessThan(20);
  });

  it('a thread that ends (a crash) raises STORAGE_FAILURE, takes its batch back, restarts and writes every record once, in order', async () => {
    const conditions: StorageCondition[] = [];
    const j = journal({ commitIntervalMs: 60_000, retryMinMs: 20, retryMaxMs: 40, onCondition: (c) => conditions.push(c) });
    await j.start();
    for (let i = 0; i < 500; i++) j.appendTelemetry(sample(i, fullValues(i)));
    await j.committed();
    const first = j.writerThread()!;
    for (let i = 500; i < 3_000; i++) j.appendTelemetry(sample(i, fullValues(i)));
    const acked = j.committed();
    // Ended while its batch may be half written: the transaction is all or nothing, the batch comes back.
    await first.terminate();
    await acked; // while failing, committed() resolves anyway (the loss would be alarmed and counted)
    expect(conditions[0]).toMatchObject({ rule: 'STORAGE_FAILURE', active: true });
    expect(conditions[0].message).toMatch(/writer thread exited/);
    await waitFor(() => j.status().writable && conditions.at(-1)?.active === false, { timeoutMs: 5_000, message: 'journal recovered' });
    expect(j.writerThread()).not.toBe(first);
    await j.committed();
    expect(seqsOnDisk()).toEqual([...Array(3_000).keys()]);
    expect(j.status()).toMatchObject({ pending: 0, droppedWhileFailed: 0 });
  });

  it('a backlog larger than one batch goes over in parts (no single commit long enough to look like a stall); committed() waits for the last', async () => {
    const j = journal({ commitIntervalMs: 60_000 });
    await j.start();
    for (let i = 0; i < 25_000; i++) j.appendTelemetry(sample(i, { QB: i }));
    await j.committed();
    expect(seqsOnDisk()).toEqual([...Array(25_000).keys()]);
    expect(j.status()).toMatchObject({ committed: 25_000, commits: 3, pending: 0 });
  });

  it('stop() writes the batch in flight and what gathered behind it before it closes', async () => {
    const j = journal({ commitIntervalMs: 60_000 });
    await j.start();
    for (let i = 0; i < 2_000; i++) j.appendTelemetry(sample(i, fullValues(i)));
    j.flush(); // handed over
    for (let i = 2_000; i < 2_500; i++) j.appendTelemetry(sample(i, fullValues(i)));
    await j.stop();
    expect(seqsOnDisk()).toEqual([...Array(2_500).keys()]);
    expect(j.status().droppedWhileFailed).toBe(0);
  });

  it("the journal's own connection (audit trail, retention) still writes while the thread commits", async () => {
    const j = journal({ commitIntervalMs: 60_000 });
    await j.start();
    const db = j.database()!;
    db.exec('CREATE TABLE IF NOT EXISTS audit_probe (n INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO audit_probe (n) VALUES (?)');
    let seq = 0;
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 2_000; k++, seq++) j.appendTelemetry(sample(seq, fullValues(seq)));
      const written = j.committed();
      // Synchronously, while the thread holds (or is about to take) the write lock: waits for it, never SQLITE_BUSY.
      durableTransaction(db, () => insert.run(round));
      await written;
    }
    expect(db.prepare('SELECT count(*) FROM audit_probe').pluck().get()).toBe(20);
    expect(seqsOnDisk()).toHaveLength(seq);
  });

  it('hands telemetry over as columns and other records as tuples, in arrival order', () => {
    const b = encodeBatch(7, [
      { kind: 'telemetry', sample: sample(1, { QB: 150, PV: null }) },
      { kind: 'channel', device: 'MSC-0001', key: 'QB' },
      { kind: 'state', change: stateChange(2, 'RUNNING', { previous: 'PRIMED' }) },
      { kind: 'telemetry', sample: sample(3, { QB: -0 }, { sessionId: null }) },
    ]);
    expect(b.device).toEqual(['MSC-0001', 'MSC-0001']);
    expect(b.session).toEqual(['S-1', null]);
    expect(b.v).toEqual(['{"QB":150,"PV":null}', '{"QB":0}']);
    expect([...b.num]).toEqual([1, T0 + 40, T0 + 45, 3, T0 + 120, T0 + 125]);
    expect(b.rest).toEqual([
      ['channel', 'MSC-0001', 'QB'],
      ['state', 'MSC-0001', 'S-1', 2, T0 + 80, T0 + 85, 'RUNNING', 'PRIMED'],
    ]);
  });

  it('after a batch that failed, the thread writes none of the batches behind it (they all come back, in order)', async () => {
    const limit = 256 * 1024;
    openJournalDb(tmp.dir, { now: Date.now, hardLimitBytes: limit }).close();
    const replies: WriterReply[] = [];
    const writer = new WriterThread({
      file: join(tmp.dir, 'journal.sqlite'), hardLimitBytes: limit, busyTimeoutMs: 1_000,
      onReply: (r) => replies.push(r), onExit: () => {},
    });
    try {
      const big = Array.from({ length: 3_000 }, (_, i) => ({ kind: 'telemetry' as const, sample: sample(i, fullValues(i)) }));
      writer.commit(big); // beyond the file's limit: SQLITE_FULL, rolled back
      writer.commit([{ kind: 'telemetry', sample: sample(5_000, { QB: 1 }) }]); // would fit on its own
      await waitFor(() => replies.length === 2, { message: 'both answered' });
    } finally {
      await writer.close(1_000);
    }
    expect(replies).toMatchObject([{ ok: false, id: 1, code: 'SQLITE_FULL' }, { ok: false, id: 2, code: 'SQLITE_FULL' }]);
    expect(seqsOnDisk()).toEqual([]);
  });

  /** Another connection holds the write lock: the thread's commit waits on it (its busy timeout is 10 s), unanswered. */
  function holdWriteLock(): Database.Database {
    const other = new Database(join(tmp.dir, 'journal.sqlite'));
    other.exec('BEGIN IMMEDIATE');
    return other;
  }

  it('relaxed: a batch the thread leaves unanswered past the stall limit raises STORAGE_FAILURE, committed() resolves from memory, the own connection fails fast; all is written once the disk answers', async () => {
    const conditions: StorageCondition[] = [];
    const j = journal({ commitIntervalMs: 20, writerStallMs: 300, onCondition: (c) => conditions.push(c) });
    await j.start();
    j.appendTelemetry(sample(0, fullValues(0)));
    await j.committed();
    const lock = holdWriteLock();
    try {
      for (let i = 1; i < 200; i++) j.appendTelemetry(sample(i, fullValues(i)));
      const started = Date.now();
      await j.committed(); // resolves once the stall is declared, the rows still in memory
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(seqsOnDisk()).toEqual([0]);
      expect(conditions).toMatchObject([{ rule: 'STORAGE_FAILURE', active: true }]);
      expect(conditions[0].message).toMatch(/acknowledging from memory/);
      expect(j.status().writeInProgressMs).toBeGreaterThanOrEqual(300);
      // More samples meanwhile: acknowledged at once.
      for (let i = 200; i < 300; i++) j.appendTelemetry(sample(i, fullValues(i)));
      await j.committed();
      // The journal's own connection does not wait out its busy timeout on the lock the thread waits behind.
      const own = j.database()!;
      const t = Date.now();
      expect(() => own.exec('CREATE TABLE IF NOT EXISTS probe (n INTEGER)')).toThrow(/locked|busy/i);
      expect(Date.now() - t).toBeLessThan(200);
    } finally {
      lock.exec('COMMIT');
      lock.close();
    }
    await waitFor(() => conditions.at(-1)?.active === false, { message: 'STORAGE_FAILURE cleared once the disk answers' });
    expect(conditions.at(-1)!.message).toMatch(/answered again/);
    await waitFor(() => seqsOnDisk().length === 300, { message: 'everything held is written' });
    expect(seqsOnDisk()).toEqual([...Array(300).keys()]);
    expect(j.database()!.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0);
    expect(j.status()).toMatchObject({ pending: 0, droppedWhileFailed: 0, writeInProgressMs: 0 });
  });

  it('strict: a stalled batch raises STORAGE_FAILURE but committed() still waits for the disk', async () => {
    const conditions: StorageCondition[] = [];
    const j = journal({ commitIntervalMs: 20, writerStallMs: 300, durability: 'strict', onCondition: (c) => conditions.push(c) });
    await j.start();
    const lock = holdWriteLock();
    let resolved = false;
    let acked: Promise<void>;
    try {
      for (let i = 0; i < 50; i++) j.appendTelemetry(sample(i, fullValues(i)));
      acked = j.committed().then(() => { resolved = true; });
      await waitFor(() => conditions.some((c) => c.active), { message: 'STORAGE_FAILURE raised' });
      expect(conditions[0].message).toMatch(/wait for it \(strict durability\)/);
      // Twice the stall limit unanswered, many commit timers later: still nothing acknowledged.
      await waitFor(() => j.status().writeInProgressMs >= 600, { message: 'the batch unanswered for 600 ms' });
      expect(resolved).toBe(false);
    } finally {
      lock.exec('COMMIT');
      lock.close();
    }
    await acked!;
    expect(seqsOnDisk()).toEqual([...Array(50).keys()]);
    await waitFor(() => conditions.at(-1)?.active === false, { message: 'cleared' });
  });
});
