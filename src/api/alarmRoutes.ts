/**
 * Alarm API: list alarms, acknowledge, shelve, unshelve, out of service, audio pause
 * per device, and the alarm profile in force (changed through src/api/alarmProfileRoutes.ts). Bodies are validated with zod (400 names the field
 * paths); an unknown alarm is 404 and an action its state does not allow is 409. Who may call what is
 * enforced by the access-control work (src/auth/routeRoles.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ActionResult, AlarmEngine, AudioPauseResult } from '../alarms/engine.js';
import type { Actor } from '../alarms/types.js';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';

export interface AlarmRoutesOptions {
  engine: AlarmEngine;
  actorOf: (req: FastifyRequest) => Actor;
  /**
   * Whether the audit trail can be written now. Shelving and out-of-service hide an alarm, so without an audit
   * record they are refused (503); acknowledge and audio pause hide nothing and stay available.
   */
  auditAvailable?: () => boolean;
}

const AUDIT_UNAVAILABLE = 'the audit trail cannot be written (journal failing): shelving and out-of-service are refused until it can';

const ListQuery = z.object({
  state: z.enum(['active', 'all']).default('active'),
  device: z.string().min(1).optional(),
});
const AckBody = z.strictObject({ reason: z.string().max(500).optional() });
const ShelveBody = z.strictObject({
  minutes: z.number().positive().max(480),
  reason: z.string().trim().min(1, 'a reason is required').max(500),
});
const ReasonBody = z.strictObject({ reason: z.string().trim().min(1, 'a reason is required').max(500) });
const OptionalReasonBody = z.strictObject({ reason: z.string().max(500).optional() });

type Params = { id: string };

/** `root`: `['query']` for a query string, none for a body. */
function parse<S extends z.ZodType>(schema: S, input: unknown, reply: FastifyReply, root: string[] = []): z.output<S> | null {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  void sendBadRequest(reply, zodIssues(r.error, root));
  return null;
}

function answer(reply: FastifyReply, r: ActionResult | AudioPauseResult): FastifyReply {
  if (r.ok) return reply.send('alarm' in r ? { alarm: r.alarm } : { deviceId: r.deviceId, until: r.until });
  return sendError(reply, r.error, r.message);
}

export async function alarmRoutes(app: FastifyInstance, opts: AlarmRoutesOptions): Promise<void> {
  const { engine, actorOf } = opts;

  app.get('/api/alarms', async (req, reply) => {
    const q = parse(ListQuery, req.query, reply, ['query']);
    if (!q) return reply;
    return { alarms: engine.list({ state: q.state, device: q.device }) };
  });

  // Read-only: changing rules at run time (PUT) needs a decision on persisting them; see docs/alarms.md.
  app.get('/api/alarms/profile', async (req, reply) => {
    const q = parse(z.object({ device: z.string().min(1).optional() }), req.query, reply, ['query']);
    if (!q) return reply;
    if (q.device === undefined) return { profile: engine.currentProfile() };
    return { device: q.device, ...engine.rulesOf(q.device) };
  });

  app.get<{ Params: Params }>('/api/alarms/:id', async (req, reply) => {
    const a = engine.get(req.params.id);
    if (!a) return sendError(reply, 'not_found', `no alarm ${req.params.id}`);
    return { alarm: a };
  });

  app.post<{ Params: Params }>('/api/alarms/:id/ack', async (req, reply) => {
    const b = parse(AckBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.ack(req.params.id, actorOf(req), b.reason));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/shelve', async (req, reply) => {
    const b = parse(ShelveBody, req.body, reply);
    if (!b) return reply;
    if (opts.auditAvailable && !opts.auditAvailable()) return sendError(reply, 'audit_unavailable', AUDIT_UNAVAILABLE);
    return answer(reply, engine.shelve(req.params.id, b.minutes, b.reason, actorOf(req)));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/unshelve', async (req, reply) => {
    const b = parse(OptionalReasonBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.unshelve(req.params.id, actorOf(req), b.reason));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/out-of-service', async (req, reply) => {
    const b = parse(ReasonBody, req.body, reply);
    if (!b) return reply;
    if (opts.auditAvailable && !opts.auditAvailable()) return sendError(reply, 'audit_unavailable', AUDIT_UNAVAILABLE);
    return answer(reply, engine.outOfService(req.params.id, b.reason, actorOf(req)));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/return-to-service', async (req, reply) => {
    const b = parse(OptionalReasonBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.returnToService(req.params.id, actorOf(req), b.reason));
  });

  app.post<{ Params: Params }>('/api/devices/:id/audio-pause', async (req, reply) => {
    const b = parse(OptionalReasonBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.audioPause(req.params.id, actorOf(req)));
  });
}
