/**
 * HTTP API factory: built apart from listen, so tests use inject().
 * Feature routes (alarms, history, commands, …) are registered by the parts that own them.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { badRequest, codeForStatus, errorBody, GatewayError, ROOT_PATH, sendError } from '../errors.js';
import { storageUnavailableReason } from '../storage/types.js';
import type { Logger } from '../log.js';
import type { Registry } from '../metrics.js';
import type { DeviceView } from '../model/deviceHub.js';

export interface HealthReport {
  status: 'ok' | 'degraded';
  live: boolean;
  ready: boolean;
  reasons: string[];
  [key: string]: unknown;
}

/**
 * What `/healthz` tells a caller without a valid token: live, ready and why not. The rest of the report (device
 * ids and states, transports, journal, forwarder) names consoles and what they are doing, so it needs a token.
 */
export function publicHealth(h: HealthReport): HealthReport {
  return { status: h.status, live: h.live, ready: h.ready, reasons: h.reasons };
}

/** JSON and Prometheus answers carry live patient-circuit data: no browser or proxy cache may keep a copy. */
function noStore(url: string): boolean {
  const path = url.split('?')[0];
  return path.startsWith('/api/') || path === '/api' || path === '/metrics';
}

export interface ServerDeps {
  logger: Logger;
  devices: DeviceView;
  health: () => HealthReport;
  /** The registry `/metrics` serves (text format 0.0.4, prom-client's Content-Type). */
  metrics: Registry;
  /** Plugins registered after the core routes; each owns its routes. */
  plugins?: Array<{ plugin: FastifyPluginAsync<any>; opts?: Record<string, unknown> }>;
  /**
   * Until access control exists, device data is served to loopback clients only: a gateway bound
   * to a public address by mistake must not leak patient-circuit data.
   */
  loopbackOnly?: boolean;
  bodyLimit?: number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ module: 'http' }),
    // One log line per request would drown the device logs; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 64 * 1024,
  });

  if (deps.loopbackOnly ?? true) {
    app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/healthz' || LOOPBACK.test(req.ip)) return;
      return sendError(reply, 'forbidden', 'device data is served on loopback only');
    });
  }

  // onSend runs for every answer (routes, hooks' refusals, errors, 404), after the handler chose its headers.
  app.addHook('onSend', async (req, reply, payload) => {
    if (noStore(req.url)) reply.header('cache-control', 'no-store');
    return payload;
  });

  // The one error handler of the API (plugins do not set their own): every thrown error leaves as the
  // catalogue's body shape (src/errors.ts).
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof GatewayError) {
      if (err.status >= 500) app.log.error({ err, details: err.details }, 'request failed');
      return reply.code(err.status).send(err.body);
    }
    // A journal that cannot be read or written is one answer on every route: 503 with the reason, never a 500.
    const storage = storageUnavailableReason(err);
    if (storage !== null) {
      app.log.warn({ err: storage }, 'request refused: storage unavailable');
      return sendError(reply, 'storage_unavailable', storage);
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      // A fault's text can name tables, files or SQL: it goes to the log, not to the client.
      app.log.error({ err }, 'request failed');
      return reply.code(status).send(errorBody('internal'));
    }
    // fastify's own refusals: a body that is not JSON, too large, of an unsupported type.
    const code = codeForStatus(status);
    if (code === 'bad_request') return reply.code(status).send(badRequest([{ path: ROOT_PATH, message: err.message }]));
    return reply.code(status).send(errorBody(code, err.message));
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`));

  // Open (probes carry no token); the full report only to a valid token of any role (the auth plugin sets it).
  app.get('/healthz', async (req, reply) => {
    const h = deps.health();
    return reply.code(h.live ? 200 : 503).send(req.principal ? h : publicHealth(h));
  });

  app.get('/api/devices', async () => ({ devices: deps.devices.list() }));

  app.get<{ Params: { id: string } }>('/api/devices/:id', async (req, reply) => {
    const d = deps.devices.get(req.params.id);
    if (!d) return sendError(reply, 'not_found', `no device ${req.params.id}`);
    return d;
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.metrics();
    return reply.type(deps.metrics.contentType).send(text);
  });

  for (const { plugin, opts } of deps.plugins ?? []) await app.register(plugin, opts ?? {});
  return app as unknown as FastifyInstance;
}
