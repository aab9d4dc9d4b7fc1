/**
 * Console identity for the perfusion record's header: every HELLO a console sends (model, serial number,
 * firmware, ICD version) is journaled with the gateway time it arrived, in a small `console_hello` table of the
 * journal's database, so the header names the console a session ran on after any number of gateway restarts
 * (the device model in memory forgets a console that falls silent).
 *
 * A console repeats its HELLO at every link (re)open and in reply to `CMD ID` (ICD §1), and over MQTT a retained
 * HELLO is replayed at every subscribe: a HELLO identical to the console's last stored one is not stored again, so
 * the table grows only when something changed (a firmware update, a swapped console under the same id).
 */
import type { EventBus } from '../bus.js';
import type { HelloFrame } from '../protocol/types.js';
import { tableExists } from '../sessions/records.js';
import type { Db } from '../storage/schema.js';

export const CONSOLE_HELLO_SCHEMA = `
CREATE TABLE IF NOT EXISTS console_hello (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL,
  at INTEGER NOT NULL,
  model TEXT NOT NULL,
  serial_no TEXT NOT NULL,
  fw TEXT NOT NULL,
  icd INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_hello_device_at ON console_hello (device, at);
`;

/** One stored HELLO. `at`: gateway time it arrived (epoch ms). */
export interface ConsoleHello {
  device: string;
  at: number;
  model: string;
  serialNo: string;
  fw: string;
  icd: number;
}

/** HELLOs kept in memory while the journal cannot be written, written when it reopens (oldest dropped beyond). */
export const PENDING_HELLOS_MAX = 1_000;

export interface ConsoleInfoOptions {
  bus: EventBus;
  /** Gateway clock. */
  now: () => number;
  logger: { error(obj: object, msg?: string): void };
}

const sameIdentity = (a: Omit<ConsoleHello, 'at'>, b: Omit<ConsoleHello, 'at'>) =>
  a.device === b.device && a.model === b.model && a.serialNo === b.serialNo && a.fw === b.fw && a.icd === b.icd;

interface HelloRow { device: string; at: number; model: string; serial_no: string; fw: string; icd: number }
const fromRow = (r: HelloRow): ConsoleHello => ({ device: r.device, at: r.at, model: r.model, serialNo: r.serial_no, fw: r.fw, icd: r.icd });

/** Journals console HELLOs (a journal store: gets the journal's handle at every (re)open). */
export class ConsoleInfoStore {
  private db: Db | null = null;
  /** The last stored HELLO per console (a cache of the table's newest row; dropped on `forget` and reopen). */
  private readonly last = new Map<string, ConsoleHello>();
  private pending: ConsoleHello[] = [];
  private started = false;

  constructor(private readonly opts: ConsoleInfoOptions) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.bus.on(this, 'hello', (h) => this.record(h.deviceId, h.hello));
    this.opts.bus.on(this, 'forget', (f) => this.last.delete(f.deviceId));
  }

  stop(): void {
    this.opts.bus.removeOwner(this);
    this.started = false;
  }

  useDatabase(db: Db): void {
    this.db = db;
    this.last.clear();
    try {
      db.exec(CONSOLE_HELLO_SCHEMA);
    } catch (err) {
      this.opts.logger.error({ err: String(err) }, 'console info: cannot prepare the console_hello table');
      return;
    }
    this.flush();
  }

  /** Stores a HELLO unless it repeats the console's last stored one. */
  record(device: string, f: HelloFrame): void {
    this.pending.push({ device, at: this.opts.now(), model: f.model, serialNo: f.serialNo, fw: f.fw, icd: f.icd });
    if (this.pending.length > PENDING_HELLOS_MAX) this.pending.splice(0, this.pending.length - PENDING_HELLOS_MAX);
    this.flush();
  }

  private flush(): void {
    const db = this.db;
    if (!db || this.pending.length === 0) return;
    try {
      const newest = db.prepare('SELECT * FROM console_hello WHERE device = ? ORDER BY at DESC, id DESC LIMIT 1');
      const insert = db.prepare('INSERT INTO console_hello (device, at, model, serial_no, fw, icd) VALUES (?, ?, ?, ?, ?, ?)');
      db.transaction(() => {
        for (const h of this.pending) {
          let prev = this.last.get(h.device);
          if (!prev) {
            const row = newest.get(h.device) as HelloRow | undefined;
            if (row) prev = fromRow(row);
          }
          if (!prev || !sameIdentity(prev, h)) {
            insert.run(h.device, h.at, h.model, h.serialNo, h.fw, h.icd);
            prev = h;
          }
          this.last.set(h.device, prev);
        }
      })();
      this.pending = [];
    } catch (err) {
      // The journal raises STORAGE_FAILURE itself; the HELLOs are written when it reopens.
      this.last.clear();
      this.opts.logger.error({ err: String(err) }, 'console info: cannot write console HELLOs (kept for later)');
    }
  }
}

/**
 * The HELLO that names the console of a session: the last one at or before `to` (gateway time: the session's
 * end, or now while it runs), else the first one after `from` (a console whose HELLO was journaled only after
 * the session began, e.g. a gateway that started mid-session). Null when none was ever journaled. Works on a
 * read-only handle and on a journal older than the table.
 */
export function consoleHelloFor(db: Db, device: string, from: number, to: number): ConsoleHello | null {
  if (!tableExists(db, 'console_hello')) return null;
  const before = db.prepare('SELECT * FROM console_hello WHERE device = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1')
    .get(device, to) as HelloRow | undefined;
  if (before) return fromRow(before);
  const after = db.prepare('SELECT * FROM console_hello WHERE device = ? AND at >= ? ORDER BY at, id LIMIT 1')
    .get(device, from) as HelloRow | undefined;
  return after ? fromRow(after) : null;
}
