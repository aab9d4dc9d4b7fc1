/**
 * Durability modes of the journal (docs/storage.md): relaxed acknowledges once written and fsyncs the WAL in the
 * background; strict resolves `committed()` only after an fsync that covers it; a worker checkpoints the WAL.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/storage/journal.js';
import type { Durability } from '../../../src/storage/types.js';
import { waitFor } from '../../helpers/waitFor.js';
import { fullValues, sample, tempDir } from './fixtures.js';

const open: Array<{ journal: Journal; cleanup: () => void }> = [];

/** Every test runs twice: commits on the event loop, and in the writer thread (what the gateway runs). */
let writerThread = false;

async function journal(durability: Durability, syncIntervalMs = 10_000): Promise<Journal> {
  const tmp = tempDir();
  const j = new Journal({ dataDir: tmp.dir, durability, syncIntervalMs, checkpointIntervalMs: 50, writerThread });
  await j.start();
  open.push({ journal: j, cleanup: tmp.cleanup });
  return j;
}

afterEach(async () => {
  for (const { journal: j, cleanup } of open.splice(0)) {
    await j.stop();
    cleanup();
  }
});

for (const threaded of [false, true]) describe(threaded ? 'with the writer thread' : 'committing on the event loop', () => {
  beforeEach(() => {
    writerThread = threaded;
  });

  describe('journal durability', () => {
    it('relaxed: committed() resolves once written, before any fsync; the interval fsyncs it afterwards', async () => {
      const j = await journal('relaxed', 100);
      const fsyncsBefore = j.status().fsyncs;
      j.appendTelemetry(sample(1, fullValues(1)));
      await j.committed();
      expect(j.status().committed).toBe(1);
      await waitFor(() => j.status().fsyncs > fsyncsBefore && j.status().unsyncedMs === 0, { message: 'background fsync' });
    });

    it('relaxed: with no fsync due, what committed() acknowledged is written but not yet synced (the power-cut window)', async () => {
      const j = await journal('relaxed', 60_000);
      await waitFor(() => j.status().unsyncedMs === 0); // the open's own first write
      const fsyncs = j.status().fsyncs;
      j.appendTelemetry(sample(1, fullValues(1)));
      await j.committed();
      expect(j.status().fsyncs).toBe(fsyncs);
      expect(j.status().committed).toBe(1);
      await waitFor(() => j.status().unsyncedMs > 0, { message: 'unsynced age grows' });
    });

    it('strict: committed() resolves only after an fsync that covers the commit', async () => {
      const j = await journal('strict', 60_000);
      const fsyncs = j.status().fsyncs;
      j.appendTelemetry(sample(1, fullValues(1)));
      await j.committed();
      const s = j.status();
      expect(s.fsyncs).toBeGreaterThan(fsyncs);
      expect(s.unsyncedMs).toBe(0);
      expect(s.durability).toBe('strict');
    });

    it('strict: concurrent waiters share fsyncs (group commit), and all resolve', async () => {
      const j = await journal('strict', 60_000);
      const fsyncs = j.status().fsyncs;
      const waits: Array<Promise<void>> = [];
      for (let i = 1; i <= 200; i++) {
        j.appendTelemetry(sample(i, fullValues(i)));
        waits.push(j.committed());
      }
      await Promise.all(waits);
      expect(j.status().committed).toBe(200);
      expect(j.status().fsyncs - fsyncs).toBeLessThan(20);
    });

    it('a worker checkpoints the WAL into the database file', async () => {
      const j = await journal('relaxed', 50);
      for (let i = 1; i <= 500; i++) j.appendTelemetry(sample(i, fullValues(i)));
      await j.committed();
      await waitFor(() => (j.status().checkpoint?.checkpoints ?? 0) > 0 && (j.status().checkpoint?.copiedFrames ?? 0) > 0, {
        message: 'a checkpoint copied frames',
      });
    });
  });
});
