/** Console HELLOs journaled for the record header: deduplicated, kept across a restart, chosen by the session's times. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/bus.js';
import { consoleHelloFor, ConsoleInfoStore } from '../../../src/record/consoleInfo.js';
import { openJournalDb, type Db } from '../../../src/storage/schema.js';
import { helloFrame } from '../../helpers/hello.js';

const DEV = 'MSC-H001';
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function start(dir: string, clock: { now: number }, db: Db | null) {
  const bus = new EventBus();
  const store = new ConsoleInfoStore({ bus, now: () => clock.now, logger: { error() {} } });
  if (db) store.useDatabase(db);
  store.start();
  const hello = (fw = '3.4.1', serialNo = `SN-${DEV}`) =>
    bus.emit('hello', { deviceId: DEV, hello: { ...helloFrame(DEV), fw, serialNo }, transport: 'mqtt', source: 'mqtt://broker' });
  return { bus, store, hello };
}
const count = (db: Db) => (db.prepare('SELECT count(*) AS n FROM console_hello').get() as { n: number }).n;

describe('ConsoleInfoStore', () => {
  it('stores a HELLO once while it repeats, again when it changes, and keeps them across a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-hello-'));
    dirs.push(dir);
    const clock = { now: T0 };
    let db = openJournalDb(dir, { now: () => clock.now });
    const first = start(dir, clock, db);
    first.hello();
    clock.now += 1_000;
    first.hello(); // link reopened, same console
    expect(count(db)).toBe(1);
    clock.now = T0 + 3_600_000;
    first.hello('3.5.0'); // firmware updated
    expect(count(db)).toBe(2);
    first.store.stop();
    db.close();

    // Restart: a fresh store on a reopened database compares with what is stored, not with an empty memory.
    db = openJournalDb(dir, { now: () => clock.now });
    const second = start(dir, clock, db);
    clock.now = T0 + 7_200_000;
    second.hello('3.5.0');
    expect(count(db)).toBe(2);
    second.bus.emit('forget', { deviceId: DEV, reason: 'silent', at: clock.now });
    second.hello('3.5.0');
    expect(count(db)).toBe(2);

    // The last HELLO at or before the session's end names its console; else the first one after its start.
    expect(consoleHelloFor(db, DEV, T0 + 100, T0 + 1_800_000)).toMatchObject({ fw: '3.4.1', at: T0, model: 'MSC-ALS 2', serialNo: `SN-${DEV}`, icd: 1 });
    expect(consoleHelloFor(db, DEV, T0 + 100, T0 + 5_000_000)).toMatchObject({ fw: '3.5.0', at: T0 + 3_600_000 });
    expect(consoleHelloFor(db, DEV, T0 - 20_000, T0 - 10_000)).toMatchObject({ fw: '3.4.1', at: T0 });
    expect(consoleHelloFor(db, 'MSC-NONE', 0, T0)).toBeNull();
    second.store.stop();
    db.close();
  });

  it('keeps HELLOs that arrive before the journal opens and writes them when it does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-hello-'));
    dirs.push(dir);
    const clock = { now: T0 };
    const { store, hello } = start(dir, clock, null);
    hello();
    const db = openJournalDb(dir, { now: () => clock.now });
    store.useDatabase(db);
    expect(db.prepare('SELECT device, at, model, serial_no, fw, icd FROM console_hello').all()).toEqual([
      { device: DEV, at: T0, model: 'MSC-ALS 2', serial_no: `SN-${DEV}`, fw: '3.4.1', icd: 1 },
    ]);
    store.stop();
    db.close();
  });

  it('answers null on a journal older than the table', () => {
    const dir = mkdtempSync(join(tmpdir(), 'msc-hello-'));
    dirs.push(dir);
    const db = openJournalDb(dir, { now: () => T0 });
    expect(consoleHelloFor(db, DEV, 0, T0)).toBeNull();
    db.close();
  });
});
