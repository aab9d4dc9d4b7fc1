import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { historyRoutes } from '../../../src/api/historyRoutes.js';
import { HistoryService } from '../../../src/storage/history.js';
import { Journal } from '../../../src/storage/journal.js';
import { sample, T0, tempDir } from './fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let journal: Journal;
let app: FastifyInstance;
const NOW = T0 + 60_000;

beforeEach(async () => {
  tmp = tempDir();
  journal = new Journal({ dataDir: tmp.dir });
  await journal.start();
  // 60 s at 10 Hz ending at NOW; PV faulted every 10th sample.
  for (let i = 0; i < 600; i++) {
    journal.appendTelemetry(sample(i, { QB: 100 + (i % 10), PV: i % 10 === 0 ? null : 80, TR: 37 }, { t: T0 + i * 100 }));
  }
  await journal.committed();
  app = Fastify();
  await app.register(historyRoutes, { history: new HistoryService({ journal }), now: () => NOW });
  await app.ready();
});
afterEach(async () => {
  await app.close();
  await journal.stop();
  tmp.cleanup();
});

const get = (qs: string) => app.inject({ method: 'GET', url: `/api/devices/MSC-0001/telemetry${qs}` });

describe('GET /api/devices/:id/telemetry', () => {
  it('defaults to the last 15 minutes, raw, all channels, with faults as null', async () => {
    const res = await get('');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      device: 'MSC-0001', from: NOW - 15 * 60_000, to: NOW, every: null, channels: ['PV', 'QB', 'TR'], truncated: false,
      source: 'journal',
    });
    expect(body.samples).toHaveLength(600);
    expect(body.samples[0]).toEqual({ t: T0, v: { QB: 100, PV: null, TR: 37 } });
  });

  it('aggregates the mean per `every` bucket for the named channels, epoch ms or ISO times', async () => {
    const from = new Date(T0).toISOString();
    const res = await get(`?from=${from}&to=${T0 + 20_000}&channels=QB,PV&every=10s`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      from: T0, to: T0 + 20_000, every: '10s', everyMs: 10_000, channels: ['QB', 'PV'],
      samples: [{ t: T0, v: { QB: 104.5, PV: 80 } }, { t: T0 + 10_000, v: { QB: 104.5, PV: 80 } }],
    });
  });

  it('says when `limit` cut the answer', async () => {
    const res = await get(`?from=${T0}&to=${NOW}&channels=QB&limit=5`);
    expect(res.json()).toMatchObject({ truncated: true, samples: { length: 5 } });
  });

  it('answers 400 naming each bad field', async () => {
    const res = await get('?from=yesterday&every=10 s&channels=Q;B&limit=0&bogus=1');
    expect(res.statusCode).toBe(400);
    const paths = res.json().issues.map((i: { path: string }) => i.path).sort();
    // An unknown parameter is named by its own path, as on every route (src/errors.ts).
    expect(paths).toEqual(['query.bogus', 'query.channels.0', 'query.every', 'query.from', 'query.limit']);
  });

  it('answers 400 for an empty range and for buckets too fine for the range', async () => {
    const backwards = await get(`?from=${T0 + 1_000}&to=${T0}`);
    expect(backwards.statusCode).toBe(400);
    expect(backwards.json().issues).toEqual([{ path: 'query.to', message: 'must be after from' }]);
    const tooFine = await get(`?from=${T0}&to=${T0 + 7 * 86_400_000}&every=1ms`);
    expect(tooFine.statusCode).toBe(400);
    expect(tooFine.json().issues[0].path).toBe('query.every');
  });

  it('answers 503 while the journal cannot be read', async () => {
    await journal.stop();
    const res = await get('');
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toBe('storage_unavailable');
  });
});
