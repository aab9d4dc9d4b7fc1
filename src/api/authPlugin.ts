/**
 * Access control for every HTTP route: `Authorization: Bearer TOKEN`, looked up by its SHA-256
 * in constant time; 401 without a known token, 403 below the route's role (src/auth/routeRoles.ts: one table,
 * deny by default), 429 when a user's write routes exceed the rate limit. `/healthz` is open.
 * Registered at the root (skip-override) so its hook covers routes registered before and after it.
 * The token is never logged: only the user name and role it resolved to. Every 401 is counted and logged with
 * its source address, throttled (src/auth/unauthorizedLog.ts): token guessing leaves a trace.
 * On an open route a token is optional: a valid one sets the principal (`/healthz` then shows its detail), an
 * unknown one is counted like a 401 (the detail would otherwise tell a guesser which token is valid).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../alarms/types.js';
import { sendError } from '../errors.js';
import type { RateLimiter } from '../auth/rateLimiter.js';
import { roleAtLeast, type Principal } from '../auth/roles.js';
import { routeAccess } from '../auth/routeRoles.js';
import { bearerToken } from '../auth/tokenHash.js';
import type { Authenticator } from '../auth/tokenStore.js';
import type { UnauthorizedLog } from '../auth/unauthorizedLog.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every route but the open ones. */
    principal: Principal | null;
  }
}

export interface AuthPluginOptions {
  tokens: Authenticator;
  /** Applied to POST, PUT, PATCH and DELETE per user; null for none. */
  limiter?: RateLimiter | null;
  /** Counts and logs refused tokens (401s); none when absent. */
  unauthorized?: UnauthorizedLog | null;
}

const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function deny(reply: FastifyReply, code: 'unauthorized' | 'forbidden' | 'too_many_requests', message: string): FastifyReply {
  if (code === 'unauthorized') reply.header('www-authenticate', 'Bearer realm="msc-gateway"');
  return sendError(reply, code, message);
}

const plugin: FastifyPluginAsync<AuthPluginOptions> = async (app, opts) => {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url;
    const access = url === undefined ? null : routeAccess(req.method, url);
    const token = bearerToken(req.headers.authorization);
    const principal = token === null ? null : opts.tokens.authenticate(token);
    const refused = (reason: string) => opts.unauthorized?.record({ transport: 'http', source: req.ip, reason, route: url ?? '(no route)' });
    if (access === 'open') {
      if (principal) req.principal = principal;
      else if (token !== null || req.headers.authorization !== undefined) refused('unknown token on an open route');
      return;
    }
    if (!principal) {
      const reason = token === null ? 'a bearer token is required' : 'unknown token';
      refused(reason);
      return deny(reply, 'unauthorized', reason);
    }
    req.principal = principal;
    if (url === undefined) return; // no such route: the not-found handler answers 404 to a known user
    if (access === null || !roleAtLeast(principal.role, access)) {
      req.log.warn({ user: principal.user, role: principal.role, method: req.method, route: url, needs: access ?? 'unlisted' }, 'access denied');
      return deny(reply, 'forbidden', access === null
        ? `${req.method} ${url} is not open to any role`
        : `${req.method} ${url} needs role ${access}; ${principal.user} is ${principal.role}`);
    }
    if (opts.limiter && WRITE_METHODS.has(req.method)) {
      const d = opts.limiter.take(principal.user);
      if (!d.ok) {
        reply.header('retry-after', String(Math.ceil(d.retryAfterMs / 1000)));
        return deny(reply, 'too_many_requests', `rate limit for ${principal.user}: retry in ${d.retryAfterMs} ms`);
      }
    }
  });
};
// fastify-plugin's convention: do not encapsulate, so the hook applies to the whole server.
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export const authPlugin = plugin;

/** The user behind a request, for the audit trail (alarm routes: `alarmRoutes(app, { engine, actorOf })`). */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.principal) throw new Error(`actorOf: ${req.method} ${req.url} has no principal (route not behind authPlugin)`);
  return { user: req.principal.user, role: req.principal.role };
}
