/**
 * The journal's writer thread (docs/storage.md, "The writer thread"). The journal hands it each batch of records;
 * it inserts them with its own connection in one transaction and answers when the transaction is written (WAL,
 * `synchronous = NORMAL`: it survives `kill -9`). SQLite's insert, the largest part of a sample's cost, runs off
 * the event loop, and a `write(2)` that stalls holds this thread, not the live view and the alarms.
 *
 * A few batches may be in flight; the thread commits them one after the other in the order they were handed over,
 * one transaction each, and after a batch that failed it writes none of those behind it.
 * The records cross as columns (telemetry) and short tuples (the rest): cheaper to copy between threads than the
 * sample objects. The values' JSON text is made here, on the event loop: copying the objects would cost as much.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { encodeValues, ROW_SQL, ROWS_PER_INSERT, type JournalRecord } from './journalRows.js';

/** What the writer answers for one batch. */
export type WriterReply =
  | { ok: true; id: number; records: number; written: number }
  | { ok: false; id: number; code: string | null; message: string };

/** One batch as it crosses to the thread. */
export interface WriterBatch {
  id: number;
  /** Telemetry, in arrival order: device, session, values' JSON text, and seq, t, rx per row. */
  device: string[];
  session: Array<string | null>;
  v: string[];
  num: Float64Array;
  /** Every other record in arrival order: [kind, ...columns]. */
  rest: unknown[][];
}

// Evaluated as CommonJS in the worker, like checkpointer.ts (a file would need a build step of its own under vitest).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const SQL = workerData.sql;
const PER = workerData.rowsPerInsert;
let db = null;
let commit = null;
let openError = null;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
  db.pragma('cache_size = -16000');
  if (workerData.hardLimitBytes !== null) {
    const pageSize = db.pragma('page_size', { simple: true });
    db.pragma('max_page_count = ' + Math.max(1, Math.floor(workerData.hardLimitBytes / pageSize)));
  }
  const one = db.prepare(SQL.telemetry);
  const many = db.prepare(SQL.telemetryMany);
  const state = db.prepare(SQL.state);
  const event = db.prepare(SQL.event);
  const alarm = db.prepare(SQL.alarm);
  const channel = db.prepare(SQL.channel);
  const args = new Array(PER * 6);
  commit = db.transaction((b) => {
    const n = b.device.length;
    const num = b.num;
    let written = 0;
    let i = 0;
    for (; i + PER <= n; i += PER) {
      for (let k = 0; k < PER; k++) {
        const r = i + k;
        args[k * 6] = b.device[r];
        args[k * 6 + 1] = b.session[r];
        args[k * 6 + 2] = num[r * 3];
        args[k * 6 + 3] = num[r * 3 + 1];
        args[k * 6 + 4] = num[r * 3 + 2];
        args[k * 6 + 5] = b.v[r];
      }
      written += many.run(args).changes;
    }
    for (; i < n; i++) written += one.run(b.device[i], b.session[i], num[i * 3], num[i * 3 + 1], num[i * 3 + 2], b.v[i]).changes;
    let records = n;
    for (const r of b.rest) {
      switch (r[0]) {
        case 'state': records++; written += state.run(r[1], r[2], r[3], r[4], r[5], r[6], r[7]).changes; break;
        case 'event': records++; written += event.run(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]).changes; break;
        case 'alarm': records++; written += alarm.run(r[1], r[2], r[3], r[4], r[5]).changes; break;
        case 'channel': channel.run(r[1], r[2]); break;
        default: throw new Error('journal writer: unknown record kind ' + r[0]);
      }
    }
    return { records, written };
  });
} catch (err) {
  openError = err;
  try { if (db) db.close(); } catch {}
  db = null;
}
const failure = (id, err) => ({
  ok: false, id, code: err && typeof err.code === 'string' ? err.code : null, message: String((err && err.message) || err),
});
parentPort.on('message', (m) => {
  if (m === 'close') {
    try { if (db) db.close(); } catch {}
    parentPort.close();
    return;
  }
  // After a failed batch none behind it is written: the journal takes them all back, in order.
  if (openError) {
    parentPort.postMessage(failure(m.id, openError));
    return;
  }
  try {
    const r = commit(m);
    parentPort.postMessage({ ok: true, id: m.id, records: r.records, written: r.written });
  } catch (err) {
    openError = err;
    parentPort.postMessage(failure(m.id, err));
  }
});
`;

/** Columns and tuples for the thread; the values' JSON text is made here (see the file comment). */
export function encodeBatch(id: number, batch: readonly JournalRecord[]): WriterBatch {
  let n = 0;
  for (const r of batch) if (r.kind === 'telemetry') n++;
  const device = new Array<string>(n);
  const session = new Array<string | null>(n);
  const v = new Array<string>(n);
  const num = new Float64Array(n * 3);
  const rest: unknown[][] = [];
  let i = 0;
  for (const r of batch) {
    switch (r.kind) {
      case 'telemetry': {
        const s = r.sample;
        device[i] = s.deviceId;
        session[i] = s.sessionId;
        v[i] = encodeValues(s.v);
        num[i * 3] = s.seq;
        num[i * 3 + 1] = s.t;
        num[i * 3 + 2] = s.rx;
        i++;
        break;
      }
      case 'state': {
        const c = r.change;
        rest.push(['state', c.deviceId, c.sessionId, c.seq, c.t, c.rx, c.state, c.previous]);
        break;
      }
      case 'event': {
        const e = r.event;
        rest.push(['event', e.deviceId, e.sessionId, e.seq, e.t, e.rx, e.code, e.prio, e.active ? 1 : 0, e.text]);
        break;
      }
      case 'alarm': {
        const a = r.transition;
        rest.push(['alarm', a.alarm.device, a.at, a.alarm.rule, a.kind, JSON.stringify(a)]);
        break;
      }
      case 'channel':
        rest.push(['channel', r.device, r.key]);
        break;
    }
  }
  return { id, device, session, v, num, rest };
}

/** An error as SQLite gave it in the thread (the journal classifies it like one of its own). */
export function writerError(reply: { code: string | null; message: string }): Error {
  const err = new Error(reply.message) as Error & { code?: string };
  if (reply.code !== null) err.code = reply.code;
  return err;
}

export interface WriterThreadOptions {
  /** Path of `journal.sqlite` (opened and prepared by the journal's own connection first). */
  file: string;
  hardLimitBytes?: number;
  /** How long a commit waits for a write lock another connection holds (audit, retention), ms. */
  busyTimeoutMs: number;
  /** Each batch's answer, in the order the batches were handed over. */
  onReply: (reply: WriterReply) => void;
  /** The thread ended without being closed (a crash): the batch in flight was not answered. */
  onExit: (err: Error) => void;
}

export class WriterThread {
  private readonly worker: Worker;
  private closing = false;
  private ended = false;
  private nextId = 1;

  constructor(private readonly opts: WriterThreadOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver, file: opts.file, sql: ROW_SQL, rowsPerInsert: ROWS_PER_INSERT, busyTimeoutMs: opts.busyTimeoutMs,
        hardLimitBytes: opts.hardLimitBytes ?? null,
      },
    });
    this.worker.on('message', (reply: WriterReply) => {
      if (!this.ended) this.opts.onReply(reply);
    });
    let crash: Error | null = null;
    this.worker.on('error', (err) => {
      crash = err;
    });
    this.worker.on('exit', (code) => {
      if (this.ended) return;
      this.ended = true;
      if (!this.closing) this.opts.onExit(crash ?? new Error(`journal writer thread exited (code ${code})`));
    });
  }

  /** Hands a batch over; its answer comes through onReply. Returns the batch's id. */
  commit(batch: readonly JournalRecord[]): number {
    const id = this.nextId++;
    const message = encodeBatch(id, batch);
    this.worker.postMessage(message, [message.num.buffer as ArrayBuffer]);
    return id;
  }

  /** Closes the connection after the batch in flight; ends the thread after `graceMs` whatever it is doing. */
  async close(graceMs: number): Promise<void> {
    if (this.ended) return;
    this.closing = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    // Real time, whatever the clock: a real thread on a real disk (a stalled write must not hold a stop).
    const grace = setTimeout(() => void this.worker.terminate(), graceMs);
    await exited;
    clearTimeout(grace);
  }

  /** Ends the thread now, without an answer for what is in flight (the journal has taken that batch back). */
  abandon(): void {
    if (this.ended) return;
    this.closing = true;
    this.ended = true;
    void this.worker.terminate();
  }

  /** The thread itself, for diagnostics and for the tests that end it as a crash would. */
  get thread(): Worker {
    return this.worker;
  }
}
