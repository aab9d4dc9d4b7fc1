/**
 * The forwarder's loop handles InfluxDB and journal errors itself; an unexpected error (a bug) must not end
 * forwarding for good: it is restarted from the confirmed cursors with backoff, counted, shown in its status, and
 * FORWARDER_FAILURE (MEDIUM) is raised while it keeps failing and cleared once a batch goes through. InfluxDB is a
 * stand-in HTTP server here (the real one is in test/integration/storage-forwarder.test.ts): this tests the
 * supervision of one part.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InfluxForwarder } from '../../../src/storage/forwarder.js';
import { Journal } from '../../../src/storage/journal.js';
import type { StorageCondition } from '../../../src/storage/types.js';
import { waitFor } from '../../helpers/waitFor.js';
import { fullValues, sample, tempDir } from './fixtures.js';
import { metricsTextOf } from '../../../src/metrics.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeInflux(): Promise<{ url: string; lines: () => number }> {
  let lines = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url?.startsWith('/write')) lines += body.split('\n').filter(Boolean).length;
      res.writeHead(req.url?.startsWith('/write') ? 204 : 200, { 'content-type': 'application/json' });
      res.end(req.url?.startsWith('/query') ? '{"results":[{"statement_id":0}]}' : undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/msc`, lines: () => lines };
}

describe('forwarder supervision', () => {
  it('restarts a loop ended by a bug, alarms while it keeps failing, and forwards every row once it works', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const journal = new Journal({ dataDir: tmp.dir });
    await journal.start();
    cleanups.push(() => journal.stop());
    for (let i = 1; i <= 200; i++) journal.appendTelemetry(sample(i, fullValues(i)));
    journal.flush();

    const influx = await fakeInflux();
    const conditions: StorageCondition[] = [];
    const forwarder = new InfluxForwarder({
      journal, onCondition: (c) => conditions.push(c), random: () => 0,
      config: { url: influx.url, retryMinMs: 10, retryMaxMs: 20, batchMs: 20 },
    });
    // The bug: reading the journal throws for the first 4 attempts.
    const target = forwarder as unknown as { buildBatch: (...a: unknown[]) => Promise<unknown> };
    const real = target.buildBatch.bind(forwarder);
    let attempts = 0;
    target.buildBatch = (...a) => (++attempts <= 4 ? Promise.reject(new TypeError('a bug in batch building')) : real(...a));
    await forwarder.start();
    cleanups.push(() => forwarder.stop());

    await waitFor(() => conditions.some((c) => c.rule === 'FORWARDER_FAILURE' && c.active), { message: 'FORWARDER_FAILURE raised' });
    expect(conditions.find((c) => c.rule === 'FORWARDER_FAILURE')).toMatchObject({ priority: 'MEDIUM', message: expect.stringContaining('a bug in batch building') });

    await waitFor(() => influx.lines() >= 200, { message: 'every row forwarded after the restarts' });
    await waitFor(() => conditions.some((c) => c.rule === 'FORWARDER_FAILURE' && !c.active), { message: 'FORWARDER_FAILURE cleared' });
    const status = forwarder.status();
    expect(status.restarts).toBe(4);
    expect(status.loopError).toBeNull();
    expect(status.lines).toBe(0);
    expect(await metricsTextOf((r) => forwarder.registerMetrics(r))).toMatch(/^msc_forwarder_restarts_total 4$/m);
  });
});
