/**
 * The error catalogue (src/errors.ts): every code has a status and a message, codes are unique and spelled one
 * way, docs/api-errors.md lists exactly the catalogue, and zod issues are formatted one way.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  badRequest, codeForStatus, ERRORS, errorBody, GatewayError, isErrorCode, issuesText, ROOT_PATH, zodIssues, type ErrorCode,
} from '../../src/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const codes = Object.keys(ERRORS) as ErrorCode[];

describe('the catalogue', () => {
  it('gives every code an error status, a message, a meaning and where it is seen', () => {
    for (const code of codes) {
      const e = ERRORS[code];
      expect(Number.isInteger(e.status) && e.status >= 400 && e.status <= 599, code).toBe(true);
      expect(e.message.trim().length, code).toBeGreaterThan(0);
      expect(e.meaning.trim().length, code).toBeGreaterThan(0);
      expect(['http', 'ws', 'both'], code).toContain(e.transport);
    }
  });

  it('has unique codes, each one snake_case word as clients match it', () => {
    expect(new Set(codes).size).toBe(codes.length);
    expect(new Set(codes.map((c) => c.toLowerCase())).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^[a-z][a-z_]*[a-z]$/);
    expect(isErrorCode('bad_request')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
  });

  it('keeps the codes and statuses clients already know', () => {
    const known: Partial<Record<ErrorCode, number>> = {
      bad_request: 400, unauthorized: 401, forbidden: 403, not_found: 404, too_large: 413, too_many_requests: 429,
      internal: 500, storage_unavailable: 503, audit_unavailable: 503, malformed: 400, out_of_limits: 400,
      wrong_state: 400, unknown_device: 404, link_lost: 409, invalid_transition: 409, invalid_argument: 400,
      no_single_limit: 409, nothing_to_confirm: 409, not_persisted: 503, ambiguous: 409, forbidden_origin: 403, busy: 503,
    };
    for (const [code, status] of Object.entries(known)) expect([code, ERRORS[code as ErrorCode].status]).toEqual([code, status]);
  });

  it('is the table of docs/api-errors.md, row for row', () => {
    const doc = readFileSync(join(root, 'docs', 'api-errors.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| (http|ws|both) \| (.+) \|$/gm)]
      .map((m) => ({ code: m[1], status: Number(m[2]), transport: m[3] }));
    expect(rows).toEqual(codes.map((code) => ({ code, status: ERRORS[code].status, transport: ERRORS[code].transport })));
  });
});

describe('bodies', () => {
  it('one shape: error, message, and issues only when there are some', () => {
    expect(errorBody('not_found')).toEqual({ error: 'not_found', message: ERRORS.not_found.message });
    expect(errorBody('not_found', 'no device X')).toEqual({ error: 'not_found', message: 'no device X' });
    const issues = [{ path: 'query.to', message: 'must be after from' }, { path: 'limit', message: 'too big' }];
    expect(badRequest(issues)).toEqual({ error: 'bad_request', message: 'query.to: must be after from; limit: too big', issues });
  });

  it('GatewayError carries the catalogue status and sends no details', () => {
    const e = new GatewayError('link_lost', 'link down', undefined, { device: 'MSC-1', internal: 'secret' });
    expect([e.status, e.code, e.message]).toEqual([409, 'link_lost', 'link down']);
    expect(e.body).toEqual({ error: 'link_lost', message: 'link down' });
    expect(new GatewayError('busy').body).toEqual({ error: 'busy', message: ERRORS.busy.message });
  });

  it('maps fastify statuses onto catalogue codes', () => {
    expect([400, 401, 403, 404, 413, 415, 429, 500, 503].map(codeForStatus))
      .toEqual(['bad_request', 'unauthorized', 'forbidden', 'not_found', 'too_large', 'bad_request', 'too_many_requests', 'internal', 'internal']);
  });
});

describe('zodIssues', () => {
  const Body = z.strictObject({ verb: z.enum(['SET']), args: z.array(z.number()).default([]), nested: z.strictObject({ a: z.number() }).optional() });

  it('joins paths with dots, under the root given', () => {
    const r = Body.safeParse({ verb: 'FLY', args: [1, 'x'] });
    expect(r.success).toBe(false);
    const issues = zodIssues(r.error!);
    expect(issues.map((i) => i.path)).toEqual(['verb', 'args.1']);
    expect(zodIssues(r.error!, ['query']).map((i) => i.path)).toEqual(['query.verb', 'query.args.1']);
    expect(issuesText(issues)).toBe(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  });

  it('names each unknown field by its own path, nested ones too', () => {
    const r = Body.safeParse({ verb: 'SET', x: 1, y: 2, nested: { a: 1, b: 3 } });
    const byPath = zodIssues(r.error!).sort((a, b) => a.path.localeCompare(b.path));
    expect(byPath).toEqual([
      { path: 'nested.b', message: 'Unrecognized key: "b"' },
      { path: 'x', message: 'Unrecognized key: "x"' },
      { path: 'y', message: 'Unrecognized key: "y"' },
    ]);
  });

  it('calls the body as a whole (body), and a root parameter by its root', () => {
    const r = Body.safeParse([1]);
    expect(zodIssues(r.error!)).toEqual([{ path: ROOT_PATH, message: expect.stringMatching(/expected object/) }]);
    expect(ROOT_PATH).toBe('(body)');
    const id = z.string().max(3).safeParse('long id');
    expect(zodIssues(id.error!, ['params', 'id']).map((i) => i.path)).toEqual(['params.id']);
  });
});
