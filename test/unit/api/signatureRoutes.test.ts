/**
 * `POST /api/sessions/:id/signatures` as a route: body and path validation (never echoing the password), session
 * lookup, each refusal's status and Retry-After, and a 201 that stays a 201 when the view fails after signing.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signatureRoutes, type SignatureRoutesOptions } from '../../../src/api/signatureRoutes.js';
import { silentLogger } from '../../../src/log.js';
import type { SignRequest, SignResult } from '../../../src/record/signing.js';
import type { RecordView } from '../../../src/record/types.js';
import type { SessionRecord } from '../../../src/sessions/types.js';

const REC = { key: 3, sessionId: 'S-1', device: 'MSC-0001', endedAt: 1 } as SessionRecord;
const SIG = { auditId: 42, user: 'nurse1', printedName: 'Ann Nurse', role: 'operator', meaning: 'authored' as const, at: Date.UTC(2026, 0, 5), recordSha256: 'a'.repeat(64) };
let app: FastifyInstance;
let result: SignResult;
let seen: SignRequest[];
let view: () => Promise<RecordView>;

beforeEach(async () => {
  seen = [];
  result = { ok: true, signature: SIG, audit: {} as never };
  view = async () => ({ record: {} as never, sha256: 'a'.repeat(64), signatures: [], amendments: [], changedSinceSigned: false, generatedAt: '' });
  const opts: SignatureRoutesOptions = {
    sessions: { find: (id, device) => (id === 'S-1' && (device === undefined || device === 'MSC-0001') ? { ok: true, record: REC } : id === 'S-TWO' ? { ok: false, status: 409, message: 'ran on two' } : { ok: false, status: 404, message: `no session ${id}` }) },
    signatures: { sign: async (_p, _r, req) => { seen.push(req); return result; } },
    view: () => view(),
  };
  app = Fastify({ loggerInstance: silentLogger() });
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => { req.principal = { user: 'nurse1', role: 'operator' }; });
  await app.register(signatureRoutes, opts);
  await app.ready();
});
afterEach(async () => {
  await app.close();
});

const post = (body: unknown, id = 'S-1') => app.inject({ method: 'POST', url: `/api/sessions/${id}/signatures`, payload: body as object });

describe('POST /api/sessions/:id/signatures', () => {
  it('validates the body strictly and never echoes the password', async () => {
    const r = await post({ meaning: 'witnessed', password: 'secret pass 123', recordSha256: 'xyz', user: 'a b', bogus: 1 });
    expect(r.statusCode).toBe(400);
    expect(r.json().issues.map((i: { path: string }) => i.path).sort()).toEqual(['bogus', 'meaning', 'recordSha256', 'user']);
    expect(r.body).not.toContain('secret pass 123');
    expect((await post({ meaning: 'authored' })).json().issues[0].path).toBe('password');
    expect((await post({ meaning: 'authored', password: 'x'.repeat(257) })).statusCode).toBe(400);
    expect((await post({ meaning: 'authored', password: 'p' }, 'bad id!')).json().issues[0].path).toBe('params.id');
    expect(seen).toEqual([]);
  });

  it('answers 404 and 409 ambiguous from the session lookup', async () => {
    expect((await post({ meaning: 'authored', password: 'p' }, 'S-NONE')).json()).toMatchObject({ error: 'not_found' });
    expect((await post({ meaning: 'authored', password: 'p' }, 'S-TWO')).json()).toMatchObject({ error: 'ambiguous' });
    expect((await post({ meaning: 'authored', password: 'p', device: 'MSC-0002' })).statusCode).toBe(404);
  });

  it('passes the request on (hash lower-cased) and answers 201 with the view\'s manifest entry', async () => {
    const entry = { ...SIG, atUtc: 'u', atLocal: 'l', changedSince: false };
    view = async () => ({ record: {} as never, sha256: SIG.recordSha256, signatures: [entry], amendments: [], changedSinceSigned: false, generatedAt: '' });
    const r = await post({ meaning: 'authored', password: 'p', user: 'nurse1', recordSha256: 'A'.repeat(64) });
    expect(r.statusCode).toBe(201);
    expect(seen).toEqual([{ meaning: 'authored', password: 'p', user: 'nurse1', recordSha256: 'a'.repeat(64) }]);
    expect(r.json().signature).toEqual(entry);
  });

  it('stays 201 with view null when the view fails after the signature was stored', async () => {
    view = async () => { throw new Error('record unavailable'); };
    const r = await post({ meaning: 'authored', password: 'p' });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({ view: null, signature: { ...SIG, atUtc: new Date(SIG.at).toISOString(), atLocal: new Date(SIG.at).toISOString(), changedSince: false } });
  });

  it('answers each refusal with its catalogue status, and Retry-After in whole seconds when locked', async () => {
    const cases: Array<[SignResult, number]> = [
      [{ ok: false, why: 'wrong_password', code: 'signature_refused', message: 'wrong' }, 403],
      [{ ok: false, why: 'no_signing_password', code: 'no_signing_password', message: 'none' }, 403],
      [{ ok: false, why: 'user_mismatch', code: 'forbidden', message: 'not you' }, 403],
      [{ ok: false, why: 'session_running', code: 'session_running', message: 'running' }, 409],
      [{ ok: false, why: 'record_changed', code: 'record_changed', message: 'changed' }, 409],
      [{ ok: false, why: 'locked', code: 'signing_locked', message: 'locked', retryAfterMs: 899_001 }, 423],
    ];
    for (const [res, status] of cases) {
      result = res;
      const r = await post({ meaning: 'reviewed', password: 'p' });
      expect([res.ok ? '' : res.code, r.statusCode]).toEqual([res.ok ? '' : res.code, status]);
      expect(r.json()).toEqual({ error: res.ok ? '' : res.code, message: res.ok ? '' : res.message });
      expect(r.headers['retry-after']).toBe(status === 423 ? '900' : undefined);
    }
  });
});
