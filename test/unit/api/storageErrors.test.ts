/**
 * A journal that cannot be read is one answer on every route: the server's error handler maps what the storage
 * throws (the journal's StorageUnavailableError, SQLite's I/O / full / corrupt / locked errors, better-sqlite3 on a
 * handle closed after a disk failure) to 503 `storage_unavailable` with the reason; a bug stays a 500.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../../src/api/server.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { Registry } from '../../../src/metrics.js';
import { StorageUnavailableError } from '../../../src/storage/types.js';

function sqliteError(code: string): Error {
  return Object.assign(new Error(`${code.toLowerCase()} happened`), { code });
}

async function server(throwing: () => never) {
  return buildServer({
    logger: silentLogger(), devices: { list: () => [], get: () => undefined } as never, health: () => ({}) as never, metrics: new Registry(),
    plugins: [{ plugin: async (app) => { app.get('/api/x', async () => throwing()); } }],
  });
}

describe('storage errors over HTTP', () => {
  it('answer 503 storage_unavailable with the reason, whichever way the storage failed', async () => {
    const closed = new Database(':memory:');
    closed.close();
    const cases: Array<[string, () => never]> = [
      ['journal unavailable', () => { throw new StorageUnavailableError('journal unavailable: disk full'); }],
      ['SQLITE_IOERR', () => { throw sqliteError('SQLITE_IOERR_READ'); }],
      ['SQLITE_FULL', () => { throw sqliteError('SQLITE_FULL'); }],
      ['SQLITE_CORRUPT', () => { throw sqliteError('SQLITE_CORRUPT'); }],
      ['SQLITE_BUSY', () => { throw sqliteError('SQLITE_BUSY'); }],
      ['not open', () => { closed.prepare('SELECT 1'); throw new Error('unreachable'); }],
    ];
    for (const [name, fn] of cases) {
      const app = await server(fn);
      const r = await app.inject({ method: 'GET', url: '/api/x' });
      expect({ name, status: r.statusCode, error: r.json().error }).toEqual({ name, status: 503, error: 'storage_unavailable' });
      expect(r.json().message, name).toMatch(/journal unavailable|disk full/);
      await app.close();
    }
  });

  it('a bug is still a 500, and a SQL mistake is not dressed up as a storage outage', async () => {
    for (const fn of [() => { throw new TypeError('x is undefined'); }, () => { throw sqliteError('SQLITE_ERROR'); }] as Array<() => never>) {
      const app = await server(fn);
      const r = await app.inject({ method: 'GET', url: '/api/x' });
      expect(r.statusCode).toBe(500);
      expect(r.json().error).toBe('internal');
      // The fault's own text (SQL, file names, stack) is for the log, not for the client.
      expect(r.json().message).not.toMatch(/undefined|sqlite_error/i);
      await app.close();
    }
  });

  it('a GatewayError thrown by a route is answered with its catalogue status and body, without its details', async () => {
    const app = await server(() => { throw new GatewayError('link_lost', 'MSC-1 link is lost', undefined, { secret: 'for the log' }); });
    const r = await app.inject({ method: 'GET', url: '/api/x' });
    expect([r.statusCode, r.json()]).toEqual([409, { error: 'link_lost', message: 'MSC-1 link is lost' }]);
    await app.close();
  });
});
