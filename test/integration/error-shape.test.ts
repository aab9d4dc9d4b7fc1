/**
 * One client mistake, one answer: the same malformed body (an unknown field, a wrong type, not an object, not
 * JSON) or query sent to every route that validates one comes back as the same `issues` (src/errors.ts), over
 * HTTP and on the live stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ERRORS } from '../../src/errors.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/waitFor.js';

interface Issue { path: string; message: string }
interface Answer { status: number; body: any }

let gw: TestGateway;

beforeAll(async () => {
  // Enough write budget for every request below: the rate limit is not what this test is about.
  gw = await startTestGateway({ auth: { rateLimit: { burst: 1000, perSecond: 100 } } } as never);
});

afterAll(async () => {
  await gw?.stop();
});

async function call(method: string, path: string, body?: unknown, raw?: string): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${gw.tokens.admin}` };
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(gw.url + path, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  return { status: r.status, body: await r.json() };
}

const byPath = (issues: Issue[]) => [...issues].sort((a, b) => a.path.localeCompare(b.path));

/** Every 400 is `bad_request`, its message the issues in text, each issue exactly {path, message}. */
function expectBadRequest(what: string, r: Answer): Issue[] {
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(400);
  expect(Object.keys(r.body).sort(), what).toEqual(['error', 'issues', 'message']);
  expect(r.body.error, what).toBe('bad_request');
  for (const i of r.body.issues) expect(Object.keys(i).sort(), what).toEqual(['message', 'path']);
  expect(r.body.message, what).toBe(r.body.issues.map((i: Issue) => `${i.path}: ${i.message}`).join('; '));
  return byPath(r.body.issues);
}

/** Routes with a JSON body, each with a body that is valid but for `reason` (when it has one). */
const BODY_ROUTES: Array<{ method: string; path: string; valid: Record<string, unknown>; reason: boolean }> = [
  { method: 'POST', path: '/api/devices/MSC-NONE/commands', valid: { verb: 'SET', args: ['QB', 150] }, reason: true },
  { method: 'POST', path: '/api/alarms/NO-SUCH/shelve', valid: { minutes: 5 }, reason: true },
  { method: 'POST', path: '/api/alarms/NO-SUCH/out-of-service', valid: {}, reason: true },
  { method: 'POST', path: '/api/alarms/NO-SUCH/ack', valid: {}, reason: true },
  { method: 'PUT', path: '/api/devices/MSC-NONE/limits', valid: { rule: 'PV_HIGH', limit: 240 }, reason: true },
  { method: 'PUT', path: '/api/alarms/profile', valid: { profile: {} }, reason: true },
  { method: 'POST', path: '/api/alarms/profile/confirm', valid: {}, reason: true },
  { method: 'PUT', path: '/api/sessions/S-1/participant', valid: { code: 'P-01' }, reason: true },
  { method: 'POST', path: '/api/devices/MSC-NONE/annotations', valid: { kind: 'note', text: 'x' }, reason: false },
];

describe('the same malformed body gets the same issues on every route', () => {
  it('an unknown field is named by its own path, a wrong type by the field, with the same words everywhere', async () => {
    const seen = new Map<string, Issue[]>();
    for (const route of BODY_ROUTES) {
      const body = { ...route.valid, bogus: 1, ...(route.reason ? { reason: 42 } : {}) };
      const issues = expectBadRequest(`${route.method} ${route.path}`, await call(route.method, route.path, body));
      seen.set(`${route.method} ${route.path}`, issues);
    }
    const [first, ...rest] = [...seen.entries()];
    expect(first[1]).toEqual([
      { path: 'bogus', message: 'Unrecognized key: "bogus"' },
      { path: 'reason', message: expect.stringMatching(/expected string, received number/) },
    ]);
    for (const [route, issues] of rest) {
      const expected = BODY_ROUTES.find((r) => `${r.method} ${r.path}` === route)!.reason ? first[1] : first[1].filter((i) => i.path === 'bogus');
      expect({ route, issues }).toEqual({ route, issues: expected });
    }
  });

  it('a body that is not an object is about the body as a whole: (body)', async () => {
    const answers = [];
    for (const route of BODY_ROUTES) answers.push(expectBadRequest(route.path, await call(route.method, route.path, [1, 2])));
    expect(answers[0]).toEqual([{ path: '(body)', message: expect.stringMatching(/expected object, received array/) }]);
    for (const a of answers) expect(a).toEqual(answers[0]);
  });

  it('a body that is not JSON is a 400 about (body), from the one error handler', async () => {
    const answers = [];
    for (const route of BODY_ROUTES) answers.push(expectBadRequest(route.path, await call(route.method, route.path, undefined, '{"reason":')));
    expect(answers[0]).toMatchObject([{ path: '(body)' }]);
    for (const a of answers) expect(a).toEqual(answers[0]);
  });
});

describe('the same malformed query gets the same issues on every route', () => {
  it('unknown parameters and bad values are query.<name>', async () => {
    const routes = ['/api/audit', '/api/annotations', '/api/sessions', '/api/devices/MSC-NONE/alarm-history', '/api/devices/MSC-NONE/telemetry'];
    const answers = [];
    for (const path of routes) answers.push(expectBadRequest(path, await call('GET', `${path}?limit=zero&bogus=1`)));
    expect(answers[0]).toEqual([
      { path: 'query.bogus', message: 'Unrecognized key: "bogus"' },
      { path: 'query.limit', message: 'expected a positive integer' },
    ]);
    for (const a of answers) expect(a).toEqual(answers[0]);
    // The alarm list's query is a query too.
    expect(expectBadRequest('/api/alarms', await call('GET', '/api/alarms?state=sometimes')).map((i) => i.path)).toEqual(['query.state']);
  });

  it('a bad path parameter is params.<name>', async () => {
    const session = expectBadRequest('session id', await call('GET', '/api/sessions/not%20an%20id'));
    const device = expectBadRequest('device id', await call('PUT', `/api/devices/${'x'.repeat(65)}/limits`, { rule: 'PV_HIGH', limit: 240, reason: 'r' }));
    expect([session[0].path, device[0].path]).toEqual(['params.id', 'params.id']);
  });
});

describe('the live stream', () => {
  it('answers a malformed command with the HTTP route\'s issues, as {type:"error", code, message, issues, id}', async () => {
    const body = { verb: 'SET', args: ['QB', 150], reason: 42, bogus: 1 };
    const http = expectBadRequest('command', await call('POST', '/api/devices/MSC-NONE/commands', body));

    const ws = new WebSocket(gw.url.replace('http', 'ws') + '/ws', { headers: { authorization: `Bearer ${gw.tokens.admin}` } });
    const messages: any[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    try {
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      ws.send(JSON.stringify({ type: 'command', id: 'c-1', device: 'MSC-NONE', ...body }));
      const error = await waitFor(() => messages.find((m) => m.type === 'error'), { message: 'an error message' });
      expect(error).toEqual({ type: 'error', code: 'invalid_message', message: expect.any(String), issues: expect.any(Array), id: 'c-1' });
      expect(byPath(error.issues)).toEqual(http);
      expect(error.message).toBe(error.issues.map((i: Issue) => `${i.path}: ${i.message}`).join('; '));
      expect(ERRORS[error.code as keyof typeof ERRORS].status).toBe(400);
    } finally {
      ws.close();
    }
  });
});
