/**
 * The parts kept in the journal's database (audit trail, annotations, session records) are built before the
 * journal opens: a gateway whose data directory cannot be used at start answers 503 for them, keeps the audit
 * records of actions taken meanwhile, and serves them all once the journal opens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/waitFor.js';

describe('journal-backed stores on a journal that opens late', () => {
  const base = mkdtempSync(join(tmpdir(), 'msc-late-journal-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('answer 503 until the journal opens, then work, with the audit record of an action taken meanwhile', async () => {
    const dataDir = join(base, 'data');
    writeFileSync(dataDir, 'a file where the data directory should be');
    const token = randomBytes(32).toString('base64url');
    const gateway = new Gateway(parseConfig({
      http: { host: '127.0.0.1', port: 0 }, dataDir,
      auth: { tokens: [{ name: 'ops', role: 'admin', sha256: createHash('sha256').update(token).digest('hex') }] },
    }), { logger: silentLogger() });
    const call = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(gateway.httpUrl + path, {
        method, body: body === undefined ? undefined : JSON.stringify(body),
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      });
      return { status: r.status, body: await r.json() as any };
    };
    try {
      await gateway.start();
      const storageAlarm = await waitFor(async () => (await call('GET', '/api/alarms?state=active&device=gateway')).body.alarms
        ?.find((a: { rule: string }) => a.rule === 'STORAGE_FAILURE'), { message: 'STORAGE_FAILURE alarm' });
      for (const path of ['/api/audit', '/api/annotations', '/api/sessions']) {
        expect({ path, ...(await call('GET', path)) }).toMatchObject({ path, status: 503, body: { error: 'storage_unavailable' } });
      }
      // An acknowledgement hides nothing: it is taken now and its audit record waits for the trail.
      expect((await call('POST', `/api/alarms/${storageAlarm.id}/ack`, {})).status).toBe(200);
      expect(gateway.pendingAudit.pending).toBe(1);

      rmSync(dataDir);
      mkdirSync(dataDir, { mode: 0o700 });
      await waitFor(() => gateway.journal!.status().writable, { timeoutMs: 15_000, message: 'journal opened on retry' });

      const audit = await waitFor(async () => {
        const r = await call('GET', '/api/audit');
        return r.status === 200 && r.body.records.length > 0 ? r.body.records : null;
      }, { message: 'audit trail served after the journal opened' });
      expect(audit.map((r: { action: string }) => r.action)).toContain('alarm.ack');
      expect(gateway.pendingAudit.pending).toBe(0);
      expect(await call('GET', '/api/annotations')).toMatchObject({ status: 200, body: { annotations: [] } });
      expect(await call('GET', '/api/sessions')).toMatchObject({ status: 200, body: { sessions: [] } });
      expect(gateway.audit.verify()).toMatchObject({ ok: true });
    } finally {
      await gateway.stop();
    }
  });
});
