/**
 * GET /api/sessions/:id/record through the whole gateway: a console fed into the device hub (HELLO, states,
 * telemetry with a sensor fault) runs a session; any token may read the record (viewer), whose header names the
 * console from its journaled HELLO and the configured site; a bad id is 400, an unknown one 404, an id that ran on
 * two consoles 409 without ?device=, an unknown query key 400; the record survives a gateway restart unchanged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import type { DeviceLink } from '../../src/model/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { helloFrame } from '../helpers/hello.js';
import { waitFor } from '../helpers/waitFor.js';

const A = 'MSC-REC-A';
const B = 'MSC-REC-B';
const SESSION = 'S-REC-API';
const link: DeviceLink = { kind: 'serial', source: '/dev/ttyREC', send: async () => {} };
const site = { name: 'Ward 7', gateway: 'gw-ward7', timeZone: 'Europe/Berlin' };
let gw: TestGateway;
let dataDir: string;

async function runSession(device: string, t0: number): Promise<void> {
  let seq = 0;
  await gw.gateway.hub.ingest(device, [helloFrame(device), { type: 'S', seq: ++seq, t: t0, state: 'RUNNING', sessionId: SESSION }] as never, link);
  const samples = Array.from({ length: 20 }, (_, i) => ({
    type: 'T', seq: ++seq, t: t0 + 100 + i * 100, v: { QB: 150 + i, SQB: 150, TR: i === 5 ? null : 37.1, STR: 37 },
  }));
  await gw.gateway.hub.ingest(device, samples as never, link);
  await gw.gateway.hub.ingest(device, [{ type: 'S', seq: ++seq, t: t0 + 2_500, state: 'ENDED', sessionId: SESSION }] as never, link);
  await waitFor(async () => (await gw.get(`/api/sessions?device=${device}`)).body.sessions?.[0]?.endedAt, { message: `${device} session ended` });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'msc-record-api-'));
  gw = await startTestGateway({ site }, { dataDir });
  const t0 = Date.now() - 10_000;
  await runSession(A, t0);
}, 30_000);

afterAll(async () => {
  await gw?.stop(); // stopped already by the restart test: stop() is safe twice
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('GET /api/sessions/:id/record', () => {
  it('gives a viewer the record with its hash, header and sections', async () => {
    const r = await gw.get(`/api/sessions/${SESSION}/record`, gw.tokens.viewer);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const view = r.body;
    expect(view.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(view).toMatchObject({ signatures: [], amendments: [], changedSinceSigned: false });
    expect(view.record.site).toEqual(site);
    expect(view.record.console).toEqual({ device: A, model: 'MSC-ALS 2', serialNo: `SN-${A}`, fw: '3.4.1' });
    expect(view.record.session).toMatchObject({ sessionId: SESSION, running: false, endReason: 'ENDED', durationMs: 2_500 });
    expect(view.record.channels.TR).toMatchObject({ samples: 19, faults: 1 });
    expect(view.record.trends.bucketMs).toBe(1_000);
    expect(view.record.trends.series.QB.max.length).toBe(view.record.trends.t.length);
    expect(Date.parse(view.generatedAt)).toBeGreaterThan(0);
  });

  it('gives a viewer the PDF: an attachment named after console and session, with the record\'s hash', async () => {
    const view = (await gw.get(`/api/sessions/${SESSION}/record`, gw.tokens.viewer)).body;
    const r = await fetch(`${gw.url}/api/sessions/${SESSION}/record.pdf`, { headers: { authorization: `Bearer ${gw.tokens.viewer}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/pdf');
    expect(r.headers.get('content-disposition')).toBe(`attachment; filename="${A}_${SESSION}_record.pdf"`);
    expect(r.headers.get('x-record-sha256')).toBe(view.sha256);
    const bytes = Buffer.from(await r.arrayBuffer());
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(bytes.subarray(-6).toString('latin1')).toMatch(/%%EOF/);
    expect(gw.gateway.recordPdfs.inProgress).toBe(0);
    expect(gw.gateway.recordPdfs.outcomes.sent).toBeGreaterThanOrEqual(1);
    expect((await gw.get(`/api/sessions/S-NONE/record.pdf`, gw.tokens.viewer)).status).toBe(404);
  });

  it('makes two PDFs at once at most: a third is 503 busy with Retry-After, counted', async () => {
    const renders = gw.gateway.recordPdfs;
    expect(renders.tryAcquire() && renders.tryAcquire()).toBe(true);
    try {
      const r = await gw.get(`/api/sessions/${SESSION}/record.pdf`, gw.tokens.viewer);
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('busy');
      const raw = await fetch(`${gw.url}/api/sessions/${SESSION}/record.pdf`, { headers: { authorization: `Bearer ${gw.tokens.viewer}` } });
      expect(raw.headers.get('retry-after')).toBe('5');
      await raw.arrayBuffer();
      expect((await gw.get('/metrics', gw.tokens.viewer)).body).toMatch(/^msc_record_pdfs_total\{outcome="busy"\} 2$/m);
    } finally {
      renders.release('aborted');
      renders.release('aborted');
    }
    expect((await fetch(`${gw.url}/api/sessions/${SESSION}/record.pdf`, { headers: { authorization: `Bearer ${gw.tokens.viewer}` } })).status).toBe(200);
  });

  it('refuses a bad id (400), an unknown one (404), an unknown query key (400), and no token (401)', async () => {
    const bad = await gw.get('/api/sessions/no%20spaces/record', gw.tokens.viewer);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'bad_request', issues: [{ path: 'params.id' }] });
    const unknown = await gw.get('/api/sessions/S-NONE/record', gw.tokens.viewer);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('not_found');
    const extra = await gw.get(`/api/sessions/${SESSION}/record?format=pdf`, gw.tokens.viewer);
    expect(extra.status).toBe(400);
    expect(extra.body.issues).toEqual([{ path: 'query.format', message: expect.any(String) }]);
    expect((await gw.get(`/api/sessions/${SESSION}/record`, '')).status).toBe(401);
  });

  it('an id that ran on two consoles needs ?device= (409 without it)', async () => {
    await runSession(B, Date.now() - 5_000);
    const both = await gw.get(`/api/sessions/${SESSION}/record`, gw.tokens.viewer);
    expect(both.status).toBe(409);
    expect(both.body.error).toBe('ambiguous');
    const b = await gw.get(`/api/sessions/${SESSION}/record?device=${B}`, gw.tokens.viewer);
    expect(b.status).toBe(200);
    expect(b.body.record.console.device).toBe(B);
    expect((await gw.get(`/api/sessions/${SESSION}/record?device=MSC-NONE`, gw.tokens.viewer)).status).toBe(404);
  });

  it('is the same record, byte for byte, after a gateway restart (console identity from the journal)', async () => {
    const before = (await gw.get(`/api/sessions/${SESSION}/record?device=${A}`, gw.tokens.viewer)).body;
    await gw.stop();
    // The same data directory, tokens included: the console has not said HELLO to this process.
    const again = new Gateway(parseConfig({ http: { host: '127.0.0.1', port: 0 }, dataDir, site }), { logger: silentLogger() });
    await again.start();
    try {
      expect(again.hub.get(A)).toBeUndefined();
      const r = await fetch(`${again.httpUrl}/api/sessions/${SESSION}/record?device=${A}`, { headers: { authorization: `Bearer ${gw.tokens.viewer}` } });
      expect(r.status).toBe(200);
      const after = await r.json() as typeof before;
      expect(after.sha256).toBe(before.sha256);
      expect(after.record).toEqual(before.record);
      expect(after.record.console.model).toBe('MSC-ALS 2');
    } finally {
      await again.stop();
    }
  }, 30_000);
});
