/**
 * The parts that keep their data in the journal's database (audit trail, annotations, session records,
 * InfluxDB forwarder, retention, fleet status), started and stopped together in one defined order.
 *
 * Each store is built once, by the composition root, before the journal has opened: the journal may not open
 * for minutes (unwritable or full disk), and the API must still be able to hold the store and answer 503 until
 * it does. The journal replaces its handle each time it reopens after a failure; the registry hands the new
 * handle to every store that keeps one (prepared statements, created tables), in registration order.
 */
import type { Db } from './schema.js';

export interface JournalStore {
  /**
   * The journal's newly opened handle, after start() and at each reopen. Stores that read
   * `journal.database()` at each use (null while it fails) need no handle of their own and leave this out.
   */
  useDatabase?(db: Db): void;
  start(): void | Promise<void>;
  /** Safe before start() and twice: the gateway stops everything after a failed start too. */
  stop(): void | Promise<void>;
}

/** What hands out the database: the Journal (an interface, so the registry is testable without one). */
export interface DatabaseSource {
  onOpen(listener: (db: Db) => void): void;
}

export interface StoreRegistryOptions {
  /** Null without a journal: stores then never get a handle and answer "unavailable". */
  journal: DatabaseSource | null;
  logger: { error(obj: object, msg?: string): void };
}

export class JournalStores {
  private readonly stores: Array<{ name: string; store: JournalStore }> = [];
  private started = false;

  constructor(private readonly opts: StoreRegistryOptions) {}

  /**
   * Registers a store; stores start in registration order and stop in reverse, so a store registered after
   * another may rely on it (annotations audit through the audit trail) for its whole life. Null is skipped
   * (a part that this configuration does not use).
   */
  add<T extends JournalStore>(name: string, store: T): T;
  add<T extends JournalStore>(name: string, store: T | null): T | null;
  add<T extends JournalStore>(name: string, store: T | null): T | null {
    if (this.started) throw new Error(`store ${name} registered after start`);
    if (store) this.stores.push({ name, store });
    return store;
  }

  /** Names in start order (logs and tests). */
  get names(): string[] {
    return this.stores.map((s) => s.name);
  }

  /**
   * Starts the stores in order, then hands them the journal's handle (at once when it is already open, and again
   * at each reopen). Starting first keeps a storage error out of start(): a table that cannot be created on a
   * full disk is logged here as at any later reopen (the journal alarms and retries), not a failed start. A store
   * failing on a new handle does not keep the others from theirs: one bad table must not leave the audit trail
   * on a closed handle.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const { store } of this.stores) await store.start();
    this.opts.journal?.onOpen((db) => {
      for (const { name, store } of this.stores) {
        try {
          store.useDatabase?.(db);
        } catch (err) {
          this.opts.logger.error({ err, store: name }, `journal opened: ${name} cannot use the new handle`);
        }
      }
    });
  }

  /** Stops in reverse order; a failing store is logged and the rest still stop. */
  async stop(): Promise<void> {
    for (const { name, store } of [...this.stores].reverse()) {
      try {
        await store.stop();
      } catch (err) {
        this.opts.logger.error({ err, step: name }, `shutdown: ${name} failed`);
      }
    }
  }
}
