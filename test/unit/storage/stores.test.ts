import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { JournalStores, type DatabaseSource, type JournalStore } from '../../../src/storage/stores.js';
import type { Db } from '../../../src/storage/schema.js';

/** A journal stand-in: onOpen as the Journal's (at once when open, again at each reopen). */
class FakeJournal implements DatabaseSource {
  private listeners: Array<(db: Db) => void> = [];
  db: Db | null = null;
  onOpen(listener: (db: Db) => void): void {
    this.listeners.push(listener);
    if (this.db) listener(this.db);
  }
  open(): Db {
    this.db = new Database(':memory:');
    for (const l of this.listeners) l(this.db);
    return this.db;
  }
}

function recorder() {
  const calls: string[] = [];
  const errors: Array<{ obj: object; msg?: string }> = [];
  const store = (name: string, opts: { failOpen?: boolean; failStop?: boolean; noHandle?: boolean } = {}): JournalStore & { db: Db | null } => {
    const s: JournalStore & { db: Db | null } = {
      db: null,
      start: async () => { calls.push(`start ${name}`); },
      stop: async () => {
        calls.push(`stop ${name}`);
        if (opts.failStop) throw new Error(`${name} stop failed`);
      },
    };
    if (!opts.noHandle) {
      s.useDatabase = (db) => {
        calls.push(`db ${name}`);
        if (opts.failOpen) throw new Error(`${name} cannot create its table`);
        s.db = db;
      };
    }
    return s;
  };
  return { calls, errors, store, logger: { error: (obj: object, msg?: string) => errors.push({ obj, msg }) } };
}

describe('JournalStores', () => {
  it('starts in registration order, then hands the open handle to each store that keeps one; stops in reverse', async () => {
    const { calls, store, logger } = recorder();
    const journal = new FakeJournal();
    const first = journal.open();
    const stores = new JournalStores({ journal, logger });
    const audit = stores.add('audit', store('audit'));
    stores.add('absent', null); // a part this configuration does not use
    const forwarder = stores.add('forwarder', store('forwarder', { noHandle: true }));
    const sessions = stores.add('sessions', store('sessions'));
    expect(stores.names).toEqual(['audit', 'forwarder', 'sessions']);
    await stores.start();
    expect(calls).toEqual(['start audit', 'start forwarder', 'start sessions', 'db audit', 'db sessions']);
    expect([audit.db, forwarder.db, sessions.db]).toEqual([first, null, first]);
    calls.length = 0;
    await stores.stop();
    expect(calls).toEqual(['stop sessions', 'stop forwarder', 'stop audit']);
  });

  it('gives every store the new handle at each reopen, even when one of them fails on it', async () => {
    const { calls, errors, store, logger } = recorder();
    const journal = new FakeJournal();
    const stores = new JournalStores({ journal, logger });
    const audit = stores.add('audit', store('audit'));
    stores.add('annotations', store('annotations', { failOpen: true }));
    const sessions = stores.add('sessions', store('sessions'));
    await stores.start();
    expect(audit.db).toBeNull(); // the journal has not opened yet: started without a handle
    const first = journal.open();
    expect([audit.db, sessions.db]).toEqual([first, first]);
    const second = journal.open(); // reopened after a storage failure
    expect([audit.db, sessions.db]).toEqual([second, second]);
    expect(calls.filter((c) => c.startsWith('db '))).toEqual([
      'db audit', 'db annotations', 'db sessions', 'db audit', 'db annotations', 'db sessions',
    ]);
    expect(errors).toHaveLength(2);
    expect(errors[0].msg).toMatch(/annotations cannot use the new handle/);
    expect(errors[0].obj).toMatchObject({ store: 'annotations' });
  });

  it('a store failing to stop is logged and the rest still stop; start twice starts once; no store joins after start', async () => {
    const { calls, errors, store, logger } = recorder();
    const stores = new JournalStores({ journal: null, logger });
    stores.add('audit', store('audit'));
    stores.add('forwarder', store('forwarder', { failStop: true }));
    stores.add('fleet-status', store('fleet-status'));
    await stores.start();
    await stores.start();
    expect(calls).toEqual(['start audit', 'start forwarder', 'start fleet-status']); // no journal: no handle, ever
    calls.length = 0;
    await stores.stop();
    expect(calls).toEqual(['stop fleet-status', 'stop forwarder', 'stop audit']);
    expect(errors).toEqual([{ obj: expect.objectContaining({ step: 'forwarder' }), msg: 'shutdown: forwarder failed' }]);
    expect(() => stores.add('late', store('late'))).toThrow(/registered after start/);
  });
});
