/**
 * Session export: telemetry (raw, or the mean per `every` bucket), states, device events,
 * alarms, annotations and audit records of one session, as CSV or JSON, with a SHA-256 so a saved copy
 * can be shown to be unaltered.
 *
 * The body is written to a temporary file while it is hashed (never one huge string), then sent:
 * - every format: `X-Content-SHA256` = SHA-256 of the exact bytes sent (`sha256sum FILE`);
 * - JSON also embeds `sha256` as the first member: `{"sha256":"<64 hex>",REST`, where the hash is over
 *   `{` + REST, i.e. the same document without that member. Check with
 *   `{ printf '{'; tail -c +78 FILE; } | sha256sum` (docs/engineer.md, "Verifying an export").
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { readTelemetry } from '../storage/journalHistory.js';
import type { Db } from '../storage/schema.js';
import { csvRecord } from '../util/csv.js';
import { deviceRange, SessionReader } from './reader.js';
import type { SessionRecord } from './types.js';

export type ExportFormat = 'csv' | 'json';

export interface ExportOptions {
  format: ExportFormat;
  /** Bucket width for the telemetry mean; raw samples when absent. */
  everyMs?: number;
  now: number;
  /** Telemetry rows written so far and the total, for a progress bar. */
  onProgress?: (done: number, total: number) => void;
}

export interface ExportFile {
  /** The finished body on disk (remove() deletes it). */
  path: string;
  bytes: number;
  sha256: string;
  contentType: string;
  fileName: string;
  remove(): void;
}

/** Byte offset of REST in a JSON export: `{"sha256":"` (11) + 64 hex + `",` (2) + 1. */
export const JSON_REST_OFFSET = 78;

/** Buffered, hashing writer with back-pressure. */
class HashingSink {
  private buf = '';
  bytes = 0;
  constructor(private readonly out: WriteStream, private readonly hash: Hash) {}

  async write(s: string): Promise<void> {
    this.buf += s;
    if (this.buf.length >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = Buffer.from(this.buf, 'utf8');
    this.buf = '';
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  async end(): Promise<void> {
    await this.flush();
    this.out.end();
    await once(this.out, 'finish');
  }
}

/** Writes the export of one session to a temporary file and returns it with its SHA-256. */
export async function exportSession(db: () => Db, record: SessionRecord, opts: ExportOptions): Promise<ExportFile> {
  const dir = mkdtempSync(join(tmpdir(), 'msc-export-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const base = `${record.device}_${record.sessionId}`.replace(/[^A-Za-z0-9_-]/g, '_');
    if (opts.format === 'csv') {
      const path = join(dir, 'export.csv');
      const hash = createHash('sha256');
      const sink = new HashingSink(createWriteStream(path), hash);
      await writeCsv(sink, db, record, opts);
      await sink.end();
      return { path, bytes: sink.bytes, sha256: hash.digest('hex'), contentType: 'text/csv; charset=utf-8', fileName: `${base}.csv`, remove };
    }
    // Pass 1: `{` + REST, hashed for the embedded field. Pass 2: the sent body, hashed for the header.
    const inner = join(dir, 'inner.json');
    const innerHash = createHash('sha256');
    const sink = new HashingSink(createWriteStream(inner), innerHash);
    await writeJson(sink, db, record, opts);
    await sink.end();
    const embedded = innerHash.digest('hex');
    const path = join(dir, 'export.json');
    const outerHash = createHash('sha256');
    const outer = new HashingSink(createWriteStream(path), outerHash);
    await outer.write(`{"sha256":"${embedded}",`);
    for await (const chunk of createReadStream(inner, { start: 1, encoding: 'utf8', highWaterMark: 256 * 1024 })) {
      await outer.write(chunk as string);
    }
    await outer.end();
    rmSync(inner);
    return { path, bytes: outer.bytes, sha256: outerHash.digest('hex'), contentType: 'application/json; charset=utf-8', fileName: `${base}.json`, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

async function writeJson(out: HashingSink, db: () => Db, r: SessionRecord, opts: ExportOptions): Promise<void> {
  const reader = new SessionReader(db);
  const summary = await reader.summary(r, opts.now);
  await out.write(`{"format":"msc-gateway.session-export","version":1,"generatedAt":${JSON.stringify(new Date(opts.now).toISOString())}`);
  await out.write(`,"session":${JSON.stringify(r)},"summary":${JSON.stringify(summary)}`);
  await out.write(`,"telemetry":{"everyMs":${opts.everyMs ?? null},"samples":[`);
  let first = true;
  await eachTelemetry(db, reader, r, opts, async (t, seq, v) => {
    await out.write(`${first ? '' : ','}${JSON.stringify(seq === null ? { t, v } : { t, seq, v })}`);
    first = false;
  });
  await out.write(']}');
  const arrays: Array<[string, unknown[]]> = [
    ['states', reader.states(r, opts.now)], ['events', reader.events(r, opts.now)], ['alarms', reader.alarms(r, opts.now)],
    ['annotations', reader.annotations(r)], ['audit', reader.audit(r, opts.now)],
  ];
  for (const [name, rows] of arrays) {
    await out.write(`,"${name}":[`);
    for (let i = 0; i < rows.length; i++) await out.write((i ? ',' : '') + JSON.stringify(rows[i]));
    await out.write(']');
  }
  await out.write('}\n');
}

/**
 * One CSV file, one section per table: `# name`, a header row, the rows, a blank line (docs/engineer.md).
 * Every string cell goes through csvField (src/util/csv.ts): codes, texts, ids and rules reach this file from
 * consoles and people alike; numbers stay numbers.
 */
async function writeCsv(out: HashingSink, db: () => Db, r: SessionRecord, opts: ExportOptions): Promise<void> {
  const reader = new SessionReader(db);
  const row = (cells: unknown[]) => out.write(csvRecord(cells));
  const iso = (t: number) => new Date(t).toISOString();
  await row(['# session']);
  await row(['session_id', 'device', 'participant', 'started_utc', 'ended_utc', 'end_reason', 'state_ms']);
  await row([r.sessionId, r.device, r.participant, iso(r.startedAt), r.endedAt === null ? '' : iso(r.endedAt), r.endReason,
    JSON.stringify(r.stateMs)]);
  const keys = reader.channelKeys(r);
  await out.write('\r\n');
  await row([`# telemetry${opts.everyMs ? ` (mean per ${opts.everyMs} ms)` : ''}`]);
  await row(['time_utc', 't_ms', 'seq', ...keys]);
  // ICD §1 notation: `!` a sensor fault, empty: not measured in that frame.
  await eachTelemetry(db, reader, r, opts, (t, seq, v) =>
    row([iso(t), t, seq, ...keys.map((k) => (k in v ? (v[k] === null ? '!' : v[k]) : ''))]));
  await out.write('\r\n');
  await row(['# states']);
  await row(['time_utc', 't_ms', 'seq', 'state', 'previous', 'session']);
  for (const s of reader.states(r, opts.now)) await row([iso(s.t), s.t, s.seq, s.state, s.previous, s.sessionId]);
  await out.write('\r\n');
  await row(['# events']);
  await row(['time_utc', 't_ms', 'seq', 'code', 'prio', 'active', 'text']);
  for (const e of reader.events(r, opts.now)) await row([iso(e.t), e.t, e.seq, e.code, e.prio, e.active ? 1 : 0, e.text]);
  await out.write('\r\n');
  await row(['# alarms']);
  await row(['time_utc', 'at_ms', 'alarm_id', 'rule', 'priority', 'kind', 'from', 'to', 'active', 'value', 'limit', 'message', 'actor', 'reason']);
  for (const a of reader.alarms(r, opts.now)) {
    await row([iso(a.at), a.at, a.alarm.id, a.alarm.rule, a.alarm.priority, a.kind, a.from, a.to, a.alarm.active ? 1 : 0,
      a.alarm.value, a.alarm.limit, a.alarm.message, a.actor ? `${a.actor.user} (${a.actor.role})` : '', a.reason]);
  }
  await out.write('\r\n');
  await row(['# annotations']);
  await row(['time_utc', 't_ms', 'kind', 'subtype', 'text', 'user', 'role', 'created_utc', 'audit_id']);
  for (const a of reader.annotations(r)) {
    await row([iso(a.t), a.t, a.kind, a.subtype, a.text, a.user, a.role, iso(a.createdAt), a.auditId]);
  }
  await out.write('\r\n');
  await row(['# audit']);
  await row(['id', 'time_utc', 'at_ms', 'user', 'role', 'device', 'session', 'action', 'outcome', 'detail', 'prev_hash', 'hash']);
  for (const a of reader.audit(r, opts.now)) {
    await row([a.id, iso(a.at), a.at, a.user, a.role, a.device, a.session, a.action, a.outcome, JSON.stringify(a.detail), a.prevHash, a.hash]);
  }
}

type SampleFn = (t: number, seq: number | null, v: Record<string, number | null>) => Promise<void>;

async function eachTelemetry(db: () => Db, reader: SessionReader, r: SessionRecord, opts: ExportOptions, fn: SampleFn): Promise<void> {
  if (opts.everyMs) {
    const range = deviceRange(r, opts.now);
    const got = await readTelemetry(db, r.device, { ...range, everyMs: opts.everyMs, limit: Number.MAX_SAFE_INTEGER });
    let done = 0;
    for (const p of got.samples) {
      await fn(p.t, null, p.v);
      if (++done % 1000 === 0) opts.onProgress?.(done, got.samples.length);
    }
    opts.onProgress?.(got.samples.length, got.samples.length);
    return;
  }
  const total = reader.telemetryCount(r, opts.now);
  let done = 0;
  for await (const page of reader.telemetry(r, opts.now)) {
    for (const s of page) await fn(s.t, s.seq, s.v);
    done += page.length;
    opts.onProgress?.(done, total);
  }
  opts.onProgress?.(done, Math.max(done, total));
}
