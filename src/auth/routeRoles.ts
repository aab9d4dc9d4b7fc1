/**
 * THE table of every HTTP route (method + fastify url pattern) and the least role it needs.
 * Deny by default: a route missing here is 403 for everyone, so a new route cannot be exposed by forgetting
 * it; add its line here in the same change that adds the route.
 */
import type { Role } from './roles.js';

/** `open` needs no token at all (liveness probes). */
export type RouteAccess = Role | 'open';

const TABLE: Readonly<Record<string, RouteAccess>> = Object.freeze({
  'GET /healthz': 'open',
  // The browser screens' static files: code and styles only, no data; the data they show comes from
  // the routes below with the user's token.
  'GET /': 'open',
  'GET /assets/*': 'open',
  'GET /favicon.ico': 'open',
  'GET /api/me': 'viewer',
  'GET /api/devices/:id/sessions': 'viewer',
  'GET /api/devices/:id/alarm-history': 'viewer',
  'GET /api/devices/:id/telemetry.csv': 'engineer',
  'GET /metrics': 'viewer',

  'GET /api/devices': 'viewer',
  'GET /api/devices/:id': 'viewer',
  'GET /api/devices/:id/telemetry': 'viewer',
  'POST /api/devices/:id/commands': 'operator',
  'POST /api/devices/:id/annotations': 'operator',
  'POST /api/devices/:id/audio-pause': 'operator',

  'GET /api/alarms': 'viewer',
  'GET /api/alarms/:id': 'viewer',
  'GET /api/alarms/history': 'viewer',
  'POST /api/alarms/:id/ack': 'operator',
  'POST /api/alarms/:id/shelve': 'operator',
  'POST /api/alarms/:id/unshelve': 'operator',
  'POST /api/alarms/:id/out-of-service': 'engineer',
  'POST /api/alarms/:id/return-to-service': 'engineer',
  // Alarm-limit and rule changes (engineer).
  'GET /api/alarms/profile': 'viewer',
  'PUT /api/alarms/profile': 'engineer',
  'POST /api/alarms/profile/confirm': 'engineer',
  'PUT /api/devices/:id/limits': 'engineer',

  'GET /api/annotations': 'viewer',
  'GET /api/audit': 'engineer',

  'GET /api/sessions': 'viewer',
  'GET /api/sessions/:id': 'viewer',
  'GET /api/sessions/:id/summary': 'viewer',
  'GET /api/sessions/:id/export': 'engineer',
  // Pseudonymous participant study code of a session (set by an operator, audited).
  'PUT /api/sessions/:id/participant': 'operator',
  // The session's perfusion record (21 CFR Part 11): what it says, its hash, signatures and amendments; as a PDF.
  'GET /api/sessions/:id/record': 'viewer',
  'GET /api/sessions/:id/record.pdf': 'viewer',
  // Electronic signature of the session's perfusion record: the signer's own token and signing password.
  'POST /api/sessions/:id/signatures': 'operator',
  'GET /api/devices/:id/replay': 'engineer',

  // The live stream; its upgrade bypasses fastify routing and is checked by the live hub with the same table.
  'GET /ws': 'viewer',
});

/** Least role per live-stream client message type (same ladder as the HTTP routes). */
export const WS_MESSAGE_ROLES: Readonly<Record<string, Role>> = Object.freeze({
  auth: 'viewer',
  subscribe: 'viewer',
  unsubscribe: 'viewer',
  command: 'operator',
  replay: 'engineer',
});

/**
 * The access a route needs, or null when the route is not in the table (deny). HEAD is answered by the
 * GET route of the same url (fastify's exposeHeadRoutes), so it needs what GET needs.
 */
export function routeAccess(method: string, url: string): RouteAccess | null {
  const m = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
  const key = `${m} ${url}`;
  return Object.hasOwn(TABLE, key) ? TABLE[key] : null;
}

/** Every routed pattern, for the authorization matrix test. */
export function routeTable(): ReadonlyArray<{ method: string; url: string; access: RouteAccess }> {
  return Object.entries(TABLE).map(([k, access]) => {
    const i = k.indexOf(' ');
    return { method: k.slice(0, i), url: k.slice(i + 1), access };
  });
}
