/** Prometheus text exposition (version 0.0.4) of the journal's and forwarder's status. */
// Types from ./types.js, not from the journal or the forwarder: both import this module.
import type { ForwarderStatus, JournalStatus } from './types.js';

function lines(metrics: Array<[name: string, type: 'gauge' | 'counter', value: number]>): string {
  return metrics.map(([name, type, value]) => `# TYPE ${name} ${type}\n${name} ${value}\n`).join('');
}

export function journalMetricsText(s: JournalStatus): string {
  return lines([
    ['msc_journal_writable', 'gauge', s.writable ? 1 : 0],
    ['msc_journal_pending_records', 'gauge', s.pending],
    ['msc_journal_appended_total', 'counter', s.appended],
    ['msc_journal_committed_total', 'counter', s.committed],
    ['msc_journal_duplicates_total', 'counter', s.duplicates],
    ['msc_journal_dropped_while_failed_total', 'counter', s.droppedWhileFailed],
    ['msc_journal_commits_total', 'counter', s.commits],
    ['msc_journal_db_bytes', 'gauge', s.dbBytes],
    ['msc_journal_fsyncs_total', 'counter', s.fsyncs],
    ['msc_journal_unsynced_seconds', 'gauge', s.unsyncedMs / 1000],
    ['msc_journal_fsync_in_progress_seconds', 'gauge', s.fsyncInProgressMs / 1000],
    ['msc_journal_checkpoints_total', 'counter', s.checkpoint?.checkpoints ?? 0],
  ]);
}

export function forwarderMetricsText(s: ForwarderStatus): string {
  return lines([
    ['msc_forwarder_backlog_lines', 'gauge', s.lines],
    ['msc_forwarder_backlog_seconds', 'gauge', Math.round(s.seconds * 1000) / 1000],
    ['msc_forwarder_written_total', 'counter', s.written],
    ['msc_forwarder_batches_total', 'counter', s.batches],
    ['msc_forwarder_errors_total', 'counter', s.errors],
    ['msc_forwarder_connected', 'gauge', s.connected ? 1 : 0],
    ['msc_forwarder_restarts_total', 'counter', s.restarts],
  ]);
}
