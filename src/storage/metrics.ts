/** The journal's and the forwarder's families for `/metrics`, read from their status at scrape time. */
// Types from ./types.js, not from the journal or the forwarder: both import this module.
import { counter, gauge, oncePerScrape, type Registry } from '../metrics.js';
import type { ForwarderStatus, JournalStatus } from './types.js';

type Row<S> = [name: string, type: 'gauge' | 'counter', help: string, value: (s: S) => number];

function register<S>(registry: Registry, status: () => S, rows: Array<Row<S>>): void {
  // status() stats the database file or measures the backlog: once per scrape, not once per family.
  const read = oncePerScrape(status);
  for (const [name, type, help, value] of rows) (type === 'gauge' ? gauge : counter)(registry, { name, help, read: () => value(read()) });
}

export function registerJournalMetrics(registry: Registry, status: () => JournalStatus): void {
  register(registry, status, [
    ['msc_journal_writable', 'gauge', '1 while the journal accepts writes.', (s) => (s.writable ? 1 : 0)],
    ['msc_journal_pending_records', 'gauge', 'Records appended and not yet committed.', (s) => s.pending],
    ['msc_journal_appended_total', 'counter', 'Records appended to the journal.', (s) => s.appended],
    ['msc_journal_committed_total', 'counter', 'Records committed to the journal.', (s) => s.committed],
    ['msc_journal_duplicates_total', 'counter', 'Redelivered records that were already stored.', (s) => s.duplicates],
    ['msc_journal_dropped_while_failed_total', 'counter', 'Records dropped because the journal was stopped or failing.', (s) => s.droppedWhileFailed],
    ['msc_journal_commits_total', 'counter', 'Journal commits (transactions).', (s) => s.commits],
    ['msc_journal_db_bytes', 'gauge', 'Size of the journal files on disk.', (s) => s.dbBytes],
    ['msc_journal_fsyncs_total', 'counter', 'WAL fsyncs done.', (s) => s.fsyncs],
    ['msc_journal_unsynced_seconds', 'gauge', 'Age of the oldest commit not yet fsynced: what a power cut would lose now.', (s) => s.unsyncedMs / 1000],
    ['msc_journal_fsync_in_progress_seconds', 'gauge', 'How long the fsync in progress has been running (0 when none).', (s) => s.fsyncInProgressMs / 1000],
    ['msc_journal_write_in_progress_seconds', 'gauge', 'How long the journal\'s oldest batch has waited for its write to complete (0 when none): a stalled disk.', (s) => s.writeInProgressMs / 1000],
    ['msc_journal_checkpoints_total', 'counter', 'WAL checkpoints done.', (s) => s.checkpoint?.checkpoints ?? 0],
  ]);
}

export function registerForwarderMetrics(registry: Registry, status: () => ForwarderStatus): void {
  register(registry, status, [
    ['msc_forwarder_backlog_lines', 'gauge', 'Journal lines not yet confirmed by InfluxDB (estimate).', (s) => s.lines],
    ['msc_forwarder_backlog_seconds', 'gauge', 'Age of the oldest line not yet confirmed by InfluxDB.', (s) => Math.round(s.seconds * 1000) / 1000],
    ['msc_forwarder_written_total', 'counter', 'Lines confirmed by InfluxDB.', (s) => s.written],
    ['msc_forwarder_batches_total', 'counter', 'Batches confirmed by InfluxDB.', (s) => s.batches],
    ['msc_forwarder_errors_total', 'counter', 'Failed writes to InfluxDB.', (s) => s.errors],
    ['msc_forwarder_connected', 'gauge', '1 when the last request to InfluxDB succeeded.', (s) => (s.connected ? 1 : 0)],
    ['msc_forwarder_restarts_total', 'counter', 'Times the forwarding loop ended on an unexpected error and was started again.', (s) => s.restarts],
  ]);
}
