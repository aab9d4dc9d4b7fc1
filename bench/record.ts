/**
 * Perfusion record of a 24-hour session at 25 Hz (2.16 million telemetry rows): the PDF over HTTP from the
 * gateway process as deployed (built CLI, its own data directory), against the targets of the record feature:
 * the PDF in under 5 s, the gateway's peak RSS (VmHWM) under 250 MB.
 *
 * The session is written straight into a journal database with the journal's own schema (openJournalDb, the
 * session recorder's table, the audit trail, annotations, the console-HELLO table): telemetry with a slow drift,
 * a TR sensor fault now and then, state changes, 200 alarms raised, acknowledged and cleared, device events,
 * commands and annotations. The session is still RUNNING (no ENDED yet), as when a gateway is restarted during a
 * treatment.
 *
 * The path users run: the gateway starts on that directory (and on a mosquitto broker) and keeps the running
 * session's telemetry checkpoint (src/record/checkpoint.ts; the bench waits until the checkpoint in the journal
 * holds every row, with a deadline); then the console ends the session through MQTT (HELLO, then the ENDED state
 * frame for that session id, ICD §2) and, as soon as the session record is closed, the PDF is fetched: the first
 * fetch restores the checkpoint and reads the tail; the 2nd and 3rd use the result kept for the ended session
 * (src/record/telemetryCache.ts). The median of the three and the first alone are reported. Then the cold figure:
 * the checkpoint and the kept result are deleted and the PDF fetched again (a pass over every row, what a session
 * without a checkpoint costs), then the JSON record once.
 *
 * `node dist/bench/run.js record`; MSC_BENCH_RECORD_HOURS (default 24) shortens the session for a quick look.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AlarmTransition } from '../src/alarms/types.js';
import { AuditLog } from '../src/audit/auditLog.js';
import { AnnotationStore } from '../src/control/annotations.js';
import { CONSOLE_HELLO_SCHEMA } from '../src/record/consoleInfo.js';
import { SESSION_SCHEMA } from '../src/sessions/recorder.js';
import { openJournalDb, type Db } from '../src/storage/schema.js';
import { connectAsync } from 'mqtt';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { freePort } from '../test/helpers/net.js';
import type { BenchResult } from './types.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/bench/record.js -> dist/src/cli/index.js */
const CLI = resolve(HERE, '../src/cli/index.js');
const DEV = 'MSC-BENCH-01';
const SESSION = 'S-BENCH-24H';
const HZ = 25;
const TARGET_S = 5;
const TARGET_MB = 250;
const ROWS_PER_INSERT = 50;

const r1 = (x: number) => Math.round(x * 10) / 10;

/** Writes the session, still running; returns its device-time start and last row, and the next seq. */
function writeSession(db: Db, hours: number): { t0: number; t1: number; rows: number; seq: number } {
  const t0 = Date.UTC(2026, 0, 5, 7, 0, 0);
  const n = Math.round(hours * 3600 * HZ);
  const dt = 1000 / HZ;
  const t1 = t0 + Math.round(n * dt);
  const insert = db.prepare(`INSERT INTO telemetry (device, session, seq, t, rx, v) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`);
  const one = db.prepare('INSERT INTO telemetry (device, session, seq, t, rx, v) VALUES (?, ?, ?, ?, ?, ?)');
  const args: unknown[] = new Array(ROWS_PER_INSERT * 6);
  let seq = 10;
  const sample = (i: number): [number, string] => {
    const t = t0 + Math.round(i * dt);
    const s = Math.sin(i / 9000);
    const c = Math.cos(i / 4100);
    const tr = i % 45_000 < 25 ? 'null' : String(r1(37 + 0.3 * s));
    const v = `{"QB":${r1(150 + 20 * s)},"QP":${r1(35 + 5 * c)},"QR":${r1(200 + 10 * s)},"PA":${r1(-100 + 12 * c)},"PF":${r1(150 + 5 * s)},`
      + `"PV":${r1(100 + 15 * s)},"PP":${r1(80 + 3 * c)},"TMP":${r1(45 + 2 * s)},"DPR":${r1(20 + (i / n) * 25)},"TR":${tr},`
      + `"TB":${r1(36.5 + 0.2 * c)},"HEP":${r1(5 + c)},"AIR":0,"BLD":0,"PH":${Math.round((7.38 + 0.03 * s) * 100) / 100},"DO":${Math.round(80 + 5 * c)},`
      + `"SQB":150,"SQP":35,"STR":37,"SHEP":5}`;
    return [t, v];
  };
  const stateRow = db.prepare('INSERT INTO state (device, session, seq, t, rx, state, previous) VALUES (?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    stateRow.run(DEV, SESSION, seq++, t0, t0 + 20, 'RUNNING', 'PRIMED');
    let i = 0;
    for (; i + ROWS_PER_INSERT <= n; i += ROWS_PER_INSERT) {
      for (let k = 0; k < ROWS_PER_INSERT; k++) {
        const [t, v] = sample(i + k);
        args[k * 6] = DEV; args[k * 6 + 1] = SESSION; args[k * 6 + 2] = seq++; args[k * 6 + 3] = t; args[k * 6 + 4] = t + 20; args[k * 6 + 5] = v;
      }
      insert.run(args);
    }
    for (; i < n; i++) {
      const [t, v] = sample(i);
      one.run(DEV, SESSION, seq++, t, t + 20, v);
    }
    for (const key of ['QB', 'QP', 'QR', 'PA', 'PF', 'PV', 'PP', 'TMP', 'DPR', 'TR', 'TB', 'HEP', 'AIR', 'BLD', 'PH', 'DO', 'SQB', 'SQP', 'STR', 'SHEP']) {
      db.prepare('INSERT OR IGNORE INTO channel_key (device, key) VALUES (?, ?)').run(DEV, key);
    }
    db.exec(SESSION_SCHEMA);
    db.prepare(`INSERT INTO session_record (session, device, started_at, started_rx, ended_at, ended_rx, end_reason, state_ms,
      last_state, last_state_at) VALUES (?, ?, ?, ?, NULL, NULL, NULL, '{}', 'RUNNING', ?)`)
      .run(SESSION, DEV, t0, t0 + 20, t0);
    db.exec(CONSOLE_HELLO_SCHEMA);
    db.prepare('INSERT INTO console_hello (device, at, model, serial_no, fw, icd) VALUES (?, ?, ?, ?, ?, ?)').run(DEV, t0 - 60_000, 'MSC-ALS 2', 'SN-0001', '3.4.1', 1);
    // 200 alarms through the day: raised, acknowledged after 20-80 s, cleared; a device event with each.
    const alarm = db.prepare('INSERT INTO alarm (device, at, rule, kind, payload) VALUES (?, ?, ?, ?, ?)');
    const event = db.prepare('INSERT INTO event (device, session, seq, t, rx, code, prio, active, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (let k = 0; k < 200; k++) {
      const at = t0 + Math.round(((k + 0.5) / 200) * (t1 - t0)) + 20;
      const rule = ['PV_HIGH', 'PA_LOW', 'TMP_HIGH', 'DPR_RISING'][k % 4];
      const base = {
        id: `${DEV}:${rule}`, device: DEV, rule, source: 'process', priority: k % 10 === 0 ? 'HIGH' : 'MEDIUM', active: true,
        latching: false, raisedAt: at, clearedAt: null, value: 260, limit: 250, message: `${rule} beyond its limit`,
        ackedBy: null, ackedAt: null, shelvedUntil: null, sessionId: SESSION,
      };
      const tr = (kind: string, when: number, over: object, actor: object | null): AlarmTransition =>
        ({ kind, at: when, from: 'UNACK', to: 'ACKED', alarm: { ...base, ...over }, actor, reason: null }) as unknown as AlarmTransition;
      const ack = at + 20_000 + (k % 7) * 10_000;
      for (const t of [tr('raise', at, { state: 'UNACK' }, null), tr('ack', ack, { state: 'ACKED', ackedBy: 'nurse-a', ackedAt: ack }, { user: 'nurse-a', role: 'operator' }),
        tr('clear', ack + 30_000, { state: 'NORMAL', active: false }, null)]) {
        alarm.run(DEV, t.at, rule, t.kind, JSON.stringify(t));
      }
      event.run(DEV, SESSION, seq++, at - 20, at, `E_${rule}`, 'M', 1, `${rule} reported by the console`);
    }
  })();
  // Commands and annotations through the audit trail, as the gateway writes them.
  const audit = new AuditLog({ db, now: () => t1 });
  audit.start();
  for (let k = 0; k < 40; k++) {
    const at = t0 + Math.round((k / 40) * (t1 - t0)) + 1_000;
    const cmdId = `c-${k}`;
    audit.append({ user: 'nurse-a', role: 'operator', device: DEV, session: SESSION, action: 'command.requested', outcome: 'accepted', at,
      detail: { cmdId, verb: 'SET', args: ['QB', 150 + (k % 5)], reason: 'flow adjusted to the reactor' } });
    audit.append({ user: 'nurse-a', role: 'operator', device: DEV, session: SESSION, action: 'command.acknowledged', outcome: 'OK', at: at + 200, detail: { cmdId } });
  }
  let clock = t0;
  const notes = new AnnotationStore({ db, audit, now: () => clock });
  notes.start();
  for (let k = 0; k < 30; k++) {
    clock = t0 + Math.round(((k + 0.3) / 30) * (t1 - t0));
    notes.add(DEV, SESSION, clock - 60_000, k % 6 === 0
      ? { kind: 'adverse_event', subtype: 'hypotension', text: `MAP ${55 + (k % 5)} mmHg, fluids given` }
      : { kind: 'note', text: `Hourly check ${k}: circuit stable, no clots seen` }, { user: 'nurse-a', role: 'operator' });
  }
  return { t0, t1, rows: n, seq };
}

function vmHwmMb(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Polls until `fn` gives a value, or throws after `ms` (with `what`). */
async function until<T>(what: string, ms: number, fn: () => T | null | Promise<T | null>, alive: () => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (!alive()) throw new Error(`gateway exited while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function run(): Promise<BenchResult[]> {
  const hours = Number(process.env.MSC_BENCH_RECORD_HOURS ?? 24);
  const dir = mkdtempSync(join(tmpdir(), 'msc-bench-record-'));
  const dataDir = join(dir, 'data');
  const broker = await startMosquitto();
  try {
    const writeStart = performance.now();
    const db = openJournalDb(dataDir, { now: () => Date.now() });
    db.pragma('synchronous = OFF');
    const { rows, t1, seq } = writeSession(db, hours);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const writeS = (performance.now() - writeStart) / 1000;

    const token = randomBytes(24).toString('base64url');
    const config = join(dir, 'gateway.json');
    writeFileSync(config, JSON.stringify({
      dataDir, log: { level: 'error' }, site: { name: 'Bench ward', timeZone: 'Europe/Berlin' },
      mqtt: { url: broker.url, clientId: `bench-gw-${process.pid}` },
      auth: { tokens: [{ name: 'bench', role: 'viewer', sha256: createHash('sha256').update(token).digest('hex') }] },
    }));
    const port = await freePort();
    const started = performance.now();
    const proc = spawn(process.execPath, [CLI, '--config', config, '--http', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    const alive = () => proc.exitCode === null;
    const url = `http://127.0.0.1:${port}`;
    // The bench's own read-only view of the journal: the checkpoint and the session record, as the gateway wrote them.
    let view: Db | null = null;
    try {
      await until('the gateway to start', 30_000, async () => ((await fetch(`${url}/healthz`).then((r) => r.status === 200).catch(() => false)) ? true : null), alive);
      const idleMb = vmHwmMb(proc.pid!);
      view = openJournalDb(dataDir, { now: () => Date.now() });
      const v = view;
      const checkpointRows = () => {
        const row = v.prepare("SELECT data FROM record_checkpoint LIMIT 1").get() as { data: string } | undefined;
        return row ? (JSON.parse(row.data) as { telemetry: { n: number } }).telemetry.n : 0;
      };
      await until('the running session\'s checkpoint to hold every row', 600_000, () => {
        try {
          return checkpointRows() === rows ? true : null;
        } catch {
          return null; // the table does not exist yet
        }
      }, alive);
      const checkpointS = (performance.now() - started) / 1000;
      const checkpointMb = vmHwmMb(proc.pid!);

      const get = async (path: string) => {
        const start = performance.now();
        const r = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
        const bytes = Buffer.from(await r.arrayBuffer());
        if (r.status !== 200) throw new Error(`${path}: ${r.status} ${bytes.toString('utf8', 0, 300)}`);
        return { seconds: (performance.now() - start) / 1000, bytes };
      };
      const pdf = async () => {
        const r = await get(`/api/sessions/${SESSION}/record.pdf`);
        if (r.bytes.subarray(0, 5).toString('latin1') !== '%PDF-') throw new Error('not a PDF');
        return r;
      };

      // The console ends the session through the real transport: HELLO, then ENDED for that session id.
      const consoleClient = await connectAsync(broker.url, { clientId: `bench-console-${process.pid}` });
      const endSent = performance.now();
      try {
        const prefix = 'msc/v1';
        await consoleClient.publishAsync(`${prefix}/${DEV}/hello`, JSON.stringify({ deviceId: DEV, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN-0001' }), { qos: 1 });
        await consoleClient.publishAsync(`${prefix}/${DEV}/state`, JSON.stringify({ seq, t: t1 + 40, state: 'ENDED', sessionId: SESSION }), { qos: 1 });
      } finally {
        await consoleClient.endAsync();
      }
      await until('the session record to close', 30_000, () => {
        const r = v.prepare('SELECT ended_at FROM session_record WHERE session = ?').get(SESSION) as { ended_at: number | null } | undefined;
        return r && r.ended_at !== null ? true : null;
      }, alive);
      const closedS = (performance.now() - endSent) / 1000;
      const pdfs: number[] = [];
      let pdfBytes = 0;
      for (let k = 0; k < 3; k++) {
        const r = await pdf();
        pdfs.push(r.seconds);
        pdfBytes = r.bytes.length;
      }
      const userPathMb = vmHwmMb(proc.pid!);
      // Cold: no checkpoint, nothing kept: a pass over every row.
      v.prepare('DELETE FROM record_checkpoint').run();
      v.prepare('DELETE FROM record_telemetry_cache').run();
      const cold = await pdf();
      const json = await get(`/api/sessions/${SESSION}/record`);
      const peakMb = vmHwmMb(proc.pid!);
      const label = `${hours} h at ${HZ} Hz (${rows.toLocaleString('en-US')} rows)`;
      return [
        { name: 'record.pdf', value: median(pdfs), unit: 's', target: `<= ${TARGET_S}`, note: `${label}, ended through MQTT while the gateway kept its checkpoint; median of 3 (${pdfs.map((s) => s.toFixed(2)).join(', ')}); ${Math.round(pdfBytes / 1024)} KiB` },
        { name: 'record.pdfAfterEnd', value: pdfs[0], unit: 's', target: `<= ${TARGET_S}`, note: 'the first request after the session ended: the checkpoint restored, the tail read (the 2nd and 3rd use the kept result)' },
        { name: 'record.pdfCold', value: cold.seconds, unit: 's', note: 'cold, for comparison: checkpoint and kept result deleted, every row read (not the path users run)' },
        { name: 'record.checkpointFirst', value: checkpointS, unit: 's', note: `background: gateway start until the running session's checkpoint held every row; the session record closed ${closedS.toFixed(2)} s after the ENDED frame was sent` },
        { name: 'record.peakRss', value: Math.round(userPathMb), unit: 'MB', target: `<= ${TARGET_MB}`, note: `gateway VmHWM after the background checkpoint and the 3 PDFs (the path users run); ${Math.round(idleMb)} MB at start, ${Math.round(checkpointMb)} MB after the checkpoint` },
        { name: 'record.peakRssWithCold', value: Math.round(peakMb), unit: 'MB', note: 'gateway VmHWM at the end, after the cold PDF and the JSON as well' },
        { name: 'record.json', value: json.seconds, unit: 's', note: `GET /api/sessions/:id/record, ${Math.round(json.bytes.length / 1024)} KiB` },
        { name: 'record.writeJournal', value: writeS, unit: 's', note: `writing the ${label} journal (setup, not a target)` },
      ];
    } finally {
      view?.close();
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    }
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
